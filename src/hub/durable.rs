//! Committed before relayed: a public line waits here until the history writer has committed
//! it and that commit is on disk (the id the writer publishes after its fsync), so every line any client received is in the database whatever the disk does (a write lock
//! held by another program, a full disk) and even after `kill -9`.
//!
//! Why not relay at once and bound the age of unstored lines instead: whatever the bound, a crash
//! inside it loses lines people have read, and the bound is only checked when the next line
//! comes. Waiting for the commit costs each line about two fsyncs (the one in flight when it
//! came, then its own; plus `--commit-ms` when set), and buys an exact rule.
//!
//! While the writer cannot commit, lines wait here in order, never dropped. Once the oldest has
//! waited [`PAUSE_NOTICE_AFTER`], everybody is told once that chat is paused, and again when it
//! resumes. Room notices (joins, leaves, renames) queue behind waiting lines, so a room sees
//! things in the order they happened. Memory is bounded: past [`MAX_HELD`] waiting lines the hub
//! waits for the writer while it is merely busy, and once chat is paused refuses new public
//! lines, telling their senders. Notices are bounded apart ([`MAX_HELD_NOTICES`]): a reconnect
//! loop during an outage makes two per connection, and they are a courtesy, not history, so past
//! the bound they are counted instead of queued, and once the backlog has gone everybody is told
//! how many were skipped.
//!
//! A held line goes to the members of its room when it is relayed, not when it was said. So a
//! member who leaves the room meanwhile does not get the room's last uncommitted lines (normally
//! the commit in flight; during a pause, everything since it): they are in that room's history.
//!
//! This part owns the waiting lines and the writer's queue, and decides; the hub delivers.
//! Time is a parameter.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use log::{debug, info, warn};

use crate::hub::event::ServerNotice;
use crate::hub::fanout::ToRoom;
use crate::storage::{History, Record};

/// How long the oldest waiting line may wait before everybody is told chat is paused: far above
/// a healthy commit (one window plus an fsync, milliseconds), short enough that users learn why
/// nothing arrives. Not configurable: it changes only when users are told, not what is stored.
pub const PAUSE_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// Most lines (and queued notices) waiting for the writer. Each holds its record and its event
/// (sharing the text), so with 1 KiB lines this bounds the hub's backlog to tens of MB however
/// long the disk stays stuck. Not configurable: it only matters during an outage.
pub const MAX_HELD: usize = 16 * 1024;

/// Most notices (joins, leaves, renames) waiting behind held lines. Far more than anybody reads
/// of a backlog after an outage; past it they are dropped and counted. Not configurable.
pub const MAX_HELD_NOTICES: usize = 256;

/// Where records go: the history writer's queue, and how far it has committed. A trait so that
/// the hub's tests run without SQLite or threads.
pub trait Sink: Send {
    /// Queues a record without waiting; hands it back when the queue is full.
    fn try_append(&self, record: Record) -> Result<(), Record>;
    /// The highest id the writer is done with.
    fn committed(&self) -> i64;
}

impl Sink for History {
    fn try_append(&self, record: Record) -> Result<(), Record> {
        History::try_append(self, record)
    }

    fn committed(&self) -> i64 {
        History::committed(self)
    }
}

/// Lines waiting for the writer, and what has been relayed.
pub struct Relay {
    sink: Box<dyn Sink>,
    held: VecDeque<Held>,
    /// How many of `held` are notices.
    notices: usize,
    /// Notices dropped because [`MAX_HELD_NOTICES`] already waited, not told yet.
    skipped: u64,
    /// Records the writer's queue could not take yet, oldest first.
    unqueued: VecDeque<Record>,
    /// The newest message id relayed: a newcomer's replay goes up to it, its outbox on from it.
    relayed: i64,
    /// The id the next line gets.
    next_id: i64,
    /// Whether users were told that chat is paused.
    paused: bool,
}

/// Something for a room, waiting for everything before it to be committed.
struct Held {
    /// The message id, or `None` for a notice, which is not stored and goes as soon as every
    /// line before it has gone.
    id: Option<i64>,
    since: Instant,
    to: ToRoom,
}

impl Relay {
    /// A relay whose newest stored message is `last_id`.
    pub fn new(sink: Box<dyn Sink>, last_id: i64) -> Relay {
        Relay {
            sink,
            held: VecDeque::new(),
            notices: 0,
            skipped: 0,
            unqueued: VecDeque::new(),
            relayed: last_id,
            next_id: last_id + 1,
            paused: false,
        }
    }

    /// The newest message id relayed.
    pub fn relayed(&self) -> i64 {
        self.relayed
    }

    /// Takes the next message id.
    pub fn stamp(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// True when no more lines fit.
    pub fn is_full(&self) -> bool {
        self.held.len() >= MAX_HELD
    }

    /// True once users were told chat is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// When the hub must look again without a commit: `None` when nothing waits or users were
    /// already told; `Some(None)` to wait for a commit only.
    pub fn wake_at(&self) -> Option<Option<Instant>> {
        let oldest = self.held.front()?;
        Some((!self.paused).then(|| oldest.since + PAUSE_NOTICE_AFTER))
    }

    /// Queues a stamped record for the writer and holds its event until it is committed.
    pub fn hold_line(&mut self, record: Record, to: ToRoom, now: Instant) {
        let id = record.id;
        // Keep the writer's order: nothing overtakes a record the queue could not take.
        if !self.unqueued.is_empty() {
            self.unqueued.push_back(record);
        } else if let Err(record) = self.sink.try_append(record) {
            self.unqueued.push_back(record);
        }
        self.held.push_back(Held {
            id: Some(id),
            since: now,
            to,
        });
    }

    /// A notice for a room: handed back to go at once if no line waits; otherwise queued behind
    /// the waiting lines, or, past [`MAX_HELD_NOTICES`] (or [`MAX_HELD`]), counted and dropped.
    pub fn notice(&mut self, to: ToRoom, now: Instant) -> Option<ToRoom> {
        if self.held.is_empty() {
            return Some(to);
        }
        if self.notices >= MAX_HELD_NOTICES || self.held.len() >= MAX_HELD {
            if self.skipped == 0 {
                debug!("{MAX_HELD_NOTICES} notices wait for the history; counting the rest");
            }
            self.skipped += 1;
        } else {
            self.notices += 1;
            self.held.push_back(Held {
                id: None,
                since: now,
                to,
            });
        }
        None
    }

    /// Hands the writer what its queue could not take.
    pub fn feed_writer(&mut self) {
        while let Some(record) = self.unqueued.pop_front() {
            if let Err(record) = self.sink.try_append(record) {
                self.unqueued.push_front(record);
                break;
            }
        }
    }

    /// The next line (or notice behind it) whose turn has come: everything before it and itself
    /// committed.
    pub fn next_ready(&mut self) -> Option<ToRoom> {
        let committed = self.sink.committed();
        if self.held.front()?.id.is_some_and(|id| id > committed) {
            return None;
        }
        let held = self.held.pop_front()?;
        match held.id {
            Some(id) => self.relayed = id,
            None => self.notices -= 1,
        }
        Some(held.to)
    }

    /// What everybody must be told now, if anything: skipped notices once the backlog has gone,
    /// chat resumed, or chat paused once the oldest line has waited [`PAUSE_NOTICE_AFTER`].
    pub fn news(&mut self, now: Instant) -> Option<ServerNotice> {
        if self.held.is_empty() && self.skipped > 0 {
            let skipped = std::mem::take(&mut self.skipped);
            info!("{skipped} notices were skipped while lines waited for the history");
            return Some(ServerNotice::NoticesSkipped(skipped));
        }
        match self.held.front() {
            None if self.paused => {
                self.paused = false;
                info!("history is written again; chat resumed");
                Some(ServerNotice::HistoryResumed)
            }
            Some(oldest)
                if !self.paused
                    && now.saturating_duration_since(oldest.since) >= PAUSE_NOTICE_AFTER =>
            {
                self.paused = true;
                warn!(
                    "history cannot be written; chat paused with {} lines waiting",
                    self.held.len()
                );
                Some(ServerNotice::HistoryPaused)
            }
            _ => None,
        }
    }

    /// At shutdown: gives the writer what it has not taken yet, without waiting. Those lines were
    /// never relayed, so nobody has seen them; any the queue cannot take are counted in the log.
    pub fn hand_over(&mut self) {
        let mut left = 0usize;
        while let Some(record) = self.unqueued.pop_front() {
            if self.sink.try_append(record).is_err() {
                left += 1;
            }
        }
        if left > 0 {
            warn!("{left} lines nobody has seen were not stored: the history writer is stuck");
        }
    }
}

#[cfg(test)]
pub mod fake {
    //! A history writer in memory, for the hub's tests: it takes what fits and commits when told.

    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};

    use super::Sink;
    use crate::storage::Record;

    /// The writer's side: what was queued, and how far it has committed.
    #[derive(Clone, Default)]
    pub struct Writer {
        pub queued: Arc<Mutex<Vec<Record>>>,
        pub committed: Arc<AtomicI64>,
        /// How many records the queue takes before it is full.
        pub capacity: Arc<AtomicI64>,
    }

    impl Writer {
        pub fn new(capacity: i64) -> Writer {
            let writer = Writer::default();
            writer.capacity.store(capacity, Ordering::Relaxed);
            writer
        }

        /// Commits everything queued so far.
        pub fn commit_all(&self) {
            let queued = self.queued.lock().unwrap();
            if let Some(last) = queued.last() {
                self.committed.store(last.id, Ordering::Relaxed);
            }
        }
    }

    impl Sink for Writer {
        fn try_append(&self, record: Record) -> Result<(), Record> {
            let mut queued = self.queued.lock().unwrap();
            if queued.len() as i64 >= self.capacity.load(Ordering::Relaxed) {
                return Err(record);
            }
            queued.push(record);
            Ok(())
        }

        fn committed(&self) -> i64 {
            self.committed.load(Ordering::Relaxed)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::Writer;
    use super::*;
    use crate::hub::event::{Event, Notice};
    use crate::names::{Nick, RoomName};
    use crate::vocab::Kind;
    use std::sync::atomic::Ordering;

    fn record(id: i64) -> Record {
        Record {
            id,
            at_ms: 0,
            room: "lobby".into(),
            sender: "bob".into(),
            kind: Kind::Message,
            body: "hi".into(),
            log: None,
        }
    }

    fn to_lobby() -> ToRoom {
        let room = RoomName::lobby();
        let nick = Nick::parse("carol").unwrap();
        ToRoom::new(
            room.clone(),
            Event::Notice(Notice::Joined {
                room,
                nick,
                listed: None,
            }),
        )
    }

    /// Lines wait for their commit in order; a notice behind a waiting line waits too; a notice
    /// with nothing waiting goes at once.
    #[test]
    fn lines_wait_for_their_commit_and_notices_wait_behind_them() {
        let writer = Writer::new(100);
        let mut relay = Relay::new(Box::new(writer.clone()), 10);
        let now = Instant::now();
        assert!(relay.notice(to_lobby(), now).is_some(), "nothing waits");
        let id = relay.stamp();
        assert_eq!(id, 11);
        relay.hold_line(record(id), to_lobby(), now);
        assert!(relay.notice(to_lobby(), now).is_none(), "behind the line");
        assert!(relay.next_ready().is_none(), "not committed yet");
        writer.commit_all();
        assert!(relay.next_ready().is_some());
        assert_eq!(relay.relayed(), 11);
        assert!(relay.next_ready().is_some(), "the notice behind it");
        assert!(relay.next_ready().is_none());
    }

    /// A stuck writer: after a second users are told chat paused, once; when the lines are
    /// committed, resumed. A full writer queue keeps records in order until it takes them.
    #[test]
    fn a_stuck_writer_pauses_and_resumes_chat() {
        let writer = Writer::new(1);
        let mut relay = Relay::new(Box::new(writer.clone()), 0);
        let t0 = Instant::now();
        for _ in 0..3 {
            let id = relay.stamp();
            relay.hold_line(record(id), to_lobby(), t0);
        }
        assert_eq!(writer.queued.lock().unwrap().len(), 1, "the queue took one");
        assert_eq!(relay.news(t0), None);
        assert_eq!(relay.wake_at(), Some(Some(t0 + PAUSE_NOTICE_AFTER)));
        let later = t0 + PAUSE_NOTICE_AFTER;
        assert_eq!(relay.news(later), Some(ServerNotice::HistoryPaused));
        assert_eq!(relay.news(later), None, "told once");
        writer.capacity.store(10, Ordering::Relaxed);
        relay.feed_writer();
        let ids: Vec<i64> = writer.queued.lock().unwrap().iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, 2, 3], "in order");
        writer.commit_all();
        while relay.next_ready().is_some() {}
        assert_eq!(relay.news(later), Some(ServerNotice::HistoryResumed));
    }

    /// Notices past the bound behind waiting lines are counted, and the count told once the
    /// backlog has gone.
    #[test]
    fn notices_past_the_bound_are_counted() {
        let writer = Writer::new(100);
        let mut relay = Relay::new(Box::new(writer.clone()), 0);
        let now = Instant::now();
        let id = relay.stamp();
        relay.hold_line(record(id), to_lobby(), now);
        for _ in 0..MAX_HELD_NOTICES + 5 {
            relay.notice(to_lobby(), now);
        }
        writer.commit_all();
        let mut relayed = 0;
        while relay.next_ready().is_some() {
            relayed += 1;
        }
        assert_eq!(relayed, 1 + MAX_HELD_NOTICES);
        assert_eq!(relay.news(now), Some(ServerNotice::NoticesSkipped(5)));
    }
}
