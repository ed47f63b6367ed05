//! The `smolchat` binary: parses the command line, starts logging, and hands off to [`app::run`].

use std::io::Write as _;
use std::process::ExitCode;

use smolchat::config::{Args, Subcommand};
use smolchat::{accounts, app};

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        // writeln!, not println!: a closed stdout (`smolchat --version | true`) is not a panic.
        let _ = writeln!(std::io::stdout(), "smolchat {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Some(Subcommand::Op(op)) = args.command {
        return match accounts::cli::run(op) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("smolchat op: {e}");
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
