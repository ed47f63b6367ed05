//! Places for connections that have not chosen a name yet (`--max-unregistered`), over real TCP:
//! silent connections hold at most that share of the server, each newcomer past it evicts the
//! oldest of them, and a real user always gets in.
mod common;

use std::collections::VecDeque;
use std::time::Instant;

use common::{Client, Server};

/// The greeting every admitted connection gets first.
const GREETING: &str = "Welcome to smolchat! What is your name?";

/// The last words of an evicted connection.
const EVICTED: &str = "too many connections waiting for a name; try again";

/// What the server logs (aggregated) for an eviction.
const EVICTED_LOG: &str = "evicted: --max-unregistered";

/// Twenty silent connections in a row against `--max-clients 10 --max-unregistered 4`, with five
/// users registered, so the share and then the whole server are full: each newcomer evicts the
/// oldest silent one, which is told why; a real user arriving mid-flood registers and chats;
/// and the log carries a few aggregated lines, not one per eviction.
#[test]
fn silent_connections_cannot_keep_a_real_user_out() {
    let server = Server::start(&["--max-clients", "10", "--max-unregistered", "4"]);
    let started = Instant::now();
    let [mut alice, _u1, _u2, _u3, _u4] = server.join_all(["alice", "u1", "u2", "u3", "u4"]);

    let mut silent: VecDeque<Client> = VecDeque::new();
    let mut evictions = 0;
    let mut bob = None;
    for n in 0..20 {
        if n == 10 {
            // A real user: the server is full (5 users, 4 waiting, 1 more), yet bob gets in,
            // taking the place of the oldest silent connection.
            let mut b = Client::connect(server.addr);
            b.next_is(GREETING);
            let mut oldest = silent.pop_front().expect("four are waiting");
            assert_eq!(oldest.expect_eof(), vec![EVICTED.to_owned()]);
            evictions += 1;
            b.send("bob");
            b.expect("Welcome, bob!");
            b.expect("--- end of history");
            alice.expect("* bob joined");
            bob = Some(b);
        }
        let mut c = Client::connect(server.addr);
        c.next_is(GREETING);
        if silent.len() == 4 {
            // Admitting `c` evicted the oldest, which was told why and closed.
            let mut oldest = silent.pop_front().expect("four are waiting");
            assert_eq!(oldest.expect_eof(), vec![EVICTED.to_owned()]);
            evictions += 1;
        }
        silent.push_back(c);
    }
    // 20 silent and bob came; 4 silent are still waiting and bob registered.
    assert_eq!(evictions, 16);

    // Registered users are never evicted: bob and alice chat over the four still waiting.
    let mut bob = bob.expect("bob joined");
    bob.send("got in despite the flood");
    alice.expect("bob: got in despite the flood");
    alice.send("welcome");
    bob.expect("alice: welcome");

    // Aggregated: the first eviction in full, then at most one line per 10 s interval.
    server.wait_log(EVICTED_LOG);
    let log = server.log();
    let lines = log.lines().filter(|l| l.contains(EVICTED_LOG)).count();
    let allowed = 2 + started.elapsed().as_secs() / 10;
    assert!(
        lines as u64 <= allowed,
        "{lines} eviction lines for {evictions} evictions (at most {allowed}):\n{log}"
    );
}

/// Without the share full, nobody is evicted: a connection still choosing a name stays, and the
/// server is full (`server full`) only when every connection has a name.
#[test]
fn nobody_is_evicted_below_the_share_and_a_full_server_of_users_refuses() {
    let server = Server::start(&["--max-clients", "3", "--max-unregistered", "2"]);
    let _alice = server.join("alice");
    let mut waiting = Client::connect(server.addr);
    waiting.next_is(GREETING);
    // Two waiting now, the share; the server is full.
    let mut second = Client::connect(server.addr);
    second.next_is(GREETING);
    // They register after all: nobody was evicted, and the server is full of users.
    waiting.send("carol");
    waiting.expect("Welcome, carol!");
    second.send("dave");
    second.expect("Welcome, dave!");
    let mut refused = Client::connect(server.addr);
    assert_eq!(
        refused.expect_eof(),
        vec!["server full, try again later".to_owned()]
    );
    assert!(!server.log().contains(EVICTED_LOG), "{}", server.log());
}
