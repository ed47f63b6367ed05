//! Test harness: the real `smolchat` binary on `127.0.0.1:0` with a fresh database, and line-based
//! TCP clients that wait for marker lines with a generous timeout instead of sleeping.
#![allow(dead_code)]

pub mod accounts;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full stdout pipe.
            for _ in lines {}
        });
        let line = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "server did not print its address; log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first stdout line {line:?}"))
            .parse()
            .expect("address");
        Server {
            child,
            addr,
            dir,
            log,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("chat.db")
    }

    /// Connects a client and registers `name`, waiting for the end of the history replay.
    pub fn join(&self, name: &str) -> Client {
        let mut c = Client::connect(self.addr);
        c.expect("What is your name?");
        c.send(name);
        c.expect(&format!("Welcome, {name}!"));
        c.expect("--- end of history");
        c
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

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
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

/// A line-based TCP client.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Every line received so far, in order.
    pub seen: Vec<String>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).expect("connect"))
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
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                assert!(buf.ends_with(b"\n"), "partial line at EOF: {buf:?}");
                buf.pop();
                let line = String::from_utf8(buf).expect("server sent invalid UTF-8");
                self.seen.push(line.clone());
                Some(line)
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => None,
            Err(e) => panic!("read failed (timeout?): {e}; seen so far: {:?}", self.seen),
        }
    }

    /// Reads lines until one contains `needle`; returns it. Panics on EOF or timeout.
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {needle:?}"
            );
            match self.line() {
                Some(line) if line.contains(needle) => return line,
                Some(_) => {}
                None => panic!("EOF while waiting for {needle:?}; seen: {:?}", self.seen),
            }
        }
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
        }
    }
}

/// The bodies of every stored message, in id order.
pub fn bodies(db: &rusqlite::Connection) -> Vec<String> {
    message_rows(db).into_iter().map(|r| r.body).collect()
}
