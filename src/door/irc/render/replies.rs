//! Replies to one user: topic, `NAMES`, `WHO` (and WHOX), `WHOIS`, `LIST`, channel modes and
//! bans, `USERHOST`, `ISON`, away notices, standard replies (`FAIL`) and `ERROR`.
//!
//! Server operators are the only channel operators here: they show as `@` in `NAMES`, `WHO`
//! and `WHOIS`, and as `*` (an IRC operator) in `WHO`. Nobody has voice.

use crate::door::irc::caps::{truncate, Cap};
use crate::door::irc::event::{Ban, Member, RoomSummary, Topic};
use crate::door::irc::message::{Writer, MAX_BODY};
use crate::door::irc::names::channel_name;
use crate::door::irc::numerics::{
    ERR_NOSUCHNICK, RPL_AWAY, RPL_BANLIST, RPL_CHANNELMODEIS, RPL_CREATIONTIME, RPL_ENDOFBANLIST,
    RPL_ENDOFNAMES, RPL_ENDOFWHO, RPL_ENDOFWHOIS, RPL_ISON, RPL_LIST, RPL_LISTEND, RPL_LISTSTART,
    RPL_NAMREPLY, RPL_NOTOPIC, RPL_NOWAWAY, RPL_TOPIC, RPL_TOPICWHOTIME, RPL_UNAWAY, RPL_USERHOST,
    RPL_WHOISACCOUNT, RPL_WHOISCHANNELS, RPL_WHOISIDLE, RPL_WHOISOPERATOR, RPL_WHOISSECURE,
    RPL_WHOISSERVER, RPL_WHOISUSER, RPL_WHOREPLY, RPL_WHOSPCRPL,
};
use crate::door::irc::render::{mask, Ctx};
use crate::names::RoomName;

/// The modes every room has, for `324`: `n` (only members speak in it) and `t` (only
/// operators set the topic). Fixed: rooms have no other settings.
pub const ROOM_MODES: &str = "+nt";

/// The most bytes of a topic IRC clients are shown (advertised as `TOPICLEN`); a longer topic
/// set from another door is shown cut. Not configurable: 390 is what fits with the prefix.
pub const TOPICLEN: usize = 390;

/// `332` and `333` for a set topic; `331` when there is none and the user asked (`TOPIC
/// #room`), nothing when there is none and the user just joined.
pub fn topic(ctx: Ctx<'_>, room: &RoomName, topic: Option<&Topic>, asked: bool, out: &mut Vec<u8>) {
    let channel = channel_name(room);
    match topic {
        Some(t) => {
            RPL_TOPIC.write_text(
                out,
                ctx.server,
                ctx.client,
                &[&channel],
                truncate(&t.text, TOPICLEN),
            );
            let at = (t.set_at_ms / 1000).to_string();
            RPL_TOPICWHOTIME.write(
                out,
                ctx.server,
                ctx.client,
                &[&channel, &t.set_by, &at],
                &[],
            );
        }
        None if asked => RPL_NOTOPIC.write(out, ctx.server, ctx.client, &[&channel], &[]),
        None => {}
    }
}

/// `353` lines (as many as the names need) and `366`.
pub fn names(ctx: Ctx<'_>, room: &RoomName, members: &[Member], out: &mut Vec<u8>) {
    let channel = channel_name(room);
    // `:server 353 client = #channel :` and CR LF.
    let room_left = MAX_BODY - ctx.server.len() - ctx.client.len() - channel.len() - 12;
    let mut line = String::new();
    for m in members {
        let name = format!("{}{}", if m.operator { "@" } else { "" }, m.origin.nick);
        if !line.is_empty() && line.len() + 1 + name.len() > room_left {
            RPL_NAMREPLY.write_text(out, ctx.server, ctx.client, &["=", &channel], &line);
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&name);
    }
    if !line.is_empty() {
        RPL_NAMREPLY.write_text(out, ctx.server, ctx.client, &["=", &channel], &line);
    }
    names_end(ctx, &channel, out);
}

/// `366` alone, naming the channel as the user wrote it: the answer for a channel that does not
/// exist or cannot (modern: "one RPL_ENDOFNAMES containing the given channel name").
pub fn names_end(ctx: Ctx<'_>, channel: &str, out: &mut Vec<u8>) {
    RPL_ENDOFNAMES.write(out, ctx.server, ctx.client, &[truncate(channel, 64)], &[]);
}

/// The fields a WHOX request asked for (`%tcuihsnfdlaor`) and its token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Whox {
    fields: String,
    token: String,
}

impl Whox {
    /// Parses WHO's second parameter, `%fields[,token]`; `None` for a plain `WHO`.
    pub fn parse(param: Option<&str>) -> Option<Whox> {
        let spec = param?.strip_prefix('%')?;
        let (fields, token) = spec.split_once(',').unwrap_or((spec, ""));
        let fields: String = "tcuihsnfdlaor"
            .chars()
            .filter(|c| fields.contains(*c))
            .collect();
        let token = if token.len() <= 3 && token.bytes().all(|b| b.is_ascii_digit()) {
            token
        } else {
            ""
        };
        Some(Whox {
            fields,
            token: token.to_owned(),
        })
    }
}

/// One `WHO` answer: a member, and the room it is listed for (`None` outside a room).
#[derive(Debug, Clone, Copy)]
pub struct WhoLine<'a> {
    pub room: Option<&'a RoomName>,
    pub member: &'a Member,
}

/// `352` (or `354` for WHOX) per line, then `315` naming the mask exactly as sent.
pub fn who(
    ctx: Ctx<'_>,
    mask_sent: &str,
    lines: &[WhoLine<'_>],
    whox: Option<&Whox>,
    out: &mut Vec<u8>,
) {
    for line in lines {
        let m = line.member;
        let channel = line.room.map_or_else(|| "*".to_owned(), channel_name);
        let mut flags = String::from(if m.away.is_some() { "G" } else { "H" });
        if m.operator {
            flags.push('*');
            if line.room.is_some() {
                flags.push('@');
            }
        }
        let o = &m.origin;
        let Some(whox) = whox else {
            let trailing = format!("0 {}", m.realname);
            RPL_WHOREPLY.write_text(
                out,
                ctx.server,
                ctx.client,
                &[
                    &channel,
                    &o.user,
                    &o.host,
                    ctx.server,
                    o.nick.as_str(),
                    &flags,
                ],
                &trailing,
            );
            continue;
        };
        let mut params: Vec<String> = Vec::new();
        let mut realname = None;
        for field in whox.fields.chars() {
            let value = match field {
                't' => whox.token.clone(),
                'c' => channel.clone(),
                'u' => o.user.to_string(),
                'i' => "255.255.255.255".to_owned(),
                'h' => o.host.to_string(),
                's' => ctx.server.to_owned(),
                'n' => o.nick.to_string(),
                'f' => flags.clone(),
                'd' | 'l' => "0".to_owned(),
                'a' => o.account.as_deref().unwrap_or("0").to_owned(),
                'o' => "n/a".to_owned(),
                _ => {
                    realname = Some(m.realname.to_string());
                    continue;
                }
            };
            params.push(if value.is_empty() {
                "*".to_owned()
            } else {
                value
            });
        }
        let params: Vec<&str> = params.iter().map(String::as_str).collect();
        let w = Writer::new(out, "", Some(ctx.server), RPL_WHOSPCRPL.code)
            .param(ctx.client)
            .params(&params);
        match realname {
            Some(r) => w.trailing(&r),
            None => w.end(),
        }
    }
    RPL_ENDOFWHO.write(out, ctx.server, ctx.client, &[truncate(mask_sent, 64)], &[]);
}

/// `WHOIS nick` about a connected member in `rooms`: `311`, `319`, `312`, `313`, `301`, `330`,
/// `671`, `318`. `server_info` is the line after the server's name in `312`.
pub fn whois(ctx: Ctx<'_>, m: &Member, rooms: &[RoomName], server_info: &str, out: &mut Vec<u8>) {
    let o = &m.origin;
    let nick = o.nick.as_str();
    RPL_WHOISUSER.write_text(
        out,
        ctx.server,
        ctx.client,
        &[nick, &o.user, &o.host, "*"],
        &m.realname,
    );
    if !rooms.is_empty() {
        let prefix = if m.operator { "@" } else { "" };
        let channels: Vec<String> = rooms
            .iter()
            .map(|r| format!("{prefix}{}", channel_name(r)))
            .collect();
        for chunk in channels.chunks(10) {
            RPL_WHOISCHANNELS.write_text(out, ctx.server, ctx.client, &[nick], &chunk.join(" "));
        }
    }
    RPL_WHOISSERVER.write_text(
        out,
        ctx.server,
        ctx.client,
        &[nick, ctx.server],
        server_info,
    );
    if m.operator {
        RPL_WHOISOPERATOR.write(out, ctx.server, ctx.client, &[nick], &[]);
    }
    if let Some(away) = &m.away {
        away_reply(ctx, nick, away, out);
    }
    if let Some(idle) = m.idle {
        let (seconds, signon) = (idle.seconds.to_string(), idle.signon.to_string());
        RPL_WHOISIDLE.write(out, ctx.server, ctx.client, &[nick, &seconds, &signon], &[]);
    }
    if let Some(account) = &o.account {
        RPL_WHOISACCOUNT.write(out, ctx.server, ctx.client, &[nick, account], &[]);
    }
    if m.secure {
        RPL_WHOISSECURE.write(out, ctx.server, ctx.client, &[nick], &[]);
    }
    RPL_ENDOFWHOIS.write(out, ctx.server, ctx.client, &[nick], &[]);
}

/// `WHOIS nick` about nobody: `401` then `318`.
pub fn whois_missing(ctx: Ctx<'_>, nick: &str, out: &mut Vec<u8>) {
    let nick = truncate(nick, 64);
    ERR_NOSUCHNICK.write(out, ctx.server, ctx.client, &[nick], &[]);
    RPL_ENDOFWHOIS.write(out, ctx.server, ctx.client, &[nick], &[]);
}

/// `321`, a `322` per room, `323`.
pub fn list(ctx: Ctx<'_>, rooms: &[RoomSummary], out: &mut Vec<u8>) {
    RPL_LISTSTART.write(out, ctx.server, ctx.client, &["Channel"], &[]);
    for r in rooms {
        let topic = r.topic.as_deref().map_or("", |t| truncate(t, TOPICLEN));
        RPL_LIST.write_text(
            out,
            ctx.server,
            ctx.client,
            &[&channel_name(&r.room), &r.users.to_string()],
            topic,
        );
    }
    RPL_LISTEND.write(out, ctx.server, ctx.client, &[], &[]);
}

/// `MODE #room`: `324 +nt` and `329` (the room's creation time, in seconds).
pub fn channel_modes(ctx: Ctx<'_>, room: &RoomName, created_ms: i64, out: &mut Vec<u8>) {
    let channel = channel_name(room);
    RPL_CHANNELMODEIS.write(out, ctx.server, ctx.client, &[&channel, ROOM_MODES], &[]);
    let created = (created_ms / 1000).to_string();
    RPL_CREATIONTIME.write(out, ctx.server, ctx.client, &[&channel, &created], &[]);
}

/// `MODE #room +b` without a mask: a `367` per ban, `368`.
pub fn ban_list(ctx: Ctx<'_>, room: &RoomName, bans: &[Ban], out: &mut Vec<u8>) {
    let channel = channel_name(room);
    for b in bans {
        let at = (b.set_at_ms / 1000).to_string();
        RPL_BANLIST.write(
            out,
            ctx.server,
            ctx.client,
            &[&channel, &b.mask, &b.set_by, &at],
            &[],
        );
    }
    RPL_ENDOFBANLIST.write(out, ctx.server, ctx.client, &[&channel], &[]);
}

/// `302` for up to five members: `nick[*]=+user@host` (`-` when away, `*` for operators).
pub fn userhost(ctx: Ctx<'_>, members: &[&Member], out: &mut Vec<u8>) {
    let entries: Vec<String> = members
        .iter()
        .take(5)
        .map(|m| {
            let o = &m.origin;
            let oper = if m.operator { "*" } else { "" };
            let here = if m.away.is_some() { '-' } else { '+' };
            format!("{}{oper}={here}{}@{}", o.nick, o.user, o.host)
        })
        .collect();
    RPL_USERHOST.write_text(out, ctx.server, ctx.client, &[], &entries.join(" "));
}

/// `303` with the nicks that are online.
pub fn ison(ctx: Ctx<'_>, online: &[&str], out: &mut Vec<u8>) {
    RPL_ISON.write_text(out, ctx.server, ctx.client, &[], &online.join(" "));
}

/// `301`: `nick` is away with `message` (to someone who messaged or looked them up).
pub fn away_reply(ctx: Ctx<'_>, nick: &str, message: &str, out: &mut Vec<u8>) {
    RPL_AWAY.write_text(out, ctx.server, ctx.client, &[nick], message);
}

/// `306` when the user is now away, `305` when back.
pub fn away_changed(ctx: Ctx<'_>, away: bool, out: &mut Vec<u8>) {
    let numeric = if away { RPL_NOWAWAY } else { RPL_UNAWAY };
    numeric.write(out, ctx.server, ctx.client, &[], &[]);
}

/// The answer to a line that is not UTF-8 (the door advertises `UTF8ONLY`):
/// `FAIL <command> INVALID_UTF8`, nothing relayed.
pub fn invalid_utf8(ctx: Ctx<'_>, command: Option<&str>, out: &mut Vec<u8>) {
    let command = truncate(command.unwrap_or("*"), 32);
    fail(
        ctx,
        command,
        "INVALID_UTF8",
        &[],
        "Message rejected: it is not valid UTF-8",
        out,
    );
}

/// A standard reply: `FAIL command CODE context... :description`.
pub fn fail(
    ctx: Ctx<'_>,
    command: &str,
    code: &str,
    context: &[&str],
    description: &str,
    out: &mut Vec<u8>,
) {
    Writer::new(out, "", Some(ctx.server), "FAIL")
        .params(&[command, code])
        .params(context)
        .trailing(description);
}

/// `ERROR :text`, the last line before the server closes the connection.
pub fn error(text: &str, out: &mut Vec<u8>) {
    Writer::new(out, "", None, "ERROR").trailing(text);
}

/// The `label` tag value a labeled-response client gave, escaped for echoing back, when it
/// negotiated the capability.
pub fn label_of(ctx: Ctx<'_>, label: Option<&str>) -> Option<String> {
    label
        .filter(|_| ctx.caps.contains(Cap::LabeledResponse))
        .map(|l| format!("label={}", crate::door::irc::tags::escape(l)))
}

/// `nick!user@host` of a member, for replies that show it.
pub fn member_mask(m: &Member) -> String {
    mask(&m.origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::caps::CapSet;
    use crate::door::irc::event::Origin;
    use crate::door::irc::testing::replies as parsed;
    use crate::names::Nick;

    fn member(nick: &str, operator: bool, away: Option<&str>) -> Member {
        Member {
            origin: Origin {
                nick: Nick::parse(nick).unwrap(),
                user: "~myusernam".into(),
                host: "cloak.example".into(),
                account: None,
            },
            realname: "My UniqueReal Name".into(),
            operator,
            away: away.map(Into::into),
            secure: false,
            idle: None,
        }
    }

    fn ctx() -> Ctx<'static> {
        Ctx {
            server: "My.Little.Server",
            client: "otherNick",
            caps: CapSet::default(),
        }
    }

    /// irctest names: `353 nick1 = #chan :@nick1 nick2`, `366 nick1 #chan`; no trailing space.
    #[test]
    fn names_with_operator_prefix() {
        let room = RoomName::parse("chan").unwrap();
        let mut out = Vec::new();
        names(
            ctx(),
            &room,
            &[member("nick1", true, None), member("nick2", false, None)],
            &mut out,
        );
        let lines = parsed(&out);
        assert_eq!(
            lines[0],
            (
                "353".into(),
                vec![
                    "otherNick".into(),
                    "=".into(),
                    "#chan".into(),
                    "@nick1 nick2".into()
                ]
            )
        );
        assert_eq!(lines[1].0, "366");
        assert_eq!(lines[1].1[..2], ["otherNick", "#chan"]);
    }

    #[test]
    fn many_names_are_split_over_lines() {
        let room = RoomName::parse("big").unwrap();
        let members: Vec<Member> = (0..300)
            .map(|i| member(&format!("user{i:04}"), false, None))
            .collect();
        let mut out = Vec::new();
        names(ctx(), &room, &members, &mut out);
        let lines = parsed(&out);
        let listed: Vec<String> = lines
            .iter()
            .filter(|(c, _)| c == "353")
            .flat_map(|(_, p)| p[3].split(' ').map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(listed.len(), 300);
        assert!(lines.len() > 5);
    }

    /// irctest who: `352 otherNick #chan ~myusernam host My.Little.Server coolNick G@ :0 real`.
    #[test]
    fn who_flags_and_end() {
        let room = RoomName::parse("chan").unwrap();
        let cool = member("coolNick", true, Some("brb"));
        let other = member("otherNick", false, None);
        let mut out = Vec::new();
        who(
            ctx(),
            "#CHAN",
            &[
                WhoLine {
                    room: Some(&room),
                    member: &cool,
                },
                WhoLine {
                    room: Some(&room),
                    member: &other,
                },
            ],
            None,
            &mut out,
        );
        let lines = parsed(&out);
        assert_eq!(
            lines[0].1,
            [
                "otherNick",
                "#chan",
                "~myusernam",
                "cloak.example",
                "My.Little.Server",
                "coolNick",
                "G*@",
                "0 My UniqueReal Name"
            ]
        );
        assert_eq!(lines[1].1[6], "H");
        assert_eq!(
            lines[2],
            (
                "315".into(),
                vec!["otherNick".into(), "#CHAN".into(), "End of WHO list".into()]
            )
        );
        let mut out = Vec::new();
        who(
            ctx(),
            "coolni*",
            &[WhoLine {
                room: None,
                member: &cool,
            }],
            None,
            &mut out,
        );
        assert_eq!(parsed(&out)[0].1[1], "*");
        assert_eq!(parsed(&out)[0].1[6], "G*");
    }

    /// irctest testWhoxFull and testWhoxToken: fields in the fixed order, `0` for no account.
    #[test]
    fn whox_fields_in_order() {
        let cool = member("coolNick", false, None);
        let line = [WhoLine {
            room: None,
            member: &cool,
        }];
        let mut out = Vec::new();
        who(
            ctx(),
            "coolNick",
            &line,
            Whox::parse(Some("%tcuihsnfdlaor,123")).as_ref(),
            &mut out,
        );
        let lines = parsed(&out);
        assert_eq!(lines[0].0, "354");
        assert_eq!(
            lines[0].1,
            [
                "otherNick",
                "123",
                "*",
                "~myusernam",
                "255.255.255.255",
                "cloak.example",
                "My.Little.Server",
                "coolNick",
                "H",
                "0",
                "0",
                "0",
                "n/a",
                "My UniqueReal Name"
            ]
        );
        let mut out = Vec::new();
        who(
            ctx(),
            "coolNick",
            &line,
            Whox::parse(Some("%tn,321")).as_ref(),
            &mut out,
        );
        assert_eq!(parsed(&out)[0].1, ["otherNick", "321", "coolNick"]);
        assert_eq!(Whox::parse(Some("o")), None);
    }

    #[test]
    fn whois_lists_what_applies() {
        let mut m = member("nick2", true, Some("I'm on a break"));
        m.origin.account = Some("val".into());
        m.secure = true;
        let rooms = [
            RoomName::parse("chan1").unwrap(),
            RoomName::parse("chan2").unwrap(),
        ];
        let mut out = Vec::new();
        whois(ctx(), &m, &rooms, "smolchat", &mut out);
        let lines = parsed(&out);
        let codes: Vec<&str> = lines.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            codes,
            ["311", "319", "312", "313", "301", "330", "671", "318"]
        );
        assert_eq!(
            lines[0].1[..5],
            ["otherNick", "nick2", "~myusernam", "cloak.example", "*"]
        );
        assert_eq!(lines[1].1[2], "@#chan1 @#chan2");
        assert_eq!(lines[4].1, ["otherNick", "nick2", "I'm on a break"]);
        assert_eq!(lines[5].1[..3], ["otherNick", "nick2", "val"]);
        let mut out = Vec::new();
        whois_missing(ctx(), "ghost", &mut out);
        assert_eq!(
            parsed(&out)
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>(),
            ["401", "318"]
        );
    }

    #[test]
    fn topic_list_modes_bans() {
        let room = RoomName::parse("chan").unwrap();
        let t = Topic {
            text: "new topic".into(),
            set_by: "bar".into(),
            set_at_ms: 5_000,
        };
        let mut out = Vec::new();
        topic(ctx(), &room, Some(&t), false, &mut out);
        topic(ctx(), &room, None, false, &mut out);
        topic(ctx(), &room, None, true, &mut out);
        list(
            ctx(),
            &[RoomSummary {
                room: room.clone(),
                users: 2,
                topic: None,
            }],
            &mut out,
        );
        channel_modes(ctx(), &room, 7_000, &mut out);
        ban_list(
            ctx(),
            &room,
            &[Ban {
                mask: "bar!*@*".into(),
                set_by: "op".into(),
                set_at_ms: 9_000,
            }],
            &mut out,
        );
        let lines = parsed(&out);
        let codes: Vec<&str> = lines.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            codes,
            ["332", "333", "331", "321", "322", "323", "324", "329", "367", "368"]
        );
        assert_eq!(lines[1].1, ["otherNick", "#chan", "bar", "5"]);
        assert_eq!(lines[4].1, ["otherNick", "#chan", "2", ""]);
        assert_eq!(lines[6].1, ["otherNick", "#chan", "+nt"]);
        assert_eq!(lines[8].1, ["otherNick", "#chan", "bar!*@*", "op", "9"]);
    }

    /// irctest testAwayUserhost: `bar=+...` here, `bar=-...` away.
    #[test]
    fn userhost_ison_fail_error() {
        let here = member("bar", false, None);
        let gone = member("qux", true, Some("x"));
        let mut out = Vec::new();
        userhost(ctx(), &[&here, &gone], &mut out);
        ison(ctx(), &["bar"], &mut out);
        fail(
            ctx(),
            "CHATHISTORY",
            "INVALID_TARGET",
            &["LATEST", "#nope"],
            "No such channel",
            &mut out,
        );
        error("Closing link: bye", &mut out);
        away_changed(ctx(), true, &mut out);
        away_changed(ctx(), false, &mut out);
        invalid_utf8(ctx(), Some("PRIVMSG"), &mut out);
        let lines = parsed(&out);
        assert_eq!((lines[4].0.as_str(), lines[5].0.as_str()), ("306", "305"));
        assert_eq!(lines[6].1[..2], ["PRIVMSG", "INVALID_UTF8"]);
        assert_eq!(
            lines[0].1[1],
            "bar=+~myusernam@cloak.example qux*=-~myusernam@cloak.example"
        );
        assert_eq!(lines[1].1, ["otherNick", "bar"]);
        assert_eq!(
            lines[2].1,
            [
                "CHATHISTORY",
                "INVALID_TARGET",
                "LATEST",
                "#nope",
                "No such channel"
            ]
        );
        assert_eq!(lines[3], ("ERROR".into(), vec!["Closing link: bye".into()]));
    }
}
