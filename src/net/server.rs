//! The listening sockets: accept connections, apply the connection limits, and give each
//! admitted connection its own task.
//!
//! There is a plaintext listener, a TLS listener, or both. Both feed the same hub through the
//! same [`Admission`], so the caps count every connection whichever port it came in on; a TLS
//! connection runs its handshake in its own task (see [`crate::net::tls`]) and then the same session.
//! A connection refused at accept (a ban, the connect throttle, a cap) gets its reason in one line
//! on the plaintext port, and a silent close on the TLS port (see [`refuse_on`]).
//!
//! Connections still choosing a name (or in their TLS handshake) may hold at most
//! `--max-unregistered` places: past that, or when the server is full, a newcomer evicts the
//! oldest of them ([`crate::limits::waiting`]), so connections that never register cannot keep
//! a real user out. An evicted connection counts against the caps until its task has ended
//! (at once: it gets one line and is closed without lingering), so the counts stay true to the
//! descriptors in use.
//!
//! Shutdown is a parameter, so tests and embedders can stop the server without a signal. The
//! accept loop never exits on an accept error: running out of descriptors is logged and backed
//! off, and service resumes when connections close.

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use smol::future::{self, FutureExt as _};
use smol::{Async, Executor, Timer};

use crate::accounts::Accounts;
use crate::clock;
use crate::config::Config;
use crate::hub;
use crate::hub::outbox::Budget;
use crate::limits::address;
use crate::limits::connects::Throttle;
use crate::limits::waiting::{Place, Waiting};
use crate::metrics::{Connected, Door, Id, Metrics, Refusal};
use crate::net::socket as net;
use crate::net::tls::Tls;
use crate::protocol;
use crate::session::{self, Shared};
use crate::storage::History;

/// Connections accepted in a row before the accept loop lets other tasks run.
const ACCEPT_YIELD_EVERY: u64 = 64;

/// Events that may wait for the hub before sessions wait too.
const HUB_QUEUE: usize = 4096;

/// First and longest pause after an accept error: long enough not to spin on a full descriptor
/// table, short enough to resume promptly once descriptors free up.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Accounts, bans and stored topics, loaded before the server starts.
pub struct Moderation {
    pub accounts: Accounts,
    /// Room name to (topic, set by).
    pub topics: HashMap<String, (String, String)>,
    /// The mutes in force.
    pub mutes: Vec<crate::storage::accounts::StoredMute>,
    /// Operator accounts, and whether each was made on the command line.
    pub operators: Vec<(String, bool)>,
}

/// The window of `--connects-per-minute`.
const CONNECT_WINDOW: Duration = Duration::from_secs(60);

/// Why the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown future resolved.
    Requested,
    /// The hub failed (a bug): the server shut down rather than run on without one.
    HubFailed,
}

/// What the server accepts connections on: at least one of the two.
pub struct Listeners {
    pub plain: Option<Async<TcpListener>>,
    /// The TLS listener and the configuration its handshakes use (reloadable).
    pub tls: Option<(Async<TcpListener>, Arc<Tls>)>,
}

/// Runs the server until `shutdown` resolves, then tells every user, flushes their outboxes for at
/// most the configured grace time, and returns. The caller stops the history writer afterwards.
/// `cluster` is `None` on a single node. `metrics` counts connections and refusals at accept,
/// and watches the outboxes' bytes and the connections waiting for a name.
// Each argument is a separately owned part the caller built (and some tests build without the
// others); a struct bundling them would only move this list elsewhere.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    listeners: Listeners,
    config: Config,
    history: History,
    last_id: i64,
    moderation: Moderation,
    executor: Arc<Executor<'static>>,
    cluster: Option<hub::cluster::ClusterLink>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> Stopped {
    let link = cluster.as_ref().map(|c| c.link.clone());
    let accounts = moderation.accounts.clone();
    let (hub_tx, hub_rx) = async_channel::bounded(HUB_QUEUE);
    let output_budget = Budget::new(config.outbox_total_bytes);
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    // Closed when the hub's task ends, which before shutdown can only mean it panicked.
    let (hub_alive, hub_gone) = async_channel::bounded::<()>(1);
    let hub = executor.spawn({
        let setup = hub::moderation::Setup {
            accounts: moderation.accounts,
            topics: moderation.topics,
            mutes: moderation.mutes,
            operators: moderation.operators,
        };
        let hub = hub::run_with(
            hub_rx,
            stop_rx.clone(),
            history.clone(),
            last_id,
            setup,
            cluster,
            output_budget.clone(),
        );
        async move {
            if AssertUnwindSafe(hub).catch_unwind().await.is_err() {
                error!("the hub panicked; shutting down");
            }
            drop(hub_alive);
        }
    });
    // Every session holds a clone of `alive`; when the last one is dropped, `all_done` resolves.
    let (alive, all_done) = async_channel::bounded::<()>(1);
    let grace = config.shutdown_grace;
    let shared = Arc::new(Shared {
        output_budget,
        config,
        hub: hub_tx.clone(),
        history,
        stopping: stop_rx,
        cluster: link,
        accounts,
    });
    let admission = Arc::new(Admission::new(
        shared.config.max_unregistered,
        metrics.clone(),
    ));
    watch(&metrics, &shared, &admission);
    // Member ids are unique across both listeners.
    let next_id = AtomicU64::new(1);
    let accepting = Accepting {
        shared: &shared,
        admission: &admission,
        executor: &executor,
        alive: &alive,
        next_id: &next_id,
    };

    let stopped = future::or(
        async {
            let plain = async {
                match &listeners.plain {
                    Some(listener) => accept_loop(listener, None, &accepting).await,
                    None => future::pending().await,
                }
            };
            let tls = async {
                match &listeners.tls {
                    Some((listener, tls)) => accept_loop(listener, Some(tls), &accepting).await,
                    None => future::pending().await,
                }
            };
            // SIGHUP's reload requests, handed to the hub (which reads the database off itself).
            let reloads = async {
                loop {
                    shared.accounts.reload.requested().await;
                    let event = hub::Event::Moderate {
                        id: hub::moderation::NOBODY,
                        action: hub::moderation::Action::Reload {
                            events: hub_tx.clone(),
                        },
                    };
                    if hub_tx.send(event).await.is_err() {
                        future::pending::<()>().await;
                    }
                }
            };
            future::or(future::or(plain, tls), reloads).await;
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

    // Stop accepting; closing `stop` tells the hub (which tells everybody) and the sessions still
    // choosing a name; then outboxes get the grace time to drain.
    drop(listeners);
    stop_tx.close();
    drop((alive, shared, hub_tx));
    let drained = future::or(async { all_done.recv().await.is_err() }, async {
        Timer::after(grace).await;
        false
    })
    .await;
    if !drained {
        warn!(
            "{} connections still open after {} s, closing them",
            admission.active(),
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

/// What every accept loop shares.
struct Accepting<'a> {
    shared: &'a Arc<Shared>,
    admission: &'a Arc<Admission>,
    executor: &'a Arc<Executor<'static>>,
    alive: &'a async_channel::Sender<()>,
    next_id: &'a AtomicU64,
}

/// Accepts on one listener until cancelled; `tls` is set for the TLS listener.
async fn accept_loop(
    listener: &Async<TcpListener>,
    tls: Option<&Arc<Tls>>,
    accepting: &Accepting<'_>,
) {
    let Accepting {
        shared,
        admission,
        executor,
        alive,
        next_id,
    } = *accepting;
    let mut accepted: u64 = 0;
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut last_warning: Option<Instant> = None;
    let mut throttle = shared
        .config
        .connects_per_minute
        .map(|n| Throttle::new(n, CONNECT_WINDOW));
    loop {
        let (stream, peer) = match listener.get_ref().accept() {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if let Err(e) = listener.readable().await {
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
                    let what = if net::is_resource_exhaustion(&e) {
                        "out of resources"
                    } else {
                        "accept failed"
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
        let mut peer = peer;
        if shared.config.test_loopback_as_ipv6 {
            ip = address::loopback_as_ipv6(ip);
            peer.set_ip(ip);
        }
        accepted += 1;
        if accepted.is_multiple_of(ACCEPT_YIELD_EVERY) {
            // A flood of connections must not starve the sessions sharing this thread.
            future::yield_now().await;
        }
        // Refused before any other work: a banned or flooding address costs one line.
        if let Some(reason) = screen(ip, shared, throttle.as_mut()) {
            // Aggregated like every refusal: a flooding address must not write the log.
            let (key, kind) = if reason.starts_with("too many connections") {
                ("refused: connect rate", Refusal::ConnectRate)
            } else {
                ("refused: banned address", Refusal::BannedAddress)
            };
            admission.metrics.refused(kind);
            crate::log_throttled!(log::Level::Warn, key, "{peer}: refused: {reason}");
            refuse_on(stream, &reason, tls.is_some());
            continue;
        }
        let (ticket, place) = match admission.admit(ip, &shared.config, tls.is_some()) {
            Ok(admitted) => admitted,
            Err(reason) => {
                // Keyed by the reason's kind, not its text, so the count groups them.
                let key = if reason == protocol::server_full() {
                    "refused: server full"
                } else {
                    "refused: per-address cap"
                };
                crate::log_throttled!(log::Level::Warn, key, "{peer}: refused: {reason}");
                refuse_on(stream, &reason, tls.is_some());
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
        debug!(
            "{peer}: connected{}",
            if tls.is_some() { " (TLS)" } else { "" }
        );
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        // Set here, so that the TLS handshake counts against the time to choose a name.
        let deadline = Instant::now() + shared.config.register_timeout;
        let hub = shared.hub.clone();
        let alive = alive.clone();
        // Two task types rather than one with a branch inside: a plaintext session's task must
        // not be sized for the TLS state it never holds.
        match tls {
            None => {
                // Plaintext TCP: only a loopback peer is a safe place for a password.
                let secure = ip.is_loopback() && shared.config.trust_loopback_for_passwords;
                let session = session::run(stream, peer, id, shared, deadline, secure, place);
                spawn(
                    executor,
                    guarded(Box::pin(session), hub, id, peer),
                    ticket,
                    alive,
                );
            }
            Some(tls) => {
                let tls = tls.clone();
                let session = async move {
                    let stopping = shared.stopping.clone();
                    // The handshake holds a place among those waiting for a name, so it can be
                    // evicted like them (silently: there is no TLS channel to say why on yet).
                    // Boxed, so that its state (the connection mid-handshake, the acceptor) is
                    // freed once it is done instead of sizing the task for the session's life:
                    // inline, it made each idle TLS task 5.8 KB.
                    let handshake = Box::pin(future::or(
                        tls.handshake(stream, peer, deadline, &stopping),
                        async {
                            place.evicted().await;
                            crate::limits::waiting::log_eviction(peer);
                            None
                        },
                    ))
                    .await;
                    if let Some(stream) = handshake {
                        drop((tls, stopping));
                        session::run(stream, peer, id, shared, deadline, true, place).await;
                    }
                };
                spawn(
                    executor,
                    guarded(Box::pin(session), hub, id, peer),
                    ticket,
                    alive,
                );
            }
        }
    }
}

/// Runs a connection's task to the end, then gives its place back.
fn spawn(
    executor: &Executor<'static>,
    task: impl Future<Output = ()> + Send + 'static,
    ticket: Ticket,
    alive: async_channel::Sender<()>,
) {
    executor
        .spawn(async move {
            task.await;
            drop((ticket, alive));
        })
        .detach();
}

/// Runs a connection's future so that a bug in it ends that connection, not the executor thread
/// running it (and with it every other session on that thread).
///
/// The session comes boxed: an `async fn` keeps a by-value future argument both as its argument
/// and as the future it awaits, and `spawn`'s block does the same again, which made every
/// connection's task four times the session's size (7.6 KB for a 1.8 KB session).
async fn guarded(
    session: std::pin::Pin<Box<impl Future<Output = ()> + Send>>,
    hub: async_channel::Sender<hub::Event>,
    id: hub::MemberId,
    peer: std::net::SocketAddr,
) {
    if AssertUnwindSafe(session).catch_unwind().await.is_err() {
        error!("{peer}: session panicked; connection closed");
        // Free the name at once (leaving twice is harmless).
        let _ = hub.try_send(hub::Event::Leave { id, reason: None });
    }
}

/// The address bans and the connect throttle: the reason to refuse `ip`, if any.
fn screen(ip: IpAddr, shared: &Shared, throttle: Option<&mut Throttle>) -> Option<String> {
    if let Ok(bans) = shared.accounts.bans.read() {
        if let Some(ban) = bans.address(ip, clock::now_ms()) {
            return Some(protocol::address_banned(
                ban.expires_ms,
                ban.reason.as_deref(),
            ));
        }
    }
    let config = &shared.config;
    let exempt = ip.is_loopback() && !config.limit_loopback;
    let (Some(throttle), Some(max)) = (throttle, config.connects_per_minute) else {
        return None;
    };
    (!exempt && !throttle.allow(ip, Instant::now())).then(|| protocol::too_many_connects(max))
}

/// Refuses a connection: with its one-line reason on the plaintext port, without a word on the
/// TLS port. A TLS client reads plaintext as a broken record (`WRONG_VERSION_NUMBER`, "corrupt
/// message"), which says less than a plain close; and telling it in TLS would mean a handshake,
/// the most expensive thing a connection costs, for exactly the addresses being refused (banned,
/// flooding, over a cap, or a full server). The log, aggregated, still says why.
fn refuse_on(stream: TcpStream, reason: &str, tls: bool) {
    if tls {
        close_quietly(stream);
    } else {
        refuse(stream, reason);
    }
}

/// Writes a one-line reason to a refused connection and closes it. The socket is fresh, so the
/// line fits its send buffer and the write does not block.
pub(crate) fn refuse(mut stream: TcpStream, reason: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(format!("{reason}\n").as_bytes());
    close_quietly(stream);
}

/// Closes a connection with a FIN, not a reset. Input that already arrived is read and dropped
/// first: closing with unread input would reset the connection and could discard what was
/// written before the client reads it.
fn close_quietly(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    for _ in 0..16 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Counts open connections, in total and per address ([`address::group`]: IPv6 by /64), and
/// queues those without a name yet.
struct Admission {
    counts: Mutex<Counts>,
    waiting: Arc<Waiting>,
    metrics: Metrics,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held by a session's task; gives the connection's place back when dropped.
struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    _counted: Connected,
}

impl Admission {
    fn new(max_unregistered: usize, metrics: Metrics) -> Admission {
        Admission {
            counts: Mutex::new(Counts::default()),
            waiting: Waiting::new(max_unregistered),
            metrics,
        }
    }

    /// Admits a connection from `ip`, or says why not. An admitted connection holds a place
    /// among those waiting for a name until it registers; to make room, the oldest waiting one
    /// may be evicted (when the waiting share or the whole server is full).
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        config: &Config,
        tls: bool,
    ) -> Result<(Ticket, Place), String> {
        let exempt = ip.is_loopback() && !config.limit_loopback;
        let ip = address::group(ip);
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| "internal error".to_owned())?;
        let per_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if per_ip >= config.max_per_ip && !exempt {
            self.metrics.refused(Refusal::PerAddress);
            return Err(protocol::too_many_from_address(config.max_per_ip));
        }
        // Full: a newcomer takes the place of the oldest connection still without a name, and
        // is refused only when every connection has one. The evicted one counts until closed.
        if counts.total >= config.max_clients {
            if !self.waiting.evict_oldest() {
                self.metrics.refused(Refusal::Full);
                return Err(protocol::server_full());
            }
            self.metrics.refused(Refusal::Eviction);
        }
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        counts.total += 1;
        let (place, evicted) = self.waiting.enter();
        if evicted {
            self.metrics.refused(Refusal::Eviction);
        }
        let ticket = Ticket {
            admission: self.clone(),
            ip,
            _counted: self.metrics.connected(Door::Line, tls),
        };
        Ok((ticket, place))
    }

    fn active(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.total)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.admission.counts.lock() {
            counts.total = counts.total.saturating_sub(1);
            if let Some(n) = counts.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    counts.per_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// Publishes the limits and watches the gauges only this module reaches: the bytes queued in
/// all outboxes and the connections waiting for a name, read when scraped.
fn watch(metrics: &Metrics, shared: &Shared, admission: &Admission) {
    let config = &shared.config;
    metrics.set_limits(config.max_clients, config.outbox_total_bytes);
    let budget = shared.output_budget.clone();
    metrics.watch(Id::OutboxBytes, move || budget.used() as f64);
    let waiting = admission.waiting.clone();
    metrics.watch(Id::ConnectionsUnnamed, move || waiting.len() as f64);
}

/// Logs what the server is listening on and its limits.
pub fn log_start(
    plain: Option<std::net::SocketAddr>,
    tls: Option<std::net::SocketAddr>,
    config: &Config,
    threads: usize,
) {
    let on = match (plain, tls) {
        (Some(plain), Some(tls)) => format!("{plain} and TLS on {tls}"),
        (Some(plain), None) => plain.to_string(),
        (None, Some(tls)) => format!("TLS on {tls} only"),
        (None, None) => "nothing".to_owned(),
    };
    info!(
        "listening on {on} ({threads} threads, max {} clients, {} per address)",
        config.max_clients, config.max_per_ip
    );
}
