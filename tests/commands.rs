//! Slash commands over real TCP: each command's reply, who else sees what, and the one-line errors
//! for unknown commands and bad arguments.
mod common;
use common::{message_rows, start_alice_and_bob, Server};

/// `/help` lists every command, one per line, only to the user who asked.
#[test]
fn help_lists_every_command_one_per_line() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);

    alice.send("/help");
    // The `/who` answer comes after the whole help text, so it marks where the help ends.
    alice.send("/who");
    let lines = alice.lines_until("users in lobby");
    let (who, help) = lines.split_last().unwrap();
    assert_eq!(who, "users in lobby (2): alice, bob");
    assert_eq!(help[0], "commands:");
    let commands = [
        "/help",
        "/who",
        "/nick",
        "/me",
        "/msg",
        "/join",
        "/rooms",
        "/history",
        "/search",
        "/quit",
        "//text",
        "/register",
        "/password",
        "/unregister",
        "/ignore",
        "/unignore",
        "/topic",
    ];
    assert_eq!(help.len(), 1 + commands.len(), "{help:?}");
    for (line, command) in help[1..].iter().zip(commands) {
        let first_word = line.split_whitespace().next();
        assert_eq!(first_word, Some(command), "{help:?}");
    }

    // Nothing of it reached Bob.
    alice.send("marker");
    bob.next_is("alice: marker");
}

/// `/who` names the users of your room, in joining order, whatever the command's case.
#[test]
fn who_lists_the_users_of_your_room() {
    let server = Server::start(&[]);
    let [mut alice, mut bob, mut carol] = server.join_all(["alice", "Bob", "carol"]);
    carol.send("/join rust");
    carol.expect("--- end of history");

    alice.send("/who");
    alice.expect("* carol left for rust");
    alice.next_is("users in lobby (2): alice, Bob");
    bob.expect("* carol left for rust");
    bob.send("/WHO");
    bob.next_is("users in lobby (2): alice, Bob");
    carol.send("/who");
    carol.next_is("users in rust (1): carol");

    alice.close();
    bob.next_is("* alice left");
    bob.send("/who");
    bob.next_is("users in lobby (1): Bob");
}

/// `/who` and `/rooms` past the last page answer one clear line, not an empty "page 2 of 1".
#[test]
fn a_page_past_the_last_is_one_clear_line() {
    let (_server, mut alice, _bob) = start_alice_and_bob(&[]);
    alice.send("/who 2");
    alice.next_is("there is no page 2: the list has 1 page");
    alice.send("/rooms 9");
    alice.next_is("there is no page 9: the list has 1 page");
    alice.send("/who 1");
    alice.next_is("users in lobby (2): alice, bob");
}

/// `/nick` renames: the whole room (the renamed user included) sees the notice, later lines
/// carry the new name, and the old name is free for somebody else.
#[test]
fn nick_renames_and_frees_the_old_name() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);

    alice.send("/nick alicia");
    alice.next_is("* alice is now known as alicia");
    bob.next_is("* alice is now known as alicia");
    alice.send("hello");
    bob.next_is("alicia: hello");
    bob.send("/who");
    bob.next_is("users in lobby (2): alicia, bob");

    let _new_alice = server.join("alice");
    alice.next_is("* alice joined");
    bob.next_is("* alice joined");

    // Changing only the case of one's own name is a rename too.
    alice.send("/nick ALICIA");
    bob.next_is("* alicia is now known as ALICIA");
    alice.send("again");
    bob.next_is("ALICIA: again");
}

/// `/nick` refuses invalid names, names in use (whatever their case) and one's own name, each
/// with one line to the user alone, and the name stays as it was.
#[test]
fn nick_refusals() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);

    alice.send("/nick _x");
    alice.next_is(
        "invalid name (it must start with a letter or digit): use 1-24 letters or digits of \
         one script, '_', '-' or '.', starting with a letter or digit (see /help)",
    );
    alice.send("/nick");
    alice.next_is("usage: /nick NEW (type /help for more)");
    alice.send("/nick two words");
    alice.next_is("usage: /nick NEW (type /help for more)");
    alice.send("/nick BOB");
    alice.next_is("name taken: BOB is already in use (see /help)");
    alice.send("/nick alice");
    alice.next_is("you are already known as alice");

    alice.send("still alice");
    // Bob saw none of the refusals, and Alice kept her name.
    bob.next_is("alice: still alice");
}

/// `/me` shows `* NAME action` to the others, not to the sender, and is stored as an action.
#[test]
fn me_sends_an_action() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);

    alice.send("/me waves at   everyone");
    bob.next_is("* alice waves at   everyone");
    bob.send("/me waves back");
    // Alice's own action did not come back to her.
    alice.next_is("* bob waves back");

    alice.send("/me");
    alice.next_is("usage: /me ACTION (type /help for more)");
    alice.send("/me   ");
    alice.next_is("usage: /me ACTION (type /help for more)");
    alice.send("marker");
    bob.next_is("alice: marker");

    let (_dir, db) = server.stop_and_open_db();
    let rows: Vec<(String, String, String)> = message_rows(&db)
        .into_iter()
        .map(|r| (r.sender, r.body, r.kind))
        .collect();
    let expected = [
        ("alice", "waves at   everyone", "action"),
        ("bob", "waves back", "action"),
        ("alice", "marker", "message"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(rows, expected);
}

/// `/msg` reaches only its target (in any room), confirms to the sender, and is never stored.
#[test]
fn msg_is_private_and_not_stored() {
    // More lines than the rate limit's burst.
    let server = Server::start(&["--rate-per-sec", "0"]);
    let [mut alice, mut bob, mut carol] = server.join_all(["alice", "bob", "carol"]);

    alice.send("/msg bob meet me  at noon");
    alice.next_is("[private to bob] meet me  at noon");
    bob.next_is("[private] alice: meet me  at noon");
    bob.send("marker");
    // Carol saw nothing before Bob's public line.
    carol.next_is("bob: marker");
    alice.next_is("bob: marker");

    // The target's name is matched ignoring case and shown as its owner spells it.
    alice.send("/msg CAROL psst");
    alice.next_is("[private to carol] psst");
    carol.next_is("[private] alice: psst");

    // A user in another room can be reached.
    carol.send("/join rust");
    carol.expect("--- end of history");
    alice.expect("* carol left for rust");
    alice.send("/msg carol over there?");
    alice.next_is("[private to carol] over there?");
    carol.next_is("[private] alice: over there?");

    alice.send("/msg nobody hello");
    alice.next_is("no such user: nobody is not connected (see /who, /help)");
    alice.send("/msg bob");
    alice.next_is("usage: /msg NAME TEXT (type /help for more)");
    alice.send("/msg bob    ");
    alice.next_is("usage: /msg NAME TEXT (type /help for more)");
    alice.send("/msg");
    alice.next_is("usage: /msg NAME TEXT (type /help for more)");
    alice.send("/msg b@d hi");
    alice.next_is(
        "invalid name ('@' (U+0040) is not allowed): use 1-24 letters or digits of one \
         script, '_', '-' or '.', starting with a letter or digit (see /help)",
    );
    alice.send("end");
    bob.next_is("* carol left for rust");
    bob.next_is("alice: end");

    let (_dir, db) = server.stop_and_open_db();
    let bodies = common::bodies(&db);
    assert_eq!(bodies, ["marker", "end"]);
}

/// `/rooms` lists occupied rooms by name with their head counts; empty rooms disappear.
#[test]
fn rooms_lists_occupied_rooms() {
    let server = Server::start(&[]);
    let mut alice = server.join("alice");
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");

    alice.send("/rooms");
    alice.expect("* carol joined");
    alice.next_is("rooms (1): lobby (3 users)");

    carol.send("/join rust");
    carol.expect("--- end of history");
    bob.send("/join abc");
    bob.expect("--- end of history");
    alice.send("/rooms");
    alice.expect("* bob left for abc");
    alice.next_is("rooms (3): abc (1 user), lobby (1 user), rust (1 user)");

    bob.send("/join rust");
    bob.expect("--- end of history");
    carol.send("/rooms");
    carol.expect("* bob joined");
    carol.next_is("rooms (2): lobby (1 user), rust (2 users)");
}

/// `/quit` answers `bye` and closes the connection; the room sees `* NAME left`.
#[test]
fn quit_without_reason() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    bob.send("/quit");
    assert_eq!(bob.expect_eof(), ["bye"]);
    alice.next_is("* bob left");
}

/// `/quit REASON` answers `bye` and the room sees `* NAME left (quit: REASON)`.
#[test]
fn quit_with_reason() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    bob.send("/QUIT gotta  go");
    assert_eq!(bob.expect_eof(), ["bye"]);
    alice.next_is("* bob left (quit: gotta  go)");
    // The name is free again.
    let _bob = server.join("bob");
    alice.next_is("* bob joined");
}

/// An unknown command or bad arguments get exactly one line mentioning /help, and nothing is
/// relayed or stored.
#[test]
fn unknown_commands_and_bad_arguments_get_one_line_mentioning_help() {
    // More lines than the rate limit's burst.
    let (server, mut alice, mut bob) = start_alice_and_bob(&["--rate-per-sec", "0"]);

    let cases = [
        (
            "/frobnicate",
            "unknown command /frobnicate (type /help for the list)",
        ),
        (
            "/frob nicate x",
            "unknown command /frob (type /help for the list)",
        ),
        ("/", "unknown command / (type /help for the list)"),
        ("/join", "usage: /join ROOM (type /help for more)"),
        ("/join a b", "usage: /join ROOM (type /help for more)"),
        (
            "/join a/b",
            "invalid room name ('/' (U+002F) is not allowed): use 1-32 letters or digits of \
             one script, '_', '-' or '.', optionally after '#' (see /help)",
        ),
        (
            "/history x",
            "usage: /history [N], N a positive number (at most 200 are shown) (type /help for more)",
        ),
        (
            "/history 0",
            "usage: /history [N], N a positive number (at most 200 are shown) (type /help for more)",
        ),
        (
            "/history -3",
            "usage: /history [N], N a positive number (at most 200 are shown) (type /help for more)",
        ),
    ];
    for (sent, reply) in cases {
        assert!(reply.contains("/help"), "{reply}");
        alice.send(sent);
        // Each reply is the very next line, so no command gave two lines.
        alice.next_is(reply);
    }
    alice.send("marker");
    bob.next_is("alice: marker");

    let (_dir, db) = server.stop_and_open_db();
    let bodies = common::bodies(&db);
    assert_eq!(bodies, ["marker"]);
}

/// `//text` sends `/text` literally as a message.
#[test]
fn double_slash_sends_a_literal_slash() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("//etc/passwd is a file");
    bob.next_is("alice: /etc/passwd is a file");
    alice.send("//who");
    bob.next_is("alice: /who");
    // Nothing came back to Alice (no echo, no /who answer).
    bob.send("ok");
    alice.next_is("bob: ok");

    let (_dir, db) = server.stop_and_open_db();
    let bodies = common::bodies(&db);
    assert_eq!(bodies, ["/etc/passwd is a file", "/who", "ok"]);
}

/// `/me` cannot forge the server's notices about the user, and names the server's own notices
/// use are reserved.
#[test]
fn me_cannot_forge_notices_and_server_names_are_reserved() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    for forged in ["/me joined", "/me left (quit)", "/me is now known as carol"] {
        bob.send(forged);
        let reply = bob.line().expect("reply");
        assert!(
            reply.contains("server notice") && reply.contains("/help"),
            "{reply}"
        );
    }
    bob.send("/me waves");
    alice.next_is("* bob waves");

    let mut c = common::Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("Server");
    c.expect("invalid name (it is reserved");
    c.expect("What is your name?");
    bob.send("/nick you");
    assert!(bob.line().expect("reply").contains("reserved"));
}

/// `/who` with many users wraps over several lines instead of one unbounded line.
#[test]
fn who_wraps_long_lists() {
    let server = Server::start(&[]);
    let names: Vec<String> = (0..24)
        .map(|n| format!("user_with_a_long_name_{n:02}"))
        .collect();
    let mut clients: Vec<common::Client> = names.iter().map(|n| server.join(n)).collect();
    let last = names.last().expect("names").clone();
    let first = &mut clients[0];
    first.expect(&format!("* {last} joined"));
    first.send("/who");
    let header = first.expect("users in lobby (24):");
    let mut lines = vec![header];
    while lines
        .iter()
        .map(|l| l.matches("user_with").count())
        .sum::<usize>()
        < 24
    {
        lines.push(first.line().expect("continuation"));
    }
    assert!(lines.len() > 1, "{lines:?}");
    for line in &lines {
        assert!(line.len() <= 440, "line too long: {line}");
    }
    for name in &names {
        assert!(
            lines.iter().any(|l| l.contains(name.as_str())),
            "{name} missing"
        );
    }
}
