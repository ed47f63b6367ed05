//! The load generator is built and smoke-run on a tiny load, so it cannot rot. It checks the
//! figures the bench prints (every line delivered, none twice, none out of order), never how
//! fast: timing belongs to the benchmark.
//!
//! The server is the `smolchat` binary from the same target directory, which
//! `cargo test --workspace` builds for the server's own integration tests. The floor relay is
//! optional: its test runs only when `target/floor/release/floor` was built (see
//! ../shared/floor/README.md) and says loudly when it skips.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to say where it listens. Generous, because CI is noisy; a passing
/// test never waits this long.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The bench's own bound on each run, passed as `--timeout-secs`.
const BENCH_TIMEOUT_SECS: &str = "60";

/// A server process under test (smolchat or the floor), killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// The smolchat database directory; kept alive as long as the server runs.
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The test is over either way; a server that already exited refuses the kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The target directory this test runs from: the test executable is `<target>/debug/deps/NAME`.
fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
        .to_path_buf()
}

/// The `smolchat` server binary built beside this test, or a failure saying how to build it.
fn smolchat_binary() -> PathBuf {
    let path = target_profile_dir().join("smolchat");
    assert!(
        path.is_file(),
        "the smolchat server binary is missing at {}: run the bench tests with \
         `cargo test --workspace` (which builds it), or `cargo build -p smolchat` first",
        path.display()
    );
    path
}

/// The floor relay built with `--target-dir target/floor`, if it was built.
fn floor_binary() -> Option<PathBuf> {
    let in_target = target_profile_dir()
        .parent()
        .map(|target| target.join("floor/release/floor"));
    let in_workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/floor/release/floor");
    in_target
        .into_iter()
        .chain([in_workspace])
        .find(|path| path.is_file())
}

/// Waits for the first line of `stream` on a helper thread that then keeps draining it, so the
/// process never blocks on a full pipe.
fn first_line(stream: impl std::io::Read + Send + 'static) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stream).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        for _ in lines {}
    });
    rx.recv_timeout(START_TIMEOUT).ok()
}

/// Starts smolchat on `127.0.0.1:0` with a fresh database in a temporary directory and reads its
/// `listening on ADDR` line.
fn start_smolchat(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    start_smolchat_in(dir, extra)
}

/// Starts smolchat on the database `chat.db` in `dir`, which may already hold one.
fn start_smolchat_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
    let db = dir.path().join("chat.db");
    let mut child = Command::new(smolchat_binary())
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&db)
        .args(["--log-level", "warn"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start smolchat");
    let stdout: ChildStdout = child.stdout.take().expect("piped stdout");
    let Some(line) = first_line(stdout) else {
        let _ = child.kill();
        panic!("smolchat did not print `listening on ADDR` within {START_TIMEOUT:?}");
    };
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from smolchat: {line:?}"));
    Server {
        child,
        addr,
        _dir: Some(dir),
    }
}

/// Starts the floor relay on a free loopback port and waits for its `floor: ADDR pid N` line,
/// which it prints once it listens. The floor takes a port, not an address, so the port is
/// found by binding port 0 and releasing it; another process taking it in between makes the
/// floor fail to bind, which this reports.
fn start_floor(binary: &Path) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port();
    let mut child = Command::new(binary)
        .args([&port.to_string(), "batch"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start floor");
    let stderr: ChildStderr = child.stderr.take().expect("piped stderr");
    let line = first_line(stderr).unwrap_or_default();
    assert!(
        line.starts_with("floor: "),
        "the floor did not report listening on port {port}: {line:?}"
    );
    Server {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: None,
    }
}

/// Runs the bench with `args` after the common options and returns its `RESULT` line as a map.
fn bench(server: &Server, target: &str, args: &str) -> HashMap<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args(["--target", target, "--addr", &server.addr.to_string()])
        .args(["--server-pid", &server.child.id().to_string()])
        .args(["--timeout-secs", BENCH_TIMEOUT_SECS])
        .args(args.split_whitespace())
        .output()
        .expect("run smolchat-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "smolchat-bench --target {target} {args} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    result_of(&stdout)
}

/// The `key=value` pairs of the `RESULT` line in `stdout`.
fn result_of(stdout: &str) -> HashMap<String, String> {
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"));
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// Checks a fanout `RESULT`: every reading client got every line once, in each sender's order.
fn assert_every_line_once(what: &str, result: &HashMap<String, String>) {
    let get = |key: &str| {
        result
            .get(key)
            .unwrap_or_else(|| panic!("{what}: no {key} in {result:?}"))
            .as_str()
    };
    assert_eq!(get("scenario"), "fanout", "{what}");
    assert_ne!(get("expected"), "0", "{what}: nothing was expected");
    assert_eq!(get("delivered"), get("expected"), "{what}: {result:?}");
    assert_eq!(get("ratio"), "1.0000", "{what}: {result:?}");
    assert_eq!(get("duplicates"), "0", "{what}: {result:?}");
    assert_eq!(get("reordered"), "0", "{what}: {result:?}");
    assert_eq!(get("incomplete_readers"), "0", "{what}: {result:?}");
    // Every reader but the one that sends the end marker was read up to it, so a duplicate
    // arriving after a reader's last expected line would have been counted too.
    assert_eq!(get("tail_checked"), "yes", "{what}: {result:?}");
}

/// The fanout (closed and open loop), stalled-reader, idle and replay scenarios all run against
/// smolchat, and every reading client gets every line exactly once and in order.
#[test]
fn bench_scenarios_run_on_a_tiny_load() {
    let server = start_smolchat(&["--rate-per-sec", "0"]);
    for args in [
        "fanout --clients 12 --senders 2 --lines 30",
        "fanout --clients 6 --senders 2 --lines 20 --rate 200",
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

/// `program` on PATH, or `None` after one loud line outside CI; under `CI=true` a missing
/// program fails the test (`.ci/run` installs it). A small copy of the server tests' `require`.
fn require(program: &str, package: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        let test = std::thread::current()
            .name()
            .unwrap_or("a bench test")
            .to_owned();
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{test}: '{program}' not found on PATH under CI=true (apt-get install {package})"
            );
        }
        eprintln!("SKIPPED: {test}: '{program}' not found (apt-get install {package})");
    }
    found
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
