//! The real server with its web door on, and a WebSocket client for the JSON protocol
//! (tungstenite, blocking, with the page's own `Origin`), for the web door's tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::{self, Message};
use serde_json::Value;
use socket2::{Domain, Socket, Type};

use super::{Server, TIMEOUT};

/// A running server and the address of its `--web-listen`.
pub struct WebServer {
    pub server: Server,
    pub addr: SocketAddr,
}

/// A free port on loopback, to give the web listener a port that stays the same across a
/// restart (a page reconnects to the address it was loaded from).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

impl WebServer {
    /// Starts the server with `--web-listen 127.0.0.1:0` and `extra` flags.
    pub fn start(extra: &[&str]) -> WebServer {
        let mut args = vec!["--web-listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let (server, addr) = Server::start_until(&args, "listening for web on ");
        let addr = addr.parse().expect("web address");
        WebServer { server, addr }
    }

    /// Starts the server on `dir`'s database with the web door on `addr` (a restart).
    pub fn start_in(dir: tempfile::TempDir, addr: SocketAddr, extra: &[&str]) -> WebServer {
        let web = addr.to_string();
        let mut args = vec!["--web-listen", web.as_str()];
        args.extend_from_slice(extra);
        WebServer {
            server: Server::start_in(dir, &args),
            addr,
        }
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// A WebSocket client and the objects read but not yet looked at (a frame may hold several).
pub struct Ws {
    pub ws: tungstenite::WebSocket<TcpStream>,
    pending: Vec<Value>,
}

/// Opens the WebSocket as the page would (its own origin) and reads the name prompt.
pub fn ws_connect(addr: SocketAddr) -> Ws {
    let mut ws = ws_open(addr).expect("handshake");
    let prompt = next_of(&mut ws, "prompt");
    assert_eq!(prompt["field"], "name", "{prompt}");
    ws
}

/// Opens the WebSocket as the page would, without reading anything.
pub fn ws_open(addr: SocketAddr) -> Result<Ws, String> {
    let ws = ws_raw(addr)?;
    Ok(Ws {
        ws,
        pending: Vec::new(),
    })
}

/// The bare WebSocket, opened with the page's origin.
pub fn ws_raw(addr: SocketAddr) -> Result<tungstenite::WebSocket<TcpStream>, String> {
    ws_on(TcpStream::connect(addr).expect("connect"), addr)
}

/// Opens the WebSocket over HTTPS (`--web-tls-listen`) trusting `cert`, as a page loaded from
/// `https://localhost:PORT` would, and reads the name prompt.
pub fn wss_connect(addr: SocketAddr, cert: &super::cert::Cert) -> WssClient {
    let stream = super::cert::tls_stream(addr, cert);
    let host = format!("localhost:{}", addr.port());
    let mut request = format!("wss://{host}/ws")
        .into_client_request()
        .expect("request");
    let origin = format!("https://{host}").parse().expect("header");
    request.headers_mut().insert("origin", origin);
    let (ws, _) = tungstenite::client(request, stream).expect("handshake");
    let mut ws = WssClient { ws };
    let first = ws.next().expect("prompt");
    assert_eq!(first["type"], "prompt", "{first}");
    ws
}

/// A WebSocket over TLS: one object per frame is enough for the dialogues it drives.
pub struct WssClient {
    pub ws: tungstenite::WebSocket<
        futures_rustls::rustls::StreamOwned<futures_rustls::rustls::ClientConnection, TcpStream>,
    >,
}

impl WssClient {
    pub fn send(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .expect("send");
    }

    /// The first object of the next text frame.
    pub fn next(&mut self) -> Option<Value> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let line = text.as_str().lines().next().unwrap_or("");
                    return Some(serde_json::from_str(line).expect("json"));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Reads frames until one holds `needle`.
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            match self.ws.read() {
                Ok(Message::Text(text)) if text.as_str().contains(needle) => {
                    return text.as_str().to_owned()
                }
                Ok(_) => continue,
                Err(e) => panic!("closed while waiting for {needle:?}: {e}"),
            }
        }
        panic!("no {needle:?} within the timeout");
    }
}

/// Opens the WebSocket on a connected `stream` (one with a small receive window, say).
pub fn ws_on(
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<tungstenite::WebSocket<TcpStream>, String> {
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    let origin = format!("http://{addr}").parse().expect("header");
    request.headers_mut().insert("origin", origin);
    tungstenite::client(request, stream)
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

/// Sends one JSON message.
pub fn send(ws: &mut Ws, value: Value) {
    ws.ws.send(Message::text(value.to_string())).expect("send");
}

/// The next JSON object from the server (a frame may hold several), `None` once closed.
pub fn next(ws: &mut Ws) -> Option<Value> {
    loop {
        if !ws.pending.is_empty() {
            return Some(ws.pending.remove(0));
        }
        match ws.ws.read() {
            Ok(Message::Text(text)) => {
                for line in text.as_str().lines().filter(|l| !l.is_empty()) {
                    ws.pending.push(serde_json::from_str(line).expect("json"));
                }
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Reads objects until one of `kind` arrives, and returns it; panics after [`TIMEOUT`] or on
/// close, with what was read.
pub fn next_of(ws: &mut Ws, kind: &str) -> Value {
    next_where(ws, kind, |_| true)
}

/// Reads objects until one of `kind` satisfies `check`.
pub fn next_where(ws: &mut Ws, kind: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Some(value) = next(ws) else {
            panic!("closed while waiting for {kind}; read: {seen:?}");
        };
        if value["type"] == kind && check(&value) {
            return value;
        }
        seen.push(value);
    }
    panic!("no {kind} within the timeout; read: {seen:?}");
}

/// Connects and registers `name`; returns the socket after the join replay's last chunk.
pub fn ws_join(addr: SocketAddr, name: &str) -> Ws {
    join_on(ws_connect(addr), name)
}

/// Registers `name` on a connection with a small receive window (see
/// [`super::Client::connect_small_window`]).
pub fn ws_join_small_window(addr: SocketAddr, name: &str) -> Ws {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
    socket
        .set_recv_buffer_size(super::SMALL_WINDOW)
        .expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    let ws = ws_on(socket.into(), addr).expect("handshake");
    let mut ws = Ws {
        ws,
        pending: Vec::new(),
    };
    next_of(&mut ws, "prompt");
    join_on(ws, name)
}

fn join_on(mut ws: Ws, name: &str) -> Ws {
    send(&mut ws, serde_json::json!({"type": "hello", "name": name}));
    next_of(&mut ws, "welcome");
    next_where(&mut ws, "history", |h| h["done"] == true);
    ws
}

/// A TCP relay in front of a server that can cut its connections the way a network does: the
/// client's side is closed (a browser sees its WebSocket drop), while the server's side is left
/// open and silent, so the server still holds the session until its pings find it dead.
pub struct Relay {
    pub addr: SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<RelayState>>,
}

#[derive(Default)]
struct RelayState {
    /// Each relayed connection: the client's side and the server's.
    pairs: Vec<(TcpStream, TcpStream)>,
    /// Server sides of cut connections, kept open (never dropped, so never closed).
    held: Vec<TcpStream>,
    /// Bumped by each cut: a copying thread of an older generation stops without closing
    /// anything.
    generation: u64,
}

impl Relay {
    /// Relays a new loopback port to `to`.
    pub fn start(to: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = std::sync::Arc::new(std::sync::Mutex::new(RelayState::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(to) else {
                    continue;
                };
                let mut state = shared.lock().expect("relay state");
                let generation = state.generation;
                let (Ok(c), Ok(s)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                state.pairs.push((c, s));
                drop(state);
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let shared = shared.clone();
                    std::thread::spawn(move || copy(from, to, &shared, generation));
                }
            }
        });
        Relay { addr, state }
    }

    /// Cuts every connection relayed so far (see [`Relay`]).
    pub fn cut(&self) {
        let mut state = self.state.lock().expect("relay state");
        state.generation += 1;
        for (client, server) in std::mem::take(&mut state.pairs) {
            let _ = client.shutdown(std::net::Shutdown::Both);
            state.held.push(server);
        }
    }
}

/// Copies `from` to `to` until either ends; after a cut, stops without passing the end on.
fn copy(
    mut from: TcpStream,
    mut to: TcpStream,
    state: &std::sync::Mutex<RelayState>,
    generation: u64,
) {
    use std::io::{Read, Write};
    let mut buf = [0; 16 * 1024];
    loop {
        let n = from.read(&mut buf).unwrap_or(0);
        let cut = state.lock().map_or(true, |s| s.generation != generation);
        if cut {
            return;
        }
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            let _ = to.shutdown(std::net::Shutdown::Write);
            return;
        }
    }
}
