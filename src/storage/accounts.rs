//! Accounts, bans, topics and the moderation log in SQLite.
//!
//! A small dedicated thread ([`Store`]) owns one read-write connection, so no account lookup or
//! moderation write runs on an executor thread. It is a second writer beside the history writer;
//! WAL and the busy timeout serialize the two, and these writes are rare (a login, an operator
//! action). The same functions run synchronously for `smolchat op`, which opens the database
//! itself whether or not a server is running.
//!
//! It must not know about sockets, sessions or membership: it stores and returns rows.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use log::{error, warn};
use rusqlite::{params, Connection, OptionalExtension};

use super::{open_connection, StorageError};
use crate::clock;
use crate::moderation::ban::{Ban, Target};

/// How long a write waits for the history writer (or an outside program) to release the
/// database: longer than the history writer's own second, because a moderation write is not
/// retried and an operator would rather wait than see it fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A registered name.
#[derive(Debug, Clone)]
pub struct Account {
    /// The name as registered.
    pub display: String,
    /// The Argon2id hash, PHC string form.
    pub hash: String,
    pub operator: bool,
}

/// A room's topic as stored.
#[derive(Debug, Clone)]
pub struct StoredTopic {
    pub room: String,
    pub text: String,
    pub by: String,
}

/// One row for the moderation log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub operator: String,
    pub action: &'static str,
    pub target: String,
    pub reason: Option<String>,
    pub duration: Option<String>,
}

/// Opens a read-write connection for account work (migrating if needed) with a long busy timeout.
pub fn open(path: &Path) -> Result<Connection, StorageError> {
    let conn = open_connection(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn now_text() -> String {
    clock::format_utc(clock::now_ms())
}

/// The account registered under `name` (any case).
pub fn find(conn: &Connection, name: &str) -> rusqlite::Result<Option<Account>> {
    conn.prepare_cached("SELECT display, password_hash, role FROM accounts WHERE name = ?1")?
        .query_row([name.to_ascii_lowercase()], |r| {
            Ok(Account {
                display: r.get(0)?,
                hash: r.get(1)?,
                operator: r.get::<_, String>(2)? == "operator",
            })
        })
        .optional()
}

/// Registers `display`; false if the name is registered already.
pub fn create(conn: &Connection, display: &str, hash: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO accounts (name, display, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![display.to_ascii_lowercase(), display, hash, now_text()],
    )?;
    Ok(n == 1)
}

/// Replaces the hash of `name`; false if it is not registered.
pub fn set_password(conn: &Connection, name: &str, hash: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE accounts SET password_hash = ?2 WHERE name = ?1",
        params![name.to_ascii_lowercase(), hash],
    )?;
    Ok(n == 1)
}

/// Deletes the account `name`; false if it is not registered.
pub fn delete(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "DELETE FROM accounts WHERE name = ?1",
        [name.to_ascii_lowercase()],
    )?;
    Ok(n == 1)
}

/// Gives or takes the operator role; false if `name` is not registered.
pub fn set_operator(conn: &Connection, name: &str, operator: bool) -> rusqlite::Result<bool> {
    let role = if operator { "operator" } else { "user" };
    let n = conn.execute(
        "UPDATE accounts SET role = ?2 WHERE name = ?1",
        params![name.to_ascii_lowercase(), role],
    )?;
    Ok(n == 1)
}

/// Every operator's name, as registered, alphabetically.
pub fn operators(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT display FROM accounts WHERE role = 'operator' ORDER BY name")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Notes a successful login.
pub fn touch_login(conn: &Connection, name: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE accounts SET last_login_at = ?2 WHERE name = ?1",
        params![name.to_ascii_lowercase(), now_text()],
    )?;
    Ok(())
}

/// The bans still in force. Rows that do not parse (edited by hand) are skipped with a warning.
pub fn load_bans(conn: &Connection) -> rusqlite::Result<Vec<Ban>> {
    let mut stmt = conn.prepare(
        "SELECT kind, target, reason, banned_by,
                CAST(round((julianday(created_at) - 2440587.5) * 86400000) AS INTEGER),
                CAST(round((julianday(expires_at) - 2440587.5) * 86400000) AS INTEGER)
         FROM bans
         WHERE expires_at IS NULL OR expires_at > strftime('%Y-%m-%d %H:%M:%f', 'now')
         ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<i64>>(5)?,
        ))
    })?;
    let mut bans = Vec::new();
    for row in rows {
        let (kind, target, reason, by, created_ms, expires_ms) = row?;
        match Target::from_stored(&kind, &target) {
            Some(target) => bans.push(Ban {
                target,
                reason,
                by,
                created_ms: created_ms.unwrap_or(0),
                expires_ms,
            }),
            None => warn!("ignoring unreadable ban row: {kind} {target}"),
        }
    }
    Ok(bans)
}

/// Stores a ban, replacing one on the same target.
pub fn insert_ban(conn: &Connection, ban: &Ban) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO bans (kind, target, reason, banned_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            ban.target.kind(),
            ban.target.to_string(),
            ban.reason,
            ban.by,
            clock::format_utc(ban.created_ms),
            ban.expires_ms.map(clock::format_utc),
        ],
    )?;
    Ok(())
}

/// Deletes the ban on `target`.
pub fn delete_ban(conn: &Connection, target: &Target) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM bans WHERE kind = ?1 AND target = ?2",
        params![target.kind(), target.to_string()],
    )?;
    Ok(())
}

/// Every stored topic.
pub fn load_topics(conn: &Connection) -> rusqlite::Result<Vec<StoredTopic>> {
    let mut stmt = conn.prepare("SELECT room, topic, set_by FROM topics")?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredTopic {
            room: r.get(0)?,
            text: r.get(1)?,
            by: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// Sets a room's topic, or clears it with `None`.
pub fn set_topic(
    conn: &Connection,
    room: &str,
    text: Option<&str>,
    by: &str,
) -> rusqlite::Result<()> {
    match text {
        Some(text) => conn.execute(
            "INSERT OR REPLACE INTO topics (room, topic, set_by, set_at) VALUES (?1, ?2, ?3, ?4)",
            params![room, text, by, now_text()],
        )?,
        None => conn.execute("DELETE FROM topics WHERE room = ?1", [room])?,
    };
    Ok(())
}

/// Appends to the moderation log.
pub fn log_action(conn: &Connection, entry: &LogEntry) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO moderation_log (at, operator, action, target, reason, duration)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            now_text(),
            entry.operator,
            entry.action,
            entry.target,
            entry.reason,
            entry.duration
        ],
    )?;
    Ok(())
}

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// A handle on the account thread. Cheap to clone; the thread ends when every handle is gone.
#[derive(Clone)]
pub struct Store {
    jobs: Sender<Job>,
}

/// Owns the account thread; [`StoreThread::close`] waits for queued writes.
pub struct StoreThread {
    thread: Option<JoinHandle<()>>,
}

impl StoreThread {
    /// Waits until every queued job has run. Call after every [`Store`] handle is dropped.
    pub fn close(mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                error!("the account thread panicked");
            }
        }
    }
}

impl Store {
    /// Opens the account connection on its own thread.
    pub fn open(path: &Path) -> Result<(Store, StoreThread), StorageError> {
        let conn = open(path)?;
        // Unbounded: jobs come from logins (slowed by the login delay) and operator commands
        // (rate limited like every line), never from ordinary chat.
        let (jobs, rx) = async_channel::unbounded::<Job>();
        let thread = std::thread::Builder::new()
            .name("accounts".into())
            .spawn(move || job_loop(&conn, &rx))
            .map_err(StorageError::Thread)?;
        Ok((
            Store { jobs },
            StoreThread {
                thread: Some(thread),
            },
        ))
    }

    /// Runs `f` on the account thread and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
        let (reply, answer) = async_channel::bounded(1);
        let job: Job = Box::new(move |conn| {
            let _ = reply.try_send(f(conn).map_err(StorageError::from));
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StorageError::ReadersGone)?;
        answer
            .recv()
            .await
            .unwrap_or(Err(StorageError::ReadersGone))
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
        self.call(move |c| find(c, &name)).await
    }

    pub async fn create(&self, display: &str, hash: String) -> Result<bool, StorageError> {
        let display = display.to_owned();
        self.call(move |c| create(c, &display, &hash)).await
    }

    pub async fn set_password(&self, name: &str, hash: String) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.call(move |c| set_password(c, &name, &hash)).await
    }

    pub async fn delete(&self, name: &str) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.call(move |c| delete(c, &name)).await
    }

    pub async fn set_operator(&self, name: &str, operator: bool) -> Result<bool, StorageError> {
        let name = name.to_owned();
        self.call(move |c| set_operator(c, &name, operator)).await
    }

    pub fn touch_login(&self, name: &str) {
        let name = name.to_owned();
        self.spawn("a login time", move |c| touch_login(c, &name));
    }

    pub fn insert_ban(&self, ban: Ban) {
        self.spawn("a ban", move |c| insert_ban(c, &ban));
    }

    pub fn delete_ban(&self, target: Target) {
        self.spawn("a lifted ban", move |c| delete_ban(c, &target));
    }

    pub fn set_topic(&self, room: Arc<str>, text: Option<Arc<str>>, by: Arc<str>) {
        self.spawn("a topic", move |c| {
            set_topic(c, &room, text.as_deref(), &by)
        });
    }

    pub fn log_action(&self, entry: LogEntry) {
        self.spawn("a moderation log entry", move |c| log_action(c, &entry));
    }
}

fn job_loop(conn: &Connection, jobs: &Receiver<Job>) {
    while let Ok(job) = jobs.recv_blocking() {
        job(conn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_bans_topics_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("chat.db")).unwrap();
        assert!(create(&conn, "Alice", "$argon2id$x").unwrap());
        assert!(!create(&conn, "ALICE", "$argon2id$y").unwrap());
        let alice = find(&conn, "alice").unwrap().unwrap();
        assert_eq!((alice.display.as_str(), alice.operator), ("Alice", false));
        assert!(set_operator(&conn, "alice", true).unwrap());
        assert!(!set_operator(&conn, "nobody", true).unwrap());
        assert_eq!(operators(&conn).unwrap(), ["Alice"]);
        assert!(delete(&conn, "Alice").unwrap());
        assert!(find(&conn, "alice").unwrap().is_none());

        let now = clock::now_ms();
        let ban = |target: &str, expires_ms| Ban {
            target: Target::parse(target),
            reason: Some("spam".into()),
            by: "op".into(),
            created_ms: now,
            expires_ms,
        };
        insert_ban(&conn, &ban("mallory", None)).unwrap();
        insert_ban(&conn, &ban("192.0.2.0/24", Some(now + 60_000))).unwrap();
        insert_ban(&conn, &ban("198.51.100.1", Some(now - 1000))).unwrap();
        let loaded = load_bans(&conn).unwrap();
        assert_eq!(loaded.len(), 2, "the expired ban is not loaded");
        assert_eq!(loaded[0].target, Target::parse("mallory"));
        let expires = loaded[1].expires_ms.unwrap();
        assert!((expires - (now + 60_000)).abs() <= 1, "{expires}");
        delete_ban(&conn, &Target::parse("mallory")).unwrap();
        assert_eq!(load_bans(&conn).unwrap().len(), 1);

        set_topic(&conn, "lobby", Some("hello"), "op").unwrap();
        assert_eq!(load_topics(&conn).unwrap()[0].text, "hello");
        set_topic(&conn, "lobby", None, "op").unwrap();
        assert!(load_topics(&conn).unwrap().is_empty());
    }
}
