//! `CHATHISTORY` over the IRC door, from the draft/chathistory specification: batches of
//! stored lines by `msgid` reference, oldest first, with the same `msgid` and `time` as live;
//! no replay on joining for clients that fetch history themselves.
mod common;

use std::net::SocketAddr;

use common::irc::{start_irc, IrcClient, Msg};
use smolchat::door::irc::history::{select, Bound, Plan};
use smolchat::door::irc::time;

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
/// a client with draft/chathistory gets no replay on joining; a channel the client is not in
/// and a bad subcommand are FAIL; a nick's history is an empty batch.
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

    c.send("CHATHISTORY LATEST #elsewhere * 10");
    let fail = c.expect_command("FAIL");
    assert_eq!(fail.params[..2], ["CHATHISTORY", "INVALID_TARGET"]);
    c.send("CHATHISTORY SIDEWAYS #lobby * 10");
    let fail = c.expect_command("FAIL");
    assert_eq!(fail.params[..2], ["CHATHISTORY", "INVALID_PARAMS"]);
}

/// Sends `CHATHISTORY args` and returns the batch's lines as `(msgid, time in ms, text)`.
fn history_rows(c: &mut IrcClient, args: &str) -> Vec<(i64, i64, String)> {
    c.send(&format!("CHATHISTORY {args}"));
    let open = c.expect_command("BATCH");
    let reference = open.params[0].trim_start_matches('+').to_owned();
    let mut rows = Vec::new();
    loop {
        let m: Msg = c.next().expect("the batch's end");
        if m.command == "BATCH" {
            assert_eq!(m.params, [format!("-{reference}")]);
            return rows;
        }
        let id = m
            .tag("msgid")
            .expect("msgid")
            .parse()
            .expect("numeric msgid");
        let at = time::parse(&m.tag("time").expect("time")).expect("a server-time");
        rows.push((id, at, m.params[1].clone()));
    }
}

/// Every subcommand by `timestamp=` (and a reference of each kind in one BETWEEN) selects what
/// the specification's selection over the stored `(msgid, time)` pairs says, with instants on,
/// between and beyond the lines; `MSGREFTYPES` offers both kinds.
#[test]
fn chathistory_by_timestamp() {
    // Hundreds of requests: without the line rate, which would only delay them.
    let (server, addr) = start_irc(&["--rate-per-sec", "0"]);
    let mut nc = server.join("alice");
    let mut watcher = historian(addr, "watcher");
    for n in 1..=8 {
        nc.send(&format!("line {n}"));
        // Lines a few milliseconds apart, so that instants fall between them too.
        watcher.expect("the line", |m| {
            m.command == "PRIVMSG" && m.params[1] == format!("line {n}")
        });
    }
    let mut c = IrcClient::connect(addr);
    c.send("CAP LS 302");
    c.send("CAP REQ :draft/chathistory batch message-tags server-time");
    c.send("NICK bob");
    c.send("USER u 0 * :r");
    c.send("CAP END");
    c.expect("MSGREFTYPES", |m| {
        m.command == "005" && m.params.iter().any(|p| p == "MSGREFTYPES=msgid,timestamp")
    });
    c.send("JOIN #lobby");
    c.expect_command("366");
    let stored = history_rows(&mut c, "LATEST #lobby * 100");
    assert_eq!(stored.len(), 8);
    let pairs: Vec<(i64, i64)> = stored.iter().map(|&(id, at, _)| (id, at)).collect();
    let stamp = |ms: i64| format!("timestamp={}", time::format(ms));
    // Instants on each line, a millisecond either side, and beyond both ends.
    let mut instants: Vec<i64> = pairs
        .iter()
        .flat_map(|&(_, at)| [at - 1, at, at + 1])
        .collect();
    instants.extend([0, pairs[7].1 + 60_000]);
    for &at in &instants {
        for limit in [1, 3, 100] {
            let plans = [
                (
                    "LATEST",
                    Plan::Latest {
                        after: Some(Bound::Time(at)),
                    },
                ),
                ("BEFORE", Plan::Before(Bound::Time(at))),
                ("AFTER", Plan::After(Bound::Time(at))),
                ("AROUND", Plan::Around(Bound::Time(at))),
            ];
            for (sub, plan) in plans {
                let got = history_rows(&mut c, &format!("{sub} #lobby {} {limit}", stamp(at)));
                let want: Vec<&(i64, i64, String)> = select(plan, limit, &pairs)
                    .into_iter()
                    .map(|i| &stored[i])
                    .collect();
                assert_eq!(got.iter().collect::<Vec<_>>(), want, "{sub} {at} {limit}");
            }
        }
    }
    for (from, to) in [
        (pairs[1].1, pairs[6].1),
        (pairs[6].1, pairs[1].1),
        (0, pairs[7].1 + 60_000),
    ] {
        for limit in [2, 100] {
            let plan = Plan::Between {
                from: Bound::Time(from),
                to: Bound::Time(to),
            };
            let args = format!("BETWEEN #lobby {} {} {limit}", stamp(from), stamp(to));
            let want: Vec<(i64, i64, String)> = select(plan, limit, &pairs)
                .into_iter()
                .map(|i| stored[i].clone())
                .collect();
            assert_eq!(history_rows(&mut c, &args), want, "{args}");
        }
    }
    // A msgid and a timestamp together: lines after the second, before the seventh's instant.
    let args = format!(
        "BETWEEN #lobby msgid={} {} 100",
        pairs[1].0,
        stamp(pairs[6].1)
    );
    let texts: Vec<String> = history_rows(&mut c, &args)
        .into_iter()
        .map(|r| r.2)
        .collect();
    let want: Vec<String> = stored
        .iter()
        .filter(|&&(id, at, _)| id > pairs[1].0 && at < pairs[6].1)
        .map(|r| r.2.clone())
        .collect();
    assert_eq!(texts, want);
    assert!(texts.contains(&"line 3".to_owned()), "{texts:?}");
}

/// `TARGETS` lists the rooms the client is in that had lines between the two instants (in either
/// order), each with its newest line's instant, oldest first, in a `draft/chathistory-targets`
/// batch; rooms it is not in and quiet windows are left out; the limit counts.
#[test]
fn chathistory_targets_lists_the_clients_rooms() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("alice");
    let mut c = historian(addr, "bob");
    c.send("JOIN #rust,#quiet");
    c.expect("the last join", |m| {
        m.command == "366" && m.params[1] == "#quiet"
    });
    let mut elsewhere = historian(addr, "carol");
    elsewhere.send("JOIN #secret,#rust");
    elsewhere.expect("the last join", |m| {
        m.command == "366" && m.params[1] == "#rust"
    });
    elsewhere.send("PRIVMSG #secret :hidden");
    nc.send("in the lobby");
    c.expect("the lobby's line", |m| {
        m.command == "PRIVMSG" && m.params[1] == "in the lobby"
    });
    c.send("PRIVMSG #rust :about rust");
    // A line is relayed once stored: carol seeing it means the history has it.
    elsewhere.expect("the line in #rust", |m| {
        m.command == "PRIVMSG" && m.params[1] == "about rust"
    });
    let rust = history_rows(&mut c, "LATEST #rust * 1").remove(0);
    let lobby = history_rows(&mut c, "LATEST #lobby * 1").remove(0);
    let targets = |c: &mut IrcClient, args: &str| -> Vec<(String, String)> {
        c.send(&format!("CHATHISTORY TARGETS {args}"));
        let open = c.expect_command("BATCH");
        assert_eq!(open.params[1], "draft/chathistory-targets", "{open:?}");
        let reference = open.params[0].trim_start_matches('+').to_owned();
        let mut found = Vec::new();
        loop {
            let m: Msg = c.next().expect("the batch's end");
            if m.command == "BATCH" {
                assert_eq!(m.params, [format!("-{reference}")]);
                return found;
            }
            assert_eq!(m.command, "CHATHISTORY", "{m:?}");
            assert_eq!(m.tag("batch").as_deref(), Some(reference.as_str()), "{m:?}");
            assert_eq!(m.params[0], "TARGETS", "{m:?}");
            found.push((m.params[1].clone(), m.params[2].clone()));
        }
    };
    let all = "timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z";
    let want = [
        ("#lobby".to_owned(), time::format(lobby.1)),
        ("#rust".to_owned(), time::format(rust.1)),
    ];
    assert_eq!(targets(&mut c, &format!("{all} 10")), want);
    let reversed = "timestamp=2100-01-01T00:00:00.000Z timestamp=2000-01-01T00:00:00.000Z 10";
    assert_eq!(targets(&mut c, reversed), want);
    assert_eq!(targets(&mut c, &format!("{all} 1")), want[..1]);
    let after_lobby = format!(
        "timestamp={} timestamp=2100-01-01T00:00:00.000Z 10",
        time::format(lobby.1)
    );
    let found = targets(&mut c, &after_lobby);
    assert!(!found.iter().any(|(room, _)| room == "#lobby"), "{found:?}");
    assert!(targets(
        &mut c,
        "timestamp=2000-01-01T00:00:00.000Z timestamp=2000-01-02T00:00:00.000Z 10"
    )
    .is_empty());
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
