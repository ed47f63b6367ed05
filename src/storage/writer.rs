//! The one writer of the database: a dedicated thread with group commit.
//!
//! The writer waits for a record, gathers more for up to one commit window (or until a barrier
//! asks for a commit now), and commits them in one transaction: one fsync per batch instead of one
//! per line. A failed commit is retried, never dropped. After each commit it publishes the newest
//! committed id and signals the hub, which relays only lines up to that id: while commits fail,
//! chat pauses instead of relaying lines that are not stored.
//!
//! Between commits, and only then, it gives [`Retention`] a bounded step when one is due; also
//! between the retries of a commit that failed on a full disk, since a step makes room.
//!
//! It must not know about sessions or the hub: it sees records and barriers, nothing else.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TryRecvError};
use log::{error, info};
use rusqlite::{params, Connection};
use smol::future;

use super::index;
use super::retention::Retention;
use super::Record;
use crate::clock;
use crate::metrics::WriterStats;

/// Most rows in one transaction: past a few thousand, a bigger batch saves nothing measurable.
const MAX_BATCH: usize = 4096;

/// How long the writer keeps retrying a failing commit after shutdown has begun, before it gives
/// up and reports the lines as lost. While the server runs it retries for as long as it takes.
const GIVE_UP_AFTER_CLOSE: Duration = Duration::from_secs(10);

/// What the history handles send the writer.
pub(super) enum WriterMsg {
    Record(Record),
    /// Answered once everything queued before it is committed.
    Barrier(Sender<()>),
}

/// Owns the writer thread. Dropping it without `close` leaves the thread running until every
/// history handle is gone.
pub struct HistoryWriter {
    pub(super) tx: Sender<WriterMsg>,
    pub(super) thread: Option<JoinHandle<u64>>,
    /// An exclusive advisory lock on the database file, so two servers never write one history.
    pub(super) _lock: std::fs::File,
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

/// The writer thread's loop. Returns how many lines could not be stored.
pub(super) fn writer_loop(
    mut conn: Connection,
    rx: Receiver<WriterMsg>,
    committed: Arc<AtomicI64>,
    commit_signal: Sender<()>,
    window: Duration,
    mut retention: Option<Retention>,
    stats: WriterStats,
) -> u64 {
    let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
    let mut barriers: Vec<Sender<()>> = Vec::new();
    let mut total: u64 = 0;
    let mut lost: u64 = 0;
    // Set when shutdown finds the database failing: past it, what is left is reported lost.
    let mut give_up_at: Option<Instant> = None;
    let mut closed = false;
    while !closed {
        if let Some(retention) = retention.as_mut() {
            // Not once shutdown has begun: then only the queue matters.
            if !rx.is_closed() && retention.should_step(Instant::now(), rx.is_empty(), total) {
                retention.step(&mut conn, total);
            }
        }
        let first = match retention.as_ref().map(|r| r.next(total)) {
            // Wake for the next retention step if no line comes first.
            Some(due) => match recv_until(&rx, due) {
                Received::Msg(msg) => msg,
                Received::Timeout => continue,
                Received::Closed => break,
            },
            None => match rx.recv_blocking() {
                Ok(msg) => msg,
                Err(_) => break,
            },
        };
        closed = gather(&rx, first, window, &mut batch, &mut barriers);
        if !batch.is_empty() {
            let started = Instant::now();
            let retry = Retry {
                rx: &rx,
                give_up_at: &mut give_up_at,
                retention: retention.as_mut(),
                stored: total,
                stats: &stats,
            };
            if commit_with_retry(&mut conn, &batch, retry) {
                total += batch.len() as u64;
                stats.committed(batch.len(), started.elapsed());
            } else {
                lost += batch.len() as u64;
                stats.lost(batch.len());
            }
            stats.queued(rx.len());
            // Advanced after a permanent failure too (rows SQLite refuses outright, logged as an
            // error): otherwise the hub, which relays only committed ids, would wait forever.
            if let Some(last) = batch.last() {
                committed.store(last.id, Ordering::Release);
                let _ = commit_signal.try_send(());
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

/// What waiting for the queue until a deadline gave.
enum Received {
    Msg(WriterMsg),
    Timeout,
    Closed,
}

/// Waits for the next message until `deadline`.
fn recv_until(rx: &Receiver<WriterMsg>, deadline: Instant) -> Received {
    smol::block_on(future::or(
        async {
            match rx.recv().await {
                Ok(msg) => Received::Msg(msg),
                Err(_) => Received::Closed,
            }
        },
        async {
            smol::Timer::at(deadline).await;
            Received::Timeout
        },
    ))
}

/// Gathers one batch, starting with `first`: everything queued, and more until the window ends,
/// the batch is full, or a barrier wants a commit now. Returns true once the queue is closed.
fn gather(
    rx: &Receiver<WriterMsg>,
    first: WriterMsg,
    window: Duration,
    batch: &mut Vec<Record>,
    barriers: &mut Vec<Sender<()>>,
) -> bool {
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
            Err(TryRecvError::Closed) => return true,
            // Somebody waits for a commit: take what is queued, then commit at once.
            Err(TryRecvError::Empty) if !barriers.is_empty() => None,
            // No window: commit what is queued now. Lines that arrive meanwhile wait for the
            // next commit, so batches still grow with the load (one fsync per batch).
            Err(TryRecvError::Empty) if window.is_zero() => None,
            // Nothing queued: wait for more until the window ends.
            Err(TryRecvError::Empty) => {
                smol::block_on(future::or(async { rx.recv().await.ok() }, async {
                    smol::Timer::at(deadline).await;
                    None
                }))
            }
        };
    }
    false
}

/// What a failing commit's retries need besides the batch.
struct Retry<'a> {
    /// The queue, to know when shutdown has begun.
    rx: &'a Receiver<WriterMsg>,
    /// Set when shutdown finds the database failing: past it, the batch is given up.
    give_up_at: &'a mut Option<Instant>,
    /// On a full disk, retention's steps go on between the retries: what they remove makes
    /// the room the batch needs.
    retention: Option<&'a mut Retention>,
    /// Lines stored so far, for retention's schedule.
    stored: u64,
    /// Where failed attempts are counted (the metrics).
    stats: &'a WriterStats,
}

/// Commits a batch, retrying with back-off while the database is busy or failing (another
/// program holding a write lock, a full disk). Gives up only on errors that retrying cannot fix,
/// or after [`GIVE_UP_AFTER_CLOSE`] once the server is shutting down.
fn commit_with_retry(conn: &mut Connection, batch: &[Record], mut retry: Retry<'_>) -> bool {
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
        // Counted per attempt, so a stall shows while it lasts, not once it is over.
        retry.stats.failed();
        retry.stats.queued(retry.rx.len());
        if is_permanent(&e) {
            error!("{} lines not stored: {e}", batch.len());
            return false;
        }
        if retry.rx.is_closed() {
            // One deadline for the whole shutdown, not one per batch.
            let deadline = *retry
                .give_up_at
                .get_or_insert_with(|| Instant::now() + GIVE_UP_AFTER_CLOSE);
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
        // The file is full: the batch waits, but retention need not (a step frees more pages
        // than it needs, so it runs in a full file, and what it frees the batch can use). Otherwise a
        // full disk would stop the one thing that can make room, for as long as chat is paused.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
            if let Some(retention) = retry.retention.as_mut() {
                if Instant::now() >= retention.next(retry.stored) {
                    retention.step(conn, retry.stored);
                }
            }
        }
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
            "INSERT INTO messages (id, sent_at, sender, body, room, kind, stream_id, log_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (stream_id) DO NOTHING",
        )?;
        for r in batch {
            stmt.execute(params![
                r.id,
                clock::format_utc(r.at_ms),
                &*r.sender,
                &*r.body,
                &*r.room,
                r.kind.as_str(),
                r.log.as_ref().map(|l| &*l.stream_id),
                r.log.as_ref().map(|l| l.seq),
            ])?;
        }
    }
    let ids = batch.iter().map(|r| r.id);
    if let (Some(first), Some(last)) = (ids.clone().min(), ids.max()) {
        // One statement for the whole batch: see `index`.
        index::add(&tx, first, last)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema;
    use crate::vocab::Kind;

    fn retry<'a>(rx: &'a Receiver<WriterMsg>, give_up_at: &'a mut Option<Instant>) -> Retry<'a> {
        Retry {
            rx,
            give_up_at,
            retention: None,
            stored: 0,
            stats: &NO_STATS,
        }
    }

    /// Statistics the unit tests do not read.
    static NO_STATS: std::sync::LazyLock<WriterStats> =
        std::sync::LazyLock::new(WriterStats::default);

    fn record(id: i64) -> Record {
        Record {
            id,
            at_ms: 0,
            room: "lobby".into(),
            sender: "alice".into(),
            kind: Kind::Message,
            body: format!("line {id}").into(),
            log: None,
        }
    }

    /// Everything queued when the writer wakes goes into one batch, and a barrier ends the
    /// gathering at once instead of waiting out the window.
    #[test]
    fn a_batch_takes_what_is_queued_and_a_barrier_cuts_it() {
        let (tx, rx) = async_channel::unbounded();
        for id in 2..=5 {
            tx.try_send(WriterMsg::Record(record(id))).unwrap();
        }
        let (done, _wait) = async_channel::bounded(1);
        tx.try_send(WriterMsg::Barrier(done)).unwrap();
        let mut batch = Vec::new();
        let mut barriers = Vec::new();
        let started = Instant::now();
        let closed = gather(
            &rx,
            WriterMsg::Record(record(1)),
            Duration::from_secs(30),
            &mut batch,
            &mut barriers,
        );
        assert!(!closed);
        assert_eq!(
            batch.iter().map(|r| r.id).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(barriers.len(), 1);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited out the window"
        );
    }

    /// A batch stops growing at its maximum; the rest waits for the next one.
    #[test]
    fn a_batch_is_capped() {
        let (tx, rx) = async_channel::unbounded();
        for id in 2..=(MAX_BATCH as i64 + 10) {
            tx.try_send(WriterMsg::Record(record(id))).unwrap();
        }
        let mut batch = Vec::new();
        gather(
            &rx,
            WriterMsg::Record(record(1)),
            Duration::from_secs(30),
            &mut batch,
            &mut Vec::new(),
        );
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(rx.len(), 10);
    }

    /// A commit that finds the database locked by another connection is retried until the lock
    /// goes, and then stores every row.
    #[test]
    fn a_locked_database_is_retried_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let mut conn = schema::open_connection(&path).unwrap();
        conn.busy_timeout(Duration::from_millis(10)).unwrap();
        let blocker = Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            // Hold the write lock until the writer has failed at least once.
            release_rx.recv().unwrap();
            blocker.execute_batch("COMMIT").unwrap();
        });
        let (_tx, rx) = async_channel::unbounded::<WriterMsg>();
        let batch: Vec<Record> = (1..=3).map(record).collect();
        // The first attempt must fail while the lock is held.
        assert!(commit(&mut conn, &batch).is_err());
        release_tx.send(()).unwrap();
        assert!(commit_with_retry(&mut conn, &batch, retry(&rx, &mut None)));
        holder.join().unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    /// Rows that can never be stored (a duplicate id) are reported, not retried forever.
    #[test]
    fn a_permanent_error_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = schema::open_connection(&dir.path().join("chat.db")).unwrap();
        let (_tx, rx) = async_channel::unbounded::<WriterMsg>();
        assert!(commit_with_retry(
            &mut conn,
            &[record(1)],
            retry(&rx, &mut None)
        ));
        assert!(!commit_with_retry(
            &mut conn,
            &[record(1)],
            retry(&rx, &mut None)
        ));
    }

    /// On a full disk the waiting batch does not stop retention: its steps go on between the
    /// retries, free the pages of expired messages, and the batch then fits. (Here shutdown has
    /// begun, so without retention the writer would give the batch up after its deadline.)
    #[test]
    fn a_full_disk_leaves_retention_its_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = schema::open_connection(&dir.path().join("chat.db")).unwrap();
        index::index_by_batch(&conn).unwrap();
        let body = "an old line that retention will remove ".repeat(8);
        let old: Vec<Record> = (1..=3000)
            .map(|id| Record {
                body: format!("{body}{id}").into(),
                ..record(id)
            })
            .collect();
        commit(&mut conn, &old).unwrap();
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
        let new: Vec<Record> = (3001..=3200)
            .map(|id| Record {
                at_ms: crate::clock::now_ms(),
                body: format!("{body}new {id}").into(),
                ..record(id)
            })
            .collect();
        let full = commit(&mut conn, &new).unwrap_err();
        assert_eq!(
            full.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        );

        let policy = crate::storage::RetentionPolicy::parse("30d").unwrap();
        let mut retention = Retention::new(policy, &conn, crate::clock::now_ms, Duration::ZERO);
        let (_tx, rx) = async_channel::unbounded::<WriterMsg>();
        rx.close();
        let retry = Retry {
            rx: &rx,
            give_up_at: &mut None,
            retention: Some(&mut retention),
            stored: 3000,
            stats: &NO_STATS,
        };
        assert!(commit_with_retry(&mut conn, &new, retry));
        let (kept, newest): (i64, i64) = conn
            .query_row("SELECT count(*), max(id) FROM messages", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(newest, 3200);
        assert!(kept < 3200, "nothing was removed: {kept} rows");
    }
}
