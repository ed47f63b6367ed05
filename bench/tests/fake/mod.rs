//! Fake doors for the bench's tests: a tiny hub with a line door, an IRC door and a web door onto
//! one room, speaking what docs/PROTOCOL.md, docs/IRC.md and docs/WEB.md promise, so the bench's
//! IRC and web clients are pinned before the server's doors are wired.
//!
//! It is deliberately a little awkward where real servers are: the IRC door holds the welcome
//! until the client answers a `PING`, pings members every few relayed lines and counts the
//! answers, sends numerics and join lines the bench must skip, and replays the room's
//! recent lines (earlier runs' among them) after the join; the web door refuses an upgrade whose
//! `Origin` is not the page's own and sends several JSON lines per frame. It keeps no limits and
//! stores nothing on disk.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::Message;
use serde_json::json;
use smol::channel::{self, Receiver, Sender};
use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use smol::net::{TcpListener, TcpStream};
use smol::stream::StreamExt;
use smol::Executor;

/// The capabilities the fake IRC door offers.
const CAPS: [&str; 4] = ["server-time", "message-tags", "echo-message", "batch"];

/// Every how many relayed lines the IRC door pings its members.
const PING_EVERY: u64 = 7;

/// Relayed lines kept for the replay on joining: enough to hold a whole earlier run of a test,
/// sync line included, so a client that took a replayed line for a live one would be caught.
const HISTORY: usize = 200;

/// The fake server, on three loopback ports; stopped when dropped.
pub struct FakeDoors {
    pub line: SocketAddr,
    pub irc: SocketAddr,
    pub web: SocketAddr,
    counters: Arc<Counters>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// What the fake counts for the tests to check.
#[derive(Default)]
struct Counters {
    pings_sent: AtomicU64,
    pongs: AtomicU64,
    origins_refused: AtomicU64,
}

impl FakeDoors {
    /// Binds the three doors on `127.0.0.1:0` and serves them on a thread of their own.
    pub fn start() -> FakeDoors {
        let bind = || std::net::TcpListener::bind("127.0.0.1:0").expect("bind a fake door");
        let (line, irc, web) = (bind(), bind(), bind());
        let addr = |l: &std::net::TcpListener| l.local_addr().expect("local address");
        let (line_addr, irc_addr, web_addr) = (addr(&line), addr(&irc), addr(&web));
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = channel::bounded::<()>(1);
        let shared = counters.clone();
        let thread = std::thread::spawn(move || {
            let ex = Arc::new(Executor::new());
            let hub = Arc::new(Mutex::new(Hub::default()));
            let serve = |listener: std::net::TcpListener, door: Door| {
                let listener = TcpListener::try_from(listener).expect("async listener");
                let (ex2, hub, counters) = (ex.clone(), hub.clone(), shared.clone());
                ex.spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        let (hub, counters) = (hub.clone(), counters.clone());
                        ex2.spawn(connection(stream, door, hub, counters, ex2.clone()))
                            .detach();
                    }
                })
                .detach();
            };
            serve(line, Door::Line);
            serve(irc, Door::Irc);
            serve(web, Door::Web);
            // Ends when `FakeDoors` drops the sender; dropping the executor then ends every task.
            smol::block_on(ex.run(async {
                let _ = stopped.recv().await;
            }));
        });
        FakeDoors {
            line: line_addr,
            irc: irc_addr,
            web: web_addr,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Pings the IRC door sent to members in the room.
    pub fn pings_sent(&self) -> u64 {
        self.counters.pings_sent.load(Ordering::SeqCst)
    }

    /// Answers to those pings, each with its ping's token.
    pub fn pongs(&self) -> u64 {
        self.counters.pongs.load(Ordering::SeqCst)
    }

    /// WebSocket upgrades refused for a foreign `Origin`.
    pub fn origins_refused(&self) -> u64 {
        self.counters.origins_refused.load(Ordering::SeqCst)
    }
}

impl Drop for FakeDoors {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Door {
    Line,
    Irc,
    Web,
}

/// A line said in the room.
#[derive(Clone)]
struct Said {
    id: u64,
    sender: String,
    text: String,
}

/// A member of the room and how it wants lines.
struct Member {
    id: u64,
    name: String,
    door: Door,
    tags: bool,
    echo: bool,
    out: Sender<Vec<u8>>,
    /// Tokens of pings not answered yet.
    pings: Vec<String>,
}

/// The room: its members and recent lines.
#[derive(Default)]
struct Hub {
    members: Vec<Member>,
    history: VecDeque<Said>,
    next_id: u64,
}

impl Hub {
    /// Adds a member and tells the others; the recent lines, for the replay.
    fn join(&mut self, member: Member) -> Vec<Said> {
        for other in &self.members {
            let notice = match other.door {
                Door::Line => format!("* {} joined\n", member.name),
                Door::Irc => format!(":{0}!~{0}@127.0.0.1 JOIN #lobby\r\n", member.name),
                Door::Web => format!(
                    "{}\n",
                    json!({"type": "notice", "kind": "joined", "room": "lobby",
                           "name": member.name, "text": format!("* {} joined", member.name)})
                ),
            };
            let _ = other.out.try_send(notice.into_bytes());
        }
        self.members.push(member);
        self.history.iter().cloned().collect()
    }

    fn leave(&mut self, id: u64) {
        self.members.retain(|m| m.id != id);
    }

    /// Relays a line to everyone else (and back to its sender where asked), pinging IRC
    /// members every [`PING_EVERY`] lines.
    fn say(&mut self, from: u64, text: &str, counters: &Counters) {
        self.next_id += 1;
        let Some(sender) = self.members.iter().find(|m| m.id == from) else {
            return;
        };
        let said = Said {
            id: self.next_id,
            sender: sender.name.clone(),
            text: text.to_owned(),
        };
        let ping = self.next_id.is_multiple_of(PING_EVERY);
        for member in &mut self.members {
            if member.id != from || member.echo {
                let _ = member.out.try_send(render(member, &said, false));
            }
            if ping && member.door == Door::Irc {
                let token = format!("k{}", said.id);
                let _ = member
                    .out
                    .try_send(format!("PING :{token}\r\n").into_bytes());
                member.pings.push(token);
                counters.pings_sent.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.history.push_back(said);
        if self.history.len() > HISTORY {
            self.history.pop_front();
        }
    }

    fn pong(&mut self, from: u64, token: &str, counters: &Counters) {
        if let Some(member) = self.members.iter_mut().find(|m| m.id == from) {
            if let Some(at) = member.pings.iter().position(|t| t == token) {
                member.pings.remove(at);
                counters.pongs.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// A line as `member`'s door sends it; `replay` for the history on joining.
fn render(member: &Member, said: &Said, replay: bool) -> Vec<u8> {
    match member.door {
        Door::Line if replay => format!("[2026-12-06 12:00:00] {}: {}\n", said.sender, said.text),
        Door::Line => format!("{}: {}\n", said.sender, said.text),
        Door::Irc => {
            let tags = if member.tags {
                format!("@time=2026-12-06T12:00:00.000Z;msgid={} ", said.id)
            } else {
                String::new()
            };
            format!(
                "{tags}:{0}!~{0}@127.0.0.1 PRIVMSG #lobby :{1}\r\n",
                said.sender, said.text
            )
        }
        Door::Web => format!("{}\n", line_json(said)),
    }
    .into_bytes()
}

fn line_json(said: &Said) -> serde_json::Value {
    json!({"type": "line", "id": said.id, "time": 1_765_000_000_000u64 + said.id,
           "room": "lobby", "sender": said.sender, "kind": "say", "text": said.text})
}

static NEXT_MEMBER: AtomicU64 = AtomicU64::new(1);

/// Serves one connection of `door` until it closes.
async fn connection(
    stream: TcpStream,
    door: Door,
    hub: Arc<Mutex<Hub>>,
    counters: Arc<Counters>,
    ex: Arc<Executor<'static>>,
) {
    let id = NEXT_MEMBER.fetch_add(1, Ordering::SeqCst);
    let (out, queued) = channel::unbounded::<Vec<u8>>();
    match door {
        Door::Line | Door::Irc => {
            ex.spawn(write_bytes(stream.clone(), queued)).detach();
            let lines = BufReader::new(stream).lines();
            if door == Door::Line {
                line_door(lines, id, out, &hub, &counters).await;
            } else {
                irc_door(lines, id, out, &hub, &counters).await;
            }
        }
        Door::Web => web_door(stream, id, out, queued, &hub, &counters, &ex).await,
    }
    lock(&hub).leave(id);
}

fn lock(hub: &Mutex<Hub>) -> std::sync::MutexGuard<'_, Hub> {
    hub.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes everything queued for a line or IRC member, a batch at a time.
async fn write_bytes(mut stream: TcpStream, queued: Receiver<Vec<u8>>) {
    while let Ok(mut bytes) = queued.recv().await {
        while let Ok(more) = queued.try_recv() {
            bytes.extend_from_slice(&more);
        }
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

type Lines = smol::io::Lines<BufReader<TcpStream>>;

/// The line door: the name prompt, the welcome and history block, then `NAME: text`.
async fn line_door(
    mut lines: Lines,
    id: u64,
    out: Sender<Vec<u8>>,
    hub: &Mutex<Hub>,
    counters: &Counters,
) {
    let _ = out.try_send(b"Welcome to fake! What is your name?\n".to_vec());
    let Some(Ok(name)) = lines.next().await else {
        return;
    };
    let member = member(id, name.trim(), Door::Line, out.clone());
    let history = lock(hub).join(member);
    let mut block = format!(
        "Welcome, {}! You are in lobby.\n--- history of lobby ---\n",
        name.trim()
    );
    let probe = self::member(0, "", Door::Line, out.clone());
    for said in &history {
        block.push_str(&String::from_utf8_lossy(&render(&probe, said, true)));
    }
    block.push_str(&format!(
        "--- end of history ({} messages) ---\n",
        history.len()
    ));
    let _ = out.try_send(block.into_bytes());
    while let Some(Ok(line)) = lines.next().await {
        lock(hub).say(id, line.trim_end(), counters);
    }
}

fn member(id: u64, name: &str, door: Door, out: Sender<Vec<u8>>) -> Member {
    Member {
        id,
        name: name.to_owned(),
        door,
        tags: false,
        echo: door == Door::Web,
        out,
        pings: Vec::new(),
    }
}

/// The IRC door: CAP, NICK and USER, a PING the client must answer before `001`, then `JOIN
/// #lobby`, `PRIVMSG #lobby`, `PING`/`PONG`.
async fn irc_door(
    mut lines: Lines,
    id: u64,
    out: Sender<Vec<u8>>,
    hub: &Mutex<Hub>,
    counters: &Counters,
) {
    let send = |text: String| {
        let _ = out.try_send(text.into_bytes());
    };
    let (mut nick, mut user, mut negotiating, mut welcomed) = (None, false, false, false);
    let mut cookie_sent = false;
    let mut caps: Vec<String> = Vec::new();
    let cookie = format!("reg{id}");
    while let Some(Ok(line)) = lines.next().await {
        let line = line.trim_end_matches(['\r', '\n']);
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let trailing = rest.split_once(':').map_or(rest, |(_, t)| t);
        match command.to_ascii_uppercase().as_str() {
            "CAP" if rest.starts_with("LS") => {
                negotiating = true;
                send(format!(":fake CAP * LS :{}\r\n", CAPS.join(" ")));
            }
            "CAP" if rest.starts_with("REQ") => {
                let wanted: Vec<&str> = trailing.split_whitespace().collect();
                if wanted.iter().all(|cap| CAPS.contains(cap)) {
                    caps = wanted.iter().map(|cap| cap.to_string()).collect();
                    send(format!(":fake CAP * ACK :{trailing}\r\n"));
                } else {
                    send(format!(":fake CAP * NAK :{trailing}\r\n"));
                }
            }
            "CAP" if rest.starts_with("END") => negotiating = false,
            "NICK" => nick = Some(rest.to_owned()),
            "USER" => user = true,
            "PING" => send(format!(":fake PONG fake :{trailing}\r\n")),
            "PONG" if !welcomed && trailing == cookie => {
                welcomed = true;
                let nick = nick.clone().unwrap_or_default();
                send(format!(
                    ":fake 001 {nick} :Welcome to the fake IRC Network {nick}\r\n\
                     :fake 005 {nick} CHANTYPES=# NICKLEN=24 :are supported by this server\r\n\
                     :fake 422 {nick} :MOTD File is missing\r\n"
                ));
            }
            "PONG" => lock(hub).pong(id, trailing, counters),
            "JOIN" if welcomed && rest.eq_ignore_ascii_case("#lobby") => {
                let nick = nick.clone().unwrap_or_default();
                let mut m = member(id, &nick, Door::Irc, out.clone());
                m.tags = caps
                    .iter()
                    .any(|c| c == "server-time" || c == "message-tags");
                m.echo = caps.iter().any(|c| c == "echo-message");
                let replay_as = member(0, "", Door::Irc, out.clone());
                let history = lock(hub).join(m);
                let names = lock(hub)
                    .members
                    .iter()
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>();
                let mut burst = format!(
                    ":{nick}!~{nick}@127.0.0.1 JOIN #lobby\r\n\
                     :fake 353 {nick} = #lobby :{}\r\n:fake 366 {nick} #lobby :End of /NAMES list\r\n",
                    names.join(" ")
                );
                for said in &history {
                    burst.push_str(&String::from_utf8_lossy(&render(&replay_as, said, true)));
                }
                send(burst);
            }
            "PRIVMSG" if rest.to_ascii_lowercase().starts_with("#lobby ") => {
                lock(hub).say(id, trailing, counters);
            }
            "QUIT" => return,
            _ => {}
        }
        if !cookie_sent && !negotiating && user && nick.is_some() {
            cookie_sent = true;
            send(format!("PING :{cookie}\r\n"));
        }
    }
}

/// The web door: an upgrade whose `Origin` must be `http://` and the `Host`, then the JSON
/// protocol: `prompt`, `hello` → `welcome` and the join's `history`, `say` → `line`s.
#[allow(clippy::too_many_arguments)]
async fn web_door(
    stream: TcpStream,
    id: u64,
    out: Sender<Vec<u8>>,
    queued: Receiver<Vec<u8>>,
    hub: &Mutex<Hub>,
    counters: &Counters,
    ex: &Executor<'static>,
) {
    let check = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        match (header("origin"), header("host")) {
            (Some(origin), Some(host)) if origin == format!("http://{host}") => Ok(response),
            _ => {
                counters.origins_refused.fetch_add(1, Ordering::SeqCst);
                let mut refusal = ErrorResponse::new(Some("foreign origin".into()));
                *refusal.status_mut() = StatusCode::FORBIDDEN;
                Err(refusal)
            }
        }
    };
    let Ok(ws) = async_tungstenite::accept_hdr_async(stream, check).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    ex.spawn(async move {
        while let Ok(mut bytes) = queued.recv().await {
            while let Ok(more) = queued.try_recv() {
                bytes.extend_from_slice(&more);
            }
            let frame = String::from_utf8(bytes).unwrap_or_default();
            if tx.send(Message::text(frame)).await.is_err() {
                return;
            }
        }
    })
    .detach();
    let send = |value: serde_json::Value| {
        let _ = out.try_send(format!("{value}\n").into_bytes());
    };
    send(json!({"type": "prompt", "field": "name", "text": "Welcome to fake! What is your name?"}));
    while let Some(Ok(message)) = rx.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
            send(json!({"type": "error", "code": "bad_message", "text": "not JSON"}));
            continue;
        };
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        match value["type"].as_str() {
            Some("hello") => {
                let name = field("name");
                let history = lock(hub).join(member(id, &name, Door::Web, out.clone()));
                send(json!({"type": "welcome", "name": name, "room": "lobby",
                            "text": format!("Welcome, {name}! You are in lobby.")}));
                let lines: Vec<_> = history.iter().map(line_json).collect();
                send(json!({"type": "history", "room": "lobby", "page": "join",
                            "lines": lines, "done": true, "older": "none"}));
            }
            Some("say") => lock(hub).say(id, &field("text"), counters),
            _ => send(json!({"type": "error", "code": "bad_message", "text": "unknown type"})),
        }
    }
}
