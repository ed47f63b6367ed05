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
        include_str!("../migrations/0001_messages.sql"),
    ),
    ("0002_rooms", include_str!("../migrations/0002_rooms.sql")),
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
    conn.busy_timeout(Duration::from_secs(5))?;
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

/// A handle on the history: appends go to the writer thread, reads to the blocking pool.
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
    thread: Option<JoinHandle<()>>,
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

    /// Streams up to `limit` lines of `room` with ids below `before`, oldest first, formatted for
    /// a client, in chunks as the database produces them, then the page's summary.
    pub fn page(&self, room: &RoomName, before: i64, limit: u32) -> PageStream {
        // Unbounded, so a reader never waits on a slow client; a page is at most
        // MAX_HISTORY_PAGE rows, which bounds the memory.
        let (chunks, chunks_rx) = async_channel::unbounded();
        let (done, done_rx) = async_channel::bounded(1);
        let job = ReadJob {
            room: room.shared(),
            before,
            limit,
            chunks,
            done,
        };
        if self.reads.try_send(job).is_err() {
            error!("history readers are gone");
        }
        PageStream {
            chunks: chunks_rx,
            done: done_rx,
        }
    }
}

/// One page being read: its formatted chunks, then its summary.
pub struct PageStream {
    pub chunks: Receiver<Vec<u8>>,
    pub done: Receiver<rusqlite::Result<Page>>,
}

struct ReadJob {
    room: Arc<str>,
    before: i64,
    limit: u32,
    chunks: Sender<Vec<u8>>,
    done: Sender<rusqlite::Result<Page>>,
}

impl HistoryWriter {
    /// Closes the queue, lets the writer commit everything queued, and waits for it to stop.
    pub fn close(mut self) {
        self.tx.close();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("history writer thread panicked");
            }
        }
    }
}

/// What one page of history held.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Lines sent.
    pub count: u32,
    /// The smallest id sent, if any: the `before` of the next page.
    pub oldest: Option<i64>,
}

/// A reader thread: opens its read-only connection on first use and serves pages until every
/// history handle is gone. A failed connection is dropped and opened again for the next job.
fn reader_loop(path: &Path, jobs: &Receiver<ReadJob>) {
    let mut conn: Option<Connection> = None;
    while let Ok(job) = jobs.recv_blocking() {
        let result = match conn.take() {
            Some(c) => Ok(c),
            None => open_reader(path),
        }
        .and_then(|c| {
            let page = read_page(&c, &job.room, job.before, job.limit, &job.chunks);
            conn = Some(c);
            page
        });
        if result.is_err() {
            conn = None;
        }
        let _ = job.done.try_send(result);
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

/// Reads one page and sends it to the session in chunks.
fn read_page(
    conn: &Connection,
    room: &str,
    before: i64,
    limit: u32,
    out: &Sender<Vec<u8>>,
) -> rusqlite::Result<Page> {
    let started = Instant::now();
    let mut page = Page {
        count: 0,
        oldest: None,
    };
    {
        // The inner query walks the (room, id) index backwards from `before`; the outer one
        // puts the page back in reading order.
        let mut stmt = conn.prepare_cached(
            "SELECT id, sent_at, sender, kind, body FROM (
                     SELECT id, sent_at, sender, kind, body FROM messages
                     WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3
                 ) ORDER BY id",
        )?;
        let mut rows = stmt.query(params![room, before, i64::from(limit)])?;
        let mut chunk = Vec::with_capacity(4096);
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let sent_at: String = row.get(1)?;
            let sender: String = row.get(2)?;
            let kind: String = row.get(3)?;
            let body: String = row.get(4)?;
            page.oldest.get_or_insert(id);
            page.count += 1;
            format_row(&mut chunk, &sent_at, &sender, &kind, &body);
            if chunk.len() >= 16 * 1024 && out.try_send(std::mem::take(&mut chunk)).is_err() {
                break;
            }
        }
        if !chunk.is_empty() {
            let _ = out.try_send(chunk);
        }
    }
    debug!(
        "read {} history lines of {room} in {} us",
        page.count,
        started.elapsed().as_micros()
    );
    Ok(page)
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

/// The writer thread: waits for a record, gathers more for up to one commit window (or until a
/// barrier asks for a commit now), and commits them in one transaction.
fn writer_loop(
    mut conn: Connection,
    rx: Receiver<WriterMsg>,
    committed: Arc<AtomicI64>,
    window: Duration,
) {
    let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
    let mut barriers: Vec<Sender<()>> = Vec::new();
    let mut total: u64 = 0;
    loop {
        let first = match rx.recv_blocking() {
            Ok(msg) => msg,
            Err(_) => break,
        };
        let deadline = Instant::now() + window;
        let mut next = Some(first);
        let mut closed = false;
        while let Some(msg) = next.take() {
            match msg {
                WriterMsg::Record(r) => batch.push(r),
                WriterMsg::Barrier(b) => barriers.push(b),
            }
            if batch.len() >= MAX_BATCH || !barriers.is_empty() {
                break;
            }
            next = match rx.try_recv() {
                Ok(msg) => Some(msg),
                Err(TryRecvError::Closed) => {
                    closed = true;
                    None
                }
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
            match commit(&mut conn, &batch) {
                Ok(()) => {
                    total += batch.len() as u64;
                    if let Some(last) = batch.last() {
                        committed.store(last.id, Ordering::Release);
                    }
                }
                // Retrying forever would stall every room; the error is logged loudly instead.
                Err(e) => error!("history commit of {} lines failed: {e}", batch.len()),
            }
            batch.clear();
        }
        for b in barriers.drain(..) {
            let _ = b.try_send(());
        }
        if closed {
            break;
        }
    }
    info!("history writer stopped after storing {total} lines");
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
