//! The `search` scenario: one client runs `/search` queries one after another and times each
//! from sending the line to reading the end of its page, as a user would wait for it. Meant for
//! a history made by `fill-db` (its default queries use fill-db's words), with the server's
//! rate limit off.

use std::time::{Duration, Instant};

use argh::FromArgs;

use crate::client::{self, Target};
use crate::stats;
use crate::{BenchError, Env, Result};

/// The end marker of a `/search` page.
const END_OF_SEARCH: &[u8] = b"--- end of search";

#[derive(FromArgs)]
#[argh(subcommand, name = "search")]
/// One client runs /search queries one at a time: time to receive a page of matches.
pub struct SearchArgs {
    /// times each query is run (default 50)
    #[argh(option, default = "50")]
    pub repeat: usize,
    /// the queries, separated by `|` (default: fill-db's words: a row number, a word of every
    /// row, a word of one row in ten, a prefix, a phrase, an absent word)
    #[argh(
        option,
        default = "String::from(\"123456|fox|waves|qui*|\\\"lazy dog\\\"|zebra\")"
    )]
    pub queries: String,
    /// the room to search, joined first (default lobby)
    #[argh(option, default = "String::from(\"lobby\")")]
    pub room: String,
}

/// Runs the `search` scenario and prints its report.
pub async fn run(env: &Env, args: &SearchArgs) -> Result<()> {
    if args.repeat == 0 {
        return Err(BenchError::new("--repeat must be at least 1"));
    }
    if env.target != Target::Smolchat {
        return Err(BenchError::new(
            "search needs smolchat's /search (use --target smolchat)",
        ));
    }
    let queries: Vec<&str> = args.queries.split('|').map(str::trim).collect();
    let deadline = env.deadline;
    let (mut client, _) = client::join(
        &env.transport,
        env.addr,
        env.source_for(0),
        None,
        env.target,
        "searcher",
        deadline,
    )
    .await
    .map_err(BenchError::new)?;
    if args.room != "lobby" {
        let join = format!("/join {}", args.room);
        client::send_line(&mut client.writer, join.as_bytes(), deadline)
            .await
            .map_err(|e| BenchError::new(format!("sending /join: {e}")))?;
        read_until(&mut client, b"--- end of history", deadline).await?;
    }
    println!(
        "search: {} queries in {}, {} times each",
        queries.len(),
        args.room,
        args.repeat
    );
    let before = env.probe.snapshot();
    let mut result = String::from("RESULT scenario=search");
    result.push_str(&format!(" repeat={}", args.repeat));
    for (n, query) in queries.iter().enumerate() {
        let line = format!("/search {query}");
        let mut times = Vec::with_capacity(args.repeat);
        let mut hits = 0;
        for _ in 0..args.repeat {
            let sent = Instant::now();
            client::send_line(&mut client.writer, line.as_bytes(), deadline)
                .await
                .map_err(|e| BenchError::new(format!("sending {line}: {e}")))?;
            hits = read_until(&mut client, END_OF_SEARCH, deadline).await?;
            times.push(sent.elapsed());
        }
        let (p50, p99, max) = quantiles(&mut times);
        println!("  {query:24} {hits:>3} hits  ms p50 {p50:.3}  p99 {p99:.3}  max {max:.3}");
        let q = n + 1;
        result.push_str(&format!(
            " q{q}_hits={hits} q{q}_p50_ms={p50:.3} q{q}_p99_ms={p99:.3} q{q}_max_ms={max:.3}"
        ));
    }
    let after = env.probe.snapshot();
    let cpu = env.probe.server_cpu_secs(&before, &after);
    if env.probe.watches_server() {
        println!("server: cpu {} s", stats::opt(cpu, 3));
    }
    result.push_str(&format!(" server_cpu_s={}", stats::opt(cpu, 3)));
    println!("{result}");
    Ok(())
}

/// Reads lines up to one starting with `marker`; returns how many stamped lines (matches or
/// history lines) came before it.
async fn read_until(client: &mut client::Client, marker: &[u8], deadline: Instant) -> Result<u64> {
    let mut stamped = 0;
    loop {
        match client.lines.read_line(deadline).await {
            Ok(Some(line)) if line.starts_with(marker) => return Ok(stamped),
            Ok(Some(line)) => stamped += u64::from(line.starts_with(b"[")),
            Ok(None) => return Err(BenchError::new("the server closed the connection")),
            Err(e) => return Err(BenchError::new(format!("reading a page: {e}"))),
        }
    }
}

/// p50, p99 and max in milliseconds of a handful of samples, from the sorted list.
fn quantiles(times: &mut [Duration]) -> (f64, f64, f64) {
    times.sort();
    let n = times.len();
    let at = |q: f64| {
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        times[rank - 1].as_secs_f64() * 1e3
    };
    (at(0.5), at(0.99), at(1.0))
}
