//! Bans: who is refused, and the matcher that decides.
//!
//! A ban targets a name (which covers the account of that name) or an address prefix; a single
//! address is a prefix of full length. IPv4 and IPv6 are one type ([`Net`]), and an IPv4 client
//! of a dual-stack listener (`::ffff:a.b.c.d`) matches IPv4 bans, as ergo's `flatip` does.
//!
//! The list lives in memory behind a lock ([`SharedBans`]) because the accept loop must refuse a
//! banned address before any other work, without a database round trip; the database keeps it
//! across restarts.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, RwLock};

use super::lookalike;
use crate::names::Nick;
use crate::vocab::Change;

/// The widest IPv4 prefix `/ban` accepts. Not configurable: a /8 is already sixteen million
/// addresses; anything wider locks out a large part of the internet, which no chat operator
/// should do by a typo (the server's owner can still add such a row with sqlite3 or
/// `smolchat ban add --force`).
pub const MIN_PREFIX_V4: u8 = 8;

/// The widest IPv6 prefix `/ban` accepts: a /32 is what a whole ISP is typically given.
pub const MIN_PREFIX_V6: u8 = 32;

/// An address prefix: `192.0.2.0/24`, `2001:db8::/32`, or one address (`/32`, `/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Net {
    /// The address with the bits past the prefix cleared.
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Parses `ADDRESS` or `ADDRESS/PREFIX`. IPv4-mapped IPv6 addresses become IPv4.
    pub fn parse(text: &str) -> Option<Net> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let mapped = matches!(addr, IpAddr::V6(_)) && addr.to_canonical().is_ipv4();
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            // `::ffff:192.0.2.0/120` is `192.0.2.0/24`.
            Some(p) if mapped => p.checked_sub(96)?,
            Some(p) => p,
            None => max,
        };
        if prefix > max {
            return None;
        }
        Some(Net {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The shortest prefix allowed for this family, when this one is shorter: the check is on the
    /// parsed prefix, so an IPv4 range written as IPv6 (`::ffff:0.0.0.0/96`) is an IPv4 /0.
    pub fn too_wide(&self) -> Option<u8> {
        let min = if self.addr.is_ipv4() {
            MIN_PREFIX_V4
        } else {
            MIN_PREFIX_V6
        };
        (self.prefix < min).then_some(min)
    }

    /// Whether `ip` falls in this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Clears the bits of `ip` past `prefix`.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

/// What a ban refuses.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A name, case-folded (`names::fold`): refused at the name prompt and on `/nick` with its
    /// look-alikes (see [`BanList::name`]), and its account too.
    Name(String),
    /// An address prefix: refused at connect.
    Net(Net),
}

impl Target {
    /// `ADDRESS[/PREFIX]` is an address ban; anything else is taken as a name (case-folded).
    /// The caller validates names.
    pub fn parse(text: &str) -> Target {
        match Net::parse(text) {
            Some(net) => Target::Net(net),
            None => Target::Name(crate::names::fold(text)),
        }
    }

    /// The `kind` column of the `bans` table.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Name(_) => "name",
            Target::Net(_) => "address",
        }
    }

    /// Rebuilds a target from its stored `kind` and text.
    pub fn from_stored(kind: &str, text: &str) -> Option<Target> {
        match kind {
            "name" => Some(Target::Name(crate::names::fold(text))),
            "address" => Net::parse(text).map(Target::Net),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Name(name) => f.write_str(name),
            Target::Net(net) => net.fmt(f),
        }
    }
}

/// One ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub target: Target,
    pub reason: Option<String>,
    /// The operator's name.
    pub by: String,
    pub created_ms: i64,
    /// Milliseconds since the epoch; `None` until lifted.
    pub expires_ms: Option<i64>,
}

impl Ban {
    /// The ban a [`Change::Ban`] sets (`None` for any other change).
    pub fn of(change: &Change) -> Option<Ban> {
        let Change::Ban {
            target,
            reason,
            by,
            created_ms,
            expires_ms,
        } = change
        else {
            return None;
        };
        Some(Ban {
            target: Target::parse(target),
            reason: reason.clone(),
            by: by.clone(),
            created_ms: *created_ms,
            expires_ms: *expires_ms,
        })
    }

    fn active(&self, now_ms: i64) -> bool {
        self.expires_ms.is_none_or(|at| at > now_ms)
    }
}

/// The bans in force. Address bans are few, so a list scanned in order is the fastest structure
/// there is for them. Name bans are looked up by skeleton: the skeletons each one covers are
/// computed when the list changes, so checking a name costs the skeletons of its stems and a
/// hash lookup for each, however many bans there are (a spam wave can bring thousands, and
/// every name typed at the prompt is checked: scanning 20,000 took 2 ms a name).
#[derive(Debug, Default, Clone)]
pub struct BanList {
    bans: Vec<Ban>,
    /// Each skeleton a name ban covers ([`lookalike::forms`]) to the positions of those bans in
    /// `bans`, in order.
    by_form: HashMap<String, Vec<usize>>,
}

/// The positions of the name bans in `bans` by the skeletons they cover.
fn index(bans: &[Ban]) -> HashMap<String, Vec<usize>> {
    let mut by_form: HashMap<String, Vec<usize>> = HashMap::new();
    for (at, ban) in bans.iter().enumerate() {
        if let Target::Name(name) = &ban.target {
            for form in lookalike::forms(name) {
                by_form.entry(form).or_default().push(at);
            }
        }
    }
    by_form
}

/// The ban list shared by the accept loop, the sessions and the hub.
pub type SharedBans = Arc<RwLock<BanList>>;

impl BanList {
    pub fn new(bans: Vec<Ban>) -> BanList {
        let by_form = index(&bans);
        BanList { bans, by_form }
    }

    /// The active ban covering address `ip`, if any.
    pub fn address(&self, ip: IpAddr, now_ms: i64) -> Option<&Ban> {
        self.bans
            .iter()
            .find(|b| b.active(now_ms) && matches!(&b.target, Target::Net(net) if net.contains(ip)))
    }

    /// The active name ban covering `nick`, if any: on its name or on a look-alike with a tail
    /// of digits and separators (`mallory` covers `ma1lory2`, see [`lookalike`]). What the name
    /// prompt and `/nick` refuse.
    pub fn name(&self, nick: &Nick, now_ms: i64) -> Option<&Ban> {
        if self.by_form.is_empty() {
            return None;
        }
        // The first in list order, as a scan would find it.
        lookalike::stems(nick)
            .iter()
            .filter_map(|stem| self.by_form.get(stem))
            .flatten()
            .filter_map(|&at| self.bans.get(at).map(|ban| (at, ban)))
            .filter(|(_, ban)| ban.active(now_ms))
            .min_by_key(|(at, _)| *at)
            .map(|(_, ban)| ban)
    }

    /// [`BanList::name`], and whether the ban is on `nick`'s very name (`true`) or only on a
    /// look-alike of it. The name prompt and `/nick` let the owner of a registered account use
    /// its name despite a look-alike ban (`/ban bob` is not about the account `bob_2`: its
    /// password says who is typing), but not despite a ban on the name itself.
    pub fn name_or_like(&self, nick: &Nick, now_ms: i64) -> Option<(&Ban, bool)> {
        let like = self.name(nick, now_ms)?;
        Some(match self.name_exact(nick.key(), now_ms) {
            Some(exact) => (exact, true),
            None => (like, false),
        })
    }

    /// The active ban on exactly `name` (any case), if any: what removes a connected user (or
    /// one logged in to the account `name`) when a ban comes in, as `/ban` does.
    pub fn name_exact(&self, name: &str, now_ms: i64) -> Option<&Ban> {
        let name = crate::names::fold(name);
        self.bans
            .iter()
            .find(|b| b.active(now_ms) && matches!(&b.target, Target::Name(n) if *n == name))
    }

    /// Adds a ban, replacing an earlier one on the same target. Expired bans are dropped.
    pub fn add(&mut self, ban: Ban, now_ms: i64) {
        self.bans
            .retain(|b| b.target != ban.target && b.active(now_ms));
        self.bans.push(ban);
        self.by_form = index(&self.bans);
    }

    /// Lifts the ban on `target`; false if there was none in force.
    pub fn remove(&mut self, target: &Target, now_ms: i64) -> bool {
        let before = self.active(now_ms).count();
        self.bans
            .retain(|b| &b.target != target && b.active(now_ms));
        self.by_form = index(&self.bans);
        self.bans.len() < before
    }

    /// The bans in force, oldest first.
    pub fn active(&self, now_ms: i64) -> impl Iterator<Item = &Ban> {
        self.bans.iter().filter(move |b| b.active(now_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_prefixes() {
        let net = Net::parse("192.0.2.77/24").unwrap();
        assert_eq!(net.to_string(), "192.0.2.0/24");
        assert!(net.contains(ip("192.0.2.1")));
        assert!(net.contains(ip("::ffff:192.0.2.200")));
        assert!(!net.contains(ip("192.0.3.1")));
        assert!(!net.contains(ip("2001:db8::1")));
        let one = Net::parse("10.1.2.3").unwrap();
        assert_eq!(one.to_string(), "10.1.2.3");
        assert!(one.contains(ip("10.1.2.3")));
        assert!(!one.contains(ip("10.1.2.4")));
        let all = Net::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        assert!(!all.contains(ip("::1")));
    }

    #[test]
    fn ipv6_prefixes() {
        let net = Net::parse("2001:db8:abcd::1/48").unwrap();
        assert_eq!(net.to_string(), "2001:db8:abcd::/48");
        assert!(net.contains(ip("2001:db8:abcd:ffff::9")));
        assert!(!net.contains(ip("2001:db8:abce::1")));
        assert!(!net.contains(ip("192.0.2.1")));
        let one = Net::parse("::1").unwrap();
        assert!(one.contains(ip("::1")));
        assert!(!one.contains(ip("::2")));
        // An IPv4-mapped prefix is the IPv4 prefix.
        assert_eq!(
            Net::parse("::ffff:192.0.2.0/120").unwrap(),
            Net::parse("192.0.2.0/24").unwrap()
        );
    }

    #[test]
    fn wide_prefixes_are_too_wide_in_any_spelling() {
        for (text, min) in [
            ("0.0.0.0/0", Some(8)),
            ("10.0.0.0/7", Some(8)),
            ("10.0.0.0/8", None),
            ("::ffff:0.0.0.0/96", Some(8)),
            ("::ffff:10.0.0.0/103", Some(8)),
            ("::ffff:10.0.0.0/104", None),
            ("::/0", Some(32)),
            ("2001::/16", Some(32)),
            ("2001:db8::/32", None),
            ("192.0.2.7", None),
            ("::1", None),
        ] {
            assert_eq!(Net::parse(text).unwrap().too_wide(), min, "{text}");
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in [
            "192.0.2.0/33",
            "2001:db8::/129",
            "1.2.3/8",
            "::ffff:1.2.3.4/90",
            "x/1",
        ] {
            assert_eq!(Net::parse(bad), None, "{bad}");
        }
        assert_eq!(Target::parse("Alice"), Target::Name("alice".into()));
    }

    fn ban(target: &str, expires_ms: Option<i64>) -> Ban {
        Ban {
            target: Target::parse(target),
            reason: None,
            by: "op".into(),
            created_ms: 0,
            expires_ms,
        }
    }

    #[test]
    fn the_list_matches_expires_and_lifts() {
        let mut list = BanList::default();
        list.add(ban("Mallory", None), 0);
        list.add(ban("198.51.100.0/24", Some(1000)), 0);
        let nick = |n: &str| Nick::parse(n).unwrap();
        assert!(list.name(&nick("MALLORY"), 500).is_some());
        assert!(list.name(&nick("ma1lory2"), 500).is_some());
        assert!(list.name_exact("ma1lory2", 500).is_none());
        assert!(list.name_exact("Mallory", 500).is_some());
        assert!(list.name(&nick("alice"), 500).is_none());
        let exact = |n: &str| list.name_or_like(&nick(n), 500).map(|(_, exact)| exact);
        assert_eq!(exact("Mallory"), Some(true));
        assert_eq!(exact("ma1lory2"), Some(false));
        assert_eq!(exact("alice"), None);
        assert!(list.address(ip("198.51.100.7"), 999).is_some());
        assert!(list.address(ip("198.51.100.7"), 1000).is_none(), "expired");
        assert_eq!(list.active(1000).count(), 1);
        assert!(list.remove(&Target::parse("mallory"), 1000));
        assert!(!list.remove(&Target::parse("mallory"), 1000));
        assert!(list.name(&nick("mallory"), 1000).is_none());
    }

    /// Name bans found by skeleton: among several covering one name, the first still in force
    /// (an expired one sharing its skeletons is passed over), however many bans there are.
    #[test]
    fn name_bans_are_found_by_skeleton_in_list_order() {
        let nick = |n: &str| Nick::parse(n).unwrap();
        let mut bans: Vec<Ban> = (0..5000)
            .map(|i| ban(&format!("troll{i}x"), None))
            .collect();
        bans.push(ban("mallory", Some(100)));
        bans.push(ban("ma1lory9", None));
        bans.push(ban("MALLORY_", None));
        let list = BanList::new(bans);
        let found = |n: &str, at: i64| list.name(&nick(n), at).map(|b| b.target.to_string());
        assert_eq!(found("rnallory2", 50).as_deref(), Some("mallory"));
        assert_eq!(found("rnallory2", 100).as_deref(), Some("ma1lory9"));
        assert_eq!(found("troll4999x_7", 100).as_deref(), Some("troll4999x"));
        assert_eq!(found("troll5000x", 100), None);
        assert_eq!(found("alice", 100), None);
    }
}
