//! Failed logins slow down, per account and per address, so guessing a password is hopeless.
//!
//! Each failure doubles the wait before the next attempt is checked (1 s, 2 s, 4 s, ... up to
//! a minute). Counting per account stops a spread of addresses guessing one password; counting
//! per address stops one address trying many accounts (an IPv6 /64 counts as one address,
//! [`group`]). A quiet quarter of an hour forgets.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::address::group;

/// The wait after the first failure. Not configurable: it is unnoticeable to a person who
/// mistyped and doubles from there.
pub const BASE: Duration = Duration::from_secs(1);

/// The longest wait between attempts.
pub const MAX: Duration = Duration::from_secs(60);

/// How long failures are remembered after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Entries kept per map before old ones are swept.
const SWEEP_AT: usize = 10_000;

/// Failure counts per account name (lower case) and per address.
#[derive(Debug, Default)]
pub struct LoginDelays {
    accounts: HashMap<String, (u32, Instant)>,
    addresses: HashMap<IpAddr, (u32, Instant)>,
}

impl LoginDelays {
    /// How long to wait before checking an attempt on `account` from `ip`.
    pub fn delay(&mut self, account: &str, ip: IpAddr, now: Instant) -> Duration {
        let a = failures(&mut self.accounts, &account.to_ascii_lowercase(), now);
        let b = failures(&mut self.addresses, &group(ip), now);
        wait_after(a.max(b))
    }

    /// Records a failed attempt.
    pub fn failed(&mut self, account: &str, ip: IpAddr, now: Instant) {
        bump(&mut self.accounts, account.to_ascii_lowercase(), now);
        bump(&mut self.addresses, group(ip), now);
    }

    /// A successful login clears the account's count (the address keeps its own).
    pub fn succeeded(&mut self, account: &str) {
        self.accounts.remove(&account.to_ascii_lowercase());
    }
}

/// The wait after `n` failures: none, then 1 s doubling up to [`MAX`].
pub fn wait_after(n: u32) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => BASE.saturating_mul(1 << (n - 1).min(16)).min(MAX),
    }
}

fn failures<K: Hash + Eq>(map: &mut HashMap<K, (u32, Instant)>, key: &K, now: Instant) -> u32 {
    match map.get(key) {
        Some((n, last)) if now.saturating_duration_since(*last) < FORGET_AFTER => *n,
        Some(_) => {
            map.remove(key);
            0
        }
        None => 0,
    }
}

fn bump<K: Hash + Eq>(map: &mut HashMap<K, (u32, Instant)>, key: K, now: Instant) {
    if map.len() >= SWEEP_AT {
        map.retain(|_, (_, last)| now.saturating_duration_since(*last) < FORGET_AFTER);
    }
    let entry = map.entry(key).or_insert((0, now));
    if now.saturating_duration_since(entry.1) >= FORGET_AFTER {
        entry.0 = 0;
    }
    *entry = (entry.0.saturating_add(1), now);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_per_account_and_per_address() {
        let mut delays = LoginDelays::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t = Instant::now();
        assert_eq!(delays.delay("alice", a, t), Duration::ZERO);
        delays.failed("alice", a, t);
        assert_eq!(delays.delay("ALICE", b, t), BASE, "per account");
        assert_eq!(delays.delay("bob", a, t), BASE, "per address");
        delays.failed("alice", b, t);
        assert_eq!(delays.delay("alice", b, t), 2 * BASE);
        delays.succeeded("alice");
        assert_eq!(delays.delay("alice", b, t), BASE, "the address remembers");
        assert_eq!(delays.delay("alice", b, t + FORGET_AFTER), Duration::ZERO);
    }

    #[test]
    fn one_ipv6_64_is_one_address() {
        let mut delays = LoginDelays::default();
        let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap();
        let c: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        let t = Instant::now();
        delays.failed("alice", a, t);
        assert_eq!(delays.delay("bob", b, t), BASE, "same /64");
        assert_eq!(delays.delay("bob", c, t), Duration::ZERO, "another /64");
    }

    #[test]
    fn the_wait_is_capped() {
        assert_eq!(wait_after(0), Duration::ZERO);
        assert_eq!(wait_after(3), 4 * BASE);
        assert_eq!(wait_after(40), MAX);
    }
}
