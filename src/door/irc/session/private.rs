//! Private lines from an IRC user to a nick, on any door: the request to the hub and, for an
//! `echo-message` client, the echo written at once (a private line is never stored, so there
//! is nothing to wait for).
//!
//! A `NOTICE` stays a notice all the way: the hub drops its refusals for it and the recipient's
//! IRC client gets a `NOTICE`, because RFC 2812 3.3.2 forbids answering one (it is what keeps
//! two bots from answering each other forever). CTCP other than `ACTION` (`VERSION`, `PING`,
//! `TIME`...) goes the same way, framing kept, and only IRC users see it: an nc or web user
//! shows nothing and answers nothing, so a query to one goes unanswered, as to a client that
//! ignores CTCP. A CTCP to a room is dropped: it would reach nobody but IRC users there.

use crate::door::irc::message::Writer;
use crate::door::irc::numerics::ERR_NOSUCHNICK;
use crate::door::irc::render::Ctx;
use crate::hub::Request;
use crate::names::Nick;
use crate::vocab::PrivateKind;

use super::render::USER;

/// A private line's kind, from whether it came as a `NOTICE` and whether it is CTCP.
pub fn kind_of(notice: bool, ctcp: bool) -> PrivateKind {
    match (notice, ctcp) {
        (false, false) => PrivateKind::Line,
        (true, false) => PrivateKind::Notice,
        (false, true) => PrivateKind::Ctcp,
        (true, true) => PrivateKind::CtcpReply,
    }
}

/// The hub's request for a private line of `kind` to `nick`; `None` (with `401`, unless a
/// notice) for a name no user can have.
pub fn request(
    ctx: Ctx<'_>,
    echo: bool,
    nick: &str,
    text: String,
    kind: PrivateKind,
    out: &mut Vec<u8>,
) -> Option<Request> {
    let command = if kind.is_notice() {
        "NOTICE"
    } else {
        "PRIVMSG"
    };
    let Ok(to) = Nick::parse(nick) else {
        if !kind.is_notice() {
            ERR_NOSUCHNICK.write(out, ctx.server, ctx.client, &[nick], &[]);
        }
        return None;
    };
    if echo {
        let mask = format!("{}!{USER}@{}", ctx.client, ctx.server);
        Writer::new(out, "", Some(&mask), command)
            .param(to.as_str())
            .trailing(&text);
    }
    Some(Request::Private { to, text, kind })
}
