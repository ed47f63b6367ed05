//! The welcome burst after registration, in the order the modern protocol requires: `001` to
//! `004`, `005` (ISUPPORT), the `LUSERS` replies, then the MOTD (`375`/`372`/`376`) or `422`.
//! Also `LUSERS` and `MOTD` on their own.
//!
//! ISUPPORT says what the door is: channels are `#` rooms, names compare by [`CASEMAPPING`],
//! the length limits are the shared name rules', history is served with `CHATHISTORY`, and
//! only UTF-8 is accepted.

use crate::door::irc::message::Writer;
use crate::door::irc::message::MAX_BODY;
use crate::door::irc::names::MAX_ROOMS;
use crate::door::irc::numerics::{
    ERR_NOMOTD, RPL_CREATED, RPL_ENDOFMOTD, RPL_GLOBALUSERS, RPL_ISUPPORT, RPL_LOCALUSERS,
    RPL_LUSERCHANNELS, RPL_LUSERCLIENT, RPL_LUSERME, RPL_LUSEROP, RPL_LUSERUNKNOWN, RPL_MOTD,
    RPL_MOTDSTART, RPL_MYINFO, RPL_WELCOME, RPL_YOURHOST,
};
use crate::door::irc::registration::USERLEN;
use crate::door::irc::render::replies::{ROOM_MODES, TOPICLEN};
use crate::door::irc::render::{split_text, Ctx};
use crate::names::{MAX_NICK, MAX_ROOM};

/// How names compare. Names are unique by Unicode case fold (and confusable skeleton), which is
/// what `rfc8265` (PRECIS) tells clients; for today's ASCII names it is the same as `ascii`.
pub const CASEMAPPING: &str = "rfc8265";

/// The most ISUPPORT tokens in one `005` line (the protocol's 15 parameters, less the client
/// and the trailing text).
const TOKENS_PER_LINE: usize = 13;

/// What the server says about itself.
#[derive(Debug, Clone, Copy)]
pub struct ServerInfo<'a> {
    /// `NETWORK=` and `001`'s greeting.
    pub network: &'a str,
    pub version: &'a str,
    /// When the server started, as people read it (`003`).
    pub created: &'a str,
    /// The most lines one `CHATHISTORY` request returns; 0 when `CHATHISTORY` is not served
    /// (then neither it nor `MSGREFTYPES` is advertised).
    pub chathistory_max: usize,
    /// `CHATHISTORY` takes `timestamp=` references as well as `msgid=` (`MSGREFTYPES`).
    pub timestamps: bool,
    /// `WHO` answers WHOX requests (`354`), so `WHOX` is advertised.
    pub whox: bool,
}

/// The counts `LUSERS` reports. A single server: local and global counts are the same unless
/// the cluster adds other nodes' users.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lusers {
    /// Registered users, on every door.
    pub users: usize,
    pub operators: usize,
    /// Connections still registering.
    pub unknown: usize,
    /// Rooms with people in them.
    pub channels: usize,
    /// Users on this node.
    pub local_users: usize,
    /// The most users seen at once since the server started.
    pub max_users: usize,
    pub max_local_users: usize,
    /// Nodes in the cluster (1 without one).
    pub servers: usize,
}

/// The ISUPPORT tokens.
pub fn isupport_tokens(info: &ServerInfo<'_>) -> Vec<String> {
    let history = info.chathistory_max > 0;
    let tokens = vec![
        "AWAYLEN=390".to_owned(),
        format!("CASEMAPPING={CASEMAPPING}"),
        format!("CHANLIMIT=#:{MAX_ROOMS}"),
        "CHANMODES=b,,,nt".to_owned(),
        format!("CHANNELLEN={}", MAX_ROOM + 1),
        "CHANTYPES=#".to_owned(),
        format!("CHATHISTORY={}", info.chathistory_max),
        "KICKLEN=390".to_owned(),
        "MODES=1".to_owned(),
        format!(
            "MSGREFTYPES={}",
            if info.timestamps {
                "msgid,timestamp"
            } else {
                "msgid"
            }
        ),
        format!("NETWORK={}", info.network),
        format!("NICKLEN={MAX_NICK}"),
        "PREFIX=(ov)@+".to_owned(),
        "TARGMAX=JOIN:,PART:,NAMES:1,LIST:,WHOIS:1,PRIVMSG:1,NOTICE:1,TAGMSG:1,KICK:1".to_owned(),
        format!("TOPICLEN={TOPICLEN}"),
        format!("USERLEN={USERLEN}"),
        "UTF8ONLY".to_owned(),
        "WHOX".to_owned(),
    ];
    tokens
        .into_iter()
        .filter(|t| {
            let is = |name: &str| t.split('=').next() == Some(name);
            (history || !(is("CHATHISTORY") || is("MSGREFTYPES"))) && (info.whox || !is("WHOX"))
        })
        .collect()
}

/// The welcome burst for `ctx.client`, just registered.
pub fn welcome(
    ctx: Ctx<'_>,
    info: &ServerInfo<'_>,
    counts: &Lusers,
    motd_text: Option<&str>,
    out: &mut Vec<u8>,
) {
    let (server, client) = (ctx.server, ctx.client);
    RPL_WELCOME.write(
        out,
        server,
        client,
        &[],
        &[("network", info.network), ("nick", client)],
    );
    RPL_YOURHOST.write(
        out,
        server,
        client,
        &[],
        &[("server", server), ("version", info.version)],
    );
    RPL_CREATED.write(out, server, client, &[], &[("date", info.created)]);
    RPL_MYINFO.write(
        out,
        server,
        client,
        &[server, info.version, "io", "bnt", "b"],
        &[],
    );
    for tokens in isupport_tokens(info).chunks(TOKENS_PER_LINE) {
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        RPL_ISUPPORT.write(out, server, client, &tokens, &[]);
    }
    lusers(ctx, counts, out);
    motd(ctx, motd_text, out);
}

/// The `LUSERS` replies: `251`, `252`, `253`, `254`, `255`, `265`, `266`.
pub fn lusers(ctx: Ctx<'_>, c: &Lusers, out: &mut Vec<u8>) {
    let (server, client) = (ctx.server, ctx.client);
    let n = |v: usize| v.to_string();
    RPL_LUSERCLIENT.write(
        out,
        server,
        client,
        &[],
        &[
            ("users", &n(c.users)),
            ("invisible", "0"),
            ("servers", &n(c.servers)),
        ],
    );
    RPL_LUSEROP.write(out, server, client, &[&n(c.operators)], &[]);
    RPL_LUSERUNKNOWN.write(out, server, client, &[&n(c.unknown)], &[]);
    RPL_LUSERCHANNELS.write(out, server, client, &[&n(c.channels)], &[]);
    RPL_LUSERME.write(
        out,
        server,
        client,
        &[],
        &[
            ("clients", &n(c.local_users)),
            ("servers", &n(c.servers.saturating_sub(1))),
        ],
    );
    let (local, local_max) = (n(c.local_users), n(c.max_local_users));
    RPL_LOCALUSERS.write(
        out,
        server,
        client,
        &[&local, &local_max],
        &[("users", &local), ("max", &local_max)],
    );
    let (global, global_max) = (n(c.users), n(c.max_users));
    RPL_GLOBALUSERS.write(
        out,
        server,
        client,
        &[&global, &global_max],
        &[("users", &global), ("max", &global_max)],
    );
}

/// The MOTD, a `372` per line (long lines wrapped), or `422` without one.
pub fn motd(ctx: Ctx<'_>, text: Option<&str>, out: &mut Vec<u8>) {
    let (server, client) = (ctx.server, ctx.client);
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        ERR_NOMOTD.write(out, server, client, &[], &[]);
        return;
    };
    RPL_MOTDSTART.write(out, server, client, &[], &[("server", server)]);
    // `:server 372 client :- ` and CR LF.
    let room = MAX_BODY - server.len() - client.len() - 12;
    for line in text.lines() {
        for piece in split_text(line, room) {
            Writer::new(out, "", Some(server), RPL_MOTD.code)
                .param(client)
                .trailing(&format!("- {piece}"));
        }
    }
    RPL_ENDOFMOTD.write(out, server, client, &[], &[]);
}

/// `ROOM_MODES` without its `+`: the channel modes `004` and `CHANMODES` list.
pub fn room_mode_letters() -> &'static str {
    &ROOM_MODES[1..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::caps::CapSet;
    use crate::door::irc::testing::replies as lines;

    fn info() -> ServerInfo<'static> {
        ServerInfo {
            network: "smolchat",
            version: "smolchat-0.1.0",
            created: "2026-01-01 00:00:00 UTC",
            chathistory_max: 1000,
            timestamps: true,
            whox: true,
        }
    }

    fn ctx() -> Ctx<'static> {
        Ctx {
            server: "irc.test",
            client: "foo",
            caps: CapSet::default(),
        }
    }

    /// irctest isupport and connection registration: 001-004, 005s of at most 15 parameters
    /// with ASCII tokens, LUSERS, then MOTD or 422.
    #[test]
    fn burst_in_order() {
        let mut out = Vec::new();
        let counts = Lusers {
            users: 1,
            local_users: 1,
            max_users: 1,
            max_local_users: 1,
            servers: 1,
            ..Lusers::default()
        };
        welcome(ctx(), &info(), &counts, None, &mut out);
        let got = lines(&out);
        let codes: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            codes,
            [
                "001", "002", "003", "004", "005", "005", "251", "252", "253", "254", "255", "265",
                "266", "422"
            ]
        );
        for (code, params) in &got {
            assert_eq!(params[0], "foo");
            if code == "005" {
                assert!(params.len() <= 15 && params.len() >= 3);
                assert!(params[1..params.len() - 1].iter().all(|t| t.is_ascii()));
            }
        }
        assert_eq!(got[11].1[..3], ["foo", "1", "1"]);
        assert!(got[6].1[1].contains(" 1 users and 0 invisible on 1 servers"));
    }

    #[test]
    fn isupport_advertises_the_name_limits() {
        let tokens = isupport_tokens(&info());
        for t in [
            "CHANTYPES=#",
            "CHANLIMIT=#:50",
            "NICKLEN=24",
            "CHANNELLEN=33",
            "CHATHISTORY=1000",
            "MSGREFTYPES=msgid,timestamp",
            "UTF8ONLY",
            "PREFIX=(ov)@+",
        ] {
            assert!(tokens.iter().any(|x| x == t), "{t}");
        }
        assert!(tokens
            .iter()
            .any(|t| t == &format!("CHANMODES=b,,,{}", room_mode_letters())));
        let without = ServerInfo {
            chathistory_max: 0,
            whox: false,
            ..info()
        };
        let tokens = isupport_tokens(&without);
        for gone in ["CHATHISTORY", "MSGREFTYPES", "WHOX"] {
            assert!(!tokens.iter().any(|t| t.starts_with(gone)), "{gone}");
        }
    }

    #[test]
    fn motd_lines_are_prefixed_and_wrapped() {
        let mut out = Vec::new();
        let long = "x".repeat(700);
        motd(ctx(), Some(&format!("hello\n{long}")), &mut out);
        let got = lines(&out);
        let codes: Vec<&str> = got.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(codes, ["375", "372", "372", "372", "376"]);
        assert_eq!(got[1].1[1], "- hello");
    }
}
