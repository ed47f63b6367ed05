//! A client connection: the byte stream, its line reader, and the output waiting to be written.
//!
//! Generic over the stream (`AsyncRead + AsyncWrite`), so plaintext TCP and TLS are two stream
//! types behind the same session. Output is gathered in one buffer and written with one call,
//! because a write costs the same whether it carries one line or forty.
//!
//! Telnet clients get their output in telnet form (CR LF line ends, 0xFF doubled) and the
//! decoder's telnet answers with the next flush, and their output starts in column 0 whatever
//! their own echo did to the cursor ([`LineDecoder::take_return`]); clients that never showed
//! they are telnet get the bytes unchanged and never a telnet command.
//!
//! It must not know about the hub, rooms or commands: it moves bytes and lines.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use smol::future;
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::{Async, Timer};

use crate::wire::codec::Decoded;
#[cfg(doc)]
use crate::wire::codec::LineDecoder;
use crate::wire::reader::{self, LineReader};
use crate::wire::telnet;

/// How often a blocked write checks whether it should be abandoned. A blocked write means the
/// client is not reading, so this only bounds how long a dropped client lingers.
const ABANDON_CHECK: Duration = Duration::from_millis(250);

/// How long a closing connection spends on its goodbye: writing what is left and waiting for the
/// client to close its side (see [`Conn::close`]). Short, because a well-behaved client reads
/// and closes at once when it sees our end of stream.
const LINGER: Duration = Duration::from_secs(2);

/// Something that can tell a blocked write to give up (the hub dropped this client).
pub trait Abandon: Send + Sync {
    fn abandoned(&self) -> bool;
}

/// The byte streams a connection can run on: plaintext TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Ends our side of the TCP connection (FIN), after [`AsyncWriteExt::close`] has written
    /// what is pending (and, for TLS, the close_notify alert). Needed because closing an
    /// `Async<TcpStream>` only flushes: without the FIN the client would not see the end of
    /// stream until the linger time ran out.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Stream for Async<TcpStream> {
    fn shutdown_write(&self) -> io::Result<()> {
        self.get_ref().shutdown(Shutdown::Write)
    }
}

impl Stream for Box<futures_rustls::server::TlsStream<Async<TcpStream>>> {
    fn shutdown_write(&self) -> io::Result<()> {
        self.get_ref().0.get_ref().shutdown(Shutdown::Write)
    }
}

/// A client connection.
pub struct Conn<S> {
    pub stream: S,
    pub reader: LineReader,
    /// Bytes waiting to be written.
    pub out: Vec<u8>,
    pub peer: SocketAddr,
    /// Set once registered: lets a blocked write notice that the hub gave up on this client.
    abandon: Option<Arc<dyn Abandon>>,
    /// A write was abandoned part-way, so the client may hold half a line.
    torn: bool,
}

impl<S: Stream> Conn<S> {
    pub fn new(stream: S, peer: SocketAddr, max_line: usize) -> Conn<S> {
        Conn {
            stream,
            reader: LineReader::new(max_line),
            out: Vec::new(),
            peer,
            abandon: None,
            torn: false,
        }
    }

    /// From now on a blocked write gives up once `abandon` says so.
    pub fn watch(&mut self, abandon: Arc<dyn Abandon>) {
        self.abandon = Some(abandon);
    }

    /// Adds a line of text (without newline) to the pending output.
    pub fn queue(&mut self, text: &str) {
        if self.reader.is_telnet() {
            telnet::encode_into(&mut self.out, text.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.out.extend_from_slice(text.as_bytes());
            self.out.push(b'\n');
        }
    }

    /// Adds bytes that already end in a newline.
    pub fn queue_bytes(&mut self, bytes: &[u8]) {
        if self.reader.is_telnet() {
            telnet::encode_into(&mut self.out, bytes);
        } else {
            self.out.extend_from_slice(bytes);
        }
    }

    /// Whether the client has shown it is a telnet client (and so can hide typing).
    pub fn is_telnet(&self) -> bool {
        self.reader.is_telnet()
    }

    /// Asks a telnet client to stop echoing what the user types (IAC WILL ECHO: the server
    /// claims the echo and then does not echo), for a password. A no-op for other clients,
    /// which would show the bytes as garbage.
    pub fn hide_input(&mut self) {
        self.reader.hide_input();
    }

    /// Gives the echo back to a telnet client (IAC WONT ECHO). A no-op for other clients.
    pub fn show_input(&mut self) {
        if self.is_telnet() {
            self.reader.show_input();
            // The user's Enter was not echoed either: end the line for them.
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Adds a buffer of lines that already end in newlines, taking it over when nothing else is
    /// pending (and the client needs no telnet encoding) so that relayed output is written
    /// without another copy.
    pub fn queue_owned(&mut self, bytes: Vec<u8>) {
        if self.reader.is_telnet() {
            telnet::encode_into(&mut self.out, &bytes);
        } else if self.out.is_empty() {
            self.out = bytes;
        } else {
            self.out.extend_from_slice(&bytes);
        }
    }

    /// Throws away every line the client has typed ahead that the server has not read yet: what
    /// is buffered here, what the socket already holds, and a partial line. Returns how many
    /// lines went. Called after refusing a password dialogue, whose typed-ahead answer (a
    /// password) would otherwise be read as a name or a public line. Telnet answers are kept.
    pub async fn discard_typed_ahead(&mut self) -> usize {
        let mut dropped = 0;
        loop {
            // A real read, not the gate's memory: bytes the reactor has not reported yet count.
            self.reader.read_now();
            let next = smol::future::poll_once(self.reader.next(&mut self.stream)).await;
            match next {
                Some(Ok(Some(Decoded::Line(_) | Decoded::TooLong))) => dropped += 1,
                Some(Ok(Some(Decoded::Reply))) => {}
                // Nothing more has arrived, or the stream ended or broke (the next read says so).
                None | Some(Ok(None) | Err(_)) => break,
            }
        }
        self.reader.drop_partial();
        dropped
    }

    /// The next line from the client; `Ok(None)` when it closed the connection.
    pub async fn read_line(&mut self) -> io::Result<Option<Decoded>> {
        self.reader.next(&mut self.stream).await
    }

    /// Writes any telnet answers, then all pending output (led by what brings a telnet user's
    /// cursor back to column 0).
    ///
    /// Answers go first: the sessions flush before every read, so output is only pending here
    /// when it answers the line just read, and the answers pending then were asked for by input
    /// before that line's end (see [`LineDecoder::decode`]): a timing mark typed before it, or
    /// the BINARY offer its CR LF brought, which should reach the client before the reply to its
    /// name. The output of everything before a timing mark was written by earlier flushes.
    pub async fn flush(&mut self) -> io::Result<()> {
        let home = if self.out.is_empty() {
            &[][..]
        } else {
            self.reader.take_return()
        };
        if self.reader.has_replies() || !home.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.reader.take_replies(&mut self.out);
            self.out.extend_from_slice(home);
            self.out.extend_from_slice(&out);
        }
        if self.out.is_empty() {
            return Ok(());
        }
        // Taking the buffer frees it after the write, so an idle session holds no write buffer.
        let out = std::mem::take(&mut self.out);
        let stream = &mut self.stream;
        let write = async {
            stream.write_all(&out).await?;
            stream.flush().await
        };
        let Some(abandon) = &self.abandon else {
            return write.await;
        };
        let torn = &mut self.torn;
        // A write that completes at once never starts the timer; one that blocks is abandoned
        // when the hub gives up on the client, since that client is not reading anyway.
        future::or(write, async {
            loop {
                Timer::after(ABANDON_CHECK).await;
                if abandon.abandoned() {
                    *torn = true;
                    return Err(io::Error::other("abandoned: not reading fast enough"));
                }
            }
        })
        .await
    }

    /// Closes gracefully: writes what is pending, ends our side, then waits (briefly) for the client
    /// to end its side, discarding its input, so that the kernel does not reset the connection and
    /// lose the lines the client has not read yet.
    pub async fn close(mut self) {
        // The whole goodbye is bounded: a client that neither reads nor closes gets no longer.
        let goodbye = async {
            let _ = self.flush().await;
            let _ = self.stream.close().await;
            let _ = self.stream.shutdown_write();
            reader::discard_until_eof(&mut self.stream).await;
        };
        future::or(goodbye, async {
            Timer::after(LINGER).await;
        })
        .await;
    }

    /// Writes one last line if the stream takes it right away, without waiting for a client that
    /// may never read again.
    pub async fn try_last_words(&mut self, text: &str) {
        if self.torn {
            // End the half-written line so the last words arrive as a line of their own.
            let pending = std::mem::take(&mut self.out);
            self.queue("");
            self.out.extend_from_slice(&pending);
        }
        self.queue(text);
        let mut bytes = self.reader.take_return().to_vec();
        bytes.append(&mut self.out);
        let stream = &mut self.stream;
        let _ = future::poll_once(async {
            stream.write_all(&bytes).await?;
            stream.flush().await
        })
        .await;
    }
}
