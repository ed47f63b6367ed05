//! The IRC door over real TCP: registration, numerics, errors, channels that are rooms shared
//! with nc users, `PING` ordering, the line door's limits, SASL, history. Written from the
//! specifications (RFC 1459/2812 as the modern client protocol document clarifies them, and
//! IRCv3), with a raw client (tests/common/irc.rs) that checks every line it reads is a valid
//! message of at most 512 bytes.
mod common;

use std::net::SocketAddr;

use common::irc::{start_irc, IrcClient, Msg, SERVER_NAME};

/// An IRC client registered as `nick`, in `#lobby`.
fn registered(addr: SocketAddr, nick: &str) -> IrcClient {
    let mut c = IrcClient::connect(addr).register(nick);
    c.send("JOIN #lobby");
    c.expect("the lobby's names", |m| m.command == "366");
    c
}

fn commands(msgs: &[Msg]) -> Vec<&str> {
    msgs.iter().map(|m| m.command.as_str()).collect()
}

/// NICK and USER in either order register; the welcome burst is 001-005, the LUSERS replies
/// and 422 (no MOTD), addressed to the nick from the server's name; the client is in no
/// channel until it joins one, and then gets its JOIN and the names.
#[test]
fn registration_in_either_order_and_the_welcome_burst() {
    let (_server, addr) = start_irc(&[]);
    for (first, second) in [("NICK", "USER"), ("USER", "NICK")] {
        let mut c = IrcClient::connect(addr);
        let nick = format!("n{}", first.to_lowercase());
        for verb in [first, second] {
            c.send(&match verb {
                "NICK" => format!("NICK {nick}"),
                _ => "USER u 0 * :Real Name".to_owned(),
            });
        }
        let welcome = c.expect_command("001");
        assert_eq!(welcome.source.as_deref(), Some(SERVER_NAME));
        assert_eq!(welcome.params[0], nick);
        for code in ["002", "003", "004"] {
            c.expect_command(code);
        }
        let isupport = c.expect_command("005");
        for token in ["CHANTYPES=#", "CASEMAPPING=", "NICKLEN=", "CHANNELLEN="] {
            let all = c.seen.join("\n");
            assert!(all.contains(token), "no {token} in {isupport:?}");
        }
        c.expect_command("422");
        c.send("JOIN #lobby");
        let join = c.expect_command("JOIN");
        assert_eq!(join.nick(), Some(nick.as_str()));
        assert_eq!(join.params, ["#lobby"]);
        let names = c.expect_command("353");
        assert!(names.params.last().unwrap().contains(&nick));
        c.expect_command("366");
    }
}

/// `CAP LS 302` holds registration until `CAP END`; `REQ` is acknowledged or refused whole;
/// `LIST` shows what is on.
#[test]
fn capability_negotiation_holds_registration() {
    let (_server, addr) = start_irc(&[]);
    let mut c = IrcClient::connect(addr);
    c.send("CAP LS 302");
    let ls = c.expect_command("CAP");
    assert_eq!(ls.params[1], "LS");
    assert!(ls.params.last().unwrap().contains("server-time"));
    c.send("NICK capper");
    c.send("USER u 0 * :r");
    c.send("CAP REQ :server-time no-such-cap");
    let nak = c.expect_command("CAP");
    assert_eq!(nak.params[1], "NAK");
    c.send("CAP REQ :server-time echo-message");
    let ack = c.expect_command("CAP");
    assert_eq!(ack.params[1], "ACK");
    c.send("CAP LIST");
    let list = c.expect_command("CAP");
    assert!(list.params.last().unwrap().contains("echo-message"));
    assert!(c.seen.iter().all(|l| !l.contains(" 001 ")), "{:?}", c.seen);
    c.send("CAP END");
    c.expect_command("001");
}

/// Refusals have their numerics: 451 before registration, 421 unknown (once registered), 461 too few
/// parameters, 432 for a name the rules refuse, 433 for a name in use on another door or a
/// look-alike of one, and the client may then pick another nick; bytes that are not UTF-8 are
/// `FAIL ... INVALID_UTF8` in either phase.
#[test]
fn refusals_have_their_numerics() {
    let (server, addr) = start_irc(&[]);
    let _alice = server.join("alice");
    let mut c = IrcClient::connect(addr);
    c.send("JOIN #lobby");
    c.expect_command("451");
    // Not UTF-8: FAIL, before registration as after (it used to be dropped without a word).
    c.send_bytes(b"NICK \xff\xfe\r\n");
    let fail = c.expect_command("FAIL");
    assert_eq!(fail.params[..2], ["NICK", "INVALID_UTF8"]);
    c.send("USER onlyone");
    c.expect_command("461");
    c.send("NICK bad*nick");
    c.expect_command("432");
    c.send("USER u 0 * :r");
    c.send("NICK ALICE");
    let taken = c.expect_command("433");
    assert_eq!(taken.params[1], "ALICE");
    c.send("NICK a1ice");
    c.expect_command("433");
    c.send("NICK carol");
    c.expect_command("001");
    c.send("FROBNICATE x");
    c.expect_command("421");
    c.send("PRIVMSG");
    c.expect_command("411");
    c.send("PRIVMSG nobody :hi");
    c.expect_command("401");
    c.send_bytes(b"PRIVMSG #lobby :\xc3\r\n");
    let fail = c.expect_command("FAIL");
    assert_eq!(fail.params[..2], ["PRIVMSG", "INVALID_UTF8"]);
}

/// An nc user in `lobby` and an IRC user in `#lobby` see each other's lines, joins and
/// leaves, each in its own door's words.
#[test]
fn nc_and_irc_users_share_the_lobby() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut irc = registered(addr, "bob");
    nc.expect("* bob joined");
    nc.send("hello from nc");
    let said = irc.expect_command("PRIVMSG");
    assert_eq!(said.nick(), Some("alice"));
    assert_eq!(said.params, ["#lobby", "hello from nc"]);
    irc.send("PRIVMSG #lobby :hello from irc");
    nc.expect("bob: hello from irc");
    irc.send("PRIVMSG #lobby :\u{1}ACTION waves\u{1}");
    nc.expect("* bob waves");
    nc.send("/me waves back");
    let action = irc.expect_command("PRIVMSG");
    assert_eq!(action.params[1], "\u{1}ACTION waves back\u{1}");
    // Formatting codes never reach a terminal.
    irc.send("PRIVMSG #lobby :\u{2}bold\u{2} and \u{3}4red");
    let line = nc.expect("bob: ");
    assert_eq!(line, "bob: bold and red");
    // A text of formatting codes alone is no text (412): it would reach nc as an empty line.
    irc.send("PRIVMSG #lobby :\u{2}\u{3}04\u{f}");
    irc.expect_command("412");
    irc.send("PRIVMSG #lobby :after the empty one");
    nc.next_is("bob: after the empty one");
    let mut carol = server.join("carol");
    let join = irc.expect_command("JOIN");
    assert_eq!(join.nick(), Some("carol"));
    carol.send("/quit");
    let quit = irc.expect_command("QUIT");
    assert_eq!(quit.nick(), Some("carol"));
    // Nor in a reason (they used to reach nc as raw control bytes).
    irc.send("PART #lobby :\u{2}bold\u{2} \u{3}04red\u{f}");
    nc.expect("* bob left (part: bold red)");
    irc.send("JOIN #lobby");
    nc.expect("* bob joined");
    irc.send("QUIT :gone \u{1d}fishing");
    irc.expect_command("ERROR");
    nc.expect("* bob left (quit: gone fishing)");
}

/// Private lines go between doors both ways; an unknown nick is 401.
#[test]
fn private_lines_between_doors() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut irc = registered(addr, "bob");
    irc.send("PRIVMSG alice :psst");
    nc.expect("[private] bob: psst");
    nc.send("/msg bob hush");
    let private = irc.expect_command("PRIVMSG");
    assert_eq!(private.nick(), Some("alice"));
    assert_eq!(private.params, ["bob", "hush"]);
}

/// RFC 2812 3.3.2 and irctest messages.py testNotice: a `NOTICE` to a nick reaches an IRC
/// user as a `NOTICE` (it used to come as a `PRIVMSG`, which bots answer) and an nc user as a
/// private line, and nothing ever answers one: no `401` for a nick nobody has.
#[test]
fn a_notice_to_a_nick_stays_a_notice_and_is_never_answered() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut bob = registered(addr, "bob");
    let mut carol = registered(addr, "carol");
    bob.send("NOTICE carol :psst");
    let notice = carol.expect("bob's notice", |m| m.nick() == Some("bob"));
    assert_eq!(notice.command, "NOTICE");
    assert_eq!(notice.params, ["carol", "psst"]);
    bob.send("NOTICE alice :psst");
    nc.expect("[private] bob: psst");
    bob.send("NOTICE nobody :hi");
    bob.send("NOTICE no!body :hi");
    let seen = bob.sync("notices");
    assert!(
        seen.iter().all(|m| m.command == "JOIN"),
        "a notice was answered: {seen:?}"
    );
    bob.send("PRIVMSG nobody :hi");
    bob.expect_command("401");
}

/// A `/me` to a nick (CTCP `ACTION` in a `PRIVMSG` to a nick) stays an action: an IRC user
/// gets the `ACTION` back, an nc user a private action line. (It used to arrive as plain text.)
#[test]
fn a_private_action_stays_an_action() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut bob = registered(addr, "bob");
    let mut carol = registered(addr, "carol");
    bob.send("PRIVMSG carol :\u{1}ACTION waves\u{1}");
    let action = carol.expect("bob's action", |m| {
        m.nick() == Some("bob") && m.command == "PRIVMSG"
    });
    assert_eq!(action.params, ["carol", "\u{1}ACTION waves\u{1}"]);
    bob.send("PRIVMSG alice :\u{1}ACTION waves too\u{1}");
    nc.expect("[private] * bob waves too");
}

/// CTCP other than `ACTION` (irctest messages.py NoCTCPModeTestCase): a query and its reply go
/// between IRC users as sent, `PRIVMSG` and `NOTICE`; an nc user sees nothing of one (it would
/// answer nothing), and a CTCP to a room is dropped. (They used to be dropped everywhere.)
#[test]
fn ctcp_goes_between_irc_users_only() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut bob = registered(addr, "bob");
    let mut carol = registered(addr, "carol");
    nc.expect("* carol joined");
    bob.send("PRIVMSG carol :\u{1}VERSION\u{1}");
    let query = carol.expect("bob's query", |m| m.nick() == Some("bob"));
    assert_eq!(query.command, "PRIVMSG");
    assert_eq!(query.params, ["carol", "\u{1}VERSION\u{1}"]);
    carol.send("NOTICE bob :\u{1}VERSION raw 1.0\u{1}");
    let reply = bob.expect("carol's reply", |m| {
        m.nick() == Some("carol") && m.command != "JOIN"
    });
    assert_eq!(reply.command, "NOTICE");
    assert_eq!(reply.params, ["bob", "\u{1}VERSION raw 1.0\u{1}"]);
    bob.send("PRIVMSG alice :\u{1}PING 123\u{1}");
    bob.send("PRIVMSG #lobby :\u{1}TIME\u{1}");
    bob.send("PRIVMSG alice :after the ping");
    nc.next_is("[private] bob: after the ping");
    bob.send("PRIVMSG #lobby :after the time");
    nc.next_is("bob: after the time");
    let said = carol.expect_command("PRIVMSG");
    assert_eq!(said.params, ["#lobby", "after the time"]);
}

/// irctest list.py: `LIST #a,#b` lists only those rooms (the ones with people in them), a room
/// nobody is in gets just `321`/`323`, and `LIST` alone lists every room. (A filter used to be
/// dropped: every room came back.)
#[test]
fn list_names_only_the_rooms_asked_for() {
    let (_server, addr) = start_irc(&[]);
    let mut bob = registered(addr, "bob");
    bob.send("JOIN #rust,#go");
    bob.expect("the names of #go", |m| {
        m.command == "366" && m.params[1] == "#go"
    });
    let listed = |seen: Vec<Msg>| -> Vec<String> {
        assert_eq!(seen.first().map(|m| m.command.as_str()), Some("321"));
        assert_eq!(seen.last().map(|m| m.command.as_str()), Some("323"));
        (seen.iter().filter(|m| m.command == "322"))
            .map(|m| format!("{} {}", m.params[1], m.params[2]))
            .collect()
    };
    bob.send("LIST #rust,#nope");
    assert_eq!(listed(bob.sync("some")), ["#rust 1"]);
    bob.send("LIST #nope");
    assert!(listed(bob.sync("none")).is_empty());
    bob.send("LIST");
    assert_eq!(listed(bob.sync("all")), ["#go 1", "#lobby 1", "#rust 1"]);
}

/// An IRC user's joins and parts of rooms are not logged at info (arriving and leaving the
/// server are): a client looping over `JOIN #a,...` and `JOIN 0` used to write two log lines
/// per room per round.
#[test]
fn joins_and_parts_of_irc_rooms_stay_out_of_the_info_log() {
    let (server, addr) = start_irc(&[]);
    let mut bob = registered(addr, "bob");
    server.wait_log("bob arrived");
    for round in 0..3 {
        bob.send("JOIN #r1,#r2,#r3,#r4");
        bob.send("PART #r1,#r2 :bye");
        bob.send("JOIN 0");
        bob.sync(&format!("round{round}"));
    }
    bob.send("QUIT");
    bob.expect_command("ERROR");
    server.wait_log("bob left\n");
    let log = server.log();
    assert!(!log.contains("bob joined"), "{log}");
    assert!(!log.contains("bob left "), "{log}");
}

/// JOIN takes several channels; the joiner gets its JOIN and the names; PART leaves one; a
/// line to a channel the user is not in is refused; NAMES, TOPIC, WHO, LIST answer.
#[test]
fn several_channels_at_once() {
    let (server, addr) = start_irc(&[]);
    let mut irc = registered(addr, "bob");
    irc.send("JOIN #rust,#go");
    for channel in ["#rust", "#go"] {
        let join = irc.expect_command("JOIN");
        assert_eq!(join.params, [channel]);
        let end = irc.expect_command("366");
        assert_eq!(end.params[1], channel);
    }
    let mut nc = server.join("alice");
    nc.send("/join rust");
    nc.expect("you joined rust");
    irc.expect("alice's join", |m| {
        m.command == "JOIN" && m.params == ["#rust"]
    });
    nc.send("in rust");
    let said = irc.expect_command("PRIVMSG");
    assert_eq!(said.params, ["#rust", "in rust"]);
    irc.send("PART #go :bye");
    let part = irc.expect_command("PART");
    assert_eq!(part.params[0], "#go");
    irc.send("PRIVMSG #go :anyone?");
    irc.expect_command("404");
    irc.send("NOTICE #go :anyone?");
    irc.send("NAMES #go");
    let end = irc.expect_command("366");
    assert_eq!(end.params[1], "#go");
    irc.send("WHO #go");
    let end = irc.expect_command("315");
    assert_eq!(end.params[1], "#go");
    irc.send("NAMES #rust");
    let names = irc.expect_command("353");
    assert!(names.params[3].contains("alice") && names.params[3].contains("bob"));
    irc.expect_command("366");
    irc.send("TOPIC #rust");
    irc.expect_command("331");
    irc.send("WHO #rust");
    irc.expect_command("352");
    irc.expect_command("315");
    irc.send("LIST");
    irc.expect_command("321");
    irc.expect_command("323");
    irc.send("MODE #rust");
    irc.expect_command("324");
}

/// irctest part.py testPartMessage: a `PART` with a reason reaches the parting client and
/// the other members with that reason (the parting client's own used to lack it).
#[test]
fn part_with_a_reason_reaches_everyone_with_it() {
    let (_server, addr) = start_irc(&[]);
    let mut bar = registered(addr, "bar");
    let mut baz = registered(addr, "baz");
    bar.expect("baz's JOIN", |m| {
        m.command == "JOIN" && m.nick() == Some("baz")
    });
    bar.send("PART #lobby :bye everyone");
    for c in [&mut bar, &mut baz] {
        let part = c.expect_command("PART");
        assert_eq!(part.nick(), Some("bar"));
        assert_eq!(part.params, ["#lobby", "bye everyone"]);
    }
}

/// A PONG comes after every reply the server had queued for the client before it: the reply
/// to a PRIVMSG sent just before the PING (from the hub) arrives first.
#[test]
fn pong_comes_after_earlier_replies() {
    let (_server, addr) = start_irc(&[]);
    let mut irc = registered(addr, "bob");
    for round in 0..20 {
        irc.send("PRIVMSG nobody :hi");
        let seen = irc.sync(&format!("t{round}"));
        assert!(commands(&seen).contains(&"401"), "round {round}: {seen:?}");
    }
}

/// A line over 512 bytes is answered 417 and the connection stays up.
#[test]
fn an_overlong_line_is_417_not_a_disconnect() {
    let (_server, addr) = start_irc(&[]);
    let mut irc = registered(addr, "bob");
    irc.send(&format!("PRIVMSG #lobby :{}", "x".repeat(600)));
    irc.expect_command("417");
    irc.sync("still-here");
    // irctest LengthLimitTestCase: a 510-byte PING is answered, its PONG in at most 512 bytes
    // like every line this client reads (it used to be 531); a 511-byte one is 417.
    irc.send(&format!("PING {}", "x".repeat(505)));
    let pong = irc.expect_command("PONG");
    assert!(pong.params[1].starts_with(&"x".repeat(450)), "{pong:?}");
    irc.send(&format!("PING {}", "x".repeat(506)));
    irc.expect_command("417");
    irc.sync("still-here-too");
}

/// Joining replays the room's recent history, with the time it was said for server-time
/// clients.
#[test]
fn joining_replays_history() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    nc.send("before you came");
    nc.sync();
    let mut irc = IrcClient::connect(addr);
    irc.send("CAP LS 302");
    irc.send("CAP REQ :server-time");
    irc.send("NICK bob");
    irc.send("USER u 0 * :r");
    irc.send("CAP END");
    irc.send("JOIN #lobby");
    let replayed = irc.expect_command("PRIVMSG");
    assert_eq!(replayed.nick(), Some("alice"));
    assert_eq!(replayed.params, ["#lobby", "before you came"]);
    assert!(replayed.tag("time").is_some(), "{replayed:?}");
}

/// Closing the connection after QUIT is announced to the room; a client that quits before
/// registering gets ERROR.
#[test]
fn quit_before_registration_gets_error() {
    let (_server, addr) = start_irc(&[]);
    let mut c = IrcClient::connect(addr);
    c.send("QUIT");
    c.expect_command("ERROR");
    assert!(c.next().is_none());
}

/// With `echo-message`, the sender gets its own lines back as the room sees them (public
/// ones once stored, with their time for `server-time` clients), and its private lines too.
#[test]
fn echo_message_returns_the_senders_lines() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut irc = IrcClient::connect(addr);
    irc.send("CAP LS 302");
    irc.send("CAP REQ :echo-message server-time");
    irc.send("NICK bob");
    irc.send("USER u 0 * :r");
    irc.send("CAP END");
    irc.expect_command("001");
    irc.send("JOIN #lobby");
    irc.expect_command("366");
    irc.send("PRIVMSG #lobby :echoed");
    let echo = irc.expect_command("PRIVMSG");
    assert_eq!(echo.nick(), Some("bob"));
    assert_eq!(echo.params, ["#lobby", "echoed"]);
    assert!(echo.tag("time").is_some(), "{echo:?}");
    nc.expect("bob: echoed");
    irc.send("PRIVMSG alice :just you");
    let echo = irc.expect_command("PRIVMSG");
    assert_eq!(echo.params, ["alice", "just you"]);
    nc.expect("[private] bob: just you");
}

/// `NICK` renames: the rooms see it (nc users in their words), and replies address the new
/// nick; a nick in use is `433` and the old one stays.
#[test]
fn nick_renames_across_doors() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut irc = registered(addr, "bob");
    nc.expect("* bob joined");
    irc.send("NICK alice");
    irc.expect_command("433");
    irc.send("NICK robert");
    let renamed = irc.expect_command("NICK");
    assert_eq!(
        (renamed.nick(), renamed.params[0].as_str()),
        (Some("bob"), "robert")
    );
    nc.expect("bob is now known as robert");
    irc.send("PRIVMSG nobody :x");
    let missing = irc.expect_command("401");
    assert_eq!(missing.params[0], "robert");
    // In no room, the client still learns its new nick.
    let mut loner = IrcClient::connect(addr).register("loner");
    loner.send("NICK hermit");
    let renamed = loner.expect_command("NICK");
    assert_eq!(
        (renamed.nick(), renamed.params[0].as_str()),
        (Some("loner"), "hermit")
    );
}

/// With `message-tags`, a public line carries its `msgid` (the history row's id), the same
/// live, in the sender's echo and in a later replay; with `batch`, the replay on joining comes
/// inside a `chathistory` batch.
#[test]
fn msgid_and_the_replay_batch() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let tagged = |nick: &str, caps: &str| {
        let mut c = IrcClient::connect(addr);
        c.send("CAP LS 302");
        c.send(&format!("CAP REQ :{caps}"));
        c.send(&format!("NICK {nick}"));
        c.send("USER u 0 * :r");
        c.send("CAP END");
        c.expect_command("001");
        c
    };
    let mut bob = tagged("bob", "message-tags echo-message");
    bob.send("JOIN #lobby");
    bob.expect_command("366");
    nc.send("from nc");
    let live = bob.expect_command("PRIVMSG");
    let id = live.tag("msgid").expect("msgid");
    bob.send("PRIVMSG #lobby :from bob");
    let echo = bob.expect_command("PRIVMSG");
    let echo_id = echo.tag("msgid").expect("msgid on the echo");
    nc.expect("bob: from bob");

    let mut carol = tagged("carol", "batch message-tags server-time");
    carol.send("JOIN #lobby");
    let open = carol.expect_command("BATCH");
    assert_eq!(open.params[1..], ["chathistory", "#lobby"], "{open:?}");
    let reference = open.params[0].strip_prefix('+').expect("+id").to_owned();
    let first = carol.expect_command("PRIVMSG");
    assert_eq!(first.tag("batch").as_deref(), Some(reference.as_str()));
    assert_eq!(first.tag("msgid"), Some(id));
    assert!(first.tag("time").is_some());
    let second = carol.expect_command("PRIVMSG");
    assert_eq!(second.tag("msgid"), Some(echo_id));
    let close = carol.expect_command("BATCH");
    assert_eq!(close.params, [format!("-{reference}")]);
}

/// Client-only tags (IRCv3 message-tags): `TAGMSG` to a channel and to a nick, and tags on a
/// channel or private line, reach `message-tags` clients only (with `echo-message`, the sender too); a
/// client without the capability and an nc user see nothing of them, nor does a replay. 4095
/// bytes of tag data are `417` and relay nothing.
#[test]
fn client_only_tags_reach_message_tags_clients_only() {
    let (server, addr) = start_irc(&[]);
    let mut dave = server.join("dave");
    let tagged = |nick: &str, caps: &str| {
        let mut c = IrcClient::connect(addr);
        c.send("CAP LS 302");
        c.send(&format!("CAP REQ :{caps}"));
        c.send(&format!("NICK {nick}"));
        c.send("USER u 0 * :r");
        c.send("CAP END");
        c.expect_command("001");
        c.send("JOIN #lobby");
        c.expect_command("366");
        c
    };
    let mut alice = tagged("alice", "message-tags echo-message");
    let mut bob = tagged("bob", "message-tags");
    let mut carol = registered(addr, "carol");
    let before = |c: &mut IrcClient, marker: &str| {
        let start = c.seen.len();
        c.expect(marker, |m| m.params.last().is_some_and(|p| p == marker));
        c.seen[start..].to_vec()
    };

    // To the channel.
    alice.send("@+typing=active TAGMSG #lobby");
    let echo = alice.expect_command("TAGMSG");
    assert_eq!(echo.params, ["#lobby"]);
    assert_eq!(echo.tag("+typing").as_deref(), Some("active"));
    let got = bob.expect_command("TAGMSG");
    assert_eq!(got.nick(), Some("alice"));
    assert_eq!(got.params, ["#lobby"]);
    assert_eq!(got.tag("+typing").as_deref(), Some("active"));
    alice.send("PRIVMSG #lobby :after the typing");
    let seen = before(&mut carol, "after the typing");
    assert!(!seen.iter().any(|l| l.contains("TAGMSG")), "{seen:?}");
    dave.expect("alice: after the typing");

    // On a channel line: relayed live, never stored.
    alice.send("@+draft/reply=1;+draft/react=yes PRIVMSG #lobby :a tagged line");
    let echo = alice.expect("the echo", |m| {
        m.params.last().is_some_and(|p| p == "a tagged line")
    });
    assert_eq!(echo.tag("+draft/reply").as_deref(), Some("1"));
    let got = bob.expect("the tagged line", |m| {
        m.command == "PRIVMSG" && m.params[1] != "after the typing"
    });
    assert_eq!(got.params, ["#lobby", "a tagged line"]);
    assert_eq!(got.tag("+draft/reply").as_deref(), Some("1"));
    assert_eq!(got.tag("+draft/react").as_deref(), Some("yes"));
    assert!(got.tag("msgid").is_some());
    let seen = before(&mut carol, "a tagged line");
    assert!(!seen.last().unwrap().starts_with('@'), "{seen:?}");
    dave.next_is("alice: a tagged line");
    let mut erin = tagged("erin", "message-tags");
    // The replay follows the names (`366`).
    erin.expect("the replay", |m| {
        m.params.last().is_some_and(|p| p == "a tagged line")
    });
    let replayed = erin.seen.iter().find(|l| l.ends_with("a tagged line"));
    let replayed = replayed.expect("the line replayed on joining");
    assert!(replayed.starts_with("@msgid="), "{replayed}");
    assert!(!replayed.contains("+draft"), "{replayed}");
    dave.expect("* erin joined");

    // To nicks, and on a private line.
    alice.send("@+draft/react=lol;+typing=done TAGMSG bob");
    let echo = alice.expect_command("TAGMSG");
    assert_eq!(echo.params, ["bob"]);
    let got = bob.expect_command("TAGMSG");
    assert_eq!(got.params, ["bob"]);
    assert_eq!(got.tag("+draft/react").as_deref(), Some("lol"));
    assert_eq!(got.tag("+typing").as_deref(), Some("done"));
    alice.send("@+draft/reply=5 PRIVMSG bob :replying");
    let echo = alice.expect_command("PRIVMSG");
    assert_eq!(echo.tag("+draft/reply").as_deref(), Some("5"));
    let got = bob.expect_command("PRIVMSG");
    assert_eq!(got.params, ["bob", "replying"]);
    assert_eq!(got.tag("+draft/reply").as_deref(), Some("5"));
    alice.send("@+typing=active TAGMSG carol");
    alice.send("@+draft/reply=5 PRIVMSG carol :untagged for you");
    let seen = before(&mut carol, "untagged for you");
    assert!(!seen.iter().any(|l| l.contains("TAGMSG")), "{seen:?}");
    assert!(!seen.last().unwrap().starts_with('@'), "{seen:?}");
    alice.send("@+typing=active TAGMSG dave");
    alice.send("@+draft/reply=5 PRIVMSG dave :plain for nc");
    dave.next_is("[private] alice: plain for nc");

    // Tags from a client without message-tags are not relayed, nor is its TAGMSG.
    carol.send("@+typing=active TAGMSG bob");
    carol.send("@+draft/reply=5 PRIVMSG bob :from carol");
    let seen = before(&mut bob, "from carol");
    assert!(!seen.iter().any(|l| l.contains("TAGMSG")), "{seen:?}");
    assert!(!seen.last().unwrap().contains("+draft/reply"), "{seen:?}");

    // The spec's limit on client tag data: 4094 bytes pass, 4095 are 417.
    let tag = |len: usize| format!("@+a={} TAGMSG bob", "b".repeat(len - "+a=".len()));
    alice.send(&tag(4094));
    let got = bob.expect_command("TAGMSG");
    assert_eq!(got.tags.len(), 4094);
    alice.send(&tag(4095));
    alice.expect_command("417");
    alice.send("PRIVMSG bob :after the long one");
    let seen = before(&mut bob, "after the long one");
    assert!(!seen.iter().any(|l| l.contains("TAGMSG")), "{seen:?}");
}
