//! Test harness: the real `smolchat` binary on `127.0.0.1:0` with a fresh database, and line-based
//! TCP clients that wait for marker lines with a generous timeout instead of sleeping.
#![allow(dead_code)]

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
        Server::spawn(Command::new(env!("CARGO_BIN_EXE_smolchat")).args(&args), dir, log)
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
            assert!(Instant::now() < deadline, "server did not exit:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server with SIGTERM and hands back its directory (to restart on the same db).
    pub fn stop(mut self) -> tempfile::TempDir {
        self.signal("TERM");
        assert_eq!(self.wait_exit(), Some(0), "log:\n{}", self.log());
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        dir
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
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Client {
            stream,
            reader,
            seen: Vec::new(),
        }
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
            assert!(Instant::now() < deadline, "timed out waiting for {needle:?}");
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
