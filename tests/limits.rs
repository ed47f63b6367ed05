//! The limits a client can run into, over real TCP: line length, the registration deadline, the
//! rate limit, slow readers, connection counts and running out of file descriptors. Each limit
//! protects the server or the room, so each test also checks that the server keeps serving.
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{cpu_time, rss_kib, start_alice_and_bob, Client, Server, TIMEOUT};

/// The greeting every admitted connection gets first.
const GREETING: &str = "Welcome to smolchat! What is your name?";

/// Output of a shell command, trimmed.
fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The line-too-long reply for the default limit.
const TOO_LONG: &str = "line too long (max 1024 bytes), not sent";

/// A line over the limit gets the exact reply, its rest up to the newline is skipped, and the
/// connection carries on; a line of exactly the limit is relayed.
#[test]
fn line_too_long_is_refused_and_rest_skipped() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);

    let mut bytes = vec![b'a'; 1025];
    bytes.extend_from_slice(b"TAIL-THAT-MUST-BE-SKIPPED\nnext line\n");
    alice.send_raw(&bytes);
    alice.next_is(TOO_LONG);
    // Neither the refused line nor its tail came before the next line.
    bob.next_is("alice: next line");

    let exact = "b".repeat(1024);
    alice.send(&exact);
    bob.next_is(&format!("alice: {exact}"));
    // Nothing else was said to alice: her next line is bob's.
    bob.send("marker");
    alice.next_is("bob: marker");
}

/// A 10 MB line with no newline gets one too-long reply and does not grow the server's memory.
#[test]
fn ten_megabyte_line_without_newline_keeps_memory_bounded() {
    const LINE: usize = 10 * 1024 * 1024;
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    let pid = server.child.id();
    let before = rss_kib(pid);

    alice.send_raw(&vec![b'x'; LINE]);
    alice.next_is(TOO_LONG);
    // The line ends here; the server has consumed all 10 MB once bob sees the next line.
    alice.send_raw(b"\nafter\n");
    bob.next_is("alice: after");
    let after = rss_kib(pid);
    // A server that kept the line would hold at least its 10 MB; a bounded one holds a read
    // buffer and one line. Half the line is far above the second and far below the first.
    let grown = after.saturating_sub(before);
    assert!(
        grown < (LINE / 2 / 1024) as u64,
        "server RSS grew by {grown} KiB ({before} -> {after}) for one over-long line"
    );
    // Exactly one reply was sent: alice's next line is bob's.
    bob.send("marker");
    alice.next_is("bob: marker");
}

/// A newcomer who gives no name within --register-timeout is told so and disconnected.
#[test]
fn registration_deadline_closes_the_connection() {
    let server = Server::start(&["--register-timeout", "1"]);
    let mut c = Client::connect(server.addr);
    c.next_is(GREETING);
    // A partial name without a line end does not count as an answer.
    c.send_raw(b"ali");
    assert_eq!(
        c.expect_eof(),
        vec!["no name given in 1 s, closing connection".to_owned()]
    );
    server.wait_log("no name within 1 s");
}

/// A pasted block over the rate limit is delayed, not dropped, and arrives whole and in order,
/// while another user's line is relayed during the delay, before the paste's last lines.
#[test]
fn paste_over_the_rate_limit_is_delayed_not_dropped_and_others_still_get_through() {
    // Default rate: burst 10, then 2 lines a second, so 16 lines take about 3 s.
    let server = Server::start(&[]);
    let [mut bob, mut carol, mut alice] = server.join_all(["bob", "carol", "alice"]);

    let paste: String = (1..=16).map(|n| format!("paste {n:02}\n")).collect();
    alice.send_raw(paste.as_bytes());
    // The 11th line is past the burst: once it arrives, alice is being delayed.
    let received = bob.lines_until("alice: paste 11");
    let expected: Vec<String> = (1..=11).map(|n| format!("alice: paste {n:02}")).collect();
    assert_eq!(received, expected);
    carol.send("carol is not held up");
    let rest = bob.lines_until("alice: paste 16");
    let carol_at = rest
        .iter()
        .position(|l| l == "carol: carol is not held up")
        .unwrap_or_else(|| panic!("carol's line did not come before the paste ended: {rest:?}"));
    let mut pasted: Vec<String> = rest.clone();
    pasted.remove(carol_at);
    let expected: Vec<String> = (12..=16).map(|n| format!("alice: paste {n:02}")).collect();
    assert_eq!(pasted, expected, "paste lines lost or reordered: {rest:?}");
    // Alice is told once, when her burst runs out, and nothing is relayed back to her.
    alice.next_is(
        "slow down: after 10 lines, lines are sent at 2 per second (delayed, not dropped)",
    );
    alice.next_is("carol: carol is not held up");
    bob.send("marker");
    alice.next_is("bob: marker");
}

/// A client that stops reading is dropped once its outbox is full, while two others exchange
/// over 30 MB in full and in order, and the server's memory stays flat.
#[test]
fn slow_reader_is_dropped_and_the_room_and_memory_are_not_affected() {
    /// Lines the sender writes, each `LINE_LEN` bytes with its newline: 35 MB in all.
    const LINES: usize = 35_000;
    const LINE_LEN: usize = 1000;
    /// Most lines the sender may be ahead of what the reader has received. This keeps the
    /// reader's own outbox far below its limit however slowly this test process runs.
    const WINDOW: usize = 128;
    const BATCH: usize = 16;

    let server = Server::start(&["--rate-per-sec", "0"]);
    let pid = server.child.id();
    // A tiny receive buffer, so the staller's kernel buffers fill early.
    let mut staller = server.join_small_window("staller");
    let mut reader = server.join("reader");
    let sender = server.join("sender");
    reader.expect("* sender joined");
    let before = rss_kib(pid);

    let (acked_tx, acked_rx) = mpsc::channel::<usize>();
    let mut out = sender.stream.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let pad = "p".repeat(LINE_LEN - 8);
        let mut sent = 0;
        let mut acked = 0;
        while sent < LINES {
            while sent - acked >= WINDOW {
                acked = acked_rx.recv_timeout(TIMEOUT).expect("reader stalled");
            }
            let n = BATCH.min(LINES - sent);
            let mut batch = String::with_capacity(n * LINE_LEN);
            for seq in sent..sent + n {
                batch.push_str(&format!("{seq:06} {pad}\n"));
            }
            out.write_all(batch.as_bytes()).expect("send");
            sent += n;
        }
    });

    let mut next = 0;
    let mut saw_drop = false;
    while next < LINES {
        let line = reader.line().expect("reader lost its connection");
        if line == "* staller left (not reading fast enough)" {
            assert!(!saw_drop, "dropped twice");
            saw_drop = true;
            continue;
        }
        let body = line
            .strip_prefix("sender: ")
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        let seq: usize = body[..6].parse().expect("sequence number");
        assert_eq!(seq, next, "line lost or out of order");
        assert_eq!(body.len(), LINE_LEN - 1, "line {seq} changed in transit");
        next += 1;
        if next % 32 == 0 {
            // The writer may already be done and gone; then nobody needs the count.
            let _ = acked_tx.send(next);
            reader.seen.clear();
        }
    }
    writer.join().expect("writer thread");
    assert!(
        saw_drop,
        "the staller was never dropped after {LINES} lines of {LINE_LEN} bytes"
    );
    server.wait_log("staller dropped: outbox full");
    let after = rss_kib(pid);
    // Holding what the staller did not read would cost over 30 MB. The bounded queues (the
    // staller's 256 KB outbox, the hub's and the history writer's queues) and SQLite's cache
    // account for well under 24 MB.
    let grown = after.saturating_sub(before);
    assert!(
        grown < 24 * 1024,
        "server RSS grew by {grown} KiB ({before} -> {after}) while relaying 35 MB"
    );

    // The staller's connection was closed, not just taken out of the room: what is buffered for
    // it ends in EOF.
    let mut drained = 0usize;
    loop {
        let chunk = staller.read_raw(64 * 1024);
        if chunk.is_empty() {
            break;
        }
        drained += chunk.len();
        assert!(drained < LINES * LINE_LEN, "the staller got everything");
    }
    drop(sender);
}

/// With --max-clients 3 a fourth connection is told the server is full and closed; once a user
/// leaves, a new connection is admitted.
#[test]
fn max_clients_refuses_then_admits_after_a_leave() {
    let server = Server::start(&["--max-clients", "3"]);
    let a = server.join("a");
    let mut b = server.join("b");
    let _c = server.join("c");
    let mut d = Client::connect(server.addr);
    assert_eq!(
        d.expect_eof(),
        vec!["server full, try again later".to_owned()]
    );
    server.wait_log("refused: server full");

    a.close();
    b.expect("* a left");
    // The place is given back when a's session has finished, just after its leave notice; poll
    // until a connection is admitted.
    let deadline = Instant::now() + TIMEOUT;
    let mut e = loop {
        let mut e = Client::connect(server.addr);
        let first = e.line().expect("closed without a word");
        if first == GREETING {
            break e;
        }
        assert_eq!(first, "server full, try again later");
        assert!(Instant::now() < deadline, "never admitted after a leave");
        std::thread::sleep(Duration::from_millis(20));
    };
    e.send("e");
    e.expect("Welcome, e!");
    b.expect("* e joined");
}

/// With --max-per-ip 2 --limit-loopback a third connection from 127.0.0.1 is refused.
#[test]
fn max_per_ip_applies_to_loopback_when_asked() {
    let server = Server::start(&["--max-per-ip", "2", "--limit-loopback"]);
    let mut one = Client::connect(server.addr);
    one.next_is(GREETING);
    let mut two = Client::connect(server.addr);
    two.next_is(GREETING);
    let mut three = Client::connect(server.addr);
    assert_eq!(
        three.expect_eof(),
        vec!["too many connections from your address (max 2)".to_owned()]
    );
    server.wait_log("refused: too many connections from your address");
}

/// Without --limit-loopback, loopback connections are exempt from --max-per-ip.
#[test]
fn max_per_ip_exempts_loopback_by_default() {
    let server = Server::start(&["--max-per-ip", "2"]);
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(server.addr)).collect();
    for c in &mut clients {
        c.next_is(GREETING);
    }
}

/// At start-up the server raises its open-file limit to the hard limit and logs it.
#[test]
fn start_up_logs_the_raised_open_file_limit() {
    let hard = sh("ulimit -Hn");
    let server = Server::start(&[]);
    server.wait_log("open-file limit is ");
    let log = server.log();
    let logged = log
        .lines()
        .find_map(|l| l.split("open-file limit is ").nth(1))
        .expect("limit line")
        .trim();
    if hard == "unlimited" {
        // The kernel's own ceiling then applies; it is some number.
        logged.parse::<u64>().expect("a number");
    } else {
        assert_eq!(logged, hard);
    }
}

/// Waits until `stream` has received a whole greeting (true), or the log says the server is out
/// of descriptors while no greeting has come (false).
fn greeted_or_stuck(stream: &mut TcpStream, server: &Server) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let deadline = Instant::now() + TIMEOUT;
    let mut got = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "neither greeted nor stuck");
        let mut buf = [0; 256];
        match stream.read(&mut buf) {
            Ok(0) => panic!("closed before the greeting; got {got:?}"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
        if got.ends_with(b"\n") {
            assert_eq!(got, format!("{GREETING}\n").as_bytes());
            return true;
        }
        if got.is_empty() && server.log().contains("out of resources") {
            return false;
        }
    }
}

/// Out of file descriptors, the server logs it, backs off instead of spinning, and serves again
/// once connections close.
#[test]
fn out_of_descriptors_backs_off_without_spinning_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("chat.db");
    let log = dir.path().join("server.log");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", r#"ulimit -n 48; exec "$0" "$@""#])
        .arg(env!("CARGO_BIN_EXE_smolchat"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db);
    let server = Server::spawn(&mut cmd, dir, log);
    let pid = server.child.id();
    server.wait_log("open-file limit is 48");

    let mut open = Vec::new();
    let mut pending = loop {
        assert!(open.len() < 64, "never ran out of descriptors");
        let mut stream = TcpStream::connect(server.addr).expect("connect");
        if greeted_or_stuck(&mut stream, &server) {
            open.push(stream);
        } else {
            break stream;
        }
    };
    assert!(
        open.len() > 10,
        "only {} connections before EMFILE",
        open.len()
    );

    // The server warns at most once a second while stuck; CPU use between two warnings shows
    // whether it sleeps between attempts or spins on accept.
    let warnings = || server.log().matches("out of resources").count();
    let (seen, cpu0, t0) = (warnings(), cpu_time(pid), Instant::now());
    let deadline = t0 + TIMEOUT;
    while warnings() == seen {
        assert!(Instant::now() < deadline, "no second warning while stuck");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (cpu, elapsed) = (cpu_time(pid) - cpu0, t0.elapsed());
    assert!(
        cpu.as_secs_f64() < 0.25 * elapsed.as_secs_f64(),
        "server used {cpu:?} of CPU in {elapsed:?} while out of descriptors"
    );
    // Still stuck: the pending connection has had no greeting.
    pending.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0; 64];
    match pending.read(&mut buf) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("pending connection got {other:?} while the server was stuck"),
    }
    pending.set_nonblocking(false).expect("blocking");

    // Closing some connections frees descriptors: the pending one is served, then a new user.
    open.truncate(open.len() - 8);
    let mut pending = Client::from_stream(pending);
    pending.next_is(GREETING);
    let mut late = server.join("late");
    pending.send("pending");
    pending.expect("Welcome, pending!");
    pending.expect("--- end of history");
    late.expect("* pending joined");
}

/// Over-long lines count against the rate limit like any other line, and the log warns once per
/// session rather than once per line, so neither the server nor its log can be flooded.
#[test]
fn over_long_lines_count_against_the_rate_and_warn_once() {
    // The notice comes after exactly the burst's last line only if the lines reach the token
    // bucket within one refill interval; otherwise a refilled token moves it a line later. The flags
    // are explicit so that this margin is the server's own setting: one second, at the slowest
    // rate the flag allows (the default rate would leave half that).
    let (server, _alice, mut bob) =
        start_alice_and_bob(&["--rate-burst", "10", "--rate-per-sec", "1"]);
    let long = "x".repeat(2000);
    let flood: String = (0..12).map(|_| format!("{long}\n")).collect();
    bob.send_raw(flood.as_bytes());
    let too_long = "line too long (max 1024 bytes), not sent";
    let slow_down =
        "slow down: after 10 lines, lines are sent at 1 per second (delayed, not dropped)";
    // The line that spends the burst, refused or not, brings the notice, then lines are paced.
    // Bob's name, typed at the prompt, was the burst's first line, unless a token has come back
    // since (a second): so the notice comes after eight or nine refusals.
    let mut refused = 0;
    loop {
        let line = bob.line().expect("EOF");
        if line == slow_down {
            break;
        }
        assert_eq!(line, too_long);
        refused += 1;
    }
    assert!((8..=9).contains(&refused), "notice after {refused} lines");
    for _ in 0..(12 - refused) {
        bob.next_is(too_long);
    }
    let warnings = server
        .log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("bytes refused"))
        .count();
    assert_eq!(warnings, 1, "{}", server.log());
}

/// Joiners that never read get their history replay in small chunks: a page of large lines held
/// for many such clients does not grow the server's memory by the page size per client.
#[test]
fn replay_to_clients_that_do_not_read_holds_little_memory() {
    let server = Server::start(&["--rate-per-sec", "0", "--history", "1000"]);
    let mut writer = server.join("writer");
    // 1000 lines of 1000 invalid bytes each: every byte becomes U+FFFD (3 bytes) when relayed,
    // so the page is about 3 MB.
    let mut line = vec![0x80u8; 1000];
    line.push(b'\n');
    for _ in 0..1000 {
        writer.send_raw(&line);
    }
    writer.sync();
    let pid = server.child.id();
    let before = rss_kib(pid);
    let mut stalled = Vec::new();
    for n in 0..20 {
        let mut c = Client::connect_small_window(server.addr);
        c.expect("What is your name?");
        c.send(&format!("stall{n}"));
        // Never read again: the replay blocks on this client's socket.
        stalled.push(c);
    }
    // Everybody is registered once the writer has seen all twenty join, in whatever order the
    // independent connections registered.
    let mut joined = std::collections::HashSet::new();
    while joined.len() < 20 {
        let line = writer.expect(" joined");
        joined.insert(line);
    }
    let grown = rss_kib(pid).saturating_sub(before);
    // Holding whole pages would take about 20 x 3 MB; chunks of 64 rows take about 200 KB each.
    assert!(grown < 16 * 1024, "server grew by {grown} KiB");
    drop(stalled);
}

/// One address hammering the per-address cap costs the log one line per interval, not one per
/// refusal: the first refusal is logged in full, the rest are counted.
#[test]
fn refusals_are_logged_aggregated() {
    let server = Server::start(&["--max-per-ip", "1", "--limit-loopback"]);
    let _held = server.join("held");
    for _ in 0..2000 {
        let mut c = Client::connect(server.addr);
        c.expect("too many connections from your address");
    }
    let log = server.log();
    let refusals = log.matches("refused: too many connections").count();
    assert!(
        (1..20).contains(&refusals),
        "{refusals} refusal lines for 2000 refusals:\n{log}"
    );
}

/// Connects from `local`, a 127.0.0.0/8 address (Linux answers for all of them on loopback).
fn connect_from(server: &Server, local: &str) -> Client {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: std::net::SocketAddr = format!("{local}:0").parse().expect("address");
    socket.bind(&local.into()).expect("bind");
    socket.connect(&server.addr.into()).expect("connect");
    Client::from_stream(socket.into())
}

/// The per-address limits count an IPv6 /64 as one address: a host that owns a /64 cannot get
/// round them by using a fresh address for each connection. Loopback has only `::1`, so the
/// hidden `--test-loopback-as-ipv6` makes 127.0.A.B stand for fd00:0:0:A::B: 127.0.1.x share a
/// /64, 127.0.2.2 is in another. (The login delay and the name hold use the same grouping; their
/// unit tests pin it.)
#[test]
fn one_ipv6_64_counts_as_one_address() {
    let server = Server::start(&[
        "--test-loopback-as-ipv6",
        "--max-per-ip",
        "1",
        "--connects-per-minute",
        "2",
    ]);
    let mut first = connect_from(&server, "127.0.1.2");
    first.next_is(GREETING);
    // Another address of the same /64: over the per-address cap.
    let mut second = connect_from(&server, "127.0.1.3");
    assert_eq!(
        second.expect_eof(),
        vec!["too many connections from your address (max 1)".to_owned()]
    );
    // A third attempt from the /64 within the minute: over the connect throttle.
    let mut third = connect_from(&server, "127.0.1.4");
    assert_eq!(
        third.expect_eof(),
        vec![
            "too many connections from your address in the last minute (max 2), try again later"
                .to_owned()
        ]
    );
    // Another /64 is another address.
    let mut other = connect_from(&server, "127.0.2.2");
    other.next_is(GREETING);
}

/// Lines at the name prompt count against the rate like every other line: a client flooding
/// names is answered for its burst, told once to slow down, then paced (delayed, not dropped:
/// every name is answered, in order), while the users already chatting are not held up. A
/// quick rate (burst 5, then 50 a second) keeps the test short; the pacing itself shows in
/// where the slow-down line falls, not in any timing.
#[test]
fn names_flooded_at_the_prompt_are_paced_and_chat_goes_on() {
    let server = Server::start(&["--rate-burst", "5", "--rate-per-sec", "50"]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    let mut flooder = Client::connect(server.addr);
    flooder.expect(GREETING);
    let flood: String = (0..30).map(|_| "alice\n").collect::<String>() + "flooder\n";
    flooder.send_raw(flood.as_bytes());
    alice.send("chat goes on");
    bob.next_is("alice: chat goes on");
    let answers = flooder.lines_until("Welcome, flooder!");
    let slow_down =
        "slow down: after 5 lines, lines are sent at 50 per second (delayed, not dropped)";
    let told_at: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, l)| *l == slow_down)
        .map(|(i, _)| i)
        .collect();
    let taken = |l: &&String| l.as_str() == "name taken: alice is already in use";
    // Told once, right after the answers to the first four names (the fifth spends the burst).
    assert_eq!(told_at.len(), 1, "{answers:?}");
    assert_eq!(
        answers[..told_at[0]].iter().filter(taken).count(),
        4,
        "{answers:?}"
    );
    // Delayed, not dropped: all thirty answered, in order, then the name that was free.
    assert_eq!(answers.iter().filter(taken).count(), 30, "{answers:?}");
    bob.next_is("* flooder joined");
    server.wait_log("over the rate limit at the name prompt, delaying lines");
}
