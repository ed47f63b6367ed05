//! The `smolchat` binary: parses the command line, starts logging, and hands off to [`app::run`].

use std::io::Write as _;
use std::process::ExitCode;

use smolchat::app;
use smolchat::app::args::{Args, Subcommand};
use smolchat::app::maintenance;

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        // writeln!, not println!: a closed stdout (`smolchat --version | true`) is not a panic.
        let _ = writeln!(std::io::stdout(), "smolchat {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let command = match args.command.clone() {
        Some(Subcommand::Op(op)) => Some(("op", app::cli::run(op))),
        Some(Subcommand::Ban(ban)) => Some(("ban", app::cli::run_ban(ban))),
        Some(Subcommand::Account(account)) => Some(("account", app::cli::run_account(account))),
        Some(Subcommand::Backup(backup)) => Some(("backup", maintenance::run_backup(&backup))),
        Some(Subcommand::Compact(compact)) => Some(("compact", maintenance::run_compact(&compact))),
        // A damaged file is an answer, not an error: the report is printed, the exit is 1.
        Some(Subcommand::Check(check)) => match maintenance::run_check(&check) {
            Ok(true) => Some(("check", Ok(()))),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Some(("check", Err(e))),
        },
        None => None,
    };
    if let Some((name, result)) = command {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("smolchat {name}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let logger = simple_logger::SimpleLogger::new()
        .with_level(args.log_level)
        .with_utc_timestamps()
        .init();
    if let Err(e) = logger {
        eprintln!("smolchat: cannot start logging: {e}");
        return ExitCode::FAILURE;
    }
    match app::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smolchat: {e}");
            ExitCode::FAILURE
        }
    }
}
