//! The `fanout` scenario: N clients in one room, S of them sending M lines each, everybody
//! reading everything. It measures what a chat server mostly does — copying one line to many
//! readers — as deliveries per second and send-to-receive latency.
//!
//! Every line carries `s<sender> n<seq> t<nanos>`, the nanoseconds since the send phase began on
//! the bench's own monotonic clock, so latency needs no clock agreement with the server.
//!
//! Duplicates and reordering are counted per reader, per sender. A reader stops counting at its
//! last expected line, so once every reader is complete the probe sends an end marker and every
//! other reader reads on to it: a line delivered twice after the last one is counted too
//! (`tail_checked=yes` in the `RESULT` line says this check ran and every marker arrived).
//!
//! Pacing: with `--rate 0` (closed loop) each sender keeps at most `--window` lines in flight,
//! where "in flight" means sent but not yet seen by the probe, the last reading client (which
//! is never a sender). With `--rate R` each sender sends R lines per second regardless.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use smol::channel::{self, Receiver, Sender};
use smol::future;
use smol::Timer;

use crate::client::{self, Client, LineReader, ReadError};
use crate::stats::{self, Histogram};
use crate::swarm::{self, Swarm};
use crate::{BenchError, Env, Result};

/// Longest line the bench will send; the server refuses lines over 1024 bytes.
const MAX_BYTES: usize = 1000;

/// How long stalled clients are read at the end to find out whether the server closed them.
const STALL_CHECK: Duration = Duration::from_secs(2);

/// The notice the server sends a client it drops for not reading.
const KICKED: &[u8] = b"disconnected:";

/// The line the probe sends after the run, up to which every other reader keeps checking for
/// duplicates.
const END_MARKER: &[u8] = b"end";

#[derive(FromArgs)]
#[argh(subcommand, name = "fanout")]
/// Many readers, a few senders: delivery throughput and latency (the default scenario).
pub struct FanoutArgs {
    /// reading clients, senders included (default 1000)
    #[argh(option, default = "1000")]
    pub clients: usize,
    /// how many of the clients send (default 10)
    #[argh(option, default = "10")]
    pub senders: usize,
    /// lines each sender sends (default 200)
    #[argh(option, default = "200")]
    pub lines: u32,
    /// bytes per line, newline excluded (default 64)
    #[argh(option, default = "64")]
    pub bytes: usize,
    /// closed loop: lines per sender not yet seen by the probe client (default 8)
    #[argh(option, default = "8")]
    pub window: usize,
    /// open loop: lines per second per sender, ignoring --window; 0 means closed loop (default 0)
    #[argh(option, default = "0.0")]
    pub rate: f64,
    /// extra clients that register and then never read (default 0)
    #[argh(option, default = "0")]
    pub stall: usize,
    /// how long to wait for stragglers after the last line is sent, and for a full window to
    /// open, before giving up (default 10)
    #[argh(option, default = "10")]
    pub drain_secs: u64,
}

impl FanoutArgs {
    /// The arguments `fanout` gets with no options, used when no subcommand is given.
    pub fn defaults() -> Result<FanoutArgs> {
        FanoutArgs::from_args(&["fanout"], &[])
            .map_err(|exit| BenchError::new(format!("default fanout arguments: {}", exit.output)))
    }

    fn validate(&self) -> Result<()> {
        let fail = |message: String| Err(BenchError::new(message));
        if self.clients < 2 {
            return fail("--clients must be at least 2".into());
        }
        if self.senders == 0 || self.senders >= self.clients {
            return fail(format!(
                "--senders must be 1..{} (one reading client, the probe, never sends)",
                self.clients - 1
            ));
        }
        if self.lines == 0 || self.window == 0 {
            return fail("--lines and --window must be at least 1".into());
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return fail("--rate must be a non-negative number".into());
        }
        let shortest = format!("s{} n{} t{}", self.senders - 1, self.lines - 1, u64::MAX).len();
        if self.bytes < shortest || self.bytes > MAX_BYTES {
            return fail(format!(
                "--bytes must be {shortest}..{MAX_BYTES} for these options"
            ));
        }
        // Each client keeps one bit per line sent, so refuse runs where those bitmaps alone
        // would take more than 1 GiB.
        let bits = self.clients as u128 * self.senders as u128 * u128::from(self.lines);
        if bits / 8 > 1 << 30 {
            return fail("--clients x --senders x --lines is too large".into());
        }
        Ok(())
    }
}

/// Parameters every client task shares.
struct Plan {
    senders: u32,
    lines: u32,
    bytes: usize,
    rate: f64,
    /// How long a sender waits for a window slot before giving up (`--drain-secs`): lines the
    /// server lost never free their slot.
    stuck_after: Duration,
    /// The start of the send phase; line timestamps count nanoseconds from here.
    start: Instant,
    deadline: Instant,
    /// Set before the bench shuts down the read side of sockets to stop waiting for
    /// stragglers, so the readers can tell that end from the server closing.
    cut: AtomicBool,
    /// How many addresses (cluster nodes) the clients are spread over.
    nodes: u64,
}

/// How a client's reading ended.
#[derive(Clone, Debug, Default, PartialEq)]
enum End {
    /// It saw every line it expected.
    #[default]
    Complete,
    /// The server closed the connection.
    Closed,
    /// The server said the client was not reading fast enough.
    Kicked,
    /// The bench gave up waiting after `--drain-secs`.
    GaveUp,
    /// `--timeout-secs` passed.
    Timeout,
    /// The connection failed.
    Error(String),
}

/// What one client observed during the send phase.
#[derive(Default)]
struct ClientStats {
    /// Distinct bench lines seen.
    seen: u64,
    /// Bench lines seen more than once.
    duplicates: u64,
    /// Bench lines that arrived after a later line of the same sender.
    reordered: u64,
    /// Other lines (notices, anything unparsable).
    other: u64,
    latency: Histogram,
    /// With several `--addr`s (cluster nodes): the latency of lines whose sender is on another
    /// node than the reader.
    cross: Histogram,
    last_arrival: Option<Instant>,
    end: End,
    /// For senders: lines sent, and why sending stopped early if it did.
    sent: u64,
    send_error: Option<String>,
}

/// Runs the scenario and prints its report.
pub async fn run(env: &Env, args: &FanoutArgs) -> Result<()> {
    args.validate()?;
    let n = args.clients;
    let s = args.senders;
    let m = args.lines;
    let expected = s as u64 * u64::from(m) * (n as u64 - 1);
    let mode = if args.rate > 0.0 {
        format!("open loop at {} lines/s per sender", args.rate)
    } else {
        format!("closed loop, window {}", args.window)
    };
    println!(
        "fanout ({}): {n} clients (+{} stalled), {s} senders x {m} lines x {} bytes, {mode}",
        env.target, args.stall, args.bytes
    );

    let at_start = env.probe.snapshot();
    eprintln!("connecting {} clients to {}", n + args.stall, env.addr);
    let Swarm {
        clients,
        stalled,
        joined_in,
        settled_in,
        ..
    } = swarm::join_and_settle(env, n, args.stall).await?;
    println!(
        "joined: {} clients in {:.3} s ({:.0}/s), settled in {:.3} s",
        n + args.stall,
        joined_in.as_secs_f64(),
        (n + args.stall) as f64 / joined_in.as_secs_f64().max(1e-9),
        settled_in.as_secs_f64()
    );

    let before = env.probe.snapshot();
    let plan = Arc::new(Plan {
        senders: s as u32,
        lines: m,
        bytes: args.bytes,
        rate: args.rate,
        stuck_after: Duration::from_secs(args.drain_secs),
        start: Instant::now(),
        deadline: env.deadline,
        cut: AtomicBool::new(false),
        nodes: env.addrs.len() as u64,
    });

    // In closed-loop mode each sender owns a bounded channel of capacity `window`: it puts a
    // token in before sending a line, and the probe takes one out per line of that sender it
    // sees, so a full channel means `window` lines in flight.
    let closed_loop = args.rate <= 0.0;
    let credits: Vec<(Sender<()>, Receiver<()>)> = (0..if closed_loop { s } else { 0 })
        .map(|_| channel::bounded(args.window))
        .collect();
    let probe_index = n - 1;
    let (sent_tx, sent_rx) = channel::unbounded::<()>();
    let (finished_tx, finished_rx) = channel::unbounded::<()>();

    let mut read_halves = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    for (index, client) in clients.into_iter().enumerate() {
        read_halves.push(client.writer.clone());
        let sender = (index < s).then(|| SenderSide {
            id: index as u32,
            credits: credits.get(index).map(|(tx, _)| tx.clone()),
            done: sent_tx.clone(),
        });
        let probe: Vec<Receiver<()>> = if index == probe_index {
            credits.iter().map(|(_, rx)| rx.clone()).collect()
        } else {
            Vec::new()
        };
        let expected_here = u64::from(m) * (s as u64 - u64::from(index < s));
        tasks.push(env.ex.spawn(run_client(
            client,
            env.node_of(index) as u64,
            expected_here,
            sender,
            probe,
            plan.clone(),
            finished_tx.clone(),
        )));
    }
    drop((sent_tx, finished_tx, credits));

    // Wait until every sender is done, then give stragglers `--drain-secs` (all within the
    // overall deadline) before shutting down the read sides, which ends every pending read.
    let wait_for = |rx: Receiver<()>, count: usize, until: Instant| async move {
        let mut got = 0;
        while got < count {
            let next = future::or(async { rx.recv().await.is_ok() }, async {
                Timer::at(until).await;
                false
            });
            if !next.await {
                break;
            }
            got += 1;
        }
        got == count
    };
    wait_for(sent_rx, s, env.deadline).await;
    let drain_until = env
        .deadline
        .min(Instant::now() + Duration::from_secs(args.drain_secs));
    if !wait_for(finished_rx, n, drain_until).await {
        plan.cut.store(true, Ordering::SeqCst);
        for stream in &read_halves {
            // A socket the server already closed may refuse; its reader has ended anyway.
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
    }

    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await);
    }
    let send_end = Instant::now();
    let after = env.probe.snapshot();

    let mut latency = Histogram::default();
    let mut cross = Histogram::default();
    let (mut seen, mut duplicates, mut reordered, mut sent) = (0u64, 0u64, 0u64, 0u64);
    let mut last_arrival: Option<Instant> = None;
    let mut ends: Vec<(&str, usize)> = Vec::new();
    let mut errors = Vec::new();
    for (client, stats) in &results {
        latency.merge(&stats.latency);
        cross.merge(&stats.cross);
        seen += stats.seen;
        duplicates += stats.duplicates;
        reordered += stats.reordered;
        sent += stats.sent;
        last_arrival = last_arrival.max(stats.last_arrival);
        let label = match &stats.end {
            End::Complete => "complete",
            End::Closed => "closed_by_server",
            End::Kicked => "kicked_slow",
            End::GaveUp => "gave_up",
            End::Timeout => "timeout",
            End::Error(error) => {
                if errors.len() < 3 {
                    errors.push(format!("{}: {error}", client.name));
                }
                "error"
            }
        };
        match ends.iter_mut().find(|(name, _)| *name == label) {
            Some((_, count)) => *count += 1,
            None => ends.push((label, 1)),
        }
        if let Some(error) = &stats.send_error {
            if errors.len() < 3 {
                errors.push(format!("{}: {error}", client.name));
            }
        }
    }
    let elapsed = last_arrival
        .unwrap_or(send_end)
        .saturating_duration_since(plan.start)
        .as_secs_f64()
        .max(1e-9);
    let ratio = seen as f64 / expected as f64;
    let rate = seen as f64 / elapsed;
    let incomplete = n - ends
        .iter()
        .find(|(l, _)| *l == "complete")
        .map_or(0, |(_, c)| *c);

    // Only meaningful when every reader has seen every line: then any bench line is a repeat.
    let drain_until = env
        .deadline
        .min(Instant::now() + Duration::from_secs(args.drain_secs));
    let clients: Vec<Client> = results.into_iter().map(|(client, _)| client).collect();
    let (tail, _clients) = if incomplete == 0 {
        let (tail, clients) = check_tail(env, clients, drain_until).await;
        duplicates += tail.duplicates;
        (Some(tail), clients)
    } else {
        (None, clients)
    };
    let tail_checked = tail.as_ref().is_some_and(|tail| tail.missed == 0);

    println!(
        "sent: {sent} of {} lines; delivered {seen} of {expected} (ratio {ratio:.4}) in {elapsed:.3} s = {rate:.0} deliveries/s",
        s as u64 * u64::from(m)
    );
    println!(
        "latency ms: p50 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}",
        latency.quantile_ms(0.5),
        latency.quantile_ms(0.99),
        latency.max_ms(),
        latency.mean_ms()
    );
    if plan.nodes > 1 {
        println!(
            "cross-node latency ms ({} nodes): p50 {:.3}  p99 {:.3}  max {:.3}",
            plan.nodes,
            cross.quantile_ms(0.5),
            cross.quantile_ms(0.99),
            cross.max_ms()
        );
    }
    // Distinct lines every reader got, per second: the rate through the server (or the
    // cluster log) itself, whatever the fan-out.
    let lines_per_s = seen as f64 / (n as f64 - 1.0) / elapsed.max(1e-9);
    println!(
        "lines: {lines_per_s:.0}/s through the server (each to {} readers)",
        n - 1
    );
    let ends_text: Vec<String> = ends.iter().map(|(l, c)| format!("{l} {c}")).collect();
    println!(
        "readers: {}; duplicates {duplicates}, reordered {reordered}",
        ends_text.join(", ")
    );
    match &tail {
        Some(tail) if tail.missed > 0 => println!(
            "tail: {} readers never saw the end marker, so later duplicates may be uncounted",
            tail.missed
        ),
        Some(_) => {}
        None => println!("tail: not checked, because some readers were incomplete"),
    }
    for error in &errors {
        println!("  error: {error}");
    }

    let server_cpu = env.probe.server_cpu_secs(&before, &after);
    let bench_cpu = env.probe.bench_cpu_secs(&before, &after);
    let cpu_us_per_delivery = server_cpu
        .filter(|_| seen > 0)
        .map(|cpu| cpu * 1e6 / seen as f64);
    if env.probe.watches_server() {
        println!(
            "server: cpu {} s in the send phase ({} µs/delivery); rss {} KiB at start, {} KiB before sending, {} KiB after",
            stats::opt(server_cpu, 3),
            stats::opt(cpu_us_per_delivery, 3),
            stats::rss(&at_start),
            stats::rss(&before),
            stats::rss(&after)
        );
    }
    println!(
        "bench: cpu {} s in the send phase",
        stats::opt(bench_cpu, 3)
    );

    let stall_report = if stalled.is_empty() {
        StallReport::default()
    } else {
        let report = check_stalled(env, stalled).await;
        println!(
            "stalled: {} clients; {} disconnected by the server ({} told they were too slow), {} still open",
            args.stall, report.disconnected, report.told, report.open
        );
        report
    };

    println!(
        "RESULT scenario=fanout target={} clients={n} senders={s} lines={m} bytes={} window={} rate={} stall={} \
         sent={sent} expected={expected} delivered={seen} ratio={ratio:.4} elapsed_s={elapsed:.3} \
         deliveries_per_s={rate:.0} lines_per_s={lines_per_s:.0} nodes={} cross_p99_ms={:.3} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} mean_ms={:.3} \
         duplicates={duplicates} reordered={reordered} incomplete_readers={incomplete} \
         tail_checked={} \
         join_s={:.3} settle_s={:.3} server_cpu_s={} cpu_us_per_delivery={} \
         server_rss_start_kib={} server_rss_before_kib={} server_rss_after_kib={} bench_cpu_s={} \
         stalled_disconnected={} stalled_told={} stalled_open={}",
        env.target,
        args.bytes,
        if closed_loop { args.window } else { 0 },
        args.rate,
        args.stall,
        plan.nodes,
        cross.quantile_ms(0.99),
        latency.quantile_ms(0.5),
        latency.quantile_ms(0.99),
        latency.max_ms(),
        latency.mean_ms(),
        if tail_checked { "yes" } else { "no" },
        joined_in.as_secs_f64(),
        settled_in.as_secs_f64(),
        stats::opt(server_cpu, 3),
        stats::opt(cpu_us_per_delivery, 3),
        stats::rss(&at_start),
        stats::rss(&before),
        stats::rss(&after),
        stats::opt(bench_cpu, 3),
        stall_report.disconnected,
        stall_report.told,
        stall_report.open,
    );
    Ok(())
}

/// A sending client's share of the plan.
struct SenderSide {
    id: u32,
    /// The closed-loop window, absent in open-loop mode.
    credits: Option<Sender<()>>,
    /// Signalled once when this sender stops sending, for whatever reason.
    done: Sender<()>,
}

/// One client's send phase: it reads until it has seen every line it expects and, if it is a
/// sender, sends its lines at the same time. The client is handed back so its connection stays
/// open until every client is done; a client leaving early would add notices to the run.
async fn run_client(
    mut client: Client,
    node: u64,
    expected: u64,
    sender: Option<SenderSide>,
    probe: Vec<Receiver<()>>,
    plan: Arc<Plan>,
    finished: Sender<()>,
) -> (Client, ClientStats) {
    let Client { lines, writer, .. } = &mut client;
    let receive = async {
        let stats = receive_all(lines, node, expected, &probe, &plan).await;
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
        None => (receive.await, (0, None)),
    };
    (stats.sent, stats.send_error) = outcome;
    (client, stats)
}

/// Sends this sender's lines, returning how many went out and why it stopped early, if it did.
async fn send_all(
    writer: &mut client::Stream,
    side: SenderSide,
    plan: &Plan,
) -> (u64, Option<String>) {
    let mut line = Vec::with_capacity(plan.bytes + 1);
    let mut sent = 0u64;
    let mut error = None;
    for seq in 0..plan.lines {
        if plan.rate > 0.0 {
            let due = plan.start + Duration::from_secs_f64(f64::from(seq) / plan.rate);
            if due >= plan.deadline {
                error = Some("deadline reached before all lines were due".to_string());
                break;
            }
            Timer::at(due).await;
        } else if let Some(credits) = &side.credits {
            let give_up = plan.deadline.min(Instant::now() + plan.stuck_after);
            let slot = future::or(async { credits.send(()).await.is_ok() }, async {
                Timer::at(give_up).await;
                false
            });
            if !slot.await {
                error =
                    Some("window stayed full (lines lost, probe stopped, or deadline)".to_string());
                break;
            }
        }
        let nanos = u64::try_from(plan.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        format_line(&mut line, side.id, seq, nanos, plan.bytes);
        if let Err(failure) = client::write_bounded(writer, &line, plan.deadline).await {
            error = Some(format!("sending: {failure}"));
            break;
        }
        sent += 1;
    }
    let _ = side.done.send(()).await;
    (sent, error)
}

/// Writes `s<sender> n<seq> t<nanos> xxx…` padded to exactly `bytes` bytes, plus a newline.
fn format_line(line: &mut Vec<u8>, sender: u32, seq: u32, nanos: u64, bytes: usize) {
    use std::io::Write;
    line.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(line, "s{sender} n{seq} t{nanos}");
    if line.len() < bytes {
        line.push(b' ');
    }
    line.resize(bytes, b'x');
    line.push(b'\n');
}

/// Reads lines until `expected` distinct bench lines were seen or the stream ends.
async fn receive_all(
    lines: &mut LineReader,
    node: u64,
    expected: u64,
    probe: &[Receiver<()>],
    plan: &Plan,
) -> ClientStats {
    let mut stats = ClientStats::default();
    let per_sender = u64::from(plan.lines);
    let mut seen_bits = vec![0u64; (u64::from(plan.senders) * per_sender).div_ceil(64) as usize];
    let mut next_seq = vec![0u32; plan.senders as usize];
    while stats.seen < expected {
        let line = match lines.read_line(plan.deadline).await {
            Ok(Some(line)) => line,
            Ok(None) => {
                stats.end = if plan.cut.load(Ordering::SeqCst) {
                    End::GaveUp
                } else {
                    End::Closed
                };
                return stats;
            }
            Err(ReadError::Timeout) => {
                stats.end = End::Timeout;
                return stats;
            }
            Err(error) => {
                stats.end = End::Error(error.to_string());
                return stats;
            }
        };
        let Some((sender, seq, nanos)) = parse_token(line)
            .filter(|(sender, seq, _)| *sender < u64::from(plan.senders) && *seq < per_sender)
        else {
            if line.starts_with(KICKED) {
                stats.end = End::Kicked;
                return stats;
            }
            stats.other += 1;
            continue;
        };
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
    stats
}

/// Parses `NAME: s<sender> n<seq> t<nanos>…` into its three numbers.
fn parse_token(line: &[u8]) -> Option<(u64, u64, u64)> {
    // Names cannot contain ':', so the first one ends the name.
    let colon = line.iter().position(|&byte| byte == b':')?;
    let rest = line[colon + 1..].strip_prefix(b" s")?;
    let (sender, rest) = number(rest)?;
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

/// What reading on to the end marker found.
struct TailReport {
    /// Bench lines that arrived after the reader had seen every line: each one a repeat.
    duplicates: u64,
    /// Readers that did not see the end marker by the deadline.
    missed: usize,
}

/// Has the last client (the probe) send [`END_MARKER`] and every other client read up to it,
/// counting bench lines on the way. The clients are handed back so that none leaves (and
/// causes leave notices) before the others are done.
async fn check_tail(
    env: &Env,
    mut clients: Vec<Client>,
    until: Instant,
) -> (TailReport, Vec<Client>) {
    let mut report = TailReport {
        duplicates: 0,
        missed: clients.len().saturating_sub(1),
    };
    let Some(mut probe) = clients.pop() else {
        return (report, clients);
    };
    let mut marker = probe.name.clone().into_bytes();
    marker.extend_from_slice(b": ");
    marker.extend_from_slice(END_MARKER);
    let marker: Arc<[u8]> = Arc::from(marker);
    if client::send_line(&mut probe.writer, END_MARKER, until)
        .await
        .is_err()
    {
        clients.push(probe);
        return (report, clients);
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let marker = marker.clone();
            env.ex.spawn(async move {
                let mut repeats = 0u64;
                let seen_marker = loop {
                    match client.lines.read_line(until).await {
                        Ok(Some(line)) if *line == *marker => break true,
                        Ok(Some(line)) => repeats += u64::from(parse_token(line).is_some()),
                        Ok(None) | Err(_) => break false,
                    }
                };
                (client, repeats, seen_marker)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(tasks.len() + 1);
    for task in tasks {
        let (client, repeats, seen_marker) = task.await;
        report.duplicates += repeats;
        report.missed -= usize::from(seen_marker);
        clients.push(client);
    }
    clients.push(probe);
    (report, clients)
}

/// What the stalled clients found when finally read.
#[derive(Default)]
struct StallReport {
    /// Connections the server closed or reset.
    disconnected: usize,
    /// Of those, how many got the "not reading fast enough" notice first.
    told: usize,
    /// Connections still open after [`STALL_CHECK`].
    open: usize,
}

/// Reads each stalled client's backlog for up to [`STALL_CHECK`] to see whether the server
/// closed it.
async fn check_stalled(env: &Env, stalled: Vec<Client>) -> StallReport {
    let until = Instant::now() + STALL_CHECK;
    let tasks: Vec<_> = stalled
        .into_iter()
        .map(|mut client| {
            env.ex.spawn(async move {
                let mut told = false;
                loop {
                    match client.lines.read_line(until).await {
                        Ok(Some(line)) => told |= line.starts_with(KICKED),
                        Ok(None) => return (true, told),
                        Err(ReadError::Timeout) => return (false, told),
                        Err(_) => return (true, told),
                    }
                }
            })
        })
        .collect();
    let mut report = StallReport::default();
    for task in tasks {
        let (closed, told) = task.await;
        if closed {
            report.disconnected += 1;
            report.told += usize::from(told);
        } else {
            report.open += 1;
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A formatted line has exactly the requested size and parses back after a name prefix.
    #[test]
    fn line_round_trip() {
        let mut line = Vec::new();
        format_line(&mut line, 7, 123, 456_789, 64);
        assert_eq!(line.len(), 65);
        let mut received = b"b7: ".to_vec();
        received.extend_from_slice(&line[..64]);
        assert_eq!(parse_token(&received), Some((7, 123, 456_789)));
    }

    /// Notices and ordinary chat do not parse as bench lines.
    #[test]
    fn other_lines_are_ignored() {
        assert_eq!(parse_token(b"* b3 joined"), None);
        assert_eq!(parse_token(b"b0: sync"), None);
        assert_eq!(parse_token(b"b1: s1 n2"), None);
    }
}
