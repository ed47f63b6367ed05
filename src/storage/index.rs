//! Keeping the search index (`messages_fts`) in step with `messages` on the writer's connection.
//!
//! The index trails the commits. The writer commits a batch of lines without indexing them, so a
//! line's way to the room (commit, fsync, relay) carries no index work, and indexes them in a
//! transaction of its own while a commit's fsync is in flight, at most one step per
//! [`STEP_EVERY`] (sooner when [`STEP_IDS`] ids wait): so the index trails by at most about that
//! much (a search waits for it, see `History::search`), and under load a step covers many
//! commits, since each step is a transaction and a new FTS5 segment to merge later. Rows are indexed by id range with one `INSERT ... SELECT`, because FTS5
//! writes its pending terms out as a new segment at every statement: a trigger fired by one
//! `INSERT` per line made a segment per line and cost about 15 µs of CPU a line, a statement per
//! batch about 3 (docs/PERFORMANCE.md).
//!
//! What the index covers is one number, the mark in `search_indexed`: every row up to it is
//! indexed, none after it. A step indexes the rows just past the mark and moves it in the same
//! transaction, so a crash between a commit and its step loses nothing and doubles nothing: the
//! rows past the mark are indexed when the server opens the file again ([`catch_up`]). Every
//! other connection (the sqlite3 shell, the bench's fill-db without its own indexing) has the
//! schema's triggers, which keep the mark true too (migration 0011).
//!
//! The writer's connection has triggers off: [`remove`] checks which way the connection works, so
//! a connection with triggers on is never unindexed twice (for an external-content FTS5 table, a
//! second 'delete' of the same row would corrupt the index).

use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, TransactionBehavior};

/// Most ids one step covers. A step normally covers one commit's rows (at most 4096, the
/// writer's largest batch); this bound matters after a crash or when the writer is far behind, so
/// that no single step keeps a waiting line from its commit for long. Not configurable.
pub(super) const STEP_IDS: i64 = 4096;

/// Least time between two index steps, unless [`STEP_IDS`] ids already wait. A step per commit
/// (over a thousand a second under load) made the index cost about as much as the commits
/// themselves: each step is a transaction writing its pages to the WAL, and a new FTS5 segment
/// that later merges rewrite. 10 ms keeps that to a hundred steps a second at most, and a
/// search issued right after a line waits at most that much more. Not configurable.
pub(super) const STEP_EVERY: Duration = Duration::from_millis(10);

/// How long to wait after a failed step (the database locked by another program, a full disk)
/// before trying again. Chat goes on meanwhile; searches wait at most `SEARCH_WAITS_FOR_INDEX`
/// for the index, then search what it covers.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Turns triggers off on the writer's connection: from then on the writer indexes its own rows.
pub(super) fn index_by_batch(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    Ok(())
}

/// Whether this connection's triggers are off, leaving the index to us.
fn by_batch(conn: &Connection) -> rusqlite::Result<bool> {
    Ok(!conn.db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER)?)
}

/// The index's mark: every message with an id up to it is indexed, none after it.
pub(super) fn mark(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT through_id FROM search_indexed")?
        .query_row([], |row| row.get(0))
}

/// Indexes the rows past the mark up to id `upto` (at most [`STEP_IDS`] ids) and moves the mark
/// there, in one transaction. Returns the new mark.
pub(super) fn step(conn: &mut Connection, upto: i64) -> rusqlite::Result<i64> {
    // Immediate: the mark is read and moved under the write lock, so nobody indexes between.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let from = mark(&tx)?;
    let through = upto.min(from.saturating_add(STEP_IDS));
    if through <= from {
        return Ok(from);
    }
    tx.prepare_cached(
        "INSERT INTO messages_fts (rowid, body, room)
         SELECT id, body, room FROM messages WHERE id > ?1 AND id <= ?2",
    )?
    .execute([from, through])?;
    tx.prepare_cached("UPDATE search_indexed SET through_id = ?1")?
        .execute([through])?;
    tx.commit()?;
    Ok(through)
}

/// Indexes every row past the mark up to `upto`, a step at a time: at start, after a crash left
/// committed rows unindexed. Returns how many ids the mark moved over.
pub(super) fn catch_up(conn: &mut Connection, upto: i64) -> rusqlite::Result<i64> {
    let from = mark(conn)?;
    let mut through = from;
    while through < upto {
        through = step(conn, upto)?;
    }
    Ok(through - from)
}

/// Takes the rows with ids `first..=last` out of the index; call it before deleting them, since
/// FTS5 needs their text to find their entries. Rows past the mark are not in the index, so they
/// are left alone (retention may remove a row before its step: only with a tiny `--retention` or
/// the tests' clock running ahead).
pub(super) fn remove(conn: &Connection, first: i64, last: i64) -> rusqlite::Result<()> {
    if by_batch(conn)? {
        let last = last.min(mark(conn)?);
        if last < first {
            return Ok(());
        }
        conn.prepare_cached(
            "INSERT INTO messages_fts (messages_fts, rowid, body, room)
             SELECT 'delete', id, body, room FROM messages WHERE id BETWEEN ?1 AND ?2",
        )?
        .execute([first, last])?;
    }
    Ok(())
}

/// The writer's view of how far the index trails its commits, and when to step. Time is a
/// parameter, so the schedule is tested without waiting.
#[derive(Debug)]
pub(super) struct Trailing {
    /// The newest id the writer has settled: committed, or given up on (whose ids the mark
    /// passes too, since those rows will never exist).
    settled: i64,
    /// The mark, as the last step left it.
    indexed: i64,
    /// After a failed step: the next one not before this.
    retry_at: Option<Instant>,
    /// When the last step ran, for [`STEP_EVERY`].
    last_step: Option<Instant>,
}

impl Trailing {
    /// Nothing to index: the mark is at `indexed` and the writer has settled nothing past it.
    pub(super) fn new(indexed: i64) -> Trailing {
        Trailing {
            settled: indexed,
            indexed,
            retry_at: None,
            last_step: None,
        }
    }

    /// The writer settled every id up to `through`.
    pub(super) fn settled(&mut self, through: i64) {
        self.settled = self.settled.max(through);
    }

    /// How far the next step should index, if one is due at `now`.
    pub(super) fn due(&self, now: Instant) -> Option<i64> {
        self.next_due(now)
            .is_some_and(|at| at <= now)
            .then_some(self.settled)
    }

    /// When a step is next due (at once: `now`), if any is: after a failure, once its back-off
    /// is over; otherwise [`STEP_EVERY`] after the last step, or at once when [`STEP_IDS`] ids
    /// wait.
    pub(super) fn next_due(&self, now: Instant) -> Option<Instant> {
        let behind = self.settled - self.indexed;
        if behind <= 0 {
            return None;
        }
        let at = match (self.retry_at, self.last_step) {
            (Some(retry), _) => retry,
            (None, Some(last)) if behind < STEP_IDS => last + STEP_EVERY,
            (None, _) => now,
        };
        Some(at.max(now))
    }

    /// A step at `now` moved the mark to `through`. Returns whether steps had been failing
    /// until now.
    pub(super) fn indexed(&mut self, through: i64, now: Instant) -> bool {
        self.indexed = through;
        self.last_step = Some(now);
        self.retry_at.take().is_some()
    }

    /// Lets the next step run at once, whenever the last was: at shutdown, when the writer
    /// completes the index before it stops.
    pub(super) fn unspaced(&mut self) {
        self.last_step = None;
    }

    /// A step failed at `now`: the next waits [`RETRY_AFTER`]. Returns whether this is the first
    /// failure in a row (worth a log line).
    pub(super) fn failed(&mut self, now: Instant) -> bool {
        let first = self.retry_at.is_none();
        self.retry_at = Some(now + RETRY_AFTER);
        first
    }
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

    /// A fresh file on the writer's side: triggers off.
    fn writer_side(dir: &tempfile::TempDir) -> Connection {
        let conn = open_connection(&dir.path().join("chat.db")).unwrap();
        index_by_batch(&conn).unwrap();
        conn
    }

    /// With triggers off, rows are indexed by steps and unindexed by batch, and the index agrees
    /// with the table; with triggers on, inserting indexes and moves the mark, and the same calls
    /// change nothing (the triggers did it).
    #[test]
    fn steps_keep_the_index_in_step_either_way() {
        for triggers in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut conn = open_connection(&dir.path().join("chat.db")).unwrap();
            if !triggers {
                index_by_batch(&conn).unwrap();
            }
            for id in 1..=5 {
                insert(&conn, id, &format!("hello number{id}"));
            }
            assert_eq!(mark(&conn).unwrap(), if triggers { 5 } else { 0 });
            assert_eq!(step(&mut conn, 5).unwrap(), 5);
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
        let conn = writer_side(&dir);
        insert(&conn, 1, "never indexed");
        assert!(!consistent(&conn));
    }

    /// A step covers at most `STEP_IDS` ids past the mark; catching up takes as many steps as it
    /// needs, and a second catch-up finds nothing to do (nothing is indexed twice).
    #[test]
    fn catching_up_indexes_every_row_past_the_mark_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer_side(&dir);
        let rows = STEP_IDS + 10;
        let tx = conn.transaction().unwrap();
        for id in 1..=rows {
            insert(&tx, id, "backlog");
        }
        tx.commit().unwrap();
        assert_eq!(step(&mut conn, rows).unwrap(), STEP_IDS);
        assert_eq!(catch_up(&mut conn, rows).unwrap(), 10);
        assert_eq!(catch_up(&mut conn, rows).unwrap(), 0);
        assert_eq!(matches(&conn, "backlog"), rows);
        assert!(consistent(&conn));
    }

    /// Rows the writer committed but had not indexed yet (a crash between commit and step) stay
    /// consistent whatever another program does with triggers on: an insert there indexes them
    /// with its own row and moves the mark, so the writer's catch-up does not index them again;
    /// deleting or editing a row past the mark leaves the index alone.
    #[test]
    fn other_programs_keep_the_mark_true() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer_side(&dir);
        for id in 1..=4 {
            insert(&conn, id, &format!("pending{id}"));
        }
        // Another program, triggers on: edits and deletes rows past the mark, then inserts.
        let shell = Connection::open(dir.path().join("chat.db")).unwrap();
        shell
            .execute("UPDATE messages SET body = 'edited' WHERE id = 1", [])
            .unwrap();
        shell
            .execute("DELETE FROM messages WHERE id = 2", [])
            .unwrap();
        assert_eq!(
            matches(&shell, "pending1 OR pending2 OR edited"),
            0,
            "nothing past the mark is in the index"
        );
        insert(&shell, 5, "from the shell");
        assert_eq!(mark(&conn).unwrap(), 5);
        assert_eq!(catch_up(&mut conn, 5).unwrap(), 0);
        assert_eq!(matches(&conn, "edited"), 1);
        assert_eq!(matches(&conn, "pending3 OR pending4 OR shell"), 3);
        assert!(consistent(&conn));
        // Below the mark the triggers keep the index in step as before.
        shell
            .execute("UPDATE messages SET body = 'again' WHERE id = 3", [])
            .unwrap();
        shell
            .execute("DELETE FROM messages WHERE id = 4", [])
            .unwrap();
        assert_eq!(matches(&conn, "again"), 1);
        assert!(consistent(&conn));
    }

    /// Retention may remove rows the index does not hold yet: only those up to the mark are
    /// taken out of it.
    #[test]
    fn removing_rows_past_the_mark_leaves_the_index_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = writer_side(&dir);
        for id in 1..=6 {
            insert(&conn, id, "row");
        }
        step(&mut conn, 3).unwrap();
        remove(&conn, 1, 5).unwrap();
        conn.execute("DELETE FROM messages WHERE id <= 5", [])
            .unwrap();
        catch_up(&mut conn, 6).unwrap();
        assert_eq!(matches(&conn, "row"), 1);
        assert!(consistent(&conn));
    }

    /// Steps are spaced: the next waits [`STEP_EVERY`] after the last, covering every commit
    /// settled meanwhile, unless [`STEP_IDS`] ids already wait; at shutdown, at once.
    #[test]
    fn steps_are_spaced_unless_far_behind() {
        let now = Instant::now();
        let mut trailing = Trailing::new(0);
        trailing.settled(5);
        assert_eq!(trailing.due(now), Some(5), "the first step runs at once");
        assert!(!trailing.indexed(5, now));
        trailing.settled(6);
        trailing.settled(9);
        assert_eq!(trailing.due(now), None);
        assert_eq!(trailing.next_due(now), Some(now + STEP_EVERY));
        assert_eq!(trailing.due(now + STEP_EVERY), Some(9));
        trailing.settled(5 + STEP_IDS);
        assert_eq!(
            trailing.due(now),
            Some(5 + STEP_IDS),
            "far behind: no spacing"
        );
        trailing.indexed(9, now);
        trailing.settled(10);
        trailing.unspaced();
        assert_eq!(trailing.due(now), Some(5 + STEP_IDS));
    }

    /// The schedule: a step is due once the writer has settled ids past the mark, covers up to
    /// the newest, and after a failure waits before the next try.
    #[test]
    fn the_schedule_steps_after_commits_and_backs_off_after_a_failure() {
        let now = Instant::now();
        let mut trailing = Trailing::new(10);
        assert_eq!(trailing.due(now), None);
        assert_eq!(trailing.next_due(now), None);
        trailing.settled(25);
        trailing.settled(20);
        assert_eq!(trailing.due(now), Some(25));
        assert_eq!(trailing.next_due(now), Some(now));
        assert!(trailing.failed(now));
        assert!(!trailing.failed(now), "one log line per run of failures");
        assert_eq!(trailing.due(now + Duration::from_millis(10)), None);
        assert_eq!(trailing.next_due(now), Some(now + RETRY_AFTER));
        assert_eq!(trailing.due(now + RETRY_AFTER), Some(25));
        assert!(trailing.indexed(25, now + RETRY_AFTER), "recovered");
        assert_eq!(trailing.due(now + RETRY_AFTER), None);
        assert_eq!(trailing.next_due(now), None);
    }
}
