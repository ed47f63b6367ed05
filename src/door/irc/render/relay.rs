//! Relayed lines, rendered once per event into a [`Prepared`] for every IRC recipient:
//! `PRIVMSG`/`NOTICE` (CTCP `ACTION` for `/me`), `TAGMSG`, `JOIN` (with `extended-join`),
//! `PART`, `QUIT`, `NICK`, `KICK`, `TOPIC`, `AWAY` (`away-notify`), and ban modes.
//!
//! Text longer than one line allows (a line door user may send up to `--max-line` bytes) is
//! split over several lines; the first carries the `msgid`.

use crate::door::irc::caps::Cap;
use crate::door::irc::event::{Change, Origin, Said, Stored, Tagged, Whispered};
use crate::door::irc::format::CTCP;
use crate::door::irc::message::Writer;
use crate::door::irc::names::channel_name;
use crate::door::irc::render::{mask, room_for_text, split_text, Prepared};
use crate::names::{Nick, RoomName};
use crate::vocab::Kind;

/// A public line to a room.
pub fn said(ev: &Said) -> Prepared {
    let command = if ev.notice { "NOTICE" } else { "PRIVMSG" };
    let body = text_lines(
        &mask(&ev.from),
        command,
        &channel_name(&ev.room),
        ev.kind,
        &ev.text,
    );
    Prepared::new(ev.at_ms, body)
        .msgid(&ev.id.to_string())
        .account(&ev.from)
        .client_tags(ev.client_tags.clone())
}

/// A private line to one user (also the sender's echo with `echo-message`).
pub fn whispered(ev: &Whispered) -> Prepared {
    let command = if ev.notice { "NOTICE" } else { "PRIVMSG" };
    let body = text_lines(&mask(&ev.from), command, ev.to.as_str(), ev.kind, &ev.text);
    Prepared::new(ev.at_ms, body)
        .account(&ev.from)
        .client_tags(ev.client_tags.clone())
}

/// A stored line, replayed (on joining, or for `CHATHISTORY`), from `sender!user@host`.
pub fn replayed(line: &Stored, room: &str, user: &str, host: &str) -> Prepared {
    let source = format!("{}!{user}@{host}", line.sender);
    let body = text_lines(&source, "PRIVMSG", room, line.kind, &line.text);
    Prepared::new(line.at_ms, body).msgid(&line.id.to_string())
}

/// Client-only tags alone, for `message-tags` recipients.
pub fn tagged(ev: &Tagged) -> Prepared {
    let mut body = Vec::new();
    Writer::new(&mut body, "", Some(&mask(&ev.from)), "TAGMSG")
        .param(&ev.target)
        .end();
    Prepared::new(ev.at_ms, body)
        .account(&ev.from)
        .client_tags(Some(ev.client_tags.clone()))
        .requires(Cap::MessageTags)
}

/// A change of membership or names, at `at_ms`.
pub fn change(ev: &Change, at_ms: i64) -> Prepared {
    let mut body = Vec::new();
    match ev {
        Change::Joined {
            room,
            who,
            realname,
            ..
        } => {
            let source = mask(who);
            let room = channel_name(room);
            Writer::new(&mut body, "", Some(&source), "JOIN").last(&room);
            let mut extended = Vec::new();
            let account = who.account.as_deref().unwrap_or("*");
            Writer::new(&mut extended, "", Some(&source), "JOIN")
                .params(&[&room, account])
                .trailing(realname);
            Prepared::new(at_ms, body)
                .account(who)
                .alt(Cap::ExtendedJoin, extended)
        }
        Change::Parted { room, who, reason } => {
            let w = Writer::new(&mut body, "", Some(&mask(who)), "PART");
            match reason {
                Some(reason) => w.param(&channel_name(room)).trailing(reason),
                None => w.last(&channel_name(room)),
            }
            Prepared::new(at_ms, body).account(who)
        }
        Change::Quit { who, reason } => {
            let text = match reason {
                Some(reason) => format!("Quit: {reason}"),
                None => "Quit".to_owned(),
            };
            Writer::new(&mut body, "", Some(&mask(who)), "QUIT").trailing(&text);
            Prepared::new(at_ms, body).account(who)
        }
        Change::Renamed { who, to } => {
            Writer::new(&mut body, "", Some(&mask(who)), "NICK").last(to.as_str());
            Prepared::new(at_ms, body).account(who)
        }
        Change::Kicked {
            room,
            by,
            target,
            reason,
        } => {
            // Without a reason, the kicker's nick (RFC 2812).
            let reason = reason.as_deref().unwrap_or(by.nick.as_str());
            Writer::new(&mut body, "", Some(&mask(by)), "KICK")
                .params(&[&channel_name(room), target.as_str()])
                .trailing(reason);
            Prepared::new(at_ms, body).account(by)
        }
        Change::Topic { room, by, text } => {
            let text = text.as_deref().unwrap_or("");
            let text = crate::door::irc::caps::truncate(
                text,
                room_for_text(&mask(by), "TOPIC", &channel_name(room)),
            );
            Writer::new(&mut body, "", Some(&mask(by)), "TOPIC")
                .param(&channel_name(room))
                .trailing(text);
            Prepared::new(at_ms, body).account(by)
        }
        Change::Away { who, message } => {
            let w = Writer::new(&mut body, "", Some(&mask(who)), "AWAY");
            match message {
                Some(message) => w.trailing(message),
                None => w.end(),
            }
            Prepared::new(at_ms, body)
                .account(who)
                .requires(Cap::AwayNotify)
        }
        Change::Ban {
            room,
            by,
            set,
            mask: banned,
        } => {
            let change = if *set { "+b" } else { "-b" };
            Writer::new(&mut body, "", Some(&mask(by)), "MODE")
                .params(&[&channel_name(room), change])
                .last(banned);
            Prepared::new(at_ms, body).account(by)
        }
    }
}

/// The `AWAY` that `away-notify` recipients get when someone away joins a room they are in.
pub fn joined_away(ev: &Change, at_ms: i64) -> Option<Prepared> {
    match ev {
        Change::Joined {
            who,
            away: Some(message),
            ..
        } => Some(change(
            &Change::Away {
                who: who.clone(),
                message: Some(message.clone()),
            },
            at_ms,
        )),
        _ => None,
    }
}

/// `:source COMMAND target :text` as one or more lines; an action is CTCP `ACTION`, each piece
/// wrapped whole.
fn text_lines(source: &str, command: &str, target: &str, kind: Kind, text: &str) -> Vec<u8> {
    let wrap = matches!(kind, Kind::Action);
    // The CTCP wrapping, `\x01ACTION ` and `\x01`, takes room from the text.
    let overhead = if wrap { 9 } else { 0 };
    let room = room_for_text(source, command, target).saturating_sub(overhead);
    let mut body = Vec::with_capacity(text.len() + 64);
    for piece in split_text(text, room) {
        let w = Writer::new(&mut body, "", Some(source), command).param(target);
        if wrap {
            w.trailing(&format!("{CTCP}ACTION {piece}{CTCP}"));
        } else {
            w.trailing(piece);
        }
    }
    body
}

/// The origin a line door user (or anyone known only by name) has in IRC: `nick!door@host`.
pub fn plain_origin(nick: crate::names::Nick, door: &str, host: &str) -> Origin {
    Origin {
        nick,
        user: door.into(),
        host: host.into(),
        account: None,
    }
}

/// Names a summary shows of each kind before "and N others".
const SUMMARY_NAMED: usize = 3;

/// A big room's storm of joins and leaves, as the hub summed it up: one server `NOTICE` to the
/// channel (`12 joined: alice, bob, carol and 9 others; 2 left: dave, erin (NAMES #room lists
/// who is here)`), instead of a `JOIN` or `PART` per person, which would cost N² lines when N
/// people join one channel. Clients show a message from a nick they did not see join as they
/// show one in a channel without `+n`; `NAMES` brings their member list up to date.
pub fn summary(
    server: &str,
    room: &RoomName,
    joined: &[&Nick],
    left: &[&Nick],
    at_ms: i64,
) -> Prepared {
    let channel = channel_name(room);
    let mut text = String::new();
    for (verb, nicks) in [("joined", joined), ("left", left)] {
        if nicks.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push_str("; ");
        }
        let named: Vec<&str> = nicks
            .iter()
            .take(SUMMARY_NAMED)
            .map(|n| n.as_str())
            .collect();
        text.push_str(&format!("{} {verb}: {}", nicks.len(), named.join(", ")));
        if nicks.len() > named.len() {
            text.push_str(&format!(" and {} others", nicks.len() - named.len()));
        }
    }
    text.push_str(&format!(" (NAMES {channel} lists who is here)"));
    let mut body = Vec::new();
    Writer::new(&mut body, "", Some(server), "NOTICE")
        .param(&channel)
        .trailing(&text);
    Prepared::new(at_ms, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::caps::CapSet;
    use crate::door::irc::message::{parse, MAX_BODY};
    use crate::names::{Nick, RoomName};

    fn alice() -> Origin {
        Origin {
            nick: Nick::parse("alice").unwrap(),
            user: "~alice".into(),
            host: "irc.user".into(),
            account: Some("alice".into()),
        }
    }

    fn said_text(kind: Kind, text: &str) -> Said {
        Said {
            id: 42,
            at_ms: 1_795_797_617_456,
            room: RoomName::parse("lobby").unwrap(),
            from: alice(),
            kind,
            text: text.into(),
            notice: false,
            client_tags: None,
        }
    }

    fn lines(p: &Prepared, caps: &[Cap]) -> Vec<String> {
        let mut out = Vec::new();
        p.write(CapSet::of(caps), &mut out);
        String::from_utf8(out)
            .unwrap()
            .split_terminator("\r\n")
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_public_line_and_an_action() {
        let p = said(&said_text(Kind::Message, "hello bob"));
        assert_eq!(
            lines(&p, &[]),
            [":alice!~alice@irc.user PRIVMSG #lobby :hello bob"]
        );
        assert_eq!(
            lines(&p, &[Cap::ServerTime, Cap::MessageTags, Cap::AccountTag]),
            ["@time=2026-11-27T16:40:17.456Z;msgid=42;account=alice :alice!~alice@irc.user PRIVMSG #lobby :hello bob"]
        );
        let p = said(&said_text(Kind::Action, "waves"));
        assert_eq!(
            lines(&p, &[]),
            [":alice!~alice@irc.user PRIVMSG #lobby :\u{1}ACTION waves\u{1}"]
        );
    }

    /// A line door user may send up to `--max-line` bytes: IRC gets it whole, over several
    /// lines that each fit in 512 bytes.
    #[test]
    fn long_text_is_split_not_cut() {
        for kind in [Kind::Message, Kind::Action] {
            let text = "word ".repeat(400) + &"é".repeat(300);
            let p = said(&said_text(kind, &text));
            let got = lines(&p, &[Cap::MessageTags]);
            assert!(got.len() > 3);
            let mut rebuilt = String::new();
            for (i, line) in got.iter().enumerate() {
                let body = line.split_once(' ').map_or(line.as_str(), |(tags, rest)| {
                    if tags.starts_with('@') {
                        rest
                    } else {
                        line
                    }
                });
                assert!(body.len() + 2 <= MAX_BODY + 2, "{} bytes", body.len());
                assert_eq!(line.starts_with("@msgid=42 "), i == 0);
                let msg = parse(body.as_bytes()).unwrap();
                let piece = msg.param(1).unwrap();
                rebuilt.push_str(match kind {
                    Kind::Action => piece
                        .strip_prefix("\u{1}ACTION ")
                        .unwrap()
                        .strip_suffix('\u{1}')
                        .unwrap(),
                    Kind::Message => piece,
                });
            }
            assert_eq!(rebuilt, text);
        }
    }

    /// irctest extended_join: `JOIN #chan account :Realname`, `*` when logged out.
    #[test]
    fn join_with_and_without_extended_join() {
        let ev = Change::Joined {
            room: RoomName::parse("chan").unwrap(),
            who: alice(),
            realname: "Alice A".into(),
            away: Some("brb".into()),
        };
        let p = change(&ev, 0);
        assert_eq!(lines(&p, &[]), [":alice!~alice@irc.user JOIN #chan"]);
        assert_eq!(
            lines(&p, &[Cap::ExtendedJoin]),
            [":alice!~alice@irc.user JOIN #chan alice :Alice A"]
        );
        let away = joined_away(&ev, 0).unwrap();
        assert_eq!(
            lines(&away, &[Cap::AwayNotify]),
            [":alice!~alice@irc.user AWAY :brb"]
        );
        assert!(lines(&away, &[]).is_empty());
    }

    #[test]
    fn part_quit_nick_kick_topic_ban() {
        let room = RoomName::parse("chan").unwrap();
        let bob = Nick::parse("bob").unwrap();
        let cases = [
            (
                Change::Parted {
                    room: room.clone(),
                    who: alice(),
                    reason: Some("bye everyone".into()),
                },
                ":alice!~alice@irc.user PART #chan :bye everyone",
            ),
            (
                Change::Parted {
                    room: room.clone(),
                    who: alice(),
                    reason: None,
                },
                ":alice!~alice@irc.user PART #chan",
            ),
            (
                Change::Quit {
                    who: alice(),
                    reason: Some("qux out".into()),
                },
                ":alice!~alice@irc.user QUIT :Quit: qux out",
            ),
            (
                Change::Renamed {
                    who: alice(),
                    to: Nick::parse("Alice").unwrap(),
                },
                ":alice!~alice@irc.user NICK Alice",
            ),
            (
                Change::Kicked {
                    room: room.clone(),
                    by: alice(),
                    target: bob.clone(),
                    reason: None,
                },
                ":alice!~alice@irc.user KICK #chan bob :alice",
            ),
            (
                Change::Topic {
                    room: room.clone(),
                    by: alice(),
                    text: None,
                },
                ":alice!~alice@irc.user TOPIC #chan :",
            ),
            (
                Change::Ban {
                    room,
                    by: alice(),
                    set: true,
                    mask: "bob!*@*".into(),
                },
                ":alice!~alice@irc.user MODE #chan +b bob!*@*",
            ),
        ];
        for (ev, expected) in cases {
            assert_eq!(lines(&change(&ev, 0), &[]), [expected]);
        }
    }

    #[test]
    fn tagmsg_only_for_message_tags() {
        let p = tagged(&Tagged {
            at_ms: 0,
            from: alice(),
            target: "#chan".into(),
            client_tags: "+typing=active".into(),
        });
        assert!(lines(&p, &[Cap::ServerTime]).is_empty());
        assert_eq!(
            lines(&p, &[Cap::MessageTags]),
            ["@+typing=active :alice!~alice@irc.user TAGMSG #chan"]
        );
    }

    #[test]
    fn replayed_lines_keep_their_id_and_time() {
        let line = Stored {
            id: 7,
            at_ms: 1000,
            sender: "bob".into(),
            kind: Kind::Message,
            text: "hi".into(),
        };
        let p = replayed(&line, "#lobby", "nc", "smolchat");
        assert_eq!(
            lines(&p, &[Cap::ServerTime, Cap::MessageTags]),
            ["@time=1970-01-01T00:00:01.000Z;msgid=7 :bob!nc@smolchat PRIVMSG #lobby :hi"]
        );
        let o = plain_origin(Nick::parse("carol").unwrap(), "nc", "smolchat");
        assert_eq!(mask(&o), "carol!nc@smolchat");
    }

    /// A storm is one NOTICE from the server naming a few of each kind, never a JOIN each.
    #[test]
    fn a_summary_is_one_notice() {
        let nicks: Vec<Nick> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| Nick::parse(n).unwrap())
            .collect();
        let joined: Vec<&Nick> = nicks.iter().collect();
        let room = RoomName::parse("lobby").unwrap();
        let mut out = Vec::new();
        summary("srv", &room, &joined, &joined[..1], 0).write(CapSet::default(), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ":srv NOTICE #lobby :5 joined: a, b, c and 2 others; 1 left: a \
             (NAMES #lobby lists who is here)\r\n"
        );
    }
}
