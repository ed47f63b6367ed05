//! The WebSocket: the upgrade's answer, then framing by `async-tungstenite`, with the door's
//! rules on top: text frames only, a bounded message size, and a ping when the client has been
//! silent, so a page whose network vanished is noticed within a minute.
//!
//! Why `async-tungstenite` over the door's own `httparse` head: the door reads the HTTP request
//! itself (it also serves the page's files on the same port, and checks the origin first), so
//! only the framing is needed, which tungstenite does to RFC 6455 (masking, fragmentation,
//! control frames, close handshake, UTF-8 checks). `async-tungstenite` runs it over any
//! futures-io stream, so plaintext TCP and TLS on smol alike.
//!
//! Nothing here knows about JSON, the hub or the page.

use std::io;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::error::{CapacityError, Error as WsError, ProtocolError};
use async_tungstenite::tungstenite::handshake::derive_accept_key;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use async_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};
use async_tungstenite::WebSocketStream;
use smol::io::{AsyncRead, AsyncWrite};
use smol::stream::StreamExt;
use smol::Timer;

use crate::wire::http::{Method, Request, Response, Status};

/// Bytes tungstenite reads per call, and so the read buffer each connection keeps for its whole
/// life. 1 KiB: what a page sends is a typed line in a small JSON object, so a longer one takes
/// a second read; an idle page holds 3 KiB less than with 4 KiB (measured with smolchat-bench's
/// idle web clients), and far less than tungstenite's default of 128 KiB.
const READ_BUFFER: usize = 1024;

/// How long the close handshake may take before the connection is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The largest message a page may send for a `--max-line` of `max_line` bytes: room for a text
/// field of `max_line` bytes even if every byte were written as a six-byte `\u` escape, plus the
/// envelope. Texts over `max_line` but within this get a "line too long" answer and the
/// connection stays; a message over this closes it (1009), since only a hand-made client sends
/// one.
pub fn max_message(max_line: usize) -> usize {
    max_line * 6 + 1024
}

/// Why an upgrade request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    #[error("a WebSocket upgrade must be a GET")]
    Method,
    #[error("not a WebSocket upgrade (Upgrade/Connection headers, HTTP/1.1)")]
    NotUpgrade,
    #[error("unsupported Sec-WebSocket-Version")]
    Version,
    #[error("missing or malformed Sec-WebSocket-Key")]
    Key,
}

impl UpgradeError {
    /// The answer: 405, 400, or 426 naming the version spoken.
    pub fn response(self) -> Response {
        match self {
            UpgradeError::Method => {
                let mut response = Response::error(Status::MethodNotAllowed);
                response.header("allow", "GET");
                response
            }
            UpgradeError::Version => {
                let mut response = Response::error(Status::UpgradeRequired);
                response.header("sec-websocket-version", "13");
                response
            }
            UpgradeError::NotUpgrade | UpgradeError::Key => Response::error(Status::BadRequest),
        }
    }
}

/// Checks an upgrade request as RFC 6455 section 4.2.1 lists, and returns the `101` answer.
/// The origin is checked apart (see `origin.rs`).
pub fn accept(request: &Request) -> Result<Response, UpgradeError> {
    if request.method != Method::Get {
        return Err(UpgradeError::Method);
    }
    if request.minor < 1
        || !request.has_token("upgrade", "websocket")
        || !request.has_token("connection", "upgrade")
    {
        return Err(UpgradeError::NotUpgrade);
    }
    if request.header_str("sec-websocket-version") != Some("13") {
        return Err(UpgradeError::Version);
    }
    let key = request
        .header_str("sec-websocket-key")
        .ok_or(UpgradeError::Key)?;
    if !is_nonce(key) {
        return Err(UpgradeError::Key);
    }
    let mut response = Response::new(Status::SwitchingProtocols, b"");
    response
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()));
    Ok(response)
}

/// Whether `key` is base64 of 16 bytes: 22 base64 characters and `==`.
fn is_nonce(key: &str) -> bool {
    let alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    key.len() == 24 && key.ends_with("==") && key.bytes().take(22).all(alphabet)
}

/// When to ping a silent client, and when to give up on it. Time is a parameter, so the rule
/// is tested without waiting.
#[derive(Debug, Clone)]
pub struct Keepalive {
    /// Silence after which the server pings.
    ping_after: Duration,
    /// Time the client has to answer a ping (with anything) before it is dropped.
    answer_within: Duration,
    last_heard: Instant,
    pinged_at: Option<Instant>,
}

/// What the keepalive says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing until this instant.
    Wait(Instant),
    /// Send a ping now.
    Ping,
    /// The client did not answer the ping: drop it.
    Dead,
}

impl Keepalive {
    /// Pings after 30 s of silence and waits 30 s for an answer: below the idle timeouts of
    /// common NATs and proxies (60 s for nginx's `proxy_read_timeout`), so the ping also keeps
    /// the path open. Not configurable yet.
    pub const DEFAULT_PING_AFTER: Duration = Duration::from_secs(30);
    pub const DEFAULT_ANSWER_WITHIN: Duration = Duration::from_secs(30);

    pub fn new(ping_after: Duration, answer_within: Duration, now: Instant) -> Keepalive {
        Keepalive {
            ping_after,
            answer_within,
            last_heard: now,
            pinged_at: None,
        }
    }

    /// Any frame from the client (data, ping, pong) shows it is there.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.pinged_at = None;
    }

    /// What to do at `now`. Answers [`Tick::Ping`] once per silence.
    pub fn tick(&mut self, now: Instant) -> Tick {
        match self.pinged_at {
            Some(at) if now >= at + self.answer_within => Tick::Dead,
            Some(at) => Tick::Wait(at + self.answer_within),
            None if now >= self.last_heard + self.ping_after => {
                self.pinged_at = Some(now);
                Tick::Ping
            }
            None => Tick::Wait(self.last_heard + self.ping_after),
        }
    }
}

/// How a WebSocket ended, when not by a clean close.
#[derive(Debug, thiserror::Error)]
pub enum WsEnd {
    /// A binary frame: closed with 1003.
    #[error("binary frame (text only)")]
    Binary,
    /// A message over [`max_message`]: closed with 1009.
    #[error("message over {0} bytes")]
    TooBig(usize),
    /// Invalid UTF-8 in a text frame: closed with 1007.
    #[error("invalid UTF-8 in a text frame")]
    Utf8,
    /// A framing error (unmasked frame, bad opcode, reset without a close): closed with 1002.
    #[error("WebSocket protocol error: {0}")]
    Protocol(ProtocolError),
    /// No answer to a ping: closed with 1001.
    #[error("no answer to a ping")]
    Silent,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl WsEnd {
    /// Logs how the WebSocket of `peer` ended: a limit or a protocol error as a warning,
    /// aggregated per kind; the client going away (I/O, a reset) at debug level only.
    pub fn log(&self, peer: std::net::SocketAddr) {
        let key = match self {
            WsEnd::Binary => "web: binary frame",
            WsEnd::TooBig(_) => "web: message too big",
            WsEnd::Utf8 => "web: invalid UTF-8",
            WsEnd::Silent => "web: no answer to ping",
            WsEnd::Protocol(ProtocolError::ResetWithoutClosingHandshake) | WsEnd::Io(_) => {
                return log::debug!("{peer}: web: {self}");
            }
            WsEnd::Protocol(_) => "web: protocol error",
        };
        crate::log_throttled!(log::Level::Warn, key, "{peer}: web: {self}, disconnecting");
    }
}

/// An upgraded connection: text messages in and out.
pub struct WebSocket<S> {
    stream: WebSocketStream<S>,
    keepalive: Keepalive,
    /// The keepalive's next wake, kept across calls to [`WebSocket::recv`]: a session races
    /// `recv` against its outbox and drops it on every delivery, and a timer made per call
    /// would be registered with the reactor and removed again each time.
    timer: Timer,
    timer_at: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Starts framing on `stream` after the `101` was written. `buffered` are bytes read past
    /// the upgrade's head (a client may not send frames before the 101, but may pipeline them).
    pub async fn new(stream: S, buffered: Vec<u8>, max_line: usize) -> WebSocket<S> {
        let limit = max_message(max_line);
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let stream =
            WebSocketStream::from_partially_read(stream, buffered, Role::Server, Some(config))
                .await;
        let keepalive = Keepalive::new(
            Keepalive::DEFAULT_PING_AFTER,
            Keepalive::DEFAULT_ANSWER_WITHIN,
            Instant::now(),
        );
        WebSocket {
            stream,
            keepalive,
            timer: Timer::never(),
            timer_at: None,
        }
    }

    /// Replaces the keepalive timing (for tests, and for the wiring step's flags).
    pub fn set_keepalive(&mut self, ping_after: Duration, answer_within: Duration) {
        self.keepalive = Keepalive::new(ping_after, answer_within, Instant::now());
    }

    /// The next text message. `Ok(None)` is a clean close by the client (the close handshake
    /// answered). Pings are answered and sent here, so keep a `recv` pending while connected.
    /// Cancel-safe: a frame read in part stays buffered in tungstenite.
    pub async fn recv(&mut self) -> Result<Option<String>, WsEnd> {
        loop {
            let wake = match self.keepalive.tick(Instant::now()) {
                Tick::Wait(at) => at,
                Tick::Ping => {
                    self.send(Message::Ping(Bytes::new())).await?;
                    continue;
                }
                Tick::Dead => {
                    self.close(CloseCode::Away, "no answer to ping").await;
                    return Err(WsEnd::Silent);
                }
            };
            if self.timer_at != Some(wake) {
                self.timer.set_at(wake);
                self.timer_at = Some(wake);
            }
            let (stream, timer) = (&mut self.stream, &mut self.timer);
            let next = smol::future::or(async { Some(stream.next().await) }, async {
                timer.next().await;
                None
            });
            let message = match next.await {
                None => continue,
                Some(None) => return Ok(None),
                Some(Some(message)) => message,
            };
            self.keepalive.heard(Instant::now());
            let end = match message {
                Ok(Message::Text(text)) => return Ok(Some(text.as_str().to_owned())),
                Ok(Message::Binary(_)) => WsEnd::Binary,
                // Pings are answered by tungstenite on the next read or write; a close is
                // answered the same way, and the next read then reports the end.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_)) => {
                    continue
                }
                Err(WsError::Capacity(CapacityError::MessageTooLong { max_size, .. })) => {
                    WsEnd::TooBig(max_size)
                }
                Err(WsError::Utf8(_)) => WsEnd::Utf8,
                Err(WsError::Protocol(e)) => WsEnd::Protocol(e),
                Err(WsError::Io(e)) => return Err(WsEnd::Io(e)),
                Err(e) => return Err(WsEnd::Io(io::Error::other(e))),
            };
            let (code, reason) = match &end {
                WsEnd::Binary => (CloseCode::Unsupported, "text frames only"),
                WsEnd::TooBig(_) => (CloseCode::Size, "message too big"),
                WsEnd::Utf8 => (CloseCode::Invalid, "invalid UTF-8"),
                _ => (CloseCode::Protocol, "protocol error"),
            };
            // A reset without a close handshake is the client vanishing: nothing to answer.
            if !matches!(
                end,
                WsEnd::Protocol(ProtocolError::ResetWithoutClosingHandshake)
            ) {
                self.close(code, reason).await;
            }
            return Err(end);
        }
    }

    /// Sends one text message (for the server's JSON lines, one or more per message).
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> io::Result<()> {
        self.send(Message::Text(text.into())).await
    }

    /// Sends bytes that are UTF-8 (an outbox of JSON lines) as one text message.
    pub async fn send_utf8(&mut self, bytes: Vec<u8>) -> io::Result<()> {
        let text = Utf8Bytes::try_from(bytes).map_err(io::Error::other)?;
        self.send_text(text).await
    }

    async fn send(&mut self, message: Message) -> io::Result<()> {
        match self.stream.send(message).await {
            Ok(()) => Ok(()),
            Err(WsError::Io(e)) => Err(e),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// Starts the close handshake with `code` and waits (at most 2 s) for the client's answer,
    /// so the close frame is read before the connection goes. Errors are the end anyway.
    pub async fn close(&mut self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        let handshake = async {
            if self.stream.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = self.stream.next().await {}
            }
        };
        smol::future::or(handshake, async {
            Timer::after(CLOSE_GRACE).await;
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A silent client is pinged once, then dropped if it stays silent; hearing from it
    /// starts the count again.
    #[test]
    fn keepalive_pings_then_gives_up() {
        let start = Instant::now();
        let s = Duration::from_secs;
        let mut keepalive = Keepalive::new(s(30), s(10), start);
        assert_eq!(keepalive.tick(start + s(29)), Tick::Wait(start + s(30)));
        assert_eq!(keepalive.tick(start + s(30)), Tick::Ping);
        assert_eq!(keepalive.tick(start + s(31)), Tick::Wait(start + s(40)));
        assert_eq!(keepalive.tick(start + s(40)), Tick::Dead);
        keepalive.heard(start + s(41));
        assert_eq!(keepalive.tick(start + s(42)), Tick::Wait(start + s(71)));
    }

    /// The key check accepts base64 of 16 bytes only.
    #[test]
    fn nonces() {
        assert!(is_nonce("dGhlIHNhbXBsZSBub25jZQ=="));
        for bad in [
            "",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25j*Q==",
            "dGhlIHNhbXBsZSBub25jZQ===",
        ] {
            assert!(!is_nonce(bad), "{bad}");
        }
    }

    /// RFC 6455's own example: the key `dGhlIHNhbXBsZSBub25jZQ==` is answered with
    /// `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`.
    #[test]
    fn accept_key_is_the_rfc_example() {
        let head = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut stream = smol::io::Cursor::new(head.to_vec());
        let deadline = Instant::now() + Duration::from_secs(5);
        let limits = crate::wire::http::Limits::default();
        let request = smol::block_on(crate::wire::http::HeadReader::new().read(
            &mut stream,
            &limits,
            deadline,
        ))
        .expect("read")
        .expect("request");
        let text = String::from_utf8(accept(&request).expect("upgrade").encode()).expect("utf-8");
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!text.contains("content-length"));
    }
}
