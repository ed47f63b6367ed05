//! The one writer of the database: a dedicated thread with group commit.
//!
//! A line is relayed once its commit is on disk, so what counts is how soon after it arrives that
//! is. The writer never waits for a window when it is idle: the first line that comes is
//! committed at once. The commit is written without waiting for the disk and handed to the
//! syncer (`sync`), whose fsync makes it durable and publishes it. While that fsync is in flight,
//! lines gather in the queue without waking the writer; once it returns, the next commit takes
//! everything queued. So batches grow with the load (one fsync per batch, none per line), a line
//! is on disk within about two fsyncs of arriving (the one in flight, then its own), and the
//! writer is woken about once per batch, never per line. `--commit-ms` adds an optional delay
//! after a batch's first line, for fewer fsyncs at the price of that much latency.
//!
//! While an fsync is in flight, and when nothing is queued, the writer does the work no line
//! waits for ([`Disk::between`]): indexing the committed lines for search, checkpoints, and
//! retention's steps. A failed commit is retried, never dropped (`retry`); the hub relays only
//! what the syncer published, so while commits fail, chat pauses instead of relaying lines that
//! are not stored. On a full disk, retention's steps go on between the retries
//! ([`Disk::refused`]), since a step makes room.
//!
//! It must not know about sessions or the hub, nor SQL: it sees records and barriers, and hands
//! batches to a [`Disk`].

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TryRecvError};
use log::{error, info};
use smol::future;

use super::retry::Retry;
use super::sync::{Job, Syncer};
use super::Record;
use crate::metrics::WriterStats;

/// Most rows in one transaction: past a few thousand, a bigger batch saves nothing measurable.
pub(super) const MAX_BATCH: usize = 4096;

/// What the history handles send the writer.
pub(super) enum WriterMsg {
    Record(Record),
    /// Answered once everything queued before it is durable.
    Barrier(Sender<()>),
}

/// What the group commit needs of the database.
pub(super) trait Disk {
    /// Writes a batch in one transaction without waiting for the disk: visible at once, durable
    /// once the syncer's next fsync returns.
    fn write(&mut self, batch: &[Record]) -> rusqlite::Result<()>;
    /// A write failed with `e` and will be retried (unless `e` is permanent): on a full disk,
    /// retention may step now, since what it removes makes the room the batch needs.
    fn refused(&mut self, e: &rusqlite::Error, stored: u64);
    /// Every id up to `through` is settled: written, or refused for good.
    fn settled(&mut self, through: i64);
    /// Work no line waits for, run after each commit while its fsync is in flight, and when
    /// [`Disk::next_due`] comes with nothing queued. `idle`: nothing is queued; `stored`: lines
    /// written so far.
    fn between(&mut self, now: Instant, idle: bool, stored: u64);
    /// When `between` has work next, if no line comes first.
    fn next_due(&self, now: Instant, stored: u64) -> Option<Instant>;
    /// After the last commit, at shutdown.
    fn finish(&mut self);
}

/// The optional gathering delay after a batch's first line (`--commit-ms`), and how to wait it
/// out: `std::thread::sleep`, or a test's gate.
pub(super) struct Delay {
    pub length: Duration,
    pub sleep: Box<dyn FnMut(Duration) + Send>,
}

impl Delay {
    /// A delay of `length` waited out with `std::thread::sleep`; zero waits nothing.
    pub(super) fn sleeping(length: Duration) -> Delay {
        Delay {
            length,
            sleep: Box::new(std::thread::sleep),
        }
    }
}

/// What the writer did, for its last log line and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stats {
    /// Lines written.
    pub lines: u64,
    /// Lines that could not be stored (zero unless the database kept failing).
    pub lost: u64,
    /// Transactions of lines.
    pub commits: u64,
    /// Times the writer slept and was woken: for a line, or for the end of an fsync.
    pub wakes: u64,
}

/// Owns the writer thread. Dropping it without `close` leaves the thread running until every
/// history handle is gone.
pub struct HistoryWriter {
    pub(super) tx: Sender<WriterMsg>,
    pub(super) thread: Option<JoinHandle<Stats>>,
    /// An exclusive advisory lock on the database file, so two servers never write one history.
    pub(super) _lock: std::fs::File,
}

impl HistoryWriter {
    /// Closes the queue, lets the writer commit everything queued, and waits for it to stop.
    /// Returns how many lines could not be stored (zero unless the database kept failing).
    pub fn close(mut self) -> u64 {
        self.tx.close();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(stats)) => stats.lost,
            Some(Err(_)) => {
                error!("history writer thread panicked");
                1
            }
            None => 0,
        }
    }
}

/// The writer thread's loop, until the queue is closed and drained.
pub(super) fn writer_loop<D: Disk>(
    mut disk: D,
    rx: Receiver<WriterMsg>,
    syncer: Syncer,
    mut delay: Delay,
    metrics: &WriterStats,
) -> Stats {
    let mut batch: Vec<Record> = Vec::with_capacity(MAX_BATCH);
    let mut stats = Stats::default();
    // Set when shutdown finds the database failing: past it, what is left is reported lost.
    let mut give_up_at: Option<Instant> = None;
    loop {
        // Right after a commit (its fsync in flight) or with nothing queued: no line waits. Not
        // once shutdown has begun: then only the queue matters (`finish` completes the index).
        if !rx.is_closed() {
            disk.between(Instant::now(), rx.is_empty(), stats.lines);
        }
        // Lines arriving meanwhile gather in the queue; only the fsync's end wakes the writer.
        stats.wakes += u64::from(syncer.wait_idle());
        let first = match rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Closed) => break,
            Err(TryRecvError::Empty) => {
                stats.wakes += 1;
                match recv_until(&rx, disk.next_due(Instant::now(), stats.lines)) {
                    Received::Msg(msg) => msg,
                    Received::Due => continue,
                    Received::Closed => break,
                }
            }
        };
        if !delay.length.is_zero() {
            (delay.sleep)(delay.length);
        }
        let mut job = Job::default();
        let closed = gather(&rx, first, &mut batch, &mut job.barriers);
        if let Some(last) = batch.last().map(|r| r.id) {
            let lines = batch.len() as u64;
            job.began = Some(Instant::now());
            let retry = Attempts {
                rx: &rx,
                give_up_at: &mut give_up_at,
                stored: stats.lines,
                metrics,
            };
            job.written = commit_with_retry(&mut disk, &batch, retry);
            if job.written {
                stats.lines += lines;
            } else {
                stats.lost += lines;
                metrics.lost(batch.len());
            }
            stats.commits += 1;
            // Also after a batch refused for good (logged): otherwise the hub, which relays only
            // published ids, would wait for it forever.
            disk.settled(last);
            job.through = Some(last);
            job.lines = lines;
            batch.clear();
        }
        metrics.queued(rx.len());
        syncer.submit(job);
        if closed {
            break;
        }
    }
    disk.finish();
    stats.lost += syncer.close();
    info!(
        "history writer stopped after storing {} lines in {} commits",
        stats.lines, stats.commits
    );
    stats
}

/// What waiting for the queue gave.
enum Received {
    Msg(WriterMsg),
    /// The time given came first: `between` has work.
    Due,
    Closed,
}

/// Waits for the next message, or until `due` if given.
fn recv_until(rx: &Receiver<WriterMsg>, due: Option<Instant>) -> Received {
    let recv = async {
        match rx.recv().await {
            Ok(msg) => Received::Msg(msg),
            Err(_) => Received::Closed,
        }
    };
    match due {
        None => smol::block_on(recv),
        Some(at) => smol::block_on(future::or(recv, async {
            smol::Timer::at(at).await;
            Received::Due
        })),
    }
}

/// Gathers one batch, starting with `first`: everything queued, up to [`MAX_BATCH`] lines.
/// Never waits. Returns true once the queue is closed and empty.
fn gather(
    rx: &Receiver<WriterMsg>,
    first: WriterMsg,
    batch: &mut Vec<Record>,
    barriers: &mut Vec<Sender<()>>,
) -> bool {
    let mut next = Some(first);
    while let Some(msg) = next.take() {
        match msg {
            WriterMsg::Record(r) => batch.push(r),
            WriterMsg::Barrier(b) => barriers.push(b),
        }
        if batch.len() >= MAX_BATCH {
            return false;
        }
        next = match rx.try_recv() {
            Ok(msg) => Some(msg),
            Err(TryRecvError::Closed) => return true,
            Err(TryRecvError::Empty) => None,
        };
    }
    false
}

/// What a batch's attempts need besides the batch.
struct Attempts<'a> {
    /// The queue, to know when shutdown has begun.
    rx: &'a Receiver<WriterMsg>,
    /// Set when shutdown finds the database failing: past it, the batch is given up.
    give_up_at: &'a mut Option<Instant>,
    /// Lines stored so far, for retention's schedule.
    stored: u64,
    /// Where failed attempts are counted.
    metrics: &'a WriterStats,
}

/// Writes a batch, retrying while the database is busy or failing (another program holding a
/// write lock, a full disk). Gives up only on errors that retrying cannot fix, or once shutdown
/// has begun and the retries have gone on too long.
fn commit_with_retry(disk: &mut impl Disk, batch: &[Record], attempts: Attempts<'_>) -> bool {
    let Attempts {
        rx,
        give_up_at,
        stored,
        metrics,
    } = attempts;
    Retry {
        what: &|| format!("history commit of {} lines", batch.len()),
        permanent: &is_permanent,
        closing: &|| rx.is_closed(),
        give_up_at,
    }
    .run(|| {
        let result = disk.write(batch);
        if let Err(e) = &result {
            // Counted per attempt, so a stall shows while it lasts, not once it is over.
            metrics.failed();
            metrics.queued(rx.len());
            disk.refused(e, stored);
        }
        result
    })
}

/// Errors that no retry will fix: the rows themselves are at fault.
fn is_permanent(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TooBig)
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, Mutex};

    use super::*;
    use crate::storage::disk::SqliteDisk;
    use crate::storage::retention::Retention;
    use crate::storage::{index, schema, Progress};

    /// Statistics the unit tests do not read.
    static NO_STATS: std::sync::LazyLock<WriterStats> =
        std::sync::LazyLock::new(WriterStats::default);

    fn attempts<'a>(
        rx: &'a Receiver<WriterMsg>,
        give_up_at: &'a mut Option<Instant>,
    ) -> Attempts<'a> {
        Attempts {
            rx,
            give_up_at,
            stored: 0,
            metrics: &NO_STATS,
        }
    }

    /// Generous: these waits end as soon as the writer acts.
    const TIMEOUT: Duration = Duration::from_secs(30);

    fn record(id: i64) -> Record {
        Record::test(id, &format!("line {id}"))
    }

    /// A disk that remembers its batches and checks that none is written while an fsync is in
    /// flight.
    struct FakeDisk {
        batches: Arc<Mutex<Vec<Vec<i64>>>>,
        syncing: Arc<AtomicBool>,
    }

    impl Disk for FakeDisk {
        fn write(&mut self, batch: &[Record]) -> rusqlite::Result<()> {
            assert!(
                !self.syncing.load(Ordering::SeqCst),
                "written during an fsync"
            );
            let ids = batch.iter().map(|r| r.id).collect();
            self.batches.lock().unwrap().push(ids);
            Ok(())
        }
        fn refused(&mut self, _: &rusqlite::Error, _: u64) {}
        fn settled(&mut self, _: i64) {}
        fn between(&mut self, _: Instant, _: bool, _: u64) {}
        fn next_due(&self, _: Instant, _: u64) -> Option<Instant> {
            None
        }
        fn finish(&mut self) {}
    }

    /// A writer on a fake disk whose fsyncs wait for the test's word (when `gated`), and what the
    /// test watches it with.
    struct Rig {
        tx: Sender<WriterMsg>,
        batches: Arc<Mutex<Vec<Vec<i64>>>>,
        /// One message per fsync begun.
        fsyncs: mpsc::Receiver<()>,
        /// Lets one gated fsync finish.
        release: mpsc::Sender<()>,
        published: mpsc::Receiver<i64>,
        thread: JoinHandle<Stats>,
    }

    impl Rig {
        fn start(gated: bool, delay: Delay) -> Rig {
            let batches = Arc::new(Mutex::new(Vec::new()));
            let syncing = Arc::new(AtomicBool::new(false));
            let (fsync_tx, fsyncs) = mpsc::channel();
            let (release, gate) = mpsc::channel::<()>();
            let (published_tx, published) = mpsc::channel();
            let in_fsync = syncing.clone();
            let syncer = Syncer::start(
                Box::new(move || {
                    in_fsync.store(true, Ordering::SeqCst);
                    let _ = fsync_tx.send(());
                    if gated {
                        let _ = gate.recv_timeout(TIMEOUT);
                    }
                    in_fsync.store(false, Ordering::SeqCst);
                    Ok(())
                }),
                Box::new(move |id| {
                    let _ = published_tx.send(id);
                }),
                WriterStats::default(),
            )
            .unwrap();
            let disk = FakeDisk {
                batches: batches.clone(),
                syncing,
            };
            let (tx, rx) = async_channel::unbounded();
            let thread =
                std::thread::spawn(move || writer_loop(disk, rx, syncer, delay, &NO_STATS));
            Rig {
                tx,
                batches,
                fsyncs,
                release,
                published,
                thread,
            }
        }

        fn send(&self, ids: impl IntoIterator<Item = i64>) {
            for id in ids {
                self.tx.try_send(WriterMsg::Record(record(id))).unwrap();
            }
        }

        fn fsync_begins(&self) {
            self.fsyncs.recv_timeout(TIMEOUT).expect("no fsync began");
        }

        fn published(&self) -> i64 {
            self.published
                .recv_timeout(TIMEOUT)
                .expect("nothing published")
        }

        fn batches(&self) -> Vec<Vec<i64>> {
            self.batches.lock().unwrap().clone()
        }

        fn stop(self) -> Stats {
            self.tx.close();
            self.thread.join().unwrap()
        }
    }

    /// An idle writer commits a line at once: it does not wait for more (the second line, sent
    /// only once the first is published, is a batch of its own), and nothing is published
    /// before its fsync.
    #[test]
    fn an_idle_writer_commits_at_once() {
        let rig = Rig::start(false, Delay::sleeping(Duration::ZERO));
        rig.send([1]);
        assert_eq!(rig.published(), 1);
        rig.send([2]);
        assert_eq!(rig.published(), 2);
        assert_eq!(rig.batches(), [vec![1], vec![2]]);
        let stats = rig.stop();
        assert_eq!((stats.lines, stats.commits), (2, 2));
    }

    /// While a commit's fsync is in flight, the lines that arrive gather (none is written then:
    /// the fake disk checks) and go in one commit once it returns; the writer is woken about once
    /// per batch, not once per line.
    #[test]
    fn a_commit_in_flight_gathers_and_wakes_once_per_batch() {
        let rig = Rig::start(true, Delay::sleeping(Duration::ZERO));
        rig.send([1]);
        rig.fsync_begins();
        rig.send(2..=200);
        rig.release.send(()).unwrap();
        assert_eq!(rig.published(), 1);
        rig.fsync_begins();
        assert_eq!(rig.batches(), [vec![1], (2..=200).collect::<Vec<_>>()]);
        rig.release.send(()).unwrap();
        assert_eq!(rig.published(), 200);
        let stats = rig.stop();
        assert_eq!((stats.lines, stats.commits), (200, 2));
        // Woken by line 1, by the end of each fsync, and by the queue's closing: not 200 times.
        assert!(stats.wakes <= 4, "{stats:?}");
    }

    /// A barrier is answered only once everything queued before it is durable.
    #[test]
    fn a_barrier_waits_for_the_fsync_before_it() {
        let rig = Rig::start(true, Delay::sleeping(Duration::ZERO));
        rig.send([1]);
        rig.fsync_begins();
        let (barrier, answered) = async_channel::bounded(1);
        rig.tx.try_send(WriterMsg::Barrier(barrier)).unwrap();
        assert!(answered.try_recv().is_err());
        rig.release.send(()).unwrap();
        answered.recv_blocking().unwrap();
        assert_eq!(rig.published(), 1);
        rig.stop();
    }

    /// With `--commit-ms`, the writer waits that long after a batch's first line, and lines that
    /// come meanwhile join the batch.
    #[test]
    fn a_delay_gathers_after_the_first_line() {
        let (sleeping_tx, sleeping) = mpsc::channel();
        let (wake, alarm) = mpsc::channel::<()>();
        let delay = Delay {
            length: Duration::from_millis(20),
            sleep: Box::new(move |length| {
                sleeping_tx.send(length).unwrap();
                alarm.recv_timeout(TIMEOUT).unwrap();
            }),
        };
        let rig = Rig::start(false, delay);
        rig.send([1]);
        assert_eq!(
            sleeping.recv_timeout(TIMEOUT).unwrap(),
            Duration::from_millis(20)
        );
        rig.send(2..=5);
        wake.send(()).unwrap();
        assert_eq!(rig.published(), 5);
        assert_eq!(rig.batches(), [vec![1, 2, 3, 4, 5]]);
        rig.stop();
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
            &mut batch,
            &mut Vec::new(),
        );
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(rx.len(), 10);
    }

    fn sqlite_disk(path: &std::path::Path) -> SqliteDisk {
        let conn = schema::open_connection(path).unwrap();
        conn.busy_timeout(Duration::from_millis(10)).unwrap();
        index::index_by_batch(&conn).unwrap();
        SqliteDisk::new(
            conn,
            0,
            None,
            Arc::new(Progress::new(0)),
            Default::default(),
        )
        .unwrap()
    }

    /// A commit that finds the database locked by another connection is retried until the lock
    /// goes, and then stores every row.
    #[test]
    fn a_locked_database_is_retried_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let mut disk = sqlite_disk(&path);
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            // Hold the write lock until the writer has failed at least once.
            release_rx.recv().unwrap();
            blocker.execute_batch("COMMIT").unwrap();
        });
        let (_tx, rx) = async_channel::unbounded::<WriterMsg>();
        let batch: Vec<Record> = (1..=3).map(record).collect();
        // The first attempt must fail while the lock is held.
        assert!(disk.write(&batch).is_err());
        release_tx.send(()).unwrap();
        assert!(commit_with_retry(
            &mut disk,
            &batch,
            attempts(&rx, &mut None)
        ));
        holder.join().unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    /// Rows that can never be stored (a duplicate id) are reported, not retried forever.
    #[test]
    fn a_permanent_error_is_not_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = sqlite_disk(&dir.path().join("chat.db"));
        let (_tx, rx) = async_channel::unbounded::<WriterMsg>();
        assert!(commit_with_retry(
            &mut disk,
            &[record(1)],
            attempts(&rx, &mut None)
        ));
        assert!(!commit_with_retry(
            &mut disk,
            &[record(1)],
            attempts(&rx, &mut None)
        ));
    }

    /// On a full disk the waiting batch does not stop retention: its steps go on between the
    /// retries, free the pages of expired messages, and the batch then fits. (Here shutdown has
    /// begun, so without retention the writer would give the batch up after its deadline.)
    #[test]
    fn a_full_disk_leaves_retention_its_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let body = "an old line that retention will remove ".repeat(8);
        let old: Vec<Record> = (1..=3000)
            .map(|id| Record {
                body: format!("{body}{id}").into(),
                ..record(id)
            })
            .collect();
        sqlite_disk(&path).write(&old).unwrap();
        let conn = schema::open_connection(&path).unwrap();
        let pages: i64 = conn
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
        let policy = crate::storage::RetentionPolicy::parse("30d").unwrap();
        let retention = Retention::new(policy, &conn, crate::clock::now_ms, Duration::ZERO);
        let mut disk = SqliteDisk::new(
            conn,
            3000,
            Some(retention),
            Arc::new(Progress::new(3000)),
            Default::default(),
        )
        .unwrap();
        let new: Vec<Record> = (3001..=3200)
            .map(|id| Record {
                at_ms: crate::clock::now_ms(),
                body: format!("{body}new {id}").into(),
                ..record(id)
            })
            .collect();
        let full = disk.write(&new).unwrap_err();
        assert_eq!(
            full.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        );
        let (_tx, rx) = async_channel::unbounded::<WriterMsg>();
        rx.close();
        let mut give_up_at = None;
        let attempts = Attempts {
            stored: 3000,
            ..attempts(&rx, &mut give_up_at)
        };
        assert!(commit_with_retry(&mut disk, &new, attempts));
        drop(disk);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let (kept, newest): (i64, i64) = conn
            .query_row("SELECT count(*), max(id) FROM messages", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(newest, 3200);
        assert!(kept < 3200, "nothing was removed: {kept} rows");
    }
}
