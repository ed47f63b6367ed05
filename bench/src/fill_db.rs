//! The `fill-db` scenario: writes a large history straight into a database file while no server
//! runs. It prepares databases for the `replay` scenario and measures raw SQLite insert
//! throughput with the server's own schema and connection settings, which bounds how fast the
//! server's history writer can ever go.

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use argh::FromArgs;
use rusqlite::params;

use crate::{BenchError, Context, Result};

/// Filler senders cycle through this many names.
const SENDERS: u64 = 100;

/// Every this-many-th row is an action (`/me`) instead of a message.
const ACTION_EVERY: u64 = 10;

#[derive(FromArgs)]
#[argh(subcommand, name = "fill-db")]
/// Fill a history database offline (the server must not be running): SQLite insert throughput.
pub struct FillDbArgs {
    /// database file, created with the server's schema if missing
    #[argh(option)]
    pub db: PathBuf,
    /// rows to insert (default 100000)
    #[argh(option, default = "100_000")]
    pub rows: u64,
    /// room the rows belong to (default lobby)
    #[argh(option, default = "String::from(\"lobby\")")]
    pub room: String,
    /// rows per transaction (default 1000)
    #[argh(option, default = "1000")]
    pub batch: u64,
}

/// Runs `fill-db` and prints its report. Batches stop at `deadline`; the rows written by then
/// stay, and the report says how many there were.
pub fn run(args: &FillDbArgs, deadline: Instant) -> Result<()> {
    if args.batch == 0 {
        return Err(BenchError::new("--batch must be at least 1"));
    }
    if args.room.is_empty() {
        return Err(BenchError::new("--room must not be empty"));
    }
    let db = args.db.display();
    let mut connection =
        smolchat::storage::open_connection(&args.db).context(|| format!("opening {db}"))?;
    // As the server's writer does: triggers off, and each transaction's rows indexed for search
    // with one statement (FTS5 writes a segment per statement, so the per-row trigger would
    // make one per row and measure that instead), moving the index's mark over them in the same
    // transaction (the server indexes rows past the mark when it opens the file).
    connection
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER,
            false,
        )
        .context(|| "turning triggers off")?;
    let existing: i64 = connection
        .query_row("SELECT count(*) FROM messages", [], |row| row.get(0))
        .context(|| format!("counting rows in {db}"))?;
    println!(
        "fill-db: {} rows into {db} (room {}, {} per transaction), {existing} rows already there",
        args.rows, args.room, args.batch
    );

    // Timestamps are one millisecond apart and end now, so the history reads as recent. A second
    // run into the same file appends rows whose timestamps may precede the first run's last ones;
    // the server orders history by id, so replay is unaffected.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context(|| "reading the system clock")?
        .as_millis() as u64;
    let first_ms = now_ms.saturating_sub(args.rows);

    let started = Instant::now();
    let mut done = 0u64;
    while done < args.rows {
        if Instant::now() >= deadline {
            println!("stopped at --timeout-secs after {done} rows");
            break;
        }
        let end = args.rows.min(done + args.batch);
        let transaction = connection
            .transaction()
            .context(|| "starting a transaction")?;
        {
            let mut insert = transaction
                .prepare_cached(
                    "INSERT INTO messages (sent_at, sender, body, room, kind) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .context(|| "preparing the insert")?;
            for row in done..end {
                let (kind, body) = if row % ACTION_EVERY == ACTION_EVERY - 1 {
                    ("action", format!("waves at row {row}"))
                } else {
                    (
                        "message",
                        format!("filler line {row}: the quick brown fox jumps over the lazy dog"),
                    )
                };
                insert
                    .execute(params![
                        format_utc_millis(first_ms + row),
                        format!("f{}", row % SENDERS),
                        body,
                        args.room,
                        kind
                    ])
                    .context(|| format!("inserting row {row}"))?;
            }
            transaction
                .execute(
                    "INSERT INTO messages_fts (rowid, body, room)
                     SELECT id, body, room FROM messages
                     WHERE id > (SELECT through_id FROM search_indexed)",
                    [],
                )
                .context(|| "indexing the rows for search")?;
            transaction
                .execute(
                    "UPDATE search_indexed SET through_id = (SELECT max(id) FROM messages)",
                    [],
                )
                .context(|| "moving the search index's mark")?;
        }
        transaction
            .commit()
            .context(|| format!("committing rows {done}..{end}"))?;
        done = end;
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let rate = done as f64 / elapsed;
    let size_kib = std::fs::metadata(&args.db)
        .map(|meta| meta.len() / 1024)
        .unwrap_or(0);
    println!("inserted {done} rows in {elapsed:.3} s = {rate:.0} rows/s; database {size_kib} KiB");
    println!(
        "RESULT scenario=fill-db rows={done} batch={} elapsed_s={elapsed:.3} rows_per_s={rate:.0} \
         rows_total={} db_kib={size_kib}",
        args.batch,
        existing as u64 + done
    );
    Ok(())
}

/// Formats milliseconds since the UNIX epoch as UTC `YYYY-MM-DD HH:MM:SS.SSS`, the format of
/// the `sent_at` column.
fn format_utc_millis(millis: u64) -> String {
    let secs = millis / 1000;
    let (days, day_secs) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        day_secs / 3_600,
        day_secs % 3_600 / 60,
        day_secs % 60,
        millis % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants format as SQLite would print them.
    #[test]
    fn utc_format() {
        assert_eq!(format_utc_millis(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            format_utc_millis(951_782_400_123),
            "2000-02-29 00:00:00.123"
        );
        assert_eq!(
            format_utc_millis(1_798_761_599_999),
            "2026-12-31 23:59:59.999"
        );
    }
}
