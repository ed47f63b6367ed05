//! The web door: a chat page served by the same binary, talking JSON over a WebSocket.
//!
//! A connection on a web listener starts as HTTP/1.1: [`serve`] answers the page's files
//! (kept alive between requests, within [`Limits`]) until the page asks for the WebSocket,
//! then checks the upgrade and its origin and hands back an [`Upgraded`] connection: a
//! [`WebSocket`] that carries [`protocol`] messages, and the client's address as the door
//! believes it (see [`TrustProxy`]).
//!
//! - `wire/http.rs`: request heads read with bounded bytes, headers and time (`httparse`);
//!   responses (shared with the metrics endpoint).
//! - [`assets`]: the page's files (built in) and the security headers every answer carries.
//! - [`origin`]: who may open the WebSocket (cross-site hijacking, DNS rebinding), and the
//!   client's address and scheme behind a trusted reverse proxy.
//! - [`ws`]: the upgrade's answer and the framing (`async-tungstenite`): text only, bounded
//!   messages, pings to silent clients, close codes.
//! - [`protocol`]: the JSON messages both ways (docs/WEB.md).
//! - [`render`]: the hub's events as those messages (`Json`, the door's renderer).
//! - `session.rs`: one connection: [`serve`], then the name prompt (and the password for a
//!   registered name, only over HTTPS or from loopback); `chat.rs`: the welcome, the replay
//!   or resume, and the loop; `replay.rs`: history as `history` objects; `search.rs`;
//!   `reclaim.rs`: the resume tokens that let a page take its own name back from its stale
//!   session after a blip.
//!
//! The HTTP, origin, framing and JSON layers know nothing of the hub, sessions or storage; the
//! session turns [`protocol::ClientMsg`] into the hub's intents, and the renderer writes each
//! event once per door kind into outboxes that [`WebSocket::send_utf8`] sends as one frame. What
//! the page types goes through the line door's command table and the sentences shown are the
//! line door's words, so both doors have the same commands and say the same things.

mod account;
pub mod assets;
mod chat;
mod conn;
pub mod origin;
pub mod protocol;
mod reclaim;
pub mod render;
mod replay;
mod search;
mod session;
pub mod ws;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use log::debug;
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use smol::Timer;

pub use crate::wire::http::Limits;
pub use origin::{Origin, Scheme, TrustProxy};
pub use session::run;
pub use ws::WebSocket;

use crate::hub::render::RendererId;
use crate::session::TurnedAway;
use crate::wire::http::{HeadError, HeadReader, Method, Request, Response, Status};

/// What every web session shares, set up once at start-up.
#[derive(Clone)]
pub struct Door {
    /// The door's renderer (JSON).
    pub renderer: RendererId,
    /// The resume tokens of the sessions registered now.
    tokens: Arc<reclaim::Tokens>,
}

impl Door {
    pub fn new(renderer: RendererId) -> Door {
        Door {
            renderer,
            tokens: Arc::default(),
        }
    }
}

/// How one web listener serves.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `Http` for `--web-listen`, `Https` for `--web-tls-listen`.
    pub scheme: Scheme,
    /// Origins allowed to open the WebSocket besides the page's own (`--web-origin`): a reverse
    /// proxy's public origin, when it does not pass `Host` and `X-Forwarded-Proto` through.
    pub origins: Vec<Origin>,
    /// Whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (`--trust-proxy`).
    pub trust_proxy: TrustProxy,
    /// The line door's `--max-line`: the longest text a page may send, in bytes.
    pub max_line: usize,
    pub limits: Limits,
}

impl WebConfig {
    /// A plain HTTP listener's settings with the default limits and no proxy.
    pub fn new(scheme: Scheme, max_line: usize) -> WebConfig {
        WebConfig {
            scheme,
            origins: Vec::new(),
            trust_proxy: TrustProxy::off(),
            max_line,
            limits: Limits::default(),
        }
    }
}

/// A connection that became a WebSocket, and what `serve`'s `admit` gave for its client.
pub struct Upgraded<S, A = ()> {
    pub socket: WebSocket<S>,
    /// The client's address: the peer's, or the one a trusted proxy forwarded. Per-address
    /// limits and bans apply to this one.
    pub client: IpAddr,
    /// Whether the page reached us over HTTPS (this listener's TLS, or a trusted proxy's):
    /// with loopback, what lets a password travel.
    pub secure: bool,
    /// Held for the WebSocket's life: the session's place under the client's address.
    pub admitted: A,
}

/// Serves one connection of a web listener until it closes (`Ok(None)`) or becomes a
/// WebSocket. Every limit hit is answered with its status (400, 408, 413, 431) and closes the
/// connection; `Err` is an I/O error (the client went away).
///
/// `admit` is asked about the client's address (the forwarded one behind a trusted proxy) once
/// the upgrade is otherwise valid, before it is answered: a refusal gets the answer a
/// connection refused at accept gets ([`turned_away`]), logged and counted by the caller.
pub async fn serve<S, A>(
    mut stream: S,
    peer: SocketAddr,
    config: &WebConfig,
    admit: impl FnOnce(IpAddr) -> Result<A, TurnedAway>,
) -> io::Result<Option<Upgraded<S, A>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let limits = &config.limits;
    let mut reader = HeadReader::new();
    let mut deadline = Instant::now() + limits.head_timeout;
    let mut served = 0;
    loop {
        let request = match reader.read(&mut stream, limits, deadline).await {
            Ok(Some(request)) => request,
            Ok(None) | Err(HeadError::Timeout { partial: false }) => return Ok(None),
            Err(HeadError::Io(e)) => return Err(e),
            Err(e) => {
                crate::log_throttled!(log::Level::Warn, "web-head", "{peer}: web: {e}");
                let status = e.status().unwrap_or(Status::BadRequest);
                let refusal = secured(Response::error(status));
                write_within(&refusal, &mut stream, limits, peer).await?;
                return Ok(None);
            }
        };
        served += 1;
        debug!("{peer}: web: {:?} {}", request.method, request.path);
        if request.path == assets::WS_PATH {
            return upgrade(stream, reader, &request, (peer, config), admit).await;
        }
        let mut response = answer(&request);
        response.close |= !request.keep_alive() || served >= limits.max_requests;
        write_within(&response, &mut stream, limits, peer).await?;
        if response.close {
            return Ok(None);
        }
        // The next head, kept alive, must arrive whole within the idle timeout.
        deadline = Instant::now() + limits.idle_timeout;
    }
}

/// The answer to a request for anything but the WebSocket.
fn answer(request: &Request) -> Response {
    if request.has_body() {
        return secured(Response::error(Status::PayloadTooLarge));
    }
    if request.minor >= 1 && request.header_str("host").is_none() {
        // RFC 9112 section 3.2: a request without exactly one Host is answered 400.
        return secured(Response::error(Status::BadRequest));
    }
    let Some(asset) = assets::find(&request.path) else {
        return secured(Response::error(Status::NotFound));
    };
    match request.method {
        Method::Get | Method::Head => assets::respond(
            asset,
            request.header_str("if-none-match"),
            request.method == Method::Head,
        ),
        Method::Other => {
            let mut response = Response::error(Status::MethodNotAllowed);
            response.header("allow", "GET, HEAD");
            secured(response)
        }
    }
}

/// Checks an upgrade (the handshake, then the origin) and answers it: `101` and the WebSocket,
/// or the refusal and `Ok(None)`.
async fn upgrade<S, A>(
    mut stream: S,
    reader: HeadReader,
    request: &Request,
    (peer, config): (SocketAddr, &WebConfig),
    admit: impl FnOnce(IpAddr) -> Result<A, TurnedAway>,
) -> io::Result<Option<Upgraded<S, A>>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let trust = &config.trust_proxy;
    let client = trust.client_addr(peer.ip(), request.headers_named("x-forwarded-for"));
    let secure = config.scheme == Scheme::Https
        || trust.forwarded_https(peer.ip(), request.headers_named("x-forwarded-proto"));
    let scheme = if secure { Scheme::Https } else { config.scheme };
    let mut admitted = None;
    let refusal = if request.has_body() {
        Some(Response::error(Status::PayloadTooLarge))
    } else {
        match ws::accept(request) {
            Err(e) => {
                crate::log_throttled!(log::Level::Warn, "web-upgrade", "{peer}: web: {e}");
                Some(e.response())
            }
            Ok(switching) => {
                match origin::check_origin(
                    request.header_str("origin"),
                    request.header_str("host"),
                    scheme,
                    &config.origins,
                    client,
                ) {
                    Ok(()) => match admit(client) {
                        Ok(admit) => {
                            write_within(&switching, &mut stream, &config.limits, peer).await?;
                            admitted = Some(admit);
                            None
                        }
                        Err(why) => {
                            let answer = format!("{}\n", turned_away(&why));
                            let answer = answer.as_bytes();
                            within(write_flushed(&mut stream, answer), &config.limits, peer)
                                .await?;
                            return Ok(None);
                        }
                    },
                    Err(e) => {
                        crate::log_throttled!(log::Level::Warn, "web-origin", "{peer}: web: {e}");
                        Some(Response::error(Status::Forbidden))
                    }
                }
            }
        }
    };
    if let Some(refusal) = refusal {
        write_within(&secured(refusal), &mut stream, &config.limits, peer).await?;
        return Ok(None);
    }
    let Some(admitted) = admitted else {
        return Ok(None);
    };
    let socket = WebSocket::new(stream, reader.into_buffered(), config.max_line).await;
    Ok(Some(Upgraded {
        socket,
        client,
        secure,
        admitted,
    }))
}

/// Writes `response` within the head timeout: a client that sends requests but never reads the
/// answers (the socket's buffers full) cannot hold the connection, its place under the
/// per-address cap and its task for ever. A timeout is an error, as the client going away is.
async fn write_within<S: AsyncWrite + Unpin>(
    response: &Response,
    stream: &mut S,
    limits: &Limits,
    peer: SocketAddr,
) -> io::Result<()> {
    within(response.write(stream), limits, peer).await
}

/// Writes `bytes` and flushes.
async fn write_flushed<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Runs a write within the head timeout (see [`write_within`]).
async fn within(
    write: impl std::future::Future<Output = io::Result<()>>,
    limits: &Limits,
    peer: SocketAddr,
) -> io::Result<()> {
    let timeout = async {
        Timer::after(limits.head_timeout).await;
        crate::log_throttled!(
            log::Level::Warn,
            "web-unread",
            "{peer}: web: answer not read within {} s, disconnecting",
            limits.head_timeout.as_secs()
        );
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "answer not read in time",
        ))
    };
    smol::future::or(write, timeout).await
}

/// `response` with the security headers.
fn secured(mut response: Response) -> Response {
    assets::secure(&mut response);
    response
}

/// What a connection refused at accept gets on a web port: an HTTP answer whose body is the
/// line door's sentence (the caller writes it and a newline). 403 for a ban, 429 for the
/// connect throttle and the per-address cap, 503 for a full server.
pub fn turned_away(why: &TurnedAway) -> String {
    let text = crate::door::line::words::turned_away(why);
    let status = match why {
        TurnedAway::Banned { .. } => "403 Forbidden",
        TurnedAway::TooManyConnects(_) | TurnedAway::TooManyFromAddress(_) => {
            "429 Too Many Requests"
        }
        TurnedAway::Full => "503 Service Unavailable",
    };
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\ncontent-security-policy: {}\r\n\
         x-content-type-options: nosniff\r\n\r\n{text}",
        text.len() + 1,
        assets::CSP
    )
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use super::*;

    /// A client that sends `input` and then nothing, and never reads: every write waits.
    struct Deaf {
        input: Vec<u8>,
    }

    impl AsyncRead for Deaf {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            if self.input.is_empty() {
                return Poll::Pending;
            }
            let n = buf.len().min(self.input.len());
            buf[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            Poll::Ready(Ok(n))
        }
    }

    impl AsyncWrite for Deaf {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    /// A client that asks for the page (or the WebSocket, or sends garbage) and never reads the
    /// answer is let go after the head timeout, instead of holding its connection for ever.
    #[test]
    fn a_client_that_never_reads_is_let_go() {
        let mut config = WebConfig::new(Scheme::Http, 512);
        config.limits.head_timeout = Duration::from_millis(50);
        let peer: SocketAddr = "127.0.0.1:5555".parse().expect("address");
        for input in [
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            "garbage\r\n\r\n",
        ] {
            let stream = Deaf {
                input: input.as_bytes().to_vec(),
            };
            let served = smol::block_on(smol::future::or(
                async { Some(serve(stream, peer, &config, Ok).await.map(|u| u.is_some())) },
                async {
                    Timer::after(Duration::from_secs(20)).await;
                    None
                },
            ));
            let Some(Err(e)) = served else {
                panic!("{input:?}: still serving a client that does not read");
            };
            assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{input:?}");
        }
    }
}
