//! The hub's core: the only code that touches members, rooms and outboxes.
//!
//! It keeps membership ([`Members`]) and the per-member parts that must forget a member with it
//! (its name in [`Names`], its ignore list, its private allowance); it publishes what members
//! do through the [`Link`], the one seam to cluster mode, and shows what is published (or read
//! back from the cluster log) to this node's members through the [`Pipeline`]; and it removes
//! members whose outbox failed, telling their rooms a few at a time. What members' requests
//! mean is the hub's business (`hub/state.rs`); the core keeps the books and delivers.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use log::{info, warn};

use crate::cluster::{Entry, LogRecord, Whisper};
use crate::hub::delivery::Fault;
use crate::hub::event::{Arrival, Event, Notice, Private, Refusal, Reply, Said, ServerNotice};
use crate::hub::fanout::ToRoom;
use crate::hub::ignores::Ignores;
use crate::hub::link::{Link, Seen};
use crate::hub::members::{Member, Members, Who};
use crate::hub::moderation::Decision;
use crate::hub::names::{Clash, Names};
use crate::hub::pipeline::Pipeline;
use crate::hub::privates::Privates;
use crate::hub::render::Personal;
use crate::names::{Nick, RoomName};
use crate::storage::{LogPos, Record};
use crate::vocab::{Change, Departure, Dropped, MemberId, Removal};

/// When an entry was made (milliseconds since the epoch) and, in cluster mode, where it sits in
/// the log.
pub type Posted = (i64, Option<LogPos>);

/// Membership, publishing and delivery.
pub struct Core {
    pub members: Members,
    names: Names,
    privates: Privates,
    pub ignores: Ignores,
    pub pipeline: Pipeline,
    pub link: Link,
    /// Members already removed because their outbox failed, whose rooms are still to be told.
    /// Announcing is deferred to the main loop, which yields between batches and checks for
    /// shutdown, because a storm of thousands of leaves costs seconds of fan-out.
    departed: VecDeque<(MemberId, Member, Fault)>,
}

/// A member left `rooms`, and why: the entry that tells them.
fn left(id: MemberId, member: Member, why: Departure) -> Entry {
    let rooms = member.seats.rooms().cloned().collect();
    Entry::Left {
        member: id,
        nick: member.nick,
        rooms,
        why,
    }
}

impl Core {
    pub fn new(pipeline: Pipeline, link: Link) -> Core {
        Core {
            members: Members::default(),
            names: Names::default(),
            privates: Privates::default(),
            ignores: Ignores::default(),
            pipeline,
            link,
            departed: VecDeque::new(),
        }
    }

    /// The member holding a name like `nick` whose session has ended, though its leave is not
    /// processed yet (its notice may be held for a summary): it does not keep the name.
    pub fn stale_holder(&self, nick: &Nick) -> Option<MemberId> {
        let holder = self.names.look_alike(nick)?;
        let member = self.members.get(holder)?;
        member.outbox.is_closed().then_some(holder)
    }

    /// A newcomer, if its name is free: the name is taken, and it is in no room yet.
    pub fn admit(&mut self, id: MemberId, member: Member, now: Instant) -> Result<(), Clash> {
        if let Some(clash) = self.clash(None, &member.nick, member.ip, now) {
            return Err(clash);
        }
        self.names.take(&member.nick, id);
        self.members.insert(id, member);
        Ok(())
    }

    /// Whether member `me` (or a newcomer) coming from `ip` may take `nick` now.
    pub fn clash(
        &self,
        me: Option<MemberId>,
        nick: &Nick,
        ip: IpAddr,
        now: Instant,
    ) -> Option<Clash> {
        let members = &self.members;
        self.names
            .clash(me, nick, ip, now, |h| members.get(h).map(|m| &m.nick))
    }

    /// Member `id` is now called `nick` (checked with [`Core::clash`]): its name and the ignore
    /// lists follow, and notices held in its rooms go first. Returns its old name.
    pub fn rename(&mut self, id: MemberId, nick: &Nick, now: Instant) -> Option<Nick> {
        let member = self.members.get_mut(id)?;
        let old = std::mem::replace(&mut member.nick, nick.clone());
        let rooms: Vec<RoomName> = member.seats.rooms().cloned().collect();
        self.names.free(&old, id);
        self.names.take(nick, id);
        if old.skeleton() != nick.skeleton() {
            self.link.release(&old, id);
        }
        self.ignores.renamed(&old, nick);
        for room in &rooms {
            self.pipeline
                .summarise(&mut self.members, room, now, &self.ignores);
        }
        Some(old)
    }

    /// The connected member called `nick`: looked up by skeleton, then checked for the very
    /// name, so a look-alike never finds somebody else.
    pub fn member_by_name(&self, nick: &Nick) -> Option<MemberId> {
        let id = self.names.look_alike(nick)?;
        let member = self.members.get(id)?;
        (member.nick.key() == nick.key()).then_some(id)
    }

    /// The connected member called `nick`, as the parts see it.
    pub fn who_is(&self, nick: &Nick) -> Option<Who<'_>> {
        self.member_by_name(nick)
            .and_then(|id| self.members.who(id))
    }

    /// Delivers a private line to member `to`, unless it ignores the sender (then nothing is
    /// delivered and the sender is not told: ignoring must not provoke the harasser) or its
    /// allowance is used up (then the sender is told).
    pub fn private_line(
        &mut self,
        to: MemberId,
        private: &Private,
        now: Instant,
    ) -> Result<(), Refusal> {
        if self.ignores.ignores(to, private.from.key()) {
            return Ok(());
        }
        if !self.privates.allow(to, now) {
            log::debug!("private line to {} refused: allowance used", private.to);
            return Err(Refusal::PrivateFlood(private.to.clone()));
        }
        self.pipeline.private(&self.members, to, private);
        Ok(())
    }

    pub fn tell(&mut self, id: MemberId, reply: &Reply) {
        self.pipeline
            .tell(&self.members, id, Personal::Reply(reply));
    }

    pub fn tell_everybody(&mut self, notice: ServerNotice) {
        self.pipeline.tell_everybody(&self.members, notice);
    }

    pub fn send(&mut self, to: ToRoom, now: Instant) {
        self.pipeline.send(&self.members, to, now, &self.ignores);
    }

    /// Sends a live-only line from a member (a signal): join and leave notices held for the
    /// room's summary go first, as before a message, so nothing from a newcomer arrives before
    /// the notice that they joined.
    pub fn send_from_member(&mut self, to: ToRoom, now: Instant) {
        self.pipeline
            .summarise(&mut self.members, &to.room, now, &self.ignores);
        self.send(to, now);
    }

    pub fn relay_committed(&mut self, now: Instant) {
        self.pipeline
            .relay_committed(&self.members, now, &self.ignores);
    }

    pub fn due_summaries(&mut self, now: Instant) {
        self.pipeline
            .due_summaries(&mut self.members, now, &self.ignores);
    }

    /// Marks member `id` away with `message`, or back (`None`). The members of its rooms are
    /// told once each, whatever the rooms they share with it; a door that does not show it
    /// renders nothing.
    pub fn away(&mut self, id: MemberId, message: Option<String>, now: Instant) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        let message: Option<Arc<str>> = message.map(Into::into);
        if member.away == message {
            return;
        }
        member.away = message.clone();
        let (nick, account) = (member.nick.clone(), member.account.clone());
        let rooms: Vec<RoomName> = member.seats.rooms().cloned().collect();
        for (k, room) in rooms.iter().enumerate() {
            let notice = Notice::Away {
                room: room.clone(),
                nick: nick.clone(),
                account: account.clone(),
                message: message.clone(),
            };
            let to = ToRoom::new(room.clone(), Event::Notice(notice));
            self.send(to.told_in(&rooms[..k]).except(Some(id)), now);
        }
    }

    /// Publishes an entry: shown now on a single node, when read back in cluster mode.
    pub fn publish(&mut self, entry: Entry, now: Instant, at_ms: i64) {
        if let Some(entry) = self.link.publish(entry) {
            let leftover = self.apply(entry, None, (at_ms, None), now);
            debug_assert!(leftover.is_none(), "only the cluster log carries these");
        }
    }

    /// One entry read back from the cluster log. An account or moderation change is handed
    /// back for the hub, with whether this node made it.
    pub fn read_back(
        &mut self,
        record: LogRecord,
        (now, at_ms): (Instant, i64),
    ) -> Option<(Change, bool)> {
        let log = LogPos {
            stream_id: record.id.clone(),
            seq: record.seq,
        };
        let posted = (record.at_ms(), Some(log));
        let author = Some(&record.node).filter(|node| self.link.node() != Some(*node));
        let here = author.is_none();
        match self.apply(record.entry.clone(), author, posted, now)? {
            Entry::Change(change) => return Some((change, here)),
            Entry::Kick { nick, by, reason } => {
                if let Some(target) = self.member_by_name(&nick) {
                    info!("{nick} kicked by {by} from another node");
                    let reason = reason.map(Into::into);
                    let removal = Removal::Kicked {
                        by: by.shared(),
                        reason,
                    };
                    self.eject(target, Departure::Removed(removal), now, at_ms);
                }
            }
            _ => {}
        }
        None
    }

    /// A private line from another node's member, for one of this node's.
    pub fn whisper(&mut self, whisper: Whisper, now: Instant) {
        let Some(target) = self.member_by_name(&whisper.to) else {
            log::debug!("private line for {}, who is not here any more", whisper.to);
            return;
        };
        let private = Private {
            from: whisper.from,
            account: None,
            to: whisper.to,
            text: whisper.text.into(),
            kind: whisper.kind,
            attached: None,
        };
        // The sender's node cannot be told if the recipient's allowance is used up.
        let _ = self.private_line(target, &private, now);
    }

    /// The link to the cluster was lost (`true`) or is back: everybody is told, once.
    pub fn cluster_paused(&mut self, paused: bool) {
        if self.link.set_paused(paused) {
            let (notice, state) = match paused {
                true => (ServerNotice::ClusterPaused, "paused"),
                false => (ServerNotice::ClusterResumed, "back"),
            };
            self.tell_everybody(notice);
            info!("told {} users the chat is {state}", self.members.len());
        }
    }

    /// Carries out what moderation decided.
    pub fn carry_out(&mut self, decisions: Vec<Decision>, (now, at_ms): (Instant, i64)) {
        for decision in decisions {
            match decision {
                Decision::Tell(id, reply) => self.tell(id, &reply),
                Decision::Notice(room, notice) => {
                    self.send(ToRoom::new(room, Event::Notice(notice)), now);
                }
                Decision::Remove(id, removal) => {
                    self.eject(id, Departure::Removed(removal), now, at_ms);
                }
                Decision::Operator {
                    member,
                    operator,
                    tell,
                } => {
                    let Some(m) = self.members.get_mut(member) else {
                        continue;
                    };
                    m.operator = operator;
                    let name = m.account.clone().unwrap_or_else(|| m.nick.shared());
                    if tell {
                        self.tell(member, &Reply::Role { name, operator });
                    }
                }
                Decision::LoggedOut(id) => {
                    if let Some(m) = self.members.get_mut(id) {
                        (m.account, m.operator) = (None, false);
                    }
                }
                Decision::Publish(entry) => self.publish(entry, now, at_ms),
                Decision::Replicate(change) => self.link.replicate(change),
            }
        }
    }

    /// What an entry means for this node's members: the one path for both modes. `author` is
    /// the node that wrote it (`None`: this one).
    fn apply(
        &mut self,
        entry: Entry,
        author: Option<&Arc<str>>,
        posted: Posted,
        now: Instant,
    ) -> Option<Entry> {
        for seen in self.link.observe(author, &entry) {
            match seen {
                Seen::Left(nick, rooms, why) => self.left(&nick, &rooms, &why, now),
                Seen::Joined(nick, room) => {
                    let notice = Notice::Joined {
                        room: room.clone(),
                        nick,
                        listed: None,
                    };
                    self.send(ToRoom::new(room, Event::Notice(notice)), now);
                }
                Seen::AnnounceMembers => self.announce_members(now, posted.0),
                // Another node's member this node no longer lists (it took the member's node
                // for dead, and said so): it does not leave twice.
                Seen::Unlisted => return None,
            }
        }
        self.show(entry, author.is_none(), posted, now)
    }

    /// Says who is here, to every node (for a node that started, or after this one was taken
    /// for dead).
    pub fn announce_members(&mut self, now: Instant, at_ms: i64) {
        let seats =
            (self.members.iter()).flat_map(|(id, m)| m.seats.rooms().map(move |r| (id, m, r)));
        let members = seats
            .map(|(id, m, r)| (id, m.nick.clone(), r.clone()))
            .collect();
        self.publish(Entry::Presence { members }, now, at_ms);
        // Members in no room (IRC users before their first `JOIN`) are known by name all the same.
        let roomless: Vec<(MemberId, Nick)> = (self.members.iter())
            .filter(|(_, m)| m.seats.rooms().next().is_none())
            .map(|(id, m)| (id, m.nick.clone()))
            .collect();
        if !roomless.is_empty() {
            self.publish(Entry::Arrived { members: roomless }, now, at_ms);
        }
    }

    /// Shows a published entry: a public line (held until committed), a join, a leave, a
    /// rename. `here`: a member of this node wrote it, who does not see its own notices, nor its
    /// own lines unless it asked for them. Other entries are handed back.
    fn show(
        &mut self,
        entry: Entry,
        here: bool,
        (at_ms, log): Posted,
        now: Instant,
    ) -> Option<Entry> {
        let author = |m: MemberId| here.then_some(m);
        match entry {
            Entry::Say {
                member,
                nick,
                account,
                room,
                kind,
                body,
                attached,
            } => {
                let id = self.pipeline.relay_mut().stamp();
                let (stored_room, sender) = (room.shared(), nick.shared());
                let record = Record {
                    id,
                    at_ms,
                    room: stored_room,
                    sender,
                    kind,
                    body: body.clone(),
                    log,
                };
                let echo = here && self.members.get(member).is_some_and(|m| m.echo);
                let key = Some(Arc::from(nick.key()));
                let said = Said {
                    id,
                    at_ms,
                    room: room.clone(),
                    from: nick,
                    account,
                    kind,
                    text: body,
                    attached,
                };
                let to = ToRoom {
                    sender: key,
                    ..ToRoom::new(room.clone(), Event::Said(said))
                };
                // Join and leave notices held for a summary go first: nobody's message may
                // arrive before the notice that they joined.
                self.pipeline
                    .summarise(&mut self.members, &room, now, &self.ignores);
                let except = author(member).filter(|_| !echo);
                self.pipeline.hold(record, to.except(except), now);
            }
            Entry::Joined { member, nick, room } => {
                let listed = here
                    .then(|| self.members.get(member))
                    .flatten()
                    .map(|m| Arc::new(m.listed()));
                let notice = Notice::Joined {
                    room: room.clone(),
                    nick: nick.clone(),
                    listed,
                };
                let to = ToRoom::new(room, Event::Notice(notice)).except(author(member));
                let joined = (Arrival::Joined, &nick);
                self.pipeline
                    .arrival(&mut self.members, to, joined, now, &self.ignores);
            }
            Entry::Left {
                nick, rooms, why, ..
            } => self.left(&nick, &rooms, &why, now),
            Entry::Renamed {
                old, new, rooms, ..
            } => {
                for (k, room) in rooms.iter().enumerate() {
                    let (old, new) = (old.clone(), new.clone());
                    let notice = Notice::Renamed {
                        room: room.clone(),
                        old,
                        new,
                    };
                    self.send(
                        ToRoom::new(room.clone(), Event::Notice(notice)).told_in(&rooms[..k]),
                        now,
                    );
                }
            }
            // Nothing to show: no room lists the member (the view of other nodes keeps it).
            Entry::Arrived { .. } => {}
            other => return Some(other),
        }
        None
    }

    /// Tells each of `rooms` that `nick` left; a member in several of them is told once.
    fn left(&mut self, nick: &Nick, rooms: &[RoomName], why: &Departure, now: Instant) {
        for (k, room) in rooms.iter().enumerate() {
            let notice = Notice::Left {
                room: room.clone(),
                nick: nick.clone(),
                why: why.clone(),
            };
            let to = ToRoom::new(room.clone(), Event::Notice(notice)).told_in(&rooms[..k]);
            if matches!(why, Departure::Removed(_)) {
                // A kick or a ban is told as it is, never summed up.
                self.send(to, now);
            } else {
                let gone = (Arrival::Left, nick);
                self.pipeline
                    .arrival(&mut self.members, to, gone, now, &self.ignores);
            }
        }
    }

    /// Takes a member out of membership, every per-member part and the cluster's names: its
    /// name is free and no line reaches it. A member dropped as a slow reader has its name held
    /// for its address.
    pub fn detach(&mut self, id: MemberId, fault: Option<Fault>, now: Instant) -> Option<Member> {
        let member = self.members.remove(id)?;
        self.ignores.forget(id);
        self.privates.forget(id);
        self.names.free(&member.nick, id);
        self.link.release(&member.nick, id);
        if fault == Some(Fault::Slow) {
            member.outbox.kick();
            // Nobody else may take the name while its owner reconnects.
            self.names.hold(&member.nick, member.ip, now);
        }
        Some(member)
    }

    /// A member left the chat, with its own words.
    pub fn quit(&mut self, id: MemberId, reason: Option<String>, now: Instant, at_ms: i64) {
        if let Some(member) = self.detach(id, None, now) {
            info!("{} left", member.nick);
            let why = Departure::Quit(reason.map(Into::into));
            self.publish(left(id, member, why), now, at_ms);
        }
    }

    /// Removes a member at once (by an operator, or dropped by the server), with last words for
    /// it and a notice for its rooms. Its session sees its outbox close and ends; its quit is
    /// then a no-op.
    pub fn eject(&mut self, id: MemberId, why: Departure, now: Instant, at_ms: i64) {
        let Some(member) = self.detach(id, None, now) else {
            return;
        };
        let last = match &why {
            Departure::Removed(removal) => Some(Reply::Removed(removal.clone())),
            Departure::Dropped(Dropped::NameTaken(holder)) => Some(Reply::NameTaken {
                nick: member.nick.clone(),
                holder: holder.clone(),
            }),
            _ => None,
        };
        if let Some(last) = last {
            self.pipeline.last_words(&member, &last);
        }
        member.outbox.close();
        self.publish(left(id, member, why), now, at_ms);
    }

    /// Removes the members whose outbox failed, at once (so no later line is pushed to them and
    /// a storm cannot list anyone twice), and queues the notices to their rooms.
    pub fn settle(&mut self, now: Instant) {
        for (id, fault) in self.pipeline.take_faults(&self.members) {
            self.remove(id, fault, now);
        }
    }

    /// Removes one member whose outbox failed.
    pub fn remove(&mut self, id: MemberId, fault: Fault, now: Instant) {
        let Some(member) = self.detach(id, Some(fault), now) else {
            return;
        };
        match fault {
            Fault::Slow => warn!(
                "{} dropped: outbox full (not reading fast enough)",
                member.nick
            ),
            Fault::Gone => info!("{} left", member.nick),
        }
        self.departed.push_back((id, member, fault));
    }

    /// Tells the rooms of up to `max` members removed by [`Core::settle`] (unless `quiet`: the
    /// server is stopping); true if more wait. Those notices can fail more outboxes (a leave
    /// storm, a room of stalled readers), which queues more departures, so this works through a
    /// queue and never recurses.
    pub fn announce_departures(
        &mut self,
        max: usize,
        quiet: bool,
        (now, at_ms): (Instant, i64),
    ) -> bool {
        for _ in 0..max {
            let Some((id, member, fault)) = self.departed.pop_front() else {
                return false;
            };
            if quiet {
                continue;
            }
            let why = match fault {
                Fault::Slow => Departure::Dropped(Dropped::TooSlow),
                Fault::Gone => Departure::Quit(None),
            };
            self.publish(left(id, member, why), now, at_ms);
            self.settle(now);
        }
        !self.departed.is_empty()
    }

    /// Tells everybody the server is stopping, and closes every outbox.
    pub fn shutdown(&mut self) {
        self.pipeline.shutdown(&self.members);
    }
}
