//! The registered part of an IRC session: the welcome burst, then commands in and the hub's
//! output out until the client leaves or the server closes the outbox.
//!
//! Every line counts against the same rate as at the line door (over it, lines are delayed by
//! not reading, never dropped). A quiet client is pinged, and dropped if it stays silent.

use std::sync::Arc;
use std::time::Instant;

use log::debug;
use smol::{future, Timer};

use super::chathistory::{self, CHATHISTORY_MAX};
use super::private::{self, kind_of};
use super::rooms::{entered, join};
use super::{idents, lookup, search};
use super::{End, IrcConn, Styles};
use crate::door::irc::caps::Caps;
use crate::door::irc::commands::{check, Verb};
use crate::door::irc::framing::Framed;
use crate::door::irc::history::BatchIds;
use crate::door::irc::message::{self, Message, ParseError, Writer};
use crate::door::irc::names::MAX_ROOMS;
use crate::door::irc::numerics::{
    ERR_CANNOTSENDTOCHAN, ERR_ERRONEUSNICKNAME, ERR_INPUTTOOLONG, ERR_NICKNAMEINUSE,
    ERR_NOSUCHNICK, ERR_TOOMANYCHANNELS,
};
use crate::door::irc::registration::pong;
use crate::door::irc::render::welcome::{lusers, motd, welcome, ServerInfo};
use crate::door::irc::render::{replies, Ctx};
use crate::door::irc::request::{self, Request as Irc, Target};
use crate::hub::intent::{OpCommand, Style};
use crate::hub::outbox::{Inbox, Taken};
use crate::hub::{Intent, Request};
use crate::limits::ratelimit::Pace;
use crate::moderation::ban::Target as BanTarget;
use crate::names::{Nick, RoomName};
use crate::session::enter::{self, NoRename};
use crate::session::{pump, Services};
use crate::vocab::MemberId;
use crate::wire::conn::Stream;

/// A registered IRC user, as its session knows it.
pub(crate) struct Me {
    pub nick: Nick,
    pub account: Option<Arc<str>>,
    pub operator: bool,
    pub caps: Caps,
    pub pace: Pace,
    pub styles: Styles,
    pub invisible: bool,
    /// Batch ids, unique on this connection.
    pub batches: BatchIds,
    /// What `SEARCH` without text continues.
    pub search: Option<Box<crate::session::search::Cursor>>,
}

/// What woke the loop.
enum Wake {
    Input(Option<Framed>),
    Outbox(Option<Taken>),
    Quiet,
}

pub(super) async fn chat<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    id: MemberId,
    mut me: Me,
    inbox: &Inbox,
) -> End {
    let server = super::server();
    let info = ServerInfo {
        network: &server,
        version: concat!("smolchat-", env!("CARGO_PKG_VERSION")),
        created: super::created(),
        chathistory_max: CHATHISTORY_MAX,
        timestamps: true,
        whox: true,
    };
    let motd_text = shared.config.motd.join("\n");
    let ctx = Ctx {
        server: &server,
        client: me.nick.as_str(),
        caps: me.caps.enabled(),
    };
    let Ok(counts) = lookup::welcome_counts(shared).await else {
        return End::Closed;
    };
    welcome(ctx, &info, &counts, Some(&motd_text), &mut io.conn.out);
    // In no room yet: the client joins the channels it wants.
    let mut rooms: Vec<RoomName> = Vec::new();
    // When the client was last heard from; whether a PING is out. One timer for the whole
    // session, moved only when it fires: a timer set per wake would cost every delivery a
    // reactor registration.
    let ping = shared.config.irc_ping;
    let mut heard = Instant::now();
    let mut pinged = false;
    let mut quiet_timer = Timer::at(heard + ping);

    loop {
        if io.conn.flush().await.is_err() {
            return End::Gone;
        }
        inbox.sent();
        let wake = {
            let reader = &mut io.reader;
            let stream = &mut io.conn.stream;
            let pace = &mut me.pace;
            let read = async move {
                if let Some(wait) = pace.wait(Instant::now()) {
                    Timer::after(wait).await;
                }
                Wake::Input(reader.next(stream).await.ok().flatten())
            };
            let recv = async { Wake::Outbox(inbox.recv().await) };
            let timer = &mut quiet_timer;
            let quiet = async move {
                timer.await;
                Wake::Quiet
            };
            future::race(read, future::or(recv, quiet)).await
        };
        let framed = match wake {
            Wake::Outbox(Some(taken)) => {
                io.conn.queue_owned(taken.bytes);
                continue;
            }
            Wake::Outbox(None) => return End::Closed,
            Wake::Quiet => {
                let now = Instant::now();
                if heard + ping > now {
                    // Heard from since the timer was set: not quiet after all.
                    quiet_timer.set_at(heard + ping);
                    continue;
                }
                if pinged {
                    debug!("{}: no answer to PING, disconnecting", me.nick);
                    return End::Quit(Some("Ping timeout".into()));
                }
                Writer::new(&mut io.conn.out, "", None, "PING").last(&server);
                (heard, pinged) = (now, true);
                quiet_timer.set_at(now + ping);
                continue;
            }
            Wake::Input(None) => return End::Gone,
            Wake::Input(Some(framed)) => framed,
        };
        (heard, pinged) = (Instant::now(), false);
        if let (true, Some(_)) = (me.pace.spend(Instant::now()), shared.config.rate) {
            crate::log_throttled!(
                log::Level::Warn,
                "rate limit: irc",
                "{}: over the rate limit, delaying lines",
                me.nick
            );
            shared.metrics.refused(crate::metrics::Refusal::LineRate);
        }
        let line = match framed {
            Framed::TooLong => Err(ParseError::TooLong),
            Framed::Line => Ok(io.reader.line().to_vec()),
        };
        let parsed = match &line {
            Ok(line) => message::parse(line),
            Err(e) => Err(*e),
        };
        let ctx = Ctx {
            server: &server,
            client: me.nick.as_str(),
            caps: me.caps.enabled(),
        };
        let msg = match parsed {
            Ok(msg) => msg,
            Err(ParseError::TooLong | ParseError::TagsTooLong) => {
                shared.metrics.refused(crate::metrics::Refusal::LineTooLong);
                ERR_INPUTTOOLONG.write(&mut io.conn.out, ctx.server, ctx.client, &[], &[]);
                continue;
            }
            Err(ParseError::InvalidUtf8 { command }) => {
                replies::invalid_utf8(ctx, command, &mut io.conn.out);
                continue;
            }
            Err(_) => continue,
        };
        let verb = match check(&msg, true, me.operator) {
            Ok(verb) => verb,
            Err(refusal) => {
                refusal.write(&mut io.conn.out, ctx.server, ctx.client, msg.command);
                continue;
            }
        };
        if verb == Verb::Ping {
            // Everything the hub did for earlier commands goes out before the PONG.
            match synchronise(io, shared, id, inbox).await {
                Ok(nick) => me.nick = nick,
                Err(end) => return end,
            }
            pong(&mut io.conn.out, &server, msg.param(0).unwrap_or(""));
            continue;
        }
        let (irc, restyled) = irc_request(verb, &msg, &mut me, &server, &mut io.conn.out);
        if restyled
            && send(shared, id, Request::Restyle(style(&me)))
                .await
                .is_err()
        {
            return End::Closed;
        }
        let Some(irc) = irc else {
            continue;
        };
        match handle(io, shared, id, &mut me, &mut rooms, irc, inbox).await {
            Ok(()) => {}
            Err(end) => return end,
        }
    }
}

/// The layer's answer to a command: a request, or replies written on the spot; and whether
/// the capabilities changed (`CAP REQ` after registration), so the member's style must follow.
fn irc_request(
    verb: Verb,
    msg: &Message<'_>,
    me: &mut Me,
    server: &str,
    out: &mut Vec<u8>,
) -> (Option<Irc>, bool) {
    let mask = format!("{}!{}@{server}", me.nick, idents::user(&me.nick));
    let who = request::Me {
        ctx: Ctx {
            server,
            client: me.nick.as_str(),
            caps: me.caps.enabled(),
        },
        mask: &mask,
        operator: me.operator,
        invisible: me.invisible,
    };
    let before = me.caps.enabled();
    let irc = request::request(verb, msg, who, &mut me.caps, CHATHISTORY_MAX, out);
    (irc, me.caps.enabled() != before)
}

/// The member's style for its capabilities.
fn style(me: &Me) -> Style {
    me.styles.style(me.caps.enabled())
}

/// Carries out one request.
async fn handle<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    id: MemberId,
    me: &mut Me,
    rooms: &mut Vec<RoomName>,
    irc: Irc,
    inbox: &Inbox,
) -> Result<(), End> {
    let server = super::server();
    let ctx = Ctx {
        server: &server,
        client: me.nick.as_str(),
        caps: me.caps.enabled(),
    };
    let out = &mut io.conn.out;
    let request = match irc {
        Irc::Quit(reason) => return Err(End::Quit(reason)),
        Irc::Join(list) => {
            for room in list {
                if !rooms.contains(&room) && rooms.len() >= MAX_ROOMS {
                    // The advertised CHANLIMIT: it bounds what the hub keeps for one member.
                    let channel = crate::door::irc::names::channel_name(&room);
                    let client = me.nick.as_str();
                    ERR_TOOMANYCHANNELS.write(&mut io.conn.out, &server, client, &[&channel], &[]);
                    continue;
                }
                if let Some(joined) = join(io, shared, id, room, inbox).await? {
                    if !rooms.contains(&joined.room) {
                        rooms.push(joined.room.clone());
                    }
                    entered(io, shared, me, &joined)
                        .await
                        .map_err(|_| End::Gone)?;
                }
            }
            return Ok(());
        }
        Irc::PartAll => {
            for room in std::mem::take(rooms) {
                send(shared, id, Request::Part { room, reason: None }).await?;
            }
            return Ok(());
        }
        Irc::Part {
            rooms: list,
            reason,
        } => {
            for room in list {
                rooms.retain(|r| *r != room);
                let reason = reason.clone();
                send(shared, id, Request::Part { room, reason }).await?;
            }
            return Ok(());
        }
        // The session knows its rooms exactly: kicks and bans close the connection.
        Irc::Say {
            target: Target::Room(room),
            notice,
            ..
        } if !rooms.contains(&room) => {
            // No error ever answers a notice.
            if !notice {
                let channel = crate::door::irc::names::channel_name(&room);
                ERR_CANNOTSENDTOCHAN.write(out, ctx.server, ctx.client, &[&channel], &[]);
            }
            return Ok(());
        }
        Irc::Say {
            target: Target::Room(room),
            kind,
            text,
            client_tags,
            notice,
        } => {
            // Formatting codes stay (`from_irc` kept them): the other doors' renderers and the
            // history's `body` drop them (`wire::markup`). Client-only tags are relayed live,
            // never stored. A notice is stored as a message, and nothing answers it.
            let say = Request::Say {
                room: Some(room),
                kind,
                text,
                attached: private::tags_of(me, client_tags),
            };
            match notice {
                true => Request::Quietly(Box::new(say)),
                false => say,
            }
        }
        Irc::Say {
            target: Target::Nick(nick),
            kind,
            text,
            client_tags,
            notice,
        } => match private::say_to(
            ctx,
            me,
            (nick, text, client_tags),
            private::said_kind(kind, notice),
            out,
        ) {
            Some(request) => request,
            None => return Ok(()),
        },
        Irc::TagMsg {
            target,
            client_tags,
        } => match private::tagmsg(ctx, me, rooms, (target, client_tags), out) {
            Some(request) => request,
            None => return Ok(()),
        },
        // CTCP other than ACTION goes to a nick only (IRC users see it, other doors nothing).
        Irc::Ctcp {
            target: Target::Nick(nick),
            text,
            notice,
        } => match private::say_to(ctx, me, (nick, text, None), kind_of(notice, true), out) {
            Some(request) => request,
            None => return Ok(()),
        },
        Irc::Ctcp { .. } | Irc::Pong => return Ok(()),
        Irc::ShowTopic(room) => Request::Topic { room: Some(room) },
        Irc::SetTopic { room, text } => Request::Operator(OpCommand::SetTopic {
            room: Some(room),
            text,
        }),
        Irc::Names(list) => {
            let list = if list.is_empty() { rooms.clone() } else { list };
            for room in list {
                lookup::names(io, (shared, inbox), ctx, room).await?;
            }
            return Ok(());
        }
        Irc::List(only) => Request::Rooms { page: 0, only },
        Irc::Who { mask, whox } => {
            return lookup::who(io, (shared, inbox), ctx, (mask, whox)).await
        }
        Irc::Whois(nick) => return lookup::whois(io, (shared, inbox), ctx, nick).await,
        Irc::ShowModes(room) => {
            replies::channel_modes(ctx, &room, 0, out);
            return Ok(());
        }
        Irc::ListBans(room) => {
            lookup::bans(shared, ctx, &room, out);
            return Ok(());
        }
        Irc::Ban { set, mask, .. } => {
            let name = mask.split('!').next().unwrap_or(&mask).to_owned();
            let target = BanTarget::parse(&name);
            Request::Operator(if set {
                OpCommand::Ban {
                    target,
                    duration: None,
                    reason: None,
                }
            } else {
                OpCommand::Unban(target)
            })
        }
        Irc::Kick { nick, reason, .. } | Irc::Kill { nick, reason } => {
            let Ok(nick) = Nick::parse(&nick) else {
                ERR_NOSUCHNICK.write(out, ctx.server, ctx.client, &[&nick], &[]);
                return Ok(());
            };
            Request::Operator(OpCommand::Kick { nick, reason })
        }
        Irc::Away(message) => {
            replies::away_changed(ctx, message.is_some(), out);
            Request::Away(message)
        }
        Irc::Rename(nick) => {
            let seated = !rooms.is_empty();
            return rename(io, shared, id, (me, seated), nick, inbox).await;
        }
        Irc::History(request) => {
            let asked = (ctx, rooms.as_slice(), &mut me.batches);
            chathistory::answer(io, shared, asked, request).await;
            return Ok(());
        }
        Irc::Search { room, query } => {
            let asked = (ctx, rooms.as_slice(), &mut me.search);
            return search::answer(io, &shared.history, asked, room, query)
                .await
                .map_err(|_| End::Gone);
        }
        Irc::Lusers => {
            let counts = lookup::counts(io, (shared, inbox)).await?;
            lusers(ctx, &counts, &mut io.conn.out);
            return Ok(());
        }
        Irc::Motd => {
            motd(ctx, Some(&shared.config.motd.join("\n")), out);
            return Ok(());
        }
        Irc::Userhost(nicks) => {
            return lookup::userhost(io, (shared, inbox), ctx, (nicks, false)).await
        }
        Irc::Ison(nicks) => return lookup::userhost(io, (shared, inbox), ctx, (nicks, true)).await,
    };
    send(shared, id, request).await
}

/// Sends a request to the hub.
pub(super) async fn send(shared: &Services, id: MemberId, request: Request) -> Result<(), End> {
    let intent = Intent::Request { id, request };
    Box::pin(shared.hub.send(intent))
        .await
        .map_err(|_| End::Closed)
}

/// `NICK`: the same checks as the line door's `/nick`, then the hub.
async fn rename<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    id: MemberId,
    (me, seated): (&mut Me, bool),
    nick: Nick,
    inbox: &Inbox,
) -> Result<(), End> {
    let server = super::server();
    let out = &mut io.conn.out;
    let client = me.nick.as_str();
    match enter::may_rename(shared, me.account.as_deref(), &nick).await {
        Ok(()) => {}
        Err(NoRename::Banned(_)) => {
            let reason = "That nickname is banned";
            ERR_ERRONEUSNICKNAME.write_text(out, &server, client, &[nick.as_str()], reason);
            return Ok(());
        }
        Err(_) => {
            ERR_NICKNAMEINUSE.write(out, &server, client, &[nick.as_str()], &[]);
            return Ok(());
        }
    }
    match enter::claim(shared, &nick, id).await {
        Ok(true) => {}
        _ => {
            ERR_NICKNAMEINUSE.write(out, &server, client, &[nick.as_str()], &[]);
            return Ok(());
        }
    }
    send(shared, id, Request::Rename(nick)).await?;
    // The hub tells the rooms (and so this client) under the old name; replies from now on
    // address the name it has after that (a refusal, `433`, leaves the old one).
    let now = synchronise(io, shared, id, inbox).await?;
    if now != me.nick {
        idents::renamed(id, &now);
    }
    if !seated && now != me.nick {
        // In no room, nobody told this client: it learns its new nick here.
        let mask = format!("{}!{}@{server}", me.nick, idents::user(&me.nick));
        Writer::new(&mut io.conn.out, "", Some(&mask), "NICK").last(now.as_str());
    }
    me.nick = now;
    Ok(())
}

/// Waits until the hub has handled everything this session sent before, and queues what the
/// hub wrote for it meanwhile. Returns the member's name as the hub knows it.
async fn synchronise<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    id: MemberId,
    inbox: &Inbox,
) -> Result<Nick, End> {
    let (tx, rx) = async_channel::bounded(1);
    shared
        .hub
        .send(Intent::Whoami { id, reply: tx })
        .await
        .map_err(|_| End::Closed)?;
    let answered = pump::relaying(&mut io.conn, inbox, rx.recv()).await;
    let nick = answered
        .map_err(|_| End::Closed)?
        .map_err(|_| End::Closed)?;
    while let Some(Some(taken)) = future::poll_once(inbox.recv()).await {
        io.conn.queue_owned(taken.bytes);
    }
    Ok(nick)
}
