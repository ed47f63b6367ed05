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
//!
//! Behind a trusted reverse proxy the web door learns the client's address only from the
//! upgrade's `X-Forwarded-For`. A connection from a proxy named by `--trust-proxy` to a web
//! listener is therefore admitted under the total alone ([`Counted::AtUpgrade`]): counted under
//! the proxy's own address, every client behind it would share one `--max-per-ip`. At the
//! upgrade it takes a [`Slot`] for the forwarded address ([`Admission::admit_forwarded`]), so
//! the per-address cap counts the client and shares its count with every door's direct
//! connections from there.

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
    /// The place under the peer's address; `None` for a trusted proxy's connection.
    _slot: Option<Slot>,
    _counted: Connected,
}

/// Where a connection is counted under `--max-per-ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Under the peer's address, at accept.
    AtAccept,
    /// Under the client's address a trusted proxy forwards, at the web door's upgrade: the
    /// proxy's own address is not counted.
    AtUpgrade,
}

/// One connection counted under an address for `--max-per-ip`; gives that count back when
/// dropped. Part of every [`Ticket`]; alone, a proxied web client's forwarded address.
pub struct Slot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

/// Whether `ip` is exempt from the per-address limits (loopback, unless `--limit-loopback`).
fn exempt(ip: IpAddr, config: &Config) -> bool {
    ip.is_loopback() && !config.limit_loopback
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
    /// may be evicted (when the waiting share or the whole server is full). `counted` says
    /// whether `--max-per-ip` counts it under `ip` now or under its forwarded address later.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        config: &Config,
        (door, tls, counted): (Door, bool, Counted),
    ) -> Result<(Ticket, Place), TurnedAway> {
        let exempt = exempt(ip, config) || counted == Counted::AtUpgrade;
        let ip = address::group(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.full_from(ip, config) && !exempt {
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
        let slot = (counted == Counted::AtAccept).then(|| {
            *counts.per_ip.entry(ip).or_insert(0) += 1;
            Slot {
                admission: self.clone(),
                ip,
            }
        });
        counts.total += 1;
        let (place, evicted) = self.waiting.enter();
        if evicted {
            self.metrics.refused(Refusal::Eviction);
        }
        let ticket = Ticket {
            admission: self.clone(),
            _slot: slot,
            _counted: self.metrics.connected(door, tls),
        };
        Ok((ticket, place))
    }

    /// Counts a trusted proxy's connection (admitted with [`Counted::AtUpgrade`], so in the
    /// total only) under the client address the proxy forwarded, or refuses it when that
    /// address already has `--max-per-ip` connections through any door. A loopback client is
    /// exempt as at accept.
    pub fn admit_forwarded(
        self: &Arc<Self>,
        ip: IpAddr,
        config: &Config,
    ) -> Result<Slot, TurnedAway> {
        let exempt = exempt(ip, config);
        let ip = address::group(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.full_from(ip, config) && !exempt {
            return Err(TurnedAway::TooManyFromAddress(config.max_per_ip));
        }
        *counts.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot {
            admission: self.clone(),
            ip,
        })
    }

    /// Counts a refusal in the metrics and logs it, aggregated by kind: `who` was refused and
    /// told `words`.
    pub fn refused(&self, who: impl std::fmt::Display, why: &TurnedAway, words: &str) {
        let (key, kind) = kind(why);
        self.metrics.refused(kind);
        crate::log_throttled!(log::Level::Warn, key, "{who}: refused: {words}");
    }

    /// Connections open now.
    pub fn active(&self) -> usize {
        self.counts.lock().map_or(0, |c| c.total)
    }

    /// Connections still choosing a name.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

impl Counts {
    /// Whether `ip` (grouped) has `--max-per-ip` connections already.
    fn full_from(&self, ip: IpAddr, config: &Config) -> bool {
        self.per_ip.get(&ip).copied().unwrap_or(0) >= config.max_per_ip
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        // A poisoned lock still gives the place back, as `admit` still counts through it.
        let mut counts = (self.admission.counts.lock()).unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = (self.admission.counts.lock()).unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
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
    let exempt = exempt(ip, config);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flags: &[&str]) -> Config {
        let args: crate::app::args::Args =
            argh::FromArgs::from_args(&["smolchat"], flags).expect("flags");
        args.config().expect("config")
    }

    /// A forwarded address shares `--max-per-ip` with direct connections from it, gives its
    /// place back when its slot is dropped, and takes no place in the total.
    #[test]
    fn forwarded_addresses_share_the_per_address_cap() {
        let config = config(&["--max-per-ip", "2"]);
        let admission = Arc::new(Admission::new(10, Metrics::new(false)));
        let client: IpAddr = "203.0.113.7".parse().expect("address");
        let direct = admission.admit(client, &config, (Door::Line, false, Counted::AtAccept));
        let direct = direct.map_err(|_| "refused").expect("direct");
        let slot = admission.admit_forwarded(client, &config);
        let slot = slot.map_err(|_| "refused").expect("forwarded");
        assert_eq!(admission.active(), 1);
        assert_eq!(
            admission.admit_forwarded(client, &config).err(),
            Some(TurnedAway::TooManyFromAddress(2))
        );
        let other = admission.admit_forwarded("198.51.100.1".parse().expect("address"), &config);
        assert!(other.is_ok());
        drop(slot);
        assert!(admission.admit_forwarded(client, &config).is_ok());
        drop(direct);
        assert_eq!(admission.active(), 0);
    }

    /// A trusted proxy's connections take no place under its own address at accept (so its
    /// clients do not share one `--max-per-ip`), only in the total; the proxy's direct
    /// connections are still counted.
    #[test]
    fn a_trusted_proxys_connections_wait_for_the_forwarded_address() {
        let config = config(&["--max-per-ip", "2", "--trust-proxy", "10.0.0.5"]);
        let admission = Arc::new(Admission::new(10, Metrics::new(false)));
        let proxy: IpAddr = "10.0.0.5".parse().expect("address");
        let proxied: Vec<_> = (0..5)
            .map(|_| admission.admit(proxy, &config, (Door::Web, false, Counted::AtUpgrade)))
            .collect::<Result<_, _>>()
            .map_err(|_| "refused")
            .expect("proxied");
        assert_eq!(admission.active(), 5);
        let direct: Vec<_> = (0..2)
            .map(|_| admission.admit(proxy, &config, (Door::Line, false, Counted::AtAccept)))
            .collect::<Result<_, _>>()
            .map_err(|_| "refused")
            .expect("direct");
        assert!(matches!(
            admission.admit(proxy, &config, (Door::Line, false, Counted::AtAccept)),
            Err(TurnedAway::TooManyFromAddress(2))
        ));
        drop((proxied, direct));
        assert_eq!(admission.active(), 0);
    }
}
