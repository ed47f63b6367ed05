//! Facts about members for a door that shows them its own way (IRC's `NAMES`, `WHO`, `WHOIS`,
//! `USERHOST`, `ISON`, `LUSERS`): the door asks with a [`Lookup`] and waits for the [`Found`]
//! on a reply channel, then words it itself. The hub answers with values, never text.
//!
//! Rooms are public (`/rooms` lists them), so any room may be looked at, not only the asker's.
//! Pure functions over membership, like `lists.rs`; other nodes' members are known by name
//! (and rooms) only.

use crate::hub::core::Core;
use crate::hub::event::Listed;
use crate::hub::members::Member;
use crate::hub::remote::Remotes;
use crate::names::{Nick, RoomName};

/// The most members a [`Lookup::Matching`] returns: a mask like `*` on a big server must not
/// cost a reply of every member. Not configurable; IRC servers commonly cap `WHO` so.
pub const MAX_MATCHES: usize = 500;

/// The most names one [`Lookup::Named`] looks up (IRC's `ISON` takes a line of them).
pub const MAX_NAMED: usize = 64;

/// What a door asks about members.
pub enum Lookup {
    /// Everyone in a room, in the order they arrived (this node's members first).
    Room(RoomName),
    /// Members whose name the predicate accepts (a door's mask), sorted by name, at most
    /// [`MAX_MATCHES`].
    Matching(Box<dyn Fn(&Nick) -> bool + Send>),
    /// These members, in the order asked, with the rooms they are in; names nobody has are left
    /// out. At most [`MAX_NAMED`] are looked up.
    Named(Vec<Nick>),
    /// How many are connected, here and in the cluster.
    Counts,
}

/// The answer to a [`Lookup`].
#[derive(Debug, Clone)]
pub enum Found {
    Members(Vec<Listed>),
    /// Members with the rooms they sit in.
    Seated(Vec<(Listed, Vec<RoomName>)>),
    Counts(Counts),
}

/// How many are connected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Members on this node.
    pub local: usize,
    /// Members on every node.
    pub users: usize,
    /// The most members this node had at once since it started.
    pub peak_local: usize,
    /// Operators on this node.
    pub operators: usize,
    /// Occupied rooms on this node.
    pub rooms: usize,
    /// Nodes with members, this one included.
    pub nodes: usize,
}

/// The answer to `lookup`.
pub(super) fn answer(core: &Core, lookup: Lookup) -> Found {
    let (members, remotes) = (&core.members, core.link.remotes());
    match lookup {
        Lookup::Room(room) => {
            let mut listed: Vec<Listed> = members
                .arrivals_in(&room, 0, usize::MAX)
                .into_iter()
                .map(Member::listed)
                .collect();
            let remote = remotes.map(|r| r.names_in(&room)).unwrap_or_default();
            listed.extend(remote.into_iter().map(Listed::named));
            Found::Members(listed)
        }
        Lookup::Matching(matches) => {
            let here = members.iter().map(|(_, m)| m);
            let mut listed: Vec<Listed> = here
                .filter(|m| matches(&m.nick))
                .take(MAX_MATCHES)
                .map(Member::listed)
                .collect();
            let there = remotes.into_iter().flat_map(Remotes::iter);
            let room = MAX_MATCHES - listed.len();
            let remote = there.filter(|r| matches(&r.nick)).take(room);
            listed.extend(remote.map(|r| Listed::named(r.nick.clone())));
            listed.sort_unstable_by(|a, b| a.nick.key().cmp(b.nick.key()));
            Found::Members(listed)
        }
        Lookup::Named(nicks) => {
            let found = nicks.iter().take(MAX_NAMED).filter_map(|nick| {
                let here = core.member_by_name(nick).and_then(|id| members.get(id));
                if let Some(m) = here {
                    return Some((m.listed(), m.seats.rooms().cloned().collect()));
                }
                let (_, remote) = remotes?.find(nick)?;
                let rooms = remotes?
                    .iter()
                    .find(|r| r.nick == *remote)
                    .map(|r| r.rooms.clone());
                Some((Listed::named(remote.clone()), rooms.unwrap_or_default()))
            });
            Found::Seated(found.collect())
        }
        Lookup::Counts => {
            let local = members.len();
            let remote = remotes.map_or(0, Remotes::len);
            Found::Counts(Counts {
                local,
                users: local + remote,
                peak_local: members.peak().max(local),
                operators: members.iter().filter(|(_, m)| m.operator).count(),
                rooms: members.room_count(),
                nodes: 1 + remotes.map_or(0, Remotes::nodes),
            })
        }
    }
}
