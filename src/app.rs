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

use crate::cluster;
use crate::config::Args;
use crate::hub;
use crate::net::{server, socket as net};
use crate::storage::History;

/// Runs the server until SIGINT or SIGTERM. Errors are one line, for the command line.
pub fn run(args: Args) -> Result<(), String> {
    let config = args.config()?;
    match net::raise_fd_limit() {
        Ok(limit) => info!("open-file limit is {limit}"),
        Err(e) => warn!("could not raise the open-file limit: {e}"),
    }
    let (history, writer, last_id, position) =
        History::open_at(&args.db, args.commit_window()).map_err(|e| e.to_string())?;
    let listener = net::listen(args.listen)
        .and_then(Async::new)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .get_ref()
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    // Cluster mode: join, and store what this node missed, before anybody is served.
    let (cluster, last_id) = match &args.cluster {
        Some(url) => {
            let name = args
                .node
                .clone()
                .unwrap_or_else(|| cluster::default_node_name(addr.port()));
            let mut node = cluster::Node::start(url, &name, args.cluster_stream_max)?;
            let last_id = hub::cluster::catch_up(&mut node, &history, last_id, position)?;
            (Some(node.run()?), last_id)
        }
        None => (None, last_id),
    };
    let (link, cluster_threads) = match cluster {
        Some((link, incoming, threads)) => (
            Some(hub::cluster::ClusterLink { link, incoming }),
            Some(threads),
        ),
        None => (None, None),
    };
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
        executor.clone(),
        link,
        shutdown,
    )));

    stop_workers.close();
    for worker in workers {
        let _ = worker.join();
    }
    // Cancels tasks still running after the grace time, dropping their history handles.
    drop(executor);
    if let Some(threads) = cluster_threads {
        threads.close();
    }
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
