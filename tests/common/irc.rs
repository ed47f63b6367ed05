//! Harness for IRC tests: real IRC clients (`irssi`, WeeChat's `weechat-curses`) driven
//! through a pseudo-terminal as a person types into them, and a raw IRC client for protocol
//! tests.
//!
//! Each real client runs with a fresh home directory (its configuration written there, nothing
//! read from the user's own), connects to a given address (plaintext or TLS with a self-signed
//! certificate, optionally logging in with SASL PLAIN), and is read by its screen: the
//! terminal output with escape sequences removed, searched for a marker with a generous
//! timeout. The exact command lines are documented in docs/IRC.md.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::session::OsSession;

use smolchat::door::irc::message;

use super::{Server, TIMEOUT};

/// How a real client connects.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    /// TLS without checking the certificate (a self-signed test certificate).
    pub tls: bool,
    /// SASL PLAIN with this account and password.
    pub sasl: Option<(String, String)>,
}

/// Terminal size given to the clients: wide enough that no test line wraps.
const COLUMNS: u16 = 200;
const ROWS: u16 = 50;

/// A real IRC client on a pseudo-terminal.
pub struct IrcPty {
    session: OsSession,
    /// What runs, for failure messages.
    what: String,
    /// Everything shown so far, escape sequences removed.
    screen: String,
    /// Where the next `expect` starts looking: a marker is never matched twice.
    seen_up_to: usize,
    /// Bytes of an escape sequence or a UTF-8 character split across reads.
    partial: Vec<u8>,
    /// The client's home directory, removed on drop.
    _home: tempfile::TempDir,
}

impl IrcPty {
    /// `irssi` as `nick`, connecting to `addr`. Its configuration (server, TLS, SASL, nick and
    /// names) is written to `config` in a fresh `--home`.
    pub fn irssi(irssi: &Path, addr: SocketAddr, nick: &str, connect: &Connect) -> IrcPty {
        let home = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            home.path().join("config"),
            irssi_config(addr, nick, connect),
        )
        .expect("irssi config");
        let command = format!("exec {} --home={}", quote(irssi), quote(home.path()));
        IrcPty::spawn(&command, home)
    }

    /// WeeChat (`weechat-curses`) as `nick`, connecting to `addr`, configured by the commands
    /// it runs at start (`-r`) in a fresh `--dir`.
    pub fn weechat(weechat: &Path, addr: SocketAddr, nick: &str, connect: &Connect) -> IrcPty {
        let home = tempfile::tempdir().expect("tempdir");
        let commands = weechat_commands(addr, nick, connect, weechat_major(weechat)).join(";");
        let command = format!(
            "exec {} --dir {} -r {}",
            quote(weechat),
            quote(home.path()),
            quote(&commands)
        );
        IrcPty::spawn(&command, home)
    }

    /// Runs `command` with `sh` on a fresh pseudo-terminal sized [`COLUMNS`] x [`ROWS`]
    /// (set before the client starts, so it never draws for a smaller one).
    fn spawn(command: &str, home: tempfile::TempDir) -> IrcPty {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("stty cols {COLUMNS} rows {ROWS} && {command}"))
            .env("TERM", "xterm")
            .env("HOME", home.path())
            .env("LANG", "C.UTF-8");
        let session = expectrl::Session::spawn(sh)
            .unwrap_or_else(|e| panic!("cannot start `{command}` on a pty: {e}"));
        IrcPty {
            session,
            what: command.to_owned(),
            screen: String::new(),
            seen_up_to: 0,
            partial: Vec::new(),
            _home: home,
        }
    }

    /// Waits until the screen shows `needle` (after the last marker matched).
    pub fn expect(&mut self, needle: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(at) = self.screen[self.seen_up_to..].find(needle) {
                self.seen_up_to += at + needle.len();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{}` never showed {needle:?}; screen after the last marker:\n{}",
                self.what,
                &self.screen[self.seen_up_to..]
            );
            if !self.read_some() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Types `text` and Enter.
    pub fn type_line(&mut self, text: &str) {
        self.session
            .write_all(format!("{text}\r").as_bytes())
            .unwrap_or_else(|e| panic!("typing into `{}`: {e}", self.what));
    }

    /// Joins `channel` (`/join`; both clients then show the channel's window) and waits until
    /// the client shows it joined. The marker is the one word `joined`: with `extended-join`
    /// the clients show the joiner's real name and host too, and the line may wrap anywhere
    /// between words (WeeChat can draw it before its nick list settles the width).
    pub fn join(&mut self, channel: &str) {
        self.type_line(&format!("/join {channel}"));
        self.expect("joined");
    }

    /// The screen so far, escape sequences removed, for failure messages.
    pub fn screen(&self) -> &str {
        &self.screen
    }

    /// Reads what the client drew since last time; false if there was nothing.
    fn read_some(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        match self.session.try_read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.partial.extend_from_slice(&buf[..n]);
                let (text, rest) = strip_terminal(&self.partial);
                self.screen.push_str(&text);
                self.partial = rest;
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("reading `{}`: {e}; screen:\n{}", self.what, self.screen),
        }
    }
}

impl Drop for IrcPty {
    fn drop(&mut self) {
        let _ = self.session.get_process_mut().exit(true);
    }
}

/// irssi's configuration: one server in a chat network of its own, with TLS and SASL as asked,
/// the nick, user name and real name, and no flood queue (irssi spaces commands 2.2 s apart
/// after the first five, which would make every test wait for it).
fn irssi_config(addr: SocketAddr, nick: &str, connect: &Connect) -> String {
    let tls = if connect.tls {
        "use_tls = \"yes\"; tls_verify = \"no\";"
    } else {
        "use_tls = \"no\";"
    };
    let sasl = match &connect.sasl {
        Some((account, password)) => format!(
            "sasl_mechanism = \"PLAIN\"; sasl_username = \"{account}\"; sasl_password = \"{password}\";"
        ),
        None => String::new(),
    };
    format!(
        "servers = ( {{ address = \"{ip}\"; chatnet = \"smol\"; port = \"{port}\"; {tls} autoconnect = \"yes\"; }} );\n\
         chatnets = {{ smol = {{ type = \"IRC\"; {sasl} }}; }};\n\
         settings = {{ core = {{ real_name = \"{nick} (irssi)\"; user_name = \"{nick}\"; nick = \"{nick}\"; }};\n\
           \"irc/core\" = {{ cmd_queue_speed = \"0msec\"; cmds_max_at_once = \"1000\"; }}; }};\n",
        ip = addr.ip(),
        port = addr.port(),
    )
}

/// WeeChat's major version (`weechat-curses --version` prints `3.8`): WeeChat 4 renamed its
/// `ssl` options `tls`, and the old names are silently ignored by the new version and the new
/// ones by the old.
fn weechat_major(weechat: &Path) -> u32 {
    let out = Command::new(weechat)
        .arg("--version")
        .output()
        .expect("weechat --version");
    let version = String::from_utf8_lossy(&out.stdout);
    version
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(4)
}

/// The commands WeeChat runs at start: nick and names, the server (TLS and SASL as asked),
/// and connecting.
fn weechat_commands(addr: SocketAddr, nick: &str, connect: &Connect, major: u32) -> Vec<String> {
    let server = format!("{}/{}", addr.ip(), addr.port());
    let mut commands = vec![
        format!("/set irc.server_default.nicks {nick}"),
        format!("/set irc.server_default.username {nick}"),
        format!("/set irc.server_default.realname {nick}_weechat"),
    ];
    // No anti-flood queue: WeeChat spaces lines 2 s apart, which would make every test wait.
    if major >= 4 {
        commands.push("/set irc.server_default.anti_flood 0".to_owned());
    } else {
        commands.push("/set irc.server_default.anti_flood_prio_high 0".to_owned());
        commands.push("/set irc.server_default.anti_flood_prio_low 0".to_owned());
    }
    let tls = if major >= 4 { "tls" } else { "ssl" };
    if connect.tls {
        commands.push(format!("/server add smol {server} -{tls}"));
        commands.push(format!("/set irc.server.smol.{tls}_verify off"));
    } else {
        commands.push(format!("/server add smol {server} -no{tls}"));
    }
    if let Some((account, password)) = &connect.sasl {
        commands.push("/set irc.server.smol.sasl_mechanism plain".to_owned());
        commands.push(format!("/set irc.server.smol.sasl_username \"{account}\""));
        commands.push(format!("/set irc.server.smol.sasl_password \"{password}\""));
    }
    commands.push("/connect smol".to_owned());
    commands
}

/// `s` quoted for `sh`.
fn quote(s: impl AsRef<std::ffi::OsStr>) -> String {
    let s = s.as_ref().to_string_lossy();
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Terminal output as text: escape sequences (CSI, OSC, character set and keypad selections)
/// and other control characters removed, cursor movements read as nothing. Returns the text
/// and the bytes of an incomplete sequence or character at the end, to prepend to the next
/// read.
pub fn strip_terminal(bytes: &[u8]) -> (String, Vec<u8>) {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x1b => {
                let Some(len) = escape_len(&bytes[i..]) else {
                    return (
                        String::from_utf8_lossy(&out).into_owned(),
                        bytes[i..].to_vec(),
                    );
                };
                i += len;
            }
            b'\n' => {
                out.push(b'\n');
                i += 1;
            }
            b if b < 0x20 || b == 0x7f => i += 1,
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // A UTF-8 character cut by the read boundary waits for the rest.
    let valid = match std::str::from_utf8(&out) {
        Ok(_) => out.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        Err(_) => out.len(),
    };
    let rest = out.split_off(valid);
    (String::from_utf8_lossy(&out).into_owned(), rest)
}

/// The length of the escape sequence at the start of `bytes`, `None` if it is incomplete.
fn escape_len(bytes: &[u8]) -> Option<usize> {
    match bytes.get(1)? {
        // CSI: parameters and intermediates, then a final byte.
        b'[' => bytes[2..]
            .iter()
            .position(|b| (0x40..=0x7e).contains(b))
            .map(|p| p + 3),
        // OSC: up to BEL or ST.
        b']' => (2..bytes.len()).find_map(|j| match bytes[j] {
            0x07 => Some(j + 1),
            0x1b if bytes.get(j + 1) == Some(&b'\\') => Some(j + 2),
            _ => None,
        }),
        // Character set selection takes one more byte.
        b'(' | b')' | b'*' | b'+' => bytes.get(2).map(|_| 3),
        _ => Some(2),
    }
}

/// A raw IRC client over TCP, for protocol tests: lines in, parsed messages out.
pub struct IrcClient {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

/// A received message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub line: String,
    pub tags: String,
    pub source: Option<String>,
    pub command: String,
    pub params: Vec<String>,
}

impl Msg {
    /// The unescaped value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<String> {
        smolchat::door::irc::tags::Tags::new(&self.tags)
            .get(key)
            .map(|v| v.into_owned())
    }

    /// The nick of the source.
    pub fn nick(&self) -> Option<&str> {
        self.source
            .as_deref()
            .map(|s| s.split('!').next().unwrap_or(s))
    }
}

impl IrcClient {
    pub fn connect(addr: SocketAddr) -> IrcClient {
        IrcClient::from_stream(TcpStream::connect(addr).expect("connect"))
    }

    /// A client over a connected stream (bound to another address, or with a small window).
    pub fn from_stream(stream: TcpStream) -> IrcClient {
        stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        IrcClient {
            stream,
            reader,
            seen: Vec::new(),
        }
    }

    /// Sends one line (CR LF added).
    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("send");
    }

    /// Sends raw bytes as they are (invalid UTF-8, odd line ends).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// The next message; `None` when the server closed the connection. Panics on a timeout or
    /// on a line that is not a message of at most 512 bytes after its tags.
    pub fn next(&mut self) -> Option<Msg> {
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("read failed (timeout?): {e}; seen: {:#?}", self.seen),
        }
        assert!(buf.ends_with(b"\r\n"), "line not ended by CR LF: {buf:?}");
        buf.truncate(buf.len() - 2);
        let line = String::from_utf8(buf).expect("server sent invalid UTF-8");
        self.seen.push(line.clone());
        let msg = message::parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("unparsable {line:?}: {e:?}"));
        let body_len = line.len()
            - if line.starts_with('@') {
                line.find(' ').map_or(0, |s| s + 1)
            } else {
                0
            };
        assert!(body_len + 2 <= 512, "over 512 bytes: {line:?}");
        Some(Msg {
            tags: msg.tags.raw().to_owned(),
            source: msg.source.map(str::to_owned),
            command: msg.command.to_owned(),
            params: msg.params().iter().map(|p| p.to_string()).collect(),
            line,
        })
    }

    /// Reads messages until one satisfies `want`; returns it. Panics at the end of the
    /// connection or after [`TIMEOUT`].
    pub fn expect(&mut self, what: &str, want: impl Fn(&Msg) -> bool) -> Msg {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; seen: {:#?}",
                self.seen
            );
            match self.next() {
                Some(m) if want(&m) => return m,
                Some(_) => {}
                None => panic!(
                    "connection closed while waiting for {what}; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Reads until a message with `command` (a numeric or a verb).
    pub fn expect_command(&mut self, command: &str) -> Msg {
        self.expect(command, |m| m.command.eq_ignore_ascii_case(command))
    }

    /// Registers as `nick` (NICK and USER), waiting for the end of the welcome burst (`376` or
    /// `422`).
    pub fn register(mut self, nick: &str) -> IrcClient {
        self.send(&format!("NICK {nick}"));
        self.send(&format!("USER {nick} 0 * :{nick} (raw)"));
        self.expect_command("001");
        self.expect("the end of the MOTD", |m| {
            m.command == "376" || m.command == "422"
        });
        self
    }

    /// Waits until the server has handled everything sent so far: sends `PING token` and
    /// reads up to its `PONG`, which comes after every reply queued before it.
    pub fn sync(&mut self, token: &str) -> Vec<Msg> {
        self.send(&format!("PING {token}"));
        let start = self.seen.len();
        self.expect("PONG", |m| {
            m.command == "PONG" && m.params.last().map(String::as_str) == Some(token)
        });
        let lines: Vec<String> = self.seen[start..self.seen.len() - 1].to_vec();
        lines
            .iter()
            .filter_map(|l| {
                message::parse(l.as_bytes()).ok().map(|m| Msg {
                    tags: m.tags.raw().to_owned(),
                    source: m.source.map(str::to_owned),
                    command: m.command.to_owned(),
                    params: m.params().iter().map(|p| p.to_string()).collect(),
                    line: l.clone(),
                })
            })
            .collect()
    }
}

/// The server name the IRC tests give (`--server-name`).
pub const SERVER_NAME: &str = "irc.test";

/// A server with an IRC listener (`--irc-listen`, named [`SERVER_NAME`]) and `extra` flags;
/// returns it and the IRC address.
pub fn start_irc(extra: &[&str]) -> (Server, SocketAddr) {
    let mut args = vec!["--irc-listen", "127.0.0.1:0", "--server-name", SERVER_NAME];
    args.extend_from_slice(extra);
    let (server, rest) = Server::start_until(&args, "listening for IRC on ");
    (server, rest.parse().expect("IRC address"))
}
