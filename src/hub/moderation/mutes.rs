//! Mutes: who may not speak publicly, and for how long.
//!
//! A mute is set on a name, and also covers what else identifies the same person, so that
//! neither `/nick` nor reconnecting under another name lifts it: the connection muted, its
//! account, and its address (an IPv6 /64 as a whole; not loopback, where every local user would
//! share it). A rename adds the new name to the mutes that cover the member.

use std::net::IpAddr;
use std::sync::Arc;

use crate::hub::members::Who;
use crate::limits::address::group;
use crate::storage::accounts::StoredMute;
use crate::vocab::MemberId;

/// Most names one mute remembers for its user (the name muted, then what it renamed to).
const MUTE_NAMES: usize = 8;

/// One mute.
#[derive(Debug)]
struct Mute {
    /// Name keys: the one muted first, then the names its user took since.
    names: Vec<Arc<str>>,
    /// The account the muted user was logged in to, if any.
    account: Option<Arc<str>>,
    ip: Option<IpAddr>,
    /// The connection muted, if it was connected.
    member: Option<MemberId>,
    /// When it ends, in milliseconds since the epoch (it is stored); `None`: until lifted.
    expires_ms: Option<i64>,
}

impl Mute {
    fn named(&self, key: &str) -> bool {
        self.names.iter().any(|n| **n == *key)
    }

    fn covers(&self, who: &Who<'_>) -> bool {
        self.member == Some(who.id)
            || self.named(who.nick.key())
            || who
                .account
                .is_some_and(|a| self.account.as_deref() == Some(a) || self.named(a))
            || self.ip.is_some_and(|ip| ip == group(who.ip))
    }
}

/// A mute to set: on the name `name` (lower case), with what identified its user.
#[derive(Debug, Clone, Copy)]
pub struct Muting<'a> {
    pub name: &'a str,
    pub account: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub member: Option<MemberId>,
    pub expires_ms: Option<i64>,
}

/// The mutes in force. Few (operators set them by hand), so a list.
#[derive(Debug, Default)]
pub struct Mutes {
    list: Vec<Mute>,
}

impl Mutes {
    /// The mutes stored, loaded at start: no connection yet.
    pub fn new(stored: Vec<StoredMute>) -> Mutes {
        let list = stored
            .into_iter()
            .map(|m| Mute {
                names: vec![m.name.into()],
                account: m.account.map(Into::into),
                ip: m.address,
                member: None,
                expires_ms: m.expires_ms,
            })
            .collect();
        Mutes { list }
    }

    /// Mutes a name; a second mute of the same name replaces the first (a new duration).
    pub fn set(&mut self, muting: Muting<'_>) {
        self.list.retain(|m| !m.named(muting.name));
        self.list.push(Mute {
            names: vec![muting.name.into()],
            account: muting.account.map(Into::into),
            ip: muting.ip,
            member: muting.member,
            expires_ms: muting.expires_ms,
        });
    }

    /// Lifts the mutes on `name`, or covering `target`; returns the names they were set on.
    pub fn lift(&mut self, name: &str, target: Option<&Who<'_>>) -> Vec<String> {
        let mut lifted = Vec::new();
        self.list.retain(|mute| {
            let lift = mute.named(name) || target.is_some_and(|t| mute.covers(t));
            if lift {
                // The name it was set on: the stored row's key.
                lifted.extend(mute.names.first().map(|n| n.to_string()));
            }
            !lift
        });
        lifted
    }

    /// Whether a mute covers `who` now. Expired mutes are dropped here.
    pub fn covers(&mut self, who: &Who<'_>, now_ms: i64) -> bool {
        if self.list.is_empty() {
            return false;
        }
        self.list
            .retain(|m| m.expires_ms.is_none_or(|at| at > now_ms));
        self.list.iter().any(|m| m.covers(who))
    }

    /// `who` was called `old` until now: the mutes that cover it cover its new name too.
    pub fn renamed(&mut self, who: &Who<'_>, old: &str) {
        let new = who.nick.key();
        for mute in &mut self.list {
            if (mute.named(old) || mute.covers(who)) && !mute.named(new) {
                if mute.names.len() >= MUTE_NAMES {
                    // Keep the name the operator muted (for `/unmute`); forget the oldest rename.
                    mute.names.remove(1);
                }
                mute.names.push(new.into());
                mute.member = Some(who.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Nick;

    fn who<'a>(id: MemberId, nick: &'a Nick, account: Option<&'a str>, ip: &str) -> Who<'a> {
        Who {
            id,
            nick,
            account,
            ip: ip.parse().unwrap(),
            operator: false,
        }
    }

    /// A mute covers the name, the connection, the account and the address (by /64); it
    /// follows renames; it expires; lifting by a covered member lifts it.
    #[test]
    fn a_mute_covers_the_person() {
        let bob = Nick::parse("bob").unwrap();
        let bob2 = Nick::parse("bob2").unwrap();
        let other = Nick::parse("carol").unwrap();
        let mut mutes = Mutes::default();
        mutes.set(Muting {
            name: "bob",
            account: Some("bob"),
            ip: Some("2001:db8::".parse().unwrap()),
            member: Some(1),
            expires_ms: Some(1000),
        });
        assert!(
            mutes.covers(&who(1, &other, None, "192.0.2.1"), 0),
            "the connection"
        );
        assert!(
            mutes.covers(&who(2, &bob, None, "192.0.2.1"), 0),
            "the name"
        );
        assert!(
            mutes.covers(&who(3, &other, Some("bob"), "192.0.2.1"), 0),
            "the account"
        );
        assert!(
            mutes.covers(&who(4, &other, None, "2001:db8::7"), 0),
            "the /64"
        );
        assert!(!mutes.covers(&who(5, &other, None, "192.0.2.1"), 0));
        mutes.renamed(&who(6, &bob2, None, "192.0.2.1"), "bob");
        assert!(
            mutes.covers(&who(7, &bob2, None, "192.0.2.1"), 0),
            "the new name"
        );
        assert!(
            !mutes.covers(&who(2, &bob, None, "192.0.2.1"), 1000),
            "expired"
        );
        mutes.set(Muting {
            name: "bob",
            account: None,
            ip: None,
            member: None,
            expires_ms: None,
        });
        let lifted = mutes.lift("nobody", Some(&who(9, &bob, None, "192.0.2.9")));
        assert_eq!(lifted, ["bob"]);
        assert!(!mutes.covers(&who(2, &bob, None, "192.0.2.1"), 0));
    }
}
