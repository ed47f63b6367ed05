//! One client's part of the send phase: its sender sends its lines (in a closed loop of
//! `--window` lines in flight, or paced at `--rate`), and its reader reads until it has seen
//! every line it expects, checking each one for repeats and order.
//!
//! Every line carries `s<sender> n<seq> t<nanos>`, the nanoseconds since the send phase began on
//! the bench's own monotonic clock, so latency needs no clock agreement with the server, and
//! reads the same whichever door relayed it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::channel::{Receiver, Sender};
use smol::future;
use smol::Timer;

use crate::client::ReadError;
use crate::door::{Heard, Member, Reader, Writer};
use crate::stats::Histogram;

/// Parameters every client task shares.
pub struct Plan {
    pub senders: u32,
    pub lines: u32,
    pub bytes: usize,
    /// Lines per second per sender; 0 for the closed loop.
    pub rate: f64,
    /// How long a sender waits for a window slot before giving up (`--drain-secs`): lines the
    /// server lost never free their slot.
    pub stuck_after: Duration,
    /// The start of the send phase; line timestamps count nanoseconds from here.
    pub start: Instant,
    pub deadline: Instant,
    /// Set before the bench shuts down the read side of sockets to stop waiting for
    /// stragglers, so the readers can tell that end from the server closing.
    pub cut: AtomicBool,
    /// How many addresses (cluster nodes) the clients are spread over.
    pub nodes: u64,
}

/// How a client's reading ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum End {
    /// It saw every line it expected.
    #[default]
    Complete,
    /// The server closed the connection.
    Closed,
    /// The server said it was dropping the client (not reading fast enough, on the line door).
    Kicked,
    /// The bench gave up waiting after `--drain-secs`.
    GaveUp,
    /// `--timeout-secs` passed.
    Timeout,
    /// The connection failed.
    Error(String),
}

impl End {
    /// The name the report counts this end under.
    pub fn label(&self) -> &'static str {
        match self {
            End::Complete => "complete",
            End::Closed => "closed_by_server",
            End::Kicked => "kicked_slow",
            End::GaveUp => "gave_up",
            End::Timeout => "timeout",
            End::Error(_) => "error",
        }
    }
}

/// What one client observed during the send phase.
#[derive(Default)]
pub struct ClientStats {
    /// Distinct lines of other senders this reader expected.
    pub expected: u64,
    /// Distinct bench lines seen.
    pub seen: u64,
    /// Bench lines seen more than once.
    pub duplicates: u64,
    /// Bench lines that arrived after a later line of the same sender.
    pub reordered: u64,
    /// This client's own lines, sent back by its door (web; IRC with `echo-message`).
    pub echoes: u64,
    /// Other lines (notices, anything unparsable).
    pub other: u64,
    pub latency: Histogram,
    /// With several `--addr`s (cluster nodes): the latency of lines whose sender is on another
    /// node than the reader.
    pub cross: Histogram,
    pub last_arrival: Option<Instant>,
    pub end: End,
    /// For senders: lines sent, and why sending stopped early if it did.
    pub sent: u64,
    pub send_error: Option<String>,
    /// For paced senders: how late each line went out against its schedule. A bench that cannot
    /// keep up shows here, not as server latency.
    pub send_lag: Histogram,
}

/// A sending client's share of the plan.
pub struct SenderSide {
    pub id: u32,
    /// The closed-loop window, absent in paced mode.
    pub credits: Option<Sender<()>>,
    /// Signalled once when this sender stops sending, for whatever reason.
    pub done: Sender<()>,
}

/// What one client task is given.
pub struct Role {
    /// The cluster node the client is on.
    pub node: u64,
    /// Distinct lines of other senders it must see.
    pub expected: u64,
    pub sender: Option<SenderSide>,
    /// For the probe: the window of every sender, freed as their lines arrive.
    pub probe: Vec<Receiver<()>>,
}

/// One client's send phase: it reads until it has seen every line it expects and, if it is a
/// sender, sends its lines at the same time. The member is handed back so its connection stays
/// open until every client is done; a client leaving early would add notices to the run.
pub async fn run_client(
    mut member: Member,
    role: Role,
    plan: Arc<Plan>,
    finished: Sender<()>,
) -> (Member, ClientStats) {
    let Member { reader, writer, .. } = &mut member;
    let Role {
        node,
        expected,
        sender,
        probe,
    } = role;
    let own = sender.as_ref().map(|side| u64::from(side.id));
    let receive = async {
        let stats = receive_all(reader, node, expected, own, &probe, &plan).await;
        // Once the probe stops, nobody frees window slots: closing the channels makes blocked
        // senders stop instead of waiting for the deadline.
        for credits in &probe {
            credits.close();
        }
        let _ = finished.send(()).await;
        stats
    };
    let (mut stats, outcome) = match sender {
        Some(side) => future::zip(receive, send_all(writer, side, &plan)).await,
        None => (receive.await, Sent::default()),
    };
    stats.sent = outcome.sent;
    stats.send_error = outcome.error;
    stats.send_lag = outcome.lag;
    (member, stats)
}

/// What a sender did.
#[derive(Default)]
struct Sent {
    sent: u64,
    error: Option<String>,
    lag: Histogram,
}

/// Sends this sender's lines. Paced senders are staggered: sender `k` of `S` sends its lines
/// `k/S` of an interval after sender 0, so the room gets an even stream of lines rather than a
/// burst from every sender at once.
async fn send_all(writer: &mut Writer, side: SenderSide, plan: &Plan) -> Sent {
    let mut line = Vec::with_capacity(plan.bytes);
    let mut out = Sent::default();
    let offset = f64::from(side.id) / f64::from(plan.senders);
    for seq in 0..plan.lines {
        if plan.rate > 0.0 {
            let due = plan.start + Duration::from_secs_f64((f64::from(seq) + offset) / plan.rate);
            if due >= plan.deadline {
                out.error = Some("deadline reached before all lines were due".to_string());
                break;
            }
            Timer::at(due).await;
            out.lag
                .record(Instant::now().saturating_duration_since(due));
        } else if let Some(credits) = &side.credits {
            let give_up = plan.deadline.min(Instant::now() + plan.stuck_after);
            let slot = future::or(async { credits.send(()).await.is_ok() }, async {
                Timer::at(give_up).await;
                false
            });
            if !slot.await {
                out.error =
                    Some("window stayed full (lines lost, probe stopped, or deadline)".to_string());
                break;
            }
        }
        let nanos = u64::try_from(plan.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        format_line(&mut line, side.id, seq, nanos, plan.bytes);
        if let Err(failure) = writer.say(&line, plan.deadline).await {
            out.error = Some(format!("sending: {failure}"));
            break;
        }
        out.sent += 1;
    }
    let _ = side.done.send(()).await;
    out
}

/// Writes `s<sender> n<seq> t<nanos> xxx…` padded to exactly `bytes` bytes.
pub fn format_line(line: &mut Vec<u8>, sender: u32, seq: u32, nanos: u64, bytes: usize) {
    use std::io::Write;
    line.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(line, "s{sender} n{seq} t{nanos}");
    if line.len() < bytes {
        line.push(b' ');
    }
    line.resize(bytes, b'x');
}

/// Reads until `expected` distinct bench lines of other senders were seen or the stream ends.
/// `own` is this client's sender number, whose lines coming back are echoes, not deliveries.
async fn receive_all(
    reader: &mut Reader,
    node: u64,
    expected: u64,
    own: Option<u64>,
    probe: &[Receiver<()>],
    plan: &Plan,
) -> ClientStats {
    let mut stats = ClientStats {
        expected,
        ..ClientStats::default()
    };
    // One timer for the whole phase rather than one per read (see `Reader::next_untimed`).
    let timed_out = future::or(
        async {
            receive_loop(reader, node, own, probe, plan, &mut stats).await;
            false
        },
        async {
            Timer::at(plan.deadline).await;
            true
        },
    )
    .await;
    if timed_out {
        stats.end = End::Timeout;
    }
    stats
}

/// The body of [`receive_all`]: reads until `stats` holds every expected line, or sets how the
/// reading ended.
async fn receive_loop(
    reader: &mut Reader,
    node: u64,
    own: Option<u64>,
    probe: &[Receiver<()>],
    plan: &Plan,
    stats: &mut ClientStats,
) {
    let expected = stats.expected;
    let per_sender = u64::from(plan.lines);
    let mut seen_bits = vec![0u64; (u64::from(plan.senders) * per_sender).div_ceil(64) as usize];
    let mut next_seq = vec![0u32; plan.senders as usize];
    while stats.seen < expected {
        let text = match reader.next_untimed(plan.deadline).await {
            Ok(Some(Heard::Chat { text, .. })) => text,
            Ok(Some(Heard::Dropped)) => {
                stats.end = End::Kicked;
                return;
            }
            Ok(Some(Heard::Other)) => {
                stats.other += 1;
                continue;
            }
            Ok(None) => {
                stats.end = if plan.cut.load(Ordering::SeqCst) {
                    End::GaveUp
                } else {
                    End::Closed
                };
                return;
            }
            Err(ReadError::Timeout) => {
                stats.end = End::Timeout;
                return;
            }
            Err(error) => {
                stats.end = End::Error(error.to_string());
                return;
            }
        };
        let Some((sender, seq, nanos)) = parse_token(&text)
            .filter(|(sender, seq, _)| *sender < u64::from(plan.senders) && *seq < per_sender)
        else {
            stats.other += 1;
            continue;
        };
        if Some(sender) == own {
            stats.echoes += 1;
            continue;
        }
        let now = Instant::now();
        let bit = (sender * per_sender + seq) as usize;
        let (word, mask) = (bit / 64, 1u64 << (bit % 64));
        if seen_bits[word] & mask != 0 {
            stats.duplicates += 1;
            continue;
        }
        seen_bits[word] |= mask;
        stats.seen += 1;
        let sent_at = now.saturating_duration_since(plan.start).as_nanos();
        let took = u64::try_from(sent_at)
            .unwrap_or(u64::MAX)
            .saturating_sub(nanos);
        stats.latency.record_nanos(took);
        // Sender number k is client k, on node k mod N.
        if plan.nodes > 1 && sender % plan.nodes != node {
            stats.cross.record_nanos(took);
        }
        stats.last_arrival = Some(now);
        let next = &mut next_seq[sender as usize];
        if (seq as u32) < *next {
            stats.reordered += 1;
        } else {
            *next = seq as u32 + 1;
        }
        if let Some(credits) = probe.get(sender as usize) {
            // Frees one window slot of that sender; an empty channel means the slot was
            // already freed, which only happens for lines the sender did not send.
            let _ = credits.try_recv();
        }
    }
}

/// Parses a chat text `s<sender> n<seq> t<nanos>…` into its three numbers.
pub fn parse_token(text: &[u8]) -> Option<(u64, u64, u64)> {
    let (sender, rest) = number(text.strip_prefix(b"s")?)?;
    let (seq, rest) = number(rest.strip_prefix(b" n")?)?;
    let (nanos, _) = number(rest.strip_prefix(b" t")?)?;
    Some((sender, seq, nanos))
}

/// Splits a leading run of decimal digits off `bytes` and parses it.
fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let digits = bytes
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let value = bytes[..digits]
        .iter()
        .fold(0u64, |value, byte| value * 10 + u64::from(byte - b'0'));
    Some((value, &bytes[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A formatted line has exactly the requested size and parses back.
    #[test]
    fn line_round_trip() {
        let mut line = Vec::new();
        format_line(&mut line, 7, 123, 456_789, 64);
        assert_eq!(line.len(), 64);
        assert_eq!(parse_token(&line), Some((7, 123, 456_789)));
    }

    /// Sync lines, end markers and ordinary chat do not parse as bench lines.
    #[test]
    fn other_texts_are_ignored() {
        assert_eq!(parse_token(b"sync 1764000000000000000"), None);
        assert_eq!(parse_token(b"end"), None);
        assert_eq!(parse_token(b"s1 n2"), None);
        assert_eq!(parse_token(b"\x01ACTION s1 n2 t3\x01"), None);
    }
}
