//! The moderation tables: bans, mutes, topics and the moderation log, and what the hub loads
//! from them at start and on SIGHUP.

use log::warn;
use rusqlite::{params, Connection};

use super::{now_text, operator_roles};
use crate::clock;
use crate::moderation::ban::{Ban, Target};
use crate::names::fold;

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

/// The moderation state a server starts with: the stored topics, mutes and operator roles.
#[derive(Debug, Clone, Default)]
pub struct Saved {
    pub topics: Vec<StoredTopic>,
    pub mutes: Vec<StoredMute>,
    /// Operator accounts (lower case), and whether each was made on the command line.
    pub operators: Vec<(String, bool)>,
}

/// Reads what the hub starts with.
pub fn load_saved(conn: &Connection) -> rusqlite::Result<Saved> {
    Ok(Saved {
        topics: load_topics(conn)?,
        mutes: load_mutes(conn)?,
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

/// Sets a room's topic (set by `by` at `at_ms`), or clears it with `None`.
pub fn set_topic(
    conn: &Connection,
    room: &str,
    text: Option<&str>,
    (by, at_ms): (&str, i64),
) -> rusqlite::Result<()> {
    match text {
        Some(text) => conn.execute(
            "INSERT OR REPLACE INTO topics (room, topic, set_by, set_at) VALUES (?1, ?2, ?3, ?4)",
            params![room, text, by, clock::format_utc(at_ms)],
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
