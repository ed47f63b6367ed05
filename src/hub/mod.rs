//! The hub: the one owner of who is connected and which room they are in.
//!
//! Sessions never touch each other. They send [`Event`]s to the hub over one async-channel, and the
//! hub pushes formatted lines into the recipients' outboxes without ever waiting on a client. That
//! single owner is what keeps membership consistent (a name is taken by exactly one user, a join
//! notice comes before that user's messages) without locks.
//!
//! Public lines are relayed only once the history writer has committed them ([`durable`]), so
//! every line a client has received is stored, whatever the disk does and however the server
//! ends.

pub mod cluster;
mod durable;
mod guard;
mod laggards;
pub mod moderation;
mod notices;
pub mod outbox;
mod partition;
mod room;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Receiver, Sender};
use log::{debug, info, warn};
use smol::future;
use unicode_width::UnicodeWidthStr;

use crate::hub::notices::Change;
use crate::hub::outbox::{line, Budget, Line, Outbox, PushError};
use crate::hub::room::Room;
use crate::names::{Nick, RoomName};
use crate::protocol;
use crate::storage::{History, Kind};

/// Widest line of a `/who` or `/rooms` reply, in terminal columns (CJK and other wide
/// characters count two), before it continues on the next line: an 80-column terminal shows
/// each line on one row, with no name broken across rows. Not configurable.
const LIST_WIDTH: usize = 79;

/// Items in one page of a `/who` or `/rooms` reply; `/who 2` shows the next page. A page is at
/// most some 10 KB, so a reply never comes near an outbox's limit. Not configurable.
const LIST_PAGE: usize = 200;

/// How far a reply to a user's own command may overshoot that user's outbox limit: a page of
/// a list and then some. A user is never dropped for what they asked for; a reply that does not
/// fit even so is skipped (that client is far behind and the next relay drops it).
const REPLY_SLACK: usize = 32 * 1024;

/// Identifies a session for its whole life, whatever its name becomes.
pub type MemberId = u64;

/// What sessions (and the server) tell the hub.
pub enum Event {
    /// A newcomer chose a name. The reply says whether it was free.
    Register {
        id: MemberId,
        nick: Nick,
        outbox: Outbox,
        /// Where from (a name held for its owner's address is refused to others) and which
        /// account.
        identity: moderation::Identity,
        reply: Sender<Result<Joined, RegisterError>>,
    },
    /// A moderation command, an ignore, or an account change (see `moderation.rs`).
    Moderate {
        id: MemberId,
        action: moderation::Action,
    },
    /// A line for the sender's room.
    Say {
        id: MemberId,
        kind: Kind,
        text: String,
    },
    /// `/who`: one page (from 1) of the users in the sender's room.
    Who {
        id: MemberId,
        page: usize,
    },
    /// `/rooms`: one page (from 1) of the occupied rooms.
    Rooms {
        id: MemberId,
        page: usize,
    },
    Rename {
        id: MemberId,
        nick: Nick,
    },
    Private {
        id: MemberId,
        to: Nick,
        text: String,
    },
    /// Move to another room. On success the hub queues a confirmation and then a marker line in
    /// the mover's outbox, and replies where the room's history ends.
    Join {
        id: MemberId,
        room: RoomName,
        reply: Sender<Joined>,
    },
    Leave {
        id: MemberId,
        reason: Option<String>,
    },
}

/// Where a user landed.
#[derive(Debug, Clone)]
pub struct Joined {
    pub room: RoomName,
    /// The id of the newest message relayed before the user arrived: the replay shows messages up
    /// to it, and the outbox carries everything after it.
    pub last_id: i64,
    /// The room's topic line, shown after the history block.
    pub topic: Option<String>,
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    Taken,
    /// A different name that looks the same (same confusable skeleton) is in use.
    LooksLike,
    /// Held for a member dropped moments ago, for this many more seconds.
    Held(u64),
    ShuttingDown,
}

struct Member {
    nick: Nick,
    room: RoomName,
    /// Where this member sits in its room's member list (see [`Room::remove`]).
    slot: usize,
    /// When this member arrived in its room, as a count of arrivals: `/who` lists in this order.
    arrived: u64,
    outbox: Outbox,
    ip: IpAddr,
    /// The account logged in to (lower case), if any.
    account: Option<Arc<str>>,
    operator: bool,
}

/// The hub's state. Rooms exist while somebody is in them; their history outlives them.
struct Hub {
    members: HashMap<MemberId, Member>,
    /// Confusable skeleton of the name to member, for uniqueness (no two users look alike) and
    /// `/msg` (which then checks the exact name).
    by_nick: HashMap<Arc<str>, MemberId>,
    /// Held names and private-message allowances.
    guard: guard::Guard,
    /// Each occupied room's members with their outboxes, for a fast fan-out, and its held
    /// join/leave notices.
    rooms: HashMap<RoomName, Room>,
    /// Rooms with held notices and when their summaries are due, oldest first.
    summaries_due: VecDeque<(Instant, RoomName)>,
    /// The server-wide budget for queued output, enforced by dropping the largest laggards.
    budget: Arc<Budget>,
    /// Sessions that got output this turn and are still to be woken (see [`Hub::wake_sessions`]).
    wakes: Vec<Outbox>,
    /// Arrivals in any room so far, for [`Member::arrived`].
    arrivals: u64,
    /// Notices summed up since memory was last given back (see [`Hub::send_summaries`]).
    summed_untrimmed: usize,
    history: History,
    next_msg_id: i64,
    /// Public lines waiting for the writer's commit, and what has been relayed.
    relay: durable::Relay,
    closing: bool,
    /// Members already removed because their outbox failed, whose rooms are still to be told.
    /// Announcing is deferred to the main loop, which yields between batches and checks for
    /// shutdown, because a storm of thousands of leaves costs seconds of fan-out.
    departed: VecDeque<(MemberId, Member, Fault)>,
    moderation: moderation::State,
    /// In cluster mode, the link to the cluster log and what this node knows of the others.
    cluster: Option<cluster::State>,
}

/// Runs the hub until the event channel closes. `last_id` is the newest id already stored;
/// `budget` is the server-wide budget every session's outbox counts against.
/// When `stopping` closes, the hub tells everybody the server is stopping and closes every
/// outbox; it notices that before any queued event, so a backlog cannot delay the shutdown.
pub async fn run(
    events: Receiver<Event>,
    stopping: Receiver<()>,
    history: History,
    last_id: i64,
    setup: moderation::Setup,
    budget: Arc<Budget>,
) {
    run_with(events, stopping, history, last_id, setup, None, budget).await;
}

/// Like [`run`], in cluster mode when `cluster` is given: public lines and notices then go
/// through the cluster log, and the hub relays what it reads back from it.
pub async fn run_with(
    events: Receiver<Event>,
    stopping: Receiver<()>,
    history: History,
    last_id: i64,
    setup: moderation::Setup,
    cluster: Option<cluster::ClusterLink>,
    budget: Arc<Budget>,
) {
    let incoming = cluster.as_ref().map(|c| c.incoming.clone());
    let mut hub = Hub {
        members: HashMap::new(),
        by_nick: HashMap::new(),
        guard: guard::Guard::default(),
        rooms: HashMap::new(),
        summaries_due: VecDeque::new(),
        budget,
        wakes: Vec::new(),
        arrivals: 0,
        summed_untrimmed: 0,
        history: history.clone(),
        next_msg_id: last_id + 1,
        relay: durable::Relay::new(last_id),
        closing: false,
        departed: VecDeque::new(),
        moderation: moderation::State::new(setup),
        cluster: cluster.map(|c| cluster::State::new(c.link)),
    };
    // The cluster threads' channel; a closed one (they stopped) is never ready again.
    let from_cluster = || async {
        match incoming.as_ref().map(|rx| rx.recv()) {
            Some(recv) => match recv.await {
                Ok(incoming) => Step::Cluster(incoming),
                Err(_) => future::pending().await,
            },
            None => future::pending().await,
        }
    };
    loop {
        hub.announce_departures(&stopping).await;
        if !hub.closing {
            hub.relay_committed();
        }
        hub.wake_sessions();
        // Lines waiting for the writer: wake on its next commit, or when users must be told.
        let wake = hub.relay.wake_at().filter(|_| !hub.closing);
        let due = hub
            .summaries_due
            .front()
            .map(|(at, _)| *at)
            .filter(|_| !hub.closing);
        let waiting = async {
            match wake {
                None => future::pending::<()>().await,
                Some(None) => history.commit_happened().await,
                Some(Some(at)) => {
                    future::or(history.commit_happened(), async {
                        smol::Timer::at(at).await;
                    })
                    .await
                }
            }
            Step::Look
        };
        let next = async {
            match events.recv().await {
                Ok(event) => Step::Event(event),
                Err(_) => Step::Closed,
            }
        };
        let summaries = async {
            match due {
                Some(at) => {
                    smol::Timer::at(at).await;
                    Step::Summaries
                }
                None => future::pending().await,
            }
        };
        let step = if hub.closing {
            future::or(next, waiting).await
        } else {
            let stop = async {
                let _ = stopping.recv().await;
                Step::Stop
            };
            // Neither sessions typing nor the cluster log arriving may starve the other.
            let next = future::race(next, from_cluster());
            future::or(stop, future::or(next, future::or(waiting, summaries))).await
        };
        match step {
            Step::Event(event) => {
                hub.handle(event, &stopping).await;
                // Take what else is queued before waking anybody, so each woken session
                // writes the lines of several events at once.
                for _ in 1..TURN_EVENTS {
                    if stopping.is_closed() {
                        break;
                    }
                    match events.try_recv() {
                        Ok(event) => hub.handle(event, &stopping).await,
                        Err(_) => break,
                    }
                }
            }
            Step::Cluster(incoming) => hub.on_cluster(incoming),
            Step::Summaries => hub.send_due_summaries(),
            Step::Look => {}
            Step::Stop if !events.is_closed() => hub.shutdown(),
            Step::Stop | Step::Closed => break,
        }
    }
    hub.hand_over_unqueued();
    debug!("hub stopped");
}

/// What woke the hub's loop.
enum Step {
    Event(Event),
    /// In cluster mode: entries read from the log, or news about the link.
    Cluster(crate::cluster::Incoming),
    /// The server is stopping.
    Stop,
    /// Every sender is gone.
    Closed,
    /// A commit, or time to tell users that chat is paused.
    Look,
    /// Held join/leave notices are due.
    Summaries,
}

impl Hub {
    async fn handle(&mut self, event: Event, stopping: &Receiver<()>) {
        match event {
            Event::Register {
                id,
                nick,
                outbox,
                identity,
                reply,
            } => {
                let result = self.register(id, nick, outbox, identity);
                let registered = result.is_ok();
                // The session may have given up meanwhile (its name deadline passed): then undo
                // the registration, or the name would stay taken by nobody.
                if reply.try_send(result).is_err() && registered {
                    self.leave(id, None);
                }
            }
            Event::Say { id, kind, text } if self.cluster.is_some() => {
                self.say_to_log(id, kind, text)
            }
            Event::Say { id, kind, text } => self.say(id, kind, text, stopping).await,
            Event::Who { id, page } => self.who(id, page),
            Event::Rooms { id, page } => self.list_rooms(id, page),
            Event::Rename { id, nick } => self.rename(id, nick),
            Event::Private { id, to, text } => self.private(id, to, text),
            Event::Join { id, room, reply } => {
                if let Some(joined) = self.join(id, room) {
                    let _ = reply.try_send(joined);
                }
            }
            Event::Leave { id, reason } => self.leave(id, reason.as_deref()),
            Event::Moderate { id, action } => self.moderate(id, action),
        }
    }

    fn register(
        &mut self,
        id: MemberId,
        nick: Nick,
        outbox: Outbox,
        identity: moderation::Identity,
    ) -> Result<Joined, RegisterError> {
        let ip = identity.ip;
        if self.closing {
            return Err(RegisterError::ShuttingDown);
        }
        // A session that has ended but whose leave is not processed yet (its notice may be held
        // for a summary) does not keep its name.
        if let Some(&holder) = self.by_nick.get(nick.skeleton()) {
            if self
                .members
                .get(&holder)
                .is_some_and(|m| m.outbox.is_closed())
            {
                self.settle(vec![(holder, Fault::Gone)]);
            }
        }
        match self.name_clash(None, &nick, ip) {
            None => {}
            Some(guard::NameClash::Taken) => return Err(RegisterError::Taken),
            Some(guard::NameClash::LooksLike) => return Err(RegisterError::LooksLike),
            Some(guard::NameClash::Held(secs)) => return Err(RegisterError::Held(secs)),
        }
        // Relay what is committed, so the newcomer's replay reaches as far as it can.
        self.relay_committed();
        let room = RoomName::lobby();
        info!("{nick} joined {room}");
        if self.cluster.is_some() {
            self.announce(&room, Some(id), &protocol::joined(&nick), || {
                crate::cluster::Entry::Joined {
                    member: id,
                    nick: nick.clone(),
                    room: room.clone(),
                }
            });
        } else {
            self.notice(&room, Some(id), Change::Joined, &nick, || {
                protocol::joined(&nick)
            });
        }
        self.by_nick.insert(nick.skeleton().into(), id);
        let slot = self
            .rooms
            .entry(room.clone())
            .or_default()
            .add(id, outbox.clone());
        self.arrivals += 1;
        self.moderation.logged_in(&identity);
        self.members.insert(
            id,
            Member {
                nick,
                room: room.clone(),
                slot,
                arrived: self.arrivals,
                outbox,
                ip,
                account: identity.account,
                operator: identity.operator,
            },
        );
        Ok(Joined {
            topic: self.moderation.topic_line(&room),
            room,
            last_id: self.relay.relayed(),
        })
    }

    /// Answers `/who`: one page of the room's users, in the order they arrived. It borrows the
    /// members rather than copying names, so a huge room costs a sort of references plus the
    /// page's reply.
    fn who(&mut self, id: MemberId, page: usize) {
        let Some(member) = self.members.get(&id) else {
            return;
        };
        let mut here: Vec<(u64, &Nick)> = self
            .rooms
            .get(&member.room)
            .map(Room::members)
            .unwrap_or_default()
            .iter()
            .filter_map(|(m, _)| self.members.get(m).map(|m| (m.arrived, &m.nick)))
            .collect();
        // In cluster mode, other nodes' users follow this node's (empty on a single node).
        let remote = self.remote_names_in(&member.room);
        let local = here.len();
        let total = local + remote.len();
        let header = protocol::who_header(&member.room, total);
        let (from, to) = page_bounds(page, total);
        let local_to = to.min(local);
        if local_to < local {
            here.select_nth_unstable_by_key(local_to, |(arrived, _)| *arrived);
        }
        let shown = &mut here[..local_to];
        shown.sort_unstable_by_key(|(arrived, _)| *arrived);
        let items: Vec<String> = shown[from.min(local_to)..]
            .iter()
            .map(|(_, n)| n.to_string())
            .chain(
                remote[from.saturating_sub(local)..to.saturating_sub(local)]
                    .iter()
                    .cloned(),
            )
            .collect();
        self.tell_page(id, header, &items, page, total, "/who");
    }

    /// Answers `/rooms`: one page of the occupied rooms (other nodes' too in cluster mode), by
    /// name, with their sizes.
    fn list_rooms(&mut self, id: MemberId, page: usize) {
        let mut counts: HashMap<&RoomName, usize> =
            self.rooms.iter().map(|(r, m)| (r, m.len())).collect();
        self.count_remote(&mut counts);
        let mut rooms: Vec<(&RoomName, usize)> = counts.into_iter().collect();
        let total = rooms.len();
        let (from, to) = page_bounds(page, total);
        if to < total {
            rooms.select_nth_unstable_by(to, |a, b| a.0.as_str().cmp(b.0.as_str()));
        }
        let shown = &mut rooms[..to];
        shown.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        let items: Vec<String> = shown[from..]
            .iter()
            .map(|(r, n)| protocol::room_entry(r, *n))
            .collect();
        let header = protocol::rooms_header(total);
        self.tell_page(id, header, &items, page, total, "/rooms");
    }

    /// Sends one page of a list, with how to get the next if there is one.
    fn tell_page(
        &mut self,
        id: MemberId,
        mut header: String,
        items: &[String],
        page: usize,
        total: usize,
        command: &str,
    ) {
        let pages = total.div_ceil(LIST_PAGE).max(1);
        if page > 1 {
            header.push(' ');
            header.push_str(&protocol::page_of(page, pages));
        }
        self.tell_list(id, &header, items);
        let (_, to) = page_bounds(page, total);
        if to < total {
            self.tell(id, &protocol::more_pages(total - to, command, page + 1));
        }
    }

    /// Sends `header item, item, ...`, continued on further lines when long, so that no reply
    /// line outgrows an outbox however many users or rooms there are.
    fn tell_list(&mut self, id: MemberId, header: &str, items: &[String]) {
        let mut text = header.to_owned();
        let mut width = text.width();
        let mut first = true;
        for item in items {
            // The item and its separator, and the comma that would end this line.
            let item_width = item.width() + 2;
            if width + item_width + 1 > LIST_WIDTH && !first {
                text.push(',');
                self.tell(id, &text);
                text = "  ".to_owned();
                width = 2;
                first = true;
            }
            text.push_str(if first { " " } else { ", " });
            text.push_str(item);
            width += item_width;
            first = false;
        }
        self.tell(id, &text);
    }

    fn rename(&mut self, id: MemberId, nick: Nick) {
        let Some(member) = self.members.get(&id) else {
            return;
        };
        if member.nick == nick {
            self.tell(id, &protocol::already_known_as(&nick));
            return;
        }
        let refusal = match self.name_clash(Some(id), &nick, member.ip) {
            None => None,
            Some(guard::NameClash::Taken) => Some(protocol::name_taken_on_rename(&nick)),
            Some(guard::NameClash::LooksLike) => Some(protocol::name_confusable(&nick)),
            Some(guard::NameClash::Held(secs)) => Some(protocol::name_held(&nick, secs)),
        };
        if let Some(refusal) = refusal {
            if let Some(cluster) = &self.cluster {
                // The session claimed it cluster-wide first; the claim is not used.
                cluster.link.release(&nick, id);
            }
            self.tell(id, &refusal);
            return;
        }
        let old = member.nick.clone();
        let room = member.room.clone();
        if let Some(cluster) = &self.cluster {
            if old.skeleton() != nick.skeleton() {
                cluster.link.release(&old, id);
            }
        }
        self.by_nick.remove(old.skeleton());
        self.by_nick.insert(nick.skeleton().into(), id);
        if let Some(member) = self.members.get_mut(&id) {
            member.nick = nick.clone();
        }
        self.follow_rename(id, &old, &nick);
        info!("{old} is now known as {nick}");
        self.send_summaries(&room);
        let text = protocol::renamed(&old, &nick);
        self.announce(&room, None, &text, || crate::cluster::Entry::Renamed {
            member: id,
            old: old.clone(),
            new: nick.clone(),
            room: room.clone(),
        });
    }

    fn private(&mut self, id: MemberId, to: Nick, text: String) {
        let Some(from) = self.members.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        let target = self.member_by_name(&to);
        let Some((target, to_nick)) =
            target.and_then(|t| self.members.get(&t).map(|m| (t, m.nick.clone())))
        else {
            self.whisper(id, from, to, text);
            return;
        };
        let to_operator = self.members.get(&target).is_some_and(|m| m.operator);
        if !to_operator && self.is_muted(&from) {
            self.tell(id, protocol::YOU_ARE_MUTED);
            return;
        }
        if self.ignores(target, from.key()) {
            // Not delivered, and the sender is not told: ignoring must not provoke the harasser.
            self.tell(id, &protocol::private_to(&to_nick, &text));
            return;
        }
        if !self.allow_private(target) {
            debug!("private message from {from} to {to_nick} refused: recipient's allowance used");
            self.tell(id, &protocol::private_not_delivered(&to_nick));
            return;
        }
        debug!("private message from {from} to {to_nick}");
        self.deliver(target, &line(&protocol::private_from(&from, &text)));
        self.tell(id, &protocol::private_to(&to_nick, &text));
    }

    fn join(&mut self, id: MemberId, room: RoomName) -> Option<Joined> {
        // Relay what is committed first (which may drop a slow mover), so the replay of the new
        // room reaches as far as it can.
        self.relay_committed();
        let member = self.members.get(&id)?;
        if member.room == room {
            self.tell(id, &protocol::already_in(&room));
            return None;
        }
        // No two occupied rooms look alike, as no two users do: a whole-script look-alike
        // (`#рор` beside `#pop`) would pass for the other in `/rooms`. A scan of this node's
        // rooms, a few microseconds per thousand, on `/join` only.
        let look_alike = self
            .rooms
            .keys()
            .find(|r| r.skeleton() == room.skeleton() && **r != room);
        if let Some(other) = look_alike {
            let text = protocol::room_looks_like(&room, other);
            self.tell(id, &text);
            return None;
        }
        let nick = member.nick.clone();
        let old = member.room.clone();
        let slot = member.slot;
        let outbox = member.outbox.clone();
        self.remove_from_room(&old, slot);
        if let Some(cluster) = &self.cluster {
            cluster.link.append(crate::cluster::Entry::Moved {
                member: id,
                nick: nick.clone(),
                from: old.clone(),
                to: room.clone(),
            });
        } else {
            self.notice(&old, None, Change::Left, &nick, || {
                protocol::left_for(&nick, &room)
            });
            self.notice(&room, Some(id), Change::Joined, &nick, || {
                protocol::joined(&nick)
            });
        }
        let members = self.rooms.entry(room.clone()).or_default();
        let slot = members.add(id, outbox.clone());
        let count = members.len();
        self.arrivals += 1;
        if let Some(member) = self.members.get_mut(&id) {
            member.room = room.clone();
            member.slot = slot;
            member.arrived = self.arrivals;
        }
        info!("{nick} moved from {old} to {room}");
        let _ = outbox.push_reply(&line(&protocol::you_joined(&room, count)), REPLY_SLACK);
        let _ = outbox.push_marker();
        Some(Joined {
            topic: self.moderation.topic_line(&room),
            room,
            last_id: self.relay.relayed(),
        })
    }

    /// Takes a member out of every map: its name is free and no line reaches it any more.
    fn detach(&mut self, id: MemberId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        self.moderation.ignoring.remove(&id);
        self.by_nick.remove(member.nick.skeleton());
        if let Some(cluster) = &self.cluster {
            cluster.link.release(&member.nick, id);
        }
        self.guard.forget(id);
        self.remove_from_room(&member.room, member.slot);
        Some(member)
    }

    fn leave(&mut self, id: MemberId, reason: Option<&str>) {
        let Some(member) = self.detach(id) else {
            return;
        };
        if self.closing {
            // Every outbox is closed: nobody is left to tell.
            return;
        }
        info!("{} left {}", member.nick, member.room);
        if self.cluster.is_some() {
            let text = protocol::quit(&member.nick, reason);
            self.announce(&member.room, None, &text, || crate::cluster::Entry::Quit {
                member: id,
                nick: member.nick.clone(),
                room: member.room.clone(),
                reason: reason.map(str::to_owned),
            });
            return;
        }
        self.notice(&member.room, None, Change::Left, &member.nick, || {
            protocol::quit(&member.nick, reason)
        });
    }

    fn shutdown(&mut self) {
        // What is committed still reaches its readers, ahead of the goodbye.
        self.relay_committed();
        self.closing = true;
        let bye = line(protocol::SHUTTING_DOWN);
        for member in self.members.values() {
            let _ = member.outbox.push_reply(&bye, REPLY_SLACK);
            member.outbox.close();
        }
        info!(
            "told {} users the server is shutting down",
            self.members.len()
        );
    }

    /// Takes the member in `slot` out of `room`, in O(1): the room's last member moves into
    /// the slot. An emptied room is forgotten, with any notices it held.
    fn remove_from_room(&mut self, room: &RoomName, slot: usize) {
        let Some(members) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(moved) = members.remove(slot) {
            if let Some(member) = self.members.get_mut(&moved) {
                member.slot = slot;
            }
        }
        if members.is_empty() {
            self.rooms.remove(room);
        }
    }

    /// Sends a line to one member, dropping the member if its outbox is full.
    fn deliver(&mut self, id: MemberId, line: &[u8]) {
        let fault = match self.members.get(&id).map(|m| m.outbox.push(line)) {
            Some(Err(PushError::Full)) => Fault::Slow,
            Some(Err(PushError::Closed)) => Fault::Gone,
            _ => return,
        };
        self.settle(vec![(id, fault)]);
        self.enforce_budget();
    }

    /// Sends a reply to the member's own command. It may overshoot the outbox limit by
    /// [`REPLY_SLACK`]; a reply never gets its own user dropped.
    fn tell(&mut self, id: MemberId, text: &str) {
        let pushed = self
            .members
            .get(&id)
            .map(|m| m.outbox.push_reply(&line(text), REPLY_SLACK));
        match pushed {
            Some(Err(PushError::Full)) => debug!("reply to member {id} skipped: outbox full"),
            Some(Err(PushError::Closed)) => self.settle(vec![(id, Fault::Gone)]),
            _ => {}
        }
    }

    /// Sends a line to everybody in `room` except `except` now (see [`Hub::broadcast`] for the
    /// ordered way). Members whose outbox is full are disconnected: the client stopped reading,
    /// and we drop it, not the room.
    fn broadcast_now(&mut self, room: &RoomName, except: Option<MemberId>, line: Line) {
        let faults = self.fan_out(room, except, &line);
        if !faults.is_empty() {
            self.settle(faults);
        }
        self.enforce_budget();
    }

    /// Pushes a line into the outboxes of a room and returns the members it could not reach.
    /// The sessions are woken at the end of the hub's turn ([`Hub::wake_sessions`]).
    fn fan_out(
        &mut self,
        room: &RoomName,
        except: Option<MemberId>,
        line: &[u8],
    ) -> Vec<(MemberId, Fault)> {
        let mut faults = Vec::new();
        let Some(members) = self.rooms.get(room) else {
            return faults;
        };
        for (id, outbox) in members.members() {
            if Some(*id) == except {
                continue;
            }
            match outbox.push_deferred(line) {
                Ok(false) => {}
                Ok(true) => self.wakes.push(outbox.clone()),
                Err(PushError::Full) => faults.push((*id, Fault::Slow)),
                Err(PushError::Closed) => faults.push((*id, Fault::Gone)),
            }
        }
        faults
    }

    /// Wakes every session that got output since the last call, once each.
    fn wake_sessions(&mut self) {
        for outbox in self.wakes.drain(..) {
            outbox.wake();
        }
    }

    /// Announces a join or a leave in `room` on a single node: at once, or held for a summary
    /// when a big room is in a storm of them (see [`notices`]). `text` builds the single notice.
    /// (In cluster mode notices travel through the log instead, see `cluster.rs`.)
    fn notice(
        &mut self,
        room: &RoomName,
        except: Option<MemberId>,
        change: Change,
        nick: &Nick,
        text: impl FnOnce() -> String,
    ) {
        let now = Instant::now();
        let Some(members) = self.rooms.get_mut(room) else {
            return;
        };
        let recipients = members.len();
        if members.notices.admit(now, recipients) {
            self.broadcast(room, except, line(&text()));
        } else if members.notices.hold(change, nick) {
            self.summaries_due
                .push_back((now + notices::WINDOW, room.clone()));
        }
    }

    /// Sends a room's held notices now, as summaries: before any other line to that room, so
    /// that nobody's message arrives before the notice that they joined. A window after a
    /// summary the room is looked at again: if it has calmed down and a storm was summed up,
    /// the memory the storm used is given back.
    fn send_summaries(&mut self, room: &RoomName) {
        let Some(members) = self.rooms.get_mut(room) else {
            return;
        };
        if !members.notices.is_holding() {
            if self.summed_untrimmed >= laggards::STORM {
                self.summed_untrimmed = 0;
                laggards::give_back_memory();
            }
            return;
        }
        let now = Instant::now();
        let (lines, summed) = members.notices.summaries(now);
        for text in lines {
            self.broadcast(room, None, line(&text));
        }
        self.summed_untrimmed += summed;
        self.summaries_due
            .push_back((now + notices::WINDOW, room.clone()));
    }

    /// Sends the summaries whose window has ended.
    fn send_due_summaries(&mut self) {
        let now = Instant::now();
        while let Some((at, _)) = self.summaries_due.front() {
            if *at > now {
                break;
            }
            if let Some((_, room)) = self.summaries_due.pop_front() {
                self.send_summaries(&room);
            }
        }
    }

    /// Removes members whose outbox failed, at once (so no later line is pushed to them and a
    /// storm cannot list anyone twice), and queues the notices to their rooms.
    fn settle(&mut self, faults: Vec<(MemberId, Fault)>) {
        for (id, fault) in faults {
            let Some(member) = self.detach(id) else {
                continue;
            };
            if fault == Fault::Slow {
                warn!(
                    "{} dropped: outbox full (not reading fast enough)",
                    member.nick
                );
                member.outbox.kick();
                // Nobody else may take the name while its owner reconnects.
                self.guard.hold(&member.nick, member.ip);
            } else {
                info!("{} left {}", member.nick, member.room);
            }
            self.departed.push_back((id, member, fault));
        }
    }

    /// Tells rooms about members removed by [`Hub::settle`]. Those notices can fail more outboxes
    /// (a leave storm, a room of stalled readers), which queues more departures, so this works
    /// through a queue and never recurses. It yields every few notices, and notices a shutdown
    /// that arrives meanwhile, so a storm delays neither other tasks nor the server's stop.
    async fn announce_departures(&mut self, stopping: &Receiver<()>) {
        let mut announced: usize = 0;
        while let Some((id, member, fault)) = self.departed.pop_front() {
            if self.closing {
                continue;
            }
            let reason = (fault == Fault::Slow).then_some(protocol::REASON_TOO_SLOW);
            if let Some(cluster) = &self.cluster {
                cluster.link.append(crate::cluster::Entry::Left {
                    member: id,
                    nick: member.nick.clone(),
                    room: member.room.clone(),
                    reason: reason.map(str::to_owned),
                });
                continue;
            }
            self.notice(&member.room, None, Change::Left, &member.nick, || {
                protocol::left(&member.nick, reason)
            });
            announced += 1;
            if announced.is_multiple_of(ANNOUNCE_BATCH) {
                self.wake_sessions();
                future::yield_now().await;
                if stopping.is_closed() && !self.closing {
                    self.shutdown();
                }
            }
        }
        if announced >= laggards::STORM {
            laggards::give_back_memory();
        }
    }
}

/// The range of items on `page` (from 1) of a list of `total`.
fn page_bounds(page: usize, total: usize) -> (usize, usize) {
    let from = page.saturating_sub(1).saturating_mul(LIST_PAGE).min(total);
    (from, from.saturating_add(LIST_PAGE).min(total))
}

/// Events the hub handles in one turn before it wakes the sessions that got output: enough to
/// batch a busy room's lines into one write per session, few enough that the stop signal and the
/// first line's latency are not held up.
const TURN_EVENTS: usize = 64;

/// Departure notices sent between yields: each goes to a whole room, so this bounds how long
/// the hub runs without letting other tasks (and the shutdown signal) in.
const ANNOUNCE_BATCH: usize = 16;

/// Why an outbox could not take a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Full: the client is not reading.
    Slow,
    /// Closed: the session is gone.
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbox::{outbox, Budget};
    use std::time::Duration;

    fn register(
        events: &Sender<Event>,
        id: MemberId,
        name: &str,
    ) -> Receiver<Result<Joined, RegisterError>> {
        let (answer, inbox) = register_keeping_inbox(events, id, name);
        std::mem::forget(inbox);
        answer
    }

    fn register_keeping_inbox(
        events: &Sender<Event>,
        id: MemberId,
        name: &str,
    ) -> (
        Receiver<Result<Joined, RegisterError>>,
        crate::hub::outbox::Inbox,
    ) {
        register_within(events, id, name, Budget::new(usize::MAX))
    }

    /// Registers `name` as a plain user from loopback, its outbox counted against `budget`;
    /// returns where the hub answers and the session's inbox.
    pub(super) fn register_within(
        events: &Sender<Event>,
        id: MemberId,
        name: &str,
        budget: Arc<Budget>,
    ) -> (
        Receiver<Result<Joined, RegisterError>>,
        crate::hub::outbox::Inbox,
    ) {
        let (reply, answer) = async_channel::bounded(1);
        let inbox = send_register(events, id, name, budget, reply);
        (answer, inbox)
    }

    /// Sends a registration whose answer goes to `reply`; returns the session's inbox.
    fn send_register(
        events: &Sender<Event>,
        id: MemberId,
        name: &str,
        budget: Arc<Budget>,
        reply: Sender<Result<Joined, RegisterError>>,
    ) -> crate::hub::outbox::Inbox {
        let (outbox, inbox) = outbox(64 * 1024, budget);
        let nick = Nick::parse(name).unwrap();
        let identity = moderation::Identity {
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            account: None,
            operator: false,
            cli_operator: false,
        };
        smol::block_on(events.send(Event::Register {
            id,
            nick,
            outbox,
            identity,
            reply,
        }))
        .unwrap();
        inbox
    }

    /// Thousands of sessions gone at once (their outboxes closed before their Leave arrived) are
    /// cleaned up without recursion: on a small stack, a recursive cleanup would overflow.
    fn setup(path: &std::path::Path) -> moderation::Setup {
        let loaded = crate::accounts::Accounts::load(path).unwrap();
        std::mem::forget(loaded.thread);
        moderation::Setup {
            accounts: loaded.accounts,
            topics: loaded.topics,
            mutes: loaded.mutes,
            operators: loaded.operators,
        }
    }

    #[test]
    fn a_leave_storm_does_not_recurse() {
        let dir = tempfile::tempdir().unwrap();
        let (history, writer, last_id) =
            History::open(&dir.path().join("chat.db"), Duration::from_millis(5)).unwrap();
        let setup = setup(&dir.path().join("chat.db"));
        let (events, events_rx) = async_channel::unbounded();
        let (_stop, stopping) = async_channel::bounded::<()>(1);
        let hub = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || {
                smol::block_on(run(
                    events_rx,
                    stopping,
                    history,
                    last_id,
                    setup,
                    Budget::new(usize::MAX),
                ))
            })
            .unwrap();
        let mut inboxes: Vec<crate::hub::outbox::Inbox> = Vec::new();
        for id in 0..1500 {
            let (answer, inbox) = register_keeping_inbox(&events, id, &format!("u{id}"));
            assert!(smol::block_on(answer.recv()).unwrap().is_ok());
            inboxes.push(inbox);
            // Read the join notices, as live clients would, so nobody is dropped as slow.
            for inbox in &inboxes {
                while inbox.try_recv().is_some() {
                    inbox.sent();
                }
            }
        }
        drop(inboxes);
        let leave = Event::Leave {
            id: 0,
            reason: None,
        };
        smol::block_on(events.send(leave)).unwrap();
        // The hub is still alive and consistent: the names are free again.
        let again = register(&events, 9999, "u1499");
        let result = smol::block_on(again.recv()).unwrap();
        assert!(result.is_ok(), "{result:?}");
        events.close();
        hub.join().unwrap();
        writer.close();
    }

    /// A registration whose session gave up before the reply (its name deadline passed) is
    /// undone, so the name does not stay taken by nobody.
    #[test]
    fn abandoned_registration_frees_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let (history, writer, last_id) =
            History::open(&dir.path().join("chat.db"), Duration::from_millis(5)).unwrap();
        let setup = setup(&dir.path().join("chat.db"));
        let (events, events_rx) = async_channel::unbounded();
        let (_stop, stopping) = async_channel::bounded::<()>(1);
        let hub = std::thread::spawn(move || {
            smol::block_on(run(
                events_rx,
                stopping,
                history,
                last_id,
                setup,
                Budget::new(usize::MAX),
            ))
        });

        // The session gave up before the hub handled its registration: its answer is closed.
        let (reply, answer) = async_channel::bounded(1);
        drop(answer);
        std::mem::forget(send_register(
            &events,
            1,
            "ghost",
            Budget::new(usize::MAX),
            reply,
        ));
        let again = register(&events, 2, "ghost");
        let joined = smol::block_on(again.recv()).unwrap();
        assert!(joined.is_ok(), "the abandoned name was still taken");
        let taken = register(&events, 3, "GHOST");
        assert_eq!(
            smol::block_on(taken.recv()).unwrap().err(),
            Some(RegisterError::Taken)
        );

        events.close();
        hub.join().unwrap();
        writer.close();
    }
}
