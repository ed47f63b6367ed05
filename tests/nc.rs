//! The real `nc` (netcat-openbsd) as a user would run it: join, chat, and leave by closing stdin.
//! Without `nc` they skip with a loud `SKIPPED:` line, and under CI (`CI=true`) they fail, because
//! "join with nc" is the product and `.ci/run` installs it (see `common::require`).
mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Instant;

use common::{require, start_alice_and_bob, wait_for_exit, Server, TIMEOUT};

/// A running `nc` connected to the server, with its stdout read line by line on a thread.
struct Nc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line so far, for failure messages.
    seen: Vec<String>,
}

impl Nc {
    /// Starts `nc -N [extra] 127.0.0.1 PORT`: `-N` shuts the socket down once stdin ends, which
    /// is how a user's Ctrl-D leaves.
    fn connect(nc: &Path, server: &Server, extra: &[&str]) -> Nc {
        let port = server.addr.port().to_string();
        let mut child = Command::new(nc)
            .arg("-N")
            .args(extra)
            .args(["127.0.0.1", &port])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} ({e})", nc.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Lossy and without a trailing CR: a client that ends its lines in CR LF is taken
            // for telnet and gets CR LF line ends and, once, the telnet BINARY offer.
            let mut stdout = BufReader::new(stdout);
            let mut buf = Vec::new();
            while let Ok(1..) = stdout.read_until(b'\n', &mut buf) {
                let text = String::from_utf8_lossy(&buf);
                let line = text
                    .trim_end_matches('\n')
                    .trim_end_matches('\r')
                    .to_owned();
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Nc {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Types lines into nc's stdin.
    fn type_lines(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        stdin.write_all(text.as_bytes()).expect("write to nc");
        stdin.flush().expect("flush nc stdin");
    }

    /// Reads nc's stdout until a line contains `needle`; returns that line.
    fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => {
                    let stderr = self.stderr_now();
                    panic!(
                        "nc never printed {needle:?} ({e}); stdout so far: {:?}; {stderr}",
                        self.seen
                    )
                }
            }
        }
    }

    /// The next stdout line, which must be `expected`.
    fn next_is(&mut self, expected: &str) {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(line) => {
                self.seen.push(line.clone());
                assert_eq!(line, expected, "nc stdout: {:?}", self.seen);
            }
            Err(e) => {
                let stderr = self.stderr_now();
                panic!(
                    "nc printed nothing ({e}); expected {expected:?}; stdout so far: {:?}; \
                     {stderr}",
                    self.seen
                )
            }
        }
    }

    /// Closes nc's stdin, as Ctrl-D would.
    fn end_input(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits for nc to exit by itself and returns whether it succeeded.
    fn wait_exit(&mut self) -> bool {
        wait_for_exit(&mut self.child)
            .expect("nc did not exit")
            .success()
    }

    /// nc's stderr, if it has exited (for failure messages).
    fn stderr_now(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut stderr) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                format!("nc exited with {status}, stderr: {err:?}")
            }
            _ => "nc still running".into(),
        }
    }
}

impl Drop for Nc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A user on `nc` registers, chats both ways with a TCP client, and leaves by ending stdin.
#[test]
fn nc_user_joins_chats_and_leaves() {
    let Some(netcat) = require("nc") else { return };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");

    let mut nc = Nc::connect(&netcat, &server, &[]);
    nc.type_lines("carol\nhello from nc\n");
    nc.next_is("Welcome to smolchat! What is your name?");
    nc.next_is("Welcome, carol! You are in lobby. Type /help for commands.");
    nc.next_is("--- history of lobby ---");
    nc.next_is("--- end of history (0 messages) ---");
    bob.next_is("* carol joined");
    bob.next_is("carol: hello from nc");

    bob.send("hi carol, welcome");
    nc.next_is("bob: hi carol, welcome");

    nc.end_input();
    bob.next_is("* carol left");
    // The server closes its side once the user has left, so nc exits by itself.
    assert!(nc.wait_exit(), "nc failed: {}", nc.stderr_now());
}

/// `nc -C` ends lines with CR LF, as telnet does; names, messages and commands still work, no CR
/// reaches anybody, and the telnet BINARY offer shows once.
#[test]
fn nc_with_crlf_line_ends() {
    let Some(netcat) = require("nc") else { return };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");

    let mut nc = Nc::connect(&netcat, &server, &["-C"]);
    nc.type_lines("dave\n");
    nc.next_is("Welcome to smolchat! What is your name?");
    // CR LF line ends make the server take nc -C for telnet, so it sends its one BINARY offer
    // (IAC DO BINARY IAC WILL BINARY): the "few odd bytes once" the README mentions.
    nc.next_is(
        "\u{fffd}\u{fffd}\0\u{fffd}\u{fffd}\0Welcome, dave! You are in lobby. Type /help for commands.",
    );
    nc.expect("--- end of history (0 messages) ---");
    nc.type_lines("hi there\n/me waves\n/who\n");
    bob.next_is("* dave joined");
    bob.next_is("dave: hi there");
    bob.next_is("* dave waves");
    nc.next_is("users in lobby (2): bob, dave");

    nc.type_lines("/quit see you\n");
    nc.next_is("bye");
    bob.next_is("* dave left (quit: see you)");
    nc.end_input();
    assert!(nc.wait_exit(), "nc failed: {}", nc.stderr_now());
}

/// A user on `nc` who joins later gets the history replayed on stdout.
#[test]
fn nc_user_sees_the_history_replay() {
    let Some(netcat) = require("nc") else { return };
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("before nc");
    bob.next_is("alice: before nc");

    let mut nc = Nc::connect(&netcat, &server, &[]);
    nc.type_lines("carol\n");
    nc.expect("--- history of lobby ---");
    let line = nc.expect("alice:");
    assert!(
        common::matches_shape(&line, "[9999-99-99 99:99:99] alice: before nc"),
        "{line:?}"
    );
    nc.next_is("--- end of history (1 message) ---");
}
