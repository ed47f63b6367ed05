//! The chat history in SQLite: schema migrations, one writer thread with group commit, and pooled
//! read connections for replays.
//!
//! This is the only module that speaks SQL. No SQLite call runs on an executor thread: writes go
//! through a channel to a dedicated thread that commits in batches (one fsync per batch instead of
//! one per line), and reads run on a small fixed pool of reader threads, each with its own
//! read-only connection (WAL lets them read while the writer writes). The writer commits at least once per commit
//! window, which bounds what a crash or power cut can lose.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TryRecvError};
use log::{debug, error, info};
use rusqlite::{params, Connection, OpenFlags};
use smol::future;

use crate::clock;
use crate::names::RoomName;

/// The schema, in order. `PRAGMA user_version` holds how many have been applied.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_messages",
        include_str!("../../migrations/0001_messages.sql"),
    ),
    (
        "0002_rooms",
        include_str!("../../migrations/0002_rooms.sql"),
    ),
];

/// Records that may wait for the writer before the hub waits too: a few commit windows' worth at
/// full speed. A bounded channel allocates its slots up front, so this is also fixed memory.
const QUEUE: usize = 8 * 1024;

/// Most rows in one transaction: past a few thousand, a bigger batch saves nothing measurable.
const MAX_BATCH: usize = 4096;

/// Reader threads, each with one read-only connection. A replay of a thousand rows from an index
/// takes about a millisecond, so two keep up with thousands of joins per second; a fixed pool
/// (rather than the blocking pool) bounds threads and connections under a join storm.
const READERS: usize = 2;

/// What a line was: a plain message or a `/me` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Action,
}

impl Kind {
    fn as_sql(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Action => "action",
        }
    }
}

/// One line of public history, as the hub relayed it.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: i64,
    pub at_ms: i64,
    pub room: Arc<str>,
    pub sender: Arc<str>,
    pub kind: Kind,
    pub body: Arc<str>,
}

enum WriterMsg {
    Record(Record),
    /// Answered once everything queued before it is committed.
    Barrier(Sender<()>),
}

/// An error opening or migrating the database, with the path it concerns.
#[derive(Debug)]
pub struct OpenError {
    pub path: PathBuf,
    pub source: rusqlite::Error,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database {}: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for OpenError {}

/// Opens (creating if needed) the database at `path`, switches it to WAL and applies every
/// pending migration. Used by the writer, and by tools that fill a database offline.
pub fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    // Short: a commit that finds the database locked is retried by the writer with back-off,
    // and logged, rather than waiting silently inside SQLite.
    conn.busy_timeout(Duration::from_secs(1))?;
    // WAL cannot be switched on inside a transaction, so it is set first, on its own.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(failure(format!(
            "could not switch to WAL journal mode (got {mode})"
        )));
    }
    // FULL makes each commit durable against power loss; batching keeps that to one fsync per
    // commit window instead of one per line.
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Takes an exclusive advisory lock (`flock`) on the database file. SQLite's own locks use
/// `fcntl`, which `flock` does not interfere with on Linux, and the descriptor stays open for the
/// server's life, so SQLite's locks are never released early by closing it.
fn lock_database(path: &Path) -> rusqlite::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| failure(format!("cannot open the database file: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(failure(
            "the database is in use by another smolchat server".into(),
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(failure(format!("cannot lock the database file: {e}")))
        }
    }
}

/// An error of ours in rusqlite's clothes, so callers handle one error type.
fn failure(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        Some(message),
    )
}

/// Applies the migrations the database has not seen yet, each in its own transaction.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if applied > known {
        return Err(failure(format!(
            "schema version {applied} is newer than this smolchat knows ({known})"
        )));
    }
    for (n, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", n as i64 + 1)?;
        tx.commit()?;
        info!("applied migration {name}");
    }
    Ok(())
}

/// A handle on the history: appends go to the writer thread, reads to the reader threads.
/// Cheap to clone; the writer stops once [`HistoryWriter::close`] is called and the queue drains.
#[derive(Clone)]
pub struct History {
    tx: Sender<WriterMsg>,
    committed: Arc<AtomicI64>,
    reads: Sender<ReadJob>,
}

/// Owns the writer thread. Dropping it without `close` leaves the thread running until every
/// [`History`] handle is gone.
pub struct HistoryWriter {
    tx: Sender<WriterMsg>,
    thread: Option<JoinHandle<u64>>,
    /// An exclusive advisory lock on the database file, so two servers never write one history.
    _lock: std::fs::File,
}

impl History {
    /// Opens the database and starts the writer thread. Returns the handle, the writer's owner and
    /// the highest message id already stored.
    pub fn open(
        path: &Path,
        commit_window: Duration,
    ) -> Result<(History, HistoryWriter, i64), OpenError> {
        let err = |source| OpenError {
            path: path.to_owned(),
            source,
        };
        // Locked before anything else touches the file, so a second server (say, a newer binary)
        // cannot migrate a database that a running server is using.
        let lock = lock_database(path).map_err(err)?;
        let conn = open_connection(path).map_err(err)?;
        let last_id: i64 = conn
            .query_row("SELECT coalesce(max(id), 0) FROM messages", [], |r| {
                r.get(0)
            })
            .map_err(err)?;
        let (tx, rx) = async_channel::bounded(QUEUE);
        let committed = Arc::new(AtomicI64::new(last_id));
        let thread = {
            let committed = committed.clone();
            std::thread::Builder::new()
                .name("history-writer".into())
                .spawn(move || writer_loop(conn, rx, committed, commit_window))
                .map_err(|e| err(failure(format!("cannot start the writer thread: {e}"))))?
        };
        let (reads, jobs) = async_channel::unbounded();
        for n in 0..READERS {
            let jobs = jobs.clone();
            let path = path.to_owned();
            std::thread::Builder::new()
                .name(format!("history-reader-{n}"))
                .spawn(move || reader_loop(&path, &jobs))
                .map_err(|e| err(failure(format!("cannot start a reader thread: {e}"))))?;
        }
        let history = History {
            tx: tx.clone(),
            committed,
            reads,
        };
        let writer = HistoryWriter {
            tx,
            thread: Some(thread),
            _lock: lock,
        };
        Ok((history, writer, last_id))
    }

    /// Queues a record for the writer. Waits only when the writer is a full queue behind, which
    /// is backpressure on purpose: a stored message is never dropped.
    pub async fn append(&self, record: Record) {
        if self.tx.send(WriterMsg::Record(record)).await.is_err() {
            error!("history writer is gone; a message was not stored");
        }
    }

    /// Waits until every record up to `id` is committed, so a replay read sees them.
    pub async fn wait_committed(&self, id: i64) {
        if self.committed.load(Ordering::Acquire) >= id {
            return;
        }
        let (done_tx, done_rx) = async_channel::bounded(1);
        if self.tx.send(WriterMsg::Barrier(done_tx)).await.is_ok() {
            let _ = done_rx.recv().await;
        }
    }

    /// How many of the last `limit` messages of `room` below id `before` exist, and the id of
    /// the oldest of them: where a page starts.
    pub async fn span(&self, room: &RoomName, before: i64, limit: u32) -> rusqlite::Result<Span> {
        let (reply, answer) = async_channel::bounded(1);
        self.read(ReadJob::Span {
            room: room.shared(),
            before,
            limit,
            reply,
        });
        answer.recv().await.unwrap_or_else(|_| Err(gone()))
    }

    /// Up to `max` messages of `room` with ids in `from..before`, oldest first, formatted for a
    /// client. A page is streamed as a sequence of these, each asked for once the previous one
    /// is written, so a client that does not read holds at most one chunk in server memory.
    pub async fn rows(
        &self,
        room: &RoomName,
        from: i64,
        before: i64,
        max: u32,
    ) -> rusqlite::Result<Rows> {
        let (reply, answer) = async_channel::bounded(1);
        self.read(ReadJob::Rows {
            room: room.shared(),
            from,
            before,
            max,
            reply,
        });
        answer.recv().await.unwrap_or_else(|_| Err(gone()))
    }

    fn read(&self, job: ReadJob) {
        if self.reads.try_send(job).is_err() {
            error!("history readers are gone");
        }
    }
}

fn gone() -> rusqlite::Error {
    failure("the history readers stopped".into())
}

/// Where a page of history starts.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Messages in the page.
    pub count: u32,
    /// The oldest id in the page, if any.
    pub first: Option<i64>,
}

/// One chunk of a page, formatted.
#[derive(Debug, Clone)]
pub struct Rows {
    pub text: Vec<u8>,
    pub count: u32,
    /// The id of the last row in the chunk.
    pub last: Option<i64>,
}

enum ReadJob {
    Span {
        room: Arc<str>,
        before: i64,
        limit: u32,
        reply: Sender<rusqlite::Result<Span>>,
    },
    Rows {
        room: Arc<str>,
        from: i64,
        before: i64,
        max: u32,
        reply: Sender<rusqlite::Result<Rows>>,
    },
}

impl HistoryWriter {
    /// Closes the queue, lets the writer commit everything queued, and waits for it to stop.
    /// Returns how many lines could not be stored (zero unless the database kept failing).
    pub fn close(mut self) -> u64 {
        self.tx.close();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(lost)) => lost,
            Some(Err(_)) => {
                error!("history writer thread panicked");
                1
            }
            None => 0,
        }
    }
}

/// A reader thread: opens its read-only connection on first use and serves jobs until every
/// history handle is gone. A connection that failed is dropped and opened again for the next job.
fn reader_loop(path: &Path, jobs: &Receiver<ReadJob>) {
    let mut conn: Option<Connection> = None;
    while let Ok(job) = jobs.recv_blocking() {
        let c = match conn.take() {
            Some(c) => c,
            None => match open_reader(path) {
                Ok(c) => c,
                Err(e) => {
                    job.fail(e);
                    continue;
                }
            },
        };
        let ok = match job {
            ReadJob::Span {
                room,
                before,
                limit,
                reply,
            } => {
                let result = read_span(&c, &room, before, limit);
                let ok = result.is_ok();
                let _ = reply.try_send(result);
                ok
            }
            ReadJob::Rows {
                room,
                from,
                before,
                max,
                reply,
            } => {
                let result = read_rows(&c, &room, from, before, max);
                let ok = result.is_ok();
                let _ = reply.try_send(result);
                ok
            }
        };
        if ok {
            conn = Some(c);
        }
    }
}

impl ReadJob {
    fn fail(self, e: rusqlite::Error) {
        match self {
            ReadJob::Span { reply, .. } => {
                let _ = reply.try_send(Err(e));
            }
            ReadJob::Rows { reply, .. } => {
                let _ = reply.try_send(Err(e));
            }
        }
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Counts the page: an index-only walk of `(room, id)` backwards from `before`.
fn read_span(conn: &Connection, room: &str, before: i64, limit: u32) -> rusqlite::Result<Span> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*), min(id) FROM (
             SELECT id FROM messages WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3
         )",
    )?;
    stmt.query_row(params![room, before, i64::from(limit)], |row| {
        Ok(Span {
            count: row.get(0)?,
            first: row.get(1)?,
        })
    })
}

/// Reads and formats one chunk of a page, walking `(room, id)` forwards from `from`.
fn read_rows(
    conn: &Connection,
    room: &str,
    from: i64,
    before: i64,
    max: u32,
) -> rusqlite::Result<Rows> {
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(
        "SELECT id, sent_at, sender, kind, body FROM messages
         WHERE room = ?1 AND id >= ?2 AND id < ?3 ORDER BY id LIMIT ?4",
    )?;
    let mut rows = stmt.query(params![room, from, before, i64::from(max)])?;
    let mut chunk = Rows {
        text: Vec::with_capacity(4096),
        count: 0,
        last: None,
    };
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let sent_at: String = row.get(1)?;
        let sender: String = row.get(2)?;
        let kind: String = row.get(3)?;
        let body: String = row.get(4)?;
        chunk.last = Some(id);
        chunk.count += 1;
        format_row(&mut chunk.text, &sent_at, &sender, &kind, &body);
    }
    debug!(
        "read {} history lines of {room} in {} us",
        chunk.count,
        started.elapsed().as_micros()
    );
    Ok(chunk)
}

/// Formats a stored line for a client: `[2026-11-27 16:40:17] alice: hi` or, for an action,
/// `[2026-11-27 16:40:17] * alice waves`.
fn format_row(out: &mut Vec<u8>, sent_at: &str, sender: &str, kind: &str, body: &str) {
    let when = sent_at.get(..19).unwrap_or(sent_at);
    let mut line = String::with_capacity(when.len() + sender.len() + body.len() + 8);
    let _ = if kind == "action" {
        writeln!(line, "[{when}] * {sender} {body}")
    } else {
        writeln!(line, "[{when}] {sender}: {body}")
    };
    out.extend_from_slice(line.as_bytes());
}

/// How long the writer keeps retrying a failing commit after shutdown has begun, before it gives
/// up and reports the lines as lost. While the server runs it retries for as long as it takes.
const GIVE_UP_AFTER_CLOSE: Duration = Duration::from_secs(10);

/// The writer thread: waits for a record, gathers more for up to one commit window (or until a
/// barrier asks for a commit now), and commits them in one transaction. Returns how many lines
/// could not be stored.
fn writer_loop(
    mut conn: Connection,
    rx: Receiver<WriterMsg>,
    committed: Arc<AtomicI64>,
    window: Duration,
) -> u64 {
    let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
    let mut barriers: Vec<Sender<()>> = Vec::new();
    let mut total: u64 = 0;
    let mut lost: u64 = 0;
    // Set when shutdown finds the database failing: past it, what is left is reported lost.
    let mut give_up_at: Option<Instant> = None;
    let mut closed = false;
    while !closed {
        let Ok(first) = rx.recv_blocking() else {
            break;
        };
        let deadline = Instant::now() + window;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Record(r) => batch.push(r),
                WriterMsg::Barrier(b) => barriers.push(b),
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = match rx.try_recv() {
                Ok(msg) => Some(msg),
                Err(TryRecvError::Closed) => {
                    closed = true;
                    None
                }
                // Somebody waits for a commit: take what is queued, then commit at once.
                Err(TryRecvError::Empty) if !barriers.is_empty() => None,
                // Nothing queued: wait for more until the window ends.
                Err(TryRecvError::Empty) => {
                    smol::block_on(future::or(async { rx.recv().await.ok() }, async {
                        smol::Timer::at(deadline).await;
                        None
                    }))
                }
            };
        }
        if !batch.is_empty() {
            if commit_with_retry(&mut conn, &batch, &rx, &mut give_up_at) {
                total += batch.len() as u64;
                if let Some(last) = batch.last() {
                    committed.store(last.id, Ordering::Release);
                }
            } else {
                lost += batch.len() as u64;
            }
            batch.clear();
        }
        for b in barriers.drain(..) {
            let _ = b.try_send(());
        }
    }
    info!("history writer stopped after storing {total} lines");
    lost
}

/// Commits a batch, retrying with back-off while the database is busy or failing (another
/// program holding a write lock, a full disk). Meanwhile the queue fills and the hub waits:
/// messages are held back rather than relayed and lost. Gives up only on errors that retrying
/// cannot fix, or after [`GIVE_UP_AFTER_CLOSE`] once the server is shutting down.
fn commit_with_retry(
    conn: &mut Connection,
    batch: &[Record],
    rx: &Receiver<WriterMsg>,
    give_up_at: &mut Option<Instant>,
) -> bool {
    let mut delay = Duration::from_millis(10);
    let mut failures: u32 = 0;
    loop {
        let e = match commit(conn, batch) {
            Ok(()) => {
                if failures > 0 {
                    info!("history commit succeeded after {failures} failures");
                }
                return true;
            }
            Err(e) => e,
        };
        failures += 1;
        if is_permanent(&e) {
            error!("{} lines not stored: {e}", batch.len());
            return false;
        }
        if rx.is_closed() {
            // One deadline for the whole shutdown, not one per batch.
            let deadline = *give_up_at.get_or_insert_with(|| Instant::now() + GIVE_UP_AFTER_CLOSE);
            if Instant::now() >= deadline {
                error!("{} lines not stored at shutdown: {e}", batch.len());
                return false;
            }
        }
        // Log the first failure and then about every ten seconds, not every retry.
        if failures == 1 || failures.is_multiple_of(10) {
            error!(
                "history commit of {} lines failed ({e}); retrying, messages are held meanwhile",
                batch.len()
            );
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Errors that no retry will fix: the rows themselves are at fault.
fn is_permanent(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TooBig)
    )
}

fn commit(conn: &mut Connection, batch: &[Record]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO messages (id, sent_at, sender, body, room, kind)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.id,
                clock::format_utc(r.at_ms),
                &*r.sender,
                &*r.body,
                &*r.room,
                r.kind.as_sql()
            ])?;
        }
    }
    tx.commit()
}
