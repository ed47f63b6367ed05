//! The clients people really use, driven for real: `telnet` (inetutils) and `rlwrap nc` through a
//! pseudo-terminal, as a user types into them, and `socat` through pipes. Each chats with a plain
//! TCP client, which stands in for an `nc` user (tests/nc.rs shows the two behave the same).
//!
//! A missing program skips its test with one loud line outside CI and fails it under CI
//! (`CI=true`), where `.ci/run` installs it (`common::require`).
mod common;

use std::io::{BufRead, BufReader, Write};
use std::num::NonZeroU16;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};

use expectrl::session::OsSession;
use expectrl::{ControlCode, Expect, NBytes};

use common::accounts::PASSWORD;
use common::{Server, TIMEOUT};

/// A program running on a pseudo-terminal, typed into as a user would.
struct Pty {
    session: OsSession,
    /// What runs, for failure messages.
    what: String,
}

impl Pty {
    /// Starts `program args` on a fresh pseudo-terminal.
    fn spawn(program: &Path, args: &[&str]) -> Pty {
        let mut command = Command::new(program);
        command.args(args).env("TERM", "dumb");
        let what = format!("{} {}", program.display(), args.join(" "));
        let mut session = expectrl::Session::spawn(command)
            .unwrap_or_else(|e| panic!("cannot start `{what}` on a pty: {e}"));
        session.set_expect_timeout(Some(TIMEOUT));
        Pty { session, what }
    }

    /// `telnet 127.0.0.1 PORT`.
    fn telnet(telnet: &Path, server: &Server) -> Pty {
        Pty::spawn(telnet, &["127.0.0.1", &server.addr.port().to_string()])
    }

    /// Waits until the terminal shows `needle`.
    fn expect(&mut self, needle: &str) {
        if let Err(e) = self.session.expect(needle) {
            panic!("`{}` never showed {needle:?}: {e}", self.what);
        }
    }

    /// Types `text` and Enter.
    fn type_line(&mut self, text: &str) {
        self.session
            .send_line(text)
            .unwrap_or_else(|e| panic!("typing into `{}`: {e}", self.what));
    }

    /// Presses Ctrl-C.
    fn ctrl_c(&mut self) {
        self.session
            .send(ControlCode::EndOfText)
            .unwrap_or_else(|e| panic!("Ctrl-C into `{}`: {e}", self.what));
    }

    /// Registers `name`, waiting for the end of the history replay.
    fn register(&mut self, name: &str) {
        self.expect("What is your name?");
        self.type_line(name);
        self.expect("--- end of history");
    }
}

/// What the user sees: a terminal emulator (`vt100`) fed everything the program on the pty
/// writes, so a test can ask in which column a line starts, as a person would look.
struct Screen {
    pty: Pty,
    terminal: vt100::Parser,
}

impl Screen {
    /// Rows and columns of the emulated terminal: enough that nothing scrolls away in a test.
    const ROWS: NonZeroU16 = NonZeroU16::new(60).unwrap();
    const COLUMNS: NonZeroU16 = NonZeroU16::new(100).unwrap();

    fn new(pty: Pty) -> Screen {
        Screen {
            pty,
            terminal: vt100::Parser::new(Self::ROWS, Self::COLUMNS, 0),
        }
    }

    /// The screen's rows, as text (blank cells as spaces, trailing ones trimmed).
    fn rows(&self) -> Vec<String> {
        self.terminal
            .screen()
            .rows(0, Self::COLUMNS.get())
            .map(|row| row.trim_end().to_owned())
            .collect()
    }

    /// Waits until a row of the screen contains `needle`; returns that row (the last such).
    fn shows(&mut self, needle: &str) -> String {
        loop {
            if let Some(row) = self.rows().into_iter().rev().find(|r| r.contains(needle)) {
                return row;
            }
            self.read_more(needle);
        }
    }

    /// Waits until `count` rows contain `needle` and the cursor is in column 0 of a row below
    /// the last of them. After Ctrl-C (`needle` is the echoed `^C`) that new row comes right
    /// behind the answer to the timing mark, so telnet shows output again from then on: a line
    /// sent to the user before then could be discarded by telnet, as RFC 860 has it.
    fn cursor_home_below(&mut self, needle: &str, count: usize) {
        loop {
            let (row, column) = self.terminal.screen().cursor_position();
            let rows = self.rows();
            let found: Vec<usize> = (0..rows.len())
                .filter(|&i| rows[i].contains(needle))
                .collect();
            if column == 0 && found.len() == count && found.last() < Some(&usize::from(row)) {
                return;
            }
            self.read_more(&format!("the cursor in column 0 below {needle:?} #{count}"));
        }
    }

    /// Blocks (up to the session's timeout) for at least one more byte, then takes what else
    /// has arrived; `waiting_for` names what the caller waits for, for the failure message.
    fn read_more(&mut self, waiting_for: &str) {
        match self.pty.session.expect(NBytes(1)) {
            Ok(found) => self.terminal.process(found.as_bytes()),
            Err(e) => panic!(
                "`{}` never showed {waiting_for:?} ({e}); the screen:\n{}",
                self.pty.what,
                self.rows().join("\n")
            ),
        }
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = self.pty.session.try_read(&mut buf) {
            self.terminal.process(&buf[..n]);
        }
    }

    /// Waits for a row containing `needle` and checks that it starts with it, in column 0.
    fn line_at_column_0(&mut self, needle: &str) {
        let row = self.shows(needle);
        assert!(
            row.starts_with(needle),
            "{needle:?} does not start in column 0: {row:?}; the screen:\n{}",
            self.rows().join("\n")
        );
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.session.get_process_mut().exit(true);
    }
}

/// Lines typed in telnet in every script we were shown broken (Cyrillic, Greek, Romanian,
/// German, Spanish, CJK, emoji), each with a byte that telnet without BINARY turns into a
/// command: `у` is D1 83, `本` is E6 9C AC, `🚀` is F0 9F 9A 80.
const TYPED: &[&str] = &[
    "привіт, як справи? у нас усе добре",
    "σας ευχαριστώ",
    "mulțumesc, bună ziua, ăâ",
    "Übung macht den Meister, Ú",
    "日本語で本を読む",
    "liftoff 🚀🚀",
];

/// Ctrl-C in telnet asks for a timing mark; once it is answered the user goes on seeing and
/// sending chat, and the line being typed when Ctrl-C came is dropped.
#[test]
fn telnet_ctrl_c_then_chat_both_ways() {
    let Some(telnet) = common::require("telnet") else {
        return;
    };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut telnet = Pty::telnet(&telnet, &server);
    telnet.register("tina");
    bob.next_is("* tina joined");

    telnet.type_line("before ctrl-c");
    bob.next_is("tina: before ctrl-c");
    bob.send("one");
    telnet.expect("bob: one");

    telnet.ctrl_c();
    telnet.type_line("after ctrl-c");
    bob.next_is("tina: after ctrl-c");
    // The timing mark's answer went out before the server read the line above, so this is not
    // lost to telnet's "discard output until the mark" (RFC 860).
    bob.send("two");
    telnet.expect("bob: two");

    // Again, with text typed before Ctrl-C: that text is discarded, the chat goes on.
    telnet.session.send("half a line").expect("type");
    telnet.ctrl_c();
    telnet.type_line("third");
    bob.next_is("tina: third");
    bob.send("three");
    telnet.expect("bob: three");
}

/// A Cyrillic name typed as telnet's first line, before BINARY is on, arrives whole: telnet
/// sends the second byte of `К`, `М`, `у` and `я` as Ctrl-Z, Ctrl-\, Ctrl-C and Ctrl-O commands
/// then, and the server reads them back as those bytes.
#[test]
fn telnet_first_line_cyrillic_name() {
    let Some(telnet) = common::require("telnet") else {
        return;
    };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut telnet = Pty::telnet(&telnet, &server);
    telnet.expect("What is your name?");
    telnet.type_line("Катя_Мулярук");
    telnet.expect("Welcome, Катя_Мулярук!");
    bob.next_is("* Катя_Мулярук joined");
}

/// Text in many scripts typed in telnet, right from the first line after the name, arrives
/// intact at a TCP user and in the database, and telnet keeps showing the chat.
#[test]
fn telnet_utf8_arrives_intact() {
    let Some(telnet) = common::require("telnet") else {
        return;
    };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut telnet = Pty::telnet(&telnet, &server);
    telnet.register("tina");
    bob.next_is("* tina joined");

    for text in TYPED {
        telnet.type_line(text);
        bob.next_is(&format!("tina: {text}"));
    }
    bob.send("ще раз 🚀 本");
    telnet.expect("bob: ще раз 🚀 本");
    drop(telnet);

    let (_dir, db) = server.stop_and_open_db();
    let bodies = common::bodies(&db);
    assert_eq!(bodies[..TYPED.len()], *TYPED, "{bodies:?}");
}

/// On telnet's screen every line from the server starts in column 0: after the user typed a
/// line in Cyrillic, CJK and emoji (which telnet echoes without a carriage return once BINARY is
/// on), after Ctrl-C, and after a password typed with the echo off; and what was typed shows
/// intact (the password not at all).
#[test]
fn telnet_screen_lines_start_in_column_0() {
    let Some(telnet) = common::require("telnet") else {
        return;
    };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut screen = Screen::new(Pty::telnet(&telnet, &server));
    screen.shows("What is your name?");
    screen.pty.type_line("олена");
    screen.shows("--- end of history");
    bob.expect("* олена joined");

    screen.pty.type_line("привіт 本 🚀");
    bob.next_is("олена: привіт 本 🚀");
    bob.send("hello олена, how are you");
    screen.line_at_column_0("bob: hello олена, how are you");
    screen.line_at_column_0("привіт 本 🚀");
    screen.pty.type_line("fine");
    bob.next_is("олена: fine");
    bob.send("great");
    screen.line_at_column_0("bob: great");

    // Ctrl-C, with and without text typed before it. Bob speaks once telnet shows output again.
    screen.pty.ctrl_c();
    screen.cursor_home_below("^C", 1);
    bob.send("after ctrl-c");
    screen.line_at_column_0("bob: after ctrl-c");
    screen.pty.session.send("half a line").expect("type");
    screen.pty.ctrl_c();
    screen.cursor_home_below("^C", 2);
    bob.send("after half a line");
    screen.line_at_column_0("bob: after half a line");
    screen.pty.type_line("typed after ctrl-c");
    bob.next_is("олена: typed after ctrl-c");

    // A password typed with the echo off, then a line from the server and one from bob.
    screen.pty.type_line("/register");
    screen.line_at_column_0("choose a password for олена");
    screen.pty.type_line(PASSWORD);
    screen.line_at_column_0("type the same password again");
    screen.pty.type_line(PASSWORD);
    screen.line_at_column_0("олена is now registered");
    bob.send("congratulations");
    screen.line_at_column_0("bob: congratulations");
    let rows = screen.rows();
    assert!(!rows.iter().any(|r| r.contains(PASSWORD)), "{rows:#?}");
}

/// `telnet`'s `send ayt` gets a visible answer.
#[test]
fn telnet_are_you_there() {
    let Some(telnet) = common::require("telnet") else {
        return;
    };
    let server = Server::start(&[]);
    let mut telnet = Pty::telnet(&telnet, &server);
    telnet.register("tina");
    // Ctrl-] is telnet's escape to its command prompt; `send ayt` sends IAC AYT.
    telnet.session.send([0x1d]).expect("Ctrl-]");
    telnet.expect("telnet>");
    telnet.type_line("send ayt");
    telnet.expect("[smolchat is here]");
}

/// `rlwrap nc` (line editing and history for nc users) chats both ways, UTF-8 included.
#[test]
fn rlwrap_nc_chats() {
    let (Some(rlwrap), Some(_)) = (common::require("rlwrap"), common::require("nc")) else {
        return;
    };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let port = server.addr.port().to_string();
    let mut rlwrap = Pty::spawn(&rlwrap, &["nc", "127.0.0.1", &port]);
    rlwrap.register("rita");
    bob.next_is("* rita joined");

    for text in ["hello from rlwrap", TYPED[0], TYPED[5]] {
        rlwrap.type_line(text);
        bob.next_is(&format!("rita: {text}"));
    }
    bob.send("hi rita 本");
    rlwrap.expect("bob: hi rita 本");
}

/// `socat - TCP:HOST:PORT` chats both ways, UTF-8 included.
#[test]
fn socat_chats() {
    let Some(socat) = common::require("socat") else {
        return;
    };
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut socat = Piped::spawn(&socat, &["-", &format!("TCP:{}", server.addr)]);
    socat.type_line("sam");
    socat.expect("--- end of history");
    bob.next_is("* sam joined");

    for text in ["hello from socat", TYPED[1], TYPED[5]] {
        socat.type_line(text);
        bob.next_is(&format!("sam: {text}"));
    }
    bob.send("hi sam 🚀");
    socat.expect("bob: hi sam 🚀");
}

/// A program with piped stdin and stdout, read line by line on a thread.
struct Piped {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Piped {
    fn spawn(program: &Path, args: &[&str]) -> Piped {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Piped {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn type_line(&mut self, text: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{text}").expect("write");
        stdin.flush().expect("flush");
    }

    fn expect(&mut self, needle: &str) {
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            self.seen.push(line.clone());
            if line.contains(needle) {
                return;
            }
        }
        panic!("never saw {needle:?}; saw {:?}", self.seen);
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
