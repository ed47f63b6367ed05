//! New accounts per address per hour (`--registrations-per-hour`).
//!
//! Registering costs the server an Argon2 hash (19 MiB and tens of milliseconds of a core) and
//! takes a name, and every look-alike of it, for good. One address registered 1,300 accounts a
//! minute before this limit: both cores hashing, and the squatted names blocking real users.
//! A person needs one or two accounts; a household or an office behind one address a few an
//! hour. So each address group ([`group`]: an IPv6 /64 as one) may register at most N accounts in
//! any hour, a sliding window: the N registrations of the last hour are remembered, and the next
//! is allowed when the oldest of them is an hour old.
//!
//! A slot is taken when a registration starts (before the password is asked for, so a refused
//! user types nothing in vain) and given back if it does not end in a new account, so a
//! cancelled dialogue costs nothing and parallel dialogues cannot overshoot.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::address::group;

/// The window of `--registrations-per-hour`.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// Default `--registrations-per-hour`: enough for a person, a family or a small office behind
/// one address, far too few to squat names with.
pub const DEFAULT_PER_HOUR: u32 = 3;

/// Address groups tracked before those with nothing left in the window are swept. Beyond it
/// (after a sweep) new groups are let through untracked: failing open under a spray of addresses
/// beats refusing everyone, as the connect throttle does.
const MAX_TRACKED: usize = 100_000;

/// Registrations per address group in the last [`WINDOW`].
#[derive(Debug)]
pub struct Registrations {
    max: usize,
    seen: HashMap<IpAddr, VecDeque<Instant>>,
}

/// A registration slot taken by [`Registrations::take`]; hand it back with
/// [`Registrations::give_back`] if no account was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    group: IpAddr,
    at: Instant,
}

impl Registrations {
    /// At most `max` new accounts per address group per [`WINDOW`] (`max` at least 1).
    pub fn new(max: u32) -> Registrations {
        Registrations {
            max: usize::try_from(max.max(1)).unwrap_or(usize::MAX),
            seen: HashMap::new(),
        }
    }

    /// Takes a registration slot for `ip`, or says how long until one is free.
    pub fn take(&mut self, ip: IpAddr, now: Instant) -> Result<Slot, Duration> {
        let group = group(ip);
        if self.seen.len() >= MAX_TRACKED && !self.seen.contains_key(&group) {
            self.seen.retain(|_, times| {
                times.retain(|t| now.saturating_duration_since(*t) < WINDOW);
                !times.is_empty()
            });
            if self.seen.len() >= MAX_TRACKED {
                return Ok(Slot { group, at: now });
            }
        }
        let times = self.seen.entry(group).or_default();
        while times
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.len() >= self.max {
            let oldest = times.front().copied().unwrap_or(now);
            return Err((oldest + WINDOW).saturating_duration_since(now));
        }
        times.push_back(now);
        Ok(Slot { group, at: now })
    }

    /// Gives back a slot that did not end in a new account.
    pub fn give_back(&mut self, slot: Slot) {
        if let Some(times) = self.seen.get_mut(&slot.group) {
            if let Some(i) = times.iter().position(|t| *t == slot.at) {
                times.remove(i);
            }
            if times.is_empty() {
                self.seen.remove(&slot.group);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn at_most_n_an_hour_per_address_sliding() {
        let mut r = Registrations::new(3);
        let a = ip("192.0.2.1");
        let t = Instant::now();
        let minute = Duration::from_secs(60);
        for i in 0..3 {
            assert!(r.take(a, t + minute * i).is_ok());
        }
        // The fourth waits until the first is an hour old.
        assert_eq!(r.take(a, t + minute * 10), Err(WINDOW - minute * 10));
        assert!(r.take(ip("192.0.2.2"), t).is_ok(), "addresses apart");
        assert!(r.take(a, t + WINDOW).is_ok(), "the first left the window");
        assert!(r.take(a, t + WINDOW).is_err());
    }

    #[test]
    fn a_slot_not_used_is_given_back() {
        let mut r = Registrations::new(1);
        let a = ip("192.0.2.1");
        let t = Instant::now();
        let slot = r.take(a, t).unwrap();
        assert!(r.take(a, t).is_err());
        r.give_back(slot);
        assert!(r.take(a, t).is_ok());
    }

    #[test]
    fn one_ipv6_64_is_one_address() {
        let mut r = Registrations::new(2);
        let t = Instant::now();
        assert!(r.take(ip("2001:db8:0:1::1"), t).is_ok());
        assert!(r.take(ip("2001:db8:0:1::2"), t).is_ok());
        assert!(r.take(ip("2001:db8:0:1:ffff::3"), t).is_err());
        assert!(r.take(ip("2001:db8:0:2::1"), t).is_ok());
    }
}
