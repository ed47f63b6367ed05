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
