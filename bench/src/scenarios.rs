//! The `idle` and `replay` scenarios: what a quiet connection costs the server in memory (for a
//! user of any door: `idle --transport nc|irc|web`), and how long a newcomer waits for the
//! history replay.

use std::time::{Duration, Instant};

use argh::FromArgs;
use smol::Timer;

use crate::client::{self, Target};
use crate::door::Door;
use crate::stats::{self, Histogram};
use crate::swarm;
use crate::{BenchError, Env, Result};

#[derive(FromArgs)]
#[argh(subcommand, name = "idle")]
/// Many registered clients that say nothing: server memory per connection.
pub struct IdleArgs {
    /// clients to connect (default 1000)
    #[argh(option, default = "1000")]
    pub clients: usize,
    /// seconds to keep the connections open after settling (default 2)
    #[argh(option, default = "2")]
    pub hold_secs: u64,
    /// the door every client comes through: nc (the line door, --addr), irc (--irc-addr) or web
    /// (--web-addr); --tls makes any of them TLS (default nc)
    #[argh(option, default = "Door::Line")]
    pub transport: Door,
}

/// Runs the `idle` scenario and prints its report.
pub async fn run_idle(env: &Env, args: &IdleArgs) -> Result<()> {
    let n = args.clients;
    if n == 0 {
        return Err(BenchError::new("--clients must be at least 1"));
    }
    let door = args.transport;
    println!(
        "idle ({}, {door} door, {}): {n} clients, held {} s",
        env.target,
        env.transport.name(),
        args.hold_secs
    );
    let before = env.probe.snapshot();
    eprintln!("connecting {n} {door} clients");
    let mut swarm = swarm::join_and_settle(env, &vec![door; n], n, 0).await?;
    let settled = env.probe.snapshot();
    let (joined_in, settled_in) = (
        swarm.joined_in.as_secs_f64(),
        swarm.settled_in.as_secs_f64(),
    );
    let mut registration = Histogram::default();
    for elapsed in &swarm.registrations {
        registration.record(*elapsed);
    }
    println!(
        "joined: {n} clients in {joined_in:.3} s ({:.0}/s), settled in {settled_in:.3} s; \
         registration ms p50 {:.3} p99 {:.3} max {:.3}",
        n as f64 / joined_in.max(1e-9),
        registration.quantile_ms(0.5),
        registration.quantile_ms(0.99),
        registration.max_ms()
    );

    let hold_until = env
        .deadline
        .min(Instant::now() + Duration::from_secs(args.hold_secs));
    // Idle clients keep reading, as connected clients do: IRC and web clients answer the
    // server's pings, so a long hold does not get them dropped as dead.
    swarm.clients = swarm::idle_until(env, swarm.clients, hold_until).await;
    Timer::at(hold_until).await;
    // The last sample is taken while every connection is still open, after the hold, so lazily
    // grown buffers are included.
    let held = env.probe.snapshot();
    drop(swarm);
    let per_client = match (before.server, held.server) {
        (Some(before), Some(held)) => {
            Some((held.rss_kib as f64 - before.rss_kib as f64) / n as f64)
        }
        _ => None,
    };
    if env.probe.watches_server() {
        println!(
            "server: rss {} KiB before, {} KiB settled, {} KiB after the hold = {} KiB per client",
            stats::rss(&before),
            stats::rss(&settled),
            stats::rss(&held),
            stats::opt(per_client, 2)
        );
    }
    println!(
        "RESULT scenario=idle target={} door={door} transport={} clients={n} join_s={joined_in:.3} settle_s={settled_in:.3} \
         register_p50_ms={:.3} register_p99_ms={:.3} register_max_ms={:.3} \
         server_rss_before_kib={} server_rss_settled_kib={} server_rss_after_kib={} \
         kib_per_client={}",
        env.target,
        if matches!(env.transport, client::Transport::Plain) { "plain" } else { "tls" },
        registration.quantile_ms(0.5),
        registration.quantile_ms(0.99),
        registration.max_ms(),
        stats::rss(&before),
        stats::rss(&settled),
        stats::rss(&held),
        stats::opt(per_client, 2)
    );
    Ok(())
}

#[derive(FromArgs)]
#[argh(subcommand, name = "replay")]
/// Fresh clients one after another: time to receive the history replay.
pub struct ReplayArgs {
    /// how many clients join, one at a time (default 50)
    #[argh(option, default = "50")]
    pub repeat: usize,
}

/// Runs the `replay` scenario and prints its report.
pub async fn run_replay(env: &Env, args: &ReplayArgs) -> Result<()> {
    let r = args.repeat;
    if r == 0 {
        return Err(BenchError::new("--repeat must be at least 1"));
    }
    if env.target != Target::Smolchat {
        return Err(BenchError::new(
            "replay measures the history replay, which only smolchat has (use --target smolchat)",
        ));
    }
    println!("replay: {r} clients joining one at a time");
    let before = env.probe.snapshot();
    let mut times = Vec::with_capacity(r);
    let mut history = Vec::with_capacity(r);
    let started = Instant::now();
    for index in 0..r {
        let name = format!("r{index}");
        let source = env.source_for(index);
        let (client, registration) = client::join(
            &env.transport,
            env.addr,
            source,
            None,
            env.target,
            &name,
            env.deadline,
        )
        .await
        .map_err(BenchError::new)?;
        times.push(registration.elapsed);
        history.push(registration.history_lines);
        // Closing before the next join keeps exactly one bench client in the room.
        drop(client);
    }
    let total = started.elapsed().as_secs_f64();
    let after = env.probe.snapshot();

    // A handful of samples: exact percentiles from the sorted list.
    times.sort();
    let at = |q: f64| {
        let rank = ((q * r as f64).ceil() as usize).clamp(1, r);
        times[rank - 1].as_secs_f64() * 1e3
    };
    let (p50, p99, max) = (at(0.5), at(0.99), at(1.0));
    let lines_min = history.iter().copied().min().unwrap_or(0);
    let lines_max = history.iter().copied().max().unwrap_or(0);
    let lines_mean = history.iter().sum::<u64>() as f64 / r as f64;
    println!(
        "replay ms: p50 {p50:.3}  p99 {p99:.3}  max {max:.3}; history lines per join: \
         min {lines_min} mean {lines_mean:.1} max {lines_max}; {r} joins in {total:.3} s"
    );
    let server_cpu = env.probe.server_cpu_secs(&before, &after);
    if env.probe.watches_server() {
        println!(
            "server: cpu {} s; rss {} KiB before, {} KiB after",
            stats::opt(server_cpu, 3),
            stats::rss(&before),
            stats::rss(&after)
        );
    }
    println!(
        "RESULT scenario=replay repeat={r} p50_ms={p50:.3} p99_ms={p99:.3} max_ms={max:.3} \
         history_lines_min={lines_min} history_lines_mean={lines_mean:.1} \
         history_lines_max={lines_max} total_s={total:.3} server_cpu_s={} \
         server_rss_before_kib={} server_rss_after_kib={}",
        stats::opt(server_cpu, 3),
        stats::rss(&before),
        stats::rss(&after)
    );
    Ok(())
}
