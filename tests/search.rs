//! `/search` over real TCP: matches in your room, newest first, with time and sender, paged like
//! `/history`; prefix and phrase queries; malformed queries answered with one line; other rooms
//! and private lines never found; searches count against the rate limit.
mod common;
use common::history::{database_with, days_ago, Msg};
use common::{message_rows, unstamp, Client, Server};

/// Sends `/search ARGS` and returns the page: the lines from its first marker to its last.
fn search(client: &mut Client, args: &str) -> Vec<String> {
    client.send(format!("/search {args}").trim_end());
    let lines = client.lines_until("--- end of search");
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("--- search of "))
        .unwrap_or_else(|| panic!("no search header in {lines:?}"));
    lines[start..].to_vec()
}

/// The matches of a page, stamps removed (panics on an unstamped line between the markers).
fn hits(page: &[String]) -> Vec<&str> {
    page[1..page.len() - 1]
        .iter()
        .filter(|l| !l.starts_with("--- "))
        .map(|l| unstamp(l))
        .collect()
}

/// A lobby with 45 old lines mentioning rust, some that do not, and rust in another room.
fn rusty_lobby() -> tempfile::TempDir {
    let mut rows = Vec::new();
    for n in 1..=45 {
        rows.push(Msg {
            at: days_ago(2),
            sender: "oldie",
            room: "lobby",
            body: format!("rust tip {n}"),
        });
        rows.push(Msg {
            at: days_ago(2),
            sender: "oldie",
            room: "lobby",
            body: format!("nothing to see {n}"),
        });
    }
    rows.push(Msg {
        at: days_ago(1),
        sender: "carol",
        room: "other",
        body: "rust elsewhere".into(),
    });
    database_with(rows)
}

/// A search finds the room's matching lines newest first, each with its time and sender, a page
/// of 20 at a time; `/search` alone goes on with older ones until there are none, like
/// `/history`.
#[test]
fn search_pages_newest_first() {
    let server = Server::start_in(rusty_lobby(), &["--rate-per-sec", "0"]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    bob.send("Rust is great");
    alice.next_is("bob: Rust is great");

    let page = search(&mut alice, "rust");
    assert_eq!(page[0], "--- search of lobby for rust, newest first ---");
    let found = hits(&page);
    assert_eq!(found.len(), 20, "{page:?}");
    assert_eq!(found[0], "bob: Rust is great");
    let tips: Vec<String> = (27..=45)
        .rev()
        .map(|n| format!("oldie: rust tip {n}"))
        .collect();
    assert_eq!(found[1..], tips);
    assert!(
        page[1].starts_with("[20"),
        "a hit carries its time: {page:?}"
    );
    assert_eq!(
        page.last().unwrap(),
        "--- end of search (20 matches; /search alone shows older ones) ---"
    );

    let page = search(&mut alice, "");
    assert_eq!(page[0], "--- search of lobby for rust, older matches ---");
    let tips: Vec<String> = (7..=26)
        .rev()
        .map(|n| format!("oldie: rust tip {n}"))
        .collect();
    assert_eq!(hits(&page), tips);

    let page = search(&mut alice, "");
    let tips: Vec<String> = (1..=6)
        .rev()
        .map(|n| format!("oldie: rust tip {n}"))
        .collect();
    assert_eq!(hits(&page), tips);
    assert_eq!(
        page.last().unwrap(),
        "--- end of search (6 matches, no older ones) ---"
    );

    alice.send("/search");
    alice.next_is(
        "no search to continue in this room: /search TEXT finds TEXT in your room's history",
    );
    // Nothing of it reached bob.
    alice.send("marker");
    bob.next_is("alice: marker");
}

/// `rust*` finds words that start with rust; `"quick brown"` finds those words in that order;
/// case and accents do not matter.
#[test]
fn prefix_and_phrase_queries() {
    let rows = [
        "the quick brown fox",
        "brown quick",
        "rusty nail",
        "a rustacean",
        "trust me",
        "un Café crème",
    ]
    .map(|body| Msg {
        at: days_ago(1),
        sender: "dave",
        room: "lobby",
        body: body.into(),
    });
    let server = Server::start_in(database_with(rows), &[]);
    let mut alice = server.join("alice");

    let page = search(&mut alice, "rust*");
    assert_eq!(page[0], "--- search of lobby for rust*, newest first ---");
    assert_eq!(hits(&page), ["dave: a rustacean", "dave: rusty nail"]);
    assert_eq!(
        hits(&search(&mut alice, "\"quick brown\"")),
        ["dave: the quick brown fox"]
    );
    assert_eq!(
        hits(&search(&mut alice, "quick brown")),
        ["dave: brown quick", "dave: the quick brown fox"]
    );
    assert_eq!(
        hits(&search(&mut alice, "CAFE creme")),
        ["dave: un Café crème"]
    );
    let none = search(&mut alice, "nowhere");
    assert_eq!(none.len(), 2, "{none:?}");
    assert_eq!(none[1], "--- end of search (no matches) ---");
}

/// A malformed query gets one line saying what is wrong (never an SQL error); text that FTS5
/// would read as operators or column names is searched for as words. Nothing is relayed or
/// stored.
#[test]
fn malformed_queries_are_answered_in_one_line() {
    let server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send("/search \"unclosed phrase");
    alice.next_is(
        "search: a quote is not closed: put a phrase between two quotes, as in \"exact words\" \
         (see /help)",
    );
    alice.send("/search r*");
    alice.next_is(
        "search: a word ending in * needs at least 2 letters or digits before the * (see /help)",
    );
    alice.send("/search ru*st");
    alice.next_is(
        "search: * goes only at the end of a word, for words that start with it, as in rust* \
         (see /help)",
    );
    alice.send("/search !!! ...");
    alice.next_is("search: nothing to search for: give a word with letters or digits (see /help)");
    let page = search(&mut alice, "body:secret OR NEAR(a b) ^x -y \"a\"\"b\"");
    assert_eq!(page.last().unwrap(), "--- end of search (no matches) ---");

    alice.send("marker");
    bob.next_is("alice: marker");
    let (_dir, db) = server.stop_and_open_db();
    let bodies: Vec<String> = message_rows(&db).into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["marker"]);
}

/// Only your room is searched, and private lines, never stored, are never found.
#[test]
fn other_rooms_and_private_lines_are_not_found() {
    let server = Server::start_in(rusty_lobby(), &[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send("/msg bob the secret plan");
    bob.next_is("[private] alice: the secret plan");
    assert_eq!(hits(&search(&mut bob, "secret")), Vec::<&str>::new());
    assert_eq!(hits(&search(&mut alice, "elsewhere")), Vec::<&str>::new());

    alice.send("/join other");
    alice.expect("--- end of history");
    assert_eq!(hits(&search(&mut alice, "rust")), ["carol: rust elsewhere"]);
    // A search does not continue in another room than the one it was made in.
    search(&mut bob, "rust");
    bob.send("/join other");
    bob.expect("--- end of history");
    bob.send("/search");
    bob.next_is(
        "no search to continue in this room: /search TEXT finds TEXT in your room's history",
    );
}

/// Searches are lines like any other for the rate limit: past the burst the user is told to
/// slow down and the rest wait their turn.
#[test]
fn searches_count_against_the_rate_limit() {
    let server = Server::start(&["--rate-burst", "3", "--rate-per-sec", "50"]);
    let mut alice = server.join("alice");
    for _ in 0..5 {
        alice.send("/search anything");
    }
    let mut pages = 0;
    let mut told = 0;
    while pages < 5 {
        let line = alice.line().expect("EOF");
        pages += usize::from(line.starts_with("--- end of search"));
        told += usize::from(line.starts_with("slow down: after 3 lines"));
    }
    assert_eq!(told, 1, "{:?}", alice.seen);
}
