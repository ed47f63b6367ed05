//! A fake chat server that speaks the web door's JSON protocol over the door's real HTTP and
//! WebSocket code (`smolchat::door::web::serve`), with an in-memory hub: enough to drive the page
//! in a browser before the door is wired to the real hub. Tests only.
//!
//! It keeps the protocol's promises the page relies on: ids increase, a sender gets its own line
//! back with its id, history pages say what lies before them, and a resume replays the lines
//! after `last_id`.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use smol::Async;
use smolchat::clock::now_ms;
use smolchat::door::web::protocol::{
    self, ClientMsg, ErrorCode, HistoryPage, Line, LineKind, Notice, NoticeKind, Older,
    PromptField, RoomCount, ServerMsg,
};
use smolchat::door::web::{serve, Scheme, WebConfig};

/// Lines replayed on joining a room, and the most a resume replays before it reports a gap.
const REPLAY: usize = 50;
const RESUME_MAX: usize = 200;

#[derive(Clone)]
struct Stored {
    id: i64,
    time: i64,
    room: String,
    sender: String,
    kind: LineKind,
    text: String,
}

impl Stored {
    fn line(&self) -> Line<'_> {
        Line {
            id: self.id,
            time: self.time,
            room: &self.room,
            sender: &self.sender,
            kind: self.kind,
            text: &self.text,
        }
    }
}

struct Member {
    name: Option<String>,
    /// A registered name waiting for its password, with the hello's resume.
    pending: Option<(String, Option<protocol::Resume>)>,
    room: String,
    out: async_channel::Sender<String>,
}

#[derive(Default)]
struct State {
    lines: Vec<Stored>,
    members: Vec<(u64, Member)>,
    next_conn: u64,
}

impl State {
    fn member(&mut self, conn: u64) -> Option<&mut Member> {
        self.members
            .iter_mut()
            .find(|(c, _)| *c == conn)
            .map(|(_, m)| m)
    }

    fn tell(&self, conn: u64, msg: &ServerMsg) {
        if let Some((_, m)) = self.members.iter().find(|(c, _)| *c == conn) {
            let _ = m.out.try_send(msg.to_line());
        }
    }

    /// Sends `msg` to everyone named in `room`, `except` one connection.
    fn room_send(&self, room: &str, except: Option<u64>, msg: &ServerMsg) {
        let line = msg.to_line();
        for (conn, m) in &self.members {
            if m.name.is_some() && m.room == room && Some(*conn) != except {
                let _ = m.out.try_send(line.clone());
            }
        }
    }

    fn names_in(&self, room: &str) -> Vec<String> {
        let named = self.members.iter().map(|(_, m)| m);
        named
            .filter(|m| m.room == room)
            .filter_map(|m| m.name.clone())
            .collect()
    }

    fn store(&mut self, room: &str, sender: &str, kind: LineKind, text: &str) -> Stored {
        let stored = Stored {
            id: self.lines.last().map_or(1, |l| l.id + 1),
            time: now_ms(),
            room: room.to_owned(),
            sender: sender.to_owned(),
            kind,
            text: text.to_owned(),
        };
        self.lines.push(stored.clone());
        stored
    }

    fn notice(&self, kind: NoticeKind, room: &str, name: &str, text: &str, except: Option<u64>) {
        let notice = Notice {
            kind,
            room: Some(room),
            name: Some(name),
            to: None,
            topic: None,
            text,
        };
        self.room_send(room, except, &ServerMsg::Notice(notice));
    }

    /// Sends `conn` a history page of `room` in chunks of 3 lines (so the page's chunk
    /// handling is exercised).
    fn history(&self, conn: u64, room: &str, page: HistoryPage, lines: &[&Stored], older: Older) {
        let lines: Vec<Line> = lines.iter().map(|s| s.line()).collect();
        let mut chunks = lines.chunks(3).peekable();
        if chunks.peek().is_none() {
            let msg = ServerMsg::History {
                room,
                page,
                lines: &[],
                done: true,
                older: Some(older),
                gap: false,
            };
            return self.tell(conn, &msg);
        }
        while let Some(chunk) = chunks.next() {
            let done = chunks.peek().is_none();
            let msg = ServerMsg::History {
                room,
                page,
                lines: chunk,
                done,
                older: done.then_some(older),
                gap: false,
            };
            self.tell(conn, &msg);
        }
    }

    /// The room's newest `n` lines (oldest first) before `before`, and what lies before them.
    fn page(&self, room: &str, before: i64, n: usize) -> (Vec<&Stored>, Older) {
        let all: Vec<&Stored> = self
            .lines
            .iter()
            .filter(|l| l.room == room && l.id < before)
            .collect();
        let start = all.len().saturating_sub(n);
        let older = if start > 0 { Older::More } else { Older::None };
        (all[start..].to_vec(), older)
    }

    fn enter(&mut self, conn: u64, room: &str) {
        let name = self
            .member(conn)
            .and_then(|m| m.name.clone())
            .unwrap_or_default();
        let (lines, older) = self.page(room, i64::MAX, REPLAY);
        self.history(conn, room, HistoryPage::Join, &lines, older);
        self.notice(
            NoticeKind::Joined,
            room,
            &name,
            &format!("{name} joined"),
            Some(conn),
        );
    }
}

/// The fake server: a listener on 127.0.0.1 and its executor thread.
pub struct FakeChat {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: async_channel::Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl FakeChat {
    pub fn start() -> FakeChat {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let listener = Async::new(listener).expect("async listener");
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let shared = state.clone();
        let thread = std::thread::spawn(move || {
            let executor = smol::LocalExecutor::new();
            let accept = async {
                while let Ok((stream, peer)) = listener.accept().await {
                    executor
                        .spawn(connection(stream, peer, shared.clone()))
                        .detach();
                }
            };
            smol::block_on(executor.run(smol::future::or(accept, async {
                let _ = stopped.recv().await;
            })));
        });
        FakeChat {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    /// A line said in `room` by someone through another door (an nc user), relayed to the room.
    pub fn say_as(&self, sender: &str, room: &str, text: &str) -> i64 {
        let mut state = self.lock();
        let stored = state.store(room, sender, LineKind::Say, text);
        state.room_send(room, None, &ServerMsg::Line(stored.line()));
        stored.id
    }

    /// Every stored line of `room` as `(id, sender, text)`.
    pub fn lines(&self, room: &str) -> Vec<(i64, String, String)> {
        let state = self.lock();
        let lines = state.lines.iter().filter(|l| l.room == room);
        lines
            .map(|l| (l.id, l.sender.clone(), l.text.clone()))
            .collect()
    }

    /// Drops every connection at once, without a close frame, as a crashed server would; new
    /// connections are served as before, from the same state (a restarted server).
    pub fn drop_connections(&self) {
        let mut state = self.lock();
        for (_, member) in state.members.drain(..) {
            member.out.close();
        }
    }
}

impl Drop for FakeChat {
    fn drop(&mut self) {
        let _ = self.stop.try_send(());
        self.drop_connections();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

enum Event {
    Client(Option<String>),
    Out(Option<String>),
}

async fn connection(
    stream: Async<std::net::TcpStream>,
    peer: SocketAddr,
    state: Arc<Mutex<State>>,
) {
    let config = WebConfig::new(Scheme::Http, 1024);
    let Ok(Some(upgraded)) = serve(stream, peer, &config).await else {
        return;
    };
    let mut socket = upgraded.socket;
    let (out, outbox) = async_channel::unbounded();
    let conn = {
        let mut s = state.lock().expect("fake state");
        s.next_conn += 1;
        let conn = s.next_conn;
        s.members.push((
            conn,
            Member {
                name: None,
                pending: None,
                room: "lobby".into(),
                out,
            },
        ));
        conn
    };
    let prompt = ServerMsg::Prompt {
        field: PromptField::Name,
        text: "Welcome to smolchat! What is your name?",
    };
    let _ = socket.send_text(prompt.to_line()).await;
    loop {
        let client = async { Event::Client(socket.recv().await.ok().flatten()) };
        let queued = async { Event::Out(outbox.recv().await.ok()) };
        match smol::future::or(client, queued).await {
            Event::Client(Some(text)) => handle(&state, conn, &text),
            Event::Out(Some(line)) => {
                if socket.send_text(line).await.is_err() {
                    break;
                }
            }
            // Closed by `/quit`, or by `drop_connections` (which ends the connection without a
            // close frame, as a crash would, since the socket is dropped without one).
            Event::Out(None) | Event::Client(None) => break,
        }
    }
    let mut s = state.lock().expect("fake state");
    let Some(at) = s.members.iter().position(|(c, _)| *c == conn) else {
        return;
    };
    let (_, member) = s.members.remove(at);
    if let Some(name) = member.name {
        s.notice(
            NoticeKind::Left,
            &member.room,
            &name,
            &format!("{name} left"),
            None,
        );
    }
}

fn handle(state: &Mutex<State>, conn: u64, text: &str) {
    let mut s = state.lock().expect("fake state");
    let error = |s: &State, code, text: &str| s.tell(conn, &ServerMsg::Error { code, text });
    let msg = match protocol::parse(text, 1024) {
        Ok(msg) => msg,
        Err(e) => return error(&s, e.code(), &e.to_string()),
    };
    let Some(me) = s.member(conn) else { return };
    let (name, room) = (me.name.clone(), me.room.clone());
    match (msg, name) {
        (
            ClientMsg::Hello {
                name,
                resume,
                password,
            },
            None,
        ) => {
            if s.names_in_any(&name) {
                error(&s, ErrorCode::Name, &format!("name taken: {name}"));
                let prompt = ServerMsg::Prompt {
                    field: PromptField::Name,
                    text: "Choose another name:",
                };
                return s.tell(conn, &prompt);
            }
            if name != REGISTERED.0 {
                return register(&mut s, conn, &name, resume);
            }
            match password {
                Some(p) if p.expose() == REGISTERED.1 => register(&mut s, conn, &name, resume),
                Some(_) => wrong_password(&s, conn),
                None => {
                    if let Some(me) = s.member(conn) {
                        me.pending = Some((name, resume));
                    }
                    let text = "carol is registered: password?";
                    s.tell(
                        conn,
                        &ServerMsg::Prompt {
                            field: PromptField::Password,
                            text,
                        },
                    );
                }
            }
        }
        (ClientMsg::Password { password }, None) => {
            let pending = s.member(conn).and_then(|m| m.pending.take());
            match pending {
                Some((name, resume)) if password.expose() == REGISTERED.1 => {
                    register(&mut s, conn, &name, resume)
                }
                _ => wrong_password(&s, conn),
            }
        }
        (_, None) => error(&s, ErrorCode::State, "say hello first"),
        (ClientMsg::Hello { .. } | ClientMsg::Password { .. }, Some(_)) => {
            error(&s, ErrorCode::State, "already registered")
        }
        (ClientMsg::Say { text }, Some(name)) => say(&mut s, conn, &name, &room, &text),
        (ClientMsg::History { before, limit, .. }, Some(_)) => {
            let n = limit.unwrap_or(20).min(200) as usize;
            let (lines, older) = s.page(&room, before, n);
            s.history(conn, &room, HistoryPage::Older, &lines, older);
        }
        (ClientMsg::Who { .. }, Some(_)) => {
            let names = s.names_in(&room);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            s.tell(
                conn,
                &ServerMsg::Who {
                    room: &room,
                    names: &names,
                    more: false,
                },
            );
        }
        (ClientMsg::Rooms {}, Some(_)) => {
            let mut rooms: Vec<String> = s.members.iter().map(|(_, m)| m.room.clone()).collect();
            rooms.sort();
            rooms.dedup();
            let counts: Vec<(String, u32)> = rooms
                .into_iter()
                .map(|r| (r.clone(), s.names_in(&r).len() as u32))
                .collect();
            let rooms: Vec<RoomCount> = counts
                .iter()
                .map(|(room, users)| RoomCount {
                    room,
                    users: *users,
                })
                .collect();
            s.tell(conn, &ServerMsg::Rooms { rooms: &rooms });
        }
        (ClientMsg::Join { room: to }, Some(name)) => join(&mut s, conn, &name, &room, &to),
    }
}

impl State {
    fn names_in_any(&self, name: &str) -> bool {
        let mut names = self.members.iter().filter_map(|(_, m)| m.name.as_deref());
        names.any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The one registered name of the fake, and its password.
pub const REGISTERED: (&str, &str) = ("carol", "correct horse");

fn wrong_password(s: &State, conn: u64) {
    let refusal = ServerMsg::Error {
        code: ErrorCode::Password,
        text: "wrong password",
    };
    s.tell(conn, &refusal);
    let prompt = ServerMsg::Prompt {
        field: PromptField::Name,
        text: "What is your name?",
    };
    s.tell(conn, &prompt);
}

fn register(s: &mut State, conn: u64, name: &str, resume: Option<protocol::Resume>) {
    let room = resume
        .as_ref()
        .map_or("lobby".to_owned(), |r| r.room.clone());
    if let Some(me) = s.member(conn) {
        me.name = Some(name.to_owned());
        me.room = room.clone();
    }
    let text = format!("Welcome, {name}! You are in {room}.");
    s.tell(
        conn,
        &ServerMsg::Welcome {
            name,
            room: &room,
            text: &text,
        },
    );
    match resume {
        Some(resume) => {
            let missed: Vec<&Stored> = s
                .lines
                .iter()
                .filter(|l| l.room == room && l.id > resume.last_id)
                .collect();
            assert!(missed.len() <= RESUME_MAX, "the fake does not report gaps");
            s.history(conn, &room, HistoryPage::Resume, &missed, Older::More);
            let joined = format!("{name} joined");
            s.notice(NoticeKind::Joined, &room, name, &joined, Some(conn));
        }
        None => s.enter(conn, &room),
    }
}

fn say(s: &mut State, conn: u64, name: &str, room: &str, text: &str) {
    let (kind, text) = match text.split_once(' ') {
        Some(("/me", action)) => (LineKind::Action, action),
        Some(("/join", to)) => return join(s, conn, name, room, to.trim()),
        _ if text == "/quit" => {
            let bye = ServerMsg::Bye {
                reason: protocol::ByeReason::Quit,
                text: "bye",
                reconnect: false,
            };
            s.tell(conn, &bye);
            if let Some(me) = s.member(conn) {
                me.out.close();
            }
            return;
        }
        _ if text.starts_with("//") => (LineKind::Say, &text[1..]),
        _ if text.starts_with('/') => {
            let word = text.split_whitespace().next().unwrap_or(text);
            let reply = format!("unknown command {word}; /help lists the commands");
            return s.tell(
                conn,
                &ServerMsg::Error {
                    code: ErrorCode::Command,
                    text: &reply,
                },
            );
        }
        _ => (LineKind::Say, text),
    };
    let stored = s.store(room, name, kind, text);
    s.room_send(room, None, &ServerMsg::Line(stored.line()));
}

fn join(s: &mut State, conn: u64, name: &str, from: &str, to: &str) {
    let to = to.trim_start_matches('#').to_ascii_lowercase();
    if to.is_empty() || to == from {
        return;
    }
    if let Some(me) = s.member(conn) {
        me.room = to.clone();
    }
    s.notice(
        NoticeKind::Left,
        from,
        name,
        &format!("{name} left for {to}"),
        None,
    );
    s.tell(
        conn,
        &ServerMsg::Room {
            room: &to,
            topic: None,
        },
    );
    s.enter(conn, &to);
}
