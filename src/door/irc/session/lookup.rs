//! The IRC commands that show members: `NAMES`, `WHO` (and WHOX), `WHOIS`, `USERHOST`, `ISON`
//! and `LUSERS`. Each asks the hub an [`Intent::Lookup`] and words the answer with the layer's
//! `replies`. The ban list (`MODE #room +b`) is read from the shared list the name prompt
//! checks, without a hub round trip.
//!
//! The answer comes on a reply channel, not through the outbox, because these replies depend on
//! the request (the mask as sent, the WHOX fields), which renderers never see. Order is kept as
//! for `PING`: the hub handles the lookup after everything this session sent before it, and
//! whatever the hub wrote for those meanwhile is queued before the reply.

use smol::future;

use super::{idents, End, IrcConn};
use crate::door::irc::event::{Ban, Idle, Member, Origin};
use crate::door::irc::names::{channel_name, glob};
use crate::door::irc::render::replies::{self, WhoLine, Whox};
use crate::door::irc::render::welcome::Lusers;
use crate::door::irc::render::Ctx;
use crate::hub::event::Listed;
use crate::hub::lookup::{Found, Lookup};
use crate::hub::outbox::Inbox;
use crate::hub::Intent;
use crate::moderation::ban::Target;
use crate::names::{Nick, RoomName};
use crate::session::{pump, Services};
use crate::wire::conn::Stream;

/// A member as IRC listings show it: `nick!~username@SERVER`, its real name (empty for users of other
/// doors), its flags.
pub fn member(server: &str, listed: Listed) -> Member {
    Member {
        origin: Origin {
            user: idents::user(&listed.nick),
            nick: listed.nick,
            host: server.into(),
            account: listed.account,
        },
        realname: listed.realname.unwrap_or_else(|| "".into()),
        operator: listed.operator,
        away: listed.away,
        secure: listed.tls,
        idle: listed.active.map(|a| Idle {
            seconds: (crate::clock::now_ms() - a.spoke_ms).max(0) / 1000,
            signon: a.signon_ms / 1000,
        }),
    }
}

/// `MODE #room +b`: the server's name bans in force, as `nick!*@*` masks (`367` each, `368`).
/// Bans are server-wide, so every room lists the same ones; address bans are not IRC masks
/// and stay with `/bans`.
pub(super) fn bans(shared: &Services, ctx: Ctx<'_>, room: &RoomName, out: &mut Vec<u8>) {
    let now_ms = crate::clock::now_ms();
    let bans: Vec<Ban> = match shared.accounts.bans.read() {
        Ok(list) => list
            .active(now_ms)
            .filter_map(|b| match &b.target {
                Target::Name(name) => Some(Ban {
                    mask: format!("{name}!*@*").into(),
                    set_by: b.by.as_str().into(),
                    set_at_ms: b.created_ms,
                }),
                Target::Net(_) => None,
            })
            .collect(),
        // A poisoned lock: an empty list rather than a stuck client.
        Err(_) => Vec::new(),
    };
    replies::ban_list(ctx, room, &bans, out);
}

/// Asks the hub `lookup` and waits for the answer, queueing meanwhile what the hub wrote for
/// this session before it.
pub(super) async fn ask<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    inbox: &Inbox,
    lookup: Lookup,
) -> Result<Found, End> {
    let (reply, answer) = async_channel::bounded(1);
    let intent = Intent::Lookup { lookup, reply };
    Box::pin(shared.hub.send(intent))
        .await
        .map_err(|_| End::Closed)?;
    let found = pump::relaying(&mut io.conn, inbox, answer.recv()).await;
    let found = found.map_err(|_| End::Closed)?.map_err(|_| End::Closed)?;
    while let Some(Some(taken)) = future::poll_once(inbox.recv()).await {
        io.conn.queue_owned(taken.bytes);
    }
    Ok(found)
}

/// The members a lookup found.
fn members(server: &str, found: Found) -> Vec<(Member, Vec<RoomName>)> {
    match found {
        Found::Members(list) => list
            .into_iter()
            .map(|l| (member(server, l), Vec::new()))
            .collect(),
        Found::Seated(list) => list
            .into_iter()
            .map(|(l, rooms)| (member(server, l), rooms))
            .collect(),
        Found::Counts(_) => Vec::new(),
    }
}

/// `NAMES #room`: any room (rooms are public); one with nobody in it is `366` alone.
pub(super) async fn names<S: Stream>(
    io: &mut IrcConn<S>,
    (shared, inbox): (&Services, &Inbox),
    ctx: Ctx<'_>,
    room: RoomName,
) -> Result<(), End> {
    let found = ask(io, shared, inbox, Lookup::Room(room.clone())).await?;
    write_names(ctx, &room, found, &mut io.conn.out);
    Ok(())
}

/// The names a join shows, after the topic and before the replay. Asked without relaying the
/// outbox meanwhile: what the hub wrote since the `JOIN` (the room's live lines) comes after the
/// names and the replay, as on any IRC server.
pub(super) async fn joined_names<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    ctx: Ctx<'_>,
    room: &RoomName,
) -> Result<(), End> {
    let (reply, answer) = async_channel::bounded(1);
    let lookup = Lookup::Room(room.clone());
    let intent = Intent::Lookup { lookup, reply };
    Box::pin(shared.hub.send(intent))
        .await
        .map_err(|_| End::Closed)?;
    let found = answer.recv().await.map_err(|_| End::Closed)?;
    write_names(ctx, room, found, &mut io.conn.out);
    Ok(())
}

/// `353` for the members found (none for nobody) and `366`.
fn write_names(ctx: Ctx<'_>, room: &RoomName, found: Found, out: &mut Vec<u8>) {
    let listed: Vec<Member> = members(ctx.server, found)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    if listed.is_empty() {
        replies::names_end(ctx, &channel_name(room), out);
    } else {
        replies::names(ctx, room, &listed, out);
    }
}

/// `WHO #room` (any room), `WHO nick` or `WHO mask` (`*` and `?`, ignoring case; a mask with
/// `!` or `@` is matched against `nick!~u@SERVER`): a `352` (or WHOX `354`) per member, `315`.
pub(super) async fn who<S: Stream>(
    io: &mut IrcConn<S>,
    (shared, inbox): (&Services, &Inbox),
    ctx: Ctx<'_>,
    (mask, whox): (String, Option<Whox>),
) -> Result<(), End> {
    let room = crate::door::irc::names::channel(&mask);
    let lookup = match &room {
        Some(room) => Lookup::Room(room.clone()),
        None if mask.starts_with('#') => {
            replies::who(ctx, &mask, &[], whox.as_ref(), &mut io.conn.out);
            return Ok(());
        }
        None => Lookup::Matching(matcher(&mask, ctx.server)),
    };
    let found = members(ctx.server, ask(io, shared, inbox, lookup).await?);
    let lines: Vec<WhoLine<'_>> = found
        .iter()
        .map(|(member, _)| WhoLine {
            room: room.as_ref(),
            member,
        })
        .collect();
    replies::who(ctx, &mask, &lines, whox.as_ref(), &mut io.conn.out);
    Ok(())
}

/// Whether a nick matches a `WHO` mask.
fn matcher(mask: &str, server: &str) -> Box<dyn Fn(&Nick) -> bool + Send> {
    let mask = mask.to_owned();
    if mask.contains(['!', '@']) {
        let host = format!("@{server}");
        let full = move |nick: &Nick| format!("{nick}!{}{host}", idents::user(nick));
        return Box::new(move |nick| glob(&mask, &full(nick)));
    }
    Box::new(move |nick| glob(&mask, nick.as_str()))
}

/// `WHOIS nick`: `311`, `319`, `312`, `313`, `301`, `330`, `671`, `318`; `401` and `318` for
/// nobody.
pub(super) async fn whois<S: Stream>(
    io: &mut IrcConn<S>,
    (shared, inbox): (&Services, &Inbox),
    ctx: Ctx<'_>,
    nick: String,
) -> Result<(), End> {
    let Ok(name) = Nick::parse(&nick) else {
        replies::whois_missing(ctx, &nick, &mut io.conn.out);
        return Ok(());
    };
    let found = ask(io, shared, inbox, Lookup::Named(vec![name])).await?;
    let out = &mut io.conn.out;
    match members(ctx.server, found).first() {
        Some((member, rooms)) => replies::whois(ctx, member, rooms, "smolchat", out),
        None => replies::whois_missing(ctx, &nick, out),
    }
    Ok(())
}

/// `USERHOST nick...` (`302`, the nicks that are on) and `ISON nick...` (`303`).
pub(super) async fn userhost<S: Stream>(
    io: &mut IrcConn<S>,
    (shared, inbox): (&Services, &Inbox),
    ctx: Ctx<'_>,
    (nicks, ison): (Vec<String>, bool),
) -> Result<(), End> {
    let names = nicks.iter().filter_map(|n| Nick::parse(n).ok()).collect();
    let found = members(
        ctx.server,
        ask(io, shared, inbox, Lookup::Named(names)).await?,
    );
    let out = &mut io.conn.out;
    if ison {
        let on: Vec<&str> = found.iter().map(|(m, _)| m.origin.nick.as_str()).collect();
        replies::ison(ctx, &on, out);
    } else {
        let on: Vec<&Member> = found.iter().map(|(m, _)| m).collect();
        replies::userhost(ctx, &on, out);
    }
    Ok(())
}

/// The counts `LUSERS` shows.
pub(super) async fn counts<S: Stream>(
    io: &mut IrcConn<S>,
    (shared, inbox): (&Services, &Inbox),
) -> Result<Lusers, End> {
    let found = ask(io, shared, inbox, Lookup::Counts).await?;
    Ok(lusers(shared, found))
}

/// The counts the welcome burst shows. Nothing is taken from the outbox meanwhile: a line
/// relayed to the newcomer must not arrive before its `001`. The hub answers within its turn,
/// and the outbox holds what comes meanwhile.
pub(super) async fn welcome_counts(shared: &Services) -> Result<Lusers, End> {
    let (reply, answer) = async_channel::bounded(1);
    let intent = Intent::Lookup {
        lookup: Lookup::Counts,
        reply,
    };
    Box::pin(shared.hub.send(intent))
        .await
        .map_err(|_| End::Closed)?;
    let found = answer.recv().await.map_err(|_| End::Closed)?;
    Ok(lusers(shared, found))
}

/// `LUSERS` from the hub's counts and the connections still registering.
fn lusers(shared: &Services, found: Found) -> Lusers {
    let Found::Counts(c) = found else {
        return Lusers::default();
    };
    let unknown = shared.admission.waiting();
    Lusers {
        users: c.users,
        operators: c.operators,
        unknown,
        channels: c.rooms,
        local_users: c.local,
        // The hub keeps the peak of its own node only: the cluster's is at least that.
        max_users: c.users.max(c.peak_local),
        max_local_users: c.peak_local,
        servers: c.nodes,
    }
}
