//! Failed logins slow down, so guessing a password is hopeless, without letting the guessers
//! lock the owner out.
//!
//! Attempts are booked, not just delayed: each one takes the next free slot of every key it
//! falls under, and pushes that slot on (`next = max(now, next) + spacing`), so parallel
//! connections wait one after another instead of all waiting the same delay at once. The keys:
//!
//! - (account, address): each failure doubles the spacing (1 s, 2 s, 4 s, up to [`MAX`]), so one
//!   address guessing one account gets nowhere;
//! - the address, over every account: the same, against one address trying many accounts;
//! - the account, over every address: an overall rate (at least [`BASE`] apart, growing with its
//!   failures up to [`MAX`]), against a spread of addresses guessing one password. An address
//!   that logged in to the account before (in this run of the server) skips this one, so the
//!   owner does not queue behind strangers guessing their password.
//!
//! No attempt is made to wait longer than [`QUEUE_MAX`] (nor past the caller's deadline): it is
//! refused at once, told when to try again, and not counted as a failure. Both bounds stay well
//! under the default name deadline, so a login is answered in the server's own words rather than
//! by the deadline. An IPv6 /64 counts as one address ([`group`]). A quiet quarter of an hour
//! forgets.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::address::group;

/// The spacing after the first failure, and between attempts on one account. Not configurable:
/// unnoticeable to a person who mistyped; it doubles from there.
pub const BASE: Duration = Duration::from_secs(1);

/// The longest spacing between attempts of one key. Well under the default name deadline (60 s).
pub const MAX: Duration = Duration::from_secs(15);

/// The longest an attempt may wait for its slot; beyond it the attempt is refused at once.
pub const QUEUE_MAX: Duration = Duration::from_secs(20);

/// How long failures are remembered after the last one.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// Entries kept per map before old ones are swept.
const SWEEP_AT: usize = 10_000;

/// Addresses remembered per account as having logged in to it.
const TRUSTED_PER_ACCOUNT: usize = 8;

/// What to do with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Check it after waiting this long (its slot is booked).
    Wait(Duration),
    /// Too many attempts queued: refuse it now; one could be checked after this long.
    Refused(Duration),
}

/// One key's failures and next free slot.
#[derive(Debug, Clone, Copy)]
struct Slot {
    failures: u32,
    last: Instant,
    next: Instant,
}

/// Failure counts and booked slots per (account, address), per address and per account.
#[derive(Debug, Default)]
pub struct LoginDelays {
    pairs: HashMap<(String, IpAddr), Slot>,
    addresses: HashMap<IpAddr, Slot>,
    accounts: HashMap<String, Slot>,
    /// Addresses that logged in to each account: they skip the account's overall rate.
    trusted: HashMap<String, HashSet<IpAddr>>,
}

impl LoginDelays {
    /// Books a slot for an attempt on `account` from `ip`, to be checked within `budget` (the
    /// time the caller has left; capped at [`QUEUE_MAX`]).
    pub fn attempt(
        &mut self,
        account: &str,
        ip: IpAddr,
        now: Instant,
        budget: Duration,
    ) -> Attempt {
        let account = crate::names::fold(account);
        let ip = group(ip);
        let trusted = self.trusted.get(&account).is_some_and(|t| t.contains(&ip));
        let pair_key = (account.clone(), ip);
        let mut start = now;
        for next in [
            free_at(&mut self.pairs, &pair_key, now),
            free_at(&mut self.addresses, &ip, now),
            if trusted {
                None
            } else {
                free_at(&mut self.accounts, &account, now)
            },
        ]
        .into_iter()
        .flatten()
        {
            start = start.max(next);
        }
        let wait = start - now;
        if wait > budget.min(QUEUE_MAX) {
            return Attempt::Refused(wait);
        }
        book(&mut self.pairs, pair_key, now, start, BASE);
        book(&mut self.addresses, ip, now, start, Duration::ZERO);
        if !trusted {
            book(&mut self.accounts, account, now, start, BASE);
        }
        Attempt::Wait(wait)
    }

    /// Records a failed attempt: the next attempt of each key waits at least the doubled delay.
    pub fn failed(&mut self, account: &str, ip: IpAddr, now: Instant) {
        let account = crate::names::fold(account);
        let ip = group(ip);
        bump(&mut self.pairs, (account.clone(), ip), now);
        bump(&mut self.addresses, ip, now);
        bump(&mut self.accounts, account, now);
    }

    /// A successful login clears the account's count and the pair's (the address keeps its
    /// own), and remembers the address as the owner's.
    pub fn succeeded(&mut self, account: &str, ip: IpAddr) {
        let account = crate::names::fold(account);
        let ip = group(ip);
        if let Some(slot) = self.accounts.get_mut(&account) {
            slot.failures = 0;
        }
        self.pairs.remove(&(account.clone(), ip));
        if self.trusted.len() >= SWEEP_AT {
            self.trusted.clear();
        }
        let trusted = self.trusted.entry(account).or_default();
        if trusted.len() >= TRUSTED_PER_ACCOUNT {
            trusted.clear();
        }
        trusted.insert(ip);
    }
}

/// The spacing after `n` failures: none, then 1 s doubling up to [`MAX`].
pub fn wait_after(n: u32) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => BASE.saturating_mul(1 << (n - 1).min(16)).min(MAX),
    }
}

/// When `key`'s next slot is free, forgetting it after a quiet [`FORGET_AFTER`].
fn free_at<K: Hash + Eq>(map: &mut HashMap<K, Slot>, key: &K, now: Instant) -> Option<Instant> {
    let slot = map.get(key)?;
    if now.saturating_duration_since(slot.last) >= FORGET_AFTER && slot.next <= now {
        map.remove(key);
        return None;
    }
    Some(slot.next)
}

/// Takes the slot at `start` and pushes the key's next free slot on by its spacing (at least
/// `min`, more after failures).
fn book<K: Hash + Eq>(
    map: &mut HashMap<K, Slot>,
    key: K,
    now: Instant,
    start: Instant,
    min: Duration,
) {
    sweep(map, now);
    let slot = map.entry(key).or_insert(Slot {
        failures: 0,
        last: now,
        next: now,
    });
    slot.last = now;
    let spacing = wait_after(slot.failures).max(min);
    // A key with no spacing (an address without failures) holds nobody up.
    if !spacing.is_zero() {
        slot.next = slot.next.max(start) + spacing;
    }
}

/// Counts a failure: the key's next slot is at least the new spacing from now.
fn bump<K: Hash + Eq>(map: &mut HashMap<K, Slot>, key: K, now: Instant) {
    sweep(map, now);
    let slot = map.entry(key).or_insert(Slot {
        failures: 0,
        last: now,
        next: now,
    });
    if now.saturating_duration_since(slot.last) >= FORGET_AFTER {
        slot.failures = 0;
    }
    slot.failures = slot.failures.saturating_add(1);
    slot.last = now;
    slot.next = slot.next.max(now + wait_after(slot.failures));
}

fn sweep<K: Hash + Eq>(map: &mut HashMap<K, Slot>, now: Instant) {
    if map.len() >= SWEEP_AT {
        map.retain(|_, s| now.saturating_duration_since(s.last) < FORGET_AFTER || s.next > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(3600);

    fn wait(a: Attempt) -> Duration {
        match a {
            Attempt::Wait(d) => d,
            Attempt::Refused(d) => panic!("refused, {d:?}"),
        }
    }

    #[test]
    fn parallel_attempts_queue_one_after_another() {
        let mut delays = LoginDelays::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        assert_eq!(wait(delays.attempt("alice", a, t, LONG)), Duration::ZERO);
        assert_eq!(wait(delays.attempt("alice", a, t, LONG)), BASE);
        assert_eq!(wait(delays.attempt("ALICE", a, t, LONG)), 2 * BASE);
        // Another address queues behind them on the account's overall rate.
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(wait(delays.attempt("alice", b, t, LONG)), 3 * BASE);
        // But not on another account.
        assert_eq!(wait(delays.attempt("bob", b, t, LONG)), Duration::ZERO);
    }

    #[test]
    fn failures_double_the_spacing_and_the_queue_is_bounded() {
        let mut delays = LoginDelays::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        for _ in 0..3 {
            delays.failed("alice", a, t);
        }
        assert_eq!(wait(delays.attempt("alice", a, t, LONG)), 4 * BASE);
        for _ in 0..10 {
            delays.failed("alice", a, t);
        }
        assert_eq!(wait(delays.attempt("alice", a, t, LONG)), MAX);
        assert!(matches!(
            delays.attempt("alice", a, t, LONG),
            Attempt::Refused(_)
        ));
        assert!(matches!(
            delays.attempt("carol", a, t, Duration::from_secs(1)),
            Attempt::Refused(_)
        ));
        assert!(matches!(
            delays.attempt("alice", a, t + FORGET_AFTER + MAX * 3, LONG),
            Attempt::Wait(_)
        ));
    }

    #[test]
    fn the_owners_address_skips_the_accounts_queue() {
        let mut delays = LoginDelays::default();
        let owner: IpAddr = "192.0.2.1".parse().unwrap();
        let guesser: IpAddr = "198.51.100.7".parse().unwrap();
        let t = Instant::now();
        delays.succeeded("alice", owner);
        for _ in 0..20 {
            delays.failed("alice", guesser, t);
            let _ = delays.attempt("alice", guesser, t, LONG);
        }
        assert_eq!(
            wait(delays.attempt("alice", owner, t, LONG)),
            Duration::ZERO
        );
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(matches!(
            delays.attempt("alice", stranger, t, LONG),
            Attempt::Refused(_)
        ));
    }

    #[test]
    fn one_ipv6_64_is_one_address() {
        let mut delays = LoginDelays::default();
        let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let b: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap();
        let c: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        let t = Instant::now();
        delays.failed("alice", a, t);
        assert_eq!(wait(delays.attempt("bob", b, t, LONG)), BASE, "same /64");
        assert_eq!(
            wait(delays.attempt("carol", c, t, LONG)),
            Duration::ZERO,
            "another /64"
        );
    }

    #[test]
    fn the_wait_is_capped() {
        assert_eq!(wait_after(0), Duration::ZERO);
        assert_eq!(wait_after(3), 4 * BASE);
        assert_eq!(wait_after(40), MAX);
    }
}
