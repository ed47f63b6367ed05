//! The chat history in SQLite: the schema, one writer thread with group commit, and a pool of
//! read connections for replays and searches.
//!
//! This is the only module that speaks SQL. No SQLite call runs on an executor thread: writes go
//! through a channel to a dedicated thread ([`writer`]) that commits in batches, as soon as the
//! previous batch is on disk, and a second thread ([`sync`]) makes each commit durable and
//! publishes it; reads run on a small fixed pool of reader threads ([`readers`]), with searches
//! on a thread of their own so that no number of searches delays a join's replay. Between
//! commits the writer indexes what it committed for search ([`index`]) and removes history
//! older than `--retention` ([`retention`]). [`file`] works on the file as a whole for the
//! command line: backup, check, compact.
//!
//! It must not know about sockets, sessions or membership: it stores and returns records.

pub mod accounts;
mod disk;
pub mod file;
mod index;
mod query;
mod readers;
mod retention;
mod retry;
mod schema;
mod search;
mod sync;
mod turns;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TrySendError};
use event_listener::Event;
use log::{error, info};
use smol::future;

use crate::metrics::WriterStats;
use crate::names::RoomName;
use crate::vocab::Kind;
use readers::ReadJob;
use writer::WriterMsg;

pub use query::{QueryError, SearchQuery};
pub use readers::{Rows, Span};
pub use retention::Policy as RetentionPolicy;
pub use schema::open_connection;
pub use search::Hits;
pub use turns::WriteTurns;
pub use writer::HistoryWriter;

/// Records that may wait for the writer before the hub waits too: two full batches. A bounded
/// channel allocates its slots up front, so this is also fixed memory.
const QUEUE: usize = 8 * 1024;

/// Longest a search waits for the index to cover the lines already committed (normally it
/// waits for the next index step, at most about `index::STEP_EVERY`, or not at all). Past it, while indexing
/// fails (a write lock held by another program, say), a search finds what the index covers.
/// Not configurable.
const SEARCH_WAITS_FOR_INDEX: Duration = Duration::from_secs(1);

/// Searches that may wait for the search thread; past them a search is refused as busy at once.
/// A session waits for its search before reading its next line, so this is also how many
/// searching users are served in turn before the next is told to try again. Normal searches
/// take a millisecond, so the queue only fills when many users search for costly things at
/// once (each bounded by `search::BUDGET`). Not configurable.
const SEARCH_QUEUE: usize = 32;

/// One line of public history, as the hub relayed it.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: i64,
    pub at_ms: i64,
    pub room: Arc<str>,
    pub sender: Arc<str>,
    pub kind: Kind,
    pub body: Arc<str>,
    /// Where the line sits in the cluster log, in cluster mode; `None` on a single node.
    pub log: Option<LogPos>,
}

/// One stored line as a replay reads it, for a door's [`Format`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub id: i64,
    /// `YYYY-MM-DD HH:MM:SS.SSS`, UTC, as stored.
    pub sent_at: &'a str,
    pub sender: &'a str,
    pub kind: Kind,
    pub body: &'a str,
}

/// Appends one row as a door shows history. It runs on a reader thread, beside the query, so a
/// replay costs the executor no formatting.
pub type Format = fn(&Row<'_>, &mut Vec<u8>);

/// A position in the cluster log, stored beside each row a cluster node writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPos {
    /// The Redis stream entry id, e.g. `1718000000000-0`.
    pub stream_id: Arc<str>,
    /// The entry's number in the log, counting every entry from 1.
    pub seq: i64,
}

/// What can go wrong with the history, as one enum so callers branch on it and print it as one
/// line.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot open the database file: {0}")]
    OpenFile(std::io::Error),
    #[error("cannot lock the database file: {0}")]
    Lock(std::io::Error),
    #[error("the database is in use by another smolchat server")]
    InUse,
    #[error("could not switch to WAL journal mode (got {0})")]
    NoWal(String),
    #[error("schema version {applied} is newer than this smolchat knows ({known})")]
    TooNew { applied: i64, known: i64 },
    #[error("cannot start a history thread: {0}")]
    Thread(std::io::Error),
    #[error("the history readers stopped")]
    ReadersGone,
    #[error("cannot open the write-ahead log for syncing: {0}")]
    Wal(String),
    /// [`SEARCH_QUEUE`] searches are already waiting.
    #[error("too many searches are waiting")]
    SearchBusy,
    /// An account write whose transaction could not be committed: it is not stored.
    #[error("not stored: {0}")]
    NotCommitted(String),
    /// The search read more of the index than one search may (`search::BUDGET`).
    #[error("the search would read too much of the index")]
    SearchTooCostly,
}

/// An error opening the database, with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("database {}: {source}", path.display())]
pub struct OpenError {
    pub path: PathBuf,
    pub source: StorageError,
}

/// How far the writer has got, shared by its threads and every history handle.
struct Progress {
    /// The highest id durable (or given up on and logged): the hub relays up to it.
    committed: AtomicI64,
    /// The index's mark: every line up to it can be found by a search.
    indexed: AtomicI64,
    /// Notified after each index step, for searches that wait for one.
    index_steps: Event,
}

impl Progress {
    /// Nothing pending: everything up to `last_id` is durable and indexed.
    fn new(last_id: i64) -> Progress {
        Progress {
            committed: AtomicI64::new(last_id),
            indexed: AtomicI64::new(last_id),
            index_steps: Event::new(),
        }
    }

    /// An index step moved the mark to `through`.
    fn indexed(&self, through: i64) {
        self.indexed.fetch_max(through, Ordering::AcqRel);
        self.index_steps.notify(usize::MAX);
    }

    /// Waits until the index covers `id`, at most [`SEARCH_WAITS_FOR_INDEX`].
    async fn index_covers(&self, id: i64) {
        let deadline = Instant::now() + SEARCH_WAITS_FOR_INDEX;
        while self.indexed.load(Ordering::Acquire) < id {
            let step = self.index_steps.listen();
            // Looked at again after listening, so a step in between is not missed.
            if self.indexed.load(Ordering::Acquire) >= id {
                return;
            }
            let timed_out = future::or(
                async {
                    step.await;
                    false
                },
                async {
                    smol::Timer::at(deadline).await;
                    true
                },
            )
            .await;
            if timed_out {
                return;
            }
        }
    }
}

/// A handle on the history: appends go to the writer thread, reads to the reader threads.
/// Cheap to clone; the writer stops once [`HistoryWriter::close`] is called and the queue drains.
#[derive(Clone)]
pub struct History {
    tx: Sender<WriterMsg>,
    progress: Arc<Progress>,
    /// Holds a token after each commit (a bounded(1) channel: one token stands for any number
    /// of commits), so the hub can sleep until there is something new to relay.
    commits: Receiver<()>,
    /// Replays and `/history` pages, for the reader pool.
    reads: Sender<ReadJob>,
    /// Searches, for the search thread: a queue of their own, bounded, so that searches wait
    /// for each other and never for, or in front of, a replay.
    searches: Sender<ReadJob>,
    /// Turns at writing the database, for every connection of this process that writes it.
    turns: WriteTurns,
}

/// How the history is kept: [`History::open_with`]'s settings.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// How long the writer waits after a batch's first line for more before it commits
    /// (`--commit-ms`); zero, the default, commits at once (see [`writer`]).
    pub commit_window: Duration,
    /// Caps the writer's connection at this many database pages (`PRAGMA max_page_count`).
    /// Past it every commit fails with "database or disk is full", exactly as on a full
    /// filesystem: this is how the tests inject a full disk without root.
    pub max_pages: Option<i64>,
    /// Messages older than this are removed (`--retention`); `None` keeps them forever.
    pub retention: Option<RetentionPolicy>,
    /// Testing only: retention's clock runs this far ahead of the real one, so a test can age
    /// messages without waiting (`--test-retention-ahead`).
    pub retention_ahead: Duration,
    /// Where the writer thread reports its commits (the metrics).
    pub stats: WriterStats,
    /// Testing only: each fsync waits while this file exists (`--test-hold-fsync`), so a test
    /// can hold a commit between its COMMIT and its fsync.
    pub hold_fsync: Option<PathBuf>,
}

impl History {
    /// Opens the database and starts the writer thread. Returns the handle, the writer's owner and
    /// the highest message id already stored.
    pub fn open(
        path: &Path,
        commit_window: Duration,
    ) -> Result<(History, HistoryWriter, i64), OpenError> {
        let settings = Settings {
            commit_window,
            ..Settings::default()
        };
        let (history, writer, last_id, _) = History::open_with(path, settings)?;
        Ok((history, writer, last_id))
    }

    /// [`History::open`] with every setting. Also returns where the newest stored row sits in
    /// the cluster log, which is where a cluster node resumes reading.
    pub fn open_with(
        path: &Path,
        settings: Settings,
    ) -> Result<(History, HistoryWriter, i64, Option<LogPos>), OpenError> {
        let Settings {
            commit_window,
            max_pages,
            retention,
            retention_ahead,
            stats,
            hold_fsync,
        } = settings;
        let err = |source| OpenError {
            path: path.to_owned(),
            source,
        };
        // Locked before anything else touches the file, so a second server (say, a newer binary)
        // cannot migrate a database that a running server is using.
        let lock = schema::lock_database(path).map_err(err)?;
        let mut conn = open_connection(path).map_err(err)?;
        index::index_by_batch(&conn).map_err(|e| err(e.into()))?;
        if let Some(pages) = max_pages {
            conn.pragma_update(None, "max_page_count", pages)
                .map_err(|e| err(e.into()))?;
        }
        let last_id = schema::last_id(&conn).map_err(err)?;
        let position = schema::log_position(&conn).map_err(err)?;
        // Lines committed but not indexed when the server last stopped (a crash between a commit
        // and its index step): indexed before anybody can search.
        let caught_up = index::catch_up(&mut conn, last_id).map_err(|e| err(e.into()))?;
        if caught_up > 0 {
            info!("search index: indexed {caught_up} messages committed before the last stop");
        }
        let wal = sync::WalFile::open(&conn, hold_fsync).map_err(err)?;
        let (tx, rx) = async_channel::bounded(QUEUE);
        let (commit_tx, commits) = async_channel::bounded(1);
        let progress = Arc::new(Progress::new(last_id));
        let syncer = {
            let progress = progress.clone();
            let publish = move |id| {
                progress.committed.store(id, Ordering::Release);
                // One token stands for any number of commits: a full channel is fine.
                let _ = commit_tx.try_send(());
            };
            let fsync = Box::new(move || wal.sync());
            sync::Syncer::start(fsync, Box::new(publish), stats.clone())
                .map_err(|e| err(StorageError::Thread(e)))?
        };
        let retention = retention.map(|policy| {
            retention::Retention::new(policy, &conn, crate::clock::now_ms, retention_ahead)
        });
        let turns = WriteTurns::default();
        let disk = disk::SqliteDisk::new(conn, last_id, retention, progress.clone(), turns.clone())
            .map_err(|e| err(e.into()))?;
        let thread = std::thread::Builder::new()
            .name("history-writer".into())
            .spawn(move || {
                let delay = writer::Delay::sleeping(commit_window);
                writer::writer_loop(disk, rx, syncer, delay, &stats)
            })
            .map_err(|e| err(StorageError::Thread(e)))?;
        let (reads, jobs) = async_channel::unbounded();
        for n in 0..readers::READERS {
            let jobs = jobs.clone();
            let path = path.to_owned();
            std::thread::Builder::new()
                .name(format!("history-reader-{n}"))
                .spawn(move || readers::reader_loop(&path, &jobs))
                .map_err(|e| err(StorageError::Thread(e)))?;
        }
        let (searches, search_jobs) = async_channel::bounded(SEARCH_QUEUE);
        {
            let path = path.to_owned();
            std::thread::Builder::new()
                .name("history-search".into())
                .spawn(move || readers::reader_loop(&path, &search_jobs))
                .map_err(|e| err(StorageError::Thread(e)))?;
        }
        let history = History {
            tx: tx.clone(),
            progress,
            commits,
            reads,
            searches,
            turns,
        };
        let writer = HistoryWriter {
            tx,
            thread: Some(thread),
            _lock: lock,
        };
        Ok((history, writer, last_id, position))
    }

    /// The turns at writing this database that the history writer takes: any other connection
    /// of this process that writes it (the account thread, catch-up) takes them too.
    pub fn write_turns(&self) -> WriteTurns {
        self.turns.clone()
    }

    /// Queues a record for the writer. Waits only when the writer is a full queue behind, which
    /// is backpressure on purpose: a stored message is never dropped.
    pub async fn append(&self, record: Record) {
        if self.tx.send(WriterMsg::Record(record)).await.is_err() {
            error!("history writer is gone; a message was not stored");
        }
    }

    /// Queues a record for the writer without waiting; hands it back when the queue is full.
    /// The hub uses this, and keeps what comes back, so a stalled disk never stalls the hub.
    pub fn try_append(&self, record: Record) -> Result<(), Record> {
        match self.tx.try_send(WriterMsg::Record(record)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(WriterMsg::Record(record))) => Err(record),
            Err(TrySendError::Closed(_)) => {
                error!("history writer is gone; a message was not stored");
                Ok(())
            }
            Err(TrySendError::Full(WriterMsg::Barrier(_))) => Ok(()),
        }
    }

    /// The highest id the writer is done with: committed and on disk (or, after an error no
    /// retry can fix, given up on and logged).
    pub fn committed(&self) -> i64 {
        self.progress.committed.load(Ordering::Acquire)
    }

    /// Resolves after the next commit (at once if one happened since the last call). Meant for
    /// one waiter, the hub: with several, a commit wakes only one of them.
    pub async fn commit_happened(&self) {
        let _ = self.commits.recv().await;
    }

    /// Waits until every record up to `id` is committed, so a replay read sees them.
    pub async fn wait_committed(&self, id: i64) {
        if self.committed() >= id {
            return;
        }
        let (done_tx, done_rx) = async_channel::bounded(1);
        if self.tx.send(WriterMsg::Barrier(done_tx)).await.is_ok() {
            let _ = done_rx.recv().await;
        }
    }

    /// How many of the last `limit` messages of `room` below id `before` exist, and the id of
    /// the oldest of them: where a page starts.
    pub async fn span(
        &self,
        room: &RoomName,
        before: i64,
        limit: u32,
    ) -> Result<Span, StorageError> {
        self.ask(|reply| ReadJob::Span {
            room: room.shared(),
            before,
            limit,
            reply,
        })
        .await
    }

    /// Up to `max` messages of `room` with ids in `from..before`, oldest first, each formatted
    /// by `format`. A page is streamed as a sequence of these, each asked for once the previous
    /// one is written, so a client that does not read holds at most one chunk in server memory.
    pub async fn rows(
        &self,
        room: &RoomName,
        (from, before): (i64, i64),
        max: u32,
        format: Format,
    ) -> Result<Rows, StorageError> {
        self.ask(|reply| ReadJob::Rows {
            room: room.shared(),
            from,
            before,
            max,
            format,
            reply,
        })
        .await
    }

    /// Up to `limit` messages of `room` below id `before` that match `query`, newest first,
    /// each formatted by `format`. The index trails the commits by a step: the search first
    /// waits for it to cover every line committed so far (at most [`SEARCH_WAITS_FOR_INDEX`]),
    /// so it finds every line the room has seen; and it stops at the newest durable line, so it
    /// never shows one a power cut could still take back. Runs on the search thread:
    /// [`StorageError::SearchBusy`] when too many searches wait for it,
    /// [`StorageError::SearchTooCostly`] when this one would read more of the index than a
    /// search may.
    pub async fn search(
        &self,
        (room, query): (&RoomName, &SearchQuery),
        before: i64,
        limit: u32,
        format: Format,
    ) -> Result<Hits, StorageError> {
        let committed = self.committed();
        self.progress.index_covers(committed).await;
        let before = before.min(committed.saturating_add(1));
        let (reply, answer) = async_channel::bounded(1);
        let job = ReadJob::Search {
            room: room.shared(),
            query: query.clone(),
            before,
            limit,
            format,
            reply,
        };
        match self.searches.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(StorageError::SearchBusy),
            Err(TrySendError::Closed(_)) => error!("the history search thread is gone"),
        }
        answer
            .recv()
            .await
            .unwrap_or(Err(StorageError::ReadersGone))
    }

    /// Hands a reader thread the job built around a reply channel, and waits for the answer.
    async fn ask<T>(
        &self,
        job: impl FnOnce(Sender<Result<T, StorageError>>) -> ReadJob,
    ) -> Result<T, StorageError> {
        let (reply, answer) = async_channel::bounded(1);
        if self.reads.try_send(job(reply)).is_err() {
            error!("history readers are gone");
        }
        answer
            .recv()
            .await
            .unwrap_or(Err(StorageError::ReadersGone))
    }
}

#[cfg(test)]
impl Record {
    /// A lobby line from bob, for tests.
    fn test(id: i64, body: &str) -> Record {
        Record {
            id,
            at_ms: 0,
            room: "lobby".into(),
            sender: "bob".into(),
            kind: Kind::Message,
            body: body.into(),
            log: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(history: &History, text: &str) -> Hits {
        let query = SearchQuery::parse(text).unwrap();
        smol::block_on(history.search((&RoomName::lobby(), &query), i64::MAX, 20, |_, _| {}))
            .unwrap()
    }

    /// A line is found by a search as soon as it is committed: the search waits for the index
    /// step that trails the commit.
    #[test]
    fn a_committed_line_is_found_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (history, writer, _) =
            History::open(&dir.path().join("chat.db"), Duration::ZERO).unwrap();
        for id in 1..=50 {
            smol::block_on(history.append(Record::test(id, &format!("needle{id}"))));
            smol::block_on(history.wait_committed(id));
            assert_eq!(
                search(&history, &format!("needle{id}")).count,
                1,
                "line {id}"
            );
        }
        assert_eq!(writer.close(), 0);
    }

    /// Lines committed but not indexed (the server stopped between a commit and its index step)
    /// are indexed when the history is opened again, once.
    #[test]
    fn lines_committed_but_not_indexed_are_indexed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        {
            // What the writer leaves when killed after a commit: rows past the index's mark.
            let conn = open_connection(&path).unwrap();
            index::index_by_batch(&conn).unwrap();
            for id in 1..=3 {
                conn.execute(
                    "INSERT INTO messages (id, sent_at, sender, body, room, kind)
                     VALUES (?1, '2026-01-01 00:00:00.000', 'bob', 'hello there', 'lobby',
                             'message')",
                    [id],
                )
                .unwrap();
            }
        }
        for _ in 0..2 {
            let (history, writer, last_id) = History::open(&path, Duration::ZERO).unwrap();
            assert_eq!(last_id, 3);
            assert_eq!(search(&history, "hello").count, 3);
            drop(history);
            writer.close();
        }
        let conn = open_connection(&path).unwrap();
        conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .expect("every row indexed exactly once");
    }

    /// Searches wait for each other on a thread of their own, never in front of a replay: with
    /// the search thread busy and its queue full, a page of history is still read at once, and
    /// one more search is refused as busy rather than queued behind the others.
    #[test]
    fn searches_never_hold_up_replays() {
        let dir = tempfile::tempdir().unwrap();
        let (history, writer, _) =
            History::open(&dir.path().join("chat.db"), Duration::ZERO).unwrap();
        let lobby = RoomName::lobby();
        let query = SearchQuery::parse("hello").unwrap();
        let (release, held) = async_channel::bounded::<()>(1);
        // The first keeps the search thread busy; the rest fill its queue.
        for _ in 0..=SEARCH_QUEUE {
            history
                .searches
                .send_blocking(ReadJob::Hold(held.clone()))
                .unwrap();
        }
        smol::block_on(async {
            let span = smol::future::or(
                async { Some(history.span(&lobby, i64::MAX, 20).await) },
                async {
                    smol::Timer::after(Duration::from_secs(60)).await;
                    None
                },
            )
            .await
            .expect("a replay waited behind searches");
            assert_eq!(span.unwrap().count, 0);
            assert!(matches!(
                history
                    .search((&lobby, &query), i64::MAX, 20, |_, _| {})
                    .await,
                Err(StorageError::SearchBusy)
            ));
            // Released, the thread drains its queue; then there is room again.
            drop(release);
            while !history.searches.is_empty() {
                std::thread::yield_now();
            }
            let hits = history
                .search((&lobby, &query), i64::MAX, 20, |_, _| {})
                .await
                .unwrap();
            assert_eq!(hits.count, 0);
        });
        drop(history);
        writer.close();
    }
}
