//! Who holds which name: names unique by look, and names held for an owner the server dropped.
//!
//! - Names are unique by their confusable skeleton ([`crate::names::skeleton`]), so `aIice`
//!   cannot appear beside `alice`; a lookup by name goes through the skeleton and then checks
//!   the very name, so a look-alike never finds somebody else.
//! - A name freed because the server dropped its owner (a slow reader) is held for its owner's
//!   address for [`NAME_HOLD`]: an attacker who got a victim dropped cannot speak as them a
//!   moment later. The address is compared by [`group`] (IPv6 by /64), like every per-address
//!   limit, so the owner gets the name back from a new privacy address.
//!
//! Time is a parameter, so a test of the hold's expiry moves a clock instead of waiting a
//! minute.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::limits::address::group;
use crate::names::Nick;
use crate::vocab::MemberId;

/// How long a name freed by a drop stays reserved for its owner's address. Not configurable: long
/// enough for a client to reconnect, short enough not to matter to anyone else.
pub const NAME_HOLD: Duration = Duration::from_secs(60);

/// The names in use and the names on hold.
#[derive(Default)]
pub struct Names {
    /// Skeleton of each name in use, to its member.
    by_skeleton: HashMap<Arc<str>, MemberId>,
    /// Skeleton of a dropped member's name, to its address's [`group`] and when the hold ends.
    held: HashMap<Arc<str>, (IpAddr, Instant)>,
}

/// Why a name cannot be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clash {
    /// The very name (ignoring case) is in use.
    Taken,
    /// A different name that looks the same is in use.
    LooksLike,
    /// Held for the address of a member dropped moments ago; seconds left.
    Held(u64),
}

impl Names {
    /// The member whose name looks like `nick` (the same skeleton), if any.
    pub fn look_alike(&self, nick: &Nick) -> Option<MemberId> {
        self.by_skeleton.get(nick.skeleton()).copied()
    }

    /// Whether member `me` (or a newcomer, `None`) coming from `ip` may take `nick` now.
    /// `name_of` gives a member's current name.
    pub fn clash<'a>(
        &self,
        me: Option<MemberId>,
        nick: &Nick,
        ip: IpAddr,
        now: Instant,
        name_of: impl FnOnce(MemberId) -> Option<&'a Nick>,
    ) -> Option<Clash> {
        if let Some(other) = self.look_alike(nick) {
            if Some(other) == me {
                return None;
            }
            let same = name_of(other).is_some_and(|n| n.key() == nick.key());
            return Some(if same { Clash::Taken } else { Clash::LooksLike });
        }
        let (owner, until) = self.held.get(nick.skeleton())?;
        let left = until.checked_duration_since(now).filter(|d| !d.is_zero())?;
        (*owner != group(ip)).then(|| Clash::Held(left.as_secs().max(1)))
    }

    /// `id` takes `nick` (checked with [`Names::clash`] first).
    pub fn take(&mut self, nick: &Nick, id: MemberId) {
        self.by_skeleton.insert(nick.skeleton().into(), id);
    }

    /// `id` gives `nick` up.
    pub fn free(&mut self, nick: &Nick, id: MemberId) {
        if self.look_alike(nick) == Some(id) {
            self.by_skeleton.remove(nick.skeleton());
        }
    }

    /// Holds `nick` for `ip`, whose member the server just dropped.
    pub fn hold(&mut self, nick: &Nick, ip: IpAddr, now: Instant) {
        // Expired holds go when new ones come, so the map is bounded by the drops of one hold time.
        self.held.retain(|_, (_, until)| *until > now);
        self.held
            .insert(nick.skeleton().into(), (group(ip), now + NAME_HOLD));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::testing::nick;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A name in use refuses its look-alikes, and the very name as taken; its holder may keep it.
    #[test]
    fn names_are_unique_by_look() {
        let mut names = Names::default();
        let alice = nick("alice");
        names.take(&alice, 1);
        let now = Instant::now();
        let lookup = |_| Some(&alice);
        let clash = |me, n: &str| names.clash(me, &nick(n), ip("192.0.2.1"), now, lookup);
        assert_eq!(clash(None, "ALICE"), Some(Clash::Taken));
        assert_eq!(clash(None, "aIice"), Some(Clash::LooksLike));
        assert_eq!(clash(Some(1), "aIice"), None);
        assert_eq!(clash(None, "bob"), None);
        names.free(&alice, 2);
        assert_eq!(
            names.look_alike(&alice),
            Some(1),
            "only its holder frees a name"
        );
        names.free(&alice, 1);
        assert_eq!(names.look_alike(&alice), None);
    }

    /// A hold is for the owner's /64: another address in it may take the name, others not.
    #[test]
    fn a_hold_is_for_the_owners_64() {
        let victim = nick("victim");
        let mut names = Names::default();
        let now = Instant::now();
        names.hold(&victim, ip("2001:db8:0:1::1"), now);
        let held = |names: &Names, from: &str| names.clash(None, &victim, ip(from), now, |_| None);
        assert_eq!(held(&names, "2001:db8:0:1:abcd::7"), None);
        assert_eq!(held(&names, "2001:db8:0:2::1"), Some(Clash::Held(60)));
        names.hold(&victim, ip("192.0.2.1"), now);
        assert!(held(&names, "192.0.2.2").is_some());
    }

    /// A hold ends after [`NAME_HOLD`], counted on the clock the caller passes.
    #[test]
    fn a_hold_expires() {
        let victim = nick("victim");
        let mut names = Names::default();
        let t0 = Instant::now();
        names.hold(&victim, ip("192.0.2.1"), t0);
        let at = |t| names.clash(None, &victim, ip("198.51.100.1"), t, |_| None);
        assert_eq!(at(t0 + Duration::from_millis(59_500)), Some(Clash::Held(1)));
        assert_eq!(at(t0 + NAME_HOLD), None);
    }
}
