//! Accounts end to end: register, log in, wrong passwords and their growing delay, passwords
//! refused over plaintext, `/password`, `/unregister`, and registered names on `/nick`.

mod common;

use common::accounts::PASSWORD;
use common::{Client, Server};

/// A registered name asks for its password at the name prompt; the right one logs in.
#[test]
fn register_then_log_in() {
    let server = Server::start(&[]);
    let alice = server.register("alice", PASSWORD);
    alice.close();
    let mut again = server.login("alice", PASSWORD);
    again.sync();
    // An unregistered name works as before, without a password.
    let _bob = server.join("bob");
    let db = server.open_db();
    let (name, display, hash, role): (String, String, String, String) = db
        .query_row(
            "SELECT name, display, password_hash, role FROM accounts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (name.as_str(), display.as_str(), role.as_str()),
        ("alice", "alice", "user")
    );
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(
        !server.log().contains(PASSWORD),
        "a password reached the log"
    );
}

/// A wrong password is told so and the name prompt comes back; the user may retry or choose
/// another name. nc users are warned their typing shows.
#[test]
fn wrong_password_then_retry_or_another_name() {
    let server = Server::start(&[]);
    server.register("alice", PASSWORD).close();
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("alice");
    c.expect("alice is registered: type its password");
    c.expect("the password will be visible on your screen");
    c.send("not the password");
    c.expect("wrong password for alice");
    c.expect("What is your name?");
    c.send("alice");
    c.expect("type its password");
    // An empty line goes back to the name prompt: choose another name instead.
    c.send("");
    c.expect("What is your name?");
    c.send("alice2");
    c.expect("Welcome, alice2!");
    server.wait_log("wrong password for alice (1 of 3)");
    assert!(
        server.log().contains("127.0.0.1:"),
        "failures are logged with the address"
    );
    assert!(!server.log().contains("not the password"));
}

/// Failed logins slow down: each later attempt waits longer (the server says how long), and
/// the third failure closes the connection.
#[test]
fn failed_logins_wait_longer_and_three_close() {
    let server = Server::start(&[]);
    server.register("alice", PASSWORD).close();
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        c.send("alice");
        c.expect("type its password");
        c.send(&format!("guess number {attempt}"));
        let line = if attempt < 3 {
            c.expect("wrong password for alice")
        } else {
            c.expect("too many wrong passwords, closing connection")
        };
        let told: Vec<&String> = c
            .seen
            .iter()
            .rev()
            .take_while(|l| !l.contains("type its password"))
            .filter(|l| l.contains("this attempt is checked in"))
            .collect();
        delays.push(told.first().map(|l| l.to_string()));
        let _ = line;
    }
    c.expect_eof();
    assert_eq!(delays[0], None, "the first attempt is not delayed");
    assert_eq!(
        delays[1].as_deref(),
        Some("after failed logins, this attempt is checked in 1 s")
    );
    assert_eq!(
        delays[2].as_deref(),
        Some("after failed logins, this attempt is checked in 2 s")
    );
    // The account remembers across connections: the next attempt waits longer still.
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("alice");
    c.expect("type its password");
    c.send(PASSWORD);
    c.expect("after failed logins, this attempt is checked in 4 s");
    c.expect("logged in as alice");
}

/// Over a plaintext connection that is not loopback, a registered name cannot log in and
/// `/register` is refused, each with a line saying why; `--plaintext-passwords` allows both.
#[test]
fn passwords_refused_over_plaintext_without_the_flag() {
    let server = Server::start(&[]);
    server.register("alice", PASSWORD).close();
    let dir = server.stop();

    // Loopback no longer counts as safe: the server plays a remote plaintext peer.
    let server = Server::start_in(dir, &["--trust-loopback-for-passwords", "false"]);
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("alice");
    c.expect("alice is registered, but this server accepts passwords only over TLS or from loopback, and this connection is plaintext: choose another name");
    c.expect("What is your name?");
    c.send("bob");
    c.expect("--- end of history");
    c.send("/register");
    c.expect("this server accepts passwords only over TLS or from loopback, and this connection is plaintext: nothing changed");
    let dir = server.stop();

    let server = Server::start_in(
        dir,
        &[
            "--trust-loopback-for-passwords",
            "false",
            "--plaintext-passwords",
        ],
    );
    server.login("alice", PASSWORD).sync();
}

/// `/password` changes the password (the old one no longer works); `/unregister` frees the name.
#[test]
fn change_password_and_unregister() {
    let server = Server::start(&[]);
    let mut c = server.register("alice", PASSWORD);
    c.send("/password");
    c.expect("current password for alice");
    c.send("wrong one");
    c.expect("wrong password, nothing changed");
    c.send("/password");
    c.expect("current password for alice");
    c.send(PASSWORD);
    c.expect("new password");
    c.send("short");
    c.expect("too short (at least 8 characters), nothing changed");
    c.send("/password");
    c.send(PASSWORD);
    c.expect("new password");
    c.send("a new password");
    c.expect("type the same password again");
    c.send("a new password");
    c.expect("password changed");
    c.close();

    let mut c = server.login("alice", "a new password");
    c.send("/unregister");
    c.expect("current password for alice");
    c.send("a new password");
    c.expect("alice is no longer registered");
    c.close();
    // Free again: no password asked.
    let _c = server.join("alice");
}

/// A registered name cannot be taken with `/nick` by somebody else; its owner may go back to it.
#[test]
fn nick_into_a_registered_name_is_refused() {
    let server = Server::start(&[]);
    let mut alice = server.register("alice", PASSWORD);
    let mut bob = server.join("bob");
    alice.send("/nick alice_away");
    bob.expect("* alice is now known as alice_away");
    bob.send("/nick alice");
    bob.expect("alice is registered to someone else");
    alice.send("/nick alice");
    bob.expect("* alice_away is now known as alice");
    // /register of a registered name is refused too.
    alice.send("/register");
    alice.expect("alice is already registered");
}
