//! Start-up and shutdown: wires the parts together around an executor the program owns.
//!
//! The executor is ours rather than smol's global one so that dropping it cancels every task that
//! outlived the shutdown grace time; only then is the history writer closed and joined, which
//! commits everything that was queued.

use std::io::Write as _;
use std::sync::Arc;

use async_signal::{Signal, Signals};
use log::{info, warn};
use smol::stream::StreamExt;
use smol::{Async, Executor};

use crate::accounts::Accounts;
use crate::config::Args;
use crate::net::{server, socket as net};
use crate::storage::History;

/// Runs the server until SIGINT or SIGTERM. Errors are one line, for the command line.
pub fn run(args: Args) -> Result<(), String> {
    let config = args.config()?;
    match net::raise_fd_limit() {
        Ok(limit) => info!("open-file limit is {limit}"),
        Err(e) => warn!("could not raise the open-file limit: {e}"),
    }
    let (history, writer, last_id) =
        History::open(&args.db, args.commit_window()).map_err(|e| e.to_string())?;
    let loaded = Accounts::load(&args.db).map_err(|e| e.to_string())?;
    let listener = net::listen(args.listen)
        .and_then(Async::new)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .get_ref()
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let mut signals = Signals::new([Signal::Term, Signal::Int])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    let threads = args.threads();
    server::log_start(addr, &config, threads);
    info!(
        "history in {} ({} messages so far), commit window {} ms",
        args.db.display(),
        last_id,
        args.commit_window().as_millis()
    );
    // Tests and scripts read the bound address (port 0 picks one) from this line.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {addr}");
    let _ = stdout.flush();

    let executor = Arc::new(Executor::new());
    let (stop_workers, workers_stop) = async_channel::bounded::<()>(1);
    let mut workers = Vec::new();
    for n in 1..threads {
        let executor = executor.clone();
        let stop = workers_stop.clone();
        let worker = std::thread::Builder::new()
            .name(format!("executor-{n}"))
            .spawn(move || smol::block_on(executor.run(stop.recv())))
            .map_err(|e| format!("cannot start executor thread: {e}"))?;
        workers.push(worker);
    }

    let shutdown = async move {
        if let Some(Ok(signal)) = signals.next().await {
            info!("received {signal:?}, shutting down");
        }
    };
    let stopped = smol::block_on(executor.run(server::run(
        listener,
        config,
        history,
        last_id,
        server::Moderation {
            accounts: loaded.accounts,
            topics: loaded.topics,
        },
        executor.clone(),
        shutdown,
    )));

    stop_workers.close();
    for worker in workers {
        let _ = worker.join();
    }
    // Cancels tasks still running after the grace time, dropping their history handles.
    drop(executor);
    loaded.thread.close();
    let lost = writer.close();
    if lost > 0 {
        return Err(format!(
            "{lost} messages could not be stored in {}",
            args.db.display()
        ));
    }
    if stopped == server::Stopped::HubFailed {
        return Err("stopped after an internal error (see the log)".into());
    }
    info!("stopped");
    Ok(())
}
