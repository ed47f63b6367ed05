//! Admission: which accepted connections get a task, before any door sees them.
//!
//! First the screen: an address ban or the connect throttle (`--connects-per-minute`) refuses a
//! connection before any other work. Then the caps: total connections (`--max-clients`) and per
//! address (`--max-per-ip`, an IPv6 /64 counting as one address), counted over every listener,
//! whichever door it opens. Connections still choosing a name (or in their TLS handshake) may
//! hold at most `--max-unregistered` places: past that, or when the server is full, a newcomer
//! evicts the oldest of them ([`crate::limits::waiting`]), so connections that never register
//! cannot keep a real user out. An evicted connection counts against the caps until its task has
//! ended, so the counts stay true to the descriptors in use.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clock;
use crate::config::Config;
use crate::limits::address;
use crate::limits::connects::Throttle;
use crate::limits::waiting::{Place, Waiting};
use crate::metrics::{Connected, Door, Metrics, Refusal};
use crate::moderation::ban::SharedBans;
use crate::session::TurnedAway;

/// Counts open connections, in total and per address ([`address::group`]: IPv6 by /64), and
/// queues those without a name yet.
pub struct Admission {
    counts: Mutex<Counts>,
    pub(super) waiting: Arc<Waiting>,
    pub(super) metrics: Metrics,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Held by a connection's task; gives its place back when dropped.
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    _counted: Connected,
}

impl Admission {
    pub fn new(max_unregistered: usize, metrics: Metrics) -> Admission {
        Admission {
            counts: Mutex::new(Counts::default()),
            waiting: Waiting::new(max_unregistered),
            metrics,
        }
    }

    /// Admits a connection from `ip`, or says why not. An admitted connection holds a place
    /// among those waiting for a name until it registers; to make room, the oldest waiting one
    /// may be evicted (when the waiting share or the whole server is full).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        config: &Config,
        (door, tls): (Door, bool),
    ) -> Result<(Ticket, Place), TurnedAway> {
        let exempt = ip.is_loopback() && !config.limit_loopback;
        let ip = address::group(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let per_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if per_ip >= config.max_per_ip && !exempt {
            return Err(TurnedAway::TooManyFromAddress(config.max_per_ip));
        }
        // Full: a newcomer takes the place of the oldest connection still without a name, and
        // is refused only when every connection has one. The evicted one counts until closed.
        if counts.total >= config.max_clients {
            if !self.waiting.evict_oldest() {
                return Err(TurnedAway::Full);
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
            _counted: self.metrics.connected(door, tls),
        };
        Ok((ticket, place))
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
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

/// The address bans and the connect throttle: why to refuse `ip`, if at all.
pub fn screen(
    ip: IpAddr,
    bans: &SharedBans,
    config: &Config,
    throttle: Option<&mut Throttle>,
) -> Option<TurnedAway> {
    if let Ok(bans) = bans.read() {
        if let Some(ban) = bans.address(ip, clock::now_ms()) {
            let reason = ban.reason.clone();
            return Some(TurnedAway::Banned {
                expires_ms: ban.expires_ms,
                reason,
            });
        }
    }
    let exempt = ip.is_loopback() && !config.limit_loopback;
    let (Some(throttle), Some(max)) = (throttle, config.connects_per_minute) else {
        return None;
    };
    let allowed = exempt || throttle.allow(ip, Instant::now());
    (!allowed).then_some(TurnedAway::TooManyConnects(max))
}

/// The key a refusal is counted under in the aggregated log (its kind, never its text), and
/// in the metrics.
pub fn kind(why: &TurnedAway) -> (&'static str, Refusal) {
    match why {
        TurnedAway::Banned { .. } => ("refused: banned address", Refusal::BannedAddress),
        TurnedAway::TooManyConnects(_) => ("refused: connect rate", Refusal::ConnectRate),
        TurnedAway::TooManyFromAddress(_) => ("refused: per-address cap", Refusal::PerAddress),
        TurnedAway::Full => ("refused: server full", Refusal::Full),
    }
}
