//! Catching up with the cluster log at start-up, before anybody is served.
//!
//! A node started on an existing file (or an empty one) reads the log from the newest position
//! its file holds up to its own `NodeUp`, storing the messages it missed and applying the
//! account and moderation changes, before it prints `listening on`: so neither a replay nor a
//! login ever sees a file behind the cluster. Start-up code, not the hub's: it blocks, and it
//! joins the cluster link to the storage.

use std::sync::Arc;

use log::info;

use crate::cluster::{self, Entry};
use crate::storage::{accounts, History, LogPos, Record};
use crate::vocab::stream_id_lt;

/// Stores what this node missed: the log's messages after the newest row stored here, with
/// local ids after `last_id`, and the account and moderation changes after the newest one
/// applied to `db`, up to this run's start. Runs before the server accepts anybody (and before
/// the bans and topics are loaded), so neither a replay nor a login sees a file behind the
/// cluster. Returns the new newest id.
pub fn catch_up(
    node: &mut cluster::Node,
    history: &History,
    db: &std::path::Path,
    last_id: i64,
    position: Option<LogPos>,
) -> Result<i64, String> {
    let conn = accounts::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
    let applied = accounts::applied_position(&conn)
        .map_err(|e| format!("{}: cluster_applied: {e}", db.display()))?;
    // Read from the older of the two positions; each kind skips what it has.
    let messages_after: Option<Arc<str>> = position.as_ref().map(|p| p.stream_id.clone());
    let after: Option<(String, i64)> = match (&position, &applied) {
        (Some(p), Some((id, seq))) => Some(if stream_id_lt(id, &p.stream_id) {
            (id.clone(), *seq)
        } else {
            (p.stream_id.to_string(), p.seq)
        }),
        _ => None,
    };
    // Changes are applied in the history writer's turns, so the two never meet in SQLite's busy
    // handler while the missed messages are stored.
    let turns = history.write_turns();
    let mut next_id = last_id + 1;
    let mut changes = 0u64;
    let mut newest: Option<(Arc<str>, i64)> = None;
    let mut failed = None;
    let result = node.catch_up(
        after.as_ref().map(|(id, seq)| (id.as_str(), *seq)),
        |batch| {
            for record in batch {
                newest = Some((record.id.clone(), record.seq));
                match &record.entry {
                    Entry::Say {
                        nick,
                        room,
                        kind,
                        body,
                        ..
                    } => {
                        let have = messages_after
                            .as_deref()
                            .is_some_and(|stored| !stream_id_lt(stored, &record.id));
                        if have {
                            continue;
                        }
                        let stored = Record {
                            id: next_id,
                            at_ms: record.at_ms(),
                            room: room.shared(),
                            sender: nick.shared(),
                            kind: *kind,
                            body: body.clone(),
                            log: Some(LogPos {
                                stream_id: record.id.clone(),
                                seq: record.seq,
                            }),
                        };
                        next_id += 1;
                        smol::block_on(history.append(stored));
                    }
                    Entry::Change(change) if failed.is_none() => {
                        let turn = turns.wait();
                        let applied = accounts::apply_change(&conn, &record.id, record.seq, change);
                        drop(turn);
                        match applied {
                            Ok(true) => changes += 1,
                            Ok(false) => {}
                            Err(e) => failed = Some(e),
                        }
                    }
                    _ => {}
                }
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(format!(
            "{}: cannot apply the cluster log's account changes: {e}",
            db.display()
        ));
    }
    // Entries that changed nothing here count as applied too, so the next start reads less.
    if let Some((id, seq)) = newest {
        let behind = applied
            .as_ref()
            .is_none_or(|(applied, _)| stream_id_lt(applied, &id));
        if behind {
            let _turn = turns.wait();
            accounts::set_applied(&conn, &id, seq)
                .map_err(|e| format!("{}: cluster_applied: {e}", db.display()))?;
        }
    }
    let stored = next_id - 1 - last_id;
    let last_id = next_id - 1;
    smol::block_on(history.wait_committed(last_id));
    info!(
        "node {}: caught up {} log entries ({} messages stored, {} account changes applied){}",
        node.name(),
        result.read,
        stored,
        changes,
        if result.lost > 0 {
            format!(", {} could not be recovered", result.lost)
        } else {
            String::new()
        }
    );
    Ok(last_id)
}
