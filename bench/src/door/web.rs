//! The bench's web client: what the chat page does, without the page. Written from docs/WEB.md.
//!
//! It upgrades `GET /ws` to a WebSocket with an `Origin` that matches the `Host` (as a browser
//! on the page's own origin sends it; the door refuses other origins), sends
//! `{"type":"hello","name":...}` and is in the room once the server sent `welcome` and the last
//! chunk (`done: true`) of the join's `history`. Senders send `{"type":"say","text":...}`; the
//! server sends one or more JSON objects per text frame, each ended by `\n`, and every one of
//! them is parsed, as the page parses them. A `line` object is chat (its sender gets it back
//! too); `bye` says the server is closing the connection; the rest is ignored.
//!
//! The framing is async-tungstenite's (client role: masked frames, pings answered), over the
//! same connected stream as every other client, plaintext or TLS.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use async_tungstenite::tungstenite::client::ClientRequestBuilder;
use async_tungstenite::tungstenite::error::ProtocolError;
use async_tungstenite::tungstenite::protocol::WebSocketConfig;
use async_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use async_tungstenite::{WebSocketReceiver, WebSocketSender};
use serde::{Deserialize, Serialize};
use smol::future;
use smol::stream::StreamExt;
use smol::Timer;

use crate::client::{ReadError, Stream};
use crate::door::Heard;

/// Bytes tungstenite reads per call, and the read buffer each client keeps: the line clients'
/// size. Its default (128 KiB) would cost the bench more memory than thousands of clients need.
const READ_BUFFER: usize = 8 * 1024;

/// A JSON object from the server, with the fields the bench looks at. Unknown fields (and the
/// `lines` of a history chunk) are parsed and skipped, as the page's parser does.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    sender: Option<Text<'a>>,
    #[serde(default, borrow)]
    text: Option<Text<'a>>,
    #[serde(default, borrow)]
    field: Option<Text<'a>>,
    #[serde(default)]
    done: bool,
}

/// A string field, borrowed from the line unless it holds escapes. (serde borrows a `Cow`
/// field only when it is not inside an `Option`, hence the newtype.)
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// What the page sends.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Outgoing<'a> {
    Hello { name: &'a str },
    Say { text: &'a str },
}

/// The writing half.
pub struct WebWriter {
    tx: WebSocketSender<Stream>,
}

impl WebWriter {
    /// Sends `{"type":"say","text":...}` in one frame.
    pub async fn say(&mut self, text: &[u8], deadline: Instant) -> io::Result<()> {
        let text = std::str::from_utf8(text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.send(&Outgoing::Say { text }, deadline).await
    }

    async fn send(&mut self, message: &Outgoing<'_>, deadline: Instant) -> io::Result<()> {
        let json = serde_json::to_string(message).map_err(io::Error::other)?;
        future::or(
            async { self.tx.send(Message::text(json)).await.map_err(into_io) },
            async {
                Timer::at(deadline).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
            },
        )
        .await
    }
}

/// The reading half: one frame at a time, handed out one JSON line at a time.
pub struct WebReader {
    rx: WebSocketReceiver<Stream>,
    frame: Utf8Bytes,
    /// Where the next line of `frame` starts.
    at: usize,
}

impl WebReader {
    /// The next thing heard; each frame's read bounded by `deadline` when `timed`.
    pub async fn next(
        &mut self,
        deadline: Instant,
        timed: bool,
    ) -> Result<Option<Heard<'_>>, ReadError> {
        let Some(line) = self.next_line(deadline, timed).await? else {
            return Ok(None);
        };
        let incoming = parse(line)?;
        Ok(Some(match &*incoming.kind {
            "line" => match (incoming.sender, incoming.text) {
                (Some(Text(sender)), Some(Text(text))) => Heard::Chat {
                    from: bytes(sender),
                    text: bytes(text),
                },
                _ => Heard::Other,
            },
            "bye" => Heard::Dropped,
            _ => Heard::Other,
        }))
    }

    /// The next JSON line, reading frames as needed; `Ok(None)` once the connection closed.
    async fn next_line(
        &mut self,
        deadline: Instant,
        timed: bool,
    ) -> Result<Option<&str>, ReadError> {
        while self.at >= self.frame.len() {
            let frame = async { self.rx.next().await.map(Some) };
            let message = if timed {
                future::or(frame, async {
                    Timer::at(deadline).await;
                    Some(None)
                })
                .await
            } else {
                frame.await
            };
            match message {
                None => return Ok(None),
                Some(None) => return Err(ReadError::Timeout),
                Some(Some(Ok(Message::Text(frame)))) => {
                    self.frame = frame;
                    self.at = 0;
                }
                Some(Some(Ok(Message::Close(_)))) => return Ok(None),
                // Pings are answered by tungstenite on the next read or write.
                Some(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {}
                Some(Some(Ok(Message::Binary(_)))) => {
                    return Err(ReadError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a binary frame from the web door (it sends text only)",
                    )))
                }
                Some(Some(Err(error))) => {
                    return match error {
                        // The server closed the TCP connection without a close frame, or the
                        // bench shut its read side down: either way, the end of the stream.
                        WsError::ConnectionClosed
                        | WsError::AlreadyClosed
                        | WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                            Ok(None)
                        }
                        other => Err(ReadError::Io(into_io(other))),
                    };
                }
            }
        }
        let rest = &self.frame.as_str()[self.at..];
        let end = rest.find('\n').unwrap_or(rest.len());
        self.at += (end + 1).min(rest.len());
        Ok(Some(&rest[..end]))
    }
}

/// Parses one JSON line from the server; a line that is not a JSON object with a `type` is an
/// error, because the door promises nothing else.
fn parse(line: &str) -> Result<Incoming<'_>, ReadError> {
    serde_json::from_str(line).map_err(|e| {
        let shown: String = line.chars().take(200).collect();
        ReadError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not a JSON line from the web door ({e}): {shown}"),
        ))
    })
}

fn bytes(text: Cow<'_, str>) -> Cow<'_, [u8]> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

fn into_io(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        other => io::Error::other(other),
    }
}

/// Upgrades a fresh connection to `addr` to a WebSocket, says `hello` as `name`, and reads on
/// through the welcome and the join's history, all by `deadline`.
pub async fn register(
    stream: Stream,
    addr: SocketAddr,
    secure: bool,
    name: &str,
    deadline: Instant,
) -> Result<(WebReader, WebWriter), String> {
    let fail = |what: &str, error: &dyn std::fmt::Display| format!("{name}: {what}: {error}");
    let (ws_scheme, http_scheme) = if secure {
        ("wss", "https")
    } else {
        ("ws", "http")
    };
    // `SocketAddr` prints an IPv6 address in brackets, as a URI and a Host header want it.
    let uri = format!("{ws_scheme}://{addr}/ws")
        .parse()
        .map_err(|e| fail("the WebSocket URI", &e))?;
    let request =
        ClientRequestBuilder::new(uri).with_header("Origin", format!("{http_scheme}://{addr}"));
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let upgrade = async_tungstenite::client_async_with_config(request, stream, Some(config));
    let (ws, _response) = future::or(
        async { upgrade.await.map_err(|e| fail("upgrading /ws", &e)) },
        async {
            Timer::at(deadline).await;
            Err(format!("{name}: the WebSocket upgrade timed out"))
        },
    )
    .await?;
    let (tx, rx) = ws.split();
    let mut writer = WebWriter { tx };
    let mut reader = WebReader {
        rx,
        frame: Utf8Bytes::default(),
        at: 0,
    };
    writer
        .send(&Outgoing::Hello { name }, deadline)
        .await
        .map_err(|e| fail("sending hello", &e))?;
    let mut welcomed = false;
    loop {
        let line = match reader.next_line(deadline, true).await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(format!("{name}: closed during registration")),
            Err(error) => return Err(fail("registering over the web door", &error)),
        };
        let incoming = parse(line).map_err(|e| fail("registering", &e))?;
        match &*incoming.kind {
            "welcome" => welcomed = true,
            "history" if welcomed && incoming.done => break,
            "error" | "bye" => return Err(format!("{name}: refused: {line}")),
            "prompt"
                if incoming
                    .field
                    .is_some_and(|Text(field)| field == "password") =>
            {
                return Err(format!("{name}: asked for a password (a registered name?)"))
            }
            _ => {}
        }
    }
    Ok((reader, writer))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Server objects parse with borrowed fields; escaped text is unescaped; unknown fields and
    /// history lines are skipped.
    #[test]
    fn server_objects() {
        let line = r#"{"type":"line","id":42,"time":1764000000000,"room":"lobby","sender":"b1","kind":"say","text":"s1 n2 t3"}"#;
        let m = parse(line).unwrap();
        assert_eq!(m.kind, "line");
        assert!(matches!(m.sender, Some(Text(Cow::Borrowed("b1")))));
        assert!(matches!(m.text, Some(Text(Cow::Borrowed("s1 n2 t3")))));
        let m = parse(r#"{"type":"line","sender":"b1","text":"a \"quote\""}"#).unwrap();
        assert_eq!(
            m.text.map(|Text(t)| t.into_owned()).as_deref(),
            Some("a \"quote\"")
        );
        let m = parse(r#"{"type":"history","room":"lobby","page":"join","lines":[{"id":1,"text":"x"}],"done":true,"older":"none"}"#).unwrap();
        assert!(m.done && m.text.is_none());
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"no":"type"}"#).is_err());
    }

    /// What the page sends.
    #[test]
    fn client_objects() {
        let say = serde_json::to_string(&Outgoing::Say { text: "hi \"x\"" }).unwrap();
        assert_eq!(say, r#"{"type":"say","text":"hi \"x\""}"#);
        let hello = serde_json::to_string(&Outgoing::Hello { name: "b0" }).unwrap();
        assert_eq!(hello, r#"{"type":"hello","name":"b0"}"#);
    }
}
