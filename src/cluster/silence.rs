//! What the users whose names this node lost may no longer say: nothing, until they are gone.
//!
//! A node frozen or cut off past the heartbeat's expiry may find, when it runs again, that
//! another node gave some of its users' names away meanwhile ([`super::RENEW`] says so). The hub
//! lets those users go (`hub/partition.rs`), but lines they typed during the freeze are read
//! the moment the process runs again, and would reach the log under a name that is somebody
//! else's by then: every node would show `alice: ...` from the wrong alice, right after the
//! right one joined. So from the moment Redis reports a name lost until the hub releases it, the
//! writer drops that user's lines and room entries (already queued ones too); its departure still
//! goes out. Keyed by member and name, so a user renamed since speaks under its new name.
//!
//! It must not know about Redis or the hub: it answers whether an entry may be appended.

use std::collections::HashSet;

use super::Entry;
use crate::vocab::MemberId as Member;

/// The (member, name skeleton) pairs whose names another node holds now.
#[derive(Debug, Default)]
pub(super) struct Silenced {
    lost: HashSet<(Member, String)>,
}

impl Silenced {
    /// Another node holds `skeleton` now, which `member` here had.
    pub(super) fn lose(&mut self, member: Member, skeleton: &str) {
        self.lost.insert((member, skeleton.to_owned()));
    }

    /// The hub released `member`'s name `skeleton` (the user went): nothing more can come.
    pub(super) fn released(&mut self, member: Member, skeleton: &str) {
        if !self.lost.is_empty() {
            self.lost.remove(&(member, skeleton.to_owned()));
        }
    }

    /// Whether `entry` may go to the log: anything but a line or a room entry under a lost name.
    pub(super) fn admits(&self, entry: &Entry) -> bool {
        if self.lost.is_empty() {
            return true;
        }
        match entry {
            Entry::Say { member, nick, .. } | Entry::Joined { member, nick, .. } => {
                !self.lost.contains(&(*member, nick.skeleton().to_owned()))
            }
            _ => true,
        }
    }

    /// Whether some name is lost and not yet released.
    pub(super) fn any(&self) -> bool {
        !self.lost.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{Nick, RoomName};
    use crate::vocab::Kind;

    fn say(member: Member, nick: &str) -> Entry {
        Entry::Say {
            member,
            nick: Nick::parse(nick).unwrap(),
            account: None,
            room: RoomName::parse("lobby").unwrap(),
            kind: Kind::Message,
            body: "hello".into(),
            attached: None,
        }
    }

    #[test]
    fn a_lost_name_says_nothing_until_released() {
        let mut silenced = Silenced::default();
        assert!(silenced.admits(&say(1, "alice")));
        let alice = Nick::parse("alice").unwrap();
        silenced.lose(1, alice.skeleton());
        assert!(silenced.any());
        assert!(!silenced.admits(&say(1, "alice")));
        assert!(
            !silenced.admits(&say(1, "ALICE")),
            "by skeleton, as names are claimed"
        );
        let entered = Entry::Joined {
            member: 1,
            nick: alice.clone(),
            room: RoomName::parse("elsewhere").unwrap(),
        };
        assert!(!silenced.admits(&entered));
        // Its departure goes out; other members, and this one under another name, speak.
        let left = Entry::Left {
            member: 1,
            nick: alice.clone(),
            rooms: vec![RoomName::parse("lobby").unwrap()],
            why: crate::vocab::Departure::Quit(None),
        };
        assert!(silenced.admits(&left));
        assert!(silenced.admits(&say(2, "alice")));
        assert!(silenced.admits(&say(1, "carol")));
        silenced.released(1, alice.skeleton());
        assert!(!silenced.any());
        assert!(silenced.admits(&say(1, "alice")));
    }
}
