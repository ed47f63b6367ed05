//! Private lines and `TAGMSG`: what the chat loop asks the hub for, and the echo a client with
//! `echo-message` gets of what it sent to a nick.
//!
//! Client-only tags (`+draft/react`, `+typing`) travel through the hub as opaque data it never
//! reads: on a line ([`crate::hub::event::Said::attached`],
//! [`crate::hub::event::Private::attached`]) or as a live-only signal to a room
//! ([`crate::hub::event::Signal`]). Only this door's renderer writes them out, to
//! `message-tags` clients. The history and the cluster log keep no tags.
//!
//! A `NOTICE` stays a notice all the way: the hub drops its refusals for it and the recipient's
//! IRC client gets a `NOTICE`, because RFC 2812 3.3.2 forbids answering one (it is what keeps
//! two bots from answering each other forever). CTCP other than `ACTION` (`VERSION`, `PING`,
//! `TIME`...) goes the same way, framing kept, and only IRC users see it: an nc or web user
//! shows nothing and answers nothing, so a query to one goes unanswered, as to a client that
//! ignores CTCP. A CTCP to a room is dropped: it would reach nobody but IRC users there.

use std::sync::Arc;

use super::chat::Me;
use super::render::origin;
use crate::clock::now_ms;
use crate::door::irc::caps::Cap;
use crate::door::irc::event::{Tagged, Whispered};
use crate::door::irc::names::channel_name;
use crate::door::irc::numerics::{ERR_CANNOTSENDTOCHAN, ERR_NOSUCHNICK};
use crate::door::irc::render::relay::{tagged, whispered};
use crate::door::irc::render::Ctx;
use crate::door::irc::request::Target;
use crate::hub::Request;
use crate::names::{Nick, RoomName};
use crate::vocab::{Kind, PrivateKind};

/// The kind of a `PRIVMSG` or `NOTICE` to a nick: a `/me` (CTCP `ACTION`) stays an action at
/// every door (a `NOTICE` stays a notice).
pub fn said_kind(kind: Kind, notice: bool) -> PrivateKind {
    match kind {
        Kind::Action if !notice => PrivateKind::Action,
        _ => kind_of(notice, false),
    }
}

/// A private line's kind, from whether it came as a `NOTICE` and whether it is CTCP.
pub fn kind_of(notice: bool, ctcp: bool) -> PrivateKind {
    match (notice, ctcp) {
        (false, false) => PrivateKind::Line,
        (true, false) => PrivateKind::Notice,
        (false, true) => PrivateKind::Ctcp,
        (true, true) => PrivateKind::CtcpReply,
    }
}

/// A private line of `kind` to `nick`, with the client-only tags of a `message-tags` sender;
/// echoed at once with `echo-message` (private lines are never stored). `None` (after `401`,
/// unless a notice) for a nick that cannot exist.
pub(super) fn say_to(
    ctx: Ctx<'_>,
    me: &Me,
    (nick, text, client_tags): (String, String, Option<String>),
    kind: PrivateKind,
    out: &mut Vec<u8>,
) -> Option<Request> {
    let Ok(to) = Nick::parse(&nick) else {
        if !kind.is_notice() {
            ERR_NOSUCHNICK.write(out, ctx.server, ctx.client, &[&nick], &[]);
        }
        return None;
    };
    let attached = tags_of(me, client_tags);
    if me.caps.has(Cap::EchoMessage) {
        whispered(&Whispered {
            at_ms: now_ms(),
            from: origin(ctx.server, &me.nick, me.account.clone()),
            to: to.clone(),
            kind: match kind {
                PrivateKind::Action => Kind::Action,
                _ => Kind::Message,
            },
            text: text.as_str().into(),
            notice: kind.is_notice(),
            client_tags: attached.clone(),
        })
        .write(ctx.caps, out);
    }
    Some(Request::Private {
        to,
        text,
        kind,
        attached,
    })
}

/// A `TAGMSG` (the request layer let it through only with `message-tags` and some client-only
/// tags): a signal to a room the client is in (the hub echoes it with `echo-message`), or a
/// private signal to a nick, echoed here.
pub(super) fn tagmsg(
    ctx: Ctx<'_>,
    me: &Me,
    rooms: &[RoomName],
    (target, client_tags): (Target, String),
    out: &mut Vec<u8>,
) -> Option<Request> {
    let data: Arc<str> = client_tags.into();
    match target {
        Target::Room(room) if !rooms.contains(&room) => {
            let channel = channel_name(&room);
            ERR_CANNOTSENDTOCHAN.write(out, ctx.server, ctx.client, &[&channel], &[]);
            None
        }
        Target::Room(room) => Some(Request::Signal { room, data }),
        Target::Nick(nick) => {
            let Ok(to) = Nick::parse(&nick) else {
                ERR_NOSUCHNICK.write(out, ctx.server, ctx.client, &[&nick], &[]);
                return None;
            };
            if me.caps.has(Cap::EchoMessage) {
                tagged(&Tagged {
                    at_ms: now_ms(),
                    from: origin(ctx.server, &me.nick, me.account.clone()),
                    target: to.to_string(),
                    client_tags: data.clone(),
                })
                .write(ctx.caps, out);
            }
            let (text, kind, attached) = (String::new(), PrivateKind::Line, Some(data));
            Some(Request::Private {
                to,
                text,
                kind,
                attached,
            })
        }
    }
}

/// The client-only tags worth carrying: only from a client that enabled `message-tags` (one
/// that did not may not send tags at all).
pub(super) fn tags_of(me: &Me, client_tags: Option<String>) -> Option<Arc<str>> {
    client_tags
        .filter(|t| !t.is_empty() && me.caps.has(Cap::MessageTags))
        .map(Into::into)
}
