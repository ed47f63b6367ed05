//! Keeping the search index (`messages_fts`) in step with `messages` on the writer's connection.
//!
//! Every other connection (the sqlite3 shell, the bench's fill-db) has the schema's triggers do
//! it, row by row. The writer turns triggers off and indexes a whole batch with one statement,
//! because FTS5 writes its pending terms out as a new segment at every statement's savepoint: a
//! trigger fired by one `INSERT` per line made a segment per line and cost about 15 µs of CPU a
//! line; one `INSERT ... SELECT` per commit costs about 3 (docs/PERFORMANCE.md).
//!
//! Both functions check which way the connection works, so a connection with triggers on is
//! never indexed twice (for an external-content FTS5 table, a second 'delete' of the same row
//! would corrupt the index).

use rusqlite::config::DbConfig;
use rusqlite::Connection;

/// Turns triggers off on the writer's connection: from then on the writer indexes its own rows.
pub(super) fn index_by_batch(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    Ok(())
}

/// Whether this connection's triggers are off, leaving the index to us.
fn by_batch(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(!conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER)?)
}

/// Indexes the rows with ids `first..=last`, just inserted.
pub(super) fn add(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    if by_batch(conn)? {
        conn.prepare_cached(
            "INSERT INTO messages_fts (rowid, body, room)
             SELECT id, body, room FROM messages WHERE id BETWEEN ?1 AND ?2",
        )?
        .execute([first, last])?;
    }
    Ok(())
}

/// Takes the rows with ids `first..=last` out of the index; call it before deleting them, since
/// FTS5 needs their text to find their entries.
pub(super) fn remove(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    if by_batch(conn)? {
        conn.prepare_cached(
            "INSERT INTO messages_fts (messages_fts, rowid, body, room)
             SELECT 'delete', id, body, room FROM messages WHERE id BETWEEN ?1 AND ?2",
        )?
        .execute([first, last])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::open_connection;

    fn insert(conn: &Connection, id: i64, body: &str) {
        conn.execute(
            "INSERT INTO messages (id, sent_at, sender, body, room, kind)
             VALUES (?1, '2026-01-01 00:00:00.000', 'bob', ?2, 'lobby', 'message')",
            rusqlite::params![id, body],
        )
        .unwrap();
    }

    fn matches(conn: &Connection, word: &str) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?1",
            [word],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// FTS5's own check that the index and the rows agree (rank 1: against the content table).
    fn consistent(conn: &Connection) -> bool {
        conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .is_ok()
    }

    /// With triggers off, rows are indexed and unindexed by batch, and the index agrees with
    /// the table; with triggers on, the same calls change nothing (the triggers did it).
    #[test]
    fn batches_keep_the_index_in_step_either_way() {
        for triggers in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let conn = open_connection(&dir.path().join("chat.db")).unwrap();
            if !triggers {
                index_by_batch(&conn).unwrap();
            }
            for id in 1..=5 {
                insert(&conn, id, &format!("hello number{id}"));
            }
            add(&conn, 1, 5).unwrap();
            assert_eq!(matches(&conn, "hello"), 5, "triggers {triggers}");
            assert!(consistent(&conn));
            remove(&conn, 1, 2).unwrap();
            conn.execute("DELETE FROM messages WHERE id <= 2", [])
                .unwrap();
            assert_eq!(matches(&conn, "hello"), 3, "triggers {triggers}");
            assert_eq!(matches(&conn, "number1"), 0);
            assert!(consistent(&conn), "triggers {triggers}");
        }
    }

    /// The check above can fail: an index that missed rows is reported.
    #[test]
    fn a_missed_row_is_inconsistent() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("chat.db")).unwrap();
        index_by_batch(&conn).unwrap();
        insert(&conn, 1, "never indexed");
        assert!(!consistent(&conn));
    }
}
