//! Clients of every door: the line door (nc, and the floor relay, which speaks the same way), the
//! IRC door and the web door. A [`Member`] is a registered client in the room, whatever door it
//! came through; the scenarios see only what it heard ([`Heard`]) and what it says
//! ([`Writer::say`]), so the same fan-out runs against a room of nc users, IRC users, web users
//! or any mix of them.
//!
//! Each door's client is written here from its documentation (docs/PROTOCOL.md, docs/IRC.md,
//! docs/WEB.md), not taken from the server crate: the bench must measure the server as a client
//! sees it, and a change to the server's own protocol code must not silently change the client.
//! Like every real client, each one parses all it receives, so the bench's cost per line is a
//! client's, not zero.

mod irc;
mod web;

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::client::{self, LineReader, ReadError, Stream, Target, Transport};

pub use irc::IrcCaps;

/// The room every bench client is in: `lobby`, which is `#lobby` to IRC clients.
pub const ROOM: &str = "lobby";

/// What the line door says before it closes a client it drops for not reading.
const LINE_DROPPED: &[u8] = b"disconnected:";

/// Which door a client comes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Door {
    /// The line door (`--listen`): nc, telnet. Also the floor relay's only door.
    Line,
    /// The IRC door (`--irc-listen`).
    Irc,
    /// The web door (`--web-listen`): a WebSocket at `/ws` speaking JSON lines.
    Web,
}

impl Door {
    /// Every door, in the order reports list them.
    pub const ALL: [Door; 3] = [Door::Line, Door::Irc, Door::Web];

    /// The name used in flags and `RESULT` keys.
    pub fn name(self) -> &'static str {
        match self {
            Door::Line => "nc",
            Door::Irc => "irc",
            Door::Web => "web",
        }
    }

    /// The flag that gives this door's addresses.
    pub fn addr_flag(self) -> &'static str {
        match self {
            Door::Line => "--addr",
            Door::Irc => "--irc-addr",
            Door::Web => "--web-addr",
        }
    }
}

impl FromStr for Door {
    type Err = String;

    fn from_str(text: &str) -> Result<Door, String> {
        match text {
            "nc" | "line" => Ok(Door::Line),
            "irc" => Ok(Door::Irc),
            "web" => Ok(Door::Web),
            other => Err(format!("unknown door {other:?}: expected nc, irc or web")),
        }
    }
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a member heard: one line of the line door or of IRC, or one JSON line of the web door.
#[derive(Debug, PartialEq)]
pub enum Heard<'a> {
    /// A public line in the room: who said it and its text. History replays are left out
    /// where the door marks them (the line door's history block, the web door's `history`,
    /// IRC's `batch`); an IRC door that replays plain `PRIVMSG`s after the join is covered by
    /// the swarm, which drops everything before its run's own sync line.
    Chat {
        from: Cow<'a, [u8]>,
        text: Cow<'a, [u8]>,
    },
    /// The server said it is closing this connection (the line door's `disconnected: ...`, IRC
    /// `ERROR`, the web door's `bye`): for a reader that stopped reading, being dropped as slow.
    Dropped,
    /// Anything else: notices, numerics, history, prompts.
    Other,
}

/// A registered client of any door, in the room.
pub struct Member {
    pub name: String,
    pub door: Door,
    pub reader: Reader,
    pub writer: Writer,
    /// Whether the server sends this member its own public lines back (the web door always
    /// does; IRC with `echo-message`).
    pub echoes: bool,
    /// The connection itself, kept to shut its read side down when the bench stops waiting.
    socket: Stream,
}

impl Member {
    /// A handle that ends this member's reads, for when the member itself is busy in a task.
    pub fn read_cut(&self) -> ReadCut {
        ReadCut(self.socket.clone())
    }
}

/// Shuts down the read side of a member's connection.
pub struct ReadCut(Stream);

impl ReadCut {
    /// Ends every pending and future read with a clean end of stream.
    pub fn cut(&self) -> io::Result<()> {
        self.0.shutdown(std::net::Shutdown::Read)
    }
}

/// The reading half of a member's connection.
pub enum Reader {
    Line(LineReader),
    Irc(irc::IrcReader),
    Web(web::WebReader),
}

impl Reader {
    /// The next thing heard; `Ok(None)` is a clean end of stream, `Err(ReadError::Timeout)` the
    /// deadline passing first. Cancel-safe: a read cut short keeps what it had for the next call.
    pub async fn next(&mut self, deadline: Instant) -> Result<Option<Heard<'_>>, ReadError> {
        self.read(deadline, true).await
    }

    /// The next thing heard, as [`Reader::next`], but the read has no timer of its own: for a
    /// hot loop that bounds itself with one (see [`LineReader::next_line`]). `deadline` still
    /// bounds what a read may have to write (an IRC `PONG`).
    pub async fn next_untimed(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Heard<'_>>, ReadError> {
        self.read(deadline, false).await
    }

    async fn read(
        &mut self,
        deadline: Instant,
        timed: bool,
    ) -> Result<Option<Heard<'_>>, ReadError> {
        match self {
            Reader::Line(lines) => {
                let line = if timed {
                    lines.read_line(deadline).await?
                } else {
                    lines.next_line().await?
                };
                Ok(line.map(line_heard))
            }
            Reader::Irc(reader) => reader.next(deadline, timed).await,
            Reader::Web(reader) => reader.next(deadline, timed).await,
        }
    }
}

/// Parses a line door (or floor) line: `NAME: text` is chat, `disconnected: ...` is the drop
/// notice, the rest is other.
fn line_heard(line: &[u8]) -> Heard<'_> {
    if line.starts_with(LINE_DROPPED) {
        return Heard::Dropped;
    }
    // Names cannot contain ':', so the first one ends the name; notices (`* NAME joined`) have
    // a space before any colon.
    let Some(colon) = line.iter().position(|&byte| byte == b':') else {
        return Heard::Other;
    };
    let from = &line[..colon];
    match line[colon + 1..].strip_prefix(b" ") {
        Some(text) if !from.is_empty() && !from.contains(&b' ') => Heard::Chat {
            from: Cow::Borrowed(from),
            text: Cow::Borrowed(text),
        },
        _ => Heard::Other,
    }
}

/// The writing half of a member's connection.
pub enum Writer {
    Line(Stream),
    Irc(irc::IrcWriter),
    Web(web::WebWriter),
}

impl Writer {
    /// Says `text` (one line, no line ending) in the room, bounded by `deadline`.
    pub async fn say(&mut self, text: &[u8], deadline: Instant) -> io::Result<()> {
        match self {
            Writer::Line(stream) => client::send_line(stream, text, deadline).await,
            Writer::Irc(writer) => writer.say(text, deadline).await,
            Writer::Web(writer) => writer.say(text, deadline).await,
        }
    }
}

/// How the bench reaches each door of the server.
#[derive(Clone)]
pub struct Doors {
    /// Plaintext or TLS, for every door.
    pub transport: Transport,
    /// The server's dialogue on the line door (smolchat or the floor).
    pub target: Target,
    /// One address per node, per door: client `i` of a door connects to its address
    /// `i mod nodes`. Empty for a door whose address was not given.
    pub line: Vec<SocketAddr>,
    pub irc: Vec<SocketAddr>,
    pub web: Vec<SocketAddr>,
    pub irc_caps: IrcCaps,
}

impl Doors {
    /// The address client number `index` of `door` connects to.
    pub fn addr(&self, door: Door, index: usize) -> Option<SocketAddr> {
        let addrs = match door {
            Door::Line => &self.line,
            Door::Irc => &self.irc,
            Door::Web => &self.web,
        };
        (!addrs.is_empty()).then(|| addrs[index % addrs.len()])
    }

    /// Checks that clients of `door` can be made: its address was given (one per node), and
    /// the server speaks it.
    pub fn check(&self, door: Door) -> Result<(), String> {
        let addrs = match door {
            Door::Line => &self.line,
            Door::Irc => &self.irc,
            Door::Web => &self.web,
        };
        if door != Door::Line && self.target == Target::Floor {
            return Err(format!(
                "the floor relay has no {door} door: {door} clients need --target smolchat"
            ));
        }
        if addrs.is_empty() {
            return Err(format!(
                "{door} clients need the server's {door} address: {} ADDR",
                door.addr_flag()
            ));
        }
        if addrs.len() != self.line.len() {
            return Err(format!(
                "{} gives {} addresses and --addr {}: give one per node, in the same order",
                door.addr_flag(),
                addrs.len(),
                self.line.len()
            ));
        }
        Ok(())
    }
}

/// What registration observed.
pub struct Joined {
    pub member: Member,
    /// From the first byte of registration sent to being in the room (the end of the history
    /// replay, IRC's end of `NAMES`, the web door's last history chunk). The floor
    /// acknowledges nothing, so there it is only the time to write the name.
    pub elapsed: Duration,
}

/// Connects client `name` through `door` and registers it in the room, all by `deadline`.
pub async fn join(
    doors: &Doors,
    door: Door,
    index: usize,
    source: Option<Ipv4Addr>,
    recv_buffer: Option<usize>,
    name: &str,
    deadline: Instant,
) -> Result<Joined, String> {
    let addr = doors.addr(door, index).ok_or_else(|| {
        format!(
            "{name}: no {door} address given ({} ADDR)",
            door.addr_flag()
        )
    })?;
    let (member, elapsed) = match door {
        Door::Line => {
            let (client, registration) = client::join(
                &doors.transport,
                addr,
                source,
                recv_buffer,
                doors.target,
                name,
                deadline,
            )
            .await?;
            let member = Member {
                name: client.name,
                door,
                reader: Reader::Line(client.lines),
                socket: client.writer.clone(),
                writer: Writer::Line(client.writer),
                echoes: false,
            };
            (member, registration.elapsed)
        }
        Door::Irc => {
            let stream =
                client::open(&doors.transport, addr, source, recv_buffer, name, deadline).await?;
            let socket = stream.clone();
            let started = Instant::now();
            let (reader, writer, echoes) =
                irc::register(stream, name, &doors.irc_caps, deadline).await?;
            let member = Member {
                name: name.to_owned(),
                door,
                reader: Reader::Irc(reader),
                writer: Writer::Irc(writer),
                echoes,
                socket,
            };
            (member, started.elapsed())
        }
        Door::Web => {
            let stream =
                client::open(&doors.transport, addr, source, recv_buffer, name, deadline).await?;
            let socket = stream.clone();
            let secure = matches!(doors.transport, Transport::Tls(_));
            let started = Instant::now();
            let (reader, writer) = web::register(stream, addr, secure, name, deadline).await?;
            let member = Member {
                name: name.to_owned(),
                door,
                reader: Reader::Web(reader),
                writer: Writer::Web(writer),
                echoes: true,
                socket,
            };
            (member, started.elapsed())
        }
    };
    Ok(Joined { member, elapsed })
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

    /// Line door lines: chat, the drop notice, and notices that are neither.
    #[test]
    fn line_door_lines() {
        assert_eq!(line_heard(b"b7: s1 n2 t3 xx"), chat("b7", "s1 n2 t3 xx"));
        assert_eq!(line_heard(b"b0: a: b"), chat("b0", "a: b"));
        assert_eq!(
            line_heard(b"disconnected: you were not reading fast enough"),
            Heard::Dropped
        );
        assert_eq!(line_heard(b"* b3 joined"), Heard::Other);
        assert_eq!(line_heard(b"* b3 left (quit: a: b)"), Heard::Other);
        assert_eq!(line_heard(b"[private] b1: hi"), Heard::Other);
        assert_eq!(line_heard(b"b1:no space"), Heard::Other);
    }

    /// Door names parse both ways.
    #[test]
    fn door_names() {
        for door in Door::ALL {
            assert_eq!(door.name().parse::<Door>(), Ok(door));
        }
        assert_eq!("line".parse::<Door>(), Ok(Door::Line));
        assert!("telnet".parse::<Door>().is_err());
    }
}
