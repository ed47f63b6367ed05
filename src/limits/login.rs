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
//! - the account, over every address: one shared queue (attempts at least [`BASE`] apart,
//!   growing with its failures up to [`MAX`]), against a spread of addresses guessing one
//!   password.
//!
//! The shared queue is what guessers fill, so the owner must have a way around it that guessing
//! cannot use up. Two lanes skip it ([`Lane`]):
//!
//! - **known**: an address that has logged in to the account (or registered it). The caller
//!   says so; the memory is in the database (`storage/accounts/addresses.rs`), so it survives a restart.
//!   A stranger cannot become known without the password.
//! - **fresh**: an address with no failure against this account in memory. So an owner on a new
//!   address (a phone) is checked at once too, not behind strangers. A guesser gets one such
//!   attempt per account per address it has not failed from in the last [`FORGET_AFTER`]: once
//!   it fails, that address queues like the rest. The price is that an attacker with many
//!   addresses gets one prompt guess from each; every per-address limit (connections, connects
//!   per minute, this module's per-address spacing, all by address group) and the two hashing
//!   threads bound what that buys, and an owner who mistypes from a new address queues like a
//!   stranger until the address is known or its failure forgotten.
//!
//! No attempt is made to wait longer than [`QUEUE_MAX`] (nor past the caller's deadline): it is
//! refused at once, told when to try again, and not counted as a failure. Both bounds stay well
//! under the default name deadline, so a login is answered in the server's own words rather than
//! by the deadline. An IPv6 /64 counts as one address ([`group`]). A quiet quarter of an hour
//! forgets. Time is a parameter (`now`), so all of it is tested without waiting.

use std::collections::HashMap;
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

/// What to do with a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Check it after waiting this long (its slot is booked).
    Wait(Duration),
    /// Too many attempts queued: refuse it now; one could be checked after this long.
    Refused(Duration),
}

/// Which way an attempt goes past the account's shared queue, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The address has logged in to the account before: it skips the shared queue.
    Known,
    /// The address has not failed against the account lately: it skips the shared queue.
    Fresh,
    /// Everybody else: the account's shared queue.
    Shared,
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
}

impl LoginDelays {
    /// Books a slot for an attempt on `account` from `ip`, to be checked within `budget` (the
    /// time the caller has left; capped at [`QUEUE_MAX`]). `known`: the address has logged in
    /// to the account before (the caller keeps that memory).
    pub fn attempt(
        &mut self,
        account: &str,
        ip: IpAddr,
        known: bool,
        now: Instant,
        budget: Duration,
    ) -> Attempt {
        let account = crate::names::fold(account);
        let ip = group(ip);
        let pair_key = (account.clone(), ip);
        let lane = self.lane(&pair_key, known, now);
        let mut start = now;
        for next in [
            free_at(&mut self.pairs, &pair_key, now),
            free_at(&mut self.addresses, &ip, now),
            if lane == Lane::Shared {
                free_at(&mut self.accounts, &account, now)
            } else {
                None
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
        if lane == Lane::Shared {
            book(&mut self.accounts, account, now, start, BASE);
        }
        Attempt::Wait(wait)
    }

    /// The lane an attempt from the pair `key` goes in: known addresses and those that have not
    /// failed against the account lately skip its shared queue.
    fn lane(&self, key: &(String, IpAddr), known: bool, now: Instant) -> Lane {
        if known {
            return Lane::Known;
        }
        let failed = self.pairs.get(key).is_some_and(|slot| {
            slot.failures > 0 && now.saturating_duration_since(slot.last) < FORGET_AFTER
        });
        if failed {
            Lane::Shared
        } else {
            Lane::Fresh
        }
    }

    /// Records a failed attempt: the next attempt of each key waits at least the doubled delay.
    pub fn failed(&mut self, account: &str, ip: IpAddr, now: Instant) {
        let account = crate::names::fold(account);
        let ip = group(ip);
        bump(&mut self.pairs, (account.clone(), ip), now);
        bump(&mut self.addresses, ip, now);
        bump(&mut self.accounts, account, now);
    }

    /// A successful login clears the pair's count (the address keeps its own, and the account
    /// its shared queue's: the owner does not need that queue, and clearing it would hand the
    /// strangers in it a few quick guesses at every login of the owner). The caller remembers
    /// the address as the owner's (it is stored).
    pub fn succeeded(&mut self, account: &str, ip: IpAddr) {
        let account = crate::names::fold(account);
        let ip = group(ip);
        self.pairs.remove(&(account, ip));
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `n` strangers, each failing once from its own address (in its fresh lane), then trying
    /// again (in the shared queue). Returns their addresses.
    fn strangers_guess(delays: &mut LoginDelays, n: u8, t: Instant) -> Vec<IpAddr> {
        let guessers: Vec<IpAddr> = (1..=n).map(|i| ip(&format!("198.51.100.{i}"))).collect();
        for &g in &guessers {
            assert_eq!(
                wait(delays.attempt("alice", g, false, t, LONG)),
                Duration::ZERO,
                "a fresh address is checked at once"
            );
            delays.failed("alice", g, t);
        }
        for &g in &guessers {
            let _ = delays.attempt("alice", g, false, t, LONG);
        }
        guessers
    }

    #[test]
    fn parallel_attempts_queue_one_after_another() {
        let mut delays = LoginDelays::default();
        let a = ip("192.0.2.1");
        let t = Instant::now();
        assert_eq!(
            wait(delays.attempt("alice", a, false, t, LONG)),
            Duration::ZERO
        );
        assert_eq!(wait(delays.attempt("alice", a, false, t, LONG)), BASE);
        assert_eq!(wait(delays.attempt("ALICE", a, false, t, LONG)), 2 * BASE);
        // Addresses that have failed share the account's queue, one after another.
        let (b, c) = (ip("192.0.2.2"), ip("192.0.2.3"));
        delays.failed("alice", b, t);
        delays.failed("alice", c, t);
        let first = wait(delays.attempt("alice", b, false, t, LONG));
        let second = wait(delays.attempt("alice", c, false, t, LONG));
        assert!(second > first, "{first:?} then {second:?}");
        // Not on another account.
        assert_eq!(
            wait(delays.attempt("bob", ip("192.0.2.9"), false, t, LONG)),
            Duration::ZERO
        );
    }

    #[test]
    fn failures_double_the_spacing_and_the_queue_is_bounded() {
        let mut delays = LoginDelays::default();
        let a = ip("192.0.2.1");
        let t = Instant::now();
        for _ in 0..3 {
            delays.failed("alice", a, t);
        }
        assert_eq!(wait(delays.attempt("alice", a, false, t, LONG)), 4 * BASE);
        for _ in 0..10 {
            delays.failed("alice", a, t);
        }
        assert_eq!(wait(delays.attempt("alice", a, false, t, LONG)), MAX);
        assert!(matches!(
            delays.attempt("alice", a, false, t, LONG),
            Attempt::Refused(_)
        ));
        assert!(matches!(
            delays.attempt("carol", a, false, t, Duration::from_secs(1)),
            Attempt::Refused(_)
        ));
        assert!(matches!(
            delays.attempt("alice", a, false, t + FORGET_AFTER + MAX * 3, LONG),
            Attempt::Wait(_)
        ));
    }

    /// The attack: strangers on many addresses fill the account's queue. The owner gets
    /// in at once from an address it has logged in from (which the caller remembers, across
    /// restarts) and from an address it never used (fresh), while a stranger that has failed
    /// is refused. A restart (a new limiter) changes none of that.
    #[test]
    fn guessers_on_many_addresses_cannot_lock_the_owner_out() {
        for restarted in [false, true] {
            let mut delays = LoginDelays::default();
            let t = Instant::now();
            let guessers = strangers_guess(&mut delays, 40, t);
            let known = ip("192.0.2.1");
            let phone = ip("2001:db8:aa:bb::7");
            assert_eq!(
                wait(delays.attempt("alice", known, true, t, LONG)),
                Duration::ZERO,
                "known address (restarted: {restarted})"
            );
            assert_eq!(
                wait(delays.attempt("alice", phone, false, t, LONG)),
                Duration::ZERO,
                "new address (restarted: {restarted})"
            );
            assert!(matches!(
                delays.attempt("alice", guessers[0], false, t, LONG),
                Attempt::Refused(_)
            ));
        }
    }

    /// The owner logging in does not speed up the strangers' queue: it stays spaced by their
    /// failures.
    #[test]
    fn the_owners_login_leaves_the_strangers_queue_as_slow() {
        let mut delays = LoginDelays::default();
        let t = Instant::now();
        let guessers = strangers_guess(&mut delays, 40, t);
        let later = t + QUEUE_MAX * 10;
        let owner = ip("192.0.2.1");
        assert_eq!(
            wait(delays.attempt("alice", owner, true, later, LONG)),
            Duration::ZERO
        );
        delays.succeeded("alice", owner);
        let first = wait(delays.attempt("alice", guessers[0], false, later, LONG));
        let second = delays.attempt("alice", guessers[1], false, later, LONG);
        assert_eq!(second, Attempt::Wait(first + MAX), "after {first:?}");
    }

    /// A fresh address gets one turn outside the queue; once it has failed it queues, until
    /// its failure is forgotten.
    #[test]
    fn a_fresh_address_skips_the_queue_until_it_fails() {
        let mut delays = LoginDelays::default();
        let t = Instant::now();
        strangers_guess(&mut delays, 40, t);
        let newcomer = ip("203.0.113.9");
        assert_eq!(
            wait(delays.attempt("alice", newcomer, false, t, LONG)),
            Duration::ZERO
        );
        delays.failed("alice", newcomer, t);
        assert!(matches!(
            delays.attempt("alice", newcomer, false, t, LONG),
            Attempt::Refused(_)
        ));
        // Another account is another lane: only the address's own spacing applies.
        assert_eq!(wait(delays.attempt("bob", newcomer, false, t, LONG)), BASE);
        // A quarter of an hour later the failure is forgotten: a fresh turn again.
        let forgiven = t + FORGET_AFTER + QUEUE_MAX * 4;
        assert_eq!(
            wait(delays.attempt("alice", newcomer, false, forgiven, LONG)),
            Duration::ZERO
        );
    }

    /// What the fresh lane costs, as the README says: over an hour, an attacker with `n`
    /// addresses gets at most about `4n` checked guesses on one account (one per address per
    /// quarter of an hour without a check) plus the account's shared queue (one per [`MAX`],
    /// 240), whatever its addresses do. Simulated second by second: 50 addresses that wait out
    /// the quarter hour between guesses, and 10 that hammer the queue every second.
    #[test]
    fn the_fresh_lane_gives_an_attacker_about_4n_plus_240_guesses_an_hour() {
        let mut delays = LoginDelays::default();
        let t0 = Instant::now();
        let second = Duration::from_secs(1);
        let patient: Vec<IpAddr> = (0..50).map(|i| ip(&format!("198.51.100.{i}"))).collect();
        let hammering: Vec<IpAddr> = (0..10).map(|i| ip(&format!("203.0.113.{i}"))).collect();
        // When each address's booked check happens (it fails), and when a patient one tries next.
        let mut checks: Vec<(Instant, IpAddr)> = Vec::new();
        let mut next_try: HashMap<IpAddr, Instant> =
            patient.iter().chain(&hammering).map(|&a| (a, t0)).collect();
        let mut checked = 0;
        for s in 0..3600 {
            let now = t0 + second * s;
            checks.retain(|&(at, addr)| {
                if at <= now {
                    delays.failed("alice", addr, at);
                    checked += 1;
                }
                at > now
            });
            for &addr in patient.iter().chain(&hammering) {
                let busy = checks.iter().any(|&(_, a)| a == addr);
                if busy || next_try[&addr] > now {
                    continue;
                }
                if let Attempt::Wait(wait) = delays.attempt("alice", addr, false, now, LONG) {
                    checks.push((now + wait, addr));
                    if patient.contains(&addr) {
                        next_try.insert(addr, now + wait + FORGET_AFTER + second);
                    }
                }
            }
        }
        // A hammering address that the queue kept waiting a quarter of an hour is fresh again.
        let fresh = 4 * (patient.len() + hammering.len());
        let shared = (3600 / MAX.as_secs()) as usize;
        assert!(checked >= 4 * patient.len() + shared - 5, "{checked}");
        assert!(
            checked <= fresh + shared + 5,
            "{checked} > {fresh} + {shared}"
        );
    }

    #[test]
    fn one_ipv6_64_is_one_address() {
        let mut delays = LoginDelays::default();
        let a = ip("2001:db8:0:1::1");
        let b = ip("2001:db8:0:1:ffff::2");
        let c = ip("2001:db8:0:2::1");
        let t = Instant::now();
        delays.failed("alice", a, t);
        assert_eq!(
            wait(delays.attempt("bob", b, false, t, LONG)),
            BASE,
            "same /64"
        );
        assert_eq!(
            wait(delays.attempt("carol", c, false, t, LONG)),
            Duration::ZERO,
            "another /64"
        );
        // And a failure from one address of a /64 burns the fresh lane of the whole /64.
        assert_eq!(
            delays.lane(&("alice".into(), group(b)), false, t),
            Lane::Shared
        );
    }

    #[test]
    fn the_wait_is_capped() {
        assert_eq!(wait_after(0), Duration::ZERO);
        assert_eq!(wait_after(3), 4 * BASE);
        assert_eq!(wait_after(40), MAX);
    }
}
