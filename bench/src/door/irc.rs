//! The bench's IRC client, the minimal one a load generator needs, written from docs/IRC.md and
//! the IRC client protocol (RFC 1459/2812 as the modern client protocol document clarifies them,
//! IRCv3 for `CAP` and message tags).
//!
//! Registration: `CAP LS 302`, `NICK`, `USER` in one write (without capabilities, only `NICK`
//! and `USER`); `CAP REQ` for the capabilities asked for once the server listed its own, `CAP END`
//! once it acknowledged them; then `JOIN #lobby`, and the client is in the room at `366` (end of
//! `NAMES`) for `#lobby`. Senders send `PRIVMSG #lobby :text`; readers take
//! `[@tags ]:nick!user@host PRIVMSG #lobby :text` as chat, answer `PING` with `PONG` (at any
//! time, also before the welcome), and ignore numerics and everything else. A line tagged
//! `batch=` belongs to a history replay, never to live chat, and is not counted.

use std::borrow::Cow;
use std::io;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use smol::future;
use smol::lock::Mutex;
use smol::Timer;

use crate::client::{self, LineReader, ReadError, Stream};
use crate::door::{Heard, ROOM};

/// Numerics that refuse registration or the join: an erroneous or taken nick, a ban, a channel
/// that cannot be joined. Registration fails loudly on them rather than waiting for a deadline.
const REFUSALS: [&[u8]; 17] = [
    b"417", b"431", b"432", b"433", b"436", b"437", b"451", b"461", b"464", b"465", b"403", b"405",
    b"471", b"473", b"474", b"475", b"476",
];

/// The capabilities the bench's IRC clients ask for (`--irc-caps`): none at all (no `CAP`
/// negotiation, as the plainest clients register), or a list for `CAP REQ`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IrcCaps(Vec<String>);

impl IrcCaps {
    /// What `--irc-caps` defaults to: what modern clients ask for that changes what the server
    /// sends each reader (tags on every line) and each sender (its own lines back).
    pub const DEFAULT: &'static str = "server-time,message-tags,echo-message";

    /// Whether registration negotiates capabilities at all.
    fn negotiates(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `echo-message` is asked for: once the server acknowledges it, senders get their
    /// own lines back.
    pub fn echo(&self) -> bool {
        self.0.iter().any(|cap| cap == "echo-message")
    }

    /// The list as `RESULT` shows it: comma-separated, or `none`.
    pub fn label(&self) -> String {
        if self.0.is_empty() {
            "none".to_owned()
        } else {
            self.0.join(",")
        }
    }
}

impl Default for IrcCaps {
    fn default() -> IrcCaps {
        IrcCaps(IrcCaps::DEFAULT.split(',').map(str::to_owned).collect())
    }
}

impl FromStr for IrcCaps {
    type Err = String;

    fn from_str(text: &str) -> Result<IrcCaps, String> {
        if text.trim() == "none" {
            return Ok(IrcCaps(Vec::new()));
        }
        let caps: Vec<String> = text
            .split([',', ' '])
            .filter(|cap| !cap.is_empty())
            .map(str::to_owned)
            .collect();
        match caps
            .iter()
            .find(|cap| !cap.bytes().all(|b| b.is_ascii_graphic()))
        {
            Some(bad) => Err(format!("--irc-caps: {bad:?} is not a capability name")),
            None if caps.is_empty() => Err("--irc-caps: give capabilities, or none".into()),
            None => Ok(IrcCaps(caps)),
        }
    }
}

/// The writing half: lines go out whole under a lock, because the reader answers `PING` on the
/// same connection and must never write into the middle of a sender's line.
pub struct IrcWriter {
    stream: Arc<Mutex<Stream>>,
    line: Vec<u8>,
}

impl IrcWriter {
    /// Sends `PRIVMSG #lobby :text`.
    pub async fn say(&mut self, text: &[u8], deadline: Instant) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(b"PRIVMSG #");
        self.line.extend_from_slice(ROOM.as_bytes());
        self.line.extend_from_slice(b" :");
        self.line.extend_from_slice(text);
        self.line.extend_from_slice(b"\r\n");
        send(&self.stream, &self.line, deadline).await
    }
}

/// Writes `bytes` whole under the connection's lock, by `deadline`.
async fn send(stream: &Mutex<Stream>, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    future::or(
        async { client::write_bounded(&mut *stream.lock().await, bytes, deadline).await },
        async {
            Timer::at(deadline).await;
            Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
        },
    )
    .await
}

/// The reading half; it answers `PING` itself.
pub struct IrcReader {
    lines: LineReader,
    stream: Arc<Mutex<Stream>>,
}

impl IrcReader {
    /// The next thing heard, after answering any `PING` on the way; each read bounded by
    /// `deadline` when `timed`, the `PONG`s always.
    pub async fn next(
        &mut self,
        deadline: Instant,
        timed: bool,
    ) -> Result<Option<Heard<'_>>, ReadError> {
        loop {
            // The line is parsed twice when it is a PING (here and below), so that the borrow
            // returned is taken after the last await: a PING is rare, chat is not.
            let line = if timed {
                self.lines.read_line(deadline).await?
            } else {
                self.lines.next_line().await?
            };
            let line = match line {
                Some(line) => line,
                None => return Ok(None),
            };
            if let Some(token) = parse(line).and_then(|m| m.is(b"PING").then(|| m.last())) {
                let pong = pong(token.unwrap_or_default());
                send(&self.stream, &pong, deadline)
                    .await
                    .map_err(ReadError::Io)?;
                continue;
            }
            break;
        }
        Ok(Some(self.lines.last_line().map_or(Heard::Other, heard)))
    }
}

/// `PONG :token`, the answer to `PING token`.
fn pong(token: &[u8]) -> Vec<u8> {
    let mut line = b"PONG :".to_vec();
    line.extend_from_slice(token);
    line.extend_from_slice(b"\r\n");
    line
}

/// What a line means to a member already in the room.
fn heard(line: &[u8]) -> Heard<'_> {
    let Some(message) = parse(line) else {
        return Heard::Other;
    };
    if message.is(b"ERROR") {
        return Heard::Dropped;
    }
    if !message.is(b"PRIVMSG") || message.tag(b"batch").is_some() {
        return Heard::Other;
    }
    let mut params = message.params();
    match (params.next(), params.next()) {
        (Some(target), Some(text)) if is_room(target) => Heard::Chat {
            from: Cow::Borrowed(message.nick()),
            text: Cow::Borrowed(text),
        },
        _ => Heard::Other,
    }
}

/// Whether `target` is `#lobby` (channel names compare without case).
fn is_room(target: &[u8]) -> bool {
    target.first() == Some(&b'#') && target[1..].eq_ignore_ascii_case(ROOM.as_bytes())
}

/// One line from the server, split into its parts; parameters are read lazily.
struct Message<'a> {
    tags: &'a [u8],
    /// `nick!user@host` or a server name; empty when the line has none.
    source: &'a [u8],
    command: &'a [u8],
    rest: &'a [u8],
}

impl<'a> Message<'a> {
    fn is(&self, command: &[u8]) -> bool {
        self.command.eq_ignore_ascii_case(command)
    }

    /// The nick of the source, without `!user@host`.
    fn nick(&self) -> &'a [u8] {
        let end = self
            .source
            .iter()
            .position(|&b| b == b'!' || b == b'@')
            .unwrap_or(self.source.len());
        &self.source[..end]
    }

    /// The value of tag `key` (empty for a tag without one), if the line has it.
    fn tag(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.tags.split(|&b| b == b';').find_map(|tag| {
            let (name, value) = match tag.iter().position(|&b| b == b'=') {
                Some(at) => (&tag[..at], &tag[at + 1..]),
                None => (tag, &tag[tag.len()..]),
            };
            (name == key).then_some(value)
        })
    }

    fn params(&self) -> Params<'a> {
        Params { rest: self.rest }
    }

    /// The last parameter, if any.
    fn last(&self) -> Option<&'a [u8]> {
        self.params().last()
    }
}

/// The parameters of a line, middle ones then the trailing one.
struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Params<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = trim_spaces(self.rest);
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        if let Some(trailing) = rest.strip_prefix(b":") {
            self.rest = &rest[rest.len()..];
            return Some(trailing);
        }
        let (param, after) = split_word(rest);
        self.rest = after;
        Some(param)
    }
}

/// Splits `[@tags ][:source ]COMMAND params` into its parts; `None` for an empty line.
fn parse(line: &[u8]) -> Option<Message<'_>> {
    let mut rest = line;
    let mut tags: &[u8] = b"";
    if let Some(after) = rest.strip_prefix(b"@") {
        (tags, rest) = split_word(after);
    }
    let mut source: &[u8] = b"";
    rest = trim_spaces(rest);
    if let Some(after) = rest.strip_prefix(b":") {
        (source, rest) = split_word(after);
    }
    let (command, rest) = split_word(trim_spaces(rest));
    (!command.is_empty()).then_some(Message {
        tags,
        source,
        command,
        rest,
    })
}

/// Splits at the first space: the word, and what follows the space.
fn split_word(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &bytes[bytes.len()..]),
    }
}

fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let Some(rest) = bytes.strip_prefix(b" ") {
        bytes = rest;
    }
    bytes
}

/// Where registration is.
#[derive(PartialEq)]
enum Step {
    /// Waiting for the server's capability list (`CAP * LS`).
    CapList,
    /// Waiting for `CAP * ACK`.
    CapAck,
    /// Waiting for `001`.
    Welcome,
    /// `JOIN #lobby` sent; waiting for `366` for it.
    Joining,
}

/// Registers `name` on a fresh connection and joins `#lobby`, all by `deadline`. Also says
/// whether the server acknowledged `echo-message` (a server without `CAP` welcomes the client
/// without acknowledging anything).
pub async fn register(
    stream: Stream,
    name: &str,
    caps: &IrcCaps,
    deadline: Instant,
) -> Result<(IrcReader, IrcWriter, bool), String> {
    let shared = Arc::new(Mutex::new(stream.clone()));
    let mut lines = LineReader::new(stream);
    let fail = |what: &str, error: &dyn std::fmt::Display| format!("{name}: {what}: {error}");
    let write = |bytes: Vec<u8>| {
        let shared = shared.clone();
        async move { send(&shared, &bytes, deadline).await }
    };

    let mut hello = String::new();
    if caps.negotiates() {
        hello.push_str("CAP LS 302\r\n");
    }
    hello.push_str(&format!(
        "NICK {name}\r\nUSER {name} 0 * :smolchat-bench\r\n"
    ));
    write(hello.into_bytes())
        .await
        .map_err(|e| fail("sending NICK and USER", &e))?;
    let mut echo = false;
    let mut step = if caps.negotiates() {
        Step::CapList
    } else {
        Step::Welcome
    };
    loop {
        let line = match lines.read_line(deadline).await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(format!("{name}: closed during IRC registration")),
            Err(error) => return Err(fail("registering over IRC", &error)),
        };
        let Some(message) = parse(line) else {
            continue;
        };
        let refused = || format!("{name}: refused: {}", String::from_utf8_lossy(line));
        let mut params = message.params();
        let reply = if message.is(b"PING") {
            Some(pong(message.last().unwrap_or_default()))
        } else if message.is(b"ERROR") || REFUSALS.contains(&message.command) {
            return Err(refused());
        } else if message.is(b"CAP") {
            let (_, sub, more) = (params.next(), params.next(), params.next());
            let sub = sub.unwrap_or_default();
            if sub.eq_ignore_ascii_case(b"LS") && step == Step::CapList && more != Some(b"*") {
                step = Step::CapAck;
                Some(format!("CAP REQ :{}\r\n", caps.0.join(" ")).into_bytes())
            } else if sub.eq_ignore_ascii_case(b"ACK") && step == Step::CapAck {
                step = Step::Welcome;
                echo = caps.echo();
                Some(b"CAP END\r\n".to_vec())
            } else if sub.eq_ignore_ascii_case(b"NAK") {
                return Err(format!(
                    "{name}: the server refused CAP REQ :{} ({})",
                    caps.0.join(" "),
                    String::from_utf8_lossy(line)
                ));
            } else {
                None
            }
        } else if message.is(b"001") && step != Step::Joining {
            step = Step::Joining;
            Some(format!("JOIN #{ROOM}\r\n").into_bytes())
        } else if message.is(b"366") && step == Step::Joining {
            match (params.next(), params.next()) {
                (Some(_), Some(channel)) if is_room(channel) => break,
                _ => None,
            }
        } else {
            None
        };
        if let Some(reply) = reply {
            write(reply)
                .await
                .map_err(|e| fail("answering the server", &e))?;
        }
    }
    let reader = IrcReader {
        lines,
        stream: shared.clone(),
    };
    let writer = IrcWriter {
        stream: shared,
        line: Vec::with_capacity(128),
    };
    Ok((reader, writer, echo))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat<'a>(from: &'a str, text: &'a str) -> Heard<'a> {
        Heard::Chat {
            from: Cow::Borrowed(from.as_bytes()),
            text: Cow::Borrowed(text.as_bytes()),
        }
    }

    /// Relayed lines with and without tags and masks are chat; replays, numerics, other
    /// channels and private lines are not.
    #[test]
    fn chat_lines() {
        assert_eq!(
            heard(b":b1!~b1@127.0.0.1 PRIVMSG #lobby :s1 n2 t3 xx"),
            chat("b1", "s1 n2 t3 xx")
        );
        assert_eq!(
            heard(b"@time=2026-11-27T16:40:17.456Z;msgid=42 :b1!nc@h PRIVMSG #Lobby :hi there"),
            chat("b1", "hi there")
        );
        assert_eq!(heard(b":b2 PRIVMSG #lobby word"), chat("b2", "word"));
        assert_eq!(
            heard(b"@batch=x1;time=t :b1!u@h PRIVMSG #lobby :old line"),
            Heard::Other
        );
        assert_eq!(heard(b":b1!u@h PRIVMSG #rust :hi"), Heard::Other);
        assert_eq!(heard(b":b1!u@h PRIVMSG b2 :hi"), Heard::Other);
        assert_eq!(heard(b":srv 353 b2 = #lobby :b1 b2"), Heard::Other);
        assert_eq!(heard(b":b3!u@h JOIN #lobby"), Heard::Other);
        assert_eq!(heard(b"ERROR :Closing link"), Heard::Dropped);
        assert_eq!(heard(b""), Heard::Other);
    }

    /// Tags are found by exact key; PING tokens come in either form.
    #[test]
    fn tags_and_params() {
        let m = parse(b"@a=1;batch;abatch=2 :s PING x :y z").unwrap();
        assert_eq!(m.tag(b"batch"), Some(&b""[..]));
        assert_eq!(m.tag(b"a"), Some(&b"1"[..]));
        assert_eq!(m.tag(b"b"), None);
        assert_eq!(m.params().collect::<Vec<_>>(), [&b"x"[..], b"y z"]);
        assert_eq!(parse(b"PING :tok").unwrap().last(), Some(&b"tok"[..]));
        assert_eq!(parse(b"PING tok").unwrap().last(), Some(&b"tok"[..]));
        assert_eq!(pong(b"tok"), b"PONG :tok\r\n");
    }

    /// `--irc-caps` takes a list or none.
    #[test]
    fn caps_flag() {
        let caps: IrcCaps = IrcCaps::DEFAULT.parse().unwrap();
        assert_eq!(caps, IrcCaps::default());
        assert!(caps.echo() && caps.negotiates());
        assert_eq!(caps.label(), IrcCaps::DEFAULT);
        let none: IrcCaps = "none".parse().unwrap();
        assert!(!none.echo() && !none.negotiates());
        assert!("".parse::<IrcCaps>().is_err());
    }
}
