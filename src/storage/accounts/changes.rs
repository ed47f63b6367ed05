//! Cluster mode: the log's account and moderation changes applied to this file, in log order,
//! each once.

use rusqlite::{params, Connection, OptionalExtension};

use super::moderation::{delete_ban, delete_mutes, insert_ban, insert_mute, StoredMute};
use super::{delete, set_operator, set_password};
use crate::clock;
use crate::moderation::ban::{Ban, Target};
use crate::names::fold;
use crate::vocab::{stream_id_lt, Change};

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

/// Applies one cluster log change to this file, with its stream id, in one savepoint (a
/// transaction of its own, or part of the account thread's batch): skipped
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
    conn.execute_batch("SAVEPOINT apply_change")?;
    let applied = apply_in_savepoint(conn, stream_id, seq, change);
    let end = match applied {
        Ok(_) => "RELEASE apply_change",
        Err(_) => "ROLLBACK TO apply_change; RELEASE apply_change",
    };
    conn.execute_batch(end)?;
    applied
}

/// [`apply_change`]'s work, inside its savepoint.
fn apply_in_savepoint(
    tx: &Connection,
    stream_id: &str,
    seq: i64,
    change: &Change,
) -> rusqlite::Result<bool> {
    if let Some((applied, _)) = applied_position(tx)? {
        if !stream_id_lt(&applied, stream_id) {
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
            set_password(tx, name, hash)?;
        }
        Change::Unregister { name } => {
            delete(tx, name)?;
        }
        Change::Role { name, operator } => {
            set_operator(tx, name, *operator)?;
        }
        Change::Ban { .. } => {
            if let Some(ban) = Ban::of(change) {
                insert_ban(tx, &ban)?;
            }
        }
        Change::Unban { target } => {
            delete_ban(tx, &Target::parse(target))?;
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
            tx,
            &StoredMute {
                name: name.clone(),
                account: account.clone(),
                address: *ip,
                by: "(another node)".to_owned(),
                expires_ms: *until_ms,
            },
        )?,
        Change::Unmute { name } => delete_mutes(tx, std::slice::from_ref(name))?,
    }
    set_applied(tx, stream_id, seq)?;
    Ok(true)
}
