//! Retention: messages older than `--retention` are deleted a bounded step at a time, by the
//! writer thread between commits, and the file gives the freed pages back.
//!
//! Why on the writer thread: SQLite has one writer at a time, so a second connection deleting
//! would contend with the commits for the write lock. A step deletes at most [`STEP_ROWS`] rows
//! and frees at most [`VACUUM_PAGES`] pages: about 1.5 ms of work (its commit is not synced on its
//! own: the writer's connection leaves that to the syncer's next fsync, see `sync`). Steps
//! run only when no line is waiting (or once one has waited [`OVERDUE`] behind a steady stream
//! of lines), so a line waits for at most one step; and while people chat (lines were stored
//! since the last step) at most one step runs per [`ACTIVE_GAP`], so a backlog of millions
//! never doubles the fsyncs chat waits on. When chat is quiet, steps run [`QUIET_GAP`] apart. The
//! writer asks [`Retention::next`] and [`Retention::should_step`], passing how many lines it
//! has stored, and calls [`Retention::step`]; this file must not know how the writer gathers or
//! commits its batches.
//!
//! Rows go in id order and the step stops at the first one still young enough, so what has gone
//! is always a prefix of the ids. `history_removed` records, per room, the newest id removed (for
//! "older messages were removed after 30d" in replays) and its place in the cluster log, so ids
//! are never reused and a cluster node whose newest rows were all removed still resumes its
//! catch-up where it was. The search index follows (see `index`). Nothing but `messages` (and
//! `history_removed`) is touched: accounts, bans, mutes, topics and the moderation log stay.
//!
//! Time is a parameter: [`Retention`] reads a clock it is given, and [`step_at`] takes "now", so
//! tests remove a month of history without waiting a month.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use rusqlite::{params, Connection, TransactionBehavior};

use super::index;
use crate::clock;
use crate::moderation::duration;

/// Most rows deleted in one step. With the search index's triggers a thousand rows take a few
/// milliseconds (docs/PERFORMANCE.md): small enough that a line arriving meanwhile hardly
/// notices, large enough to clear a backlog of millions in minutes. Not configurable.
pub(super) const STEP_ROWS: usize = 1000;

/// Most free pages given back to the file system per step (1 MiB at 4 KiB pages): about what a
/// step's deletes free, so the file shrinks as fast as rows go.
const VACUUM_PAGES: u32 = 256;

/// How often retention looks for newly expired rows once it has caught up. Messages are kept a
/// minute longer than the policy at most; checking costs one indexed read.
const CHECK_EVERY: Duration = Duration::from_secs(60);

/// How long a due step may wait for the writer to be idle before it runs between two commits
/// anyway, so that steady traffic cannot postpone retention forever.
const OVERDUE: Duration = Duration::from_millis(250);

/// The least time between two steps while lines are being stored: at most ten steps (10,000
/// rows) a second compete with chat for the disk.
const ACTIVE_GAP: Duration = Duration::from_millis(100);

/// The least time between two steps when chat is quiet: a backlog goes as fast as the disk
/// allows with room left for a line that arrives (each step's commit is an fsync, and its pages
/// must be written back by a checkpoint).
const QUIET_GAP: Duration = Duration::from_millis(10);

/// How long to wait after a step failed (the database locked by another program, say).
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Removal totals are logged at most this often (and when a backlog is cleared).
const LOG_EVERY: Duration = Duration::from_secs(3600);

/// How long messages are kept: the `--retention` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub keep: Duration,
    /// As given, lower case (`30d`): what replays say history was removed after.
    pub label: Arc<str>,
}

impl Policy {
    /// Parses a duration as `/ban` takes them: `30d`, `52w`, `12h`.
    pub fn parse(text: &str) -> Option<Policy> {
        let keep = duration::parse(text)?;
        Some(Policy {
            keep,
            label: text.to_ascii_lowercase().into(),
        })
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Step {
    pub removed: usize,
    /// Whether more is expired (or more pages are free) right now: step again when idle.
    pub more: bool,
}

/// The writer's retention schedule: when the next step is due, and the running totals it logs.
pub(super) struct Retention {
    policy: Policy,
    /// Milliseconds since the epoch, now: [`clock::now_ms`] outside tests.
    clock: fn() -> i64,
    /// Added to the clock: zero, except in tests that age messages without waiting
    /// (`--test-retention-ahead`).
    ahead_ms: i64,
    /// When the next step is due, if chat is quiet.
    next: Instant,
    /// When the last step ran, and how many lines the writer had stored then.
    last_step: Instant,
    stored_at_step: u64,
    /// Whether free pages are given back (`auto_vacuum = INCREMENTAL`).
    shrinks: bool,
    /// Removed since the last log line.
    unlogged: u64,
    last_log: Option<Instant>,
    /// Whether the last failure was logged already (one warning per run of failures).
    failing: bool,
}

impl Retention {
    /// The schedule for `policy` on the writer's connection, reading `clock` moved `ahead`;
    /// the first step is due at once.
    pub(super) fn new(
        policy: Policy,
        conn: &Connection,
        clock: fn() -> i64,
        ahead: Duration,
    ) -> Retention {
        let shrinks = conn
            .pragma_query_value(None, "auto_vacuum", |row| row.get::<_, i64>(0))
            .is_ok_and(|mode| mode == 2);
        if shrinks {
            info!(
                "retention: messages older than {} are removed",
                policy.label
            );
        } else {
            warn!(
                "retention: messages older than {} are removed, but this database was made \
                 before incremental auto-vacuum, so the file will not shrink (its free pages are \
                 reused); to let it shrink, stop the server and run `smolchat compact` once \
                 (docs/DEPLOY.md)",
                policy.label
            );
        }
        Retention {
            policy,
            clock,
            ahead_ms: i64::try_from(ahead.as_millis()).unwrap_or(i64::MAX),
            next: Instant::now(),
            last_step: Instant::now(),
            stored_at_step: 0,
            shrinks,
            unlogged: 0,
            last_log: None,
            failing: false,
        }
    }

    /// When the next step is due, given how many lines the writer has `stored` so far: the
    /// writer wakes then if no line comes first.
    pub(super) fn next(&self, stored: u64) -> Instant {
        let gap = if stored == self.stored_at_step {
            QUIET_GAP
        } else {
            ACTIVE_GAP
        };
        self.next.max(self.last_step + gap)
    }

    /// Whether to run a step now: it is due and no line waits (`idle`), or it has waited
    /// [`OVERDUE`] behind a steady stream of lines.
    pub(super) fn should_step(&self, now: Instant, idle: bool, stored: u64) -> bool {
        let due = self.next(stored);
        now >= due && (idle || now >= due + OVERDUE)
    }

    /// Runs one bounded step and schedules the next: at once while more is expired, else in a
    /// minute. A failure is logged and retried later; it never stops the writer.
    pub(super) fn step(&mut self, conn: &mut Connection, stored: u64) {
        let now = Instant::now();
        self.last_step = now;
        self.stored_at_step = stored;
        let now_ms = (self.clock)().saturating_add(self.ahead_ms);
        match step_at(conn, &self.policy, now_ms, self.shrinks) {
            Ok(step) => {
                self.failing = false;
                self.unlogged += step.removed as u64;
                self.next = if step.more { now } else { now + CHECK_EVERY };
                let log_due = self
                    .last_log
                    .is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
                if self.unlogged > 0 && !step.more && log_due {
                    info!(
                        "retention: removed {} messages older than {}",
                        self.unlogged, self.policy.label
                    );
                    self.unlogged = 0;
                    self.last_log = Some(now);
                }
            }
            Err(e) => {
                if !self.failing {
                    warn!("retention: removing old messages failed ({e}); retrying later");
                    self.failing = true;
                }
                self.next = now + RETRY_AFTER;
            }
        }
    }
}

/// One of the oldest rows, as a step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    id: i64,
    sent_at: String,
    room: String,
    stream_id: Option<String>,
    log_seq: Option<i64>,
}

/// What a step removed from one room: its newest removed row, and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RoomRemoval<'a> {
    through_id: i64,
    stream_id: Option<&'a str>,
    log_seq: Option<i64>,
    count: i64,
}

/// How many of `oldest` (in id order) go: the leading rows sent before `cutoff`. A row with a
/// later time stops the step even if rows after it are older (a clock stepped back): what is
/// removed stays a prefix of the ids, and that row's turn comes soon enough.
fn expired(oldest: &[Candidate], cutoff: &str) -> usize {
    oldest
        .iter()
        .take_while(|row| row.sent_at.as_str() < cutoff)
        .count()
}

/// The removed rows summed up per room.
fn by_room(removed: &[Candidate]) -> BTreeMap<&str, RoomRemoval<'_>> {
    let mut rooms: BTreeMap<&str, RoomRemoval<'_>> = BTreeMap::new();
    for row in removed {
        let entry = rooms.entry(&row.room).or_insert(RoomRemoval {
            through_id: row.id,
            stream_id: None,
            log_seq: None,
            count: 0,
        });
        entry.through_id = entry.through_id.max(row.id);
        if row.stream_id.is_some() {
            entry.stream_id = row.stream_id.as_deref();
            entry.log_seq = row.log_seq;
        }
        entry.count += 1;
    }
    rooms
}

/// Deletes up to [`STEP_ROWS`] of the oldest messages sent more than the policy's duration
/// before `now_ms`, records them in `history_removed`, and (when `shrink`) gives up to
/// [`VACUUM_PAGES`] free pages back to the file system: one transaction.
pub(super) fn step_at(
    conn: &mut Connection,
    policy: &Policy,
    now_ms: i64,
    shrink: bool,
) -> rusqlite::Result<Step> {
    let keep_ms = i64::try_from(policy.keep.as_millis()).unwrap_or(i64::MAX);
    let cutoff = clock::format_utc(now_ms.saturating_sub(keep_ms));
    // Immediate: a deferred transaction that read first could not upgrade to a write after
    // another connection (the account store) committed meanwhile, and would fail at once.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let oldest: Vec<Candidate> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, sent_at, room, stream_id, log_seq FROM messages ORDER BY id LIMIT ?1",
        )?;
        let rows = stmt.query_map([STEP_ROWS as i64], |row| {
            Ok(Candidate {
                id: row.get(0)?,
                sent_at: row.get(1)?,
                room: row.get(2)?,
                stream_id: row.get(3)?,
                log_seq: row.get(4)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let n = expired(&oldest, &cutoff);
    let removed = &oldest[..n];
    if let (Some(first), Some(last)) = (removed.first(), removed.last()) {
        // The rows selected are the first ids, so this range is exactly them.
        index::remove(&tx, first.id, last.id)?;
        tx.prepare_cached("DELETE FROM messages WHERE id BETWEEN ?1 AND ?2")?
            .execute([first.id, last.id])?;
        let now = clock::format_utc(now_ms);
        let mut record = tx.prepare_cached(
            "INSERT INTO history_removed
                 (room, through_id, stream_id, log_seq, after, removed_at, removed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (room) DO UPDATE SET
                 through_id = max(through_id, excluded.through_id),
                 stream_id = coalesce(excluded.stream_id, stream_id),
                 log_seq = coalesce(excluded.log_seq, log_seq),
                 after = excluded.after,
                 removed_at = excluded.removed_at,
                 removed = removed + excluded.removed",
        )?;
        for (room, r) in by_room(removed) {
            record.execute(params![
                room,
                r.through_id,
                r.stream_id,
                r.log_seq,
                &*policy.label,
                now,
                r.count
            ])?;
        }
    }
    let mut free_left = 0;
    if shrink {
        // Each step of this pragma moves one page; it must be stepped to the end.
        let mut vacuum = tx.prepare(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
        let mut rows = vacuum.query([])?;
        while rows.next()?.is_some() {}
        drop(rows);
        drop(vacuum);
        free_left = tx.pragma_query_value(None, "freelist_count", |row| row.get::<_, i64>(0))?;
    }
    tx.commit()?;
    Ok(Step {
        removed: n,
        more: n == STEP_ROWS || free_left > 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::open_connection;

    /// 2026-01-31 00:00:00 UTC, the "now" of these tests.
    const NOW_MS: i64 = 1_769_817_600_000;
    const DAY_MS: i64 = 86_400_000;

    fn candidate(id: i64, sent_at: &str, room: &str) -> Candidate {
        Candidate {
            id,
            sent_at: sent_at.into(),
            room: room.into(),
            stream_id: None,
            log_seq: None,
        }
    }

    fn insert(conn: &Connection, id: i64, at_ms: i64, room: &str, body: &str) {
        conn.execute(
            "INSERT INTO messages (id, sent_at, sender, body, room, kind)
             VALUES (?1, ?2, 'bob', ?3, ?4, 'message')",
            params![id, clock::format_utc(at_ms), body, room],
        )
        .unwrap();
    }

    fn ids(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT id FROM messages ORDER BY id").unwrap();
        let rows = stmt.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }

    fn thirty_days() -> Policy {
        Policy::parse("30d").unwrap()
    }

    /// The policy is a duration as bans take them, and keeps its label as typed.
    #[test]
    fn policy_parses_durations() {
        let policy = Policy::parse("4W").unwrap();
        assert_eq!(policy.keep, Duration::from_secs(28 * 86_400));
        assert_eq!(&*policy.label, "4w");
        assert_eq!(Policy::parse("30"), None);
        assert_eq!(Policy::parse("forever"), None);
    }

    /// Only the leading rows older than the cutoff go; a younger row stops the batch even when
    /// older ones follow it, so what is removed stays a prefix of the ids.
    #[test]
    fn a_batch_is_the_expired_prefix() {
        let cutoff = "2026-01-01 00:00:00.000";
        let rows = [
            candidate(1, "2025-12-01 10:00:00.000", "lobby"),
            candidate(2, "2025-12-31 23:59:59.999", "rust"),
            candidate(3, "2026-01-01 00:00:00.000", "lobby"),
            candidate(4, "2025-11-01 00:00:00.000", "lobby"),
        ];
        assert_eq!(expired(&rows, cutoff), 2);
        assert_eq!(expired(&rows[2..], cutoff), 0);
        assert_eq!(expired(&[], cutoff), 0);
    }

    /// Per room, a batch records its newest removed id, its cluster position and its count.
    #[test]
    fn removals_are_summed_per_room() {
        let mut rows = vec![
            candidate(1, "x", "lobby"),
            candidate(2, "x", "rust"),
            candidate(3, "x", "lobby"),
        ];
        rows[0].stream_id = Some("100-0".into());
        rows[0].log_seq = Some(7);
        let rooms = by_room(&rows);
        assert_eq!(
            rooms["lobby"],
            RoomRemoval {
                through_id: 3,
                stream_id: Some("100-0"),
                log_seq: Some(7),
                count: 2
            }
        );
        assert_eq!(rooms["rust"].through_id, 2);
        assert_eq!(rooms["rust"].count, 1);
    }

    /// With time injected, a step removes what is older than the policy and nothing else, notes
    /// it per room, and leaves the accounts and the moderation log alone.
    #[test]
    fn a_step_removes_only_expired_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("chat.db")).unwrap();
        insert(&conn, 1, NOW_MS - 40 * DAY_MS, "lobby", "old lobby");
        insert(&conn, 2, NOW_MS - 35 * DAY_MS, "rust", "old rust");
        insert(&conn, 3, NOW_MS - 29 * DAY_MS, "lobby", "recent lobby");
        insert(&conn, 4, NOW_MS, "rust", "new rust");
        conn.execute_batch(
            "INSERT INTO accounts (name, display, password_hash, created_at)
                 VALUES ('bob', 'bob', 'x', '2020-01-01 00:00:00.000');
             INSERT INTO moderation_log (at, operator, action, target)
                 VALUES ('2020-01-01 00:00:00.000', 'cli', 'ban', 'eve');",
        )
        .unwrap();

        let step = step_at(&mut conn, &thirty_days(), NOW_MS, true).unwrap();
        assert_eq!(
            step,
            Step {
                removed: 2,
                more: false
            }
        );
        assert_eq!(ids(&conn), [3, 4]);
        let removed: Vec<(String, i64, String, i64)> = conn
            .prepare("SELECT room, through_id, after, removed FROM history_removed ORDER BY room")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            removed,
            [
                ("lobby".into(), 1, "30d".into(), 1),
                ("rust".into(), 2, "30d".into(), 1)
            ]
        );
        let kept: (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM moderation_log)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(kept, (1, 1));

        // Nothing else is due until time moves on; a day later the lobby row goes too.
        let step = step_at(&mut conn, &thirty_days(), NOW_MS, true).unwrap();
        assert_eq!(step.removed, 0);
        step_at(&mut conn, &thirty_days(), NOW_MS + 2 * DAY_MS, true).unwrap();
        assert_eq!(ids(&conn), [4]);
    }

    /// A backlog goes a bounded batch at a time, each step saying whether more is due.
    #[test]
    fn a_backlog_goes_in_bounded_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("chat.db")).unwrap();
        let total = STEP_ROWS as i64 * 2 + 10;
        let tx = conn.transaction().unwrap();
        for id in 1..=total {
            insert(&tx, id, NOW_MS - 100 * DAY_MS + id, "lobby", "old");
        }
        tx.commit().unwrap();
        let mut steps = Vec::new();
        loop {
            let step = step_at(&mut conn, &thirty_days(), NOW_MS, false).unwrap();
            steps.push(step.removed);
            if !step.more {
                break;
            }
        }
        assert_eq!(steps, [STEP_ROWS, STEP_ROWS, 10]);
        assert!(ids(&conn).is_empty());
    }

    /// Emptying the table keeps the newest id and the cluster position: ids are not reused, and
    /// a node resumes the cluster log where it was. Removed rows leave the search index, which
    /// still agrees with the table.
    #[test]
    fn an_emptied_table_remembers_where_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("chat.db")).unwrap();
        for id in 1..=3 {
            conn.execute(
                "INSERT INTO messages (id, sent_at, sender, body, room, kind, stream_id, log_seq)
                 VALUES (?1, ?2, 'bob', 'findme', 'lobby', 'message', ?3, ?4)",
                params![
                    id,
                    clock::format_utc(NOW_MS - 90 * DAY_MS),
                    format!("{}-0", 1000 + id),
                    id * 2
                ],
            )
            .unwrap();
        }
        // As on the writer's connection: triggers off, the step unindexes what it deletes.
        index::index_by_batch(&conn).unwrap();
        step_at(&mut conn, &thirty_days(), NOW_MS, true).unwrap();
        assert!(ids(&conn).is_empty());
        assert_eq!(crate::storage::schema::last_id(&conn).unwrap(), 3);
        let position = crate::storage::schema::log_position(&conn)
            .unwrap()
            .unwrap();
        assert_eq!(&*position.stream_id, "1003-0");
        assert_eq!(position.seq, 6);
        let indexed: i64 = conn
            .query_row(
                "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'findme'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexed, 0);
        conn.execute(
            "INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)",
            [],
        )
        .unwrap();
    }

    /// In a new file (incremental auto-vacuum), removing rows shrinks the file.
    #[test]
    fn removing_rows_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("chat.db")).unwrap();
        let body = "x".repeat(500);
        let tx = conn.transaction().unwrap();
        for id in 1..=2000 {
            insert(&tx, id, NOW_MS - 100 * DAY_MS, "lobby", &body);
        }
        tx.commit().unwrap();
        let pages = |conn: &Connection| -> i64 {
            conn.pragma_query_value(None, "page_count", |r| r.get(0))
                .unwrap()
        };
        let before = pages(&conn);
        while step_at(&mut conn, &thirty_days(), NOW_MS, true)
            .unwrap()
            .more
        {}
        let after = pages(&conn);
        assert!(after * 4 < before, "{before} pages before, {after} after");
    }

    /// The schedule: due at once, then only when idle unless overdue; while lines are being
    /// stored, steps are spaced; when none are, a backlog goes step after step.
    #[test]
    fn steps_wait_for_idle_and_give_way_to_chat() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("chat.db")).unwrap();
        let tx = conn.transaction().unwrap();
        for id in 1..=(3 * STEP_ROWS as i64) {
            insert(&tx, id, NOW_MS - 100 * DAY_MS, "lobby", "old");
        }
        tx.commit().unwrap();
        let mut retention = Retention::new(thirty_days(), &conn, || NOW_MS, Duration::ZERO);
        let now = retention.next(0);
        assert!(retention.should_step(now, true, 0));
        assert!(!retention.should_step(now, false, 0));
        assert!(retention.should_step(now + OVERDUE, false, 0));

        // A backlog: with no line stored since, the next step is due soon.
        retention.step(&mut conn, 0);
        assert_eq!(retention.next(0), retention.last_step + QUIET_GAP);
        assert!(retention.should_step(retention.last_step + QUIET_GAP, true, 0));
        // Lines were stored meanwhile: the next step waits its turn.
        assert!(retention.next(5) >= retention.last_step + ACTIVE_GAP);
        assert!(!retention.should_step(retention.last_step, true, 5));
        assert!(retention.should_step(retention.last_step + ACTIVE_GAP, true, 5));
        // Once the backlog is gone, the next look is a minute away.
        retention.step(&mut conn, 5);
        retention.step(&mut conn, 5);
        retention.step(&mut conn, 5);
        assert!(retention.next(5) >= retention.last_step + CHECK_EVERY);
    }
}
