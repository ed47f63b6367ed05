//! What the hub does with intents: the rules of names, rooms, lines and moderation, over the
//! core (membership and delivery) and the parts that own their state.
//!
//! Everything members see of each other is published through the [`Link`]: on a single node an
//! entry comes straight back and is applied at once, in cluster mode it is applied when read
//! back from the log; [`Hub::apply`] is the one place that says what an entry means. Every
//! account and moderation change goes through [`Moderation::apply`], whether an operator here
//! asked for it or another node did.

use std::sync::Arc;
use std::time::Instant;

use log::{debug, info};

use crate::clock::Clock;
use crate::cluster::{Entry, Whisper};
use crate::hub::control::Control;
use crate::hub::core::Core;
use crate::hub::delivery::Fault;
use crate::hub::event::{Active, Event, Page, Private, Refusal, Reply, Signal};
use crate::hub::fanout::ToRoom;
use crate::hub::intent::{Identity, Intent, Joined, OpCommand, Refused, Request, Style};
use crate::hub::members::{Member, Seats};
use crate::hub::moderation::{Context, Decision, Moderation};
use crate::hub::names::Clash;
use crate::hub::outbox::Outbox;
use crate::hub::{lists, lookup};
use crate::names::{Nick, RoomName};
use crate::vocab::{Departure, Kind, MemberId, PrivateKind};

/// The hub's state: the core and moderation.
pub struct Hub {
    pub(super) core: Core,
    pub(super) moderation: Moderation,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) closing: bool,
}

impl Hub {
    pub fn new(core: Core, moderation: Moderation, clock: Arc<dyn Clock>) -> Hub {
        Hub {
            core,
            moderation,
            clock,
            closing: false,
        }
    }

    /// Now, on the monotonic clock and in milliseconds since the epoch.
    fn now(&self) -> (Instant, i64) {
        (self.clock.now(), self.clock.now_ms())
    }

    /// Handles one intent, then removes the members whose outbox failed meanwhile.
    pub fn handle(&mut self, intent: Intent) {
        match intent {
            Intent::Register {
                id,
                nick,
                outbox,
                identity,
                style,
                reply,
            } => {
                let result = self.register(id, (nick, outbox, identity, style));
                let registered = result.is_ok();
                // The session may have given up meanwhile (its name deadline passed): then undo
                // the registration, or the name would stay taken by nobody.
                if reply.try_send(result).is_err() && registered {
                    self.quit(id, None);
                }
            }
            Intent::Request { id, request } => match self.request(id, request) {
                Ok(Some(reply)) => self.core.tell(id, &reply),
                Ok(None) => {}
                Err(refusal) => self.core.tell(id, &Reply::Refused(refusal)),
            },
            Intent::Join {
                id,
                room,
                alone,
                reply,
            } => {
                if let Some(joined) = self.join(id, room, alone) {
                    let _ = reply.try_send(joined);
                }
            }
            Intent::Quit { id, reason } => self.quit(id, reason),
            Intent::Whoami { id, reply } => {
                if let Some(member) = self.core.members.get(id) {
                    let _ = reply.try_send(member.nick.clone());
                }
            }
            Intent::Lookup { lookup, reply } => {
                let _ = reply.try_send(lookup::answer(&self.core, lookup));
            }
        }
        self.core.settle(self.clock.now());
    }

    /// A registered member's request: the answer, or why not.
    fn request(&mut self, id: MemberId, request: Request) -> Result<Option<Reply>, Refusal> {
        let Some(member) = self.core.members.get_mut(id) else {
            return Ok(None);
        };
        // Typing notices and automatic CTCP replies are not speaking (`317` idle time).
        let spoke = match &request {
            Request::Say { .. } => true,
            Request::Private { text, kind, .. } => !text.is_empty() && !kind.is_notice(),
            _ => false,
        };
        if spoke {
            member.active.spoke_ms = self.clock.now_ms();
        }
        Ok(match request {
            Request::Quietly(request) => return Ok(self.request(id, *request).unwrap_or(None)),
            Request::Say {
                room,
                kind,
                text,
                attached,
            } => return self.say(id, (room, kind), text, attached),
            Request::Part { room, reason } => return self.part(id, room, reason),
            Request::Who { room, page } => {
                let room = self.room_of(id, room)?;
                let remotes = self.core.link.remotes();
                Some(Reply::Who(on_page(lists::who(
                    &self.core.members,
                    remotes,
                    room,
                    page,
                ))?))
            }
            Request::Rooms { page, only } => Some(Reply::Rooms(on_page(lists::rooms(
                &self.core.members,
                self.core.link.remotes(),
                page,
                &only,
            ))?)),
            Request::Rename(nick) => return self.rename(id, nick),
            Request::Private {
                to,
                text,
                kind,
                attached,
            } => {
                let signal = text.is_empty();
                let sent = self.private(id, to, (text, attached), kind);
                // RFC 2812 3.3.2: nothing answers a notice, not even to say it went nowhere; a
                // signal alone (IRC's `TAGMSG`) is dropped without a word when muted or past
                // the recipient's allowance, as a signal to a room is.
                return match sent {
                    Err(_) if kind.is_notice() => Ok(None),
                    Err(Refusal::Muted | Refusal::PrivateFlood(_)) if signal => Ok(None),
                    sent => sent,
                };
            }
            Request::Signal { room, data } => return self.signal(id, room, data),
            Request::Ignore(Some(nick)) => {
                let me = member.nick.clone();
                Some(self.core.ignores.ignore(id, &me, nick)?)
            }
            Request::Ignore(None) => Some(self.core.ignores.list(id)),
            Request::Unignore(nick) => Some(self.core.ignores.unignore(id, nick)?),
            Request::Topic { room } => {
                // Rooms are public: a named room's topic is anyone's to read (IRC's `TOPIC
                // #room` from outside it); without a name, the member's own room.
                let room = match room {
                    Some(room) => room,
                    None => self.room_of(id, None)?,
                };
                Some(Reply::Topic {
                    topic: self.moderation.topic(&room),
                    room,
                })
            }
            Request::Help => Some(Reply::Help {
                operator: member.operator,
            }),
            Request::Operator(command) => {
                self.operator(id, command)?;
                None
            }
            Request::Account { logged_in, change } => {
                (member.account, member.operator) = (logged_in, false);
                self.core.link.replicate(change);
                None
            }
            Request::Replicate(change) => {
                self.core.link.replicate(change);
                None
            }
            Request::Away(message) => {
                self.core.away(id, message, self.clock.now());
                None
            }
            Request::Restyle(style) => {
                member.outbox.set_renderer(style.renderer);
                member.echo = style.echo;
                None
            }
        })
    }

    /// The room a request names, which the member must be in; `None`: its only room.
    fn room_of(&self, id: MemberId, room: Option<RoomName>) -> Result<RoomName, Refusal> {
        let seats = self.core.members.get(id).map(|m| &m.seats);
        match (room, seats) {
            (_, None) => Err(Refusal::WhichRoom),
            (None, Some(seats)) => seats.only().cloned().ok_or(Refusal::WhichRoom),
            (Some(room), Some(seats)) if seats.contains(&room) => Ok(room),
            (Some(room), Some(_)) => Err(Refusal::NotInRoom(room)),
        }
    }

    fn register(
        &mut self,
        id: MemberId,
        (nick, outbox, identity, style): (Nick, Outbox, Identity, Style),
    ) -> Result<Joined, Refused> {
        if self.closing {
            return Err(Refused::ShuttingDown);
        }
        let now = self.clock.now();
        let seated = identity.lobby;
        if let Some(stale) = self.core.stale_holder(&nick) {
            self.core.remove(stale, Fault::Gone, now);
        }
        outbox.set_renderer(style.renderer);
        let member = Member {
            nick,
            seats: Seats::default(),
            outbox,
            ip: identity.ip,
            account: identity.account,
            operator: identity.operator,
            echo: style.echo,
            away: None,
            tls: identity.tls,
            realname: identity.realname,
            active: Active {
                signon_ms: self.clock.now_ms(),
                spoke_ms: self.clock.now_ms(),
            },
        };
        let name = member.nick.to_string();
        self.core
            .admit(id, member, now)
            .map_err(|clash| match clash {
                Clash::Taken => Refused::Taken,
                Clash::LooksLike => Refused::LooksLike,
                Clash::Held(secs) => Refused::Held(secs),
            })?;
        if let Some(account) = self.core.members.get(id).and_then(|m| m.account.clone()) {
            self.moderation.logged_in(&account, identity.cli_operator);
        }
        // Relay what is committed, so the newcomer's replay reaches as far as it can.
        self.core.relay_committed(now);
        let room = RoomName::lobby();
        if !seated {
            info!("{name} arrived");
            // In no room, but known to the other nodes by name (`/msg`, `/kick`).
            if let Some(member) = self.core.members.get(id) {
                let members = vec![(id, member.nick.clone())];
                self.publish_now(Entry::Arrived { members });
            }
            return Ok(Joined {
                topic: None,
                last_id: self.core.pipeline.relay().relayed(),
                room,
            });
        }
        info!("{name} joined {room}");
        self.enter(id, &room);
        let topic = self.moderation.topic(&room);
        Ok(Joined {
            topic,
            last_id: self.core.pipeline.relay().relayed(),
            room,
        })
    }

    /// Announces member `id` in `room`, then seats it there; returns how many are there now.
    fn enter(&mut self, id: MemberId, room: &RoomName) -> usize {
        if let Some(member) = self.core.members.get(id) {
            let (nick, room) = (member.nick.clone(), room.clone());
            self.publish_now(Entry::Joined {
                member: id,
                nick,
                room,
            });
        }
        self.core.members.seat(id, room)
    }

    fn join(&mut self, id: MemberId, room: RoomName, alone: bool) -> Option<Joined> {
        // Relay what is committed first (which may drop a slow mover), so the replay of the new
        // room reaches as far as it can.
        self.relay_committed();
        let member = self.core.members.get(id)?;
        if member.seats.contains(&room) {
            let refused = Reply::Refused(Refusal::AlreadyIn(room));
            self.core.tell(id, &refused);
            return None;
        }
        // No two occupied rooms look alike, as no two users do: a whole-script look-alike
        // (`#рор` beside `#pop`) would pass for the other in `/rooms`. A scan of this node's
        // rooms, a few microseconds per thousand, on a join only.
        let other = (self.core.members.rooms())
            .find(|(r, _)| r.skeleton() == room.skeleton() && **r != room)
            .map(|(r, _)| r.clone());
        if let Some(other) = other {
            let refused = Reply::Refused(Refusal::RoomLooksLike(room, other));
            self.core.tell(id, &refused);
            return None;
        }
        let (nick, outbox) = (member.nick.clone(), member.outbox.clone());
        let old: Vec<RoomName> = member.seats.rooms().cloned().collect();
        if alone && !old.is_empty() {
            for r in &old {
                self.core.members.unseat(id, r);
            }
            let from: Vec<&str> = old.iter().map(RoomName::as_str).collect();
            info!("{nick} moved from {} to {room}", from.join(", "));
            let why = Departure::Moved(room.clone());
            self.publish_now(Entry::Left {
                member: id,
                nick,
                rooms: old,
                why,
            });
        } else if alone {
            info!("{nick} joined {room}");
        } else {
            // A seat among several (IRC's JOIN #a,#b and its PART): at info, a JOIN of 50
            // rooms and a JOIN 0 in a loop would write a hundred lines a second per client.
            debug!("{nick} joined {room}");
        }
        let count = self.enter(id, &room);
        if let Some(me) = self.core.members.get(id).map(|m| Arc::new(m.listed())) {
            let joined = Reply::Joined {
                room: room.clone(),
                count,
                me,
            };
            self.core.tell(id, &joined);
        }
        let _ = outbox.push_marker();
        let topic = self.moderation.topic(&room);
        Some(Joined {
            topic,
            last_id: self.core.pipeline.relay().relayed(),
            room,
        })
    }

    fn part(
        &mut self,
        id: MemberId,
        room: RoomName,
        reason: Option<String>,
    ) -> Result<Option<Reply>, Refusal> {
        let Some(nick) = self.core.members.get(id).map(|m| m.nick.clone()) else {
            return Ok(None);
        };
        if !self.core.members.unseat(id, &room) {
            return Err(Refusal::NotInRoom(room));
        }
        debug!("{nick} left {room}");
        let reason: Option<Arc<str>> = reason.map(Into::into);
        self.publish_now(Entry::Left {
            member: id,
            nick,
            rooms: vec![room.clone()],
            why: Departure::Parted(reason.clone()),
        });
        Ok(Some(Reply::Parted { room, reason }))
    }

    fn quit(&mut self, id: MemberId, reason: Option<String>) {
        let (now, at_ms) = self.now();
        if self.closing {
            // Every outbox is closed: nobody is left to tell.
            self.core.detach(id, None, now);
        } else {
            self.core.quit(id, reason, now, at_ms);
        }
    }

    fn rename(&mut self, id: MemberId, nick: Nick) -> Result<Option<Reply>, Refusal> {
        let Some(member) = self.core.members.get(id) else {
            return Ok(None);
        };
        if member.nick == nick {
            return Err(Refusal::AlreadyKnownAs(nick));
        }
        let now = self.clock.now();
        if let Some(clash) = self.core.clash(Some(id), &nick, member.ip, now) {
            // Claimed cluster-wide first, the claim is not used.
            self.core.link.release(&nick, id);
            return Err(match clash {
                Clash::Taken => Refusal::NameTaken(nick),
                Clash::LooksLike => Refusal::NameLooksLike(nick),
                Clash::Held(secs) => Refusal::NameHeld(nick, secs),
            });
        }
        let Some(old) = self.core.rename(id, &nick, now) else {
            return Ok(None);
        };
        if let Some(who) = self.core.members.who(id) {
            self.moderation.renamed(&who, &old);
        }
        info!("{old} is now known as {nick}");
        let rooms = self
            .core
            .members
            .get(id)
            .map(|m| m.seats.rooms().cloned().collect());
        let rooms = rooms.unwrap_or_default();
        self.publish_now(Entry::Renamed {
            member: id,
            old,
            new: nick,
            rooms,
        });
        Ok(None)
    }

    fn say(
        &mut self,
        id: MemberId,
        (room, kind): (Option<RoomName>, Kind),
        text: String,
        attached: Option<Arc<str>>,
    ) -> Result<Option<Reply>, Refusal> {
        let room = self.room_of(id, room)?;
        let now_ms = self.clock.now_ms();
        let Some(who) = self.core.members.who(id) else {
            return Ok(None);
        };
        if self.moderation.is_muted(&who, now_ms) {
            return Err(Refusal::Muted);
        }
        if kind == Kind::Action && self.core.pipeline.renderers().mimics_notice(&text) {
            return Err(Refusal::LooksLikeNotice);
        }
        self.core.link.accepts_lines()?;
        if self.core.pipeline.relay().is_full() {
            debug!("{}: line refused, lines wait for the history", who.nick);
            return Err(Refusal::HistoryFull);
        }
        debug!("line from {} in {room}", who.nick);
        let (nick, account) = (who.nick.clone(), who.account.map(Into::into));
        let body = text.into();
        self.publish_now(Entry::Say {
            member: id,
            nick,
            account,
            room,
            kind,
            body,
            attached,
        });
        Ok(None)
    }

    /// A live-only signal to a room of the sender's: relayed to the members of this node (the
    /// sender too when it asked for its own lines back), never stored. A muted sender's signal
    /// is dropped without a word, like any signal nobody can be told about.
    fn signal(
        &mut self,
        id: MemberId,
        room: RoomName,
        data: Arc<str>,
    ) -> Result<Option<Reply>, Refusal> {
        let room = self.room_of(id, Some(room))?;
        let Some(who) = self.core.members.who(id) else {
            return Ok(None);
        };
        if self.moderation.is_muted(&who, self.clock.now_ms()) {
            return Ok(None);
        }
        let echo = self.core.members.get(id).is_some_and(|m| m.echo);
        let signal = Signal {
            room: room.clone(),
            from: who.nick.clone(),
            account: who.account.map(Into::into),
            data,
        };
        let to = ToRoom {
            sender: Some(signal.from.key().into()),
            ..ToRoom::new(room, Event::Signal(signal))
        };
        self.core
            .send_from_member(to.except(Some(id).filter(|_| !echo)), self.clock.now());
        Ok(None)
    }

    fn private(
        &mut self,
        id: MemberId,
        to: Nick,
        (text, attached): (String, Option<Arc<str>>),
        kind: PrivateKind,
    ) -> Result<Option<Reply>, Refusal> {
        let Some(from) = self.core.members.who(id) else {
            return Ok(None);
        };
        let text: Arc<str> = text.into();
        let muted = self.moderation.is_muted(&from, self.clock.now_ms());
        let Some(target) = self.core.who_is(&to) else {
            // Cluster mode: to another node's member, whose role this node does not know, so
            // a muted sender is refused (here, only operators may be written to).
            let remote = self.core.link.remotes().and_then(|r| r.find(&to));
            let (node, to) = remote.ok_or(Refusal::NoSuchUser(to))?;
            if muted {
                return Err(Refusal::Muted);
            }
            if text.is_empty() {
                // A signal alone is not carried to other nodes.
                return Ok(None);
            }
            let (to, from) = (to.clone(), from.nick.clone());
            debug!("private line from {from} to {to} on node {node}");
            let whisper = Whisper {
                from,
                to: to.clone(),
                text: text.to_string(),
                kind,
            };
            self.core.link.whisper(&node, whisper)?;
            let away = None;
            return Ok(Some(Reply::PrivateSent { to, text, away }));
        };
        if !target.operator && muted {
            return Err(Refusal::Muted);
        }
        debug!("private line from {} to {}", from.nick, target.nick);
        // Nothing answers a notice (RFC 2812 3.3.2), not even `301`.
        let away = (self.core.members.get(target.id))
            .filter(|_| !kind.is_notice())
            .and_then(|m| m.away.clone());
        let private = Private {
            from: from.nick.clone(),
            account: from.account.map(Into::into),
            to: target.nick.clone(),
            text,
            kind,
            attached,
        };
        let target = target.id;
        self.core.private_line(target, &private, self.clock.now())?;
        if private.is_signal() {
            return Ok(None);
        }
        Ok(Some(Reply::PrivateSent {
            to: private.to,
            text: private.text,
            away,
        }))
    }

    /// An operator command: the one place the operator role is checked.
    fn operator(&mut self, id: MemberId, command: OpCommand) -> Result<(), Refusal> {
        let core = &self.core;
        let Some(op) = core.members.who(id) else {
            return Ok(());
        };
        if !op.operator {
            return Err(Refusal::OperatorsOnly(command.kind()));
        }
        let named = match &command {
            OpCommand::Kick { nick, .. }
            | OpCommand::Mute { nick, .. }
            | OpCommand::Unmute(nick) => Some(nick),
            _ => None,
        };
        let target = named.and_then(|n| core.who_is(n));
        let remote = named
            .filter(|_| target.is_none())
            .and_then(|n| self.core.link.remotes()?.find(n).map(|(_, n)| n.clone()));
        let room = match &command {
            OpCommand::SetTopic { room, .. } => Some(self.room_of(id, room.clone())?),
            _ => None,
        };
        let now_ms = self.clock.now_ms();
        let members = core.members.whos();
        let cx = Context {
            op,
            target,
            remote,
            room,
            members,
            now_ms,
        };
        let decisions = self.moderation.command(command, cx)?;
        self.execute(decisions);
        Ok(())
    }

    /// Carries out what moderation decided.
    pub(super) fn execute(&mut self, decisions: Vec<Decision>) {
        let now = self.now();
        self.core.carry_out(decisions, now);
    }

    /// Answers from the account thread, and SIGHUP.
    pub fn control(&mut self, control: Control) {
        let members = self.core.members.whos();
        let decisions = self
            .moderation
            .control(control, self.clock.now_ms(), members);
        self.execute(decisions);
        self.core.settle(self.clock.now());
    }

    /// Publishes an entry made now.
    fn publish_now(&mut self, entry: Entry) {
        let (now, at_ms) = self.now();
        self.core.publish(entry, now, at_ms);
    }

    /// Tells the rooms of up to `max` members removed because their outbox failed; true if
    /// more wait.
    pub fn announce_departures(&mut self, max: usize) -> bool {
        let now = self.now();
        self.core.announce_departures(max, self.closing, now)
    }

    /// Sends due summaries.
    pub fn due_summaries(&mut self) {
        let now = self.clock.now();
        self.core.due_summaries(now);
        self.core.settle(now);
    }

    /// Relays what the writer committed.
    pub fn relay_committed(&mut self) {
        let now = self.clock.now();
        self.core.relay_committed(now);
        self.core.settle(now);
    }

    /// The server is stopping: what is committed still reaches its readers, then everybody is
    /// told and every outbox closed.
    pub fn shutdown(&mut self) {
        self.relay_committed();
        self.closing = true;
        self.core.shutdown();
        let n = self.core.members.len();
        info!("told {n} users the server is shutting down");
    }
}

/// A page of a list, or, past its last page, why not: one clear line rather than an empty page
/// numbered "2 of 1".
fn on_page<T>(page: Page<T>) -> Result<Page<T>, Refusal> {
    if page.beyond_last() {
        return Err(Refusal::NoSuchPage {
            page: page.page,
            pages: page.pages(),
        });
    }
    Ok(page)
}
