//! Cluster mode: what this node knows of the other nodes' members, built from the cluster log.
//!
//! `/who`, `/rooms`, `/msg` and `/kick` reach members of other nodes through this view. Each
//! entry is keyed by (node, member id), which is unique cluster-wide; a member may sit in several
//! rooms, or in none (IRC users arrive in none, and may part every channel): a member is known
//! from its arrival until it leaves the chat, not only while a room lists it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::names::{Nick, RoomName};
use crate::vocab::MemberId;

/// Another node's member.
#[derive(Debug, Clone)]
pub struct Remote {
    pub nick: Nick,
    pub rooms: Vec<RoomName>,
}

/// The other nodes' members.
#[derive(Default)]
pub struct Remotes {
    members: HashMap<(Arc<str>, MemberId), Remote>,
    /// Lower-case name to (node, member), for `/msg` and `/kick`.
    by_name: HashMap<Arc<str>, (Arc<str>, MemberId)>,
}

impl Remotes {
    /// `member` of `node` is here under `nick`, in no room yet (or in the rooms known already).
    pub fn arrived(&mut self, node: &Arc<str>, member: MemberId, nick: &Nick) {
        let key = (node.clone(), member);
        self.members.entry(key.clone()).or_insert_with(|| Remote {
            nick: nick.clone(),
            rooms: Vec::new(),
        });
        self.by_name.insert(nick.key().into(), key);
    }

    /// Whether `member` of `node` is known.
    pub fn knows(&self, node: &Arc<str>, member: MemberId) -> bool {
        self.members.contains_key(&(node.clone(), member))
    }

    /// `member` of `node` entered `room` under `nick`; true if it was not in it before.
    pub fn entered(
        &mut self,
        node: &Arc<str>,
        member: MemberId,
        nick: &Nick,
        room: &RoomName,
    ) -> bool {
        let key = (node.clone(), member);
        let remote = self.members.entry(key).or_insert_with(|| Remote {
            nick: nick.clone(),
            rooms: Vec::new(),
        });
        let new = !remote.rooms.contains(room);
        if new {
            remote.rooms.push(room.clone());
        }
        self.by_name
            .insert(nick.key().into(), (node.clone(), member));
        new
    }

    /// `member` of `node` left `room` (and stays known: [`Remotes::forget`] when it leaves the
    /// chat).
    pub fn left(&mut self, node: &Arc<str>, member: MemberId, room: &RoomName) {
        if let Some(remote) = self.members.get_mut(&(node.clone(), member)) {
            remote.rooms.retain(|r| r != room);
        }
    }

    /// `member` of `node` is now called `new`.
    pub fn renamed(&mut self, node: &Arc<str>, member: MemberId, new: &Nick) {
        let key = (node.clone(), member);
        let Some(remote) = self.members.get_mut(&key) else {
            return;
        };
        if self.by_name.get(remote.nick.key()) == Some(&key) {
            self.by_name.remove(remote.nick.key());
        }
        remote.nick = new.clone();
        self.by_name.insert(new.key().into(), key);
    }

    /// Forgets `member` of `node`, returning what was known of it.
    pub fn forget(&mut self, node: &Arc<str>, member: MemberId) -> Option<Remote> {
        let key = (node.clone(), member);
        let remote = self.members.remove(&key)?;
        if self.by_name.get(remote.nick.key()) == Some(&key) {
            self.by_name.remove(remote.nick.key());
        }
        Some(remote)
    }

    /// Forgets every member of `node`, returning them.
    pub fn forget_node(&mut self, node: &Arc<str>) -> Vec<Remote> {
        let gone: Vec<MemberId> = self
            .members
            .keys()
            .filter(|(n, _)| n == node)
            .map(|(_, m)| *m)
            .collect();
        gone.into_iter()
            .filter_map(|m| self.forget(node, m))
            .collect()
    }

    /// The node and current name of the member called `nick`, if another node has it.
    pub fn find(&self, nick: &Nick) -> Option<(Arc<str>, &Nick)> {
        let (node, member) = self.by_name.get(nick.key())?;
        let remote = self.members.get(&(node.clone(), *member))?;
        Some((node.clone(), &remote.nick))
    }

    /// Names of other nodes' members in `room`, sorted.
    pub fn names_in(&self, room: &RoomName) -> Vec<Nick> {
        let mut names: Vec<Nick> = self
            .members
            .values()
            .filter(|r| r.rooms.contains(room))
            .map(|r| r.nick.clone())
            .collect();
        names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        names
    }

    /// Every other node's member, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Remote> {
        self.members.values()
    }

    /// How many members the other nodes have.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// How many other nodes have members.
    pub fn nodes(&self) -> usize {
        let nodes: std::collections::HashSet<&Arc<str>> =
            self.members.keys().map(|(node, _)| node).collect();
        nodes.len()
    }

    /// Adds other nodes' members to per-room counts.
    pub fn count_into<'a>(&'a self, counts: &mut HashMap<&'a RoomName, usize>) {
        for remote in self.members.values() {
            for room in &remote.rooms {
                *counts.entry(room).or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::testing::{nick, room};

    /// Members of other nodes are found by name, listed by room, renamed, and forgotten with
    /// their node.
    #[test]
    fn the_view_of_other_nodes() {
        let mut view = Remotes::default();
        let b: Arc<str> = "b".into();
        assert!(view.entered(&b, 1, &nick("bob"), &room("lobby")));
        assert!(
            view.entered(&b, 1, &nick("bob"), &room("rust")),
            "new to the room"
        );
        assert!(!view.entered(&b, 1, &nick("bob"), &room("rust")));
        assert!(view.entered(&b, 2, &nick("carol"), &room("rust")));
        assert_eq!(view.names_in(&room("rust")), [nick("bob"), nick("carol")]);
        view.renamed(&b, 1, &nick("robert"));
        assert!(view.find(&nick("bob")).is_none());
        assert_eq!(
            view.find(&nick("ROBERT")).map(|(_, n)| n.clone()),
            Some(nick("robert"))
        );
        view.left(&b, 1, &room("lobby"));
        let mut counts = HashMap::new();
        view.count_into(&mut counts);
        assert_eq!(counts.get(&room("rust")), Some(&2));
        assert_eq!(counts.get(&room("lobby")), None);
        assert_eq!(view.forget_node(&b).len(), 2);
        assert!(view.find(&nick("carol")).is_none());
    }

    /// A member in no room (an IRC user before its first `JOIN`, or after its last `PART`) is
    /// known by name until it is forgotten, and no room lists it.
    #[test]
    fn a_member_in_no_room_is_known() {
        let mut view = Remotes::default();
        let a: Arc<str> = "a".into();
        view.arrived(&a, 7, &nick("ann"));
        assert!(view.knows(&a, 7));
        assert_eq!(view.find(&nick("Ann")).map(|(n, _)| n), Some(a.clone()));
        assert!(view.entered(&a, 7, &nick("ann"), &room("lobby")));
        assert!(!view.entered(&a, 7, &nick("ann"), &room("lobby")));
        view.left(&a, 7, &room("lobby"));
        assert!(view.names_in(&room("lobby")).is_empty());
        assert!(view.find(&nick("ann")).is_some(), "known in no room");
        assert!(view.forget(&a, 7).is_some());
        assert!(view.find(&nick("ann")).is_none());
    }
}
