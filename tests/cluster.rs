//! Cluster mode against a real `redis-server` on a Unix socket of its own and two or three real
//! smolchat nodes: cross-node chat in one order, names, `/who` and `/msg`, replicas, catch-up,
//! a node killed, Redis killed.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::irc::{IrcClient, SERVER_NAME};
use common::{Client, Server, TIMEOUT};

/// A throwaway Redis on a Unix socket in its own directory, killed on drop. (A socket rather
/// than a free TCP port: a port found free and released can be taken by a parallel test's Redis
/// before this one binds it.)
struct Redis {
    child: Child,
    program: PathBuf,
    dir: tempfile::TempDir,
    persistent: bool,
}

impl Redis {
    /// Starts Redis without persistence; `None` (after a loud notice) when it is not installed.
    fn start() -> Option<Redis> {
        Redis::start_with(false)
    }

    /// Starts Redis; `persistent` keeps the log in an append-only file synced on every write,
    /// so a kill -9 loses nothing it acknowledged.
    fn start_with(persistent: bool) -> Option<Redis> {
        let program = common::require("redis-server")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let child = spawn_redis(&program, dir.path(), persistent);
        let redis = Redis {
            child,
            program,
            dir,
            persistent,
        };
        redis.wait_ready();
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while std::os::unix::net::UnixStream::connect(self.socket()).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn restart(&mut self) {
        self.child = spawn_redis(&self.program, self.dir.path(), self.persistent);
        self.wait_ready();
    }
}

fn spawn_redis(program: &Path, dir: &Path, persistent: bool) -> Child {
    let socket = dir.join("redis.sock");
    let socket = socket.to_str().expect("utf-8 path");
    let dir_s = dir.to_str().expect("utf-8 path");
    let mut args = vec![
        "--port",
        "0",
        "--unixsocket",
        socket,
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--dir",
        dir_s,
    ];
    if persistent {
        args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
    } else {
        args.extend(["--appendonly", "no"]);
    }
    Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start redis-server")
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a node named `name` on a fresh database.
fn node(redis: &Redis, name: &str) -> Server {
    Server::start(&node_flags(redis, name))
}

/// Starts a node whose heartbeat expires after 1.5 s instead of 15 s (the hidden
/// `--test-cluster-ttl-ms`), so a test can let it expire without waiting the real time.
fn quick_node(redis: &Redis, name: &str) -> Server {
    let mut flags = node_flags(redis, name);
    flags.extend(["--test-cluster-ttl-ms", "1500"]);
    Server::start(&flags)
}

fn node_flags(redis: &Redis, name: &str) -> Vec<&'static str> {
    let flags = vec![
        "--cluster".to_owned(),
        redis.url(),
        "--node".to_owned(),
        name.to_owned(),
        "--rate-per-sec".to_owned(),
        "0".to_owned(),
    ];
    // Leaked: a handful of short strings per test, for the harness's `&[&str]`.
    flags
        .into_iter()
        .map(|f| &*Box::leak(f.into_boxed_str()))
        .collect()
}

/// Registers each (server, name) in turn; every earlier client sees each later one join, on
/// whichever node, so nobody has an unread line afterwards.
fn join_all(users: &[(&Server, &str)]) -> Vec<Client> {
    let mut clients: Vec<Client> = Vec::new();
    for (server, name) in users {
        let client = server.join(name);
        for earlier in &mut clients {
            earlier.expect(&format!("* {name} joined"));
        }
        clients.push(client);
    }
    clients
}

/// `(sender, room, kind, body)` of every stored row, in id order.
fn replica(server: &Server) -> Vec<(String, String, String, String)> {
    common::message_rows(&server.open_db())
        .into_iter()
        .map(|r| (r.sender, r.room, r.kind, r.body))
        .collect()
}

/// Waits until `server`'s file holds `n` rows (the writer commits within its window).
fn wait_rows(server: &Server, n: usize) -> Vec<(String, String, String, String)> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let rows = replica(server);
        if rows.len() >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{} rows, expected {n}:\n{}",
            rows.len(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads lines until `n` lines of the form `NAME: ...` from the senders in `from` have arrived;
/// returns them in arrival order.
fn collect_said(client: &mut Client, from: &[&str], n: usize) -> Vec<String> {
    let mut said = Vec::new();
    while said.len() < n {
        let line = client.line().expect("EOF");
        if from.iter().any(|f| line.starts_with(&format!("{f}: "))) {
            said.push(line);
        }
    }
    said
}

/// A line said on one node reaches the room on another; concurrent senders on two nodes are
/// seen in the same order on every node, and every node's file holds the same rows in that order.
#[test]
fn cross_node_chat_has_one_order_and_equal_replicas() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut c = join_all(&[(&a, "alice"), (&b, "bob"), (&a, "carol"), (&b, "dave")]);
    let mut dave = c.pop().expect("dave");
    let mut carol = c.pop().expect("carol");
    let mut bob = c.pop().expect("bob");
    let mut alice = c.pop().expect("alice");

    alice.send("hello from a");
    bob.expect("alice: hello from a");
    dave.expect("alice: hello from a");
    carol.expect("alice: hello from a");
    bob.send("/me waves from b");
    alice.expect("* bob waves from b");
    carol.expect("* bob waves from b");
    dave.expect("* bob waves from b");

    const N: usize = 100;
    let send = |mut client: Client, name: &'static str| {
        std::thread::spawn(move || {
            for i in 0..N {
                client.send(&format!("{name} line {i}"));
            }
            client
        })
    };
    let alice_t = send(alice, "alice");
    let bob_t = send(bob, "bob");
    let on_a = collect_said(&mut carol, &["alice", "bob"], 2 * N);
    let on_b = collect_said(&mut dave, &["alice", "bob"], 2 * N);
    assert_eq!(on_a, on_b, "the two nodes relayed in different orders");
    // Each sender's own lines keep their order.
    for name in ["alice", "bob"] {
        let mine: Vec<&String> = on_a
            .iter()
            .filter(|l| l.starts_with(&format!("{name}: ")))
            .collect();
        let expected: Vec<String> = (0..N).map(|i| format!("{name}: {name} line {i}")).collect();
        assert_eq!(
            mine.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            expected
        );
    }
    let mut alice = alice_t.join().expect("alice thread");
    let _bob = bob_t.join().expect("bob thread");
    // Alice sees bob's lines in the same order too (not her own: nobody sees their own echo).
    let bob_on_a: Vec<String> = on_a
        .iter()
        .filter(|l| l.starts_with("bob: "))
        .cloned()
        .collect();
    assert_eq!(collect_said(&mut alice, &["bob"], N), bob_on_a);

    let rows_a = wait_rows(&a, 2 * N + 2);
    let rows_b = wait_rows(&b, 2 * N + 2);
    assert_eq!(rows_a.len(), 2 * N + 2);
    assert_eq!(rows_a, rows_b, "the replicas differ");
    assert_eq!(
        rows_a[1],
        (
            "bob".into(),
            "lobby".into(),
            "action".into(),
            "waves from b".into()
        )
    );
    // The stream ids are stored, the same in both files.
    let ids = |s: &Server| -> Vec<String> {
        let db = s.open_db();
        let mut stmt = db
            .prepare("SELECT stream_id FROM messages ORDER BY id")
            .expect("prepare");
        let ids = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<Vec<String>, _>>()
            .expect("stream ids");
        ids
    };
    assert_eq!(ids(&a), ids(&b));
}

/// Two users on two nodes asking for the same name (in different case) at the same moment: one
/// wins, one is told the name is taken. Repeated, so the race is really run.
#[test]
fn a_name_race_across_nodes_has_one_winner() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    for round in 0..10 {
        let mut on_a = Client::connect(a.addr);
        let mut on_b = Client::connect(b.addr);
        on_a.expect("What is your name?");
        on_b.expect("What is your name?");
        let name = format!("racer{round}");
        let upper = name.to_uppercase();
        let t = std::thread::spawn(move || {
            on_b.send(&upper);
            let answer = on_b.line().expect("answer");
            (on_b, answer)
        });
        on_a.send(&name);
        let answer_a = on_a.line().expect("answer");
        let (_on_b, answer_b) = t.join().expect("thread");
        let won = [&answer_a, &answer_b]
            .iter()
            .filter(|l| l.starts_with("Welcome, "))
            .count();
        let lost = [&answer_a, &answer_b]
            .iter()
            .filter(|l| l.starts_with("name taken"))
            .count();
        assert_eq!(
            (won, lost),
            (1, 1),
            "round {round}: {answer_a:?} / {answer_b:?}"
        );
    }
    // A name held on one node is taken on the other, ignoring case; freed when its user leaves.
    let mut alice = a.join("alice");
    let mut other = Client::connect(b.addr);
    other.expect("What is your name?");
    other.send("ALICE");
    other.expect("name taken: ALICE is already in use");
    alice.send("/quit");
    alice.expect("bye");
    other.send("Alice");
    other.expect("Welcome, Alice!");
}

/// `/who`, `/rooms`, `/msg` and rooms work across nodes; a private line is stored nowhere.
#[test]
fn who_rooms_and_msg_across_nodes() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut c = join_all(&[(&a, "alice"), (&b, "bob")]);
    let mut bob = c.pop().expect("bob");
    let mut alice = c.pop().expect("alice");

    alice.send("/who");
    let who = alice.expect("users in lobby");
    assert!(who.contains("alice") && who.contains("bob"), "{who}");
    bob.send("/join rust");
    alice.expect("* bob left for rust");
    alice.send("/rooms");
    let rooms = alice.expect("rooms");
    assert!(rooms.contains("lobby") && rooms.contains("rust"), "{rooms}");
    alice.send("/msg Bob psst, only for you");
    alice.expect("[private to bob] psst, only for you");
    bob.expect("[private] alice: psst, only for you");
    alice.send("/msg nobody hello?");
    alice.expect("no such user: nobody");
    // A line in rust reaches nobody in the lobby; a user on a who joins rust replays it.
    bob.send("only in rust");
    bob.sync();
    alice.send("/join rust");
    let replay = alice.lines_until("--- end of history");
    if !replay.iter().any(|l| l.contains("bob: only in rust")) {
        // Node a had not read it from the log yet when alice joined: it follows live.
        alice.expect("bob: only in rust");
    }
    bob.expect("* alice joined");
    // A rename on b is seen on a, and /msg follows the new name.
    bob.send("/nick robert");
    bob.expect("* bob is now known as robert");
    alice.expect("* bob is now known as robert");
    alice.send("/msg robert again");
    bob.expect("[private] alice: again");
    let rows = wait_rows(&a, 1);
    assert!(rows.iter().all(|r| !r.3.contains("psst")), "{rows:?}");
    assert!(replica(&b).iter().all(|r| !r.3.contains("psst")));
}

/// A node stopped while the others chat, restarted on its file, catches up before serving: its
/// replay shows what it missed and its file equals the others'.
#[test]
fn a_restarted_node_catches_up() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut c = join_all(&[(&a, "alice"), (&b, "bob")]);
    let mut bob = c.pop().expect("bob");
    let mut alice = c.pop().expect("alice");
    alice.send("before the stop");
    bob.expect("alice: before the stop");
    let b_dir = b.stop();
    alice.expect("* bob left (server shutting down)");
    for i in 0..20 {
        alice.send(&format!("while b is away {i}"));
    }
    alice.sync();
    wait_rows(&a, 21);
    let b = Server::start_in(b_dir, &node_flags(&redis, "b"));
    let (_carol, replay) = b.join_replay("carol");
    assert!(
        replay
            .iter()
            .any(|l| l.contains("alice: while b is away 19")),
        "{replay:?}"
    );
    assert_eq!(wait_rows(&b, 21), replica(&a));
    // And a node started on an empty file gets the whole log.
    let c = node(&redis, "c");
    assert_eq!(wait_rows(&c, 21), replica(&a));
}

/// Retention on a node removes its copy of old messages without losing its place in the log: a
/// node whose every row was removed (its clock moved ahead instead of waiting), restarted after
/// missing a line, stores that line only, not the removed ones again (the log still has them),
/// and numbers it after them.
#[test]
fn retention_keeps_a_nodes_place_in_the_log() {
    let Some(redis) = Redis::start() else { return };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut c = join_all(&[(&a, "alice"), (&b, "bob")]);
    let mut bob = c.pop().expect("bob");
    let mut alice = c.pop().expect("alice");
    for i in 0..5 {
        alice.send(&format!("old {i}"));
    }
    collect_said(&mut bob, &["alice"], 5);
    wait_rows(&b, 5);
    let b_dir = b.stop();

    let mut flags = node_flags(&redis, "b");
    flags.extend(["--retention", "1h", "--test-retention-ahead", "2h"]);
    let b = Server::start_in(b_dir, &flags);
    b.wait_log("retention: removed 5 messages older than 1h");
    assert!(replica(&b).is_empty());
    let b_dir = b.stop();

    alice.send("while b is away");
    alice.sync();
    wait_rows(&a, 6);
    let b = Server::start_in(b_dir, &node_flags(&redis, "b"));
    let rows = common::message_rows(&b.open_db());
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["while b is away"], "{}", b.log());
    assert_eq!(rows[0].id, 6);
}

/// A node killed with SIGKILL frees its users' names cluster-wide, and the other nodes' rooms see
/// them leave with a reason, within the heartbeat expiry (shortened to 1.5 s by the hidden
/// `--test-cluster-ttl-ms`, so the test waits seconds rather than twenty).
#[test]
fn a_killed_node_frees_its_names() {
    let Some(redis) = Redis::start() else { return };
    let a = quick_node(&redis, "a");
    let mut b = quick_node(&redis, "b");
    let mut c = join_all(&[(&a, "alice"), (&b, "bob")]);
    let _bob = c.pop().expect("bob");
    let mut alice = c.pop().expect("alice");
    b.signal("KILL");
    b.wait_exit();
    let left = alice.lines_until("* bob left");
    assert!(
        left.last().is_some_and(|l| l == "* bob left (node b lost)"),
        "{left:?}"
    );
    let mut bob_again = Client::connect(a.addr);
    bob_again.expect("What is your name?");
    bob_again.send("bob");
    bob_again.expect("Welcome, bob!");
}

/// Redis killed and restarted (keeping its log on disk) while a user chats: users are told the
/// chat paused and is back; every line was either refused with a notice or stored exactly once,
/// in the same order, in every replica.
#[test]
fn redis_restart_loses_and_duplicates_nothing() {
    let Some(mut redis) = Redis::start_with(true) else {
        return;
    };
    let a = node(&redis, "a");
    let b = node(&redis, "b");
    let mut c = join_all(&[(&a, "alice"), (&b, "bob")]);
    let mut bob = c.pop().expect("bob");
    let mut alice = c.pop().expect("alice");

    let mut sent = 0;
    for _ in 0..20 {
        alice.send(&format!("line {sent}"));
        sent += 1;
    }
    bob.expect("alice: line 19");
    redis.kill();
    // Keep typing while the link is lost, until the node has noticed and said so.
    loop {
        alice.send(&format!("line {sent}"));
        sent += 1;
        alice.send("/who");
        let reply = alice.expect_any(&["users in ", "chat paused"]);
        if reply.contains("chat paused") {
            break;
        }
    }
    alice.send(&format!("line {sent}"));
    sent += 1;
    alice.expect("* server: not sent, the chat is paused");
    bob.expect("chat paused");
    redis.restart();
    alice.expect("* server: chat resumed, the cluster is reachable again");
    bob.expect("* server: chat resumed, the cluster is reachable again");
    for _ in 0..20 {
        alice.send(&format!("line {sent}"));
        sent += 1;
    }
    bob.expect(&format!("alice: line {}", sent - 1));
    alice.sync();
    let refused = alice
        .seen
        .iter()
        .filter(|l| l.starts_with("* server: not sent"))
        .count();
    let stored = sent - refused;
    let rows_a = wait_rows(&a, stored);
    let rows_b = wait_rows(&b, stored);
    assert_eq!(rows_a, rows_b);
    let bodies: Vec<&str> = rows_a.iter().map(|r| r.3.as_str()).collect();
    assert_eq!(bodies.len(), stored, "{bodies:?}");
    let unique: HashSet<&&str> = bodies.iter().collect();
    assert_eq!(unique.len(), bodies.len(), "a line was stored twice");
    let numbers: Vec<usize> = bodies
        .iter()
        .map(|b| b.trim_start_matches("line ").parse().expect("number"))
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    let log = a.log();
    let lost = format!("node a: lost the link to Redis at {}", redis.url());
    assert!(log.contains(&lost), "{log}");
    assert!(log.contains("recovered after"), "{log}");
}

/// A node's metrics show its link to Redis going down and coming back, and its log reader
/// caught up.
#[test]
fn metrics_show_the_link_and_the_reader() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let flags = [
        node_flags(&redis, "a"),
        vec!["--metrics-listen", "127.0.0.1:0"],
    ]
    .concat();
    let (a, metrics) = Server::start_until(&flags, "metrics on ");
    let metrics = metrics.parse().expect("metrics address");
    let mut alice = a.join("alice");
    alice.send("hello");
    alice.sync();
    common::wait_sample(metrics, "smolchat_cluster_link_up", 1.0);
    // Each read after the last entry finds nothing more: the reader is caught up.
    common::wait_sample(metrics, "smolchat_cluster_reader_lag_entries", 0.0);
    redis.kill();
    common::wait_sample(metrics, "smolchat_cluster_link_up", 0.0);
    redis.restart();
    common::wait_sample(metrics, "smolchat_cluster_link_up", 1.0);
}

impl ExpectAny for Client {
    fn expect_any(&mut self, needles: &[&str]) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needles:?}"
            );
            let line = self.line().expect("EOF");
            if needles.iter().any(|n| line.contains(n)) {
                return line;
            }
        }
    }
}

trait ExpectAny {
    /// Reads until a line contains any of `needles`; returns it.
    fn expect_any(&mut self, needles: &[&str]) -> String;
}

/// The account, ban and topic rows that must be equal on every node (`last_login_at` is each
/// node's own: logins are not replicated).
fn moderation_tables(server: &Server) -> Vec<String> {
    let db = server.open_db();
    let mut rows = Vec::new();
    for sql in [
        "SELECT name, display, password_hash, role, created_at, skeleton FROM accounts ORDER BY name",
        "SELECT kind, target, reason, banned_by, created_at, expires_at FROM bans ORDER BY kind, target",
        "SELECT room, topic, set_by, set_at FROM topics ORDER BY room",
    ] {
        let mut stmt = db.prepare(sql).expect(sql);
        let n = stmt.column_count();
        let got = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect(sql)
            .collect::<Result<Vec<_>, _>>()
            .expect(sql);
        rows.extend(got.into_iter().map(|r| format!("{r:?}")));
    }
    rows
}

/// Waits until `b`'s account, ban and topic rows equal `a`'s and pass `done`.
fn wait_tables(a: &Server, b: &Server, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (ta, tb) = (moderation_tables(a), moderation_tables(b));
        if ta == tb && done(&tb) {
            return tb;
        }
        assert!(
            Instant::now() < deadline,
            "tables differ:\n{ta:#?}\n{tb:#?}\n{}",
            b.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nodes a and b, and `boss`, an operator on a whose role every node knows: `smolchat op`
/// writes one file, and `/op` spreads the role to every node.
fn two_nodes_and_an_operator(redis: &Redis) -> (Server, Server, Client) {
    let a = node(redis, "a");
    let b = node(redis, "b");
    let mut boss = a.operator("boss");
    boss.send("/op boss");
    boss.expect("boss is now an operator");
    (a, b, boss)
}

/// Accounts, operators, bans and topics set on one node hold on the other, in its memory and its
/// file, and after its restart; a kick acts on the node holding the user.
#[test]
fn accounts_and_moderation_are_cluster_wide() {
    use common::accounts::{connect_from, PASSWORD};
    let Some(redis) = Redis::start() else { return };
    let (a, b, mut boss) = two_nodes_and_an_operator(&redis);

    // A password set on a logs in on b.
    let mut alice = a.register("alice", PASSWORD);
    alice.send("/password");
    alice.expect("current password for alice");
    alice.send(PASSWORD);
    alice.expect("new password");
    alice.send("a new password");
    alice.expect("type the same password again");
    alice.send("a new password");
    alice.expect("password changed");
    alice.close();
    boss.expect("* alice left");
    wait_tables(&a, &b, |t| {
        t.iter()
            .any(|r| r.contains("\"boss\"") && r.contains("operator"))
    });
    let mut alice = b.login("alice", "a new password");
    boss.expect("* alice joined");

    // An operator made on a (by /op) kicks on b, and a kick on a acts on b's user.
    let mut dave = b.join("dave");
    alice.expect("* dave joined");
    boss.expect("* dave joined");
    boss.send("/op alice");
    alice.expect("alice is now an operator");
    alice.send("/kick dave");
    dave.expect("you were kicked by alice");
    dave.expect_eof();
    boss.expect("* dave was kicked by alice");
    let mut erin = b.join("erin");
    boss.expect("* erin joined");
    boss.send("/kick erin cross-node");
    erin.expect("you were kicked by boss (cross-node)");
    erin.expect_eof();
    alice.expect("* erin was kicked by boss (cross-node)");

    // A ban by name and by address set on a refuses on b.
    let mut mallory = b.join("mallory");
    boss.expect("* mallory joined");
    boss.send("/ban mallory spam");
    mallory.expect("you are banned by boss");
    mallory.expect_eof();
    alice.expect("* mallory was banned by boss (spam)");
    boss.send("/ban 127.0.0.2");
    boss.expect("banned 127.0.0.2");

    // A topic set on a shows on b.
    boss.send("/topic welcome to the cluster");
    alice.expect("* boss set the topic of lobby: welcome to the cluster");
    let tables = wait_tables(&a, &b, |t| {
        t.iter().any(|r| r.contains("welcome to the cluster"))
            && t.iter().any(|r| r.contains("127.0.0.2"))
            && t.iter()
                .any(|r| r.contains("\"alice\"") && r.contains("operator"))
    });
    assert!(
        tables.iter().any(|r| r.contains("\"mallory\"")),
        "{tables:#?}"
    );
    alice.close();
    boss.expect("* alice left");

    // All of it survives b's restart, in b's own file.
    let b = Server::start_in(b.stop(), &node_flags(&redis, "b"));
    let refused = |b: &Server| {
        let mut c = Client::connect(b.addr);
        c.expect("What is your name?");
        c.send("mallory");
        c.expect("mallory is banned");
        let mut c = connect_from("127.0.0.2", b.addr);
        c.expect("your address is banned from this server");
        c.expect_eof();
    };
    refused(&b);
    let mut carol = b.join("carol");
    carol.send("/topic");
    carol.expect("topic of lobby: welcome to the cluster (set by boss)");
    let _alice = b.login("alice", "a new password");
    assert_eq!(moderation_tables(&b), moderation_tables(&a));
}

/// `/unregister NAME` by an operator on one node removes the account from every node's file,
/// and the name is free on the other node at once.
#[test]
fn an_operators_unregister_is_cluster_wide() {
    use common::accounts::PASSWORD;
    let Some(redis) = Redis::start() else { return };
    let (a, b, mut boss) = two_nodes_and_an_operator(&redis);
    b.register("squatter", PASSWORD).close();
    boss.expect("* squatter left");
    wait_tables(&a, &b, |t| t.iter().any(|r| r.contains("\"squatter\"")));
    boss.send("/unregister squatter");
    boss.expect("squatter is no longer registered");
    wait_tables(&a, &b, |t| !t.iter().any(|r| r.contains("\"squatter\"")));
    let _free = b.join("squatter");
    // Stopped first: the hub queues the log row without waiting, and a stop writes what is queued.
    let (_dir, db) = a.stop_and_open_db();
    let logged: String = db
        .query_row(
            "SELECT operator || ' ' || action || ' ' || target FROM moderation_log
             WHERE action = 'unregister'",
            [],
            |r| r.get(0),
        )
        .expect("logged on a");
    assert_eq!(logged, "boss unregister squatter");
}

/// A partition heals with one holder per name: node a is frozen (SIGSTOP) past the heartbeat's
/// expiry (shortened to 1.5 s by the hidden `--test-cluster-ttl-ms`), node b takes it for dead,
/// a second alice logs in on b, and a is continued. a's alice is disconnected with a line
/// saying why (b's alice keeps the name, as Redis says), a's log says which user went; carol,
/// whose name nobody took, keeps hers (a claims it again) and is announced again on b; every
/// node lists one alice. What a's alice typed while a was frozen is dropped, never shown as
/// `alice: ...` beside the other alice; what carol typed goes out.
#[test]
fn a_name_has_one_holder_after_a_partition_heals() {
    let Some(redis) = Redis::start() else { return };
    let a = quick_node(&redis, "a");
    let b = quick_node(&redis, "b");
    let mut c = join_all(&[(&a, "alice"), (&a, "carol"), (&b, "bob")]);
    let mut bob = c.pop().expect("bob");
    let mut carol = c.pop().expect("carol");
    let mut alice = c.pop().expect("alice");

    a.signal("STOP");
    b.wait_log("node a stopped renewing its heartbeat");
    // Typed while a is frozen (for sure by now: kill returns before every thread has stopped),
    // so a reads them the moment it runs again.
    alice.send("typed by the first alice while frozen");
    carol.send("typed by carol while frozen");
    // alice and carol, in either order.
    bob.expect("left (node a lost)");
    bob.expect("left (node a lost)");
    // alice's name expired with a's heartbeat (give its key the last milliseconds it may have).
    let mut alice2 = Client::connect(b.addr);
    alice2.expect("What is your name?");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        alice2.send("alice");
        let answer = alice2.line().expect("EOF");
        if answer.starts_with("Welcome, alice!") {
            break;
        }
        assert!(answer.starts_with("name taken"), "{answer}");
        assert!(Instant::now() < deadline, "alice's name never expired");
        // No pause needed: the name prompt paces these retries (burst, then 2 a second).
        alice2.expect("What is your name?");
    }
    alice2.expect("--- end of history");
    bob.expect("* alice joined");

    a.signal("CONT");
    alice.expect(
        "disconnected: while this server was cut off from the cluster, another user took the \
         name alice on node b; reconnect and choose a name",
    );
    alice.expect_eof();
    carol.expect("* alice left (name taken on node b)");
    bob.expect("* carol joined");
    a.wait_log("alice disconnected: node b holds the name now");
    a.wait_log("was claimed on node b while this node was cut off from the cluster");
    // One alice everywhere, and both nodes list the same three users.
    let who = |client: &mut Client| -> Vec<String> {
        client.send("/who");
        let line = client.expect("users in lobby");
        let mut names: Vec<String> = line
            .split_once(": ")
            .map(|(_, names)| names.split(", ").map(str::to_owned).collect())
            .unwrap_or_default();
        names.sort();
        names
    };
    assert_eq!(who(&mut carol), ["alice", "bob", "carol"]);
    assert_eq!(who(&mut bob), ["alice", "bob", "carol"]);
    // carol's name is a's again: nobody on b can take it.
    let mut other = Client::connect(b.addr);
    other.expect("What is your name?");
    other.send("carol");
    other.expect("name taken: carol is already in use");
    // And the alice that stayed is the one everybody hears.
    alice2.send("still here");
    carol.expect("alice: still here");
    bob.expect("alice: still here");
    for client in [&bob, &alice2, &carol] {
        assert!(
            !client.seen.iter().any(|l| l.contains("by the first alice")),
            "the lost alice was heard: {:?}",
            client.seen
        );
    }
    assert!(bob
        .seen
        .iter()
        .any(|l| l == "carol: typed by carol while frozen"));
}

/// An IRC user on node A and an nc user on node B: before the IRC user joins any channel (IRC
/// users arrive in none) node B knows it, so its name is refused there (to a newcomer and to a
/// `/nick`) and `/msg` reaches it;
/// then both chat both ways in one room; after the IRC user parts its last channel, B still
/// knows it, and so does a node started then; once it quits, its name is free on B.
#[test]
fn an_irc_user_on_one_node_and_an_nc_user_on_another() {
    let Some(redis) = Redis::start() else { return };
    let mut flags = node_flags(&redis, "a");
    flags.extend(["--irc-listen", "127.0.0.1:0", "--server-name", SERVER_NAME]);
    let (a, rest) = Server::start_until(&flags, "listening for IRC on ");
    let irc_addr = rest.parse().expect("IRC address");
    let b = node(&redis, "b");
    let mut c = join_all(&[(&a, "dave"), (&b, "bob")]);
    let mut bob = c.pop().expect("bob");
    let mut dave = c.pop().expect("dave");
    let mut ann = IrcClient::connect(irc_addr).register("ann");

    // In no room, ann is known on B: her name is taken there, and a private line reaches her.
    let mut other = Client::connect(b.addr);
    other.expect("What is your name?");
    other.send("Ann");
    other.expect("name taken: Ann is already in use");
    bob.send("/nick ANN");
    bob.expect("name taken: ANN is already in use");
    bob.send("/msg ann psst");
    bob.expect("[private to ann] psst");
    let private = ann.expect("bob's private line", |m| m.command == "PRIVMSG");
    assert_eq!(private.nick(), Some("bob"));
    assert_eq!(private.params, ["ann", "psst"]);

    // One room, both ways.
    ann.send("JOIN #lobby");
    ann.expect("the lobby's names", |m| m.command == "366");
    bob.expect("* ann joined");
    ann.send("PRIVMSG #lobby :hello from irc");
    bob.expect("ann: hello from irc");
    bob.send("hello from nc");
    let line = ann.expect("bob's line", |m| m.command == "PRIVMSG");
    assert_eq!(line.nick(), Some("bob"));
    assert_eq!(line.params, ["#lobby", "hello from nc"]);

    // Out of every room, still known.
    ann.send("PART #lobby");
    bob.expect("* ann left");
    bob.send("/msg ann still there?");
    bob.expect("[private to ann] still there?");
    ann.expect("bob's second private line", |m| {
        m.command == "PRIVMSG" && m.params.last().map(String::as_str) == Some("still there?")
    });
    other.send("ann");
    other.expect("name taken: ann is already in use");

    // A node started now learns of her from A's snapshot. A logs the node's arrival in the turn
    // it queues the snapshot, so a line dave says after that follows it in the log.
    let c = node(&redis, "c");
    let mut carol = c.join("carol");
    a.wait_log("node c joined the cluster");
    dave.send("snapshot sent");
    carol.expect("dave: snapshot sent");
    carol.send("/msg ann from c");
    carol.expect("[private to ann] from c");
    ann.expect("carol's private line", |m| {
        m.command == "PRIVMSG" && m.params.last().map(String::as_str) == Some("from c")
    });

    // Gone, the name is free on B. Ann's session tells A's hub before its goodbye, so a line
    // dave (on A) sends after it follows her departure in the log: bob seeing it is the marker.
    ann.send("QUIT :bye");
    ann.expect("the server's goodbye", |m| m.command == "ERROR");
    dave.send("after ann");
    bob.expect("dave: after ann");
    bob.send("/msg ann gone?");
    bob.expect("no such user");
    other.send("ann");
    other.expect("Welcome, ann!");
}
