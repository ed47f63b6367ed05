//! `CHATHISTORY` over the IRC door, from the draft/chathistory specification: batches of
//! stored lines by `msgid` reference, oldest first, with the same `msgid` and `time` as live;
//! no replay on joining for clients that fetch history themselves.
mod common;

use std::net::SocketAddr;

use common::irc::{start_irc, IrcClient, Msg};

/// A client with `draft/chathistory` and the capabilities it goes with, in `#lobby`.
fn historian(addr: SocketAddr, nick: &str) -> IrcClient {
    let mut c = IrcClient::connect(addr);
    c.send("CAP LS 302");
    c.send("CAP REQ :draft/chathistory batch message-tags server-time");
    c.send(&format!("NICK {nick}"));
    c.send("USER u 0 * :r");
    c.send("CAP END");
    c.expect_command("001");
    c.send("JOIN #lobby");
    c.expect_command("366");
    c
}

/// Sends `CHATHISTORY args` and returns the texts of the batch's lines, checking the batch.
fn history(c: &mut IrcClient, args: &str) -> Vec<String> {
    c.send(&format!("CHATHISTORY {args}"));
    let open = c.expect_command("BATCH");
    assert_eq!(open.params[1], "chathistory", "{open:?}");
    let reference = open.params[0].trim_start_matches('+').to_owned();
    let mut texts = Vec::new();
    loop {
        let m: Msg = c.next().expect("the batch's end");
        if m.command == "BATCH" {
            assert_eq!(m.params, [format!("-{reference}")]);
            return texts;
        }
        assert_eq!(m.tag("batch").as_deref(), Some(reference.as_str()), "{m:?}");
        assert!(m.tag("msgid").is_some() && m.tag("time").is_some(), "{m:?}");
        texts.push(m.params[1].clone());
    }
}

/// LATEST, BEFORE, AFTER, AROUND and BETWEEN by msgid select as the specification says;
/// a client with draft/chathistory gets no replay on joining; timestamps, a channel the
/// client is not in and a bad subcommand are FAIL; a nick's history is an empty batch.
#[test]
fn chathistory_by_msgid() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    // A line is relayed once stored: seeing the last one live means all are in the history.
    let mut watcher = historian(addr, "watcher");
    for n in 1..=6 {
        nc.send(&format!("line {n}"));
    }
    watcher.expect("the last line", |m| {
        m.command == "PRIVMSG" && m.params[1] == "line 6"
    });
    let mut c = historian(addr, "bob");
    // No replay on joining: the first PRIVMSG is inside the answer's batch.
    c.send("CHATHISTORY LATEST #lobby * 100");
    c.expect_command("BATCH");
    assert!(
        !c.seen.iter().any(|l| l.contains(" PRIVMSG ")),
        "replayed on joining: {:?}",
        c.seen
    );
    let mut ids = Vec::new();
    loop {
        let m = c.next().expect("line");
        if m.command == "BATCH" {
            break;
        }
        assert_eq!(m.command, "PRIVMSG", "{m:?}");
        assert!(m.tag("batch").is_some(), "{m:?} outside the batch");
        ids.push(m.tag("msgid").expect("msgid"));
    }
    assert_eq!(ids.len(), 6);
    let id = |n: usize| format!("msgid={}", ids[n - 1]);
    let texts = |v: &[usize]| -> Vec<String> { v.iter().map(|n| format!("line {n}")).collect() };
    assert_eq!(history(&mut c, "LATEST #lobby * 2"), texts(&[5, 6]));
    assert_eq!(
        history(&mut c, &format!("LATEST #lobby {} 10", id(4))),
        texts(&[5, 6])
    );
    assert_eq!(
        history(&mut c, &format!("BEFORE #lobby {} 2", id(4))),
        texts(&[2, 3])
    );
    assert_eq!(
        history(&mut c, &format!("AFTER #lobby {} 2", id(4))),
        texts(&[5, 6])
    );
    assert_eq!(
        history(&mut c, &format!("AROUND #lobby {} 3", id(3))),
        texts(&[2, 3, 4])
    );
    assert_eq!(
        history(&mut c, &format!("BETWEEN #lobby {} {} 10", id(1), id(5))),
        texts(&[2, 3, 4])
    );
    assert_eq!(
        history(&mut c, &format!("BETWEEN #lobby {} {} 2", id(6), id(1))),
        texts(&[4, 5])
    );
    assert!(history(&mut c, "LATEST alice * 10").is_empty());

    c.send("CHATHISTORY LATEST #lobby timestamp=2020-01-01T00:00:00.000Z 10");
    let fail = c.expect_command("FAIL");
    assert_eq!(fail.params[..2], ["CHATHISTORY", "INVALID_PARAMS"]);
    c.send("CHATHISTORY LATEST #elsewhere * 10");
    let fail = c.expect_command("FAIL");
    assert_eq!(fail.params[..2], ["CHATHISTORY", "INVALID_TARGET"]);
    c.send("CHATHISTORY SIDEWAYS #lobby * 10");
    let fail = c.expect_command("FAIL");
    assert_eq!(fail.params[..2], ["CHATHISTORY", "INVALID_PARAMS"]);
}

/// The server `NOTICE`s answering everything sent before `PING token`, as texts.
fn notices(c: &mut IrcClient, token: &str) -> Vec<String> {
    c.sync(token)
        .into_iter()
        .map(|m| {
            assert_eq!(m.command, "NOTICE", "{m:?}");
            assert_eq!(m.source.as_deref(), Some(common::irc::SERVER_NAME), "{m:?}");
            assert_eq!(m.params[0], "bob", "{m:?}");
            m.params[1].clone()
        })
        .collect()
}

/// `SEARCH` (issue 22), as irssi and WeeChat send an unknown `/search`: matches as server
/// notices, newest first with time and sender, between a header and a footer; `SEARCH #room`
/// alone pages to older matches; a phrase is one; a malformed query, a room the user is not in
/// and an unnamed room among several are one line each, and the connection stays.
#[test]
fn search_pages_through_a_room() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut c = IrcClient::connect(addr).register("bob");
    c.send("SEARCH needle");
    let m = c.expect_command("461");
    assert_eq!(m.params[1], "SEARCH", "{m:?}");
    c.send("JOIN #lobby");
    c.expect_command("366");
    c.sync("joined");
    for n in 1..=25 {
        nc.send(&format!("needle {n}"));
        if n % 5 == 0 {
            nc.send("hay");
        }
    }
    // A line is relayed once stored: seeing the last one live means all are in the history.
    c.expect("needle 25", |m| {
        m.command == "PRIVMSG" && m.params[1] == "needle 25"
    });
    c.expect("the last line", |m| {
        m.command == "PRIVMSG" && m.params[1] == "hay"
    });
    c.sync("relayed");

    // In exactly one room, the room may go unnamed.
    c.send("SEARCH needle");
    let page = notices(&mut c, "first");
    assert_eq!(page.len(), 22, "{page:#?}");
    assert_eq!(page[0], "Search of #lobby for needle, newest first:");
    for (line, n) in page[1..21].iter().zip((6..=25).rev()) {
        assert!(line.starts_with("[20"), "{line:?}: no time");
        assert!(line.ends_with(&format!("] alice: needle {n}")), "{line:?}");
    }
    assert_eq!(
        page[21],
        "End of search (20 matches; SEARCH #lobby alone shows older ones)"
    );

    c.send("SEARCH #lobby");
    let older = notices(&mut c, "older");
    assert_eq!(older.len(), 7, "{older:#?}");
    assert_eq!(older[0], "Search of #lobby for needle, older matches:");
    for (line, n) in older[1..6].iter().zip((1..=5).rev()) {
        assert!(line.ends_with(&format!("] alice: needle {n}")), "{line:?}");
    }
    assert_eq!(older[6], "End of search (5 matches, no older ones)");
    // Nothing older: the search is over.
    c.send("SEARCH #lobby");
    let over = notices(&mut c, "over");
    assert_eq!(over.len(), 1, "{over:#?}");
    assert!(
        over[0].starts_with("search: nothing to continue in #lobby"),
        "{over:?}"
    );

    c.send("SEARCH #lobby :\"needle 7\"");
    let phrase = notices(&mut c, "phrase");
    assert_eq!(phrase.len(), 3, "{phrase:#?}");
    assert!(phrase[1].ends_with("] alice: needle 7"), "{phrase:?}");
    assert_eq!(phrase[2], "End of search (1 match, no older ones)");

    c.send("SEARCH #lobby :\"unclosed");
    let refused = notices(&mut c, "malformed");
    assert_eq!(refused.len(), 1, "{refused:#?}");
    assert!(
        refused[0].starts_with("search: a quote is not closed"),
        "{refused:?}"
    );

    c.send("SEARCH #elsewhere needle");
    let m = c.expect_command("442");
    assert_eq!(m.params[1], "#elsewhere", "{m:?}");
    c.send("JOIN #other");
    c.expect_command("366");
    c.send("SEARCH needle");
    let m = c.expect_command("461");
    assert!(m.params[2].contains("SEARCH #room"), "{m:?}");
    // A line longer than an IRC line comes in pieces, each within 512 bytes (`next` checks).
    let long = format!("longword {}", "abc ".repeat(150));
    nc.send(&long);
    nc.send("after the long line");
    c.expect("the line after", |m| {
        m.command == "PRIVMSG" && m.params[1] == "after the long line"
    });
    c.send("SEARCH #lobby longword");
    let pieces = notices(&mut c, "long");
    assert!(pieces.len() >= 4, "{pieces:#?}");
    let text: String = pieces[1..pieces.len() - 1].concat();
    assert!(text.ends_with(long.trim_end()), "{text:?}");
    // Still connected, and the stored lines untouched.
    c.send("SEARCH #lobby hay");
    let hay = notices(&mut c, "alive");
    assert_eq!(
        hay.last().map(String::as_str),
        Some("End of search (5 matches, no older ones)")
    );
}
