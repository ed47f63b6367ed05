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
    // Gone for sure before the name is used again (a closed socket may not be noticed yet).
    c.send("/quit");
    c.expect_eof();

    let mut c = server.login("alice", "a new password");
    c.send("/unregister");
    c.expect("current password for alice");
    c.send("a new password");
    c.expect("alice is no longer registered");
    c.send("/quit");
    c.expect_eof();
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

// Regressions from the review of main (findings 3, 8 and 10).

/// A name whose confusable skeleton matches a registered account is refused while the owner is
/// offline, at the name prompt and on `/nick`.
#[test]
fn a_look_alike_of_an_offline_registered_name_is_refused() {
    let server = Server::start(&[]);
    server.register("alice", PASSWORD).close();
    let mut mallory = Client::connect(server.addr);
    mallory.expect("What is your name?");
    mallory.send("aIice");
    let reply = mallory.line().expect("EOF");
    assert!(
        !reply.starts_with("Welcome, aIice!"),
        "a look-alike of a registered name was accepted: {reply}"
    );
    assert_eq!(
        reply,
        "name taken: aIice looks too much like a registered name"
    );
    mallory.expect("What is your name?");
    mallory.send("mallory");
    mallory.expect("Welcome, mallory!");
    mallory.send("/nick a1ice");
    mallory.expect("name taken: a1ice looks too much like a registered name");
    mallory.send("/nick allce");
    mallory.expect("name taken: allce looks too much like a registered name");
}

/// Parallel guesses on one account are checked one after another, not all after the same
/// delay: of four connections guessing at once, at most one is checked at once, and the
/// others are each told a different wait.
#[test]
fn parallel_guesses_on_one_account_wait_in_turn() {
    let server = Server::start(&[]);
    server.register("alice", PASSWORD).close();
    let mut guessers: Vec<Client> = (0..4)
        .map(|_| {
            let mut c = Client::connect(server.addr);
            c.expect("What is your name?");
            c.send("alice");
            c.expect("type its password");
            c.expect("the password will be visible on your screen");
            c
        })
        .collect();
    for (n, c) in guessers.iter_mut().enumerate() {
        c.send(&format!("guess {n}"));
    }
    let mut waits = Vec::new();
    for c in &mut guessers {
        let line = c.line().expect("EOF");
        if line.starts_with("after failed logins, this attempt is checked in") {
            waits.push(line);
            c.expect("wrong password for alice");
        } else {
            assert_eq!(line, "wrong password for alice");
        }
    }
    assert!(waits.len() >= 3, "checked at once: {waits:?}");
    let mut distinct = waits.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        waits.len(),
        "the same wait for all: {waits:?}"
    );
}

/// Guessers cannot lock the owner out: after many wrong guesses from one address, the owner
/// (who logged in from another address before) is checked at once, without a wait, and gets in
/// well before the name deadline.
#[test]
fn guessing_does_not_lock_the_owner_out() {
    let server = Server::start(&[]);
    server.register("alice", PASSWORD).close();
    // The owner logs in once from 127.0.0.2: that address is the owner's from now on.
    let mut owner = common::accounts::connect_from("127.0.0.2", server.addr);
    owner.expect("What is your name?");
    owner.send("alice");
    owner.expect("type its password");
    owner.send(PASSWORD);
    owner.expect("logged in as alice");
    owner.close();
    // Six guessers at once from 127.0.0.1; each is told to wait or checked, and fails.
    let mut guessers: Vec<Client> = (0..6)
        .map(|_| {
            let mut c = Client::connect(server.addr);
            c.expect("What is your name?");
            c.send("alice");
            c.expect("type its password");
            c
        })
        .collect();
    for c in &mut guessers {
        c.send("not the password");
    }
    for c in &mut guessers {
        let line = c.expect("alice");
        assert!(
            line.starts_with("wrong password")
                || line.starts_with("after failed logins")
                || line.starts_with("too many login attempts"),
            "{line}"
        );
    }
    let mut owner = common::accounts::connect_from("127.0.0.2", server.addr);
    owner.expect("What is your name?");
    owner.send("alice");
    owner.expect("type its password");
    owner.send(PASSWORD);
    let told = owner.lines_until("logged in as alice");
    assert!(
        !told
            .iter()
            .any(|l| l.contains("checked in") || l.contains("try again")),
        "the owner waited behind the guessers: {told:?}"
    );
}

/// A password typed ahead after a refused `/register` is thrown away, never relayed to the
/// room (and a password typed ahead at the name prompt is never taken as a name).
#[test]
fn a_typed_ahead_password_is_never_relayed_nor_announced() {
    let server = Server::start(&[]);
    let mut alice = server.register("alice", PASSWORD);
    let mut bob = server.join("bob");
    alice.expect("* bob joined");
    // Already registered: refused, and the pasted password lines must not become messages.
    alice.send_raw(b"/register\nsecret-typed-ahead\nsecret-typed-ahead\n");
    alice.expect("alice is already registered");
    alice.expect("(2 line(s) typed ahead were discarded");
    alice.send("marker");
    let seen = bob.lines_until("alice: marker");
    assert!(
        !seen.iter().any(|l| l.contains("secret-typed-ahead")),
        "a typed-ahead password was relayed: {seen:?}"
    );
    // At the name prompt: a wrong password, with the next attempt's password typed ahead.
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("alice");
    c.expect("type its password");
    c.send_raw(b"wrong guess\nanother-secret\n");
    c.expect("wrong password for alice");
    c.expect("What is your name?");
    c.send("carol");
    c.expect("Welcome, carol!");
    alice.send("marker 2");
    let seen = bob.lines_until("alice: marker 2");
    assert!(
        !seen.iter().any(|l| l.contains("another-secret")),
        "a typed-ahead password was announced: {seen:?}"
    );
    assert!(!server.log().contains("another-secret"));
}

/// Argon2's 19 MiB per hash goes back to the system after each hash: the server's resident
/// memory after 64 logins (two at a time, so both hashing threads work) and a registration is
/// within a few MiB of what it was before any hash. (With the memory taken from malloc, each
/// hashing thread's arena kept at least one 19 MiB block for good.)
#[test]
fn hashing_memory_is_returned_after_each_hash() {
    let server = Server::start(&[]);
    // Warm up everything but hashing: a connection, a join, a line, a replay.
    let mut warm = server.join("warm");
    warm.send("warming up");
    warm.sync();
    warm.close();
    let pid = server.child.id();
    let before = common::rss_kib(pid);
    server.register("alice", PASSWORD).close();
    server.register("bob", PASSWORD).close();
    let logins: Vec<_> = ["alice", "bob"]
        .into_iter()
        .map(|name| {
            let addr = server.addr;
            std::thread::spawn(move || {
                for _ in 0..32 {
                    let mut c = Client::connect(addr);
                    c.expect("What is your name?");
                    c.send(name);
                    c.expect("type its password");
                    c.send(PASSWORD);
                    c.expect(&format!("logged in as {name}"));
                    c.expect("--- end of history");
                    c.close();
                }
            })
        })
        .collect();
    for login in logins {
        login.join().expect("login thread");
    }
    let mut last = server.login("alice", PASSWORD);
    last.sync();
    let after = common::rss_kib(pid);
    let grown = after.saturating_sub(before);
    eprintln!("RSS {before} KiB before, {after} KiB after 67 hashes (+{grown} KiB)");
    assert!(
        grown < 6 * 1024,
        "resident memory grew by {grown} KiB over 67 hashes ({before} -> {after} KiB)"
    );
}

/// Logs in to `name` from the loopback address `from`; returns every line from the password
/// prompt's answer to the end of the replay.
fn login_from(server: &Server, from: &str, name: &str, password: &str) -> Vec<String> {
    let mut c = common::accounts::connect_from(from, server.addr);
    c.expect("What is your name?");
    c.send(name);
    c.expect("type its password");
    c.send(password);
    let start = c.seen.len();
    loop {
        let line = c.line().expect("EOF");
        assert!(
            !line.starts_with("too many login attempts"),
            "{name} from {from} was refused: {line}"
        );
        if line.starts_with(&format!("logged in as {name}")) {
            break;
        }
    }
    let told = c.seen[start..].to_vec();
    c.expect("--- end of history");
    told
}

/// The attack: strangers on many addresses guess one password until the account's
/// queue is full (the next guesses are refused), after a restart. The owner still gets in at
/// once, with no wait, both from an address it logged in from before the restart (remembered in
/// the database) and from an address it never used (a phone).
#[test]
fn guessers_on_many_addresses_do_not_lock_the_owner_out_after_a_restart() {
    let server = Server::start(&[]);
    server.register("alice", PASSWORD).close();
    login_from(&server, "127.0.0.2", "alice", PASSWORD);
    let server = Server::start_in(server.stop(), &[]);
    // Twenty strangers, each guessing twice in a row on one connection, until the account's
    // queue holds more than the owner could wait: guesses are refused, or told to wait long.
    let (mut refused, mut longest) = (0, 0);
    for i in 1..=20 {
        let mut c = common::accounts::connect_from(&format!("127.0.1.{i}"), server.addr);
        c.expect("What is your name?");
        for attempt in 1..=2 {
            c.send("alice");
            c.expect("type its password");
            c.send(&format!("guess {i}.{attempt}"));
            let answer = loop {
                let line = c.line().expect("EOF");
                if ["too many login", "wrong password", "after failed logins"]
                    .iter()
                    .any(|start| line.starts_with(start))
                {
                    break line;
                }
            };
            let secs = |l: &str| -> u64 {
                l.trim_end_matches(" s")
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0)
            };
            if answer.starts_with("too many login attempts on alice right now") {
                refused += 1;
                longest = longest.max(secs(&answer));
                c.expect("What is your name?");
            } else if answer.starts_with("wrong password for alice") {
                c.expect("What is your name?");
            } else {
                // Queued: this guess waits its turn (seconds); the stranger stays connected.
                longest = longest.max(secs(&answer));
                break;
            }
        }
    }
    assert!(
        refused > 0 || longest >= 10,
        "the account's queue never filled: {refused} refused, {longest} s at most"
    );
    for from in ["127.0.0.2", "127.0.2.1"] {
        let told = login_from(&server, from, "alice", PASSWORD);
        assert!(
            !told
                .iter()
                .any(|l| l.contains("checked in") || l.contains("try again")),
            "the owner on {from} waited behind the guessers: {told:?}"
        );
    }
    // And a stranger who failed is still refused.
    let mut c = common::accounts::connect_from("127.0.1.20", server.addr);
    c.expect("What is your name?");
    c.send("alice");
    c.expect("type its password");
    c.send("one more guess");
    c.expect("too many login attempts on alice right now");
}

/// Registers `name` from the loopback address `from`; returns the last line of the dialogue
/// (`... is now registered ...` or the refusal).
fn register_from(server: &Server, from: &str, name: &str) -> String {
    let mut c = server.join_from(from, name);
    c.send("/register");
    let first = c.expect_any_of(&["choose a password", "too many new accounts"]);
    if first.starts_with("too many new accounts") {
        return first;
    }
    c.send(PASSWORD);
    c.expect("type the same password again");
    c.send(PASSWORD);
    c.expect(&format!("{name} is now registered"))
}

/// `--registrations-per-hour`: an address (an IPv6 /64 as one) may make that many accounts an
/// hour; the next `/register` is refused with one line, before any password is asked for, and
/// registers nothing. Another address is not affected. (The hidden `--test-loopback-as-ipv6`
/// makes 127.0.1.x one /64 and 127.0.2.x another; passwords then cross "plaintext".)
#[test]
fn registrations_per_address_per_hour_are_limited() {
    let server = Server::start(&[
        "--registrations-per-hour",
        "2",
        "--test-loopback-as-ipv6",
        "--plaintext-passwords",
    ]);
    assert!(register_from(&server, "127.0.1.2", "squat1").contains("is now registered"));
    assert!(register_from(&server, "127.0.1.3", "squat2").contains("is now registered"));
    let refused = register_from(&server, "127.0.1.4", "squat3");
    assert!(
        refused.starts_with(
            "too many new accounts from your address (at most 2 an hour): nothing registered, \
             try again in "
        ) && refused.ends_with(" min"),
        "{refused}"
    );
    assert!(register_from(&server, "127.0.2.2", "other").contains("is now registered"));
    let names: Vec<String> = server
        .open_db()
        .prepare("SELECT name FROM accounts ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names, ["other", "squat1", "squat2"]);
    server.wait_log("/register refused: 2 new accounts from this address in the last hour");
}

/// Loopback is exempt from `--registrations-per-hour` unless `--limit-loopback`, like the other
/// per-address limits.
#[test]
fn loopback_registrations_are_limited_only_with_limit_loopback() {
    let server = Server::start(&["--registrations-per-hour", "1"]);
    for name in ["one", "two", "three"] {
        assert!(register_from(&server, "127.0.0.1", name).contains("is now registered"));
    }
    let server = Server::start(&["--registrations-per-hour", "1", "--limit-loopback"]);
    assert!(register_from(&server, "127.0.0.1", "one").contains("is now registered"));
    assert!(register_from(&server, "127.0.0.1", "two").starts_with("too many new accounts"));
}

trait ExpectAnyOf {
    /// Reads until a line starts with any of `starts`; returns it.
    fn expect_any_of(&mut self, starts: &[&str]) -> String;
}

impl ExpectAnyOf for Client {
    fn expect_any_of(&mut self, starts: &[&str]) -> String {
        loop {
            let line = self.line().expect("EOF");
            if starts.iter().any(|s| line.starts_with(s)) {
                return line;
            }
        }
    }
}
