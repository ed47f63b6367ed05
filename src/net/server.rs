//! The listening sockets: accept connections, admit them, and give each its door's session in a
//! task of its own.
//!
//! Every listener opens one door ([`DoorKind`]), plaintext or over TLS. All of them feed the same
//! hub through the same [`Admission`], so the caps count every connection whichever port it came
//! in on; a TLS connection runs its handshake in its own task (see [`crate::net::tls`]) and then
//! its door's session. A connection refused at accept (a ban, the connect throttle, a cap) gets
//! its door's one line on a plaintext port, and a silent close on a TLS port (see
//! [`turn_away`]).
//!
//! Shutdown is a parameter, so tests and embedders can stop the server without a signal. The
//! accept loop never exits on an accept error: running out of descriptors is logged and backed
//! off, and service resumes when connections close.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use log::{debug, error, info, warn};
use smol::future::{self, FutureExt as _};
use smol::{Async, Executor, Task, Timer};

use crate::accounts::Accounts;
use crate::clock::SystemClock;
use crate::cluster::{self, Incoming};
use crate::config::Config;
use crate::door::{DoorKind, Doors, Session};
use crate::hub;
use crate::hub::outbox::Budget;
use crate::hub::render::Renderers;
use crate::limits::address;
use crate::limits::connects::Throttle;
use crate::metrics::{Id, Metrics};
use crate::net::admission::{self, Admission, Counted};
use crate::net::socket as net;
use crate::net::tls::Tls;
use crate::session::{Accepted, Services, TurnedAway};
use crate::storage::accounts::Saved;
use crate::storage::History;
use crate::vocab::MemberId;

/// Connections accepted in a row before the accept loop lets other tasks run.
const ACCEPT_YIELD_EVERY: u64 = 64;

/// Intents that may wait for the hub before sessions wait too.
const HUB_QUEUE: usize = 4096;

/// First and longest pause after an accept error: long enough not to spin on a full descriptor
/// table, short enough to resume promptly once descriptors free up.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The window of `--connects-per-minute`.
const CONNECT_WINDOW: Duration = Duration::from_secs(60);

/// One listening socket and the door it opens.
pub struct Listener {
    pub socket: Async<TcpListener>,
    pub door: DoorKind,
    /// For a TLS listener, the configuration its handshakes use (reloadable).
    pub tls: Option<Arc<Tls>>,
}

/// Everything the server starts with, built once by `app/`.
pub struct Startup {
    pub listeners: Vec<Listener>,
    pub config: Config,
    pub history: History,
    /// The newest message id stored.
    pub last_id: i64,
    pub accounts: Accounts,
    /// The topics, mutes and operator roles stored, for the hub.
    pub saved: Saved,
    /// In cluster mode, the link to the cluster log and what its threads report.
    pub cluster: Option<(cluster::Link, Receiver<Incoming>)>,
    pub executor: Arc<Executor<'static>>,
    /// Counts connections and refusals at accept, and watches the outboxes' bytes and the
    /// connections waiting for a name.
    pub metrics: Metrics,
}

/// Why the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown future resolved.
    Requested,
    /// The hub failed (a bug): the server shut down rather than run on without one.
    HubFailed,
}

/// What every accept loop shares.
#[derive(Clone)]
struct Accepting {
    services: Arc<Services>,
    doors: Doors,
    admission: Arc<Admission>,
    executor: Arc<Executor<'static>>,
    /// Every connection's task holds a clone; when the last is dropped, all have ended.
    alive: Sender<()>,
    /// Member ids are unique across every listener.
    next_id: Arc<AtomicU64>,
}

/// Runs the server until `shutdown` resolves, then tells every user, flushes their outboxes for at
/// most the configured grace time, and returns. The caller stops the history writer afterwards.
pub async fn run(startup: Startup, shutdown: impl Future<Output = ()>) -> Stopped {
    let Startup {
        listeners,
        config,
        history,
        last_id,
        accounts,
        saved,
        cluster,
        executor,
        metrics,
    } = startup;
    let link = cluster.as_ref().map(|(link, _)| link.clone());
    let (hub_tx, hub_rx) = async_channel::bounded(HUB_QUEUE);
    let (control_tx, control_rx) = async_channel::unbounded();
    let budget = Budget::new(config.outbox_total_bytes);
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    // Closed when the hub's task ends, which before shutdown can only mean it panicked.
    let (hub_alive, hub_gone) = async_channel::bounded::<()>(1);
    let mut renderers = Renderers::default();
    let doors = Doors::register(&mut renderers, &config);
    let setup = hub::Setup {
        stats: metrics.hub(),
        history: history.clone(),
        last_id,
        bans: accounts.bans.clone(),
        store: accounts.store.clone(),
        saved,
        cluster,
        budget: budget.clone(),
        renderers,
        clock: Arc::new(SystemClock),
    };
    let hub = hub::run(
        setup,
        hub_rx,
        (control_tx.clone(), control_rx),
        stop_rx.clone(),
    );
    let hub = executor.spawn(async move {
        if AssertUnwindSafe(hub).catch_unwind().await.is_err() {
            error!("the hub panicked; shutting down");
        }
        drop(hub_alive);
    });
    let (alive, all_done) = async_channel::bounded::<()>(1);
    let grace = config.shutdown_grace;
    let admission = Admission::new(config.max_unregistered, metrics.clone());
    let admission = Arc::new(admission);
    let services = Arc::new(Services {
        admission: admission.clone(),
        output_budget: budget,
        config,
        hub: hub_tx.clone(),
        history,
        stopping: stop_rx,
        cluster: link,
        accounts,
        metrics: metrics.clone(),
    });
    watch(&metrics, &services, &admission);
    let accepting = Accepting {
        services: services.clone(),
        doors,
        admission: admission.clone(),
        executor: executor.clone(),
        alive,
        next_id: Arc::new(AtomicU64::new(1)),
    };
    let loops: Vec<Task<()>> = listeners
        .into_iter()
        .map(|listener| executor.spawn(accept_loop(listener, accepting.clone())))
        .collect();
    drop(accepting);
    // SIGHUP's reload requests, handed to the hub (which reads the database off itself).
    let reloads = async {
        loop {
            services.accounts.reload.requested().await;
            if control_tx.send(hub::Control::Reload).await.is_err() {
                future::pending::<()>().await;
            }
        }
    };
    let stopped = future::or(
        async {
            reloads.await;
            Stopped::Requested
        },
        future::or(
            async {
                shutdown.await;
                Stopped::Requested
            },
            async {
                let _ = hub_gone.recv().await;
                Stopped::HubFailed
            },
        ),
    )
    .await;

    // Stop accepting (dropping the loops cancels them and closes the listeners); closing `stop`
    // tells the hub (which tells everybody) and the sessions still choosing a name; then outboxes
    // get the grace time to drain.
    drop(loops);
    stop_tx.close();
    drop((services, hub_tx));
    let drained = future::or(async { all_done.recv().await.is_err() }, async {
        Timer::after(grace).await;
        false
    })
    .await;
    if !drained {
        let open = admission.active();
        warn!(
            "{open} connections still open after {} s, closing them",
            grace.as_secs()
        );
    }
    // With every session gone the hub's queue closes and it stops; stragglers are cancelled when
    // the caller drops the executor.
    let _ = future::or(hub, async {
        Timer::after(Duration::from_millis(500)).await;
    })
    .await;
    stopped
}

/// Accepts on one listener until cancelled.
async fn accept_loop(listener: Listener, accepting: Accepting) {
    let config = &accepting.services.config;
    let mut accepted: u64 = 0;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut last_warning: Option<Instant> = None;
    let mut throttle = config
        .connects_per_minute
        .map(|n| Throttle::new(n, CONNECT_WINDOW));
    loop {
        let (stream, mut peer) = match listener.socket.get_ref().accept() {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = listener.socket.readable().await {
                    error!("listener failed: {e}");
                    Timer::after(ACCEPT_BACKOFF_MAX).await;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of descriptors (EMFILE) and friends: the pending connection stays in the
                // backlog, so accepting again at once would spin. Log at most once a second.
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    let what = match net::is_resource_exhaustion(&e) {
                        true => "out of resources",
                        false => "accept failed",
                    };
                    warn!("{what}: {e}; retrying in {} ms", backoff.as_millis());
                    last_warning = Some(Instant::now());
                }
                Timer::after(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d: count it as a.b.c.d.
        let mut ip = peer.ip().to_canonical();
        if config.test_loopback_as_ipv6 {
            ip = address::loopback_as_ipv6(ip);
            peer.set_ip(ip);
        }
        accepted += 1;
        if accepted.is_multiple_of(ACCEPT_YIELD_EVERY) {
            // A flood of connections must not starve the sessions sharing this thread.
            future::yield_now().await;
        }
        // Refused before any other work: a banned or flooding address costs one line.
        let bans = &accepting.services.accounts.bans;
        if let Some(why) = admission::screen(ip, bans, config, throttle.as_mut()) {
            turn_away(stream, (peer, &listener), &accepting, &why);
            continue;
        }
        // A trusted proxy's clients are counted under their forwarded addresses at the upgrade,
        // not all of them under the proxy's.
        let counted = match listener.door {
            DoorKind::Web { .. } if config.trusts_proxy(ip) => Counted::AtUpgrade,
            _ => Counted::AtAccept,
        };
        let door = (
            listener.door.metrics_door(),
            listener.tls.is_some(),
            counted,
        );
        let (ticket, place) = match accepting.admission.admit(ip, config, door) {
            Ok(admitted) => admitted,
            Err(why) => {
                turn_away(stream, (peer, &listener), &accepting, &why);
                continue;
            }
        };
        if let Err(e) = net::tune(&stream) {
            debug!("{peer}: socket options: {e}");
        }
        let stream = match Async::new(stream) {
            Ok(stream) => stream,
            Err(e) => {
                warn!("{peer}: cannot register socket: {e}");
                continue;
            }
        };
        let tls = listener.tls.as_ref();
        debug!(
            "{peer}: connected{}",
            if tls.is_some() { " (TLS)" } else { "" }
        );
        let accepted = Accepted {
            id: accepting.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            // Set here, so that a TLS handshake counts against the time to choose a name.
            deadline: Instant::now() + config.register_timeout,
            // TLS, or a loopback peer: a safe place for a password.
            secure: tls.is_some() || (ip.is_loopback() && config.trust_loopback_for_passwords),
            tls: tls.is_some(),
            place,
        };
        let (id, door) = (accepted.id, listener.door);
        let services = accepting.services.clone();
        let hub = services.hub.clone();
        let session = match tls {
            None => accepting.doors.session(door, stream, accepted, services),
            Some(tls) => handshake_then(
                tls.clone(),
                stream,
                accepted,
                (accepting.doors.clone(), door),
                services,
            ),
        };
        let alive = accepting.alive.clone();
        accepting
            .executor
            .spawn(guarded(session, (hub, id, peer), (ticket, alive)))
            .detach();
    }
}

/// A TLS connection's task: the handshake, then its door's session. The handshake is boxed and
/// awaited before the session starts, so its state (the connection mid-handshake, the acceptor)
/// is freed once it is done instead of sizing the task for the session's life: inline, it made
/// each idle TLS task 5.8 KB. It holds a place among those waiting for a name, so it can be
/// evicted like them (silently: there is no TLS channel to say why on yet).
fn handshake_then(
    tls: Arc<Tls>,
    stream: Async<TcpStream>,
    accepted: Accepted,
    (doors, door): (Doors, DoorKind),
    services: Arc<Services>,
) -> Session {
    Box::pin(async move {
        let (peer, deadline) = (accepted.peer, accepted.deadline);
        let stopping = services.stopping.clone();
        let handshake = Box::pin(future::or(
            tls.handshake(stream, peer, deadline, &stopping),
            async {
                accepted.place.evicted().await;
                crate::limits::waiting::log_eviction(peer);
                None
            },
        ))
        .await;
        if let Some(stream) = handshake {
            drop((tls, stopping));
            doors.session(door, stream, accepted, services).await;
        }
    })
}

/// Runs a connection's session so that a bug in it ends that connection, not the executor
/// thread running it (and with it every other session on that thread). `held` (the admission
/// ticket and the liveness sender) is let go when the session ends.
///
/// The session comes boxed, and this is an `async` block, not an `async fn` wrapped in another
/// block: an `async fn` keeps each argument twice, and awaiting a future held in a block keeps
/// it twice again, which made every connection's task 328 bytes around its session (and, when
/// the session itself was inline, four times the session's size).
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn guarded<H: Send + 'static>(
    session: Session,
    (hub, id, peer): (Sender<hub::Intent>, MemberId, SocketAddr),
    held: H,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        if AssertUnwindSafe(session).catch_unwind().await.is_err() {
            error!("{peer}: session panicked; connection closed");
            // Free the name at once (leaving twice is harmless).
            let _ = hub.try_send(hub::Intent::Quit { id, reason: None });
        }
        drop(held);
    }
}

/// Refuses a connection: with its door's one line on a plaintext port, without a word on a TLS
/// port. A TLS client reads plaintext as a broken record (`WRONG_VERSION_NUMBER`, "corrupt
/// message"), which says less than a plain close; and telling it in TLS would mean a handshake,
/// the most expensive thing a connection costs, for exactly the addresses being refused (banned,
/// flooding, over a cap, or a full server). The log, aggregated by kind, still says why.
fn turn_away(
    stream: TcpStream,
    (peer, listener): (SocketAddr, &Listener),
    accepting: &Accepting,
    why: &TurnedAway,
) {
    let words = accepting.doors.turned_away(listener.door, why);
    // The log gets the sentence, not a door's framing of it (a web door's HTTP answer).
    accepting
        .admission
        .refused(peer, why, &crate::door::line::words::turned_away(why));
    match listener.tls {
        Some(_) => net::close_quietly(stream),
        None => net::refuse(stream, &words),
    }
}

/// Publishes the limits and watches the gauges only this module reaches: the bytes queued in
/// all outboxes and the connections waiting for a name, read when scraped.
fn watch(metrics: &Metrics, services: &Services, admission: &Admission) {
    let config = &services.config;
    metrics.set_limits(config.max_clients, config.outbox_total_bytes);
    let budget = services.output_budget.clone();
    metrics.watch(Id::OutboxBytes, move || budget.used() as f64);
    let waiting = admission.waiting.clone();
    metrics.watch(Id::ConnectionsUnnamed, move || waiting.len() as f64);
}

/// Logs what the server is listening on and its limits: `127.0.0.1:7878 and TLS on
/// 127.0.0.1:7879` (a door other than the line door is named).
pub fn log_start(on: &[(DoorKind, bool, SocketAddr)], config: &Config, threads: usize) {
    let on: Vec<String> = on
        .iter()
        .map(|(door, tls, addr)| {
            let tls = if *tls { "TLS on " } else { "" };
            let door = match door {
                DoorKind::Line => String::new(),
                DoorKind::Irc => " (IRC)".to_owned(),
                DoorKind::Web { .. } => " (web)".to_owned(),
            };
            format!("{tls}{addr}{door}")
        })
        .collect();
    info!(
        "listening on {} ({threads} threads, max {} clients, {} per address)",
        on.join(" and "),
        config.max_clients,
        config.max_per_ip
    );
}
