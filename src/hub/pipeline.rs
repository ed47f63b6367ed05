//! The pipeline: gets events to rooms and members, in order, without ever waiting.
//!
//! Public lines wait for their commit in the [`Relay`], and notices queue behind them; joins and
//! leaves in big rooms are held and summed up (`hub/notices.rs`); what goes out is rendered and
//! copied into outboxes by [`Delivery`], and each session is woken once per turn. A member whose
//! outbox fails is noted ([`Pipeline::take_faults`]) for the hub to remove: the pipeline reads
//! membership, it never changes it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::hub::delivery::{Delivery, Fault, REPLY_SLACK};
use crate::hub::durable::{Relay, Sink};
use crate::hub::event::{Arrival, Event, Notice, Private, Refusal, Reply, ServerNotice};
use crate::hub::fanout::ToRoom;
use crate::hub::ignores::Ignores;
use crate::hub::laggards::{self, Storms};
use crate::hub::members::{Member, Members};
use crate::hub::notices;
use crate::hub::outbox::Budget;
use crate::hub::render::{Personal, Renderers};
use crate::metrics::{self, HubStats, SlowLimit};
use crate::names::{Nick, RoomName};
use crate::storage::Record;
use crate::vocab::MemberId;

/// Ordering and delivery.
pub struct Pipeline {
    delivery: Delivery,
    relay: Relay,
    /// Rooms with held notices and when their summaries are due, oldest first.
    summaries_due: VecDeque<(Instant, RoomName)>,
    storms: Storms,
    /// Members whose outbox failed, still to be removed.
    faults: Vec<(MemberId, Fault)>,
    /// Users were told chat is paused: for the history writer, for the cluster link.
    paused: (bool, bool),
}

impl Pipeline {
    /// A pipeline rendering with `renderers`, whose history writer is `sink` (the newest stored
    /// message being `last_id`), every outbox counted against `budget`, counting into `stats`.
    pub fn new(
        renderers: Renderers,
        (budget, stats): (Arc<Budget>, HubStats),
        sink: Box<dyn Sink>,
        last_id: i64,
    ) -> Pipeline {
        Pipeline {
            delivery: Delivery::new(renderers, budget, stats),
            relay: Relay::new(sink, last_id),
            summaries_due: VecDeque::new(),
            storms: Storms::default(),
            faults: Vec::new(),
            paused: (false, false),
        }
    }

    pub fn renderers(&self) -> &Renderers {
        self.delivery.renderers()
    }

    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    pub fn relay_mut(&mut self) -> &mut Relay {
        &mut self.relay
    }

    /// A join or a leave: at once, or held for a summary when a big room is in a storm of them.
    pub fn arrival(
        &mut self,
        members: &mut Members,
        to: ToRoom,
        (arrival, nick): (Arrival, &Nick),
        now: Instant,
        ignores: &Ignores,
    ) {
        let Some(room) = members.room_mut(&to.room) else {
            return;
        };
        let recipients = room.len();
        if room.notices.admit(now, recipients) {
            self.send(members, to, now, ignores);
        } else if room.notices.hold(arrival, nick) {
            self.summaries_due
                .push_back((now + notices::WINDOW, to.room.clone()));
        }
    }

    /// Sends `room`'s held notices now, as a summary: before any other line to that room, so
    /// that nobody's message arrives before the notice that they joined. A window after a
    /// summary the room is looked at again: if it has calmed down and a storm was summed up,
    /// the memory the storm used is given back.
    pub fn summarise(
        &mut self,
        members: &mut Members,
        room: &RoomName,
        now: Instant,
        ignores: &Ignores,
    ) {
        let Some(occupants) = members.room_mut(room) else {
            return;
        };
        if !occupants.notices.is_holding() {
            self.storms.calmed();
            return;
        }
        if let Some(changes) = occupants.notices.summary(now) {
            self.storms.summed(changes.len());
            let notice = Notice::Summary {
                room: room.clone(),
                changes,
            };
            let to = ToRoom::new(room.clone(), Event::Notice(notice));
            self.send(members, to, now, ignores);
        }
        self.summaries_due
            .push_back((now + notices::WINDOW, room.clone()));
    }

    /// Sends the summaries whose window has ended.
    pub fn due_summaries(&mut self, members: &mut Members, now: Instant, ignores: &Ignores) {
        while self.summaries_due.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, room)) = self.summaries_due.pop_front() {
                self.summarise(members, &room, now, ignores);
            }
        }
    }

    /// When the next summary is due.
    pub fn next_summary(&self) -> Option<Instant> {
        self.summaries_due.front().map(|(at, _)| *at)
    }

    /// Sends something to a room: at once if no public line waits for the history, otherwise
    /// behind the waiting lines (or counted, past their bound).
    pub fn send(&mut self, members: &Members, to: ToRoom, now: Instant, ignores: &Ignores) {
        if let Some(to) = self.relay.notice(to, now) {
            self.deliver(members, &to, ignores);
        }
    }

    /// Holds a public line until the writer has committed its record, then relays it.
    pub fn hold(&mut self, record: Record, to: ToRoom, now: Instant) {
        self.relay.hold_line(record, to, now);
    }

    /// Relays every line the writer has committed (and the notices queued behind them), and
    /// tells everybody when chat pauses or resumes.
    pub fn relay_committed(&mut self, members: &Members, now: Instant, ignores: &Ignores) {
        self.relay.feed_writer();
        while let Some(to) = self.relay.next_ready() {
            if matches!(to.event, Event::Said(_)) {
                self.delivery.counts().relayed(1);
            }
            self.deliver(members, &to, ignores);
        }
        while let Some(news) = self.relay.news(now) {
            self.tell_everybody(members, news);
        }
    }

    /// Pushes an event into the outboxes of its room's members, but those it skips: the
    /// exception, members ignoring the sender, members told in another room already.
    fn deliver(&mut self, members: &Members, to: &ToRoom, ignores: &Ignores) {
        let Some(room) = members.room(&to.room) else {
            return;
        };
        let sender = to.sender.as_deref().filter(|_| !ignores.is_empty());
        let told = to.told_in.as_deref().unwrap_or_default();
        let skip = |id: MemberId| {
            Some(id) == to.except
                || sender.is_some_and(|s| ignores.ignores(id, s))
                || (!told.is_empty()
                    && members
                        .get(id)
                        .is_some_and(|m| told.iter().any(|r| m.seats.contains(r))))
        };
        let recipients = room.members().iter().map(|(id, outbox)| (*id, outbox));
        let faults = self.delivery.fan_out(recipients, &to.event, skip);
        self.faults.extend(faults);
    }

    /// Tells everybody something from the server.
    pub fn tell_everybody(&mut self, members: &Members, notice: ServerNotice) {
        let (history, cluster) = &mut self.paused;
        match notice {
            ServerNotice::HistoryPaused => *history = true,
            ServerNotice::HistoryResumed => *history = false,
            ServerNotice::ClusterPaused => *cluster = true,
            ServerNotice::ClusterResumed => *cluster = false,
            _ => {}
        }
        self.delivery.stats().set_paused(*history || *cluster);
        let recipients = members.iter().map(|(id, m)| (id, &m.outbox));
        let event = Event::Server(notice);
        let faults = self.delivery.fan_out(recipients, &event, |_| false);
        self.faults.extend(faults);
    }

    /// Sends a reply or a private line to member `id` (a reply never drops it: see
    /// `hub/delivery.rs`).
    pub fn tell(&mut self, members: &Members, id: MemberId, personal: Personal<'_>) {
        if let Personal::Reply(Reply::Refused(refusal)) = personal {
            if let Some(kind) = counted(refusal) {
                self.delivery.counts().refused(kind);
            }
        }
        if let Some(member) = members.get(id) {
            if let Err(fault) = self.delivery.tell(&member.outbox, &member.nick, personal) {
                self.faults.push((id, fault));
            }
        }
    }

    /// Delivers a private line to member `id`.
    pub fn private(&mut self, members: &Members, id: MemberId, private: &Private) {
        self.tell(members, id, Personal::Private(private));
    }

    /// Last words for a member already taken out of membership (kicked, banned).
    pub fn last_words(&mut self, member: &Member, reply: &Reply) {
        self.delivery
            .last_words(&member.outbox, &member.nick, reply);
    }

    /// Tells everybody the server is stopping (even those behind, within the reply slack), and
    /// closes every outbox: sessions write what is queued and end.
    pub fn shutdown(&mut self, members: &Members) {
        let recipients = members.iter().map(|(id, m)| (id, &m.outbox));
        let event = Event::Server(ServerNotice::ShuttingDown);
        // Nobody is removed now: every outbox is closing anyway.
        let _ = self
            .delivery
            .fan_out_within(recipients, &event, |_| false, REPLY_SLACK);
        for (_, member) in members.iter() {
            member.outbox.close();
        }
        self.delivery.wake();
    }

    /// The members whose outbox failed since the last call, and, when all outboxes together
    /// hold more than the output budget, the furthest behind (dropped as slow readers).
    pub fn take_faults(&mut self, members: &Members) -> Vec<(MemberId, Fault)> {
        // Slow readers dropped because their own outbox was full: once each, however many
        // lines of the turn did not fit.
        let mut slow: Vec<MemberId> = (self.faults.iter())
            .filter(|(_, fault)| *fault == Fault::Slow)
            .map(|(id, _)| *id)
            .collect();
        slow.sort_unstable();
        slow.dedup();
        for _ in &slow {
            self.delivery.counts().dropped(SlowLimit::Outbox);
        }
        if let Some(excess) = self.delivery.budget().excess() {
            let queued = members.iter().map(|(id, m)| (id, m.outbox.queued()));
            // Members whose outbox already failed this turn free their bytes too, so they
            // count towards the excess; but they are dropped (and counted) once, as they are.
            let mut faulted: Vec<MemberId> = self.faults.iter().map(|(id, _)| *id).collect();
            faulted.sort_unstable();
            let mut laggards = laggards::furthest_behind(excess, queued);
            laggards.retain(|id| faulted.binary_search(id).is_err());
            log::warn!(
                "queued output over the server-wide budget by {excess} bytes: dropping the {} \
                 furthest-behind clients",
                laggards.len()
            );
            for _ in &laggards {
                self.delivery.counts().dropped(SlowLimit::Total);
            }
            self.faults
                .extend(laggards.into_iter().map(|id| (id, Fault::Slow)));
            laggards::give_back_memory();
        }
        std::mem::take(&mut self.faults)
    }

    /// Wakes every session that got output this turn, once each, and adds the turn's counts to
    /// the metrics.
    pub fn wake(&mut self) {
        self.delivery.wake();
    }

    /// The users and rooms on this node, for the metrics.
    pub fn sizes(&self, users: usize, rooms: usize) {
        self.delivery.stats().set_sizes(users, rooms);
    }
}

/// The refusals the hub makes that operators count (`smolchat_refusals_total`); the rest are
/// a user's own mistakes.
fn counted(refusal: &Refusal) -> Option<metrics::Refusal> {
    match refusal {
        Refusal::PrivateFlood(_) => Some(metrics::Refusal::PrivateFlood),
        Refusal::HistoryFull | Refusal::ClusterPaused => Some(metrics::Refusal::ChatPaused),
        _ => None,
    }
}
