//! One line door client: connecting (optionally from a chosen loopback source address), the
//! registration handshake, and reading lines against a deadline. Reads never block past the
//! run's deadline, so every phase of the bench ends by itself even if the server goes quiet.
//!
//! [`open`] is the one place any client's connection is made, whatever its door (the IRC and web
//! clients in `door/` connect through it too), so a TLS stream is slotted in there and nowhere
//! else; [`join`] registers on the line door.
//!
//! Two servers are understood (see [`Target`]): smolchat, and the floor relay in
//! `../shared/floor`, which shows what moving the bytes costs on this machine. Both relay a
//! chat line as `NAME: text`; only registration differs.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use smol::future;
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::net::TcpStream;
use smol::{Async, Timer};
use socket2::{Domain, Protocol, Socket, Type};

pub use crate::tls::{Stream, Transport};

/// Read buffer per client. Chat lines are short, and a thousand clients each holding a large
/// buffer would cost the bench more memory than the server uses.
const READ_BUFFER: usize = 8 * 1024;

/// Longest line the bench accepts from the server. The server's own limit is 1024 bytes plus a
/// name, so anything longer means the stream is not what we think it is.
const MAX_LINE: usize = 16 * 1024;

/// smolchat's prompt for a name, at the end of its greeting line.
const NAME_PROMPT: &[u8] = b"What is your name?";

/// The floor relay's whole first line.
const FLOOR_PROMPT: &[u8] = b"name?";

/// The start of the line that ends the history replay, after which the client is in the room.
/// Only the prefix is matched, so `--- end of history ---` (docs/PROTOCOL.md) and a variant that
/// carries the message count both work.
const END_OF_HISTORY: &[u8] = b"--- end of history";

/// The start of the line that opens the history replay.
const HISTORY_HEADER: &[u8] = b"--- history of ";

/// `connect(2)` in non-blocking mode reports `EINPROGRESS` (115 on Linux) while the handshake
/// runs; std has no stable `ErrorKind` for it.
const EINPROGRESS: i32 = 115;

/// Which server the bench talks to. It decides the registration dialogue and nothing else:
/// both relay a chat line to every other client as `NAME: text`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// smolchat: a greeting ending in the name prompt, then a welcome line, the history replay,
    /// and join and leave notices.
    Smolchat,
    /// The floor relay: `name?`, then nothing at all. No welcome, history, notices or limits,
    /// so a registration is never acknowledged.
    Floor,
}

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Target, String> {
        match text {
            "smolchat" => Ok(Target::Smolchat),
            "floor" => Ok(Target::Floor),
            other => Err(format!(
                "unknown target {other:?}: expected smolchat or floor"
            )),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Smolchat => "smolchat",
            Target::Floor => "floor",
        })
    }
}

/// Why a read produced no line.
#[derive(Debug)]
pub enum ReadError {
    /// The run's deadline passed.
    Timeout,
    /// The server sent a line longer than [`MAX_LINE`].
    TooLong,
    /// The connection failed.
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Timeout => write!(f, "timed out"),
            ReadError::TooLong => write!(f, "line from server longer than {MAX_LINE} bytes"),
            ReadError::Io(error) => write!(f, "{error}"),
        }
    }
}

/// The read half of a connection, framed into lines.
pub struct LineReader {
    reader: BufReader<Stream>,
    line: Vec<u8>,
    /// Whether `line` holds a line already handed out. It is cleared lazily at the start of the
    /// next read, so a read cancelled half-way keeps its partial line and the next read completes
    /// it instead of returning a fragment.
    handed_out: bool,
}

impl LineReader {
    pub fn new(stream: Stream) -> LineReader {
        LineReader {
            reader: BufReader::with_capacity(READ_BUFFER, stream),
            line: Vec::with_capacity(256),
            handed_out: false,
        }
    }

    /// Reads the next line without its line ending; `Ok(None)` is a clean end of stream,
    /// `Err(ReadError::Timeout)` the deadline passing first.
    pub async fn read_line(&mut self, deadline: Instant) -> Result<Option<&[u8]>, ReadError> {
        if Instant::now() >= deadline {
            return Err(ReadError::Timeout);
        }
        let whole = future::or(self.fill(), async {
            Timer::at(deadline).await;
            Err(ReadError::Timeout)
        })
        .await?;
        Ok(self.hand_out(whole))
    }

    /// Reads the next line as [`LineReader::read_line`] does, but with no deadline of its own,
    /// for a hot loop that bounds itself with one timer: a timer per read costs a timer
    /// registration and removal per wake-up, which at a million deliveries a second is a good
    /// part of the bench's CPU.
    pub async fn next_line(&mut self) -> Result<Option<&[u8]>, ReadError> {
        let whole = self.fill().await?;
        Ok(self.hand_out(whole))
    }

    /// Reads until `line` holds a whole line (true), or the stream ended before any byte of one
    /// (false). Cancel-safe: a read cut short keeps its partial line for the next call.
    async fn fill(&mut self) -> Result<bool, ReadError> {
        if self.handed_out {
            self.line.clear();
            self.handed_out = false;
        }
        loop {
            let room = (MAX_LINE + 1).saturating_sub(self.line.len()) as u64;
            let read = (&mut self.reader)
                .take(room)
                .read_until(b'\n', &mut self.line)
                .await
                .map_err(ReadError::Io)?;
            if self.line.ends_with(b"\n") {
                return Ok(true);
            }
            if self.line.len() > MAX_LINE {
                return Err(ReadError::TooLong);
            }
            if read == 0 {
                // A last line without a newline before the close still counts.
                return Ok(!self.line.is_empty());
            }
        }
    }

    /// Marks the line just read as handed out (when there is one) and returns it.
    fn hand_out(&mut self, whole: bool) -> Option<&[u8]> {
        self.handed_out = whole;
        self.last_line()
    }

    /// The line the last [`LineReader::read_line`] handed out, again, without its line ending.
    pub fn last_line(&self) -> Option<&[u8]> {
        if !self.handed_out {
            return None;
        }
        let mut end = self.line.len();
        while end > 0 && matches!(self.line[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        Some(&self.line[..end])
    }
}

/// A registered client: its name and both halves of its connection.
pub struct Client {
    pub name: String,
    pub lines: LineReader,
    pub writer: Stream,
}

/// What registration observed.
pub struct Registration {
    /// From sending the name to reading the end-of-history line. The floor acknowledges
    /// nothing, so there it is only the time to write the name.
    pub elapsed: Duration,
    /// Lines between the history header and its end marker.
    pub history_lines: u64,
}

/// Connects to `addr` and registers `name` with `target`'s dialogue, all by `deadline`.
///
/// This is where every bench client's connection is made, and where `transport` wraps it in TLS
/// (the handshake counts against the connect timeout).
#[allow(clippy::too_many_arguments)]
pub async fn join(
    transport: &Transport,
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    recv_buffer: Option<usize>,
    target: Target,
    name: &str,
    deadline: Instant,
) -> Result<(Client, Registration), String> {
    let stream = open(transport, addr, source, recv_buffer, name, deadline).await?;
    match target {
        Target::Smolchat => register(stream, name, deadline).await,
        Target::Floor => register_floor(stream, name, deadline).await,
    }
}

/// Opens a connection to `addr` for the client `name` and wraps it in `transport` (the TLS
/// handshake counts against the connect timeout), all by `deadline`. Every door's clients
/// connect through here.
pub async fn open(
    transport: &Transport,
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    recv_buffer: Option<usize>,
    name: &str,
    deadline: Instant,
) -> Result<Stream, String> {
    future::or(
        async {
            let tcp = connect(addr, source, recv_buffer)
                .await
                .map_err(|error| format!("{name}: connecting to {addr}: {error}"))?;
            transport.wrap(tcp).await.map_err(|error| {
                format!(
                    "{name}: {} handshake with {addr}: {error}",
                    transport.name()
                )
            })
        },
        async {
            Timer::at(deadline).await;
            Err(format!("{name}: connect timed out"))
        },
    )
    .await
}

/// Opens a TCP connection to `addr`, from `source` when given, with a receive buffer of
/// `recv_buffer` bytes when given (the kernel's autotuned default otherwise).
///
/// Nagle's algorithm is turned off: a sender with several short lines in flight would otherwise
/// wait for the server's delayed ACK (40 ms on Linux) and the bench would measure that timer.
async fn connect(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    recv_buffer: Option<usize>,
) -> io::Result<TcpStream> {
    let stream = if source.is_none() && recv_buffer.is_none() {
        TcpStream::connect(addr).await?
    } else {
        connect_with(addr, source, recv_buffer).await?
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The socket2 path of [`connect`], for options that must be set before connecting.
async fn connect_with(
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
    recv_buffer: Option<usize>,
) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(bytes) = recv_buffer {
        // Set before connecting, because the window scale offered in the SYN depends on it.
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(source) = source {
        // Binding a chosen 127.0.0.x spreads clients over many source addresses, which keeps
        // each address under a per-address connection cap and gives every address its own
        // ephemeral port range.
        socket.bind(&SocketAddr::new(IpAddr::V4(source), 0).into())?;
    }
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(EINPROGRESS) => {}
        Err(error) => return Err(error),
    }
    let stream = Async::new(std::net::TcpStream::from(socket))?;
    stream.writable().await?;
    if let Some(error) = stream.get_ref().take_error()? {
        return Err(error);
    }
    // A socket that is writable without an error is connected; `peer_addr` double-checks.
    stream.get_ref().peer_addr()?;
    Ok(TcpStream::from(stream))
}

/// Writes one line (a newline is appended) in a single write, bounded by the deadline.
pub async fn send_line(writer: &mut Stream, line: &[u8], deadline: Instant) -> io::Result<()> {
    let mut framed = Vec::with_capacity(line.len() + 1);
    framed.extend_from_slice(line);
    framed.push(b'\n');
    write_bounded(writer, &framed, deadline).await
}

/// Writes `bytes` as they are, failing with `TimedOut` at the deadline.
pub async fn write_bounded(writer: &mut Stream, bytes: &[u8], deadline: Instant) -> io::Result<()> {
    future::or(writer.write_all(bytes), async {
        Timer::at(deadline).await;
        Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
    })
    .await
}

/// Runs smolchat's registration handshake on a fresh connection: waits for the name prompt,
/// sends `name`, and reads through the history replay.
async fn register(
    stream: Stream,
    name: &str,
    deadline: Instant,
) -> Result<(Client, Registration), String> {
    let mut writer = stream.clone();
    let mut lines = LineReader::new(stream);
    let fail = |what: &str, error: &dyn std::fmt::Display| format!("{name}: {what}: {error}");

    // Anything before the prompt other than the greeting is a refusal such as
    // "server full, try again later", which the server follows by closing.
    loop {
        match lines.read_line(deadline).await {
            Ok(Some(line)) if line.ends_with(NAME_PROMPT) => break,
            Ok(Some(line)) if line.starts_with(b"Welcome to ") => continue,
            Ok(Some(line)) => {
                return Err(format!(
                    "{name}: refused: {}",
                    String::from_utf8_lossy(line)
                ))
            }
            Ok(None) => return Err(format!("{name}: closed before the name prompt")),
            Err(error) => return Err(fail("waiting for the name prompt", &error)),
        }
    }

    let sent_at = Instant::now();
    send_line(&mut writer, name.as_bytes(), deadline)
        .await
        .map_err(|error| fail("sending the name", &error))?;

    let welcome = format!("Welcome, {name}!");
    let mut welcomed = false;
    let mut in_history = false;
    let mut history_lines = 0u64;
    loop {
        let line = match lines.read_line(deadline).await {
            Ok(Some(line)) => line,
            Ok(None) => return Err(format!("{name}: closed during registration")),
            Err(error) => return Err(fail("registering", &error)),
        };
        if in_history {
            if line.starts_with(END_OF_HISTORY) {
                break;
            }
            history_lines += 1;
        } else if !welcomed {
            if line.starts_with(welcome.as_bytes()) {
                welcomed = true;
            } else {
                return Err(format!(
                    "{name}: refused: {}",
                    String::from_utf8_lossy(line)
                ));
            }
        } else if line.starts_with(HISTORY_HEADER) {
            in_history = true;
        }
        // Other lines between the welcome and the history header are ignored.
    }
    let registration = Registration {
        elapsed: sent_at.elapsed(),
        history_lines,
    };
    let client = Client {
        name: name.to_string(),
        lines,
        writer,
    };
    Ok((client, registration))
}

/// Runs the floor relay's registration on a fresh connection: waits for `name?` and sends
/// `name`. The floor answers nothing, so whether the name arrived is only seen later, when the
/// client receives a relayed line (the swarm's sync does that).
async fn register_floor(
    stream: Stream,
    name: &str,
    deadline: Instant,
) -> Result<(Client, Registration), String> {
    let mut writer = stream.clone();
    let mut lines = LineReader::new(stream);
    match lines.read_line(deadline).await {
        Ok(Some(FLOOR_PROMPT)) => {}
        Ok(Some(line)) => {
            return Err(format!(
                "{name}: expected the floor's {:?}, got {:?} (is --target right?)",
                String::from_utf8_lossy(FLOOR_PROMPT),
                String::from_utf8_lossy(line)
            ))
        }
        Ok(None) => return Err(format!("{name}: closed before the name prompt")),
        Err(error) => return Err(format!("{name}: waiting for the name prompt: {error}")),
    }
    let sent_at = Instant::now();
    send_line(&mut writer, name.as_bytes(), deadline)
        .await
        .map_err(|error| format!("{name}: sending the name: {error}"))?;
    let registration = Registration {
        elapsed: sent_at.elapsed(),
        history_lines: 0,
    };
    let client = Client {
        name: name.to_string(),
        lines,
        writer,
    };
    Ok((client, registration))
}

/// The source address for client number `index` when `per_source` clients share one address:
/// 127.0.0.1 for the first group, then 127.0.0.2 and so on, skipping .0 and .255 in the last
/// octet.
pub fn source_address(index: usize, per_source: usize) -> Option<Ipv4Addr> {
    if per_source == 0 {
        return None;
    }
    let group = u32::try_from(index / per_source).ok()?;
    let (high, low) = (group / 254, group % 254 + 1);
    if high > 0xffff {
        return None;
    }
    Some(Ipv4Addr::from((127u32 << 24) | (high << 8) | low))
}
