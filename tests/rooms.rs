//! Rooms over real TCP: moving with /join, isolation, per-room replay, /history paging, and the
//! room column in the database.
mod common;
use common::{message_rows, start_alice_and_bob, unstamp, Client, Server};

/// The history lines (stamps removed) among `lines`, which must all be stamped except the
/// `---` markers and the `* you joined` confirmation.
fn texts(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !l.starts_with("--- ") && !l.starts_with("* you joined "))
        .map(|l| unstamp(l).to_owned())
        .collect()
}

/// Sends `/join ROOM` and returns the lines from the confirmation to the end of the replay.
fn join_room(client: &mut Client, room: &str) -> Vec<String> {
    client.send(&format!("/join {room}"));
    let lines = client.lines_until("--- end of history");
    let start = lines
        .iter()
        .position(|l| l.starts_with("* you joined "))
        .unwrap_or_else(|| panic!("no join confirmation in {lines:?}"));
    lines[start..].to_vec()
}

/// Every user starts in the lobby, whatever room they (or their name) were in before.
#[test]
fn everybody_starts_in_the_lobby() {
    let server = Server::start(&[]);
    let (mut alice, replay) = server.join_replay("alice");
    assert_eq!(
        replay[0],
        "Welcome, alice! You are in lobby. Type /help for commands."
    );
    assert_eq!(replay[1], "--- history of lobby ---");
    join_room(&mut alice, "rust");

    let (mut bob, replay) = server.join_replay("bob");
    assert_eq!(
        replay[0],
        "Welcome, bob! You are in lobby. Type /help for commands."
    );
    bob.send("/who");
    bob.next_is("users in lobby (1): bob");

    alice.send("/quit");
    alice.expect_eof();
    let (mut alice, replay) = server.join_replay("alice");
    assert_eq!(
        replay[0],
        "Welcome, alice! You are in lobby. Type /help for commands."
    );
    alice.send("/who");
    alice.next_is("users in lobby (2): bob, alice");
}

/// `/join` moves a user: the old room sees `* NAME left for ROOM`, the new one `* NAME joined`,
/// and the mover gets a confirmation and the new room's replay but no notice about itself.
#[test]
fn join_moves_you_between_rooms() {
    let server = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = server.join_all(["alice", "bob", "carol"]);
    assert_eq!(
        join_room(&mut carol, "rust"),
        [
            "* you joined rust (you are alone here)",
            "--- history of rust ---",
            "--- end of history (0 messages) ---",
        ]
    );
    alice.expect("* carol left for rust");
    bob.expect("* carol left for rust");

    alice.send("/join rust");
    alice.next_is("* you joined rust (2 users here)");
    alice.next_is("--- history of rust ---");
    alice.next_is("--- end of history (0 messages) ---");
    bob.next_is("* alice left for rust");
    carol.next_is("* alice joined");
    carol.send("hi alice");
    alice.next_is("carol: hi alice");

    alice.send("/join lobby");
    alice.next_is("* you joined lobby (2 users here)");
    alice.next_is("--- history of lobby ---");
    alice.next_is("--- end of history (0 messages) ---");
    carol.next_is("* alice left for lobby");
    bob.next_is("* alice joined");

    alice.send("/join lobby");
    alice.next_is("you are already in lobby");
    alice.send("back");
    bob.next_is("alice: back");
    carol.send("/who");
    carol.next_is("users in rust (1): carol");
}

/// Lines (messages and actions) said in one room never reach another.
#[test]
fn rooms_are_isolated() {
    let server = Server::start(&[]);
    let [mut alice, mut bob, mut carol, mut dave] =
        server.join_all(["alice", "bob", "carol", "dave"]);
    join_room(&mut carol, "rust");
    join_room(&mut dave, "rust");
    carol.expect("* dave joined");
    alice.expect("* dave left for rust");
    bob.expect("* dave left for rust");

    carol.send("rust secret");
    dave.next_is("carol: rust secret");
    carol.send("/me hides");
    dave.next_is("* carol hides");
    // Dave has them, so the hub is done with them; the lobby's next line is its own.
    bob.send("lobby marker");
    alice.next_is("bob: lobby marker");

    alice.send("lobby secret");
    bob.next_is("alice: lobby secret");
    dave.send("rust marker");
    carol.next_is("dave: rust marker");
}

/// Room names ignore case and an optional leading `#`, and are shown in lower case.
#[test]
fn room_names_ignore_case_and_hash() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    assert_eq!(
        join_room(&mut alice, "#Rust")[0],
        "* you joined rust (you are alone here)"
    );
    assert_eq!(
        join_room(&mut bob, "RUST")[0],
        "* you joined rust (2 users here)"
    );
    alice.next_is("* bob joined");
    bob.send("/join #rust");
    bob.next_is("you are already in rust");
    bob.send("/rooms");
    bob.next_is("rooms (1): rust (2 users)");
    bob.send("/who");
    bob.next_is("users in rust (2): alice, bob");
}

/// Joining a room replays that room's messages only, oldest first.
#[test]
fn join_replays_only_that_rooms_history() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("l1");
    bob.expect("alice: l1");
    // Witnesses: a line is relayed only once stored, so once they have seen the lines below,
    // those are in the history.
    let mut carol = server.join("carol");
    let mut dave = server.join("dave");
    join_room(&mut carol, "rust");
    join_room(&mut alice, "rust");
    alice.send("r1");
    alice.send("/me r2");
    bob.send("l2");
    carol.expect("* alice r2");
    dave.expect("bob: l2");

    let replay = join_room(&mut bob, "#rust");
    assert_eq!(replay[1], "--- history of rust ---");
    assert_eq!(texts(&replay), ["alice: r1", "* alice r2"]);
    assert_eq!(
        replay.last().unwrap(),
        "--- end of history (2 messages) ---"
    );

    let replay = join_room(&mut bob, "lobby");
    assert_eq!(replay[1], "--- history of lobby ---");
    assert_eq!(texts(&replay), ["alice: l1", "bob: l2"]);
    assert_eq!(
        replay.last().unwrap(),
        "--- end of history (2 messages) ---"
    );
}

/// `/history N` pages back through the room's older messages, in order, until it says the
/// beginning is reached; other rooms' messages never appear.
#[test]
fn history_pages_back_to_the_beginning() {
    let (server, mut alice, mut bob) =
        start_alice_and_bob(&["--history", "5", "--rate-per-sec", "0"]);
    // Witnesses: a line is relayed only once stored, so once they have seen the last lines,
    // every line is in the history.
    let mut carol = server.join("carol");
    let mut dave = server.join("dave");
    join_room(&mut carol, "rust");
    join_room(&mut alice, "rust");
    for n in 1..=25 {
        alice.send(&format!("m{n:02}"));
        // Lobby lines between the room's, so ids in the room are not contiguous.
        if n % 5 == 0 {
            bob.send(&format!("lobby {n}"));
        }
    }
    carol.expect("alice: m25");
    dave.expect("bob: lobby 25");

    let replay = join_room(&mut bob, "rust");
    let expected: Vec<String> = (21..=25).map(|n| format!("alice: m{n:02}")).collect();
    assert_eq!(texts(&replay), expected);
    assert_eq!(
        replay.last().unwrap(),
        "--- end of history (5 messages) ---"
    );

    for page in [11..=20, 1..=10] {
        bob.send("/history 10");
        let lines = bob.lines_until("--- end of earlier history");
        assert_eq!(lines[0], "--- earlier history of rust ---");
        let expected: Vec<String> = page.map(|n| format!("alice: m{n:02}")).collect();
        assert_eq!(texts(&lines), expected);
        // A full page does not claim to be the beginning, even when nothing older exists.
        assert_eq!(lines.len(), 12, "{lines:?}");
        assert_eq!(lines[11], "--- end of earlier history (10 messages) ---");
    }

    bob.send("/history 10");
    bob.next_is("--- earlier history of rust ---");
    bob.next_is("--- beginning of rust history: nothing older ---");
    bob.next_is("--- end of earlier history (0 messages) ---");
}

/// A `/history` page shorter than asked ends with the beginning marker, and paging starts again
/// from the replay of the room one moves to.
#[test]
fn short_history_page_says_beginning_reached() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&["--history", "2"]);
    for text in ["a1", "a2", "a3", "a4", "a5"] {
        alice.send(text);
        bob.expect(&format!("alice: {text}"));
    }
    join_room(&mut alice, "rust");
    alice.send("r1");
    alice.sync();

    let (mut carol, replay) = server.join_replay("carol");
    assert_eq!(texts(&replay[1..]), ["alice: a4", "alice: a5"]);
    carol.send("/history");
    carol.next_is("--- earlier history of lobby ---");
    assert_eq!(unstamp(&carol.line().unwrap()), "alice: a1");
    assert_eq!(unstamp(&carol.line().unwrap()), "alice: a2");
    assert_eq!(unstamp(&carol.line().unwrap()), "alice: a3");
    carol.next_is("--- beginning of lobby history: nothing older ---");
    carol.next_is("--- end of earlier history (3 messages) ---");

    let replay = join_room(&mut carol, "rust");
    assert_eq!(texts(&replay), ["alice: r1"]);
    carol.send("/history 1");
    carol.next_is("--- earlier history of rust ---");
    carol.next_is("--- beginning of rust history: nothing older ---");
    carol.next_is("--- end of earlier history (0 messages) ---");
}

/// A room everybody has left disappears from `/rooms` but keeps its history for the next visitor.
#[test]
fn empty_room_keeps_its_history() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    join_room(&mut alice, "attic");
    alice.send("anyone here?");
    alice.send("/me leaves a note");
    join_room(&mut alice, "lobby");
    bob.expect("* alice joined");
    bob.send("/rooms");
    bob.next_is("rooms (1): lobby (2 users)");

    let replay = join_room(&mut bob, "attic");
    assert_eq!(replay[0], "* you joined attic (you are alone here)");
    assert_eq!(
        texts(&replay),
        ["alice: anyone here?", "* alice leaves a note"]
    );
    assert_eq!(
        replay.last().unwrap(),
        "--- end of history (2 messages) ---"
    );
}

/// Each stored row carries the canonical (lower-case, no `#`) name of the room it was said in.
#[test]
fn rows_store_the_room() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("in lobby");
    bob.expect("alice: in lobby");
    join_room(&mut alice, "#Rust");
    join_room(&mut bob, "rust");
    alice.expect("* bob joined");
    alice.send("in rust");
    bob.next_is("alice: in rust");
    bob.send("/me agrees");
    alice.next_is("* bob agrees");

    let (_dir, db) = server.stop_and_open_db();
    let rows: Vec<(String, String, String, String)> = message_rows(&db)
        .into_iter()
        .map(|r| (r.sender, r.body, r.room, r.kind))
        .collect();
    let expected = [
        ("alice", "in lobby", "lobby", "message"),
        ("alice", "in rust", "rust", "message"),
        ("bob", "agrees", "rust", "action"),
    ]
    .map(|(a, b, c, d)| (a.into(), b.into(), c.into(), d.into()));
    assert_eq!(rows, expected);
}
