//! The account threads: one writes in order on a read-write connection, one looks up on a
//! read-only connection, so a login's lookup never queues behind a write stuck on a lock.

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
use crate::storage::StorageError;
use crate::vocab::Change;

type Job = Box<dyn FnOnce(&Connection) + Send>;

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
    jobs: Sender<Job>,
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
    /// Opens the account connections, each on its own thread.
    pub fn open(path: &Path) -> Result<(Store, StoreThread), StorageError> {
        let conn = open(path)?;
        let reader = open_lookups(path)?;
        // Unbounded: jobs come from logins (slowed by the login delay) and operator commands
        // (rate limited like every line), never from ordinary chat.
        let (jobs, rx) = async_channel::unbounded::<Job>();
        let (lookups, lookups_rx) = async_channel::unbounded::<Job>();
        let writes = std::thread::Builder::new()
            .name("accounts".into())
            .spawn(move || job_loop(&conn, &rx))
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

    /// Runs `f` on the write thread and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        call_on(&self.jobs, f).await
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
        let job: Job = Box::new(move |conn| {
            if let Err(e) = f(conn) {
                error!("could not store {what}: {e}");
            }
        });
        if self.jobs.try_send(job).is_err() {
            error!("the account thread is gone; {what} not stored");
        }
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
        let job: Job = Box::new(move |conn| {
            let result = match change {
                InChat::Role(operator) => set_operator_in_chat(conn, &name, operator),
                InChat::Remove => roster::remove_in_chat(conn, &name),
            };
            done(result.map_err(StorageError::from));
        });
        if self.jobs.try_send(job).is_err() {
            error!("the account thread is gone; an operator's account change was not stored");
        }
    }
    /// A store whose jobs are never run: for the hub's tests, which need no database.
    #[cfg(test)]
    pub fn detached() -> Store {
        let (jobs, rx) = async_channel::unbounded::<Job>();
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
        let job: Job = Box::new(move |conn| match load_reloadable(conn) {
            Ok(reloaded) => done(reloaded),
            Err(e) => error!("could not reload bans and operators: {e}; keeping the ones in force"),
        });
        if self.jobs.try_send(job).is_err() {
            error!("the account thread is gone; bans and operators not reloaded");
        }
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
