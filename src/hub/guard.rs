//! Protection of one user from others: look-alike names, names taken the moment their owner is
//! dropped, and private-message floods.
//!
//! - Names are unique by their confusable skeleton ([`crate::names::skeleton`]), so `aIice`
//!   cannot appear beside `alice`. (`Hub::by_nick` is keyed by skeleton.)
//! - A name freed because the server dropped its owner (a slow reader, later a kick) is held for
//!   its owner's address for [`NAME_HOLD`]: an attacker who got a victim dropped cannot speak as
//!   them a moment later. The address is compared by [`group`] (IPv6 by /64), like every
//!   per-address limit, so the owner gets the name back from a new privacy address.
//! - Private lines to one recipient pass a token bucket per recipient ([`PRIVATE_RATE`]); senders
//!   over it are told their line was not delivered. The recipient's outbox never fills with other
//!   people's flooding, so the recipient is never dropped for it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Hub, MemberId};
use crate::limits::address::group;
use crate::limits::ratelimit::{RateConfig, TokenBucket};
use crate::names::Nick;

/// How long a name freed by a drop stays reserved for its owner's address. Not configurable: long
/// enough for a client to reconnect, short enough not to matter to anyone else.
pub(super) const NAME_HOLD: Duration = Duration::from_secs(60);

/// Private lines one recipient may receive: a burst, then a sustained rate. At 1 KiB per line this
/// is about 5 KiB/s, which any client that reads at all keeps up with, while a conversation, even
/// with several people at once, stays far below it. Not configurable.
pub(super) const PRIVATE_RATE: RateConfig = RateConfig {
    burst: 20,
    per_sec: 5,
};

/// Names on hold and the private-message buckets.
#[derive(Default)]
pub(super) struct Guard {
    /// Skeleton of a dropped member's name, to its address's [`group`] and when the hold ends.
    held: HashMap<Arc<str>, (IpAddr, Instant)>,
    /// Per recipient; made on a member's first private line, removed when it leaves.
    private: HashMap<MemberId, TokenBucket>,
}

/// Why a name cannot be taken.
pub(super) enum NameClash {
    /// The very name (ignoring case) is in use.
    Taken,
    /// A different name that looks the same is in use.
    LooksLike,
    /// Held for the address of a member dropped moments ago; seconds left.
    Held(u64),
}

impl Guard {
    /// Holds `nick` for `ip`, whose member the server just dropped.
    pub(super) fn hold(&mut self, nick: &Nick, ip: IpAddr) {
        let now = Instant::now();
        // Expired holds go when new ones come, so the map is bounded by the drops of one hold time.
        self.held.retain(|_, (_, until)| *until > now);
        self.held
            .insert(nick.skeleton().into(), (group(ip), now + NAME_HOLD));
    }

    /// Seconds left on a hold of `nick` against `ip`, if any.
    fn held_against(&self, nick: &Nick, ip: IpAddr) -> Option<u64> {
        let (owner, until) = self.held.get(nick.skeleton())?;
        let left = until.checked_duration_since(Instant::now())?;
        (*owner != group(ip)).then(|| left.as_secs().max(1))
    }

    /// Spends one of `to`'s private allowance; false when it is used up.
    fn allow_private(&mut self, to: MemberId) -> bool {
        let now = Instant::now();
        let bucket = self
            .private
            .entry(to)
            .or_insert_with(|| TokenBucket::new(PRIVATE_RATE, now));
        if bucket.wait(now).is_some() {
            return false;
        }
        bucket.spend(now);
        true
    }

    /// Forgets a member that left.
    pub(super) fn forget(&mut self, id: MemberId) {
        self.private.remove(&id);
    }
}

impl Hub {
    /// Whether member `id` (or a newcomer, `None`) coming from `ip` may take `nick`.
    pub(super) fn name_clash(
        &self,
        id: Option<MemberId>,
        nick: &Nick,
        ip: IpAddr,
    ) -> Option<NameClash> {
        if let Some(&other) = self.by_nick.get(nick.skeleton()) {
            if Some(other) != id {
                let same = self
                    .members
                    .get(&other)
                    .is_some_and(|m| m.nick.key() == nick.key());
                return Some(if same {
                    NameClash::Taken
                } else {
                    NameClash::LooksLike
                });
            }
            return None;
        }
        self.guard.held_against(nick, ip).map(NameClash::Held)
    }

    /// Spends one of `to`'s private allowance; false when it is used up.
    pub(super) fn allow_private(&mut self, to: MemberId) -> bool {
        self.guard.allow_private(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hold is for the owner's /64: another address in it may take the name, others not.
    #[test]
    fn a_hold_is_for_the_owners_64() {
        let nick = Nick::parse("victim").unwrap();
        let mut guard = Guard::default();
        guard.hold(&nick, "2001:db8:0:1::1".parse().unwrap());
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(guard.held_against(&nick, ip("2001:db8:0:1:abcd::7")), None);
        assert!(guard.held_against(&nick, ip("2001:db8:0:2::1")).is_some());
        guard.hold(&nick, ip("192.0.2.1"));
        assert!(guard.held_against(&nick, ip("192.0.2.2")).is_some());
    }
}
