//! Accounts, bans, topics and the moderation log in SQLite.
//!
//! Here the accounts themselves; [`moderation`]'s tables (bans, mutes, topics, the log);
//! [`changes`], the cluster log's changes applied to this file; and [`store`], the threads.
//!
//! Two small dedicated threads ([`Store`]) keep account work off the executor threads: one owns
//! a read-write connection for writes, the other a read-only connection for lookups, so that a
//! login's lookup never queues behind a write waiting for a lock held elsewhere (in WAL mode a
//! reader is not blocked by a writer). The write thread is a second writer beside the history
//! writer: it batches what is queued into short `BEGIN IMMEDIATE` transactions and writes only
//! in its turn (`storage::WriteTurns`, shared with the history writer), so an operator's burst
//! never starves the history writer's commits. The busy timeout is for other programs. The same
//! functions run synchronously for `smolchat op`, which opens the database itself whether or not
//! a server is running.
//!
//! It must not know about sockets, sessions or membership: it stores and returns rows.

pub mod addresses;
mod changes;
mod moderation;
pub mod roster;
mod store;

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

pub use self::changes::{applied_position, apply_change, set_applied};
pub use self::moderation::{
    delete_ban, delete_mutes, insert_ban, insert_mute, load_bans, load_mutes, load_reloadable,
    load_saved, load_topics, log_action, set_topic, LogEntry, Reloaded, Saved, StoredMute,
    StoredTopic,
};
pub use self::store::{InChat, Store, StoreThread};
use super::{open_connection, StorageError};
use crate::clock;
use crate::names::fold;

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
pub(super) fn open_lookups(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

pub(super) fn now_text() -> String {
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
pub fn create(
    conn: &Connection,
    display: &str,
    hash: &str,
    created_ms: i64,
) -> rusqlite::Result<bool> {
    let skeleton = crate::names::skeleton(display);
    let n = conn.execute(
        "INSERT INTO accounts (name, display, password_hash, created_at, skeleton)
         SELECT ?1, ?2, ?3, ?4, ?5
         WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE name = ?1 OR skeleton = ?5)",
        params![
            fold(display),
            display,
            hash,
            clock::format_utc(created_ms),
            skeleton
        ],
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moderation::ban::{Ban, Target};

    #[test]
    fn accounts_bans_topics_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("chat.db")).unwrap();
        assert!(create(&conn, "Alice", "$argon2id$x", 0).unwrap());
        assert!(!create(&conn, "ALICE", "$argon2id$y", 0).unwrap());
        assert!(
            !create(&conn, "aIice", "$argon2id$y", 0).unwrap(),
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
        assert!(create(&conn, "Carol", "$argon2id$z", 0).unwrap());
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

        set_topic(&conn, "lobby", Some("hello"), ("op", 0)).unwrap();
        assert_eq!(load_topics(&conn).unwrap()[0].text, "hello");
        set_topic(&conn, "lobby", None, ("op", 0)).unwrap();
        assert!(load_topics(&conn).unwrap().is_empty());
    }
}
