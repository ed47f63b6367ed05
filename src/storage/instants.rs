//! History by time: which row a point in time falls on, and when rooms last had a line.
//!
//! The history is indexed by id, not by time, and it needs no index on `sent_at`: ids and times
//! rise together (the hub stamps both as it relays), so the first row stored at or after an
//! instant is found by bisecting ids, a few dozen primary-key seeks, and storing a line costs
//! nothing more. A clock stepped back makes the times not quite sorted; bisection then still
//! returns a row near the instant, never an error. Rows are compared by the stored text
//! (`YYYY-MM-DD HH:MM:SS.SSS` sorts as time does).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::format_utc;

/// The id of the first message stored at or after `at_ms` (milliseconds since the epoch), in
/// any room; `i64::MAX` when every stored message is older. Every message with a lower id was
/// stored before `at_ms`.
pub(super) fn first_at(conn: &Connection, at_ms: i64) -> rusqlite::Result<i64> {
    let at = format_utc(at_ms);
    let mut probe =
        conn.prepare_cached("SELECT id, sent_at FROM messages WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    let mut first_from = |id: i64| -> rusqlite::Result<Option<(i64, String)>> {
        probe
            .query_row([id], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
    };
    let (min, max): (Option<i64>, Option<i64>) =
        conn.query_row("SELECT min(id), max(id) FROM messages", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let (Some(min), Some(max)) = (min, max) else {
        return Ok(i64::MAX);
    };
    // Invariants: no row below `low` is at or after the instant; the first row from `high` on
    // is (or there is none). Ids may have gaps (retention), so each probe reads the first row
    // from the middle on.
    let (mut low, mut high) = (min, max.saturating_add(1));
    while low < high {
        let mid = low + (high - low) / 2;
        match first_from(mid)? {
            Some((id, sent_at)) if id < high => {
                if sent_at.as_str() >= at.as_str() {
                    high = id;
                } else {
                    low = id + 1;
                }
            }
            _ => high = mid,
        }
    }
    Ok(first_from(high)?.map_or(i64::MAX, |(id, _)| id))
}

/// For each of `rooms`, when its newest message with an id in `from..before` was stored, in
/// milliseconds since the epoch; `None` for a room without one.
pub(super) fn latest(
    conn: &Connection,
    rooms: &[std::sync::Arc<str>],
    (from, before): (i64, i64),
) -> rusqlite::Result<Vec<Option<i64>>> {
    // The `(room, id)` index finds the newest id; its row gives the time, read as
    // milliseconds without floating point.
    let mut stmt = conn.prepare_cached(
        "SELECT CAST(strftime('%s', sent_at) AS INTEGER) * 1000
                + CAST(substr(sent_at, 21, 3) AS INTEGER)
         FROM messages WHERE id = (
             SELECT max(id) FROM messages WHERE room = ?1 AND id >= ?2 AND id < ?3
         )",
    )?;
    rooms
        .iter()
        .map(|room| {
            stmt.query_row(params![&**room, from, before], |row| row.get(0))
                .optional()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::open_connection;

    /// Rows with ids 10, 20, ... 100 (gaps, as after retention), a second apart from
    /// 1,000,000 ms, in two rooms.
    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("chat.db")).unwrap();
        for n in 1..=10i64 {
            let room = if n % 2 == 0 { "lobby" } else { "rust" };
            conn.execute(
                "INSERT INTO messages (id, sent_at, sender, body, room, kind)
                 VALUES (?1, ?2, 'bob', 'hi', ?3, 'message')",
                params![n * 10, format_utc(1_000_000 + n * 1000), room],
            )
            .unwrap();
        }
        (dir, conn)
    }

    /// An instant maps to the first row stored at or after it, whatever the gaps in ids.
    #[test]
    fn an_instant_falls_on_the_first_row_at_or_after_it() {
        let (_dir, conn) = db();
        assert_eq!(first_at(&conn, 0).unwrap(), 10);
        assert_eq!(first_at(&conn, 1_001_000).unwrap(), 10);
        assert_eq!(first_at(&conn, 1_001_001).unwrap(), 20);
        for n in 1..=10 {
            assert_eq!(first_at(&conn, 1_000_000 + n * 1000).unwrap(), n * 10);
            assert_eq!(first_at(&conn, 1_000_000 + n * 1000 - 1).unwrap(), n * 10);
        }
        assert_eq!(first_at(&conn, 1_010_001).unwrap(), i64::MAX);
        conn.execute("DELETE FROM messages", []).unwrap();
        assert_eq!(first_at(&conn, 0).unwrap(), i64::MAX);
    }

    /// Each room's newest line within the ids, as milliseconds; none for a quiet room.
    #[test]
    fn latest_lines_per_room() {
        let (_dir, conn) = db();
        let rooms: Vec<std::sync::Arc<str>> = vec!["lobby".into(), "rust".into(), "none".into()];
        assert_eq!(
            latest(&conn, &rooms, (0, i64::MAX)).unwrap(),
            [Some(1_010_000), Some(1_009_000), None]
        );
        assert_eq!(
            latest(&conn, &rooms, (30, 60)).unwrap(),
            [Some(1_004_000), Some(1_005_000), None]
        );
        assert_eq!(
            latest(&conn, &rooms, (100, 100)).unwrap(),
            [None, None, None]
        );
    }
}
