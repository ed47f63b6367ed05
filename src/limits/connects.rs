//! The per-address connect throttle: at most N new connections per address per window.
//!
//! One address looping connect, name, close can register hundreds of times a second, and every
//! such connection costs the whole lobby a join and a leave notice. The cap on *simultaneous*
//! connections per address does not see that (each connection is gone before the next), so this
//! counts connection *attempts* over a fixed window instead. Addresses are counted by
//! [`group`] (IPv6 by /64).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::address::group;

/// Addresses tracked before stale windows are swept. Beyond it (after a sweep) new addresses are
/// let through untracked: failing open under a spray of addresses beats refusing everyone.
const MAX_TRACKED: usize = 100_000;

/// Counts connection attempts per address in fixed windows.
#[derive(Debug)]
pub struct Throttle {
    max: u32,
    window: Duration,
    seen: HashMap<IpAddr, (Instant, u32)>,
}

impl Throttle {
    /// At most `max` connections per `window` from each address.
    pub fn new(max: u32, window: Duration) -> Throttle {
        Throttle {
            max,
            window,
            seen: HashMap::new(),
        }
    }

    /// Counts an attempt from `ip`; false if it is over the limit.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = group(ip);
        if self.seen.len() >= MAX_TRACKED && !self.seen.contains_key(&ip) {
            let window = self.window;
            self.seen
                .retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            if self.seen.len() >= MAX_TRACKED {
                return true;
            }
        }
        let entry = self.seen.entry(ip).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        entry.1 <= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_caps_and_resets() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        let mut throttle = Throttle::new(3, Duration::from_secs(60));
        assert!((0..3).all(|_| throttle.allow(ip, t0)));
        assert!(!throttle.allow(ip, t0 + Duration::from_secs(59)));
        assert!(throttle.allow(other, t0), "addresses are counted apart");
        assert!(
            throttle.allow(ip, t0 + Duration::from_secs(60)),
            "a new window"
        );
    }

    #[test]
    fn one_ipv6_64_is_one_address() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(2, Duration::from_secs(60));
        assert!(throttle.allow("2001:db8:0:1::1".parse().unwrap(), t0));
        assert!(throttle.allow("2001:db8:0:1::2".parse().unwrap(), t0));
        assert!(!throttle.allow("2001:db8:0:1:ffff::3".parse().unwrap(), t0));
        assert!(throttle.allow("2001:db8:0:2::1".parse().unwrap(), t0));
    }
}
