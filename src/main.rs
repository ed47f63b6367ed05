//! The `smolchat` binary: parses the command line, starts logging, and hands off to [`app::run`].

use std::process::ExitCode;

use smolchat::{app, config::Args};

fn main() -> ExitCode {
    let args: Args = argh::from_env();
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
