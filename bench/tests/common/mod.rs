//! What the bench's integration tests share: starting a server (smolchat or the floor) on a
//! free loopback port, running the bench against it, and reading its `RESULT` line.

// Each test file uses its own share of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a server may take to say where it listens. Generous, because CI is noisy; a passing
/// test never waits this long.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The bench's own bound on each run, passed as `--timeout-secs`.
pub const BENCH_TIMEOUT_SECS: &str = "60";

/// A server process under test (smolchat or the floor), killed when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The smolchat database directory; kept alive as long as the server runs.
    pub _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The test is over either way; a server that already exited refuses the kill.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The target directory this test runs from: the test executable is `<target>/debug/deps/NAME`.
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    exe.parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
        .to_path_buf()
}

/// The `smolchat` server binary built beside this test, or a failure saying how to build it.
pub fn smolchat_binary() -> PathBuf {
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
pub fn floor_binary() -> Option<PathBuf> {
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
pub fn first_line(stream: impl std::io::Read + Send + 'static) -> Option<String> {
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
pub fn start_smolchat(extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    start_smolchat_in(dir, extra)
}

/// Starts smolchat on the database `chat.db` in `dir`, which may already hold one.
pub fn start_smolchat_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
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
pub fn start_floor(binary: &Path) -> Server {
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
pub fn bench(server: &Server, target: &str, args: &str) -> HashMap<String, String> {
    let addr = server.addr.to_string();
    let pid = server.child.id().to_string();
    let global = ["--target", target, "--addr", &addr, "--server-pid", &pid];
    result_of(&run_bench(&global, args).unwrap_or_else(|failure| panic!("{failure}")))
}

/// Runs the bench with the options `global`, then `--timeout-secs`, then `args`; its stdout,
/// or everything it printed when it failed.
pub fn run_bench(global: &[&str], args: &str) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args(global)
        .args(["--timeout-secs", BENCH_TIMEOUT_SECS])
        .args(args.split_whitespace())
        .output()
        .expect("run smolchat-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "smolchat-bench {} {args} failed:\n{stdout}\n{}",
            global.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The `key=value` pairs of the `RESULT` line in `stdout`.
pub fn result_of(stdout: &str) -> HashMap<String, String> {
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
pub fn assert_every_line_once(what: &str, result: &HashMap<String, String>) {
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

/// `program` on PATH, or `None` after one loud line outside CI; under `CI=true` a missing
/// program fails the test (`.ci/run` installs it). A small copy of the server tests' `require`.
pub fn require(program: &str, package: &str) -> Option<PathBuf> {
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
