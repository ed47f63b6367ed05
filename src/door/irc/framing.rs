//! Framing the bytes an IRC client sends into lines, with bounded memory.
//!
//! A line ends in CR LF, a bare LF or a bare CR: the protocol says CR LF, and servers should
//! accept the other two, since some clients and hand-typed sessions send them. An LF right after
//! a CR belongs to the same line end. Empty lines are skipped (the protocol ignores empty
//! messages).
//!
//! A line longer than [`MAX_LINE`] can never be a valid message, so the decoder stops keeping it
//! at that length, reports [`Framed::TooLong`] once, and skips to its end; the door answers
//! `417 ERR_INPUTTOOLONG` and the connection stays up. So a decoder never holds more than
//! `MAX_LINE` bytes, whatever the client sends.
//!
//! [`IrcReader`] reads through `wire::reader`'s [`Inbound`], as the line door does: the same
//! per-thread scratch buffer and read gate, so an idle connection holds no read buffer and a
//! busy one one read's worth plus one line.

use std::io;

use smol::io::AsyncRead;

use crate::door::irc::message::MAX_BODY;
use crate::door::irc::tags::MAX_CLIENT_TAG_DATA;
use crate::wire::reader::{Decode, Inbound};

/// The longest line a client may send: `@`, the most tag data, a space, and the most body
/// ([`MAX_BODY`]), line end excluded. Not configurable: it follows from the protocol's limits,
/// and anything longer is refused by them anyway.
pub const MAX_LINE: usize = 1 + MAX_CLIENT_TAG_DATA + 1 + MAX_BODY;

/// Above this capacity the line buffer is freed, not just cleared, once a line is handled, so a
/// connection that once sent a long line does not keep its buffer.
const KEEP_CAPACITY: usize = 1024;

/// What the decoder found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// A complete, non-empty line: read it with [`IrcDecoder::line`].
    Line,
    /// A line went over [`MAX_LINE`]; the rest of it is skipped. Answer `417`.
    TooLong,
}

/// Splits a client's byte stream into lines, one event at a time.
#[derive(Debug, Default)]
pub struct IrcDecoder {
    /// The line being received; never longer than [`MAX_LINE`].
    pending: Vec<u8>,
    /// `pending` holds a complete line handed out by the last `decode`.
    complete: bool,
    /// The last byte was a CR that ended a line, so an LF right after it is swallowed.
    after_cr: bool,
    /// The current line went over the limit; bytes are dropped until its end.
    skipping: bool,
}

impl IrcDecoder {
    pub fn new() -> IrcDecoder {
        IrcDecoder::default()
    }

    /// Consumes bytes from `input` until one event is produced or the input runs out; returns
    /// how many bytes were consumed and the event. The caller keeps the rest for the next call.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Option<Framed>) {
        if self.complete {
            self.complete = false;
            self.release();
        }
        for (i, &byte) in input.iter().enumerate() {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    if std::mem::take(&mut self.skipping) || self.pending.is_empty() {
                        continue;
                    }
                    self.complete = true;
                    return (i + 1, Some(Framed::Line));
                }
                _ if self.skipping => {}
                _ if self.pending.len() >= MAX_LINE => {
                    self.skipping = true;
                    self.release();
                    return (i + 1, Some(Framed::TooLong));
                }
                _ => self.pending.push(byte),
            }
        }
        (input.len(), None)
    }

    /// The line completed by the last [`Framed::Line`], without its line end.
    pub fn line(&self) -> &[u8] {
        if self.complete {
            &self.pending
        } else {
            &[]
        }
    }

    /// Frees the buffer of a partial line's spare capacity (the connection went idle).
    pub fn shrink(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        } else {
            self.pending.shrink_to_fit();
        }
    }

    fn release(&mut self) {
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
    }
}

impl Decode for IrcDecoder {
    type Event = Framed;

    fn decode(&mut self, input: &[u8]) -> (usize, Option<Framed>) {
        IrcDecoder::decode(self, input)
    }

    fn shrink(&mut self) {
        IrcDecoder::shrink(self);
    }
}

/// A client's inbound half: the decoder plus bytes read but not yet decoded.
#[derive(Default)]
pub struct IrcReader {
    decoder: IrcDecoder,
    inbound: Inbound,
}

impl IrcReader {
    pub fn new() -> IrcReader {
        IrcReader::default()
    }

    /// The next line or over-long line; `Ok(None)` when the client closed the connection (a
    /// partial last line is dropped: the client never finished it). After [`Framed::Line`] the
    /// line is [`IrcReader::line`]. Cancel-safe.
    pub async fn next<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
    ) -> io::Result<Option<Framed>> {
        self.inbound.next(stream, &mut self.decoder).await
    }

    /// The line completed by the last [`Framed::Line`].
    pub fn line(&self) -> &[u8] {
        self.decoder.line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every event from feeding `input` in chunks of `chunk` bytes, lines as strings.
    fn frame(input: &[u8], chunk: usize) -> Vec<Result<String, Framed>> {
        let mut decoder = IrcDecoder::new();
        let mut out = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            let mut rest = piece;
            while !rest.is_empty() {
                let (used, event) = decoder.decode(rest);
                rest = &rest[used..];
                match event {
                    Some(Framed::Line) => {
                        out.push(Ok(String::from_utf8_lossy(decoder.line()).into_owned()))
                    }
                    Some(other) => out.push(Err(other)),
                    None => {}
                }
            }
        }
        out
    }

    fn lines(input: &[u8]) -> Vec<String> {
        frame(input, input.len())
            .into_iter()
            .map(|e| e.expect("a line"))
            .collect()
    }

    #[test]
    fn accepts_crlf_lf_and_bare_cr() {
        assert_eq!(
            lines(b"NICK a\r\nUSER u\nPING x\rPONG y\r\n"),
            ["NICK a", "USER u", "PING x", "PONG y"]
        );
    }

    #[test]
    fn skips_empty_lines_and_keeps_a_partial_one() {
        assert_eq!(lines(b"\r\n\n\r\rA\r\n\r\nB\n"), ["A", "B"]);
        assert_eq!(lines(b"A\nhalf"), ["A"]);
    }

    #[test]
    fn a_line_split_anywhere_frames_the_same() {
        let input = b"CAP LS 302\r\nNICK alice\rUSER a 0 * :Alice A\n";
        for chunk in 1..input.len() {
            assert_eq!(
                frame(input, chunk),
                frame(input, input.len()),
                "chunk {chunk}"
            );
        }
    }

    /// irctest readq: a 16 KiB line is refused once, skipped, and the next line still works.
    #[test]
    fn over_long_line_is_refused_once_then_skipped() {
        let mut input = b"PRIVMSG #test ".to_vec();
        input.extend(std::iter::repeat_n(b'a', 16384));
        input.extend_from_slice(b"\r\nPING x\r\n");
        let events = frame(&input, 4096);
        assert_eq!(events, [Err(Framed::TooLong), Ok("PING x".into())]);
    }

    #[test]
    fn a_line_of_exactly_max_line_bytes_is_a_line() {
        let mut input = vec![b'x'; MAX_LINE];
        input.push(b'\n');
        assert_eq!(frame(&input, 100), [Ok("x".repeat(MAX_LINE))]);
        let mut over = vec![b'x'; MAX_LINE + 1];
        over.push(b'\n');
        assert_eq!(frame(&over, 100), [Err(Framed::TooLong)]);
    }

    #[test]
    fn reader_reads_lines_off_a_stream() {
        let mut stream = &b"NICK a\r\nUSER b\n"[..];
        let mut reader = IrcReader::new();
        smol::block_on(async {
            assert_eq!(reader.next(&mut stream).await.unwrap(), Some(Framed::Line));
            assert_eq!(reader.line(), b"NICK a");
            assert_eq!(reader.next(&mut stream).await.unwrap(), Some(Framed::Line));
            assert_eq!(reader.line(), b"USER b");
            assert_eq!(reader.next(&mut stream).await.unwrap(), None);
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever arrives, the decoder holds at most `MAX_LINE` bytes, emits no line over it,
        /// and frames the same however the input is split.
        #[test]
        fn bounded_and_split_independent(
            bytes in proptest::collection::vec(any::<u8>(), 0..3000),
            long in 0usize..6000,
            chunk in 1usize..5000,
        ) {
            // Line ends often enough to frame many lines, and one run long enough to overflow.
            let mut input: Vec<u8> = bytes
                .iter()
                .map(|&b| match b { 0..=3 => b'\r', 4..=7 => b'\n', b => b })
                .collect();
            let at = input.len() / 2;
            input.splice(at..at, std::iter::repeat_n(b'x', long));
            let whole = frame(&input, input.len());
            prop_assert_eq!(&frame(&input, chunk), &whole);
            for line in whole.into_iter().flatten() {
                prop_assert!(!line.is_empty());
                // Lossy decoding may grow invalid bytes into three-byte replacement characters.
                prop_assert!(line.len() <= MAX_LINE * 3);
            }
            let mut decoder = IrcDecoder::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (used, _) = decoder.decode(rest);
                prop_assert!(decoder.pending.len() <= MAX_LINE);
                rest = &rest[used..];
            }
        }
    }
}
