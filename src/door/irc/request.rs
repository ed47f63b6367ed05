//! A registered user's commands, as requests for the hub.
//!
//! [`request`] takes a command that passed [`crate::door::irc::commands::check`] and either
//! answers it on the spot (`PING`, `CAP`, `HELP`, a bad channel name, a missing text, a user
//! mode) or turns it into a typed [`Request`] for the hub, its text already sanitized. What
//! needs the hub's knowledge (is that nick online, is the user in that room) is the hub's to
//! answer, with the numerics in [`crate::door::irc::numerics`].
//!
//! `NOTICE` never gets an error back, as the protocol requires of every automatic reply to a
//! notice.

use crate::door::irc::caps::{truncate, Cap, Caps};
use crate::door::irc::commands::{help, Verb};
use crate::door::irc::format::{ctcp, for_terminal, from_irc, Ctcp};
use crate::door::irc::history;
use crate::door::irc::message::Message;
use crate::door::irc::message::Writer;
use crate::door::irc::modes::{room_mode, user_mode, user_modes_shown, RoomMode, UserMode};
use crate::door::irc::names::{self, NickRefusal};
use crate::door::irc::numerics::{
    ERR_ALREADYREGISTERED, ERR_CHANOPRIVSNEEDED, ERR_ERRONEUSNICKNAME, ERR_INPUTTOOLONG,
    ERR_NONICKNAMEGIVEN, ERR_NOOPERHOST, ERR_NORECIPIENT, ERR_NOSUCHCHANNEL, ERR_NOSUCHNICK,
    ERR_NOTEXTTOSEND, ERR_UMODEUNKNOWNFLAG, ERR_UNKNOWNMODE, ERR_USERSDONTMATCH, RPL_UMODEIS,
};
use crate::door::irc::registration::pong;
use crate::door::irc::render::replies::{names_end, Whox};
use crate::door::irc::render::{room_for_text, Ctx};
use crate::names::{Nick, RoomName};
use crate::storage::SearchQuery;
use crate::vocab::Kind;

/// The longest away message kept, in bytes (advertised as `AWAYLEN`). Not configurable.
pub const AWAYLEN: usize = 390;

/// Whom a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Room(RoomName),
    /// A nick as written; the hub finds it on any door.
    Nick(String),
}

/// What a registered IRC user asks the hub for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Join(Vec<RoomName>),
    /// `JOIN 0`: leave every room.
    PartAll,
    Part {
        rooms: Vec<RoomName>,
        reason: Option<String>,
    },
    /// A line: stored and relayed to a room, or private to a nick.
    Say {
        target: Target,
        kind: Kind,
        text: String,
        notice: bool,
        client_tags: Option<String>,
    },
    /// A CTCP request other than `ACTION`: for IRC users only, never stored.
    Ctcp {
        target: Target,
        text: String,
        notice: bool,
    },
    TagMsg {
        target: Target,
        client_tags: String,
    },
    /// `TOPIC #room`: the topic.
    ShowTopic(RoomName),
    /// `TOPIC #room :text` by an operator (`None` clears it).
    SetTopic {
        room: RoomName,
        text: Option<String>,
    },
    /// `NAMES`: the listed rooms, or (empty) every room the user is in.
    Names(Vec<RoomName>),
    /// `LIST`: the listed rooms, or (empty) every room with people in it.
    List(Vec<RoomName>),
    Who {
        mask: String,
        whox: Option<Whox>,
    },
    Whois(String),
    ShowModes(RoomName),
    ListBans(RoomName),
    Ban {
        room: RoomName,
        set: bool,
        mask: String,
    },
    Kick {
        room: RoomName,
        nick: String,
        reason: Option<String>,
    },
    Kill {
        nick: String,
        reason: Option<String>,
    },
    Away(Option<String>),
    Rename(Nick),
    History(history::Request),
    /// `SEARCH [#room] [text]`: a new search (`query`), or older matches of the last one; in
    /// the room named, or the user's only room.
    Search {
        room: Option<RoomName>,
        query: Option<SearchQuery>,
    },
    Lusers,
    Motd,
    Userhost(Vec<String>),
    Ison(Vec<String>),
    /// The client answered the server's `PING`.
    Pong,
    Quit(Option<String>),
}

/// The user sending the command.
#[derive(Debug, Clone, Copy)]
pub struct Me<'a> {
    pub ctx: Ctx<'a>,
    /// `nick!user@host`, for the length of relayed lines.
    pub mask: &'a str,
    pub operator: bool,
    /// The user set `+i` (shown in `221`, nothing more).
    pub invisible: bool,
}

/// Answers `msg` or turns it into a [`Request`]. `caps` is the connection's negotiation, for
/// `CAP` after registration; `chathistory_max` bounds `CHATHISTORY` limits.
pub fn request(
    verb: Verb,
    msg: &Message<'_>,
    me: Me<'_>,
    caps: &mut Caps,
    chathistory_max: usize,
    out: &mut Vec<u8>,
) -> Option<Request> {
    let ctx = me.ctx;
    let (server, client) = (ctx.server, ctx.client);
    let p = |i: usize| msg.param(i);
    // Reasons, topics and away messages reach every door's users, unlike a message's text
    // (kept with its formatting for IRC users): no formatting code may reach a terminal.
    let text_param = |i: usize| {
        p(i).filter(|t| !t.is_empty())
            .map(|t| for_terminal(&from_irc(t)).trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    match verb {
        Verb::Ping => {
            pong(out, server, p(0).unwrap_or(""));
            None
        }
        Verb::Pong => Some(Request::Pong),
        Verb::Cap => {
            caps.handle(msg.params(), true, server, client, out);
            None
        }
        Verb::Help => {
            help(out, server, client, p(0), me.operator);
            None
        }
        Verb::Authenticate | Verb::Pass | Verb::User => {
            ERR_ALREADYREGISTERED.write(out, server, client, &[], &[]);
            None
        }
        Verb::Oper => {
            ERR_NOOPERHOST.write(out, server, client, &[], &[]);
            None
        }
        Verb::Quit => Some(Request::Quit(text_param(0))),
        Verb::Nick => match names::nick(p(0).unwrap_or("")) {
            Ok(nick) if nick.as_str() == client => None,
            Ok(nick) => Some(Request::Rename(nick)),
            Err(NickRefusal::Missing) => {
                ERR_NONICKNAMEGIVEN.write(out, server, client, &[], &[]);
                None
            }
            Err(refusal) => {
                let raw = truncate(p(0).unwrap_or(""), 64);
                let shown = if names::irc_safe(raw) { raw } else { "*" };
                ERR_ERRONEUSNICKNAME.write(
                    out,
                    server,
                    client,
                    &[shown],
                    &[("reason", &refusal.reason())],
                );
                None
            }
        },
        Verb::Join => {
            let list = p(0).unwrap_or("");
            if list == "0" {
                return Some(Request::PartAll);
            }
            let rooms = rooms_or_403(ctx, list, out);
            (!rooms.is_empty()).then_some(Request::Join(rooms))
        }
        Verb::Part => {
            let rooms = rooms_or_403(ctx, p(0).unwrap_or(""), out);
            (!rooms.is_empty()).then(|| Request::Part {
                rooms,
                reason: text_param(1),
            })
        }
        Verb::Privmsg | Verb::Notice => say(verb == Verb::Notice, msg, me, out),
        Verb::TagMsg => {
            let client_tags = msg.tags.client_only();
            let target = target(p(0).unwrap_or(""))?;
            (!client_tags.is_empty() && ctx.caps.contains(Cap::MessageTags)).then_some(
                Request::TagMsg {
                    target,
                    client_tags,
                },
            )
        }
        Verb::Topic => {
            let room = room_or_403(ctx, p(0).unwrap_or(""), out)?;
            match p(1) {
                None => Some(Request::ShowTopic(room)),
                Some(_) if !me.operator => {
                    chanop_needed(ctx, &room, out);
                    None
                }
                Some(_) => Some(Request::SetTopic {
                    room,
                    text: text_param(1),
                }),
            }
        }
        Verb::Names => {
            let mut rooms = Vec::new();
            for raw in p(0).unwrap_or("").split(',').filter(|r| !r.is_empty()) {
                match names::channel(raw) {
                    Some(room) => rooms.push(room),
                    None => names_end(ctx, raw, out),
                }
            }
            (p(0).is_none() || !rooms.is_empty()).then_some(Request::Names(rooms))
        }
        Verb::List => {
            let rooms = p(0).map_or_else(Vec::new, |list| {
                list.split(',').filter_map(names::channel).collect()
            });
            if p(0).is_some() && rooms.is_empty() {
                crate::door::irc::render::replies::list(ctx, &[], out);
                return None;
            }
            Some(Request::List(rooms))
        }
        Verb::Who => Some(Request::Who {
            mask: p(0).unwrap_or("*").to_owned(),
            whox: Whox::parse(p(1)),
        }),
        Verb::Whois => match msg.params().last() {
            Some(nick) if !nick.is_empty() => Some(Request::Whois((*nick).to_owned())),
            _ => {
                ERR_NONICKNAMEGIVEN.write(out, server, client, &[], &[]);
                None
            }
        },
        Verb::Mode => mode(msg, me, out),
        Verb::Kick => {
            let room = room_or_403(ctx, p(0).unwrap_or(""), out)?;
            if !me.operator {
                chanop_needed(ctx, &room, out);
                return None;
            }
            let nick = p(1)?.split(',').next().unwrap_or("").to_owned();
            Some(Request::Kick {
                room,
                nick,
                reason: text_param(2),
            })
        }
        Verb::Kill => Some(Request::Kill {
            nick: p(0)?.to_owned(),
            reason: text_param(1),
        }),
        Verb::Away => Some(Request::Away(
            text_param(0).map(|t| truncate(&t, AWAYLEN).to_owned()),
        )),
        Verb::ChatHistory => match history::parse(msg.params(), chathistory_max) {
            Ok(req) => Some(Request::History(req)),
            Err(failure) => {
                failure.write(ctx, out);
                None
            }
        },
        Verb::Search => search(msg, ctx, out),
        Verb::Lusers => Some(Request::Lusers),
        Verb::Motd => Some(Request::Motd),
        Verb::Userhost => Some(Request::Userhost(
            msg.params().iter().take(5).map(|s| s.to_string()).collect(),
        )),
        Verb::Ison => Some(Request::Ison(
            msg.params()
                .iter()
                .flat_map(|s| s.split(' '))
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
    }
}

/// `PRIVMSG` and `NOTICE`.
fn say(notice: bool, msg: &Message<'_>, me: Me<'_>, out: &mut Vec<u8>) -> Option<Request> {
    let ctx = me.ctx;
    let (server, client) = (ctx.server, ctx.client);
    let command = if notice { "NOTICE" } else { "PRIVMSG" };
    // No error ever answers a notice.
    let mut errors = Vec::new();
    let sink = if notice { &mut errors } else { out };
    let Some(raw_target) = msg.param(0).filter(|t| !t.is_empty()) else {
        ERR_NORECIPIENT.write(sink, server, client, &[], &[("command", command)]);
        return None;
    };
    // One target per message (`TARGMAX=PRIVMSG:1`): the rest of a list is dropped.
    let raw_target = raw_target.split(',').next().unwrap_or(raw_target);
    let Some(target) = target(raw_target) else {
        let numeric = if raw_target.starts_with('#') {
            ERR_NOSUCHCHANNEL
        } else {
            ERR_NOSUCHNICK
        };
        numeric.write(sink, server, client, &[truncate(raw_target, 64)], &[]);
        return None;
    };
    let raw_text = msg.param(1).unwrap_or("");
    let shown_target = match &target {
        Target::Room(room) => names::channel_name(room),
        Target::Nick(nick) => nick.clone(),
    };
    if raw_text.len() > room_for_text(me.mask, command, &shown_target) {
        // It would not fit in one line to its recipients: refused whole, never cut.
        ERR_INPUTTOOLONG.write(sink, server, client, &[], &[]);
        return None;
    }
    let (kind, text) = match ctcp(raw_text) {
        Ctcp::Text(text) => (Kind::Message, text),
        Ctcp::Action(text) => (Kind::Action, text),
        Ctcp::Other { command, params } => {
            // Only the framing is CTCP's: what it frames is sanitized as any text is, so no
            // terminal escape reaches the recipient's screen or logs.
            let inner = from_irc(format!("{command} {params}").trim_end());
            let text = format!("\u{1}{inner}\u{1}");
            return Some(Request::Ctcp {
                target,
                text,
                notice,
            });
        }
    };
    let text = from_irc(text);
    // Only formatting codes (`\x02`, a colour) would reach other doors as an empty line.
    if for_terminal(&text).trim().is_empty() {
        ERR_NOTEXTTOSEND.write(sink, server, client, &[], &[]);
        return None;
    }
    let client_tags = Some(msg.tags.client_only()).filter(|t| !t.is_empty());
    Some(Request::Say {
        target,
        kind,
        text,
        notice,
        client_tags,
    })
}

/// `SEARCH [#room] [text]`: irssi and WeeChat send `/search foo bar` as `SEARCH foo bar`, so
/// the words may come as several parameters. A query the parser refuses is answered with one
/// `NOTICE` saying why.
fn search(msg: &Message<'_>, ctx: Ctx<'_>, out: &mut Vec<u8>) -> Option<Request> {
    let params = msg.params();
    let (room, words) = match params.first() {
        Some(first) if first.starts_with('#') => {
            (Some(room_or_403(ctx, first, out)?), &params[1..])
        }
        _ => (None, params),
    };
    let text = from_irc(&words.join(" "));
    let query = match text.trim() {
        "" => None,
        text => match SearchQuery::parse(text) {
            Ok(query) => Some(query),
            Err(e) => {
                Writer::new(out, "", Some(ctx.server), "NOTICE")
                    .param(ctx.client)
                    .trailing(&format!("search: {e}"));
                return None;
            }
        },
    };
    Some(Request::Search { room, query })
}

/// `MODE #room ...` and `MODE nick ...`.
fn mode(msg: &Message<'_>, me: Me<'_>, out: &mut Vec<u8>) -> Option<Request> {
    let ctx = me.ctx;
    let (server, client) = (ctx.server, ctx.client);
    let target = msg.param(0).unwrap_or("");
    if !target.starts_with('#') {
        if names::fold(target) != names::fold(client) {
            ERR_USERSDONTMATCH.write(out, server, client, &[], &[]);
            return None;
        }
        match user_mode(msg.param(1)) {
            UserMode::Show => RPL_UMODEIS.write(
                out,
                server,
                client,
                &[&user_modes_shown(me.operator, me.invisible)],
                &[],
            ),
            UserMode::Changed(changes) => Writer::new(out, "", Some(client), "MODE")
                .param(client)
                .trailing(&changes),
            UserMode::Unknown => ERR_UMODEUNKNOWNFLAG.write(out, server, client, &[], &[]),
        }
        return None;
    }
    let room = room_or_403(ctx, target, out)?;
    match room_mode(msg.param(1), msg.param(2)) {
        RoomMode::Show => Some(Request::ShowModes(room)),
        RoomMode::ListBans => Some(Request::ListBans(room)),
        RoomMode::Unknown(c) => {
            ERR_UNKNOWNMODE.write(out, server, client, &[&c.to_string()], &[]);
            None
        }
        _ if !me.operator => {
            chanop_needed(ctx, &room, out);
            None
        }
        RoomMode::Ban { set, mask } => Some(Request::Ban { room, set, mask }),
        RoomMode::Fixed { removing: false } => None,
        RoomMode::Fixed { removing: true } => {
            chanop_needed(ctx, &room, out);
            None
        }
    }
}

fn target(raw: &str) -> Option<Target> {
    if raw.starts_with('#') {
        names::channel(raw).map(Target::Room)
    } else {
        names::irc_safe(raw).then(|| Target::Nick(raw.to_owned()))
    }
}

fn room_or_403(ctx: Ctx<'_>, raw: &str, out: &mut Vec<u8>) -> Option<RoomName> {
    let room = names::channel(raw);
    if room.is_none() {
        ERR_NOSUCHCHANNEL.write(
            out,
            ctx.server,
            ctx.client,
            &[truncate(if raw.is_empty() { "*" } else { raw }, 64)],
            &[],
        );
    }
    room
}

fn rooms_or_403(ctx: Ctx<'_>, list: &str, out: &mut Vec<u8>) -> Vec<RoomName> {
    let mut rooms: Vec<RoomName> = Vec::new();
    for raw in list.split(',').filter(|r| !r.is_empty()) {
        if let Some(room) = room_or_403(ctx, raw, out) {
            if !rooms.contains(&room) {
                rooms.push(room);
            }
        }
    }
    rooms
}

fn chanop_needed(ctx: Ctx<'_>, room: &RoomName, out: &mut Vec<u8>) {
    ERR_CHANOPRIVSNEEDED.write(
        out,
        ctx.server,
        ctx.client,
        &[&names::channel_name(room)],
        &[],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::caps::{default_offer, CapSet};
    use crate::door::irc::commands::check;
    use crate::door::irc::message::parse;
    use crate::door::irc::testing::{commands, replies};

    /// Runs `line` from `foo` (an operator or not); returns the request and the reply codes.
    fn run_as(line: &str, operator: bool, caps: CapSet) -> (Option<Request>, Vec<String>) {
        let msg = parse(line.as_bytes()).unwrap();
        let verb = check(&msg, true, operator).expect("passes the generic checks");
        let me = Me {
            ctx: Ctx {
                server: "srv",
                client: "foo",
                caps,
            },
            mask: "foo!~u@host.example",
            operator,
            invisible: false,
        };
        let mut negotiation = Caps::new(default_offer());
        let mut out = Vec::new();
        let req = request(verb, &msg, me, &mut negotiation, 100, &mut out);
        (req, commands(&out))
    }

    fn run(line: &str) -> (Option<Request>, Vec<String>) {
        run_as(line, false, CapSet::default())
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    /// irctest messages: 411 without a target, 412 without text; no reply ever to a NOTICE.
    #[test]
    fn privmsg_errors_and_silent_notices() {
        assert_eq!(run("PRIVMSG"), (None, vec!["411".into()]));
        assert_eq!(run("PRIVMSG #chan :"), (None, vec!["412".into()]));
        assert_eq!(run("PRIVMSG #chan :\u{1b}[2J"), (None, vec!["412".into()]));
        assert_eq!(
            run("PRIVMSG #chan :\u{2}\u{3}04\u{f}"),
            (None, vec!["412".into()])
        );
        assert_eq!(run("PRIVMSG #chan :\u{1}ACTION \u{2}\u{1}").1, ["412"]);
        assert_eq!(
            run("PRIVMSG #bad,name :x").1,
            Vec::<String>::new(),
            "first target only"
        );
        assert_eq!(run("PRIVMSG #a:b :x").1, ["403"]);
        assert_eq!(run("PRIVMSG a!b :x").1, ["401"]);
        for line in [
            "NOTICE",
            "NOTICE #chan :",
            "NOTICE #a:b :x",
            "NOTICE a!b :x",
        ] {
            assert_eq!(run(line), (None, vec![]), "{line}");
        }
    }

    #[test]
    fn privmsg_actions_ctcp_and_tags() {
        let (req, _) = run("@+draft/reply=5;time=x PRIVMSG #Chan :\u{1}ACTION waves\u{1}");
        assert_eq!(
            req,
            Some(Request::Say {
                target: Target::Room(room("chan")),
                kind: Kind::Action,
                text: "waves".into(),
                notice: false,
                client_tags: Some("+draft/reply=5".into())
            })
        );
        let (req, _) = run("NOTICE bar :\u{2}hi\u{2}");
        assert_eq!(
            req,
            Some(Request::Say {
                target: Target::Nick("bar".into()),
                kind: Kind::Message,
                text: "\u{2}hi\u{2}".into(),
                notice: true,
                client_tags: None
            })
        );
        let (req, _) = run("PRIVMSG bar :\u{1}VERSION\u{1}");
        assert_eq!(
            req,
            Some(Request::Ctcp {
                target: Target::Nick("bar".into()),
                text: "\u{1}VERSION\u{1}".into(),
                notice: false
            })
        );
        let (req, _) = run("NOTICE bar :\u{1}VERSION x\u{1b}[2J\u{7}y\u{1}");
        let Some(Request::Ctcp { text, notice, .. }) = req else {
            panic!("a CTCP reply: {req:?}")
        };
        assert!(notice);
        assert!(
            text.starts_with("\u{1}VERSION x") && text.ends_with("y\u{1}"),
            "{text:?}"
        );
        let inner = &text[1..text.len() - 1];
        assert!(!inner.chars().any(|c| c.is_control()), "{text:?}");
    }

    /// irctest buffering: a text that would not fit in one relayed line is refused with 417,
    /// and only then.
    #[test]
    fn too_long_to_relay_is_417() {
        let room = room_for_text("foo!~u@host.example", "PRIVMSG", "nick2");
        let fits = format!("PRIVMSG nick2 :{}", "a".repeat(room));
        assert!(matches!(run(&fits).0, Some(Request::Say { .. })));
        let over = format!("PRIVMSG nick2 :{}", "a".repeat(room + 1));
        assert_eq!(run(&over), (None, vec!["417".into()]));
    }

    #[test]
    fn join_part_and_bad_names() {
        assert_eq!(
            run("JOIN #a,b,#A,#c"),
            (
                Some(Request::Join(vec![room("a"), room("c")])),
                vec!["403".into()]
            )
        );
        assert_eq!(run("JOIN 0").0, Some(Request::PartAll));
        assert_eq!(run("JOIN b"), (None, vec!["403".into()]));
        assert_eq!(
            run("PART #a :bye everyone").0,
            Some(Request::Part {
                rooms: vec![room("a")],
                reason: Some("bye everyone".into())
            })
        );
        // Reasons reach terminals: no formatting codes, no escape sequences.
        assert_eq!(
            run("PART #a :\u{2}bye\u{f} \u{3}4,5all\u{1b}[2J").0,
            Some(Request::Part {
                rooms: vec![room("a")],
                reason: Some("bye all".into())
            })
        );
        assert_eq!(
            run("QUIT :\u{1b}[31mred\u{1d}").0,
            Some(Request::Quit(Some("red".into())))
        );
    }

    /// irctest topic and kick: non-operators get 482; anyone may read the topic.
    #[test]
    fn operators_only_where_it_matters() {
        assert_eq!(run("TOPIC #chan").0, Some(Request::ShowTopic(room("chan"))));
        assert_eq!(run("TOPIC #chan :T0P1C"), (None, vec!["482".into()]));
        assert_eq!(
            run_as("TOPIC #chan :T0P1C", true, CapSet::default()).0,
            Some(Request::SetTopic {
                room: room("chan"),
                text: Some("T0P1C".into())
            })
        );
        assert_eq!(
            run_as("TOPIC #chan :", true, CapSet::default()).0,
            Some(Request::SetTopic {
                room: room("chan"),
                text: None
            })
        );
        assert_eq!(run("KICK #chan bar :bye"), (None, vec!["482".into()]));
        assert_eq!(run("KICK #nope,x bar").1, ["403"]);
        assert_eq!(
            run_as("KICK #chan bar,baz", true, CapSet::default()).0,
            Some(Request::Kick {
                room: room("chan"),
                nick: "bar".into(),
                reason: None
            })
        );
    }

    #[test]
    fn modes() {
        assert_eq!(run("MODE #chan").0, Some(Request::ShowModes(room("chan"))));
        assert_eq!(
            run("MODE #chan +b").0,
            Some(Request::ListBans(room("chan")))
        );
        assert_eq!(run("MODE #chan +b bar!*@*"), (None, vec!["482".into()]));
        assert_eq!(
            run_as("MODE #chan -b bar", true, CapSet::default()).0,
            Some(Request::Ban {
                room: room("chan"),
                set: false,
                mask: "bar!*@*".into()
            })
        );
        assert_eq!(run("MODE #chan +int"), (None, vec!["472".into()]));
        assert_eq!(
            run_as("MODE #chan +nt", true, CapSet::default()),
            (None, vec![])
        );
        assert_eq!(run("MODE foo"), (None, vec!["221".into()]));
        assert_eq!(run("MODE foo +i"), (None, vec!["MODE".into()]));
        assert_eq!(run("MODE foo +T"), (None, vec!["501".into()]));
        assert_eq!(run("MODE bar +i"), (None, vec!["502".into()]));
    }

    /// irctest regressions testCaseChanges: the very same nick is no change at all.
    #[test]
    fn nick_changes() {
        assert_eq!(run("NICK foo"), (None, vec![]));
        assert_eq!(
            run("NICK Foo").0,
            Some(Request::Rename(Nick::parse("Foo").unwrap()))
        );
        assert_eq!(run("NICK *"), (None, vec!["432".into()]));
        assert_eq!(run("NICK :"), (None, vec!["431".into()]));
    }

    #[test]
    fn answered_locally() {
        assert_eq!(run("PING abcdef"), (None, vec!["PONG".into()]));
        assert_eq!(run("AUTHENTICATE PLAIN"), (None, vec!["462".into()]));
        assert_eq!(run("USER u s e r"), (None, vec!["462".into()]));
        assert_eq!(
            run("OPER operuser operpassword"),
            (None, vec!["491".into()])
        );
        assert_eq!(run("CAP LIST"), (None, vec!["CAP".into()]));
        assert_eq!(run("HELP").1.first().map(String::as_str), Some("704"));
        assert_eq!(
            run("CHATHISTORY LATEST #chan *"),
            (None, vec!["FAIL".into()])
        );
        assert!(matches!(
            run("CHATHISTORY LATEST #chan * 10").0,
            Some(Request::History(_))
        ));
    }

    /// irctest names and list: a bad channel name is answered with its own end line.
    #[test]
    fn listings() {
        assert_eq!(run("NAMES invalid"), (None, vec!["366".into()]));
        assert_eq!(run("NAMES").0, Some(Request::Names(vec![])));
        assert_eq!(run("NAMES #a,bad").0, Some(Request::Names(vec![room("a")])));
        assert_eq!(run("LIST").0, Some(Request::List(vec![])));
        assert_eq!(run("LIST bad"), (None, vec!["321".into(), "323".into()]));
        assert_eq!(
            run("WHO coolni* %tn,1").0,
            Some(Request::Who {
                mask: "coolni*".into(),
                whox: Whox::parse(Some("%tn,1"))
            })
        );
        assert_eq!(
            run("WHOIS My.Little.Server coolNick").0,
            Some(Request::Whois("coolNick".into()))
        );
        assert_eq!(run("WHOIS"), (None, vec!["431".into()]));
        assert_eq!(run("AWAY :").0, Some(Request::Away(None)));
        assert_eq!(
            run("AWAY :back soon").0,
            Some(Request::Away(Some("back soon".into())))
        );
    }

    #[test]
    fn tagmsg_needs_client_tags_and_the_cap() {
        assert_eq!(run("@+typing=active TAGMSG #chan").0, None);
        let caps = CapSet::of(&[Cap::MessageTags]);
        assert_eq!(
            run_as("@+typing=active TAGMSG #chan", false, caps).0,
            Some(Request::TagMsg {
                target: Target::Room(room("chan")),
                client_tags: "+typing=active".into()
            })
        );
        assert_eq!(run_as("@cat=dog TAGMSG #chan", false, caps).0, None);
    }

    proptest::proptest! {
        /// Whatever a registered client sends, the door never panics, and every line it writes
        /// parses and fits in 512 bytes.
        #[test]
        fn never_panics_and_replies_fit(
            command in proptest::sample::select(crate::door::irc::commands::COMMANDS.iter().map(|c| c.name).collect::<Vec<_>>()),
            params in proptest::collection::vec("[#a-z0-9 :,*!@+=\u{1}\u{2}\u{e9}-]{0,40}", 0..6),
            trailing in proptest::option::of("[\\PC\u{1}\u{2}]{0,600}"),
            operator in proptest::bool::ANY,
        ) {
            let mut line = command.to_string();
            for p in &params {
                let p = p.replace([' ', ':'], "");
                if !p.is_empty() {
                    line.push(' ');
                    line.push_str(&p);
                }
            }
            if let Some(t) = &trailing {
                line.push_str(" :");
                line.push_str(t);
            }
            let Ok(msg) = parse(line.as_bytes()) else { return Ok(()) };
            let Ok(verb) = check(&msg, true, operator) else { return Ok(()) };
            let me = Me { ctx: Ctx { server: "srv", client: "foo", caps: CapSet::all() }, mask: "foo!~u@h", operator, invisible: false };
            let mut out = Vec::new();
            let _ = request(verb, &msg, me, &mut Caps::new(default_offer()), 100, &mut out);
            // Every line parses and fits (checked by `replies`).
            replies(&out);
        }
    }
}
