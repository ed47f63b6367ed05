//! The load generator is built and smoke-run on a tiny load, so it cannot rot. It checks the
//! figures the bench prints (every line delivered, none twice, none out of order), never how
//! fast: timing belongs to the benchmark.
//!
//! The server is the `smolchat` binary from the same target directory, which
//! `cargo test --workspace` builds for the server's own integration tests. The floor relay is
//! optional: its test runs only when `target/floor/release/floor` was built (see
//! ../shared/floor/README.md) and says loudly when it skips.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    assert_every_line_once, bench, floor_binary, require, result_of, start_floor, start_smolchat,
    start_smolchat_in, Server, BENCH_TIMEOUT_SECS, START_TIMEOUT,
};

/// The fanout (closed loop, open loop, paced for a duration as the big room is), stalled-reader,
/// idle and replay scenarios all run against smolchat, and every reading client gets every line
/// exactly once and in order.
#[test]
fn bench_scenarios_run_on_a_tiny_load() {
    let server = start_smolchat(&["--rate-per-sec", "0"]);
    for args in [
        "fanout --clients 12 --senders 2 --lines 30",
        "fanout --clients 6 --senders 2 --lines 20 --rate 200",
        "fanout --clients 6 --senders 2 --rate 100 --duration-secs 0.2",
        "fanout --clients 6 --senders 2 --lines 20 --stall 1",
    ] {
        assert_every_line_once(args, &bench(&server, "smolchat", args));
    }
    let idle = bench(&server, "smolchat", "idle --clients 20 --hold-secs 0");
    assert_eq!(idle.get("scenario").map(String::as_str), Some("idle"));
    assert_eq!(idle.get("clients").map(String::as_str), Some("20"));
    let replay = bench(&server, "smolchat", "replay --repeat 3");
    assert_eq!(replay.get("scenario").map(String::as_str), Some("replay"));
}

/// fill-db builds a history database that the server then replays from and searches.
#[test]
fn bench_fill_db_feeds_the_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("chat.db");
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args(["fill-db", "--rows", "500", "--db"])
        .arg(&db)
        .output()
        .expect("run fill-db");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fill = result_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(fill.get("rows").map(String::as_str), Some("500"));
    let server = start_smolchat_in(dir, &["--history", "50", "--rate-per-sec", "0"]);
    let replay = bench(&server, "smolchat", "replay --repeat 2");
    assert_eq!(
        replay.get("history_lines_min").map(String::as_str),
        Some("50")
    );
    // fill-db's words: "fox" is in 9 rows of 10, "123" in one row only, "zebra" in none.
    let search = bench(
        &server,
        "smolchat",
        "search --repeat 2 --queries fox|123|zebra",
    );
    assert_eq!(search.get("q1_hits").map(String::as_str), Some("20"));
    assert_eq!(search.get("q2_hits").map(String::as_str), Some("1"));
    assert_eq!(search.get("q3_hits").map(String::as_str), Some("0"));
}

/// The writer scenario drives the production history writer and stores every line.
#[test]
fn bench_writer_stores_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("chat.db");
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args(["writer", "--records", "2000", "--db"])
        .arg(&db)
        .output()
        .expect("run writer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: i64 = rusqlite::Connection::open(&db)
        .and_then(|db| db.query_row("SELECT count(*) FROM messages", [], |r| r.get(0)))
        .expect("count rows");
    assert_eq!(rows, 2000);
    let writer = result_of(&stdout);
    assert_eq!(writer.get("complete").map(String::as_str), Some("true"));
}

/// The same fanout and idle scenarios run against the floor relay, when it was built, and every
/// line arrives once and in order there too.
#[test]
fn bench_drives_the_floor_relay() {
    let Some(binary) = floor_binary() else {
        eprintln!(
            "\n*** SKIPPED bench_drives_the_floor_relay: target/floor/release/floor is not built.\n\
             *** Build it from the workspace root with:\n\
             ***   cargo build --release --manifest-path ../shared/floor/Cargo.toml --target-dir target/floor\n"
        );
        return;
    };
    let floor = start_floor(&binary);
    for args in [
        "fanout --clients 12 --senders 2 --lines 30",
        "fanout --clients 6 --senders 2 --lines 20 --rate 200",
    ] {
        let what = format!("floor: {args}");
        assert_every_line_once(&what, &bench(&floor, "floor", args));
    }
    let idle = bench(&floor, "floor", "idle --clients 20 --hold-secs 0");
    assert_eq!(idle.get("clients").map(String::as_str), Some("20"));
}

/// The cluster scenario: two smolchat nodes on one Redis, the clients spread over both
/// (`--addr A,B`), and every reading client gets every line once and in order, from either node.
#[test]
fn bench_spreads_clients_over_cluster_nodes() {
    let Some(redis_server) = require("redis-server", "redis-server") else {
        return;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port();
    let redis_dir = tempfile::tempdir().expect("tempdir");
    let mut redis = Server {
        child: Command::new(redis_server)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(redis_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server"),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: None,
    };
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    while std::net::TcpStream::connect(redis.addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "redis-server did not listen on {} within {START_TIMEOUT:?}",
            redis.addr
        );
        if let Ok(Some(status)) = redis.child.try_wait() {
            panic!("redis-server exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("redis://{}", redis.addr);
    let node =
        |name: &str| start_smolchat(&["--rate-per-sec", "0", "--cluster", &url, "--node", name]);
    let (a, b) = (node("a"), node("b"));
    let addrs = format!("{},{}", a.addr, b.addr);
    let args = "fanout --clients 12 --senders 4 --lines 20";
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args(["--addr", &addrs, "--timeout-secs", BENCH_TIMEOUT_SECS])
        .args(args.split_whitespace())
        .output()
        .expect("run smolchat-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "smolchat-bench --addr {addrs} {args} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = result_of(&stdout);
    assert_every_line_once("cluster", &result);
    assert_eq!(
        result.get("nodes").map(String::as_str),
        Some("2"),
        "{result:?}"
    );
    drop((a, b));
}
