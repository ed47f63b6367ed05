//! The web door's HTTP and WebSocket edge over real TCP, against the real server
//! (`--web-listen`): the page's files and headers, the limits' answers, the origin check on the
//! upgrade, and the WebSocket's close codes.
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::Message;
use common::web::{ws_connect, WebServer, Ws};
use common::TIMEOUT;

/// Sends `request` raw and reads the answer until the server closes or `TIMEOUT`.
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.write_all(request).expect("write");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra}\r\n")
}

/// The page, its script, its style and its icon are served with their types, lengths and the
/// security headers; HEAD gets the same headers and no body.
#[test]
fn files_are_served_with_security_headers() {
    let fake = WebServer::start(&[]);
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let answer = exchange(fake.addr, get(path, "").as_bytes());
        let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
        let head = format!("{head}\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {head}");
        assert!(
            head.contains(&format!("content-type: {content_type}\r\n")),
            "{head}"
        );
        assert!(
            head.contains(&format!("content-length: {}\r\n", body.len())),
            "{head}"
        );
        for header in [
            "content-security-policy: default-src 'self'; script-src 'self';",
            "frame-ancestors 'none'",
            "x-content-type-options: nosniff\r\n",
            "referrer-policy: no-referrer\r\n",
            "cache-control: no-cache\r\n",
            "connection: close\r\n",
        ] {
            assert!(head.contains(header), "{path} lacks {header:?}:\n{head}");
        }
        assert!(!head.to_ascii_lowercase().contains("set-cookie"));
    }
    let head = exchange(
        fake.addr,
        b"HEAD / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    assert!(!head.contains("<html"));
}

/// A kept-alive connection serves several requests, pipelined or not, and a current ETag gets
/// 304 without the body.
#[test]
fn keep_alive_and_validators() {
    let fake = WebServer::start(&[]);
    let first = exchange(fake.addr, get("/app.css", "").as_bytes());
    let etag = first
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("etag")
        .to_owned();
    let two = format!(
        "GET /app.js HTTP/1.1\r\nHost: a\r\n\r\nGET /app.css HTTP/1.1\r\nHost: a\r\n\
         If-None-Match: {etag}\r\nConnection: close\r\n\r\n"
    );
    let answers = exchange(fake.addr, two.as_bytes());
    assert_eq!(answers.matches("HTTP/1.1 ").count(), 2, "{answers}");
    assert!(answers.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(answers.contains("HTTP/1.1 304 Not Modified\r\n"));
    assert!(answers.ends_with("\r\n\r\n"), "the 304 has no body");
}

/// Unknown paths, other methods, bodies, missing Host, oversized heads and garbage get their
/// status and the connection closes.
#[test]
fn limits_and_errors_are_answered() {
    let fake = WebServer::start(&[]);
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let many = format!("GET / HTTP/1.1\r\nHost: a\r\n{}\r\n", "X: 1\r\n".repeat(70));
    let missing = get("/nope", "");
    let cases: [(&[u8], &str); 7] = [
        (missing.as_bytes(), "404 Not Found"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            "405 Method Not Allowed",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
            "413 Content Too Large",
        ),
        (b"GET / HTTP/1.1\r\n\r\n", "400 Bad Request"),
        (huge.as_bytes(), "431 Request Header Fields Too Large"),
        (many.as_bytes(), "431 Request Header Fields Too Large"),
        (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
            "400 Bad Request",
        ),
    ];
    for (request, status) in cases {
        let answer = exchange(fake.addr, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{answer}"
        );
        assert!(answer.contains("connection: close\r\n"), "{answer}");
        assert!(answer.contains("x-content-type-options: nosniff\r\n"));
    }
    let post = exchange(fake.addr, b"POST / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(post.contains("allow: GET, HEAD\r\n"), "{post}");
}

fn upgrade(addr: SocketAddr, origin: Option<&str>, host: &str, version: &str) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\
         {origin}\r\n"
    );
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The upgrade is allowed from the page's own origin and from programs without an Origin, and
/// refused (403) from another site, another port, and a foreign name pointed at loopback.
#[test]
fn websocket_upgrade_checks_the_origin() {
    let fake = WebServer::start(&[]);
    let host = fake.addr.to_string();
    let own = format!("http://{host}");
    let accept = "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    for origin in [Some(own.as_str()), None] {
        let head = upgrade(fake.addr, origin, &host, "13");
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        assert!(head.contains(accept), "{head}");
    }
    let other_port = format!("http://127.0.0.1:{}", fake.addr.port() + 1);
    for (origin, host) in [
        ("http://evil.example", host.as_str()),
        (other_port.as_str(), host.as_str()),
        ("null", host.as_str()),
        ("http://evil.example:80", "evil.example:80"),
    ] {
        let head = upgrade(fake.addr, Some(origin), host, "13");
        assert!(
            head.starts_with("HTTP/1.1 403 Forbidden\r\n"),
            "{origin}: {head}"
        );
    }
    let old = upgrade(fake.addr, Some(&own), &host, "8");
    assert!(
        old.starts_with("HTTP/1.1 426 Upgrade Required\r\n"),
        "{old}"
    );
    assert!(old.contains("sec-websocket-version: 13\r\n"));
}

/// The close frame the server ends with.
fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    loop {
        match ws.ws.read() {
            Ok(Message::Close(frame)) => return frame.map(|f| f.code),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Text frames are answered; a binary frame is closed with 1003 and a message over the size
/// limit with 1009, each logged; a bad message gets an error and the connection stays.
#[test]
fn websocket_close_codes() {
    let fake = WebServer::start(&[]);
    let mut ws = ws_connect(fake.addr);
    ws.ws
        .send(Message::text("{\"type\":\"nonsense\"}"))
        .expect("send");
    let error = ws.ws.read().expect("error").into_text().expect("text");
    assert!(error.contains("\"code\":\"bad_message\""), "{error}");
    let long = format!("{{\"type\":\"say\",\"text\":\"{}\"}}", "a".repeat(1025));
    ws.ws.send(Message::text(long)).expect("send");
    let error = ws.ws.read().expect("error").into_text().expect("text");
    assert!(error.contains("\"code\":\"too_long\""), "{error}");
    ws.ws
        .send(Message::text("{\"type\":\"hello\",\"name\":\"ann\"}"))
        .expect("send");
    let welcome = ws.ws.read().expect("welcome").into_text().expect("text");
    assert!(welcome.contains("\"type\":\"welcome\""), "{welcome}");
    ws.ws.send(Message::binary(vec![1, 2, 3])).expect("send");
    assert_eq!(close_code(&mut ws), Some(CloseCode::Unsupported));
    // Each limit is logged as a warning (aggregated per kind), in chat and at the name prompt.
    fake.server
        .wait_log("WARN  [smolchat::door::web::ws] 127.0.0.1:");
    fake.server
        .wait_log("binary frame (text only), disconnecting");

    let mut ws = ws_connect(fake.addr);
    ws.ws
        .send(Message::text("x".repeat(8 * 1024)))
        .expect("send");
    assert_eq!(close_code(&mut ws), Some(CloseCode::Size));
    fake.server
        .wait_log("message over 7168 bytes, disconnecting");
}
