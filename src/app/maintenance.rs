//! `smolchat backup`, `smolchat check` and `smolchat compact`: the database's upkeep from the
//! command line (docs/DEPLOY.md has the procedures that use them).
//!
//! This module parses their arguments and prints; the work, and all its SQL, is in
//! [`crate::storage::file`]. `backup` and `check` work while the server runs; `compact` needs
//! it stopped.

use std::io::Write as _;
use std::path::PathBuf;

use argh::FromArgs;

use crate::storage::file::{self, Facts};

/// copy the database to a new file while the server runs (SQLite's online backup)
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "backup")]
pub struct BackupArgs {
    /// the file to write; must not exist yet
    #[argh(positional)]
    pub dest: PathBuf,
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// check the database's integrity and say what it holds; exits 1 if it is damaged
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "check")]
pub struct CheckArgs {
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// rebuild the database: the search index without the words of removed messages, and a file
/// that --retention can shrink (the server must be stopped)
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "compact")]
pub struct CompactArgs {
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// Runs `backup`; errors are one line for the command line.
pub fn run_backup(args: &BackupArgs) -> Result<(), String> {
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let mut shown = 0;
    let copied = file::backup(&args.db, &args.dest, |done, total| {
        // Progress on stderr, about every 10%, for large files.
        let tenth = (total / 10).max(1);
        if total > 10_000 && done / tenth > shown {
            shown = done / tenth;
            let _ = writeln!(err, "copied {done} of {total} pages");
        }
    })
    .map_err(|e| format!("{}: {e}", args.db.display()))?;
    let _ = writeln!(
        out,
        "backed up {} to {}: {} pages, {} in {:.1} s",
        args.db.display(),
        args.dest.display(),
        copied.pages,
        mib(copied.bytes),
        copied.elapsed.as_secs_f64()
    );
    print_facts(&mut out, &copied.facts);
    Ok(())
}

/// Runs `check`. `Ok(false)` means the file is damaged: the caller exits non-zero.
pub fn run_check(args: &CheckArgs) -> Result<bool, String> {
    let mut out = std::io::stdout();
    let checked = file::check(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let _ = writeln!(
        out,
        "{}: {} (with its -wal)",
        args.db.display(),
        mib(checked.bytes)
    );
    if let Some(facts) = &checked.facts {
        print_facts(&mut out, facts);
    }
    if checked.problems.is_empty() {
        let _ = writeln!(out, "integrity: ok");
        return Ok(true);
    }
    let _ = writeln!(out, "integrity: DAMAGED");
    for problem in &checked.problems {
        let _ = writeln!(out, "  {problem}");
    }
    let _ = writeln!(
        out,
        "restore the latest good backup (docs/DEPLOY.md, \"Restore\")"
    );
    Ok(false)
}

/// Runs `compact`.
pub fn run_compact(args: &CompactArgs) -> Result<(), String> {
    let done = file::compact(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let _ = writeln!(
        std::io::stdout(),
        "compacted {}: {} before, {} after; from now on --retention shrinks it",
        args.db.display(),
        mib(done.bytes_before),
        mib(done.bytes_after)
    );
    Ok(())
}

fn print_facts(out: &mut impl std::io::Write, facts: &Facts) {
    let span = match (&facts.oldest, &facts.newest) {
        (Some(oldest), Some(newest)) => format!(", from {oldest} to {newest} UTC"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "messages: {} in {} rooms{span}",
        facts.messages, facts.rooms
    );
    if facts.removed > 0 {
        let _ = writeln!(out, "removed by --retention: {}", facts.removed);
    }
    let _ = writeln!(out, "accounts: {}", facts.accounts);
    let _ = writeln!(
        out,
        "schema version: {}; {} pages of {} bytes; {}",
        facts.schema_version,
        facts.pages,
        facts.page_size,
        if facts.shrinks {
            "incremental auto-vacuum (shrinks after --retention removes messages)"
        } else {
            "no auto-vacuum (`smolchat compact` lets --retention shrink it)"
        }
    );
}

/// Bytes as MiB with one decimal: `12.3 MiB`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
