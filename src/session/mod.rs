//! One client connection, from greeting to goodbye.
//!
//! A session is one future on the executor. It asks for a name, registers with the hub, replays
//! the room's history, then loops: lines from the client go to the hub, lines from its outbox go
//! to the client. It is the only code that writes to its socket, and it writes everything queued
//! in one system call, because a write costs the same whether it carries one line or forty.

pub mod command;

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use log::{debug, warn};
use smol::future;
use smol::io::AsyncWriteExt;
use smol::{Async, Timer};

use crate::config::Config;
use crate::hub::outbox::{self, outbox, Inbox, Line, Outbox};
use crate::hub::{Event, Joined, MemberId, RegisterError};
use crate::limits::ratelimit::TokenBucket;
use crate::names::{Nick, RoomName};
use crate::storage::{History, Kind};
use crate::wire::codec::Decoded;
use crate::wire::reader::{self, LineReader};
use command::{Command, Input, HELP};

/// The question a newcomer is asked, first and after every refused name.
pub const ASK_NAME: &str = "What is your name?";

/// Most bytes gathered from the outbox into one write. Large enough that a busy room costs one
/// system call per many lines; small enough to bound the per-session write buffer.
const MAX_BATCH_BYTES: usize = 64 * 1024;

/// How often a blocked write checks whether the hub gave up on this client. A blocked write means
/// the client is not reading, so this only bounds how long a kicked session lingers.
const KICK_CHECK: Duration = Duration::from_millis(250);

/// How long a closing session spends on its goodbye: writing what is left and waiting for the
/// client to close its side (see [`Conn::close`]). Short, because a well-behaved client reads
/// and closes at once when it sees our end of stream.
const LINGER: Duration = Duration::from_secs(2);

/// Rows per history chunk: the most a replay holds in memory for one client at a time.
const HISTORY_CHUNK: u32 = 64;

/// What every session shares.
pub struct Shared {
    pub config: Config,
    pub hub: Sender<Event>,
    pub history: History,
    /// Closed when the server starts shutting down.
    pub stopping: Receiver<()>,
}

/// A client connection: the socket, its line reader and the bytes waiting to be written.
struct Conn {
    stream: Async<TcpStream>,
    reader: LineReader,
    out: Vec<u8>,
    peer: SocketAddr,
    /// Set once registered: lets a blocked write notice that the hub kicked this session.
    watch: Option<Arc<outbox::State>>,
    /// A write was abandoned part-way, so the client may hold half a line.
    torn: bool,
}

impl Conn {
    /// Adds a line of text (without newline) to the pending output.
    fn queue(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.push(b'\n');
    }

    /// Adds a line from the outbox; the empty marker line is not written.
    fn queue_line(&mut self, line: &Line) {
        self.out.extend_from_slice(line);
    }

    /// Writes all pending output.
    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        // Taking the buffer frees it after the write, so an idle session holds no write buffer.
        let out = std::mem::take(&mut self.out);
        let mut stream = &self.stream;
        let write = stream.write_all(&out);
        let Some(watch) = &self.watch else {
            return write.await;
        };
        // A write that completes at once never starts the timer; one that blocks is abandoned
        // when the hub kicks the session, since that client is not reading anyway.
        future::or(write, async {
            loop {
                Timer::after(KICK_CHECK).await;
                if watch.kicked() {
                    self.torn = true;
                    return Err(io::Error::other("kicked: not reading fast enough"));
                }
            }
        })
        .await
    }

    /// Closes gracefully: writes what is pending, ends our side, then waits (briefly) for the client
    /// to end its side, discarding its input, so that the kernel does not reset the connection and
    /// lose the lines the client has not read yet.
    async fn close(mut self) {
        // The whole goodbye is bounded: a client that neither reads nor closes gets no longer.
        let goodbye = async {
            let _ = self.flush().await;
            let _ = self.stream.get_ref().shutdown(std::net::Shutdown::Write);
            reader::discard_until_eof(&self.stream).await;
        };
        future::or(goodbye, async {
            Timer::after(LINGER).await;
        })
        .await;
    }

    /// Writes one last line if the socket takes it right away, without waiting for a client that
    /// may never read again.
    fn try_last_words(&mut self, text: &str) {
        let mut bytes = std::mem::take(&mut self.out);
        if self.torn {
            // End the half-written line so the last words arrive as a line of their own.
            bytes.insert(0, b'\n');
        }
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(b'\n');
        let _ = self.stream.get_ref().write(&bytes);
    }
}

/// How a session ended.
enum End {
    /// The client closed the connection or it broke.
    Gone,
    Quit(Option<String>),
    /// The server closed the outbox: shutting down.
    Closed,
}

/// Runs one connection to the end. Errors are the client's business and end only this session.
pub async fn run(stream: Async<TcpStream>, peer: SocketAddr, id: MemberId, shared: Arc<Shared>) {
    let config = &shared.config;
    let mut conn = Conn {
        stream,
        reader: LineReader::new(config.max_line),
        out: Vec::new(),
        peer,
        watch: None,
        torn: false,
    };
    let (outbox, inbox) = outbox(config.outbox_bytes);

    // Boxed, like the other phases a session passes through once, so that the task's own state
    // is only as large as the chat loop needs: that is what an idle user costs.
    let registered = Box::pin(future::or(
        future::or(register(&mut conn, &shared, id, &outbox), async {
            Timer::after(config.register_timeout).await;
            Err(Refusal::Timeout)
        }),
        async {
            let _ = shared.stopping.recv().await;
            Err(Refusal::ShuttingDown)
        },
    ))
    .await;
    let (nick, joined) = match registered {
        Ok(done) => done,
        Err(refusal) => {
            match refusal {
                Refusal::Timeout => {
                    let secs = config.register_timeout.as_secs();
                    warn!("{peer}: no name within {secs} s, disconnecting");
                    conn.try_last_words(&format!("no name given in {secs} s, closing connection"));
                }
                Refusal::ShuttingDown => conn.try_last_words("* server shutting down"),
                Refusal::Gone => {
                    debug!("{peer}: left before choosing a name");
                    return;
                }
            }
            conn.close().await;
            return;
        }
    };

    // From here only the hub holds the sending side, so if the hub ever goes away the inbox
    // closes and this session ends in order.
    drop(outbox);
    conn.watch = Some(inbox.state());
    let end = chat(&mut conn, &shared, id, &nick, joined, &inbox).await;
    // A connection that broke gets no goodbye; any other end is closed gracefully.
    let orderly = !matches!(end, End::Gone);
    if inbox.was_kicked() {
        // The hub has already removed this user and told the room.
        conn.try_last_words("disconnected: you are not reading fast enough");
        return;
    }
    let reason = match end {
        End::Gone | End::Closed => None,
        End::Quit(reason) => {
            conn.queue("bye");
            reason
        }
    };
    let _ = shared.hub.send(Event::Leave { id, reason }).await;
    if orderly {
        conn.close().await;
    }
    debug!("{peer}: session of {nick} ended");
}

/// Why registration did not complete.
enum Refusal {
    Timeout,
    ShuttingDown,
    Gone,
}

/// Asks for a name until the client gives a valid, free one.
async fn register(
    conn: &mut Conn,
    shared: &Shared,
    id: MemberId,
    outbox: &Outbox,
) -> Result<(Nick, Joined), Refusal> {
    conn.queue("Welcome to smolchat! What is your name?");
    loop {
        conn.flush().await.map_err(|_| Refusal::Gone)?;
        let text = match conn.reader.next(&conn.stream).await {
            Ok(Some(Decoded::Line(text))) => text,
            Ok(Some(Decoded::TooLong)) => {
                conn.queue(&too_long(shared.config.max_line));
                conn.queue(ASK_NAME);
                continue;
            }
            Ok(None) | Err(_) => return Err(Refusal::Gone),
        };
        if text.trim().is_empty() {
            conn.queue(ASK_NAME);
            continue;
        }
        let nick = match Nick::parse(&text) {
            Ok(nick) => nick,
            Err(e) => {
                conn.queue(&e.nick_reason());
                conn.queue(ASK_NAME);
                continue;
            }
        };
        let (reply_tx, reply_rx) = async_channel::bounded(1);
        let event = Event::Register {
            id,
            nick: nick.clone(),
            outbox: outbox.clone(),
            reply: reply_tx,
        };
        if shared.hub.send(event).await.is_err() {
            return Err(Refusal::ShuttingDown);
        }
        match reply_rx.recv().await {
            Ok(Ok(joined)) => return Ok((nick, joined)),
            Ok(Err(RegisterError::Taken)) => {
                conn.queue(&format!("name taken: {nick} is already in use"));
                conn.queue(ASK_NAME);
            }
            Ok(Err(RegisterError::ShuttingDown)) | Err(_) => return Err(Refusal::ShuttingDown),
        }
    }
}

/// What woke the chat loop.
enum Wake {
    Input(io::Result<Option<Decoded>>),
    Outbox(Option<Line>),
}

/// The registered part of a session: relays in both directions until the client leaves or the
/// server closes the outbox.
async fn chat(
    conn: &mut Conn,
    shared: &Shared,
    id: MemberId,
    nick: &Nick,
    joined: Joined,
    inbox: &Inbox,
) -> End {
    let config = &shared.config;
    debug!("{}: registered as {nick}", conn.peer);
    conn.queue(&format!(
        "Welcome, {nick}! You are in {}. Type /help for commands.",
        joined.room
    ));
    let mut room = joined.room.clone();
    let mut oldest = match Box::pin(replay(conn, &shared.history, &joined, config.history)).await {
        Ok(oldest) => oldest,
        Err(_) => return End::Gone,
    };
    let mut bucket = config
        .rate
        .map(|rate| TokenBucket::new(rate, Instant::now()));
    // Whether the user was told about the rate limit since the bucket was last full.
    let mut throttled = false;
    // Over-long lines are logged as a warning once per session, then at debug level.
    let mut too_long_seen = false;

    loop {
        if conn.flush().await.is_err() {
            return End::Gone;
        }
        let wake = {
            let reader = &mut conn.reader;
            let stream = &conn.stream;
            let bucket = &mut bucket;
            let read = async move {
                if let Some(bucket) = bucket {
                    if let Some(wait) = bucket.wait(Instant::now()) {
                        Timer::after(wait).await;
                    }
                }
                Wake::Input(reader.next(stream).await)
            };
            let recv = async { Wake::Outbox(inbox.recv().await) };
            future::race(read, recv).await
        };
        let text = match wake {
            Wake::Outbox(Some(line)) => {
                conn.queue_line(&line);
                while conn.out.len() < MAX_BATCH_BYTES {
                    match inbox.try_recv() {
                        Some(line) => conn.queue_line(&line),
                        None => break,
                    }
                }
                continue;
            }
            Wake::Outbox(None) => {
                let _ = conn.flush().await;
                return End::Closed;
            }
            Wake::Input(Ok(None)) => return End::Gone,
            Wake::Input(Err(e)) => {
                debug!("{}: read error: {e}", conn.peer);
                return End::Gone;
            }
            Wake::Input(Ok(Some(Decoded::TooLong))) => None,
            Wake::Input(Ok(Some(Decoded::Line(text)))) => Some(text),
        };
        // Every line counts against the rate, refused and blank ones too, so that neither can
        // be used to flood the server (or its log).
        if let (Some(bucket), Some(rate)) = (&mut bucket, config.rate) {
            let now = Instant::now();
            if bucket.is_full(now) {
                throttled = false;
            }
            bucket.spend(now);
            if bucket.wait(now).is_some() && !throttled {
                throttled = true;
                warn!("{nick}: over the rate limit, delaying lines");
                conn.queue(&format!(
                    "slow down: after {} lines, lines are sent at {} per second (delayed, not dropped)",
                    rate.burst, rate.per_sec
                ));
            }
        }
        let Some(text) = text else {
            if too_long_seen {
                debug!(
                    "{nick}: another line over {} bytes refused",
                    config.max_line
                );
            } else {
                warn!("{nick}: line over {} bytes refused", config.max_line);
                too_long_seen = true;
            }
            conn.queue(&too_long(config.max_line));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let event = match command::parse(&text) {
            Ok(Input::Say(text)) => Event::Say {
                id,
                kind: Kind::Message,
                text,
            },
            Ok(Input::Command(command)) => match command {
                Command::Help => {
                    for line in HELP {
                        conn.queue(line);
                    }
                    continue;
                }
                Command::Me(text) => Event::Say {
                    id,
                    kind: Kind::Action,
                    text,
                },
                Command::Who => Event::Who { id },
                Command::Rooms => Event::Rooms { id },
                Command::Nick(nick) => Event::Rename { id, nick },
                Command::Msg(to, text) => Event::Private { id, to, text },
                Command::Quit(reason) => return End::Quit(reason),
                Command::History(n) => {
                    match Box::pin(more_history(conn, &shared.history, &room, oldest, n)).await {
                        Ok(Some(older)) => oldest = older,
                        Ok(None) => {}
                        Err(_) => return End::Gone,
                    }
                    continue;
                }
                Command::Join(to) => match Box::pin(switch_room(conn, shared, id, to, inbox)).await
                {
                    Ok(Some((joined, older))) => {
                        room = joined.room;
                        oldest = older;
                        continue;
                    }
                    Ok(None) => continue,
                    Err(end) => return end,
                },
            },
            Err(e) => {
                conn.queue(&e.to_string());
                continue;
            }
        };
        if shared.hub.send(event).await.is_err() {
            return End::Closed;
        }
    }
}

/// Moves to another room: everything the old room said before the move is written first, then the
/// new room's history, then its live lines. Returns the room and the oldest id shown.
async fn switch_room(
    conn: &mut Conn,
    shared: &Shared,
    id: MemberId,
    room: RoomName,
    inbox: &Inbox,
) -> Result<Option<(Joined, i64)>, End> {
    let (reply_tx, reply_rx) = async_channel::bounded(1);
    if shared
        .hub
        .send(Event::Join {
            id,
            room,
            reply: reply_tx,
        })
        .await
        .is_err()
    {
        return Err(End::Closed);
    }
    // No reply means the hub refused (already there) and said why in the outbox.
    let Ok(joined) = reply_rx.recv().await else {
        return Ok(None);
    };
    // The hub queued a marker where the move happened: lines before it belong to the old room.
    loop {
        match inbox.recv().await {
            Some(line) if line.is_empty() => break,
            Some(line) => conn.queue_line(&line),
            None => return Err(End::Closed),
        }
    }
    let oldest = replay(conn, &shared.history, &joined, shared.config.history)
        .await
        .map_err(|_| End::Gone)?;
    Ok(Some((joined, oldest)))
}

/// Writes the last `limit` messages of the room a user just joined, streamed from the database,
/// between start and end markers. Returns the oldest id shown (or where the replay ended).
async fn replay(
    conn: &mut Conn,
    history: &History,
    joined: &Joined,
    limit: u32,
) -> io::Result<i64> {
    // The hub has handed everything up to `last_id` to the writer; wait until it is readable.
    // What is queued so far (the welcome) goes out first, in case that takes a moment.
    conn.flush().await?;
    history.wait_committed(joined.last_id).await;
    conn.queue(&format!("--- history of {} ---", joined.room));
    let before = joined.last_id + 1;
    let page = stream_page(conn, history, &joined.room, before, limit).await?;
    conn.queue(&format!("--- end of history ({}) ---", messages(page.0)));
    conn.flush().await?;
    Ok(page.1.unwrap_or(before))
}

/// Answers `/history N`: the N messages of the room before the oldest one shown so far.
async fn more_history(
    conn: &mut Conn,
    history: &History,
    room: &RoomName,
    oldest: i64,
    n: u32,
) -> io::Result<Option<i64>> {
    conn.queue(&format!("--- earlier history of {room} ---"));
    let (count, older) = stream_page(conn, history, room, oldest, n).await?;
    if count < n {
        conn.queue(&format!(
            "--- beginning of {room} history: nothing older ---"
        ));
    }
    conn.queue(&format!(
        "--- end of earlier history ({}) ---",
        messages(count)
    ));
    conn.flush().await?;
    Ok(older)
}

/// Streams one page of history to the client, chunk by chunk as the database produces it.
/// Returns how many lines were sent and the oldest id among them.
async fn stream_page(
    conn: &mut Conn,
    history: &History,
    room: &RoomName,
    before: i64,
    limit: u32,
) -> io::Result<(u32, Option<i64>)> {
    let span = match history.span(room, before, limit).await {
        Ok(span) => span,
        Err(e) => return Ok(unavailable(conn, room, &e)),
    };
    let Some(first) = span.first else {
        return Ok((0, None));
    };
    let mut from = first;
    let mut sent = 0;
    while sent < span.count {
        let rows = match history.rows(room, from, before, HISTORY_CHUNK).await {
            Ok(rows) => rows,
            Err(e) => return Ok(unavailable(conn, room, &e)),
        };
        sent += rows.count;
        conn.out.extend_from_slice(&rows.text);
        conn.flush().await?;
        match rows.last {
            Some(last) if rows.count == HISTORY_CHUNK => from = last + 1,
            _ => break,
        }
    }
    Ok((sent, Some(first)))
}

/// Tells the client history could not be read, and logs why.
fn unavailable(conn: &mut Conn, room: &RoomName, e: &rusqlite::Error) -> (u32, Option<i64>) {
    warn!("history read for {room} failed: {e}");
    conn.queue("(history is unavailable right now)");
    (0, None)
}

fn messages(n: u32) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

/// The one-line answer to an over-long line.
pub fn too_long(max: usize) -> String {
    format!("line too long (max {max} bytes), not sent")
}
