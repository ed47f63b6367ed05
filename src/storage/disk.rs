//! The writer's side of SQLite: what the group commit (`writer`) does to the database.
//!
//! [`SqliteDisk`] owns the writer's connection: triggers off (it indexes its own rows, see
//! `index`) and `synchronous=NORMAL` (its commits are made durable by the syncer, see `sync`).
//! It writes each batch in one transaction, and between commits, while the last commit's fsync
//! is in flight, runs the work no line waits for:
//! - the search index's step over the rows committed since the last one;
//! - a checkpoint once the WAL has grown past [`CHECKPOINT_PAGES`]. SQLite's own autocheckpoint
//!   would run it inside a commit, and that commit's lines would wait for it (two more fsyncs);
//! - retention's step, when one is due (`retention` decides when); also between the retries of
//!   a commit that failed on a full disk, since a step frees the pages the batch needs.
//!
//! Each of them writes in its turn ([`WriteTurns`]), shared with the account thread, so neither
//! ever waits for the other in SQLite's busy handler.

use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use log::{info, warn};
use rusqlite::hooks::Wal;
use rusqlite::{params, Connection};

use super::index::{self, Trailing};
use super::retention::Retention;
use super::turns::WriteTurns;
use super::writer::Disk;
use super::{Progress, Record};
use crate::clock;

/// WAL pages past which a checkpoint runs between two commits: SQLite's default for its
/// autocheckpoint (4 MiB at 4 KiB pages), which this replaces. Not configurable.
const CHECKPOINT_PAGES: i32 = 1000;

/// The writer's connection and what it does between commits.
pub(super) struct SqliteDisk {
    conn: Connection,
    index: Trailing,
    retention: Option<Retention>,
    progress: Arc<Progress>,
    /// Turns at writing, shared with the account thread.
    turns: WriteTurns,
    /// The WAL's size in pages after the connection's last commit, from SQLite's WAL hook.
    wal_pages: Arc<AtomicI32>,
    /// Whether the last checkpoint failed (one warning per run of failures).
    checkpoint_failing: bool,
}

impl SqliteDisk {
    /// Takes over the writer's connection, whose search index has caught up to `indexed`.
    pub(super) fn new(
        mut conn: Connection,
        indexed: i64,
        retention: Option<Retention>,
        progress: Arc<Progress>,
        turns: WriteTurns,
    ) -> rusqlite::Result<SqliteDisk> {
        // The hook replaces SQLite's autocheckpoint on this connection and only counts pages:
        // checkpoints run in `between`.
        let wal_pages = Arc::new(AtomicI32::new(0));
        let pages = wal_pages.clone();
        conn.wal_hook(Some(move |_: &mut Wal, n: c_int| {
            pages.store(n, Ordering::Relaxed);
            Ok(())
        }))?;
        // Commits are made durable by the syncer's fsync, off this thread.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Ok(SqliteDisk {
            conn,
            index: Trailing::new(indexed),
            retention,
            progress,
            turns,
            wal_pages,
            checkpoint_failing: false,
        })
    }

    /// One step of the search index over the rows committed since the last, if due.
    fn index_step(&mut self, now: Instant) {
        let Some(upto) = self.index.due(now) else {
            return;
        };
        let turn = self.turns.wait();
        let stepped = index::step(&mut self.conn, upto);
        drop(turn);
        match stepped {
            Ok(through) => {
                if self.index.indexed(through, now) {
                    info!("search index: new messages are indexed again");
                }
                self.progress.indexed(through);
            }
            Err(e) => {
                if self.index.failed(now) {
                    warn!(
                        "search index: indexing new messages failed ({e}); retrying, searches \
                         miss them meanwhile"
                    );
                }
            }
        }
    }

    /// A passive checkpoint once the WAL has grown past [`CHECKPOINT_PAGES`]: it copies what it
    /// can into the database file and never waits for readers.
    fn checkpoint(&mut self) {
        if self.wal_pages.load(Ordering::Relaxed) < CHECKPOINT_PAGES {
            return;
        }
        // Counted again by the next commit's hook: if readers kept the WAL from restarting, this
        // runs again then, as SQLite's autocheckpoint would.
        self.wal_pages.store(0, Ordering::Relaxed);
        match self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            Ok(()) => self.checkpoint_failing = false,
            Err(e) => {
                if !self.checkpoint_failing {
                    warn!("history checkpoint failed ({e}); retrying after the next commit");
                    self.checkpoint_failing = true;
                }
            }
        }
    }
}

impl Disk for SqliteDisk {
    fn write(&mut self, batch: &[Record]) -> rusqlite::Result<()> {
        let _turn = self.turns.wait();
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO messages (id, sent_at, sender, body, room, kind, stream_id, log_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (stream_id) DO NOTHING",
            )?;
            for r in batch {
                stmt.execute(params![
                    r.id,
                    clock::format_utc(r.at_ms),
                    &*r.sender,
                    &*r.body,
                    &*r.room,
                    r.kind.as_str(),
                    r.log.as_ref().map(|l| &*l.stream_id),
                    r.log.as_ref().map(|l| l.seq),
                ])?;
            }
        }
        tx.commit()
    }

    fn refused(&mut self, e: &rusqlite::Error, stored: u64) {
        // The file is full: the batch waits, but retention need not (a step frees more pages
        // than it needs, so it runs in a full file, and what it frees the batch can use).
        // Otherwise a full disk would stop the one thing that can make room, for as long as
        // chat is paused.
        if e.sqlite_error_code() != Some(rusqlite::ErrorCode::DiskFull) {
            return;
        }
        if let Some(retention) = self.retention.as_mut() {
            if Instant::now() >= retention.next(stored) {
                let _turn = self.turns.wait();
                retention.step(&mut self.conn, stored);
            }
        }
    }

    fn settled(&mut self, through: i64) {
        self.index.settled(through);
    }

    fn between(&mut self, now: Instant, idle: bool, stored: u64) {
        self.index_step(now);
        self.checkpoint();
        if let Some(retention) = self.retention.as_mut() {
            if retention.should_step(now, idle, stored) {
                let _turn = self.turns.wait();
                retention.step(&mut self.conn, stored);
            }
        }
    }

    fn next_due(&self, now: Instant, stored: u64) -> Option<Instant> {
        let retention = self.retention.as_ref().map(|r| r.next(stored));
        match (self.index.next_due(now), retention) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn finish(&mut self) {
        // A clean stop leaves the index complete, so the next start has nothing to catch up (a
        // failing step stops this: its back-off makes the next one not due).
        let now = Instant::now();
        loop {
            self.index.unspaced();
            if self.index.due(now).is_none() {
                break;
            }
            self.index_step(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::open_connection;

    fn record(id: i64) -> Record {
        Record::test(id, &format!("line number{id}"))
    }

    fn disk(dir: &tempfile::TempDir) -> SqliteDisk {
        let conn = open_connection(&dir.path().join("chat.db")).unwrap();
        index::index_by_batch(&conn).unwrap();
        SqliteDisk::new(
            conn,
            0,
            None,
            Arc::new(Progress::new(0)),
            WriteTurns::default(),
        )
        .unwrap()
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A batch is stored without being indexed; the step between commits indexes it and
    /// publishes how far the index goes.
    #[test]
    fn rows_are_indexed_between_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = disk(&dir);
        let batch: Vec<Record> = (1..=3).map(record).collect();
        disk.write(&batch).unwrap();
        disk.settled(3);
        let search = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'line'";
        assert_eq!(count(&disk.conn, search), 0);
        assert!(disk.next_due(Instant::now(), 3).is_some());
        disk.between(Instant::now(), true, 3);
        assert_eq!(count(&disk.conn, search), 3);
        assert_eq!(disk.progress.indexed.load(Ordering::Acquire), 3);
        assert_eq!(disk.next_due(Instant::now(), 3), None);
    }

    /// The WAL is checkpointed between commits once it passes the threshold, not inside them.
    #[test]
    fn checkpoints_run_between_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = disk(&dir);
        let big = "x".repeat(3000);
        let mut id = 0;
        while disk.wal_pages.load(Ordering::Relaxed) < CHECKPOINT_PAGES {
            let batch: Vec<Record> = (0..100)
                .map(|_| {
                    id += 1;
                    Record {
                        body: big.clone().into(),
                        ..record(id)
                    }
                })
                .collect();
            disk.write(&batch).unwrap();
            assert!(id < 100_000, "the WAL never grew: is the hook counting?");
        }
        disk.between(Instant::now(), true, 0);
        disk.write(&[record(id + 1)]).unwrap();
        assert!(
            disk.wal_pages.load(Ordering::Relaxed) < 100,
            "the WAL restarted after the checkpoint"
        );
    }
}
