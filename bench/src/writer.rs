//! The `writer` scenario: drives the server's own history writer (`History::open`, group commit,
//! an fsync per commit) with no network in the way, and reports the lines per second it stores
//! and the CPU each costs. Unlike `fill-db`, which measures raw SQLite inserts, this includes
//! everything the production path does per line: the bounded queue to the writer thread,
//! timestamp formatting, batching, the search index's steps, and the final commit on close.
//! CPU is reported twice: the whole process (the appending thread too), and the history threads
//! alone (the process minus the appending thread, which is the main thread).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argh::FromArgs;
use smolchat::storage::{History, Record};
use smolchat::vocab::Kind;

use crate::stats::{clock_ticks_per_sec, sample_proc};
use crate::{BenchError, Context, Result};

/// Filler senders cycle through this many names.
const SENDERS: i64 = 10;

/// The deadline is checked once per this many appends, so the check costs nothing measurable.
const DEADLINE_EVERY: u64 = 4096;

#[derive(FromArgs)]
#[argh(subcommand, name = "writer")]
/// Append lines through the server's history writer (no server running): sustained lines/s.
pub struct WriterArgs {
    /// database file, created with the server's schema if missing
    #[argh(option)]
    pub db: PathBuf,
    /// lines to append (default 1000000)
    #[argh(option, default = "1_000_000")]
    pub records: u64,
    /// the writer's extra gathering delay in milliseconds, as the server's --commit-ms (default
    /// 0: commit as soon as the previous commit is on disk)
    #[argh(option, default = "0")]
    pub commit_ms: u64,
}

/// Runs `writer` and prints its report. Appends stop at `deadline`; what was queued by then is
/// still committed and counted.
pub fn run(args: &WriterArgs, deadline: Instant) -> Result<()> {
    let db = args.db.display();
    let (history, writer, last_id) = History::open(&args.db, Duration::from_millis(args.commit_ms))
        .context(|| format!("opening {db}"))?;
    println!(
        "writer: {} lines into {db} (gathering delay {} ms), last id there {last_id}",
        args.records, args.commit_ms
    );

    let room: Arc<str> = Arc::from("lobby");
    let senders: Vec<Arc<str>> = (0..SENDERS).map(|n| Arc::from(format!("w{n}"))).collect();
    // The main thread appends: the process's CPU minus its CPU is the history threads'.
    let main_thread = format!("self/task/{}", std::process::id());
    let cpu_before = sample_proc("self")?.cpu_ticks;
    let main_before = sample_proc(&main_thread)?.cpu_ticks;
    let started = Instant::now();
    let mut appended = 0u64;
    // One thread appends, as the hub does; `append` only waits when the writer's queue is full.
    while appended < args.records {
        if appended.is_multiple_of(DEADLINE_EVERY) && Instant::now() >= deadline {
            println!("stopped at --timeout-secs after {appended} appends");
            break;
        }
        let id = last_id + 1 + appended as i64;
        let body = format!("writer line {id:>12}: the quick brown fox jumps over the dog");
        let record = Record {
            id,
            at_ms: smolchat::clock::now_ms(),
            room: room.clone(),
            sender: senders[(id % SENDERS) as usize].clone(),
            kind: Kind::Message,
            body: Arc::from(body),
            log: None,
        };
        smol::block_on(history.append(record));
        appended += 1;
    }
    let queued_in = started.elapsed().as_secs_f64();
    // Dropping the last handle and closing lets the writer commit everything queued, then stop.
    drop(history);
    writer.close();
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let rate = appended as f64 / elapsed;
    let ticks = clock_ticks_per_sec() as f64;
    let cpu_s = sample_proc("self")?.cpu_ticks.saturating_sub(cpu_before) as f64 / ticks;
    let main_s = sample_proc(&main_thread)?
        .cpu_ticks
        .saturating_sub(main_before) as f64
        / ticks;
    let per_line_us = |secs: f64| secs * 1e6 / appended.max(1) as f64;
    let cpu_us = per_line_us(cpu_s);
    let writer_us = per_line_us((cpu_s - main_s).max(0.0));

    let connection = rusqlite::Connection::open(&args.db).context(|| format!("reopening {db}"))?;
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
        .context(|| format!("counting rows in {db}"))?;
    let stored: i64 = connection
        .query_row(
            "SELECT count(*) FROM messages WHERE id > ?1",
            [last_id],
            |row| row.get(0),
        )
        .context(|| format!("counting new rows in {db}"))?;
    let complete = stored as u64 == appended;
    println!(
        "appended {appended} lines in {queued_in:.3} s, all committed after {elapsed:.3} s = \
         {rate:.0} lines/s; {stored} new rows stored ({}), {rows} rows in total",
        if complete {
            "all of them"
        } else {
            "MISSING ROWS"
        }
    );
    println!(
        "CPU: {cpu_s:.3} s in all ({cpu_us:.2} us per line), {writer_us:.2} us per line in the \
         history threads"
    );
    println!(
        "RESULT scenario=writer records={appended} commit_ms={} queued_s={queued_in:.3} \
         elapsed_s={elapsed:.3} lines_per_s={rate:.0} cpu_us_per_line={cpu_us:.2} \
         writer_cpu_us_per_line={writer_us:.2} stored={stored} rows_total={rows} \
         complete={complete}",
        args.commit_ms
    );
    if complete {
        Ok(())
    } else {
        Err(BenchError::new(format!(
            "{appended} lines appended but {stored} stored"
        )))
    }
}
