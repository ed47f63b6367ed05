//! Start-up and shutdown: wires the parts together around an executor the program owns.
//!
//! The executor is ours rather than smol's global one so that dropping it cancels every task that
//! outlived the shutdown grace time; only then is the history writer closed and joined, which
//! commits everything that was queued.

pub mod args;
mod catch_up;
pub mod cli;
pub mod maintenance;

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use async_signal::{Signal, Signals};
use log::{error, info, warn};
use smol::stream::StreamExt;
use smol::{Async, Executor};

use crate::accounts::Accounts;
use crate::app::args::Args;
use crate::cluster;
use crate::door::DoorKind;
use crate::metrics::{self, Metrics};
use crate::net::tls::Tls;
use crate::net::{server, socket as net};
use crate::storage::History;

/// Runs the server until SIGINT or SIGTERM. SIGHUP re-reads the bans and operator roles from the
/// database (changed by `smolchat ban` and `smolchat op`), and the TLS certificate and key.
/// Errors are one line, for the command line.
pub fn run(args: Args) -> Result<(), String> {
    let config = args.config()?;
    let listen = args.listeners()?;
    // Before anything else is opened: a bad certificate or key is the likeliest start-up error.
    let tls = match &listen.certificate {
        Some((cert, key)) => Some(Arc::new(Tls::load(cert, key)?)),
        None => None,
    };
    match net::raise_fd_limit() {
        Ok(limit) => info!("open-file limit is {limit}"),
        Err(e) => warn!("could not raise the open-file limit: {e}"),
    }
    let metrics = Metrics::new(args.cluster.is_some());
    let (history, writer, last_id, position) =
        History::open_with(&args.db, args.history_settings(metrics.writer())?)
            .map_err(|e| e.to_string())?;
    let plain = listen.plain.map(bind).transpose()?;
    let metrics_listener = args.metrics_listen.map(bind).transpose()?;
    let tls_listener = match &listen.tls {
        Some(settings) => Some(bind(settings.addr)?),
        None => None,
    };
    let irc_listener = listen.irc.map(bind).transpose()?;
    let irc_tls_listener = listen.irc_tls.map(bind).transpose()?;
    let web_listener = listen.web.map(bind).transpose()?;
    let web_tls_listener = listen.web_tls.map(bind).transpose()?;
    // Cluster mode: join, and store what this node missed, before anybody is served.
    let (cluster, last_id) = match &args.cluster {
        Some(url) => {
            let port = plain
                .as_ref()
                .or(tls_listener.as_ref())
                .map_or(0, |(_, addr)| addr.port());
            let name = args
                .node
                .clone()
                .unwrap_or_else(|| cluster::default_node_name(port));
            let timing = args.timing();
            let mut node = cluster::Node::start(url, &name, args.cluster_stream_max, timing)?;
            let last_id = catch_up::catch_up(&mut node, &history, &args.db, last_id, position)?;
            let stats = metrics.cluster().unwrap_or_default();
            (Some(node.run(stats)?), last_id)
        }
        None => (None, last_id),
    };
    // After catch-up, so the bans and topics loaded include the cluster's latest.
    let mut loaded = Accounts::load(&args.db, history.write_turns()).map_err(|e| e.to_string())?;
    loaded
        .accounts
        .limit_registrations(config.registrations_per_hour);
    let (link, cluster_threads) = match cluster {
        Some((link, incoming, threads)) => (Some((link, incoming)), Some(threads)),
        None => (None, None),
    };
    // SIGHUP always reloads something (bans and operators, and TLS when on), so it never stops
    // the server.
    let mut signals = Signals::new([Signal::Term, Signal::Int, Signal::Hup])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let reload = loaded.accounts.reload.clone();

    let threads = args.threads();
    let plain_addr = plain.as_ref().map(|(_, addr)| *addr);
    let tls_addr = tls_listener.as_ref().map(|(_, addr)| *addr);
    let irc_addr = irc_listener.as_ref().map(|(_, addr)| *addr);
    let irc_tls_addr = irc_tls_listener.as_ref().map(|(_, addr)| *addr);
    let web_addr = web_listener.as_ref().map(|(_, addr)| *addr);
    let web_tls_addr = web_tls_listener.as_ref().map(|(_, addr)| *addr);
    let on: Vec<(DoorKind, bool, SocketAddr)> = [
        (plain_addr, DoorKind::Line, false),
        (tls_addr, DoorKind::Line, true),
        (irc_addr, DoorKind::Irc, false),
        (irc_tls_addr, DoorKind::Irc, true),
        (web_addr, DoorKind::Web { tls: false }, false),
        (web_tls_addr, DoorKind::Web { tls: true }, true),
    ]
    .into_iter()
    .filter_map(|(addr, door, tls)| Some((door, tls, addr?)))
    .collect();
    server::log_start(&on, &config, threads);
    info!(
        "history in {} ({} messages so far), commits as soon as the last is on disk, plus {} ms",
        args.db.display(),
        last_id,
        args.commit_window().as_millis()
    );
    // Tests and scripts read the bound addresses (port 0 picks one) from these lines, plaintext
    // first.
    let mut stdout = std::io::stdout();
    if let Some(addr) = plain_addr {
        let _ = writeln!(stdout, "listening on {addr}");
    }
    if let Some(addr) = tls_addr {
        let _ = writeln!(stdout, "listening for TLS on {addr}");
    }
    if let Some(addr) = irc_addr {
        let _ = writeln!(stdout, "listening for IRC on {addr}");
    }
    if let Some(addr) = irc_tls_addr {
        let _ = writeln!(stdout, "listening for IRC over TLS on {addr}");
    }
    if let Some(addr) = web_addr {
        let _ = writeln!(stdout, "listening for web on {addr}");
    }
    if let Some(addr) = web_tls_addr {
        let _ = writeln!(stdout, "listening for web TLS on {addr}");
    }
    if let Some((_, addr)) = &metrics_listener {
        info!("metrics on http://{addr}{}", metrics::endpoint::PATH);
        let _ = writeln!(stdout, "metrics on {addr}");
    }
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

    // Serves scrapes until the executor is dropped, so also during the shutdown grace time.
    let metrics_task = metrics_listener.map(|(listener, _)| {
        executor.spawn(metrics::endpoint::serve(
            listener,
            metrics.clone(),
            executor.clone(),
        ))
    });
    // The one place listeners are mapped to doors.
    let mut listeners: Vec<server::Listener> = Vec::new();
    if let Some((socket, _)) = plain {
        let door = DoorKind::Line;
        listeners.push(server::Listener {
            socket,
            door,
            tls: None,
        });
    }
    if let (Some((socket, _)), Some(tls)) = (tls_listener, &tls) {
        let (door, tls) = (DoorKind::Line, Some(tls.clone()));
        listeners.push(server::Listener { socket, door, tls });
    }
    if let Some((socket, _)) = irc_listener {
        let (door, tls) = (DoorKind::Irc, None);
        listeners.push(server::Listener { socket, door, tls });
    }
    if let (Some((socket, _)), Some(tls)) = (irc_tls_listener, &tls) {
        let (door, tls) = (DoorKind::Irc, Some(tls.clone()));
        listeners.push(server::Listener { socket, door, tls });
    }
    if let Some((socket, _)) = web_listener {
        let door = DoorKind::Web { tls: false };
        listeners.push(server::Listener {
            socket,
            door,
            tls: None,
        });
    }
    if let (Some((socket, _)), Some(tls)) = (web_tls_listener, &tls) {
        let (door, tls) = (DoorKind::Web { tls: true }, Some(tls.clone()));
        listeners.push(server::Listener { socket, door, tls });
    }
    let shutdown = async move {
        while let Some(signal) = signals.next().await {
            match (signal, &tls) {
                (Ok(Signal::Hup), tls) => {
                    // The hub reads the database on the account thread, and logs it.
                    reload.request();
                    if let Some(tls) = tls {
                        info!("received SIGHUP, reloading the TLS certificate and key");
                        let tls = tls.clone();
                        // File reads block: keep them off the executor.
                        if let Err(e) = smol::unblock(move || tls.reload()).await {
                            error!("{e}; still using the previous certificate and key");
                        }
                    }
                }
                (Ok(signal), _) => {
                    info!("received {signal:?}, shutting down");
                    break;
                }
                (Err(e), _) => {
                    warn!("signal handling failed: {e}; shutting down");
                    break;
                }
            }
        }
    };
    let startup = server::Startup {
        listeners,
        config,
        history,
        last_id,
        accounts: loaded.accounts,
        saved: loaded.saved,
        cluster: link,
        executor: executor.clone(),
        metrics,
    };
    let stopped = smol::block_on(executor.run(server::run(startup, shutdown)));
    drop(metrics_task);

    stop_workers.close();
    for worker in workers {
        let _ = worker.join();
    }
    // Cancels tasks still running after the grace time, dropping their history handles.
    drop(executor);
    if let Some(threads) = cluster_threads {
        threads.close();
    }
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

/// Binds a listener and reads back its address (port 0 picks one).
fn bind(addr: SocketAddr) -> Result<(Async<TcpListener>, SocketAddr), String> {
    let listener = net::listen(addr)
        .and_then(Async::new)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener
        .get_ref()
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    Ok((listener, bound))
}
