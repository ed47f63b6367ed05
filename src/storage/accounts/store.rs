//! The account threads: one writes in order on a read-write connection, one looks up on a
//! read-only connection, so a login's lookup never queues behind a write stuck on a lock.
//!
//! The write thread takes every job queued (up to [`MAX_BATCH`]) into one short `BEGIN
//! IMMEDIATE` transaction, each job in a savepoint of its own so that one job's failure undoes
//! only that job, and answers the jobs once the transaction is committed. It opens the
//! transaction only in its turn ([`WriteTurns`]), which it shares with the history writer: an
//! operator's burst of `/ban`s is a few transactions, one fsync each, and the history writer
//! waits for at most one of them, never in SQLite's busy handler.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use async_channel::{Receiver, Sender};
use log::error;
use rusqlite::Connection;

use super::{addresses, roster};
use super::{
    apply_change, create, delete, delete_ban, delete_mutes, find, find_like, insert_ban,
    insert_mute, load_reloadable, log_action, now_text, open, open_lookups, set_operator_in_chat,
    set_password, set_topic, touch_login, Account, LogEntry, Reloaded, RoleChange, StoredMute,
};
use crate::moderation::ban::{Ban, Target};
use crate::names::Nick;
use crate::storage::{StorageError, WriteTurns};
use crate::vocab::Change;

/// Most jobs in one write transaction: enough that a burst is a handful of commits, few enough
/// that the history writer never waits long for its turn (a job is a row or two). Not
/// configurable.
const MAX_BATCH: usize = 256;

/// A lookup, run on the read-only connection.
type Job = Box<dyn FnOnce(&Connection) + Send>;

/// A write, run inside the write thread's transaction in a savepoint of its own, and answered
/// once the transaction has ended.
trait WriteJob: Send {
    /// Runs the write; returns whether it failed (its savepoint is then rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Says how it went: its own result if the transaction was committed, else why not.
    fn answer(self: Box<Self>, committed: Result<(), &str>);
}

type Write = Box<dyn WriteJob>;

/// A [`WriteJob`]: `write` on the connection, then `done` with its result.
struct Pending<T, F, D> {
    write: Option<F>,
    result: Option<Result<T, StorageError>>,
    done: D,
}

impl<T, F, D> WriteJob for Pending<T, F, D>
where
    T: Send,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send,
    D: FnOnce(Result<T, StorageError>) + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(write) = self.write.take() else {
            return false;
        };
        let result = write(conn).map_err(StorageError::from);
        let failed = result.is_err();
        self.result = Some(result);
        failed
    }

    fn answer(self: Box<Self>, committed: Result<(), &str>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StorageError::NotCommitted("not run".to_owned())),
            (Err(e), _) => Err(StorageError::NotCommitted(e.to_owned())),
        };
        (self.done)(result);
    }
}

/// An operator's change to an account from chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InChat {
    /// `/op` (true) and `/deop`.
    Role(bool),
    /// `/unregister NAME`.
    Remove,
}

/// A handle on the account threads. Cheap to clone; the threads end when every handle is gone.
#[derive(Clone)]
pub struct Store {
    /// Writes, in order, on the read-write connection.
    jobs: Sender<Write>,
    /// Lookups, on the read-only connection: never behind a write.
    lookups: Sender<Job>,
}

/// Owns the account threads; [`StoreThread::close`] waits for queued writes.
pub struct StoreThread {
    threads: Vec<JoinHandle<()>>,
}

impl StoreThread {
    /// Waits until every queued job has run. Call after every [`Store`] handle is dropped.
    pub fn close(self) {
        for thread in self.threads {
            if thread.join().is_err() {
                error!("an account thread panicked");
            }
        }
    }
}

impl Store {
    /// Opens the account connections, each on its own thread. The write thread writes in
    /// `turns`, the history writer's ([`History::write_turns`](crate::storage::History)).
    pub fn open(path: &Path, turns: WriteTurns) -> Result<(Store, StoreThread), StorageError> {
        let conn = open(path)?;
        let reader = open_lookups(path)?;
        // Unbounded: jobs come from logins (slowed by the login delay) and operator commands
        // (rate limited like every line), never from ordinary chat.
        let (jobs, rx) = async_channel::unbounded::<Write>();
        let (lookups, lookups_rx) = async_channel::unbounded::<Job>();
        let writes = std::thread::Builder::new()
            .name("accounts".into())
            .spawn(move || write_loop(&conn, &rx, &turns))
            .map_err(StorageError::Thread)?;
        let reads = std::thread::Builder::new()
            .name("account-lookups".into())
            .spawn(move || job_loop(&reader, &lookups_rx))
            .map_err(StorageError::Thread)?;
        Ok((
            Store { jobs, lookups },
            StoreThread {
                threads: vec![writes, reads],
            },
        ))
    }

    /// Runs `f` on the write thread and returns its result once it is committed.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply, answer) = async_channel::bounded(1);
        self.jobs
            .send(pending(f, move |result| {
                let _ = reply.try_send(result);
            }))
            .await
            .map_err(|_| StorageError::ReadersGone)?;
        answer
            .recv()
            .await
            .unwrap_or(Err(StorageError::ReadersGone))
    }

    /// Queues `f` on the write thread, and `done` with its result once committed (or not).
    fn write<T: Send + 'static>(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        done: impl FnOnce(Result<T, StorageError>) + Send + 'static,
    ) {
        if self.jobs.try_send(pending(f, done)).is_err() {
            error!("the account thread is gone; {what} not stored");
        }
    }

    /// Runs `f` on the lookup thread (read-only) and returns its result.
    async fn look_up<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        call_on(&self.lookups, f).await
    }

    /// Queues a write whose result nobody waits for; a failure is logged.
    fn spawn(
        &self,
        what: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<()> + Send + 'static,
    ) {
        self.write(what, f, move |result| {
            if let Err(e) = result {
                error!("could not store {what}: {e}");
            }
        });
    }

    pub async fn find(&self, name: &str) -> Result<Option<Account>, StorageError> {
        let name = name.to_owned();
        self.look_up(move |c| find(c, &name)).await
    }

    /// [`find_like`]: the account of `nick`, or of a name that looks like it.
    pub async fn find_like(&self, nick: &Nick) -> Result<Option<Account>, StorageError> {
        let (name, skeleton) = (nick.key().to_owned(), nick.skeleton().to_owned());
        self.look_up(move |c| find_like(c, &name, &skeleton)).await
    }

    /// Registers `display` as created at `created_ms` (the time its change carries, so every
    /// node's row is the same).
    pub async fn create(
        &self,
        display: &str,
        hash: String,
        created_ms: i64,
    ) -> Result<bool, StorageError> {
        let display = display.to_owned();
        self.call(move |c| create(c, &display, &hash, created_ms))
            .await
    }

    pub async fn set_password(&self, name: &str, hash: String) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.call(move |c| set_password(c, &name, &hash)).await
    }

    pub async fn delete(&self, name: &str) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.call(move |c| delete(c, &name)).await
    }

    /// An operator's change to the account `name` from chat ([`set_operator_in_chat`] for
    /// `/op` and `/deop`, [`roster::remove_in_chat`] for `/unregister NAME`), answered to `done`
    /// on the account thread: the hub never waits for the database.
    pub fn change_in_chat_then(
        &self,
        name: String,
        change: InChat,
        done: impl FnOnce(Result<RoleChange, StorageError>) + Send + 'static,
    ) {
        let change = move |conn: &Connection| match change {
            InChat::Role(operator) => set_operator_in_chat(conn, &name, operator),
            InChat::Remove => roster::remove_in_chat(conn, &name),
        };
        self.write("an operator's account change", change, done);
    }

    /// A store whose jobs are never run: for the hub's tests, which need no database.
    #[cfg(test)]
    pub fn detached() -> Store {
        let (jobs, rx) = async_channel::unbounded::<Write>();
        let (lookups, lookups_rx) = async_channel::unbounded::<Job>();
        // Kept open, so writes are accepted (and dropped with the test's process).
        std::mem::forget((rx, lookups_rx));
        Store { jobs, lookups }
    }

    /// Notes a successful login to `name` from `address` (its group, see `limits/address.rs`):
    /// the login time, and the address as one the account's owner uses.
    pub fn touch_login(&self, name: &str, address: IpAddr) {
        let name = name.to_owned();
        self.spawn("a login", move |c| {
            touch_login(c, &name)?;
            addresses::remember(c, &name, address, &now_text())
        });
    }

    /// Notes `address` (a group) as one the owner of `name` uses, as at registration.
    pub fn remember_address(&self, name: &str, address: IpAddr) {
        let name = name.to_owned();
        self.spawn("an account's address", move |c| {
            addresses::remember(c, &name, address, &now_text())
        });
    }

    /// Whether `address` (a group) has logged in to `name` lately ([`addresses::knows`]).
    pub async fn knows_address(&self, name: &str, address: IpAddr) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.look_up(move |c| addresses::knows(c, &name, address, &now_text()))
            .await
    }

    pub fn insert_ban(&self, ban: Ban) {
        self.spawn("a ban", move |c| insert_ban(c, &ban));
    }

    pub fn delete_ban(&self, target: Target) {
        self.spawn("a lifted ban", move |c| delete_ban(c, &target).map(|_| ()));
    }

    pub fn insert_mute(&self, mute: StoredMute) {
        self.spawn("a mute", move |c| insert_mute(c, &mute));
    }

    pub fn delete_mutes(&self, names: Vec<String>) {
        self.spawn("a lifted mute", move |c| delete_mutes(c, &names));
    }

    /// Reads the bans and operator roles on the write thread, behind every write queued so far
    /// (so nothing the hub set is missed), and hands them to `done` there. Nobody waits.
    pub fn reload(&self, done: impl FnOnce(Reloaded) + Send + 'static) {
        self.write("a reload", load_reloadable, move |result| match result {
            Ok(reloaded) => done(reloaded),
            Err(e) => error!("could not reload bans and operators: {e}; keeping the ones in force"),
        });
    }

    /// Stores a topic with the time its change carries, so every node's row is the same.
    pub fn set_topic(&self, room: Arc<str>, text: Option<Arc<str>>, (by, at_ms): (Arc<str>, i64)) {
        self.spawn("a topic", move |c| {
            set_topic(c, &room, text.as_deref(), (&by, at_ms))
        });
    }

    /// Applies a cluster log change ([`apply_change`]) behind the writes already queued.
    pub fn apply_change(&self, stream_id: Arc<str>, seq: i64, change: Change) {
        self.spawn("a cluster change", move |c| {
            apply_change(c, &stream_id, seq, &change).map(|_| ())
        });
    }

    pub fn log_action(&self, entry: LogEntry) {
        self.spawn("a moderation log entry", move |c| log_action(c, &entry));
    }
}

/// A write of `f`, answered to `done`.
fn pending<T: Send + 'static>(
    f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    done: impl FnOnce(Result<T, StorageError>) + Send + 'static,
) -> Write {
    Box::new(Pending {
        write: Some(f),
        result: None,
        done,
    })
}

/// Runs `f` on the thread behind `queue` and returns its result.
async fn call_on<T: Send + 'static>(
    queue: &Sender<Job>,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    let (reply, answer) = async_channel::bounded(1);
    let job: Job = Box::new(move |conn| {
        let _ = reply.try_send(f(conn).map_err(StorageError::from));
    });
    queue
        .send(job)
        .await
        .map_err(|_| StorageError::ReadersGone)?;
    answer
        .recv()
        .await
        .unwrap_or(Err(StorageError::ReadersGone))
}

fn job_loop(conn: &Connection, jobs: &Receiver<Job>) {
    while let Ok(job) = jobs.recv_blocking() {
        job(conn);
    }
}

/// The write thread: every job queued, up to [`MAX_BATCH`], in one transaction in its turn.
fn write_loop(conn: &Connection, jobs: &Receiver<Write>, turns: &WriteTurns) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = jobs.recv_blocking() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let committed = {
            let _turn = turns.wait();
            write_batch(conn, &mut batch)
        };
        if let Err(e) = &committed {
            error!("{} account writes not stored: {e}", batch.len());
        }
        // Answered after the turn: what an answer does (tell the hub) need not hold it.
        let committed = committed.as_ref().map(|_| ()).map_err(String::as_str);
        for job in batch.drain(..) {
            job.answer(committed);
        }
    }
}

/// Runs `batch` in one `BEGIN IMMEDIATE` transaction, each job in a savepoint of its own.
fn write_batch(conn: &Connection, batch: &mut [Write]) -> Result<(), String> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())?;
    for job in batch.iter_mut() {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            // Left unrun: it is answered as not stored.
            error!("an account write could not begin: {e}");
            continue;
        }
        let end = if job.run(conn) {
            "ROLLBACK TO job; RELEASE job"
        } else {
            "RELEASE job"
        };
        if let Err(e) = conn.execute_batch(end) {
            error!("an account write could not end: {e}");
        }
    }
    conn.execute_batch("COMMIT").map_err(|e| {
        // A failed COMMIT may leave the transaction open (SQLITE_BUSY): end it.
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::WriterStats;
    use crate::storage::{History, Record, Settings};

    /// Moderation writes queued by an operator's burst.
    const BURST: usize = 1000;

    /// An operator's burst of moderation writes (a ban and its log entry each) never makes a
    /// history commit fail with "database is locked" (which pauses chat): every commit succeeds
    /// at its first attempt while the burst is stored, and every line and ban is stored.
    #[test]
    fn a_moderation_burst_never_starves_the_history_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let stats = WriterStats::default();
        let settings = Settings {
            stats: stats.clone(),
            ..Settings::default()
        };
        let (history, writer, _, _) = History::open_with(&path, settings).unwrap();
        let (store, thread) = Store::open(&path, history.write_turns()).unwrap();
        let now = crate::clock::now_ms();
        for n in 0..BURST {
            store.insert_ban(Ban {
                target: Target::parse(&format!("spammer{n}")),
                reason: Some("flood".into()),
                by: "op".into(),
                created_ms: now,
                expires_ms: None,
            });
            store.log_action(LogEntry {
                operator: "op".into(),
                action: "ban",
                target: format!("spammer{n}"),
                reason: Some("flood".into()),
                duration: None,
            });
        }
        // Queued behind the burst: says when it has all been stored.
        let (stored, burst_done) = async_channel::bounded(1);
        store.reload(move |_| {
            let _ = stored.try_send(());
        });
        // Lines go on while the burst is stored, each committed before the next.
        let mut id = 0;
        while burst_done.is_empty() {
            id += 1;
            assert!(id < 100_000, "the burst was never stored");
            smol::block_on(history.append(Record::test(id, "chat goes on")));
            smol::block_on(history.wait_committed(id));
        }
        drop(store);
        thread.close();
        assert_eq!(
            stats.failures(),
            0,
            "a history commit failed (database is locked) while the burst was stored"
        );
        drop(history);
        assert_eq!(writer.close(), 0);
        let conn = crate::storage::open_connection(&path).unwrap();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM messages"), id);
        assert_eq!(count("SELECT count(*) FROM bans"), BURST as i64);
        assert_eq!(count("SELECT count(*) FROM moderation_log"), BURST as i64);
    }
}
