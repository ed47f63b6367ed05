//! Making the writer's commits durable off its thread: the syncer.
//!
//! The writer commits each batch with `synchronous=NORMAL`: SQLite appends it to the WAL file and
//! returns without waiting for the disk. It hands the batch to this thread, which `fdatasync`s the
//! WAL file and only then publishes the batch's newest id (the hub relays up to it) and answers
//! the barriers that waited for it. While that fsync is in flight the writer does the work no line
//! waits for (indexing for search, checkpoints, retention), and new lines gather in its queue for
//! the next commit.
//!
//! Why this is as durable as `synchronous=FULL`: a WAL transaction survives a power cut once its
//! frames, everything before them and the WAL header are on stable storage, and FULL gets there
//! with one fsync of the WAL file after writing them. This thread makes that same fsync, on its
//! own descriptor of the same file, after the commit has returned; so whatever it publishes
//! survives a power cut. NORMAL keeps the file consistent (SQLite syncs the WAL before every
//! checkpoint), so whatever was committed later is, after a crash, there whole or not at all.
//! Readers may see a row before its fsync: the hub relays none of those, and `History::search`
//! stops at the published id.
//!
//! It must not know SQL or records: it syncs a file and publishes ids.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use async_channel::Sender;
use rusqlite::Connection;

use super::retry::Retry;
use super::StorageError;
use crate::metrics::WriterStats;

/// What the writer hands over after a commit.
#[derive(Debug, Default)]
pub(super) struct Job {
    /// The newest id settled since the last job (committed, or refused for good); `None` when
    /// only barriers came.
    pub through: Option<i64>,
    /// Whether anything was written that needs the fsync.
    pub written: bool,
    /// Lines in it: counted lost if the fsync never succeeds (only possible at shutdown).
    pub lines: u64,
    /// When its commit began: the commit latency the metrics show runs from then to the end of
    /// the fsync, which is what a line waits for before it is relayed.
    pub began: Option<Instant>,
    /// Answered once everything before them is durable.
    pub barriers: Vec<Sender<()>>,
}

/// The syncer thread and its one-job mailbox. The writer hands over a job only once the previous
/// one is done ([`Syncer::wait_idle`]), so there is never more than one fsync in flight and each
/// covers one commit.
pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<u64>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a job is handed over, when one is done, and at close.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    job: Option<Job>,
    busy: bool,
    closed: bool,
}

/// Makes a job durable: `fdatasync` of the WAL file, or a fake in tests.
pub(super) type Fsync = Box<dyn FnMut() -> io::Result<()> + Send>;

/// Tells the world an id is durable: stores it where the hub reads it and wakes the hub.
pub(super) type Publish = Box<dyn FnMut(i64) + Send>;

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    // A panic elsewhere cannot leave the state half-changed: every update is one assignment.
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Syncer {
    /// Starts the thread, which reports each durable commit (and each failed fsync) to
    /// `metrics`.
    pub(super) fn start(
        fsync: Fsync,
        publish: Publish,
        metrics: WriterStats,
    ) -> io::Result<Syncer> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("history-sync".into())
                .spawn(move || run(&shared, fsync, publish, &metrics))?
        };
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    /// Blocks until no fsync is in flight. Returns whether it had to wait.
    pub(super) fn wait_idle(&self) -> bool {
        let mut state = lock(&self.shared);
        let mut waited = false;
        while state.busy || state.job.is_some() {
            waited = true;
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        waited
    }

    /// Hands over a job. Call [`Syncer::wait_idle`] first.
    pub(super) fn submit(&self, job: Job) {
        let mut state = lock(&self.shared);
        debug_assert!(state.job.is_none() && !state.busy, "one fsync at a time");
        state.job = Some(job);
        self.shared.changed.notify_all();
    }

    /// Lets the thread finish the job it has and stop. Returns how many lines could not be made
    /// durable.
    pub(super) fn close(mut self) -> u64 {
        lock(&self.shared).closed = true;
        self.shared.changed.notify_all();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(lost)) => lost,
            Some(Err(_)) => {
                log::error!("history sync thread panicked");
                1
            }
            None => 0,
        }
    }
}

/// The thread: one job at a time, fsync, publish, answer the barriers.
fn run(shared: &Shared, mut fsync: Fsync, mut publish: Publish, metrics: &WriterStats) -> u64 {
    let mut lost = 0;
    let mut give_up_at: Option<Instant> = None;
    loop {
        let job = {
            let mut state = lock(shared);
            loop {
                if let Some(job) = state.job.take() {
                    state.busy = true;
                    break job;
                }
                if state.closed {
                    return lost;
                }
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let durable = !job.written
            || Retry {
                what: &|| format!("history fsync of {} lines", job.lines),
                permanent: &|_: &io::Error| false,
                closing: &|| lock(shared).closed,
                give_up_at: &mut give_up_at,
            }
            .run(|| {
                let result = fsync();
                if result.is_err() {
                    metrics.failed();
                }
                result
            });
        if durable {
            if let (true, Some(began)) = (job.written, job.began) {
                metrics.committed(job.lines as usize, began.elapsed());
            }
            if let Some(through) = job.through {
                publish(through);
            }
        } else {
            lost += job.lines;
            metrics.lost(job.lines as usize);
        }
        for barrier in job.barriers {
            let _ = barrier.try_send(());
        }
        lock(shared).busy = false;
        shared.changed.notify_all();
    }
}

/// The WAL file of the writer's connection, opened a second time for the syncer's fsync.
pub(super) struct WalFile {
    file: File,
    /// Testing only: each sync waits while this file exists (`Settings::hold_fsync`).
    hold: Option<PathBuf>,
}

impl WalFile {
    /// Opens the WAL of `conn`, which must be in WAL mode with its WAL open (any read or write
    /// since it was opened does that). The name is SQLite's own (the database's full path with
    /// symlinks resolved, plus `-wal`), so this is the very file SQLite writes; it stays that file
    /// while `conn` is open, since SQLite removes or replaces a WAL only when its last connection
    /// closes. Syncs the directory once, as SQLite does for a new WAL, so the file itself
    /// survives a power cut.
    /// `hold`: testing only, see [`WalFile::sync`].
    pub(super) fn open(conn: &Connection, hold: Option<PathBuf>) -> Result<WalFile, StorageError> {
        let db = conn
            .path()
            .filter(|path| !path.is_empty())
            .ok_or_else(|| StorageError::Wal("the database has no file name".into()))?;
        let path = PathBuf::from(format!("{db}-wal"));
        let file = File::open(&path).map_err(|e| wal_error(&path, e))?;
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| wal_error(dir, e))?;
        }
        Ok(WalFile { file, hold })
    }

    /// `fdatasync`: the file's data and what is needed to read it back (its size). With a
    /// `hold` file (tests only), first waits while it exists: a commit is then written but not
    /// durable for as long as the test wants, which is where a relay that waited only for the
    /// COMMIT statement would show, and where a test kills the server.
    pub(super) fn sync(&self) -> io::Result<()> {
        if let Some(hold) = &self.hold {
            while hold.exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        self.file.sync_data()
    }
}

fn wal_error(path: &Path, e: io::Error) -> StorageError {
    StorageError::Wal(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// The syncer publishes a job's id only after its fsync returned, answers its barriers, and
    /// is idle again afterwards; a job with nothing written needs no fsync.
    #[test]
    fn an_id_is_published_after_its_fsync() {
        let (started_tx, started) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let (published_tx, published) = mpsc::channel();
        let syncer = Syncer::start(
            Box::new(move || {
                started_tx.send(()).unwrap();
                gate.recv().unwrap();
                Ok(())
            }),
            Box::new(move |id| published_tx.send(id).unwrap()),
            WriterStats::default(),
        )
        .unwrap();
        let (barrier, answered) = async_channel::bounded(1);
        syncer.submit(Job {
            through: Some(7),
            written: true,
            lines: 3,
            barriers: vec![barrier],
            began: None,
        });
        started.recv().unwrap();
        assert!(published.try_recv().is_err(), "published before the fsync");
        release.send(()).unwrap();
        assert_eq!(published.recv().unwrap(), 7);
        assert!(answered.recv_blocking().is_ok());
        syncer.wait_idle();
        syncer.submit(Job {
            through: Some(8),
            ..Job::default()
        });
        assert_eq!(published.recv().unwrap(), 8);
        assert!(started.try_recv().is_err(), "synced with nothing written");
        assert_eq!(syncer.close(), 0);
    }

    /// A failing fsync is retried and the id held back meanwhile.
    #[test]
    fn a_failing_fsync_is_retried_before_publishing() {
        let mut failures = 2;
        let (published_tx, published) = mpsc::channel();
        let syncer = Syncer::start(
            Box::new(move || {
                if failures == 0 {
                    return Ok(());
                }
                failures -= 1;
                Err(io::Error::other("EIO"))
            }),
            Box::new(move |id| published_tx.send(id).unwrap()),
            WriterStats::default(),
        )
        .unwrap();
        syncer.submit(Job {
            through: Some(1),
            written: true,
            lines: 1,
            barriers: Vec::new(),
            began: None,
        });
        assert_eq!(published.recv().unwrap(), 1);
        assert_eq!(syncer.close(), 0);
    }

    /// The WAL file is found by SQLite's own name for it, also through a symlinked directory.
    #[test]
    fn the_wal_file_is_sqlites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let conn = super::super::schema::open_connection(&dir.path().join("link/chat.db")).unwrap();
        let wal = WalFile::open(&conn, None).unwrap();
        wal.sync().unwrap();
        let ours = wal.file.metadata().unwrap();
        let theirs = std::fs::metadata(dir.path().join("real/chat.db-wal")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!((ours.dev(), ours.ino()), (theirs.dev(), theirs.ino()));
    }
}
