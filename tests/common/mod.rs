//! Test harness: the real `smolchat` binary on `127.0.0.1:0` with a fresh database, and line-based
//! TCP clients that wait for marker lines with a generous timeout instead of sleeping.
#![allow(dead_code)]

pub mod accounts;
pub mod browser;
pub mod cert;
pub mod firefox;
pub mod history;
pub mod irc;
pub mod web;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

/// How long any wait in a test may take before the test fails. Generous, because CI is noisy;
/// a passing test never waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// A running server process with its own database directory.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub log: PathBuf,
}

impl Server {
    /// Starts the server with a fresh database and the given extra flags.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        Server::start_in(dir, extra)
    }

    /// Starts the server on the database `chat.db` in `dir` (which may already hold one).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Server {
        let db = dir.path().join("chat.db");
        let mut args = vec!["--listen", "127.0.0.1:0", "--db"];
        let db_str = db.to_str().expect("utf-8 path").to_owned();
        args.push(&db_str);
        args.extend_from_slice(extra);
        let log = dir.path().join("server.log");
        Server::spawn(
            Command::new(env!("CARGO_BIN_EXE_smolchat")).args(&args),
            dir,
            log,
        )
    }

    /// Spawns a prepared command (for example under `sh -c 'ulimit -n 64; exec ...'`) and waits
    /// for its `listening on ADDR` line.
    pub fn spawn(cmd: &mut Command, dir: tempfile::TempDir, log: PathBuf) -> Server {
        Server::spawn_until(cmd, dir, log, "listening on ").0
    }

    /// Starts the server like [`Server::start`] and also waits for a later stdout line that
    /// starts with `prefix` (`metrics on `); returns the rest of that line.
    pub fn start_until(extra: &[&str], prefix: &str) -> (Server, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("chat.db");
        let db = db.to_str().expect("utf-8 path");
        let log = dir.path().join("server.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smolchat"));
        cmd.args(["--listen", "127.0.0.1:0", "--db", db])
            .args(extra);
        Server::spawn_until(&mut cmd, dir, log, prefix)
    }

    /// Spawns a prepared command, reads its `listening on ADDR` line, then stdout lines until
    /// one starts with `prefix` (the first line itself may be it); returns the rest of that line.
    pub fn spawn_until(
        cmd: &mut Command,
        dir: tempfile::TempDir,
        log: PathBuf,
        prefix: &str,
    ) -> (Server, String) {
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start smolchat");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Every line goes to the test, which stops listening once it has what it waits
            // for; the rest is drained so the server never blocks on a full stdout pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut next_line = |what: &str| {
            rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "server did not print {what}; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            })
        };
        let mut line = next_line("its address");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"))
            .parse()
            .expect("address");
        while !line.starts_with(prefix) {
            line = next_line(prefix);
        }
        let rest = line[prefix.len()..].to_owned();
        let server = Server {
            child,
            addr,
            dir,
            log,
        };
        (server, rest)
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("chat.db")
    }

    /// Connects a client and registers `name`, waiting for the end of the history replay.
    pub fn join(&self, name: &str) -> Client {
        Client::connect(self.addr).register(name)
    }

    /// Registers each name in turn and waits until every user has seen each later one join, so
    /// that no client has an unread line: `let [mut alice, mut bob] = server.join_all(["alice",
    /// "bob"]);`.
    pub fn join_all<const N: usize>(&self, names: [&str; N]) -> [Client; N] {
        let mut clients: Vec<Client> = Vec::with_capacity(N);
        for name in names {
            let client = self.join(name);
            for earlier in &mut clients {
                earlier.next_is(&format!("* {name} joined"));
            }
            clients.push(client);
        }
        clients
            .try_into()
            .unwrap_or_else(|_| unreachable!("one client per name"))
    }

    /// Registers `name` on a connection with a small receive window (see
    /// [`Client::connect_small_window`]).
    pub fn join_small_window(&self, name: &str) -> Client {
        Client::connect_small_window(self.addr).register(name)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "log never contained {needle:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the server process. Uses the shell's built-in
    /// `kill`, so the tests do not need procps.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("sh")
            .args([
                "-c",
                r#"kill -s "$0" "$1""#,
                sig,
                &self.child.id().to_string(),
            ])
            .status()
            .expect("sh");
        assert!(status.success(), "kill -s {sig} failed");
    }

    /// Waits for the process to exit and returns its exit code (`None` if a signal ended it).
    pub fn wait_exit(&mut self) -> Option<i32> {
        match wait_for_exit(&mut self.child) {
            Some(status) => status.code(),
            None => panic!("server did not exit:\n{}", self.log()),
        }
    }

    /// Stops the server with SIGTERM and hands back its directory (to restart on the same db).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.signal("TERM");
        assert_eq!(self.wait_exit(), Some(0), "log:\n{}", self.log());
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"))
    }

    /// Opens the database read-only for assertions.
    pub fn open_db(&self) -> rusqlite::Connection {
        open_db(&self.db_path())
    }
}

pub fn open_db(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open db")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a server with `extra` flags and registers `alice`, then `bob`; alice has seen bob join,
/// so neither has an unread line. The opening of most two-user tests.
pub fn start_alice_and_bob(extra: &[&str]) -> (Server, Client, Client) {
    let server = Server::start(extra);
    let [alice, bob] = server.join_all(["alice", "bob"]);
    (server, alice, bob)
}

/// The receive buffer [`Client::connect_small_window`] asks for. The kernel doubles it and keeps
/// a floor, so the real window is a few KB.
pub const SMALL_WINDOW: usize = 4096;

/// A line-based TCP client.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
    /// This client talks like telnet (CR LF line ends or IAC commands), so the server sends it
    /// telnet commands and CR LF line ends, which [`Client::line`] removes. Off, `line` insists
    /// on plain UTF-8 lines: an nc-like client must never get a telnet byte.
    pub telnet: bool,
}

/// A client reading the server's lines, whatever its stream (TCP here, TLS in tests/tls.rs):
/// what reading and waiting for a line mean, written once.
pub trait Lines {
    /// The next line, without its newline; `None` at EOF. Panics on timeout.
    fn line(&mut self) -> Option<String>;

    /// Every line received so far, in order.
    fn seen(&self) -> &[String];

    /// Reads lines until one contains `needle`; returns it. Panics on EOF or timeout.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}"
            );
            match self.line() {
                Some(line) if line.contains(needle) => return line,
                Some(_) => {}
                None => panic!("EOF while waiting for {needle:?}; seen: {:?}", self.seen()),
            }
        }
    }
}

/// One line's bytes from `reader`, without the newline; `None` at EOF (or a reset, or a TLS peer
/// gone without its close_notify: the end, for these tests). Panics on a timeout or a partial
/// line, showing `seen`.
pub fn read_raw_line(reader: &mut impl BufRead, seen: &[String]) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    match reader.read_until(b'\n', &mut buf) {
        Ok(0) => None,
        Ok(_) => {
            assert!(buf.ends_with(b"\n"), "partial line at EOF: {buf:?}");
            buf.pop();
            Some(buf)
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            None
        }
        Err(e) => panic!("read failed (timeout?): {e}; seen so far: {seen:?}"),
    }
}

impl Lines for Client {
    fn line(&mut self) -> Option<String> {
        Client::line(self)
    }

    fn seen(&self) -> &[String] {
        &self.seen
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// Connects with a [`SMALL_WINDOW`] receive buffer, so that a few KB this client does not
    /// read stay queued in the server's socket rather than in this one.
    pub fn connect_small_window(addr: SocketAddr) -> Client {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).expect("socket");
        socket
            .set_recv_buffer_size(SMALL_WINDOW)
            .expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("connect");
        Client::from_stream(socket.into())
    }

    /// Answers the name question with `name` and waits for the end of the history replay.
    pub fn register(mut self, name: &str) -> Client {
        self.expect("What is your name?");
        self.send(name);
        self.expect(&format!("Welcome, {name}!"));
        self.expect("--- end of history");
        self
    }

    /// Sends one line (a newline is added).
    pub fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next line, without its newline; `None` at EOF. Panics on timeout.
    pub fn line(&mut self) -> Option<String> {
        let mut buf = read_raw_line(&mut self.reader, &self.seen)?;
        if self.telnet {
            buf = strip_telnet(&buf);
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let line = String::from_utf8(buf).expect("server sent invalid UTF-8");
        self.seen.push(line.clone());
        Some(line)
    }

    /// Reads lines until one contains `needle`; returns it. Panics on EOF or timeout.
    pub fn expect(&mut self, needle: &str) -> String {
        <Self as Lines>::expect(self, needle)
    }

    /// Reads lines up to and including one containing `needle`, returning them all.
    pub fn lines_until(&mut self, needle: &str) -> Vec<String> {
        let start = self.seen.len();
        self.expect(needle);
        self.seen[start..].to_vec()
    }

    /// Reads until the server closes the connection; returns the lines read meanwhile.
    pub fn expect_eof(&mut self) -> Vec<String> {
        let start = self.seen.len();
        while self.line().is_some() {}
        self.seen[start..].to_vec()
    }

    /// Proves that nothing was delivered before a marker: `other` sends `marker` and this client
    /// must see it as the very next line, so any line relayed earlier would show up first.
    pub fn next_is(&mut self, expected: &str) {
        let line = self.line().expect("EOF");
        assert_eq!(line, expected, "seen: {:?}", self.seen);
    }

    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    /// Reads raw bytes available within the timeout (for checks on exact bytes).
    pub fn read_raw(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        let got = self.reader.read(&mut buf).expect("read");
        buf.truncate(got);
        buf
    }
}

// Helpers for the chat, command, room, upgrade and nc tests.

/// One row of the `messages` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub sent_at: String,
    pub sender: String,
    pub body: String,
    pub room: String,
    pub kind: String,
}

/// The latest schema version (`PRAGMA user_version`): one per file in `migrations/`, whichever
/// branches added them.
pub fn latest_version() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    std::fs::read_dir(dir)
        .expect("migrations/")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count() as i64
}

/// Every row of the `messages` table, by id.
pub fn message_rows(db: &rusqlite::Connection) -> Vec<Row> {
    let mut stmt = db
        .prepare("SELECT id, sent_at, sender, body, room, kind FROM messages ORDER BY id")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                sent_at: r.get(1)?,
                sender: r.get(2)?,
                body: r.get(3)?,
                room: r.get(4)?,
                kind: r.get(5)?,
            })
        })
        .expect("query");
    rows.collect::<Result<_, _>>().expect("rows")
}

/// True if `s` has the shape of `pattern`, where `9` stands for any ASCII digit and every other
/// character for itself: `matches_shape("2026-01-02", "9999-99-99")`.
pub fn matches_shape(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'9' => c.is_ascii_digit(),
            p => c == p,
        })
}

/// The text of a history line after its `[YYYY-MM-DD HH:MM:SS] ` stamp; panics if the stamp is
/// missing or malformed.
pub fn unstamp(line: &str) -> &str {
    const STAMP: &str = "[9999-99-99 99:99:99] ";
    let ok = line.len() > STAMP.len()
        && line.is_char_boundary(STAMP.len())
        && matches_shape(&line[..STAMP.len()], STAMP);
    assert!(ok, "not a stamped history line: {line:?}");
    &line[STAMP.len()..]
}

impl Server {
    /// Connects a client and registers `name`; returns it with every line from the welcome to
    /// the end of the history replay, both included.
    pub fn join_replay(&self, name: &str) -> (Client, Vec<String>) {
        let mut c = Client::connect(self.addr);
        c.expect("What is your name?");
        c.send(name);
        let lines = c.lines_until("--- end of history");
        (c, lines)
    }

    /// Stops the server with SIGTERM (which commits all history) and opens its database
    /// read-only. Returns the directory too, which must outlive the connection's use.
    pub fn stop_and_open_db(self) -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = self.stop();
        let db = open_db(&dir.path().join("chat.db"));
        (dir, db)
    }
}

impl Client {
    /// Waits until the hub has handled every line this client sent so far, by asking `/who` and
    /// waiting for the answer. Lines received meanwhile are consumed (they stay in `seen`).
    pub fn sync(&mut self) {
        self.send("/who");
        self.expect("users in ");
    }
}

// Helpers for the hostile, limits and durability tests.

impl Client {
    /// Wraps a stream connected by other means (for example with a small receive buffer set
    /// through socket2 before connecting).
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Client {
            stream,
            reader,
            seen: Vec::new(),
            telnet: false,
        }
    }
}

/// `bytes` without telnet commands: `IAC WILL/WONT/DO/DONT option` and two-byte `IAC x`.
/// (The server never sends subnegotiation or `IAC IAC`: its output is UTF-8.)
pub fn strip_telnet(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i..] {
            [0xff, 251..=254, ..] => i += 3,
            [0xff, ..] => i += 2,
            [byte, ..] => {
                out.push(byte);
                i += 1;
            }
            [] => break,
        }
    }
    out
}

/// The bodies of every stored message, in id order.
pub fn bodies(db: &rusqlite::Connection) -> Vec<String> {
    message_rows(db).into_iter().map(|r| r.body).collect()
}

// Processes: waiting for one, and what `/proc` says about it.

/// Waits up to [`TIMEOUT`] for `child` to exit and returns its status; `None` if it is still
/// running then (the caller decides whether to kill it and how to fail).
pub fn wait_for_exit(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Resident memory of process `pid` in KiB, from `VmRSS` in `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// CPU time process `pid` has used (user + system, all threads), from `/proc/PID/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the command name (which may contain spaces) start with field 3, the state;
    // utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_secs_f64(ticks as f64 / clock_ticks_per_sec() as f64)
}

/// Clock ticks per second of `/proc/PID/stat` times, from `getconf CLK_TCK` (libc-bin, which
/// every Debian system has).
fn clock_ticks_per_sec() -> u64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("CLK_TCK")
}

// Metrics.

/// `GET /metrics` from a `--metrics-listen` endpoint on a new connection: the body of its 200.
pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to metrics");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    body.to_owned()
}

/// The value of the sample written exactly as `sample` (name and labels) in a scrape.
pub fn sample(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// Scrapes until `sample` has the value `want` (the gauge of a background thread), or fails.
pub fn wait_sample(addr: SocketAddr, sample_name: &str, want: f64) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = scrape(addr);
        if sample(&text, sample_name) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sample_name} never became {want}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Outside programs.

/// Every outside program a test may [`require`], with the Debian package that provides it.
/// `.ci/run` installs the same packages: add a program to both.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("nc", "netcat-openbsd"),
    ("ncat", "ncat"),
    ("telnet", "telnet"),
    ("socat", "socat"),
    ("rlwrap", "rlwrap"),
    ("redis-server", "redis-server"),
    ("openssl", "openssl"),
    ("sqlite3", "sqlite3"),
    ("systemd-analyze", "systemd"),
    ("chromium", "chromium"),
    ("firefox-esr", "firefox-esr"),
    ("irssi", "irssi"),
    ("weechat-curses", "weechat-curses"),
    ("promtool", "prometheus"),
];

/// The outside program `program` (one of [`PROGRAMS`]), found on `PATH`. A test that needs one
/// starts with `let Some(nc) = common::require("nc") else { return };` and runs that path.
///
/// When the program is missing: under CI (`CI=true`, where `.ci/run` installs everything first)
/// the test fails; elsewhere this prints one `SKIPPED: TEST: 'nc' not found (apt-get install
/// netcat-openbsd)` line, straight to stderr so that the test harness's capture does not hide
/// it, and returns `None`, so a fresh machine passes `cargo test` with the gaps named.
pub fn require(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("a test")
        .to_owned();
    match find_program(program, &path) {
        Found::Yes(found) => Some(found),
        Found::No { package } if ci => panic!(
            "{test}: '{program}' not found on PATH under CI=true; .ci/run should have installed \
             it (apt-get install {package})"
        ),
        Found::No { package } => {
            let line =
                format!("SKIPPED: {test}: '{program}' not found (apt-get install {package})\n");
            let _ = std::io::stderr().write_all(line.as_bytes());
            None
        }
    }
}

/// Whether [`find_program`] found a program.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    Yes(PathBuf),
    /// Missing; `package` provides it.
    No {
        package: &'static str,
    },
}

/// Looks `program` up in the directories of `path` (a `PATH` value), as a shell would. Panics
/// for a program missing from [`PROGRAMS`], so the table and `.ci/run` stay complete.
pub fn find_program(program: &str, path: &OsStr) -> Found {
    use std::os::unix::fs::PermissionsExt;
    let package = PROGRAMS
        .iter()
        .find(|(name, _)| *name == program)
        .map(|&(_, package)| package)
        .unwrap_or_else(|| {
            panic!("'{program}' is not in common::PROGRAMS (and so not installed by .ci/run)")
        });
    let executable = |candidate: &Path| {
        candidate
            .metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
        .map_or(Found::No { package }, Found::Yes)
}
