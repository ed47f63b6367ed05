//! `/search`: one page of a room's messages matching a [`SearchQuery`], newest first, read
//! through the FTS5 index on a reader thread.
//!
//! The index holds the room as a second column, so the expression asks for the room's word as
//! well as the user's terms, and FTS5 intersects the two lists: a word common elsewhere but
//! rare in this room costs only its rare matches. The room is checked exactly on `messages` too,
//! since `my-room` and `my.room` are the same words to the tokenizer. Private lines are never
//! stored, so they are never found.

use std::sync::Arc;
use std::time::Instant;

use log::debug;
use rusqlite::{params, Connection};

use super::query::SearchQuery;
use super::readers::{format_row, removed_after};
use super::Format;

/// One page of matches, formatted as replayed lines, newest first.
#[derive(Debug, Clone)]
pub struct Hits {
    pub text: Vec<u8>,
    pub count: u32,
    /// The oldest id on the page: the next page starts below it.
    pub oldest: Option<i64>,
    /// Whether there are older matches than this page.
    pub more: bool,
    /// When this was the last page and retention removed some of the room's history: the
    /// retention it was removed under (`30d`).
    pub removed: Option<Arc<str>>,
}

/// The FTS5 expression for `query` within `room`.
fn expression(query: &SearchQuery, room: &str) -> String {
    // A room name of punctuation alone (`-`) has no word to look for: only the check on
    // `messages` then restricts to the room.
    if room.chars().any(char::is_alphanumeric) {
        format!("room : \"{room}\" AND body : ( {} )", query.to_fts())
    } else {
        format!("body : ( {} )", query.to_fts())
    }
}

/// Up to `limit` messages of `room` with ids below `before` that match `query`, newest first.
pub(super) fn read_hits(
    conn: &Connection,
    (room, query): (&str, &SearchQuery),
    before: i64,
    limit: u32,
    format: Format,
) -> rusqlite::Result<Hits> {
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(
        "SELECT m.id, m.sent_at, m.sender, m.kind, m.body
         FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
         WHERE messages_fts MATCH ?1 AND messages_fts.rowid < ?2 AND m.room = ?3
         ORDER BY messages_fts.rowid DESC LIMIT ?4",
    )?;
    // One more than the page, to know whether there is another.
    let mut rows = stmt.query(params![
        expression(query, room),
        before,
        room,
        i64::from(limit) + 1
    ])?;
    let mut hits = Hits {
        text: Vec::with_capacity(2048),
        count: 0,
        oldest: None,
        more: false,
        removed: None,
    };
    while let Some(row) = rows.next()? {
        if hits.count == limit {
            hits.more = true;
            break;
        }
        hits.oldest = Some(format_row(row, format, &mut hits.text)?);
        hits.count += 1;
    }
    if !hits.more {
        hits.removed = removed_after(conn, room)?;
    }
    debug!(
        "search in {room}: {} hits in {} us",
        hits.count,
        started.elapsed().as_micros()
    );
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::open_connection;
    use crate::storage::Row;

    fn db(rows: &[(i64, &str, &str)]) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("chat.db")).unwrap();
        for (id, room, body) in rows {
            conn.execute(
                "INSERT INTO messages (id, sent_at, sender, body, room, kind)
                 VALUES (?1, '2026-11-27 16:40:17.000', 'bob', ?2, ?3, 'message')",
                params![id, body, room],
            )
            .unwrap();
        }
        (dir, conn)
    }

    fn search(conn: &Connection, room: &str, text: &str, before: i64, limit: u32) -> Hits {
        let query = SearchQuery::parse(text).unwrap();
        read_hits(conn, (room, &query), before, limit, said).unwrap()
    }

    /// A door's format, for the test: who said what.
    fn said(row: &Row<'_>, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("{}: {}\n", row.sender, row.body).as_bytes());
    }

    fn lines(hits: &Hits) -> Vec<String> {
        String::from_utf8(hits.text.clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Matches come newest first, from the room only, paged below an id.
    #[test]
    fn newest_first_in_the_room_only() {
        let (_dir, conn) = db(&[
            (1, "lobby", "rust is fun"),
            (2, "rust", "rust elsewhere"),
            (3, "lobby", "I like Rust"),
            (4, "lobby", "nothing here"),
            (5, "lobby", "rusty nails"),
            (6, "my-room", "rust in my room"),
        ]);
        let hits = search(&conn, "lobby", "rust", i64::MAX, 1);
        assert_eq!(lines(&hits), ["bob: I like Rust"]);
        assert!(hits.more);
        let hits = search(&conn, "lobby", "rust", hits.oldest.unwrap(), 1);
        assert_eq!(lines(&hits), ["bob: rust is fun"]);
        assert!(!hits.more);
        assert_eq!(
            lines(&search(&conn, "lobby", "rust*", i64::MAX, 10)).len(),
            3
        );
        // `my-room` and `my.room` are the same words; only the room itself is searched.
        assert_eq!(
            lines(&search(&conn, "my.room", "rust", i64::MAX, 10)).len(),
            0
        );
        assert_eq!(
            lines(&search(&conn, "my-room", "rust", i64::MAX, 10)).len(),
            1
        );
    }

    /// A phrase matches its words in order; case and accents do not matter.
    #[test]
    fn phrases_case_and_accents() {
        let (_dir, conn) = db(&[
            (1, "lobby", "the quick brown fox"),
            (2, "lobby", "brown quick"),
            (3, "lobby", "un Café crème"),
        ]);
        assert_eq!(
            lines(&search(&conn, "lobby", r#""quick brown""#, i64::MAX, 10)),
            ["bob: the quick brown fox"]
        );
        assert_eq!(
            lines(&search(&conn, "lobby", "CAFE creme", i64::MAX, 10)),
            ["bob: un Café crème"]
        );
    }

    /// Whatever operators a user types, the search runs as words and never errors.
    #[test]
    fn operator_words_are_only_words() {
        let (_dir, conn) = db(&[(1, "lobby", "this AND that"), (2, "-", "in a dash room")]);
        let hits = search(&conn, "lobby", "AND NOT OR NEAR", i64::MAX, 10);
        assert_eq!(hits.count, 0);
        assert_eq!(search(&conn, "lobby", "and", i64::MAX, 10).count, 1);
        assert_eq!(search(&conn, "-", "dash", i64::MAX, 10).count, 1);
    }
}
