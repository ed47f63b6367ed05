//! The `fanout` scenario: N clients in one room, S of them sending M lines each, everybody
//! reading everything. It measures what a chat server mostly does — copying one line to many
//! readers — as deliveries per second and send-to-receive latency.
//!
//! The room may be filled from several doors (`--mix nc=50,irc=50`): the report then gives each
//! door's readers their own delivery count and latency beside the totals, and the server CPU per
//! delivery is the room's. The line format and every check are the same whichever door relayed
//! a line (see `traffic`).
//!
//! Duplicates and reordering are counted per reader, per sender. A reader stops counting at its
//! last expected line, so once every reader is complete the probe sends an end marker and every
//! other reader reads on to it: a line delivered twice after the last one is counted too
//! (`tail_checked=yes` in the `RESULT` line says this check ran and every marker arrived).
//!
//! Pacing: with `--rate 0` (closed loop) each sender keeps at most `--window` lines in flight,
//! where "in flight" means sent but not yet seen by the probe, the last reading client (which
//! is never a sender). With `--rate R` each sender sends R lines per second regardless, for
//! `--lines` lines or `--duration-secs` seconds, the senders staggered evenly (the big room:
//! `--clients 5000 --senders 20 --rate 10 --duration-secs 30`).

mod report;
mod tail;
mod traffic;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use smol::channel::{self, Receiver, Sender};
use smol::future;
use smol::Timer;

use crate::door::{Door, Member};
use crate::fanout::report::{ratio, Totals};
use crate::fanout::tail::StallReport;
use crate::fanout::traffic::{ClientStats, Plan, Role, SenderSide};
use crate::mix::Mix;
use crate::stats;
use crate::swarm::{self, Swarm};
use crate::{BenchError, Env, Result};

/// Longest line the bench will send; the server refuses lines over 1024 bytes.
const MAX_BYTES: usize = 1000;

/// Longest line when IRC clients send or read: an IRC line is at most 512 bytes with its
/// command, channel and (relayed) the sender's `nick!user@host`; longer texts are refused or
/// split, which would not measure the same thing.
const MAX_IRC_BYTES: usize = 400;

/// Lines per sender when neither `--lines` nor `--duration-secs` is given.
const DEFAULT_LINES: u32 = 200;

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
    /// lines each sender sends (default 200, or --rate x --duration-secs)
    #[argh(option)]
    pub lines: Option<u32>,
    /// bytes per line, newline excluded (default 64)
    #[argh(option, default = "64")]
    pub bytes: usize,
    /// closed loop: lines per sender not yet seen by the probe client (default 8)
    #[argh(option, default = "8")]
    pub window: usize,
    /// paced (open loop): lines per second per sender, ignoring --window, senders staggered
    /// evenly; 0 means closed loop (default 0)
    #[argh(option, default = "0.0")]
    pub rate: f64,
    /// paced: send for this many seconds at --rate (instead of --lines)
    #[argh(option)]
    pub duration_secs: Option<f64>,
    /// the doors clients come through, as shares: nc=50,irc=50 or nc=1,web=1 (IRC clients need
    /// --irc-addr, web clients --web-addr); senders and the probe are spread over them too
    /// (default nc)
    #[argh(option, default = "Mix::only(Door::Line)")]
    pub mix: Mix,
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

    /// Checks the options and returns the lines each sender sends.
    fn validate(&self) -> Result<u32> {
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
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return fail("--rate must be a non-negative number".into());
        }
        let lines = match (self.lines, self.duration_secs) {
            (Some(_), Some(_)) => return fail("give --lines or --duration-secs, not both".into()),
            (Some(lines), None) => lines,
            (None, None) => DEFAULT_LINES,
            (None, Some(secs)) if self.rate > 0.0 && secs > 0.0 && secs.is_finite() => {
                (self.rate * secs).round().clamp(1.0, f64::from(u32::MAX)) as u32
            }
            (None, Some(_)) => {
                return fail("--duration-secs needs a positive --rate and duration".into())
            }
        };
        if lines == 0 || self.window == 0 {
            return fail("--lines and --window must be at least 1".into());
        }
        let shortest = format!("s{} n{} t{}", self.senders - 1, lines - 1, u64::MAX).len();
        let longest = if self.mix.doors().any(|door| door == Door::Irc) {
            MAX_IRC_BYTES
        } else {
            MAX_BYTES
        };
        if self.bytes < shortest || self.bytes > longest {
            return fail(format!(
                "--bytes must be {shortest}..{longest} for these options"
            ));
        }
        // Each client keeps one bit per line sent, so refuse runs where those bitmaps alone
        // would take more than 1 GiB.
        let bits = self.clients as u128 * self.senders as u128 * u128::from(lines);
        if bits / 8 > 1 << 30 {
            return fail("--clients x --senders x --lines is too large".into());
        }
        Ok(lines)
    }
}

/// Runs the scenario and prints its report.
pub async fn run(env: &Env, args: &FanoutArgs) -> Result<()> {
    let m = args.validate()?;
    let n = args.clients;
    let s = args.senders;
    let expected = s as u64 * u64::from(m) * (n as u64 - 1);
    let paced = args.rate > 0.0;
    let mode = if paced {
        format!(
            "paced at {} lines/s per sender ({:.1} s)",
            args.rate,
            f64::from(m) / args.rate
        )
    } else {
        format!("closed loop, window {}", args.window)
    };
    let doors = args.mix.assign(n + args.stall);
    println!(
        "fanout ({}, {}): {n} clients (+{} stalled), {s} senders x {m} lines x {} bytes, {mode}",
        env.target, args.mix, args.stall, args.bytes
    );

    let at_start = env.probe.snapshot();
    eprintln!("connecting {} clients", n + args.stall);
    let Swarm {
        clients,
        stalled,
        joined_in,
        settled_in,
        ..
    } = swarm::join_and_settle(env, &doors, n, args.stall).await?;
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
    let credits: Vec<(Sender<()>, Receiver<()>)> = (0..if paced { 0 } else { s })
        .map(|_| channel::bounded(args.window))
        .collect();
    let probe_index = n - 1;
    let (sent_tx, sent_rx) = channel::unbounded::<()>();
    let (finished_tx, finished_rx) = channel::unbounded::<()>();

    let mut tasks = Vec::with_capacity(n);
    let mut cuts = Vec::with_capacity(n);
    for (index, member) in clients.into_iter().enumerate() {
        cuts.push(member.read_cut());
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
        let role = Role {
            node: env.node_of(index) as u64,
            expected: u64::from(m) * (s as u64 - u64::from(index < s)),
            sender,
            probe,
        };
        tasks.push(env.ex.spawn(traffic::run_client(
            member,
            role,
            plan.clone(),
            finished_tx.clone(),
        )));
    }
    drop((sent_tx, finished_tx, credits));

    // Wait until every sender is done, then give stragglers `--drain-secs` (all within the
    // overall deadline) before shutting down the read sides, which ends every pending read.
    wait_for(sent_rx, s, env.deadline).await;
    let drain_until = env
        .deadline
        .min(Instant::now() + Duration::from_secs(args.drain_secs));
    let mut results: Vec<(Member, ClientStats)> = Vec::with_capacity(n);
    if !wait_for(finished_rx, n, drain_until).await {
        plan.cut.store(true, Ordering::SeqCst);
        for cut in &cuts {
            // A socket the server already closed may refuse; its reader has ended anyway.
            let _ = cut.cut();
        }
    }
    for task in tasks {
        results.push(task.await);
    }
    let send_end = Instant::now();
    let after = env.probe.snapshot();

    let totals = Totals::of(&results);
    let elapsed = totals
        .last_arrival
        .unwrap_or(send_end)
        .saturating_duration_since(plan.start)
        .as_secs_f64()
        .max(1e-9);
    let seen = totals.seen;
    let ratio = ratio(seen, expected);
    let rate = seen as f64 / elapsed;
    let incomplete = totals.incomplete();

    // Only meaningful when every reader has seen every line: then any bench line is a repeat.
    let drain_until = env
        .deadline
        .min(Instant::now() + Duration::from_secs(args.drain_secs));
    let members: Vec<Member> = results.into_iter().map(|(member, _)| member).collect();
    let mut duplicates = totals.duplicates;
    let (tail, _members) = if incomplete == 0 {
        let (tail, members) = tail::check_tail(env, members, s, drain_until).await;
        duplicates += tail.duplicates;
        (Some(tail), members)
    } else {
        (None, members)
    };
    let tail_checked = tail.as_ref().is_some_and(|tail| tail.missed == 0);

    println!(
        "sent: {} of {} lines; delivered {seen} of {expected} (ratio {ratio:.4}) in {elapsed:.3} s = {rate:.0} deliveries/s",
        totals.sent,
        s as u64 * u64::from(m)
    );
    let latency = &totals.latency;
    println!(
        "latency ms: p50 {:.3}  p99 {:.3}  max {:.3}  mean {:.3}",
        latency.quantile_ms(0.5),
        latency.quantile_ms(0.99),
        latency.max_ms(),
        latency.mean_ms()
    );
    totals.print_doors();
    if plan.nodes > 1 {
        println!(
            "cross-node latency ms ({} nodes): p50 {:.3}  p99 {:.3}  max {:.3}",
            plan.nodes,
            totals.cross.quantile_ms(0.5),
            totals.cross.quantile_ms(0.99),
            totals.cross.max_ms()
        );
    }
    if paced {
        println!(
            "pacing: lines went out late by p99 {:.3} ms, max {:.3} ms (the bench's own lag)",
            totals.send_lag.quantile_ms(0.99),
            totals.send_lag.max_ms()
        );
    }
    // Distinct lines every reader got, per second: the rate through the server (or the
    // cluster log) itself, whatever the fan-out.
    let lines_per_s = seen as f64 / (n as f64 - 1.0) / elapsed.max(1e-9);
    println!(
        "lines: {lines_per_s:.0}/s through the server (each to {} readers)",
        n - 1
    );
    println!(
        "readers: {}; duplicates {duplicates}, reordered {}, echoes {}",
        totals.ends_text(),
        totals.reordered,
        totals.echoes
    );
    match &tail {
        Some(tail) if tail.missed > 0 => println!(
            "tail: {} readers never saw the end marker, so later duplicates may be uncounted",
            tail.missed
        ),
        Some(_) => {}
        None => println!("tail: not checked, because some readers were incomplete"),
    }
    for error in &totals.errors {
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
        let report = tail::check_stalled(env, stalled).await;
        println!(
            "stalled: {} clients; {} disconnected by the server ({} told they were too slow), {} still open",
            args.stall, report.disconnected, report.told, report.open
        );
        report
    };

    let irc_caps = if doors.contains(&Door::Irc) {
        format!(" irc_caps={}", env.doors.irc_caps.label())
    } else {
        String::new()
    };
    println!(
        "RESULT scenario=fanout target={} clients={n} senders={s} lines={m} bytes={} window={} rate={} \
         duration_s={:.3} stall={} \
         sent={} expected={expected} delivered={seen} ratio={ratio:.4} elapsed_s={elapsed:.3} \
         deliveries_per_s={rate:.0} lines_per_s={lines_per_s:.0} nodes={} cross_p99_ms={:.3} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} mean_ms={:.3} \
         duplicates={duplicates} reordered={} echoes={} incomplete_readers={incomplete} \
         tail_checked={} send_lag_p99_ms={:.3} send_lag_max_ms={:.3} \
         join_s={:.3} settle_s={:.3} server_cpu_s={} cpu_us_per_delivery={} \
         server_rss_start_kib={} server_rss_before_kib={} server_rss_after_kib={} bench_cpu_s={} \
         stalled_disconnected={} stalled_told={} stalled_open={} {}{irc_caps}",
        env.target,
        args.bytes,
        if paced { 0 } else { args.window },
        args.rate,
        if paced { f64::from(m) / args.rate } else { 0.0 },
        args.stall,
        totals.sent,
        plan.nodes,
        totals.cross.quantile_ms(0.99),
        latency.quantile_ms(0.5),
        latency.quantile_ms(0.99),
        latency.max_ms(),
        latency.mean_ms(),
        totals.reordered,
        totals.echoes,
        if tail_checked { "yes" } else { "no" },
        totals.send_lag.quantile_ms(0.99),
        totals.send_lag.max_ms(),
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
        totals.result_keys(),
    );
    Ok(())
}

/// Waits for `count` signals on `rx` until `until`; whether they all came.
async fn wait_for(rx: Receiver<()>, count: usize, until: Instant) -> bool {
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
}
