//! `/search`: one page of a room's messages matching a [`SearchQuery`], newest first, read
//! through the FTS5 index on a reader thread.
//!
//! The index holds the room as a second column, so the expression asks for the room's word as
//! well as the user's terms, and FTS5 intersects the two lists: a word common elsewhere but
//! rare in this room costs only its rare matches. The room is checked exactly on `messages` too,
//! since `my-room` and `my.room` are the same words to the tokenizer. A room whose name has no
//! word at all (`-`) cannot be intersected: when its word's matches in every room are too many
//! to walk, the room's own messages are walked instead ([`BY_ROOM`]). Private lines are never
//! stored, so they are never found.
//!
//! A search's cost is bounded ([`BUDGET`]): most cost a millisecond, but a phrase of common
//! words that never follow each other makes FTS5 check the positions in every message holding
//! them all, and a prefix merges the lists of every word it covers, so without a bound one
//! line of 1 KB kept the search thread busy for 16 s on a million messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use log::debug;
use rusqlite::{params, Connection};

use super::query::SearchQuery;
use super::readers::{format_row, removed_after};
use super::{Format, StorageError};

/// Most SQLite virtual machine steps one search may take. FTS5 reads its index through SQL,
/// so its reading counts too: the steps track how much of the index a search reads. On the
/// 1,000,000-message history of docs/PERFORMANCE.md a word, a phrase, or a prefix covering
/// 100,000 messages take under 4,000 steps, `qu*` (every message) about 3,000, a phrase of two
/// words found in every message but never side by side (`"dog the"`: every message checked)
/// about 16,000, and eight such prefixes about 26,000; that 1 KB phrase took over a million.
/// 30,000 is about 0.3 to 0.5 s of one core on the (busy) test machine. Past it the user is asked for rarer
/// words. Not configurable: it protects the other searchers, not a policy.
pub(super) const BUDGET: u64 = 30_000;

/// How often (in steps) the budget is checked.
const CHECK_EVERY: u16 = 100;

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

/// Whether the index can find `room` by its words: a room name of punctuation alone (`-`) has
/// none.
fn room_has_words(room: &str) -> bool {
    room.chars().any(char::is_alphanumeric)
}

/// The FTS5 expression for `query` within `room`.
fn expression(query: &SearchQuery, room: &str) -> String {
    if room_has_words(room) {
        format!("room : \"{room}\" AND body : ( {} )", query.to_fts())
    } else {
        format!("body : ( {} )", query.to_fts())
    }
}

/// The usual plan: the index's matches, newest first, in the room (both lists intersected).
const BY_INDEX: &str = "SELECT m.id, m.sent_at, m.sender, m.kind, m.body, m.formatted
     FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
     WHERE messages_fts MATCH ?1 AND messages_fts.rowid < ?2 AND m.room = ?3
     ORDER BY messages_fts.rowid DESC LIMIT ?4";

/// For a room the index cannot find by its words, when [`BY_INDEX`] ran out of budget (the words
/// are common in other rooms): the room's messages newest first (the `(room, id)` index), each
/// checked against the index by its id, so the cost is what the room holds. It is not the
/// first choice, since each check costs about a hundred steps: a word rare everywhere is found
/// at once by [`BY_INDEX`], and in a room of a few hundred messages or more only that way.
const BY_ROOM: &str = "SELECT m.id, m.sent_at, m.sender, m.kind, m.body, m.formatted
     FROM messages m
     WHERE m.room = ?3 AND m.id < ?2 AND EXISTS (
         SELECT 1 FROM messages_fts WHERE messages_fts MATCH ?1 AND messages_fts.rowid = m.id
     )
     ORDER BY m.id DESC LIMIT ?4";

/// Up to `limit` messages of `room` with ids below `before` that match `query`, newest first;
/// [`StorageError::SearchTooCostly`] past [`BUDGET`].
pub(super) fn read_hits(
    conn: &mut Connection,
    (room, query): (&str, &SearchQuery),
    before: i64,
    limit: u32,
    format: Format,
) -> Result<Hits, StorageError> {
    read_hits_within(conn, (room, query), (before, limit), format, BUDGET)
}

/// [`read_hits`] with the budget as a parameter. A room the index cannot find by its words
/// gets a second try with [`BY_ROOM`], with a budget of its own.
fn read_hits_within(
    conn: &mut Connection,
    (room, query): (&str, &SearchQuery),
    (before, limit): (i64, u32),
    format: Format,
    budget: u64,
) -> Result<Hits, StorageError> {
    let by_index = within(conn, budget, |conn| {
        hits(conn, BY_INDEX, (room, query), before, limit, format)
    });
    let hits = match by_index {
        Err(StorageError::SearchTooCostly) if !room_has_words(room) => {
            within(conn, budget, |conn| {
                hits(conn, BY_ROOM, (room, query), before, limit, format)
            })
        }
        other => other,
    };
    if let Err(StorageError::SearchTooCostly) = hits {
        debug!("search in {room} for {query} stopped after {budget} steps");
    }
    hits
}

/// Runs `search` on `conn`, interrupted past `budget` steps.
fn within(
    conn: &mut Connection,
    budget: u64,
    search: impl FnOnce(&Connection) -> rusqlite::Result<Hits>,
) -> Result<Hits, StorageError> {
    let stopped = Arc::new(AtomicBool::new(false));
    let mut spent: u64 = 0;
    let flag = stopped.clone();
    // Called every CHECK_EVERY steps of any statement on this connection, including those
    // FTS5 runs to read its index; returning true interrupts the search.
    conn.progress_handler(
        i32::from(CHECK_EVERY),
        Some(move || {
            spent += u64::from(CHECK_EVERY);
            let over = spent > budget;
            if over {
                flag.store(true, Ordering::Relaxed);
            }
            over
        }),
    )?;
    let result = search(conn);
    conn.progress_handler(0, None::<fn() -> bool>)?;
    match result {
        Err(_) if stopped.load(Ordering::Relaxed) => Err(StorageError::SearchTooCostly),
        other => Ok(other?),
    }
}

/// The search itself by `plan`, unbounded.
fn hits(
    conn: &Connection,
    plan: &str,
    (room, query): (&str, &SearchQuery),
    before: i64,
    limit: u32,
    format: Format,
) -> rusqlite::Result<Hits> {
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(plan)?;
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

    fn search(conn: &mut Connection, room: &str, text: &str, before: i64, limit: u32) -> Hits {
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
        let (_dir, mut conn) = db(&[
            (1, "lobby", "rust is fun"),
            (2, "rust", "rust elsewhere"),
            (3, "lobby", "I like Rust"),
            (4, "lobby", "nothing here"),
            (5, "lobby", "rusty nails"),
            (6, "my-room", "rust in my room"),
        ]);
        let hits = search(&mut conn, "lobby", "rust", i64::MAX, 1);
        assert_eq!(lines(&hits), ["bob: I like Rust"]);
        assert!(hits.more);
        let hits = search(&mut conn, "lobby", "rust", hits.oldest.unwrap(), 1);
        assert_eq!(lines(&hits), ["bob: rust is fun"]);
        assert!(!hits.more);
        assert_eq!(
            lines(&search(&mut conn, "lobby", "rust*", i64::MAX, 10)).len(),
            3
        );
        // `my-room` and `my.room` are the same words; only the room itself is searched.
        assert_eq!(
            lines(&search(&mut conn, "my.room", "rust", i64::MAX, 10)).len(),
            0
        );
        assert_eq!(
            lines(&search(&mut conn, "my-room", "rust", i64::MAX, 10)).len(),
            1
        );
    }

    /// A phrase matches its words in order; case and accents do not matter.
    #[test]
    fn phrases_case_and_accents() {
        let (_dir, mut conn) = db(&[
            (1, "lobby", "the quick brown fox"),
            (2, "lobby", "brown quick"),
            (3, "lobby", "un Café crème"),
        ]);
        assert_eq!(
            lines(&search(
                &mut conn,
                "lobby",
                r#""quick brown""#,
                i64::MAX,
                10
            )),
            ["bob: the quick brown fox"]
        );
        assert_eq!(
            lines(&search(&mut conn, "lobby", "CAFE creme", i64::MAX, 10)),
            ["bob: un Café crème"]
        );
    }

    /// Whatever operators a user types, the search runs as words and never errors.
    #[test]
    fn operator_words_are_only_words() {
        let (_dir, mut conn) = db(&[(1, "lobby", "this AND that"), (2, "-", "in a dash room")]);
        let hits = search(&mut conn, "lobby", "AND NOT OR NEAR", i64::MAX, 10);
        assert_eq!(hits.count, 0);
        assert_eq!(search(&mut conn, "lobby", "and", i64::MAX, 10).count, 1);
        assert_eq!(search(&mut conn, "-", "dash", i64::MAX, 10).count, 1);
    }

    /// A search that would read more of the index than its budget is stopped with its own
    /// error, not run to the end; the connection serves the next search as before. Here the
    /// costly kind: a long phrase of words every message holds, never in that order.
    #[test]
    fn a_search_over_its_budget_is_stopped() {
        let rows: Vec<(i64, &str, String)> = (1..=300)
            .map(|id| (id, "lobby", format!("the dog and the cat number {id}")))
            .collect();
        let rows: Vec<(i64, &str, &str)> =
            rows.iter().map(|(i, r, b)| (*i, *r, b.as_str())).collect();
        let (_dir, mut conn) = db(&rows);
        let phrase = format!("\"{}\"", vec!["dog the"; 60].join(" "));
        let costly = SearchQuery::parse(&phrase).unwrap();
        // Unbounded, it runs to the end and finds nothing; with a budget it is stopped.
        let hits = read_hits_within(
            &mut conn,
            ("lobby", &costly),
            (i64::MAX, 20),
            said,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(hits.count, 0);
        assert!(matches!(
            read_hits_within(&mut conn, ("lobby", &costly), (i64::MAX, 20), said, 2_000),
            Err(StorageError::SearchTooCostly)
        ));
        // The same budget is plenty for an ordinary search, right after.
        let word = SearchQuery::parse("cat").unwrap();
        let hits =
            read_hits_within(&mut conn, ("lobby", &word), (i64::MAX, 20), said, 2_000).unwrap();
        assert_eq!(hits.count, 20);
        assert!(hits.more);
    }

    /// In a room whose name has no word for the index (`-`), a word common in other rooms
    /// costs what the room holds, not what the others hold: found within the budget.
    #[test]
    fn a_room_of_punctuation_is_searched_by_its_own_messages() {
        let mut rows: Vec<(i64, &str, &str)> = (1..=400)
            .map(|id| (id, "lobby", "the fox everywhere"))
            .collect();
        rows.push((401, "-", "a fox in the dash room"));
        rows.extend((402..=800).map(|id| (id, "lobby", "the fox everywhere")));
        let (_dir, mut conn) = db(&rows);
        let fox = SearchQuery::parse("fox").unwrap();
        let hits = read_hits_within(&mut conn, ("-", &fox), (i64::MAX, 20), said, 2_000).unwrap();
        assert_eq!(lines(&hits), ["bob: a fox in the dash room"]);
        assert!(!hits.more);
    }

    /// In a big room whose name has no word, a word rare everywhere is still found through
    /// the index, at once, and one found nowhere answers "no matches", not "too costly".
    #[test]
    fn a_big_room_of_punctuation_finds_rare_words() {
        let mut rows: Vec<(i64, &str, &str)> = (1..=1000)
            .map(|id| (id, "_", "chatter in the underscore room"))
            .collect();
        rows[500].2 = "the only zebra";
        let (_dir, mut conn) = db(&rows);
        let zebra = SearchQuery::parse("zebra").unwrap();
        let hits = read_hits_within(&mut conn, ("_", &zebra), (i64::MAX, 20), said, 2_000).unwrap();
        assert_eq!(lines(&hits), ["bob: the only zebra"]);
        let okapi = SearchQuery::parse("okapi").unwrap();
        let hits = read_hits_within(&mut conn, ("_", &okapi), (i64::MAX, 20), said, 2_000).unwrap();
        assert_eq!(hits.count, 0);
    }
}
