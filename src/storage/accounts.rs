//! Accounts, bans, topics and the moderation log in SQLite.
//!
//! Two small dedicated threads ([`Store`]) keep account work off the executor threads: one owns
//! a read-write connection for writes, the other a read-only connection for lookups, so that a
//! login's lookup never queues behind a write waiting for a lock held elsewhere (in WAL mode a
//! reader is not blocked by a writer). The write thread is a second writer beside the history
//! writer; WAL and the busy timeout serialize the two, and these writes are rare (a login, an
//! operator action). The same functions run synchronously for `smolchat op`, which opens the database
//! itself whether or not a server is running.
//!
//! It must not know about sockets, sessions or membership: it stores and returns rows.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use log::{error, warn};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::{addresses, open_connection, roster, StorageError};
use crate::clock;
use crate::cluster::Change;
use crate::moderation::ban::{Ban, Target};
use crate::names::{fold, Nick};

/// How long a write waits for the history writer (or an outside program) to release the
/// database: longer than the history writer's own second, because a moderation write is not
/// retried and an operator would rather wait than see it fail.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A registered name.
#[derive(Debug, Clone)]
pub struct Account {
    /// The name in lower case: the account's key.
    pub name: String,
    /// The name as registered.
    pub display: String,
    /// The Argon2id hash, PHC string form.
    pub hash: String,
    pub operator: bool,
    /// An operator made on the command line (`role_origin` 'cli' or NULL): chat cannot take it.
    pub cli_operator: bool,
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

/// Opens a read-write connection for account work (migrating if needed) with a long busy
/// timeout, and fills in the skeleton of accounts that have none (inserted by hand).
pub fn open(path: &Path) -> Result<Connection, StorageError> {
    let conn = open_connection(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    fill_skeletons(&conn)?;
    Ok(conn)
}

/// Computes the `skeleton` column where it is NULL (rows from before migration 0005, or
/// inserted by hand). The skeleton is computed in Rust (`names::skeleton`), not in SQL.
fn fill_skeletons(conn: &Connection) -> rusqlite::Result<()> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM accounts WHERE skeleton IS NULL")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        conn.execute(
            "UPDATE accounts SET skeleton = ?2 WHERE name = ?1",
            params![name, crate::names::skeleton(&name)],
        )?;
    }
    Ok(())
}

/// The upgrade step of migration 0008 (names in every script): recomputes every stored
/// skeleton by the current rule, since the rule changed from an ASCII table to TR39's. Run by
/// the migration loop in the migration's transaction. A later change to `names::skeleton` (or to
/// the `unicode-security` tables) needs a new migration that runs this again; a table that adds
/// a skeleton column adds it here.
pub(super) fn recompute_skeletons(conn: &Connection) -> rusqlite::Result<()> {
    let rows: Vec<(String, Option<String>)> = conn
        .prepare("SELECT name, skeleton FROM accounts")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut update = conn.prepare("UPDATE accounts SET skeleton = ?2 WHERE name = ?1")?;
    for (name, stored) in rows {
        let skeleton = crate::names::skeleton(&name);
        if stored.as_deref() != Some(skeleton.as_str()) {
            update.execute(params![name, skeleton])?;
        }
    }
    Ok(())
}

/// Opens the read-only connection the lookup thread uses.
fn open_lookups(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn now_text() -> String {
    clock::format_utc(clock::now_ms())
}

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        name: r.get(0)?,
        display: r.get(1)?,
        hash: r.get(2)?,
        operator: r.get::<_, String>(3)? == "operator",
        cli_operator: r.get::<_, String>(3)? == "operator"
            && r.get::<_, Option<String>>(4)?.as_deref() != Some("chat"),
    })
}

/// The account registered under `name` (any case).
pub fn find(conn: &Connection, name: &str) -> rusqlite::Result<Option<Account>> {
    conn.prepare_cached(
        "SELECT name, display, password_hash, role, role_origin FROM accounts WHERE name = ?1",
    )?
    .query_row([fold(name)], account_row)
    .optional()
}

/// The account registered under `name`, or else one whose name looks like it (the same
/// confusable `skeleton`): `aIice` finds `alice`. The caller tells the two apart by
/// [`Account::name`].
pub fn find_like(
    conn: &Connection,
    name: &str,
    skeleton: &str,
) -> rusqlite::Result<Option<Account>> {
    conn.prepare_cached(
        "SELECT name, display, password_hash, role, role_origin FROM accounts
         WHERE name = ?1 OR skeleton = ?2
         ORDER BY name = ?1 DESC, name LIMIT 1",
    )?
    .query_row(params![fold(name), skeleton], account_row)
    .optional()
}

/// Registers `display`; false if the name (or a look-alike of it) is registered already.
pub fn create(conn: &Connection, display: &str, hash: &str) -> rusqlite::Result<bool> {
    let skeleton = crate::names::skeleton(display);
    let n = conn.execute(
        "INSERT INTO accounts (name, display, password_hash, created_at, skeleton)
         SELECT ?1, ?2, ?3, ?4, ?5
         WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE name = ?1 OR skeleton = ?5)",
        params![fold(display), display, hash, now_text(), skeleton],
    )?;
    Ok(n == 1)
}

/// Replaces the hash of `name`; false if it is not registered.
pub fn set_password(conn: &Connection, name: &str, hash: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE accounts SET password_hash = ?2 WHERE name = ?1",
        params![fold(name), hash],
    )?;
    Ok(n == 1)
}

/// Deletes the account `name`; false if it is not registered.
pub fn delete(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    let n = conn.execute("DELETE FROM accounts WHERE name = ?1", [fold(name)])?;
    Ok(n == 1)
}

/// Gives or takes the operator role from the command line (`smolchat op`); false if `name` is
/// not registered. A role given here is marked `role_origin = 'cli'`: chat cannot take it.
pub fn set_operator(conn: &Connection, name: &str, operator: bool) -> rusqlite::Result<bool> {
    let (role, origin) = if operator {
        ("operator", Some("cli"))
    } else {
        ("user", None)
    };
    let n = conn.execute(
        "UPDATE accounts SET role = ?2, role_origin = ?3 WHERE name = ?1",
        params![fold(name), role, origin],
    )?;
    Ok(n == 1)
}

/// What `/op` or `/deop` in chat did to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    Done,
    NotRegistered,
    /// `/deop` of an operator made on the command line: refused, only `smolchat op remove` may.
    MadeOnCommandLine,
}

/// Whether the account `name` (folded) is an operator made on the command line (`role_origin`
/// 'cli', or NULL: set by hand), which chat may not touch; `None` if it is not registered.
pub fn made_on_command_line(conn: &Connection, name: &str) -> rusqlite::Result<Option<bool>> {
    conn.prepare_cached(
        "SELECT role = 'operator' AND COALESCE(role_origin, 'cli') = 'cli'
         FROM accounts WHERE name = ?1",
    )?
    .query_row([name], |r| r.get(0))
    .optional()
}

/// Gives or takes the operator role from chat (`/op`, `/deop`). An operator made on the command
/// line (`role_origin` 'cli', or NULL: set by hand) keeps its role and its origin.
pub fn set_operator_in_chat(
    conn: &Connection,
    name: &str,
    operator: bool,
) -> rusqlite::Result<RoleChange> {
    let name = fold(name);
    match made_on_command_line(conn, &name)? {
        None => Ok(RoleChange::NotRegistered),
        // Already an operator, and one chat cannot undo: `/op` leaves it as it is.
        Some(true) if operator => Ok(RoleChange::Done),
        Some(true) => Ok(RoleChange::MadeOnCommandLine),
        Some(false) => {
            let (role, origin) = if operator {
                ("operator", Some("chat"))
            } else {
                ("user", None)
            };
            // The condition again, in case `smolchat op add` ran in between.
            let n = conn.execute(
                "UPDATE accounts SET role = ?2, role_origin = ?3
                 WHERE name = ?1 AND NOT (role = 'operator' AND COALESCE(role_origin, 'cli') = 'cli')",
                params![name, role, origin],
            )?;
            Ok(if n == 1 || operator {
                RoleChange::Done
            } else {
                RoleChange::MadeOnCommandLine
            })
        }
    }
}

/// Every operator account (lower case), and whether it was made on the command line.
pub fn operator_roles(conn: &Connection) -> rusqlite::Result<Vec<(String, bool)>> {
    let mut stmt = conn.prepare(
        "SELECT name, COALESCE(role_origin, 'cli') = 'cli' FROM accounts
         WHERE role = 'operator' ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
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
        params![fold(name), now_text()],
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

/// Deletes the ban on `target`; false if there was none (expired ones count).
pub fn delete_ban(conn: &Connection, target: &Target) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "DELETE FROM bans WHERE kind = ?1 AND target = ?2",
        params![target.kind(), target.to_string()],
    )?;
    Ok(n > 0)
}

/// A mute as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMute {
    /// The name muted, lower case.
    pub name: String,
    pub account: Option<String>,
    /// The muted user's address (group), if stored.
    pub address: Option<std::net::IpAddr>,
    pub by: String,
    /// Milliseconds since the epoch; `None` until lifted.
    pub expires_ms: Option<i64>,
}

/// The mutes still in force.
pub fn load_mutes(conn: &Connection) -> rusqlite::Result<Vec<StoredMute>> {
    let mut stmt = conn.prepare(
        "SELECT name, account, address, muted_by,
                CAST(round((julianday(expires_at) - 2440587.5) * 86400000) AS INTEGER)
         FROM mutes
         WHERE expires_at IS NULL OR expires_at > strftime('%Y-%m-%d %H:%M:%f', 'now')
         ORDER BY created_at",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredMute {
            name: fold(&r.get::<_, String>(0)?),
            account: r.get(1)?,
            address: r.get::<_, Option<String>>(2)?.and_then(|a| a.parse().ok()),
            by: r.get(3)?,
            expires_ms: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// Stores a mute, replacing one on the same name.
pub fn insert_mute(conn: &Connection, mute: &StoredMute) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO mutes (name, account, address, muted_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            mute.name,
            mute.account,
            mute.address.map(|a| a.to_string()),
            mute.by,
            now_text(),
            mute.expires_ms.map(clock::format_utc),
        ],
    )?;
    Ok(())
}

/// Deletes the mutes on these names.
pub fn delete_mutes(conn: &Connection, names: &[String]) -> rusqlite::Result<()> {
    for name in names {
        conn.execute("DELETE FROM mutes WHERE name = ?1", [name])?;
    }
    Ok(())
}

/// What SIGHUP re-reads: the bans in force and the operator roles, as changed by `smolchat ban`
/// and `smolchat op` (or by hand) while the server ran.
#[derive(Debug, Clone, Default)]
pub struct Reloaded {
    pub bans: Vec<Ban>,
    /// Operator accounts (lower case), and whether each was made on the command line.
    pub operators: Vec<(String, bool)>,
}

/// Reads what SIGHUP reloads.
pub fn load_reloadable(conn: &Connection) -> rusqlite::Result<Reloaded> {
    Ok(Reloaded {
        bans: load_bans(conn)?,
        operators: operator_roles(conn)?,
    })
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

/// How far this file has applied the cluster log's changes (migration 0007); `None` if never.
pub fn applied_position(conn: &Connection) -> rusqlite::Result<Option<(String, i64)>> {
    conn.query_row(
        "SELECT stream_id, log_seq FROM cluster_applied WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Notes that the cluster log has been applied up to `stream_id` (entry `seq`).
pub fn set_applied(conn: &Connection, stream_id: &str, seq: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO cluster_applied (id, stream_id, log_seq) VALUES (1, ?1, ?2)",
        params![stream_id, seq],
    )?;
    Ok(())
}

/// Applies one cluster log change to this file, with its stream id, in one transaction: skipped
/// (false) if the file has applied that entry or a later one already, so a replay after a restart
/// is harmless. Every change overwrites rather than refuses: the log's order decides, and every
/// node applies the same changes in the same order, the node that made it included. (A register
/// read back on the node that made it keeps the role set meanwhile; names are claimed
/// cluster-wide first, so two nodes never register one name at once.)
pub fn apply_change(
    conn: &Connection,
    stream_id: &str,
    seq: i64,
    change: &Change,
) -> rusqlite::Result<bool> {
    let tx = conn.unchecked_transaction()?;
    if let Some((applied, _)) = applied_position(&tx)? {
        if !crate::cluster::stream_id_lt(&applied, stream_id) {
            return Ok(false);
        }
    }
    match change {
        Change::Register {
            display,
            hash,
            created_ms,
        } => {
            let name = fold(display);
            tx.execute(
                "INSERT INTO accounts (name, display, password_hash, created_at, skeleton)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET display = ?2, password_hash = ?3,
                    created_at = ?4, skeleton = ?5",
                params![
                    name,
                    display,
                    hash,
                    clock::format_utc(*created_ms),
                    crate::names::skeleton(display)
                ],
            )?;
        }
        Change::Password { name, hash } => {
            set_password(&tx, name, hash)?;
        }
        Change::Unregister { name } => {
            delete(&tx, name)?;
        }
        Change::Role { name, operator } => {
            set_operator(&tx, name, *operator)?;
        }
        Change::Ban {
            target,
            reason,
            by,
            created_ms,
            expires_ms,
        } => insert_ban(
            &tx,
            &Ban {
                target: Target::parse(target),
                reason: reason.clone(),
                by: by.clone(),
                created_ms: *created_ms,
                expires_ms: *expires_ms,
            },
        )?,
        Change::Unban { target } => {
            delete_ban(&tx, &Target::parse(target))?;
        }
        Change::Topic {
            room,
            text,
            by,
            at_ms,
        } => {
            match text {
                Some(text) => tx.execute(
                    "INSERT OR REPLACE INTO topics (room, topic, set_by, set_at)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![room.as_str(), text, by, clock::format_utc(*at_ms)],
                )?,
                None => tx.execute("DELETE FROM topics WHERE room = ?1", [room.as_str()])?,
            };
        }
        // Stored like a mute set here, so a restarted node still holds it.
        Change::Mute {
            name,
            account,
            ip,
            until_ms,
        } => insert_mute(
            &tx,
            &StoredMute {
                name: name.clone(),
                account: account.clone(),
                address: *ip,
                by: "(another node)".to_owned(),
                expires_ms: *until_ms,
            },
        )?,
        Change::Unmute { name } => delete_mutes(&tx, std::slice::from_ref(name))?,
    }
    set_applied(&tx, stream_id, seq)?;
    tx.commit()?;
    Ok(true)
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

    /// [`set_operator_in_chat`]: `/op` and `/deop`.
    pub async fn set_operator_in_chat(
        &self,
        name: &str,
        operator: bool,
    ) -> Result<RoleChange, StorageError> {
        let name = name.to_owned();
        self.call(move |c| set_operator_in_chat(c, &name, operator))
            .await
    }

    /// [`roster::remove_in_chat`]: `/unregister NAME` by an operator.
    pub async fn remove_in_chat(&self, name: &str) -> Result<RoleChange, StorageError> {
        let name = name.to_owned();
        self.call(move |c| roster::remove_in_chat(c, &name)).await
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

    pub fn set_topic(&self, room: Arc<str>, text: Option<Arc<str>>, by: Arc<str>) {
        self.spawn("a topic", move |c| {
            set_topic(c, &room, text.as_deref(), &by)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_bans_topics_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("chat.db")).unwrap();
        assert!(create(&conn, "Alice", "$argon2id$x").unwrap());
        assert!(!create(&conn, "ALICE", "$argon2id$y").unwrap());
        assert!(
            !create(&conn, "aIice", "$argon2id$y").unwrap(),
            "a look-alike"
        );
        let like = find_like(&conn, "aiice", &crate::names::skeleton("aiice")).unwrap();
        assert_eq!(like.map(|a| a.name).as_deref(), Some("alice"));
        let alice = find(&conn, "alice").unwrap().unwrap();
        assert_eq!((alice.display.as_str(), alice.operator), ("Alice", false));
        assert!(set_operator(&conn, "alice", true).unwrap());
        assert!(!set_operator(&conn, "nobody", true).unwrap());
        assert_eq!(operators(&conn).unwrap(), ["Alice"]);
        // Made on the command line: chat may not take the role, and /op leaves it protected.
        use RoleChange::*;
        assert_eq!(
            set_operator_in_chat(&conn, "alice", false).unwrap(),
            MadeOnCommandLine
        );
        assert_eq!(set_operator_in_chat(&conn, "alice", true).unwrap(), Done);
        assert_eq!(operator_roles(&conn).unwrap(), [("alice".into(), true)]);
        assert!(create(&conn, "Carol", "$argon2id$z").unwrap());
        assert_eq!(set_operator_in_chat(&conn, "carol", true).unwrap(), Done);
        assert!(!find(&conn, "carol").unwrap().unwrap().cli_operator);
        assert_eq!(set_operator_in_chat(&conn, "carol", false).unwrap(), Done);
        assert_eq!(
            set_operator_in_chat(&conn, "nobody", false).unwrap(),
            NotRegistered
        );
        assert!(set_operator(&conn, "alice", false).unwrap());
        assert_eq!(set_operator_in_chat(&conn, "alice", true).unwrap(), Done);
        assert_eq!(operator_roles(&conn).unwrap(), [("alice".into(), false)]);
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

        let mute = |name: &str, expires_ms| StoredMute {
            name: name.into(),
            account: Some(name.into()),
            address: Some("192.0.2.7".parse().unwrap()),
            by: "op".into(),
            expires_ms,
        };
        insert_mute(&conn, &mute("bob", Some(now + 60_000))).unwrap();
        insert_mute(&conn, &mute("old", Some(now - 1000))).unwrap();
        insert_mute(&conn, &mute("eve", None)).unwrap();
        let mutes = load_mutes(&conn).unwrap();
        let names: Vec<&str> = mutes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["bob", "eve"], "the expired mute is not loaded");
        assert_eq!(mutes[1], mute("eve", None));
        delete_mutes(&conn, &["bob".into()]).unwrap();
        assert_eq!(load_mutes(&conn).unwrap().len(), 1);

        set_topic(&conn, "lobby", Some("hello"), "op").unwrap();
        assert_eq!(load_topics(&conn).unwrap()[0].text, "hello");
        set_topic(&conn, "lobby", None, "op").unwrap();
        assert!(load_topics(&conn).unwrap().is_empty());
    }
}
