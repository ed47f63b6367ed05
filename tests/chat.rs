//! The base flow over real TCP: registration, relaying, join/leave notices, history.
mod common;
use common::{matches_shape, message_rows, start_alice_and_bob, unstamp, Client, Server};

/// The rule in short, after every reason a user name is refused for.
const NAME_RULE: &str = "use 1-24 letters or digits of one script, '_', '-' or '.', \
     starting with a letter or digit";

/// Two users exchange lines; the sender gets no echo.
#[test]
fn two_users_chat_without_echo() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("hello bob");
    bob.next_is("alice: hello bob");
    bob.send("hi alice");
    // Alice's next line is Bob's reply, not an echo of her own line.
    alice.next_is("bob: hi alice");
}

/// With three users, each line reaches exactly the two others, and never its sender.
#[test]
fn three_users_each_line_reaches_the_two_others() {
    let server = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = server.join_all(["alice", "bob", "carol"]);

    alice.send("from alice");
    bob.next_is("alice: from alice");
    carol.next_is("alice: from alice");

    bob.send("from bob");
    // Alice's next line is Bob's, so her own line did not come back to her.
    alice.next_is("bob: from bob");
    carol.next_is("bob: from bob");

    carol.send("from carol");
    alice.next_is("carol: from carol");
    bob.next_is("carol: from carol");

    // Carol's and Bob's own lines did not come back to them either.
    alice.send("end");
    bob.next_is("alice: end");
    carol.next_is("alice: end");
}

/// Users already in the room see `* NAME joined` when someone arrives and `* NAME left` when
/// that user closes the connection.
#[test]
fn join_and_leave_notices() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let bob = server.join("bob");
    alice.next_is("* bob joined");
    bob.close();
    alice.next_is("* bob left");
}

/// An invalid name is refused with its reason and the question again, on the same connection,
/// until a valid name is accepted; a blank answer just repeats the question.
#[test]
fn invalid_names_are_refused_with_a_reason_then_a_valid_one_is_accepted() {
    let server = Server::start(&[]);
    let mut c = Client::connect(server.addr);
    c.next_is("Welcome to smolchat! What is your name?");

    c.send("bad name");
    c.next_is(&format!(
        "invalid name (a space is not allowed): {NAME_RULE}"
    ));
    c.next_is("What is your name?");

    c.send("_alice");
    c.next_is(&format!(
        "invalid name (it must start with a letter or digit): {NAME_RULE}"
    ));
    c.next_is("What is your name?");

    c.send(&"a".repeat(25));
    c.next_is(&format!(
        "invalid name (it is longer than 24 characters): {NAME_RULE}"
    ));
    c.next_is("What is your name?");

    c.send("   ");
    c.next_is("What is your name?");

    c.send("alice");
    c.next_is("Welcome, alice! You are in lobby. Type /help for commands.");
    c.next_is("--- history of lobby ---");
    c.next_is("--- end of history (0 messages) ---");
}

/// A name in use is refused whatever its case; the newcomer picks another and gets in, and the
/// room hears only about the accepted name.
#[test]
fn duplicate_name_is_refused_ignoring_case() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");

    c.send("Alice");
    c.next_is("name taken: Alice is already in use");
    c.next_is("What is your name?");
    c.send("ALICE");
    c.next_is("name taken: ALICE is already in use");
    c.next_is("What is your name?");

    c.send("alice2");
    c.next_is("Welcome, alice2! You are in lobby. Type /help for commands.");
    alice.next_is("* alice2 joined");
}

/// Once a user has left, the name can be taken by somebody else.
#[test]
fn name_is_free_again_after_its_owner_leaves() {
    let (server, alice, mut bob) = start_alice_and_bob(&[]);
    alice.close();
    // Bob seeing the leave means the hub has released the name.
    bob.next_is("* alice left");
    let _alice_again = server.join("Alice");
    bob.next_is("* Alice joined");
}

/// After a restart on the same database, a newcomer gets the earlier messages replayed, oldest
/// first, with the count in the end marker.
#[test]
fn history_survives_a_restart_and_is_replayed_in_order() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    for text in ["first", "second", "third"] {
        alice.send(text);
        bob.next_is(&format!("alice: {text}"));
    }
    bob.send("/me waves");
    alice.expect("* bob waves");
    drop((alice, bob));
    let dir = server.stop();

    let server = Server::start_in(dir, &[]);
    let (_carol, replay) = server.join_replay("carol");
    assert_eq!(replay.len(), 7, "{replay:?}");
    assert_eq!(
        replay[0],
        "Welcome, carol! You are in lobby. Type /help for commands."
    );
    assert_eq!(replay[1], "--- history of lobby ---");
    let texts: Vec<&str> = replay[2..6].iter().map(|l| unstamp(l)).collect();
    assert_eq!(
        texts,
        [
            "alice: first",
            "alice: second",
            "alice: third",
            "* bob waves"
        ]
    );
    assert_eq!(replay[6], "--- end of history (4 messages) ---");
}

/// `--history 2` replays only the two most recent messages, and the marker says so.
#[test]
fn history_flag_limits_the_replay() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&["--history", "2"]);
    for text in ["m1", "m2", "m3", "m4"] {
        alice.send(text);
        bob.next_is(&format!("alice: {text}"));
    }
    let (_carol, replay) = server.join_replay("carol");
    assert_eq!(replay.len(), 5, "{replay:?}");
    assert_eq!(unstamp(&replay[2]), "alice: m3");
    assert_eq!(unstamp(&replay[3]), "alice: m4");
    assert_eq!(replay[4], "--- end of history (2 messages) ---");
}

/// A replay of exactly one message says `1 message`, not `1 messages`.
#[test]
fn history_marker_counts_one_message_in_the_singular() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("only");
    bob.next_is("alice: only");
    let (_carol, replay) = server.join_replay("carol");
    assert_eq!(unstamp(&replay[2]), "alice: only");
    assert_eq!(replay[3], "--- end of history (1 message) ---");
}

/// Every relayed line is a row with the documented columns: increasing id, a UTC `sent_at` in
/// SQLite's format close to now, the sender, the body, room `lobby` and the kind.
#[test]
fn messages_are_stored_with_the_documented_columns() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("hello  world");
    bob.next_is("alice: hello  world");
    alice.send("/me waves");
    bob.next_is("* alice waves");
    bob.send("hi");
    alice.next_is("bob: hi");
    let (_dir, db) = server.stop_and_open_db();

    let columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_table_info('messages') ORDER BY cid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        columns,
        [
            "id",
            "sent_at",
            "sender",
            "body",
            "room",
            "kind",
            "stream_id",
            "log_seq",
            "formatted"
        ]
    );
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, common::latest_version(), "one per migration");

    let rows = message_rows(&db);
    let got: Vec<(&str, &str, &str, &str)> = rows
        .iter()
        .map(|r| (&*r.sender, &*r.body, &*r.room, &*r.kind))
        .collect();
    assert_eq!(
        got,
        [
            ("alice", "hello  world", "lobby", "message"),
            ("alice", "waves", "lobby", "action"),
            ("bob", "hi", "lobby", "message"),
        ]
    );
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id), "{rows:?}");
    for row in &rows {
        assert!(
            matches_shape(&row.sent_at, "9999-99-99 99:99:99.999"),
            "sent_at {:?}",
            row.sent_at
        );
        // SQLite's 'now' is UTC, so this also catches a local-time stamp in any zone but UTC.
        let age: f64 = db
            .query_row(
                "SELECT (julianday('now') - julianday(?1)) * 86400.0",
                [&row.sent_at],
                |r| r.get(0),
            )
            .unwrap();
        assert!((-1.0..60.0).contains(&age), "{row:?} is {age} s old");
    }
    assert!(rows.windows(2).all(|w| w[0].sent_at <= w[1].sent_at));
}

/// A client that drops in the middle of a line leaves normally; the unfinished text is neither
/// relayed nor stored, and the others keep chatting.
#[test]
fn client_dropping_mid_line_does_not_disturb_the_others() {
    let server = Server::start(&[]);
    let [mut alice, mut bob, mut x] = server.join_all(["alice", "bob", "x"]);

    x.send_raw(b"half a li");
    drop(x);
    alice.next_is("* x left");
    bob.next_is("* x left");
    alice.send("still here");
    bob.next_is("alice: still here");
    bob.send("me too");
    alice.next_is("bob: me too");

    let (_dir, db) = server.stop_and_open_db();
    let bodies = common::bodies(&db);
    assert_eq!(bodies, ["still here", "me too"]);
}

/// Empty and whitespace-only lines are neither relayed nor stored.
#[test]
fn blank_lines_are_not_relayed() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("");
    alice.send("   ");
    alice.send("\t");
    alice.send_raw(b"\r\n");
    alice.send("after the blanks");
    bob.next_is("alice: after the blanks");

    let (_dir, db) = server.stop_and_open_db();
    let bodies = common::bodies(&db);
    assert_eq!(bodies, ["after the blanks"]);
}
