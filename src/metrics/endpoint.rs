//! The `/metrics` endpoint of `--metrics-listen`: HTTP/1.1, GET or HEAD, the Prometheus text
//! format. Anything else gets its error status (404 for other paths).
//!
//! Requests are read by the web door's [`HeadReader`], with its bounds on bytes, headers and
//! time, so a client that trickles bytes holds neither memory nor a task for long; at most
//! [`MAX_SCRAPERS`] connections are served at once, the rest are answered 503 and closed. The
//! listener should be on loopback or a private network: the numbers are not secret, but they
//! are nobody else's business, and there is no authentication.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};
use smol::{Async, Executor, Timer};

use super::{Metrics, CONTENT_TYPE};
use crate::wire::http::{HeadError, HeadReader, Limits, Method, Request, Response, Status};

/// Scrapers served at once. A Prometheus server keeps one connection per target, so two
/// replicas and a person with curl fit with room to spare; more is a client misbehaving.
pub const MAX_SCRAPERS: usize = 8;

/// The one path served.
pub const PATH: &str = "/metrics";

/// Bounds on a scraper's requests: the web door's, with a longer idle time, since Prometheus
/// keeps its connection open between scrapes (every 15 s to 1 min).
fn limits() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(90),
        max_requests: 10_000,
        ..Limits::default()
    }
}

/// Serves scrapes on `listener` until the task is cancelled (when the server's executor is
/// dropped at shutdown). Each connection runs in its own task on `executor`.
pub async fn serve(
    listener: Async<TcpListener>,
    metrics: Metrics,
    executor: Arc<Executor<'static>>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, most likely: the chat's listeners say so too. Wait
                // rather than spin on the pending connection.
                warn!("metrics: accept failed: {e}");
                Timer::after(Duration::from_millis(500)).await;
                continue;
            }
        };
        let slot = Slot::take(&active);
        let metrics = metrics.clone();
        executor
            .spawn(async move {
                let result = match slot {
                    Some(_slot) => serve_connection(stream, peer, &metrics).await,
                    None => busy(stream).await,
                };
                if let Err(e) = result {
                    debug!("{peer}: metrics: {e}");
                }
            })
            .detach();
    }
}

/// A place among the [`MAX_SCRAPERS`], given back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(active: &Arc<AtomicUsize>) -> Option<Slot> {
        let taken = active.fetch_add(1, Ordering::AcqRel) < MAX_SCRAPERS;
        let slot = Slot(active.clone());
        taken.then_some(slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Tells a connection over [`MAX_SCRAPERS`] to come back later.
async fn busy(mut stream: Async<TcpStream>) -> io::Result<()> {
    Response::error(Status::ServiceUnavailable)
        .write(&mut stream)
        .await
}

/// Answers one scraper's requests until it closes, goes idle, or sends a bad request.
async fn serve_connection(
    mut stream: Async<TcpStream>,
    peer: SocketAddr,
    metrics: &Metrics,
) -> io::Result<()> {
    let limits = limits();
    let mut reader = HeadReader::new();
    let mut deadline = Instant::now() + limits.head_timeout;
    let mut served = 0;
    loop {
        let request = match reader.read(&mut stream, &limits, deadline).await {
            Ok(Some(request)) => request,
            Ok(None) | Err(HeadError::Timeout { partial: false }) => return Ok(()),
            Err(HeadError::Io(e)) => return Err(e),
            Err(e) => {
                crate::log_throttled!(log::Level::Warn, "metrics-head", "{peer}: metrics: {e}");
                let status = e.status().unwrap_or(Status::BadRequest);
                return Response::error(status).write(&mut stream).await;
            }
        };
        served += 1;
        debug!("{peer}: metrics: {:?} {}", request.method, request.path);
        let mut response = answer(&request, metrics);
        response.close |= !request.keep_alive() || served >= limits.max_requests;
        response.write(&mut stream).await?;
        if response.close {
            return Ok(());
        }
        deadline = Instant::now() + limits.idle_timeout;
    }
}

/// The answer to one request.
fn answer(request: &Request, metrics: &Metrics) -> Response {
    if request.has_body() {
        return Response::error(Status::PayloadTooLarge);
    }
    if request.minor >= 1 && request.header_str("host").is_none() {
        // RFC 9112 section 3.2: a request without exactly one Host is answered 400.
        return Response::error(Status::BadRequest);
    }
    if request.path != PATH {
        return Response::error(Status::NotFound);
    }
    match request.method {
        Method::Get | Method::Head => {
            let mut response = Response::owned(Status::Ok, metrics.encode().into_bytes());
            response.header("content-type", CONTENT_TYPE);
            response.header("cache-control", "no-store");
            response.head_only = request.method == Method::Head;
            response
        }
        Method::Other => {
            let mut response = Response::error(Status::MethodNotAllowed);
            response.header("allow", "GET, HEAD");
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> Request {
        let mut stream = smol::io::Cursor::new(text.as_bytes().to_vec());
        let deadline = Instant::now() + Duration::from_secs(5);
        smol::block_on(HeadReader::new().read(&mut stream, &Limits::default(), deadline))
            .expect("a head")
            .expect("a request")
    }

    fn status(response: &Response) -> u16 {
        response.status.line().0
    }

    /// GET and HEAD of /metrics answer the text format; other paths, methods and bodies get
    /// their error status.
    #[test]
    fn answers() {
        let metrics = Metrics::new(false);
        let get = answer(
            &request("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            &metrics,
        );
        assert_eq!(status(&get), 200);
        let text = String::from_utf8(get.encode()).expect("utf-8");
        assert!(text.contains(&format!("content-type: {CONTENT_TYPE}\r\n")));
        assert!(text.contains("# TYPE smolchat_connections gauge"), "{text}");
        let head = answer(&request("HEAD /metrics HTTP/1.0\r\n\r\n"), &metrics);
        assert!(head.encode().ends_with(b"\r\n\r\n"));
        for (text, code) in [
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            ("GET /metrics/ HTTP/1.1\r\nHost: x\r\n\r\n", 404),
            ("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 405),
            ("GET /metrics HTTP/1.1\r\n\r\n", 400),
            (
                "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n",
                413,
            ),
        ] {
            assert_eq!(status(&answer(&request(text), &metrics)), code, "{text:?}");
        }
    }

    /// Past [`MAX_SCRAPERS`] no slot is given, and dropped slots are given back.
    #[test]
    fn slots_are_bounded() {
        let active = Arc::new(AtomicUsize::new(0));
        let slots: Vec<_> = (0..MAX_SCRAPERS)
            .map(|_| Slot::take(&active).expect("a slot"))
            .collect();
        assert!(Slot::take(&active).is_none());
        drop(slots);
        assert_eq!(active.load(Ordering::Acquire), 0);
        assert!(Slot::take(&active).is_some());
    }
}
