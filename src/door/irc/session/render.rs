//! The IRC door's renderers: the hub's events and replies as IRC lines.
//!
//! One is registered per combination of the capabilities that change relayed lines
//! (`server-time`, `message-tags`, `account-tag`, `extended-join`, `away-notify`: see
//! `Styles`), so that a relayed line is formatted once per combination present in a room, for
//! all its IRC users, whatever their number. Nothing here depends on the recipient but
//! [`Render::render_to`]'s, whose lines are addressed to it.
//!
//! The hub does not know IRC's `user@host`: a member is shown as `nick!~username@SERVER`, with
//! the user name its IRC client gave (`idents`), or `~u` for other doors' users, other nodes'
//! and replayed lines' senders, so a client sees one stable mask per nick while it is on.

use std::sync::Arc;

use super::lookup::member;
use crate::clock::now_ms;
use crate::door::irc::caps::CapSet;
use crate::door::irc::event::{self as irc, Change, Origin};
use crate::door::irc::message::Writer;
use crate::door::irc::names::channel_name;
use crate::door::irc::numerics::{
    ERR_CANNOTSENDTOCHAN, ERR_NICKNAMEINUSE, ERR_NOSUCHCHANNEL, ERR_NOSUCHNICK, ERR_NOTONCHANNEL,
    RPL_LIST, RPL_LISTEND, RPL_LISTSTART,
};
use crate::door::irc::render::relay::{change, joined_away, said, summary, tagged, whispered};
use crate::door::irc::render::{replies, Ctx};
use crate::hub::event::{Arrival, Event, Listed, Notice, Refusal, Reply, ServerNotice};
use crate::hub::render::{Personal, Render};
use crate::names::{Nick, RoomName};
use crate::vocab::{Departure, Dropped, Kind, PrivateKind, Removal};

/// The user part of replayed lines' masks (their senders may be long gone).
pub const USER: &str = super::idents::OTHER;

/// One flavour of IRC output.
pub struct IrcLines {
    server: Arc<str>,
    /// The capabilities every member of this flavour negotiated that change relayed lines.
    caps: CapSet,
}

impl IrcLines {
    /// The renderer for clients with `caps` (of `server-time` and `message-tags`).
    pub fn new(server: Arc<str>, caps: CapSet) -> IrcLines {
        IrcLines { server, caps }
    }

    fn origin(&self, nick: &Nick, account: Option<Arc<str>>) -> Origin {
        origin(&self.server, nick, account)
    }

    fn ctx<'a>(&'a self, me: &'a Nick) -> Ctx<'a> {
        Ctx {
            server: &self.server,
            client: me.as_str(),
            caps: self.caps,
        }
    }

    fn notice(&self, notice: &Notice, out: &mut Vec<u8>) {
        let at = now_ms();
        let who = |nick: &Nick| self.origin(nick, None);
        let ev = match notice {
            Notice::Joined { room, nick, listed } => {
                let ev = match listed {
                    Some(listed) => joined_as(room, &self.server, listed),
                    None => joined(room, who(nick)),
                };
                change(&ev, at).write(self.caps, out);
                // An away joiner: `away-notify` clients learn it at once.
                if let Some(away) = joined_away(&ev, at) {
                    away.write(self.caps, out);
                }
                return;
            }
            Notice::Away {
                nick,
                account,
                message,
                ..
            } => Change::Away {
                who: self.origin(nick, account.clone()),
                message: message.clone(),
            },
            Notice::Left { room, nick, why } => left(room, who(nick), why, |by| {
                Nick::parse(by).map_or_else(|_| who(nick), |by| who(&by))
            }),
            Notice::Renamed { old, new, .. } => Change::Renamed {
                who: who(old),
                to: new.clone(),
            },
            Notice::Topic { room, by, text } => match Nick::parse(by) {
                Ok(by) => Change::Topic {
                    room: room.clone(),
                    by: who(&by),
                    text: text.clone(),
                },
                // Set from the command line: the server sets it.
                Err(_) => {
                    Writer::new(out, "", Some(&self.server), "TOPIC")
                        .param(&channel_name(room))
                        .trailing(text.as_deref().unwrap_or(""));
                    return;
                }
            },
            Notice::Summary { room, changes } => {
                // A big room's storm: one NOTICE, not a JOIN or PART per person (docs/IRC.md,
                // "Big rooms").
                let of = |kind: Arrival| -> Vec<&Nick> {
                    changes
                        .iter()
                        .filter(|(a, _)| *a == kind)
                        .map(|(_, n)| n)
                        .collect()
                };
                let (came, went) = (of(Arrival::Joined), of(Arrival::Left));
                summary(&self.server, room, &came, &went, at).write(self.caps, out);
                return;
            }
        };
        change(&ev, at).write(self.caps, out);
    }

    fn reply(&self, me: &Nick, reply: &Reply, out: &mut Vec<u8>) {
        let ctx = self.ctx(me);
        let (server, client) = (ctx.server, ctx.client);
        match reply {
            Reply::Refused(refusal) => self.refused(ctx, refusal, out),
            Reply::Joined { room, me, .. } => {
                let ev = joined_as(room, &self.server, me);
                change(&ev, now_ms()).write(self.caps, out);
            }
            Reply::Parted { room, reason } => {
                let ev = Change::Parted {
                    room: room.clone(),
                    who: self.origin(me, None),
                    reason: reason.clone(),
                };
                change(&ev, now_ms()).write(self.caps, out);
            }
            // A page of `/who`: this door asks names with lookups (`lookup.rs`), on joining
            // too; kept so that the reply renders if it is ever asked.
            Reply::Who(page) => {
                let Some(room) = &page.room else { return };
                let members: Vec<irc::Member> = (page.items.iter())
                    .map(|l| member(&self.server, l.clone()))
                    .collect();
                replies::names(ctx, room, &members, out);
            }
            Reply::Rooms(page) => {
                RPL_LISTSTART.write(out, server, client, &[], &[]);
                for (room, users) in &page.items {
                    let users = users.to_string();
                    RPL_LIST.write_text(out, server, client, &[&channel_name(room), &users], "");
                }
                RPL_LISTEND.write(out, server, client, &[], &[]);
            }
            Reply::Topic { room, topic } => {
                let topic = topic.as_ref().map(|t| irc::Topic {
                    text: t.text.clone(),
                    set_by: t.by.clone(),
                    set_at_ms: 0,
                });
                replies::topic(ctx, room, topic.as_ref(), true, out);
            }
            // The recipient of a private line is away: `301`.
            Reply::PrivateSent {
                to,
                away: Some(away),
                ..
            } => replies::away_reply(ctx, to.as_str(), away, out),
            // Answered by the door from its own table.
            Reply::Help { .. } | Reply::PrivateSent { .. } => {}
            Reply::Removed(removal) => {
                let text = match removal {
                    Removal::Kicked { by, reason } => {
                        with_reason(&format!("Kicked by {by}"), reason)
                    }
                    Removal::Banned { by, reason, .. } => {
                        with_reason(&format!("Banned by {by}"), reason)
                    }
                };
                replies::error(&text, out);
            }
            Reply::NameTaken { nick, holder } => replies::error(
                &format!("Your nick {nick} was taken on {holder} while this server was cut off"),
                out,
            ),
            other => notice_to(server, client, &describe(other), out),
        }
    }

    fn refused(&self, ctx: Ctx<'_>, refusal: &Refusal, out: &mut Vec<u8>) {
        let (server, client) = (ctx.server, ctx.client);
        match refusal {
            Refusal::NameTaken(nick)
            | Refusal::NameLooksLike(nick)
            | Refusal::NameHeld(nick, _) => {
                ERR_NICKNAMEINUSE.write(out, server, client, &[nick.as_str()], &[]);
            }
            // IRC ignores a JOIN to a channel the user is in, and a NICK to its own nick.
            Refusal::AlreadyIn(_) | Refusal::AlreadyKnownAs(_) => {}
            Refusal::RoomLooksLike(room, other) => ERR_NOSUCHCHANNEL.write_text(
                out,
                server,
                client,
                &[&channel_name(room)],
                &format!("Looks too much like {}", channel_name(other)),
            ),
            Refusal::NotInRoom(room) => {
                ERR_NOTONCHANNEL.write(out, server, client, &[&channel_name(room)], &[]);
            }
            Refusal::NoSuchUser(nick) => {
                ERR_NOSUCHNICK.write(out, server, client, &[nick.as_str()], &[]);
            }
            Refusal::Muted => {
                ERR_CANNOTSENDTOCHAN.write_text(out, server, client, &["*"], "You are muted")
            }
            other => notice_to(server, client, &refusal_text(other), out),
        }
    }
}

impl Render for IrcLines {
    fn render(&self, event: &Event, out: &mut Vec<u8>) {
        match event {
            Event::Said(s) => said(&irc::Said {
                id: s.id,
                at_ms: s.at_ms,
                room: s.room.clone(),
                from: self.origin(&s.from, s.account.clone()),
                kind: s.kind,
                text: s.text.clone(),
                notice: false,
                client_tags: s.attached.clone(),
            })
            .write(self.caps, out),
            Event::Notice(notice) => self.notice(notice, out),
            Event::Server(notice) => notice_to(&self.server, "*", server_text(*notice), out),
            // Only this door writes signals: their data is client-only tags.
            Event::Signal(s) => tagged(&irc::Tagged {
                at_ms: now_ms(),
                from: self.origin(&s.from, s.account.clone()),
                target: channel_name(&s.room),
                client_tags: s.data.clone(),
            })
            .write(self.caps, out),
        }
    }

    fn render_to(&self, me: &Nick, personal: Personal<'_>, out: &mut Vec<u8>) {
        match personal {
            // `attached` is only ever written by this door: client-only tags.
            Personal::Private(p) if p.is_signal() => {
                if let Some(tags) = &p.attached {
                    tagged(&irc::Tagged {
                        at_ms: now_ms(),
                        from: self.origin(&p.from, p.account.clone()),
                        target: me.to_string(),
                        client_tags: tags.clone(),
                    })
                    .write(self.caps, out);
                }
            }
            Personal::Private(p) => whispered(&irc::Whispered {
                at_ms: now_ms(),
                from: self.origin(&p.from, p.account.clone()),
                to: me.clone(),
                kind: match p.kind {
                    PrivateKind::Action => Kind::Action,
                    _ => Kind::Message,
                },
                text: p.text.clone(),
                notice: p.kind.is_notice(),
                client_tags: p.attached.clone(),
            })
            .write(self.caps, out),
            Personal::Reply(reply) => self.reply(me, reply, out),
        }
    }
}

/// `nick!~username@server`.
pub fn origin(server: &str, nick: &Nick, account: Option<Arc<str>>) -> Origin {
    Origin {
        nick: nick.clone(),
        user: super::idents::user(nick),
        host: server.into(),
        account,
    }
}

fn joined(room: &RoomName, who: Origin) -> Change {
    Change::Joined {
        room: room.clone(),
        who,
        realname: "".into(),
        away: None,
    }
}

/// The join of a member of this node, with what `extended-join` and `away-notify` show.
fn joined_as(room: &RoomName, server: &str, listed: &Listed) -> Change {
    Change::Joined {
        room: room.clone(),
        who: origin(server, &listed.nick, listed.account.clone()),
        realname: listed.realname.clone().unwrap_or_else(|| "".into()),
        away: listed.away.clone(),
    }
}

/// A departure as IRC shows it: `PART`, `KICK` or `QUIT`.
fn left(room: &RoomName, who: Origin, why: &Departure, by: impl Fn(&str) -> Origin) -> Change {
    let quit = |reason: Option<Arc<str>>| Change::Quit {
        who: who.clone(),
        reason,
    };
    match why {
        Departure::Quit(reason) => quit(reason.clone()),
        Departure::Moved(_) => Change::Parted {
            room: room.clone(),
            who: who.clone(),
            reason: None,
        },
        Departure::Parted(reason) => Change::Parted {
            room: room.clone(),
            who: who.clone(),
            reason: reason.clone(),
        },
        Departure::Removed(Removal::Kicked { by: kicker, reason }) => Change::Kicked {
            room: room.clone(),
            by: by(kicker),
            target: who.nick.clone(),
            reason: reason.clone(),
        },
        Departure::Removed(Removal::Banned {
            by: banner, reason, ..
        }) => Change::Kicked {
            room: room.clone(),
            by: by(banner),
            target: who.nick.clone(),
            reason: Some(with_reason("Banned", reason).into()),
        },
        Departure::Dropped(dropped) => quit(Some(
            match dropped {
                Dropped::TooSlow => "Dropped: not reading fast enough",
                _ => "Dropped: its server was lost",
            }
            .into(),
        )),
    }
}

fn with_reason(what: &str, reason: &Option<Arc<str>>) -> String {
    match reason {
        Some(reason) => format!("{what}: {reason}"),
        None => what.to_owned(),
    }
}

/// `:server NOTICE target :text`.
pub fn notice_to(server: &str, target: &str, text: &str, out: &mut Vec<u8>) {
    Writer::new(out, "", Some(server), "NOTICE")
        .param(target)
        .trailing(text);
}

fn server_text(notice: ServerNotice) -> &'static str {
    match notice {
        ServerNotice::ShuttingDown => "The server is shutting down",
        ServerNotice::HistoryPaused => "Chat is paused: the history cannot be written",
        ServerNotice::HistoryResumed => "Chat resumed",
        ServerNotice::NoticesSkipped(_) => "Some room notices were skipped",
        ServerNotice::ClusterPaused => "Chat is paused: the cluster is unreachable",
        ServerNotice::ClusterResumed => "Chat resumed: the cluster is back",
    }
}

fn refusal_text(refusal: &Refusal) -> String {
    match refusal {
        Refusal::WhichRoom => "Say which channel".to_owned(),
        Refusal::LooksLikeNotice => "That action reads like a server notice: not sent".to_owned(),
        Refusal::HistoryFull | Refusal::ClusterPaused => {
            "Not sent: chat is paused, try again shortly".to_owned()
        }
        Refusal::PrivateFlood(nick) => format!("Not sent: {nick} gets too many private lines"),
        Refusal::OperatorsOnly(_) => "Permission Denied- You're not an IRC operator".to_owned(),
        Refusal::ShuttingDown => "The server is shutting down".to_owned(),
        Refusal::AccountsUnavailable => "Accounts are unavailable, try again".to_owned(),
        other => format!("Refused: {other:?}"),
    }
}

fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Kicked(nick) => format!("Kicked {nick}"),
        Reply::BanSet { target, .. } => format!("Banned {target}"),
        Reply::Unbanned(target) => format!("Unbanned {target}"),
        Reply::MuteSet { nick, .. } => format!("Muted {nick}"),
        Reply::Unmuted(nick) => format!("Unmuted {nick}"),
        Reply::YouWereMuted { by, .. } => format!("You were muted by {by}"),
        Reply::YouAreUnmuted => "You are no longer muted".to_owned(),
        Reply::Ignoring(nick) => format!("Ignoring {nick}"),
        Reply::Unignored(nick) => format!("No longer ignoring {nick}"),
        Reply::Role { name, operator } => {
            format!(
                "{name} is {}an operator",
                if *operator { "" } else { "no longer " }
            )
        }
        Reply::AccountRemoved { name, .. } => format!("The account {name} was removed"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::caps::Cap;

    fn nick(n: &str) -> Nick {
        Nick::parse(n).unwrap()
    }

    #[test]
    fn a_public_line_is_a_privmsg_and_timed_clients_get_the_time() {
        let said = Event::Said(crate::hub::event::Said {
            id: 7,
            at_ms: 0,
            room: RoomName::lobby(),
            from: nick("bob"),
            account: None,
            kind: Kind::Message,
            text: "hi there".into(),
            attached: None,
        });
        let mut out = Vec::new();
        IrcLines::new("srv".into(), CapSet::default()).render(&said, &mut out);
        assert_eq!(out, b":bob!~u@srv PRIVMSG #lobby :hi there\r\n");
        out.clear();
        IrcLines::new("srv".into(), CapSet::of(&[Cap::ServerTime])).render(&said, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "@time=1970-01-01T00:00:00.000Z :bob!~u@srv PRIVMSG #lobby :hi there\r\n"
        );
    }

    #[test]
    fn departures_are_part_quit_or_kick() {
        let r = IrcLines::new("srv".into(), CapSet::default());
        let mut out = Vec::new();
        for why in [
            Departure::Quit(Some("bye".into())),
            Departure::Parted(None),
            Departure::Removed(Removal::Kicked {
                by: "op".into(),
                reason: None,
            }),
        ] {
            r.render(
                &Event::Notice(Notice::Left {
                    room: RoomName::lobby(),
                    nick: nick("bob"),
                    why,
                }),
                &mut out,
            );
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ":bob!~u@srv QUIT :Quit: bye\r\n\
             :bob!~u@srv PART #lobby\r\n\
             :op!~u@srv KICK #lobby bob :op\r\n"
        );
    }

    #[test]
    fn refusals_are_numerics() {
        let r = IrcLines::new("srv".into(), CapSet::default());
        let mut out = Vec::new();
        let refused = Reply::Refused(Refusal::NoSuchUser(nick("zed")));
        r.render_to(&nick("me"), Personal::Reply(&refused), &mut out);
        assert_eq!(out, b":srv 401 me zed :No such nick/channel\r\n");
    }
}
