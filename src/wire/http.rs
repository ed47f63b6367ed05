//! HTTP/1.1 request heads read with bounded memory and time, and responses written.
//!
//! The web door serves a handful of static files and one WebSocket upgrade, so it needs only
//! GET and HEAD without bodies: a request with a body is refused, which is what keeps this small.
//! Parsing is `httparse`'s (zero-copy, fuzzed upstream); what this module adds is the bounds, as
//! the line door's reads have them: the head is at most [`Limits::max_head`] bytes with at most
//! [`MAX_HEADERS`] headers, and must arrive whole before a deadline, so a client that trickles
//! bytes or sends an endless header holds neither memory nor a task for long.
//!
//! Nothing here knows which paths exist or what a WebSocket is, so the metrics endpoint
//! (`metrics/endpoint.rs`) reads its requests with the same bounds.

use std::borrow::Cow;
use std::io;
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::Timer;

/// Most headers one request may have. Not configurable: browsers send about 15 on a WebSocket
/// upgrade and 20 on a page load; 64 leaves room for proxies' additions.
pub const MAX_HEADERS: usize = 64;

/// Bytes read per call while a head is incomplete.
const READ_CHUNK: usize = 2048;

/// Bounds on one connection's requests.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most bytes in a request head (request line and headers). 8 KiB, as many servers allow:
    /// a browser's head with its user agent is under 2 KiB.
    pub max_head: usize,
    /// Time for a whole head to arrive, counted from its first byte (or, for the first request,
    /// from the accept). The line door's registration deadline bounds the whole page load the
    /// same way.
    pub head_timeout: Duration,
    /// Time a kept-alive connection may sit between requests before it is closed.
    pub idle_timeout: Duration,
    /// Requests served on one connection before it is closed (the page, its two files and the
    /// icon need four).
    pub max_requests: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 8 * 1024,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            max_requests: 100,
        }
    }
}

/// The request methods the door tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other,
}

/// A request head, validated: a method, an origin-form path without its query, and headers.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path, without the query string.
    pub path: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header names in lower case, values as received.
    headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// The value of header `name` (lower case), if it appears exactly once.
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        let mut values = self.headers_named(name);
        let first = values.next();
        match values.next() {
            None => first,
            Some(_) => None,
        }
    }

    /// The value of header `name` as text, if it appears once and is visible ASCII.
    pub fn header_str<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| v.bytes().all(|b| (b' '..=b'~').contains(&b)))
            .map(str::trim)
    }

    /// Every value of header `name` (lower case), in order.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Whether a comma-separated header (`Connection`, `Upgrade`) lists `token`, ignoring case.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers_named(name)
            .filter_map(|v| std::str::from_utf8(v).ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client wants the connection kept open after this request.
    pub fn keep_alive(&self) -> bool {
        match self.minor {
            0 => self.has_token("connection", "keep-alive"),
            _ => !self.has_token("connection", "close"),
        }
    }

    /// Whether a body follows the head (which the door refuses: it serves GET and HEAD only).
    pub fn has_body(&self) -> bool {
        self.headers_named("transfer-encoding").next().is_some()
            || self
                .headers_named("content-length")
                .any(|v| v.iter().any(|&b| b != b'0' && b != b' '))
    }
}

/// Why no request was read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The head passed [`Limits::max_head`] bytes (answered 431).
    #[error("request head over the size limit")]
    TooLarge,
    /// More than [`MAX_HEADERS`] headers (answered 431).
    #[error("too many headers")]
    TooManyHeaders,
    /// Not HTTP/1.x, or an unsupported request target (answered 400).
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The deadline passed; `partial` when part of a head had arrived (answered 408).
    #[error("request head not received in time")]
    Timeout { partial: bool },
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl HeadError {
    /// The status to answer with, or `None` when there is nobody to answer: the connection
    /// failed, or the deadline passed before a single byte came.
    pub fn status(&self) -> Option<Status> {
        match self {
            HeadError::TooLarge | HeadError::TooManyHeaders => Some(Status::HeadersTooLarge),
            HeadError::Malformed(_) => Some(Status::BadRequest),
            HeadError::Timeout { partial: true } => Some(Status::RequestTimeout),
            HeadError::Timeout { partial: false } | HeadError::Io(_) => None,
        }
    }
}

/// Reads request heads off one connection, keeping bytes that arrived after a head (the next
/// pipelined request, or nothing) for the next call.
#[derive(Debug, Default)]
pub struct HeadReader {
    buf: Vec<u8>,
}

impl HeadReader {
    pub fn new() -> HeadReader {
        HeadReader::default()
    }

    /// Whether bytes of a next request are already buffered.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Reads the next head. `Ok(None)` is a clean close before any byte of a new request.
    /// Cancel-safe: bytes read stay buffered.
    pub async fn read<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        limits: &Limits,
        deadline: Instant,
    ) -> Result<Option<Request>, HeadError> {
        let read = async {
            // Read into a chunk first: the buffer must hold only bytes received, even when the
            // deadline drops this future in the middle of a read.
            let mut chunk = [0u8; READ_CHUNK];
            loop {
                if let Some(request) = self.parse(limits.max_head)? {
                    return Ok(Some(request));
                }
                let want = READ_CHUNK.min(limits.max_head + 1 - self.buf.len());
                match stream.read(&mut chunk[..want]).await? {
                    0 if self.buf.is_empty() => return Ok(None),
                    0 => return Err(HeadError::Malformed("connection closed inside a head")),
                    n => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        };
        let timeout = async {
            Timer::at(deadline).await;
            None
        };
        match smol::future::or(async { Some(read.await) }, timeout).await {
            Some(result) => result,
            None => Err(HeadError::Timeout {
                partial: !self.buf.is_empty(),
            }),
        }
    }

    /// Parses a complete head off the front of the buffer, if there is one.
    fn parse(&mut self, max_head: usize) -> Result<Option<Request>, HeadError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Request::new(&mut headers);
        let status = parsed.parse(&self.buf).map_err(|e| match e {
            httparse::Error::TooManyHeaders => HeadError::TooManyHeaders,
            httparse::Error::Version => HeadError::Malformed("not HTTP/1.x"),
            _ => HeadError::Malformed("bad request head"),
        });
        let len = match status? {
            httparse::Status::Complete(len) if len <= max_head => len,
            httparse::Status::Complete(_) => return Err(HeadError::TooLarge),
            httparse::Status::Partial if self.buf.len() > max_head => {
                return Err(HeadError::TooLarge)
            }
            httparse::Status::Partial => return Ok(None),
        };
        let method = match parsed.method {
            Some("GET") => Method::Get,
            Some("HEAD") => Method::Head,
            _ => Method::Other,
        };
        let path = origin_path(parsed.path.unwrap_or_default())?;
        let request = Request {
            method,
            path,
            minor: parsed.version.unwrap_or(1),
            headers: parsed
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect(),
        };
        self.buf.drain(..len);
        Ok(Some(request))
    }

    /// The bytes read past the last head, for the WebSocket after an upgrade.
    pub fn into_buffered(self) -> Vec<u8> {
        self.buf
    }
}

/// The path of a request target: origin form (`/app.js?v=1`) as is, absolute form
/// (`http://host/app.js`, which RFC 9112 says servers must accept) by its path; the query is
/// dropped. `*` and authority form are refused.
fn origin_path(target: &str) -> Result<String, HeadError> {
    let target = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let rest = target.get(..scheme.len())?.eq_ignore_ascii_case(scheme);
            rest.then(|| &target[scheme.len()..])
        })
        .map_or(target, |rest| rest.find('/').map_or("/", |at| &rest[at..]));
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("request target not a path"));
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    Ok(path.to_owned())
}

/// An HTTP status the door answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    SwitchingProtocols,
    NotModified,
    BadRequest,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    PayloadTooLarge,
    UpgradeRequired,
    HeadersTooLarge,
    ServiceUnavailable,
}

impl Status {
    /// The status line's code and reason phrase.
    pub fn line(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::SwitchingProtocols => (101, "Switching Protocols"),
            Status::NotModified => (304, "Not Modified"),
            Status::BadRequest => (400, "Bad Request"),
            Status::Forbidden => (403, "Forbidden"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::RequestTimeout => (408, "Request Timeout"),
            Status::PayloadTooLarge => (413, "Content Too Large"),
            Status::UpgradeRequired => (426, "Upgrade Required"),
            Status::HeadersTooLarge => (431, "Request Header Fields Too Large"),
            Status::ServiceUnavailable => (503, "Service Unavailable"),
        }
    }
}

/// A response: status, headers, a body (static, or made for this request), and whether the
/// connection closes after it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: Status,
    pub headers: Vec<(&'static str, String)>,
    pub body: Cow<'static, [u8]>,
    /// Send the headers (with the body's length) but not the body: the answer to HEAD.
    pub head_only: bool,
    pub close: bool,
}

impl Response {
    /// A response with no headers yet.
    pub fn new(status: Status, body: &'static [u8]) -> Response {
        Response::owned(status, Cow::Borrowed(body))
    }

    /// A response with a body made for it (the metrics endpoint's scrape).
    pub fn owned(status: Status, body: impl Into<Cow<'static, [u8]>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
            head_only: false,
            close: false,
        }
    }

    /// An error page: a short plain-text body naming the status; the connection closes.
    pub fn error(status: Status) -> Response {
        let body: &'static [u8] = match status {
            Status::BadRequest => b"400 bad request\n",
            Status::Forbidden => b"403 forbidden\n",
            Status::NotFound => b"404 not found\n",
            Status::MethodNotAllowed => b"405 method not allowed: GET and HEAD only\n",
            Status::RequestTimeout => b"408 request timeout\n",
            Status::PayloadTooLarge => b"413 request bodies are not accepted\n",
            Status::UpgradeRequired => b"426 WebSocket version 13 required\n",
            Status::HeadersTooLarge => b"431 request head too large\n",
            Status::ServiceUnavailable => b"503 busy, try again later\n",
            _ => b"",
        };
        let mut response = Response::new(status, body);
        response.close = true;
        response.header("content-type", "text/plain; charset=utf-8");
        response
    }

    /// Adds a header.
    pub fn header(&mut self, name: &'static str, value: impl Into<String>) -> &mut Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The response's bytes: status line, headers, `Content-Length` (except on 101 and 304),
    /// `Connection`, and the body unless `head_only`.
    pub fn encode(&self) -> Vec<u8> {
        let (code, reason) = self.status.line();
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("HTTP/1.1 {code} {reason}\r\n").as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        let bodyless = matches!(
            self.status,
            Status::SwitchingProtocols | Status::NotModified
        );
        if !bodyless {
            out.extend_from_slice(format!("content-length: {}\r\n", self.body.len()).as_bytes());
        }
        if self.close {
            out.extend_from_slice(b"connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only && !bodyless {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// Writes the response and flushes it.
    pub async fn write<S: AsyncWrite + Unpin>(&self, stream: &mut S) -> io::Result<()> {
        stream.write_all(&self.encode()).await?;
        stream.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8], limits: &Limits) -> Vec<Result<Option<Request>, String>> {
        let mut stream = smol::io::Cursor::new(bytes.to_vec());
        let mut reader = HeadReader::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        smol::block_on(async {
            loop {
                let r = reader.read(&mut stream, limits, deadline).await;
                let stop = !matches!(r, Ok(Some(_)));
                out.push(r.map_err(|e| e.to_string()));
                if stop {
                    return;
                }
            }
        });
        out
    }

    /// Pipelined heads are read one by one, then a clean end of stream is `Ok(None)`.
    #[test]
    fn pipelined_heads_then_clean_close() {
        let bytes = b"GET /app.js?x=1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.0\r\n\r\n";
        let got = read_all(bytes, &Limits::default());
        assert_eq!(got.len(), 3);
        let first = got[0].as_ref().expect("ok").as_ref().expect("request");
        assert_eq!(
            (first.method, first.path.as_str()),
            (Method::Get, "/app.js")
        );
        assert_eq!(first.header_str("host"), Some("a"));
        assert!(first.keep_alive());
        let second = got[1].as_ref().expect("ok").as_ref().expect("request");
        assert_eq!((second.method, second.minor), (Method::Head, 0));
        assert!(!second.keep_alive());
        assert!(matches!(got[2], Ok(None)));
    }

    /// A head over the size cap, or with too many headers, is refused however it is cut.
    #[test]
    fn oversized_heads_are_refused() {
        let limits = Limits {
            max_head: 256,
            ..Limits::default()
        };
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(300));
        assert_eq!(
            read_all(long.as_bytes(), &limits)[0]
                .as_ref()
                .err()
                .map(String::as_str),
            Some("request head over the size limit")
        );
        let endless = "GET / HTTP/1.1\r\n".to_owned() + &"X: a\r\n".repeat(100);
        assert!(read_all(endless.as_bytes(), &limits)[0].is_err());
        let many = "GET / HTTP/1.1\r\n".to_owned() + &"X: a\r\n".repeat(65) + "\r\n";
        assert_eq!(
            read_all(many.as_bytes(), &Limits::default())[0]
                .as_ref()
                .err()
                .map(String::as_str),
            Some("too many headers")
        );
    }

    /// Garbage, a truncated head and HTTP/2's preface are malformed, never a panic.
    #[test]
    fn malformed_heads_are_refused() {
        for bad in [
            &b"\x16\x03\x01\x02\x00"[..],
            b"GET / HTTP/1.1\r\nHost",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET example.org:443 HTTP/1.1\r\n\r\n",
        ] {
            let got = read_all(bad, &Limits::default());
            assert!(got[0].is_err(), "{bad:?} gave {:?}", got[0]);
        }
    }

    /// Absolute-form targets are served by their path; queries and fragments are dropped.
    #[test]
    fn request_targets_become_paths() {
        assert_eq!(origin_path("/a?b#c").ok().as_deref(), Some("/a"));
        assert_eq!(
            origin_path("HTTP://h:1/x/y?q").ok().as_deref(),
            Some("/x/y")
        );
        assert_eq!(origin_path("https://h").ok().as_deref(), Some("/"));
        assert!(origin_path("*").is_err());
    }

    /// Bodies, connection tokens and repeated headers are read as RFC 9110 says.
    #[test]
    fn header_semantics() {
        let bytes = b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 0\r\n\
                      X: 1\r\nX: 2\r\n\r\n";
        let got = read_all(bytes, &Limits::default());
        let request = got[0].as_ref().expect("ok").as_ref().expect("request");
        assert!(request.has_token("connection", "upgrade"));
        assert!(!request.has_body());
        assert_eq!(
            request.header("x"),
            None,
            "a repeated header is not one value"
        );
        let body = b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let got = read_all(body, &Limits::default());
        assert!(got[0]
            .as_ref()
            .expect("ok")
            .as_ref()
            .expect("request")
            .has_body());
    }

    /// A client that sends part of a head and stalls gets `Timeout { partial: true }` at the
    /// deadline; one that sends nothing gets `partial: false` (closed without an answer).
    #[test]
    fn stalled_heads_time_out() {
        struct Stall(Option<&'static [u8]>);
        impl AsyncRead for Stall {
            fn poll_read(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<io::Result<usize>> {
                match self.0.take() {
                    Some(bytes) => {
                        buf[..bytes.len()].copy_from_slice(bytes);
                        std::task::Poll::Ready(Ok(bytes.len()))
                    }
                    None => std::task::Poll::Pending,
                }
            }
        }
        let limits = Limits::default();
        for (sent, partial) in [(Some(&b"GET / HT"[..]), true), (None, false)] {
            let deadline = Instant::now() + Duration::from_millis(30);
            let got = smol::block_on(HeadReader::new().read(&mut Stall(sent), &limits, deadline));
            assert!(
                matches!(got, Err(HeadError::Timeout { partial: p }) if p == partial),
                "{got:?}"
            );
        }
    }

    /// A response carries its length, and HEAD gets the headers without the body.
    #[test]
    fn responses_encode() {
        let mut response = Response::new(Status::Ok, b"hello");
        response.header("content-type", "text/plain");
        let text = String::from_utf8(response.encode()).expect("utf-8");
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nhello"
        );
        response.head_only = true;
        assert!(String::from_utf8(response.encode())
            .expect("utf-8")
            .ends_with("content-length: 5\r\n\r\n"));
        let error = String::from_utf8(Response::error(Status::NotFound).encode()).expect("utf-8");
        assert!(error.contains("connection: close\r\n"));
    }
}
