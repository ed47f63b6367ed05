//! Each member's ignore list: the names whose public lines, actions and private lines it does
//! not want to see, on this connection.
//!
//! A filter on the one fan-out: the hub asks [`Ignores::ignores`] per recipient only when
//! somebody ignores somebody ([`Ignores::is_empty`] is the fast path, nearly always taken). A
//! renamed member stays ignored: its new name replaces the old one in every list, so a list
//! never grows by renaming and stays within [`MAX_IGNORED`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::hub::event::{Refusal, Reply};
use crate::names::Nick;
use crate::vocab::MemberId;

/// Most names one connection may ignore. Not configurable: a hundred covers any harassment a
/// person meets in one session, and bounds both the hub's memory and the `/ignore` listing.
pub const MAX_IGNORED: usize = 100;

/// The ignore lists of the members that have one.
#[derive(Default)]
pub struct Ignores {
    /// Each ignoring member's ignored names (lower case).
    lists: HashMap<MemberId, HashSet<Arc<str>>>,
}

impl Ignores {
    /// True when nobody ignores anybody: public lines need no filtering.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }

    /// Whether `who` ignores the name `sender` (lower case).
    pub fn ignores(&self, who: MemberId, sender: &str) -> bool {
        !self.lists.is_empty() && self.lists.get(&who).is_some_and(|set| set.contains(sender))
    }

    /// `/ignore NAME` from `me` (whose own name is `my_nick`).
    pub fn ignore(&mut self, me: MemberId, my_nick: &Nick, nick: Nick) -> Result<Reply, Refusal> {
        if nick == *my_nick {
            return Err(Refusal::IgnoreSelf);
        }
        let set = self.lists.entry(me).or_default();
        if set.len() >= MAX_IGNORED && !set.contains(nick.key()) {
            return Err(Refusal::IgnoreFull(MAX_IGNORED));
        }
        set.insert(nick.key().into());
        Ok(Reply::Ignoring(nick))
    }

    /// `/unignore NAME` from `me`.
    pub fn unignore(&mut self, me: MemberId, nick: Nick) -> Result<Reply, Refusal> {
        let removed = match self.lists.get_mut(&me) {
            Some(set) => {
                let removed = set.remove(nick.key());
                if set.is_empty() {
                    self.lists.remove(&me);
                }
                removed
            }
            None => false,
        };
        if removed {
            Ok(Reply::Unignored(nick))
        } else {
            Err(Refusal::NotIgnoring(nick))
        }
    }

    /// `/ignore` alone: the names `me` ignores, sorted.
    pub fn list(&self, me: MemberId) -> Reply {
        let mut names: Vec<Arc<str>> = self.lists.get(&me).into_iter().flatten().cloned().collect();
        names.sort();
        Reply::IgnoreList(names)
    }

    /// A member was renamed: whoever ignored the old name ignores the new one instead.
    pub fn renamed(&mut self, old: &Nick, new: &Nick) {
        for set in self.lists.values_mut() {
            if set.remove(old.key()) {
                set.insert(new.key().into());
            }
        }
    }

    /// Forgets a member that left.
    pub fn forget(&mut self, id: MemberId) {
        self.lists.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::testing::nick;

    /// Ignoring is per member, follows renames, is capped, and refuses oneself.
    #[test]
    fn ignore_lists() {
        let mut ignores = Ignores::default();
        let me = nick("carol");
        assert!(ignores.is_empty());
        assert!(matches!(
            ignores.ignore(1, &me, nick("Bob")),
            Ok(Reply::Ignoring(_))
        ));
        assert!(ignores.ignores(1, "bob") && !ignores.ignores(2, "bob"));
        assert_eq!(
            ignores.ignore(1, &me, nick("carol")).err(),
            Some(Refusal::IgnoreSelf)
        );
        ignores.renamed(&nick("bob"), &nick("bob2"));
        assert!(ignores.ignores(1, "bob2") && !ignores.ignores(1, "bob"));
        assert!(matches!(ignores.list(1), Reply::IgnoreList(names) if names.len() == 1));
        for n in 0..MAX_IGNORED - 1 {
            assert!(ignores.ignore(1, &me, nick(&format!("x{n}"))).is_ok());
        }
        assert_eq!(
            ignores.ignore(1, &me, nick("one-too-many")).err(),
            Some(Refusal::IgnoreFull(MAX_IGNORED))
        );
        assert!(
            ignores.ignore(1, &me, nick("bob2")).is_ok(),
            "a name already there"
        );
        assert_eq!(
            ignores.unignore(1, nick("nobody")).err(),
            Some(Refusal::NotIgnoring(nick("nobody")))
        );
        ignores.forget(1);
        assert!(ignores.is_empty());
    }
}
