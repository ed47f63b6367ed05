//! Reading decoded lines off a client socket with bounded memory.
//!
//! Bytes are read into a thread-local scratch buffer and only the part the decoder has not
//! consumed yet is kept, so an idle connection holds no read buffer at all and a busy one holds at
//! most one read's worth plus one line. The decoder stops after each line, so a rate-limited
//! session stops reading and TCP pushes back on the sender.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use smol::io::AsyncRead;

use crate::wire::codec::{Decoded, LineDecoder};
use crate::wire::gate::ReadGate;

/// Bytes read per system call. Not configurable: 4 KiB holds a few lines of typing or a chunk of
/// paste; larger reads would only let a rate-limited client park more bytes in our memory.
const READ_CHUNK: usize = 4096;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// A client's inbound half: decoder state plus bytes read but not yet decoded.
pub struct LineReader {
    decoder: LineDecoder,
    inbound: Inbound,
}

/// A decoder a reader can drive: one event at a time out of a byte slice (the line door's
/// [`LineDecoder`], the IRC door's framing).
pub trait Decode {
    type Event;
    /// Consumes bytes from `input` until one event or the end of `input`; returns how many
    /// bytes were used and the event.
    fn decode(&mut self, input: &[u8]) -> (usize, Option<Self::Event>);
    /// Frees spare buffer capacity: the connection is about to go idle.
    fn shrink(&mut self);
}

impl Decode for LineDecoder {
    type Event = Decoded;

    fn decode(&mut self, input: &[u8]) -> (usize, Option<Decoded>) {
        LineDecoder::decode(self, input)
    }

    fn shrink(&mut self) {
        LineDecoder::shrink(self);
    }
}

/// What every door's reader keeps between events: bytes read but not yet decoded, and the
/// gate in front of the reads.
#[derive(Default)]
pub struct Inbound {
    unread: Vec<u8>,
    pos: usize,
    /// Skips read calls while the socket has not signalled (see [`ReadGate`]).
    gate: ReadGate,
}

impl LineReader {
    pub fn new(max_line: usize) -> LineReader {
        LineReader {
            decoder: LineDecoder::new(max_line),
            inbound: Inbound::default(),
        }
    }

    /// Whether the client has shown it is telnet (see [`LineDecoder::is_telnet`]).
    pub fn is_telnet(&self) -> bool {
        self.decoder.is_telnet()
    }

    /// Hides a telnet user's typing (see [`LineDecoder::hide_input`]).
    pub fn hide_input(&mut self) {
        self.decoder.hide_input();
    }

    /// Gives a telnet user's echo back.
    pub fn show_input(&mut self) {
        self.decoder.show_input();
    }

    /// Makes the next read a real one, even if the socket has not signalled since it last said
    /// "not ready" (see [`ReadGate`]): for callers that must see what the socket holds right now.
    pub fn read_now(&mut self) {
        self.inbound.read_now();
    }

    /// Drops the partial line decoded so far.
    pub fn drop_partial(&mut self) {
        self.decoder.drop_partial();
    }

    /// What brings a telnet user's cursor back to column 0 ([`LineDecoder::take_return`]).
    pub fn take_return(&mut self) -> &'static [u8] {
        self.decoder.take_return()
    }

    /// Whether telnet answers are waiting to be sent.
    pub fn has_replies(&self) -> bool {
        self.decoder.has_replies()
    }

    /// Moves the telnet answers waiting to be sent to the end of `out`.
    pub fn take_replies(&mut self, out: &mut Vec<u8>) {
        self.decoder.take_replies(out);
    }

    /// The next line, over-long-line or telnet-reply event; `Ok(None)` when the client closed the
    /// connection. After [`Decoded::Reply`] the caller should flush soon (see `Conn::flush`).
    /// A partial line at the end of the stream is dropped: the client never finished it.
    ///
    /// Cancel-safe: all state lives in `self`, and bytes are only taken off the stream in the
    /// same poll that decodes them.
    pub async fn next<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> io::Result<Option<Decoded>> {
        self.inbound.next(stream, &mut self.decoder).await
    }
}

impl Inbound {
    /// Makes the next read a real one (see [`ReadGate::open`]).
    pub fn read_now(&mut self) {
        self.gate.open();
    }

    /// The next event `decoder` finds in the bytes kept and, when they run out, in what
    /// `stream` sends; `Ok(None)` when the stream ends. Cancel-safe: bytes leave the stream
    /// only in the poll that keeps them.
    pub async fn next<S: AsyncRead + Unpin, D: Decode>(
        &mut self,
        stream: &mut S,
        decoder: &mut D,
    ) -> io::Result<Option<D::Event>> {
        loop {
            while self.pos < self.unread.len() {
                let (used, event) = decoder.decode(&self.unread[self.pos..]);
                self.pos += used;
                if self.pos >= self.unread.len() {
                    // Everything decoded: give the buffer back rather than keep it per idle user.
                    self.unread = Vec::new();
                    self.pos = 0;
                }
                if let Some(event) = event {
                    return Ok(Some(event));
                }
            }
            let unread = &mut self.unread;
            let gate = &mut self.gate;
            let n = poll_fn(|cx| {
                let poll = gate.poll(cx, |cx| {
                    poll_scratch(&mut *stream, cx, |bytes| unread.extend_from_slice(bytes))
                });
                if poll.is_pending() {
                    // About to go idle: hold no more memory than a partial line needs.
                    decoder.shrink();
                }
                poll
            })
            .await?;
            if n == 0 {
                return Ok(None);
            }
        }
    }
}

/// One read into the scratch buffer, handing what arrived to `keep`.
fn poll_scratch<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    keep: impl FnOnce(&[u8]),
) -> Poll<io::Result<usize>> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        loop {
            match Pin::new(&mut *stream).poll_read(cx, &mut scratch[..]) {
                Poll::Ready(Ok(n)) => {
                    keep(&scratch[..n]);
                    return Poll::Ready(Ok(n));
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    })
}

/// Discards whatever the client still sends until it closes its side. Called after our side is
/// shut down for writing: closing a socket with unread input makes the kernel send a reset, which
/// throws away output the client has not read yet, such as the goodbye line.
pub async fn discard_until_eof<S: AsyncRead + Unpin>(stream: &mut S) {
    loop {
        match poll_fn(|cx| poll_scratch(&mut *stream, cx, |_| {})).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
