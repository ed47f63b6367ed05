//! IRC formatting codes (bold, colour, italics, underline, reverse, monospace, strikethrough,
//! reset) pass between IRC users, live and in replays, and never reach an nc terminal or the
//! stored `body` as control bytes (docs/IRC.md, "Formatting").
mod common;

use common::irc::{start_irc, IrcClient};

/// Every formatting code once, with colour parameters, around plain words.
const FORMATTED: &str =
    "\u{2}bold\u{2} \u{3}04,12red\u{3} \u{1d}italic\u{1d} \u{1f}under\u{1f} \u{16}rev\u{16} \u{11}mono\u{11} \u{1e}strike\u{1e}\u{f} end";
const PLAIN: &str = "bold red italic under rev mono strike end";

fn no_controls(line: &str) -> bool {
    !line.chars().any(char::is_control)
}

/// An IRC user's formatted line reaches another IRC user as sent and an nc user as plain text;
/// `/me` and private lines alike. The history stores plain text in `body` and the formatted text
/// beside it, and replays each door its own: formatted to IRC, plain to nc.
#[test]
fn formatting_passes_between_irc_users_only() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("carol");
    let mut alice = IrcClient::connect(addr).register("alice");
    let mut bob = IrcClient::connect(addr).register("bob");
    for c in [&mut alice, &mut bob] {
        c.send("JOIN #lobby");
        c.expect_command("366");
    }
    alice.send(&format!("PRIVMSG #lobby :{FORMATTED}"));
    let got = bob.expect("the formatted line", |m| m.command == "PRIVMSG");
    assert_eq!(got.params, ["#lobby", FORMATTED]);
    let shown = nc.expect(PLAIN);
    assert!(no_controls(&shown), "{shown:?}");
    assert!(shown.ends_with(&format!("alice: {PLAIN}")), "{shown:?}");

    alice.send("PRIVMSG #lobby :\u{1}ACTION waves \u{2}hard\u{2}\u{1}");
    let got = bob.expect("the action", |m| m.command == "PRIVMSG");
    assert_eq!(got.params[1], "\u{1}ACTION waves \u{2}hard\u{2}\u{1}");
    let shown = nc.expect("waves hard");
    assert!(no_controls(&shown), "{shown:?}");

    alice.send("PRIVMSG carol :\u{3}3green\u{3} secret");
    let shown = nc.expect("green secret");
    assert!(no_controls(&shown), "{shown:?}");
    alice.send("PRIVMSG bob :\u{3}3green\u{3} secret");
    let got = bob.expect("the private line", |m| m.command == "PRIVMSG");
    assert_eq!(got.params, ["bob", "\u{3}3green\u{3} secret"]);

    // A topic or a reason reaches every door, so it is plain for all.
    alice.send("PART #lobby :\u{2}bye\u{2}");
    let part = bob.expect("the part", |m| m.command == "PART");
    assert_eq!(part.params, ["#lobby", "bye"]);
    nc.expect("bye");

    // Replays: formatted to an IRC client, plain to nc.
    let mut dave = IrcClient::connect(addr).register("dave");
    dave.send("JOIN #lobby");
    let replayed = dave.expect("the replayed line", |m| {
        m.command == "PRIVMSG" && m.params[1].contains("bold")
    });
    assert_eq!(replayed.params[1], FORMATTED);
    let (_erin, replay) = server.join_replay("erin");
    let line = replay
        .iter()
        .find(|l| l.contains("bold"))
        .expect("replayed");
    assert!(no_controls(line), "{line:?}");
    assert!(line.ends_with(&format!("alice: {PLAIN}")), "{line:?}");

    let db = server.open_db();
    let (body, formatted): (String, Option<String>) = db
        .query_row(
            "SELECT body, formatted FROM messages WHERE body LIKE 'bold%'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the stored line");
    assert_eq!(body, PLAIN);
    assert_eq!(formatted.as_deref(), Some(FORMATTED));
    let controls: i64 = db
        .query_row(
            "SELECT count(*) FROM messages WHERE body GLOB ('*' || char(2) || '*')
                 OR body GLOB ('*' || char(3) || '*')",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(controls, 0);
    let formatted_rows: i64 = db
        .query_row(
            "SELECT count(*) FROM messages WHERE formatted IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    // The formatted line and the formatted /me; nothing else has formatting to keep.
    assert_eq!(formatted_rows, 2);
}
