//! Committed before relayed: a public line waits in the hub until the history writer has
//! committed it, so every line any client received is in the database whatever the disk does (a
//! write lock held by another program, a full disk) and even after `kill -9`.
//!
//! Why not relay at once and bound the age of unstored lines instead: whatever the bound, a crash
//! inside it loses lines people have read, and the bound is only checked when the next line
//! comes. Waiting for the commit costs each line at most one commit window (`--commit-ms`) plus
//! an fsync, and buys an exact rule.
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
//! user who `/join`s another room meanwhile does not get the old room's last uncommitted lines
//! (normally one commit window; during a pause, everything since it): they are in that room's
//! history. Delivering them after the move would show them in the new room as if said there;
//! holding the move until they are committed would freeze `/join` for as long as the disk is
//! stuck. Documented in docs/PROTOCOL.md.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::Receiver;
use log::{debug, info, warn};
use smol::future;

use super::outbox::{line, Line};
use super::{Hub, MemberId};
use crate::clock;
use crate::names::RoomName;
use crate::protocol;
use crate::storage::Record;
use crate::vocab::Kind;

/// How long the oldest waiting line may wait before everybody is told chat is paused: far above
/// a healthy commit (one window plus an fsync, milliseconds), short enough that users learn why
/// nothing arrives. Not configurable: it changes only when users are told, not what is stored.
pub(super) const PAUSE_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// Most lines (and queued notices) waiting for the writer. Each holds its text twice (the record
/// and the formatted line), so with 1 KiB lines this bounds the hub's backlog to tens of MB
/// however long the disk stays stuck. Not configurable: it only matters during an outage.
pub(super) const MAX_HELD: usize = 16 * 1024;

/// Most notices (joins, leaves, renames) waiting behind held lines. Far more than anybody reads
/// of a backlog after an outage; past it they are dropped and counted. Not configurable.
pub(super) const MAX_HELD_NOTICES: usize = 256;

/// Lines waiting for the writer, and what has been relayed.
pub(super) struct Relay {
    held: VecDeque<Held>,
    /// How many of `held` are notices.
    notices: usize,
    /// Notices dropped because [`MAX_HELD_NOTICES`] already waited, not told yet.
    skipped: u64,
    /// Records the writer's queue could not take yet, oldest first.
    unqueued: VecDeque<Record>,
    /// The newest message id relayed: a newcomer's replay goes up to it, its outbox on from it.
    relayed: i64,
    /// Whether users were told that chat is paused.
    paused: bool,
}

/// A line for a room, waiting for everything before it to be committed.
struct Held {
    /// The message id, or `None` for a notice, which is not stored and goes as soon as every
    /// line before it has gone.
    id: Option<i64>,
    since: Instant,
    room: RoomName,
    except: Option<MemberId>,
    /// For a user's line, the sender's name key: members who ignore the sender skip it.
    sender: Option<Arc<str>>,
    line: Line,
}

impl Relay {
    pub(super) fn new(last_id: i64) -> Relay {
        Relay {
            held: VecDeque::new(),
            notices: 0,
            skipped: 0,
            unqueued: VecDeque::new(),
            relayed: last_id,
            paused: false,
        }
    }

    /// The newest message id relayed.
    pub(super) fn relayed(&self) -> i64 {
        self.relayed
    }

    /// When the hub must look again without a commit: `None` when nothing waits or users were
    /// already told; `Some(None)` to wait for a commit only.
    pub(super) fn wake_at(&self) -> Option<Option<Instant>> {
        let oldest = self.held.front()?;
        Some((!self.paused).then(|| oldest.since + PAUSE_NOTICE_AFTER))
    }
}

impl Hub {
    /// Stamps a public line, queues it for the writer and holds it until it is committed.
    ///
    /// When [`MAX_HELD`] lines already wait and the writer is merely behind (chat not paused),
    /// this waits for its commits: backpressure that slows every sender, as a healthy but busy
    /// disk should. Once chat is paused it refuses instead, so a stuck disk never freezes the hub
    /// (joins, `/who`, the shutdown all go on). A shutdown meanwhile still reaches everybody.
    pub(super) async fn say(
        &mut self,
        id: MemberId,
        kind: Kind,
        text: String,
        stopping: &Receiver<()>,
    ) {
        while self.relay.held.len() >= MAX_HELD && !self.relay.paused && !self.closing {
            // About to wait: who has output must not wait with the hub.
            self.wake_sessions();
            let at = self
                .relay
                .wake_at()
                .flatten()
                .unwrap_or_else(|| Instant::now() + PAUSE_NOTICE_AFTER);
            let stopped = future::or(
                async {
                    let _ = stopping.recv().await;
                    true
                },
                future::or(
                    async {
                        self.history.commit_happened().await;
                        false
                    },
                    async {
                        smol::Timer::at(at).await;
                        false
                    },
                ),
            )
            .await;
            if stopped {
                self.shutdown();
                return;
            }
            self.relay_committed();
        }
        if self.closing {
            return;
        }
        let Some(nick) = self.members.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        if self.is_muted(&nick) {
            self.tell(id, protocol::YOU_ARE_MUTED);
            return;
        }
        let Some(member) = self.members.get(&id) else {
            return;
        };
        if self.relay.held.len() >= MAX_HELD {
            debug!(
                "{}: line refused, {MAX_HELD} lines wait for the history",
                member.nick
            );
            self.tell(id, protocol::NOT_SENT_PAUSED);
            return;
        }
        let msg_id = self.next_msg_id;
        self.next_msg_id += 1;
        debug!("message {msg_id} from {} in {}", member.nick, member.room);
        let formatted = line(&protocol::live(kind, member.nick.as_str(), &text));
        let sender = Some(Arc::from(member.nick.key()));
        let record = Record {
            id: msg_id,
            at_ms: clock::now_ms(),
            room: member.room.shared(),
            sender: member.nick.shared(),
            kind,
            body: text.into(),
            log: None,
        };
        let room = member.room.clone();
        // Join/leave notices held for a summary go first: nobody's message may arrive before
        // the notice that they joined.
        self.send_summaries(&room);
        self.hold(record, room, Some(id), sender, formatted);
    }

    /// Queues a stamped record for the writer and holds its line for the room (all but
    /// `except`; `sender` is the name key that ignoring members skip) until it is committed.
    /// Cluster mode uses this for every line read from the log.
    pub(super) fn hold(
        &mut self,
        record: Record,
        room: RoomName,
        except: Option<MemberId>,
        sender: Option<Arc<str>>,
        formatted: Line,
    ) {
        let msg_id = record.id;
        // Keep the writer's order: nothing overtakes a record the queue could not take.
        if !self.relay.unqueued.is_empty() {
            self.relay.unqueued.push_back(record);
        } else if let Err(record) = self.history.try_append(record) {
            self.relay.unqueued.push_back(record);
        }
        self.relay.held.push_back(Held {
            id: Some(msg_id),
            since: Instant::now(),
            room,
            except,
            sender,
            line: formatted,
        });
    }

    /// Sends a notice to everybody in `room` except `except`: at once if no line is waiting,
    /// otherwise behind the waiting lines, or, past [`MAX_HELD_NOTICES`] (or [`MAX_HELD`]),
    /// not at all: it is counted, and the count told when the backlog has gone.
    pub(super) fn broadcast(&mut self, room: &RoomName, except: Option<MemberId>, line: Line) {
        if self.relay.held.is_empty() {
            self.broadcast_now(room, except, line);
        } else if self.relay.notices >= MAX_HELD_NOTICES || self.relay.held.len() >= MAX_HELD {
            if self.relay.skipped == 0 {
                debug!("{MAX_HELD_NOTICES} notices wait for the history; counting the rest");
            }
            self.relay.skipped += 1;
        } else {
            self.relay.notices += 1;
            self.relay.held.push_back(Held {
                id: None,
                since: Instant::now(),
                room: room.clone(),
                except,
                sender: None,
                line,
            });
        }
    }

    /// Hands the writer what its queue could not take, relays every line it has committed (and
    /// the notices queued behind them), and tells users when chat pauses or resumes.
    pub(super) fn relay_committed(&mut self) {
        while let Some(record) = self.relay.unqueued.pop_front() {
            if let Err(record) = self.history.try_append(record) {
                self.relay.unqueued.push_front(record);
                break;
            }
        }
        let committed = self.history.committed();
        while let Some(next) = self.relay.held.front() {
            if next.id.is_some_and(|id| id > committed) {
                break;
            }
            let Some(held) = self.relay.held.pop_front() else {
                break;
            };
            match held.id {
                Some(id) => self.relay.relayed = id,
                None => self.relay.notices -= 1,
            }
            match &held.sender {
                Some(sender) if self.anybody_ignores() => {
                    self.broadcast_said_now(&held.room, held.except, sender, held.line)
                }
                _ => self.broadcast_now(&held.room, held.except, held.line),
            }
        }
        if self.relay.held.is_empty() && self.relay.skipped > 0 {
            let skipped = std::mem::take(&mut self.relay.skipped);
            info!("{skipped} notices were skipped while lines waited for the history");
            self.tell_everybody(line(&protocol::notices_skipped(skipped)));
        }
        match self.relay.held.front() {
            None if self.relay.paused => {
                self.relay.paused = false;
                info!("history is written again; chat resumed");
                self.tell_everybody(line(protocol::CHAT_RESUMED));
            }
            Some(oldest) if !self.relay.paused && oldest.since.elapsed() >= PAUSE_NOTICE_AFTER => {
                self.relay.paused = true;
                warn!(
                    "history cannot be written; chat paused with {} lines waiting",
                    self.relay.held.len()
                );
                self.tell_everybody(line(protocol::CHAT_PAUSED));
            }
            _ => {}
        }
    }

    /// At shutdown: gives the writer what it has not taken yet, without waiting. Those lines were
    /// never relayed, so nobody has seen them; any the queue cannot take are counted in the log.
    pub(super) fn hand_over_unqueued(&mut self) {
        let mut left = 0usize;
        while let Some(record) = self.relay.unqueued.pop_front() {
            if self.history.try_append(record).is_err() {
                left += 1;
            }
        }
        if left > 0 {
            warn!("{left} lines nobody has seen were not stored: the history writer is stuck");
        }
    }

    fn tell_everybody(&mut self, line: Line) {
        let ids: Vec<MemberId> = self.members.keys().copied().collect();
        for id in ids {
            self.deliver(id, &line);
        }
    }
}
