//! Membership: who is connected, under which name, in which rooms, with which outbox.
//!
//! This is the one place that changes membership. A member may sit in several rooms at once (an
//! IRC user in many channels); the line door keeps it in one. Each room's members sit in a
//! plain `Vec` (see [`Room`]) and each member remembers its slot there, so leaving a room is a
//! `swap_remove`, O(1) whatever the room's size. `/who` lists a room in the order its members
//! arrived, kept as an arrival count per seat.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::hub::event::{Active, Listed};
use crate::hub::outbox::Outbox;
use crate::hub::room::Room;
use crate::names::{Nick, RoomName};
use crate::vocab::MemberId;

/// A connected member.
pub struct Member {
    pub nick: Nick,
    pub seats: Seats,
    pub outbox: Outbox,
    pub ip: IpAddr,
    /// The account logged in to (lower case), if any.
    pub account: Option<Arc<str>>,
    pub operator: bool,
    /// The member sees its own public lines (IRC's `echo-message`).
    pub echo: bool,
    /// Its away message, while it is away.
    pub away: Option<Arc<str>>,
    /// Connected over TLS.
    pub tls: bool,
    /// How it describes itself (IRC's real name), if its door asked.
    pub realname: Option<Arc<str>>,
    /// When it registered and last sent a line: a field set per line, so IRC's `WHOIS` shows
    /// idle time without any other bookkeeping.
    pub active: Active,
}

impl Member {
    /// The member as listings show it.
    pub fn listed(&self) -> Listed {
        Listed {
            nick: self.nick.clone(),
            account: self.account.clone(),
            operator: self.operator,
            away: self.away.clone(),
            tls: self.tls,
            realname: self.realname.clone(),
            active: Some(self.active),
        }
    }
}

/// A member as the hub's parts see it: enough to decide, nothing to change.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub id: MemberId,
    pub nick: &'a Nick,
    pub account: Option<&'a str>,
    pub ip: IpAddr,
    pub operator: bool,
}

/// Where a member sits in one room.
#[derive(Debug, Clone)]
pub struct Seat {
    pub room: RoomName,
    /// Its index in the room's member list (see [`Room::remove`]).
    slot: usize,
    /// Its arrival in that room, counted over all rooms: `/who` lists in this order.
    arrived: u64,
}

/// The rooms of one member, without a heap allocation for the usual one room: an idle line-door
/// user costs what it did when a member had exactly one room.
#[derive(Debug, Clone)]
pub enum Seats {
    One(Seat),
    Many(Vec<Seat>),
}

impl Default for Seats {
    fn default() -> Seats {
        Seats::Many(Vec::new())
    }
}

impl Seats {
    pub fn as_slice(&self) -> &[Seat] {
        match self {
            Seats::One(seat) => std::slice::from_ref(seat),
            Seats::Many(seats) => seats,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Seat] {
        match self {
            Seats::One(seat) => std::slice::from_mut(seat),
            Seats::Many(seats) => seats,
        }
    }

    /// The rooms, in the order the member entered them.
    pub fn rooms(&self) -> impl Iterator<Item = &RoomName> {
        self.as_slice().iter().map(|s| &s.room)
    }

    pub fn contains(&self, room: &RoomName) -> bool {
        self.rooms().any(|r| r == room)
    }

    /// The only room, if the member is in exactly one.
    pub fn only(&self) -> Option<&RoomName> {
        match self.as_slice() {
            [seat] => Some(&seat.room),
            _ => None,
        }
    }

    fn push(&mut self, seat: Seat) {
        match self {
            Seats::Many(seats) if seats.is_empty() => *self = Seats::One(seat),
            Seats::Many(seats) => seats.push(seat),
            Seats::One(first) => *self = Seats::Many(vec![first.clone(), seat]),
        }
    }

    fn take(&mut self, room: &RoomName) -> Option<Seat> {
        match self {
            Seats::One(seat) if seat.room == *room => match std::mem::take(self) {
                Seats::One(seat) => Some(seat),
                Seats::Many(_) => None,
            },
            Seats::One(_) => None,
            Seats::Many(seats) => {
                let at = seats.iter().position(|s| s.room == *room)?;
                let seat = seats.remove(at);
                if seats.len() == 1 {
                    *self = Seats::One(seats.remove(0));
                }
                Some(seat)
            }
        }
    }
}

/// Every member and every occupied room. Rooms exist while somebody is in them.
#[derive(Default)]
pub struct Members {
    members: HashMap<MemberId, Member>,
    rooms: HashMap<RoomName, Room>,
    /// Arrivals in any room so far, for [`Seat::arrived`].
    arrivals: u64,
    /// The most members there were at once.
    peak: usize,
}

impl Members {
    /// Adds a member in no room yet.
    pub fn insert(&mut self, id: MemberId, member: Member) {
        self.members.insert(id, member);
        self.peak = self.peak.max(self.members.len());
    }

    /// The most members there were at once.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Takes a member out of every room and of the map: no line reaches it any more. The member
    /// comes back with the rooms it was in.
    pub fn remove(&mut self, id: MemberId) -> Option<Member> {
        let member = self.members.remove(&id)?;
        for seat in member.seats.as_slice() {
            self.vacate(&seat.room, seat.slot);
        }
        Some(member)
    }

    /// Seats member `id` in `room` (created if empty); returns how many are in it now.
    pub fn seat(&mut self, id: MemberId, room: &RoomName) -> usize {
        let Some(member) = self.members.get_mut(&id) else {
            return 0;
        };
        if member.seats.contains(room) {
            return self.rooms.get(room).map_or(0, Room::len);
        }
        let occupants = self.rooms.entry(room.clone()).or_default();
        let slot = occupants.add(id, member.outbox.clone());
        self.arrivals += 1;
        member.seats.push(Seat {
            room: room.clone(),
            slot,
            arrived: self.arrivals,
        });
        occupants.len()
    }

    /// Takes member `id` out of `room`; false if it was not there.
    pub fn unseat(&mut self, id: MemberId, room: &RoomName) -> bool {
        let Some(seat) = self.members.get_mut(&id).and_then(|m| m.seats.take(room)) else {
            return false;
        };
        self.vacate(room, seat.slot);
        true
    }

    /// Empties `slot` of `room`, in O(1): the room's last member moves into the slot. An emptied
    /// room is forgotten, with any notices it held.
    fn vacate(&mut self, room: &RoomName, slot: usize) {
        let Some(occupants) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(moved) = occupants.remove(slot) {
            let seat = self
                .members
                .get_mut(&moved)
                .and_then(|m| m.seats.as_mut_slice().iter_mut().find(|s| s.room == *room));
            if let Some(seat) = seat {
                seat.slot = slot;
            }
        }
        if occupants.is_empty() {
            self.rooms.remove(room);
        }
    }

    pub fn get(&self, id: MemberId) -> Option<&Member> {
        self.members.get(&id)
    }

    pub fn get_mut(&mut self, id: MemberId) -> Option<&mut Member> {
        self.members.get_mut(&id)
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Every member, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (MemberId, &Member)> + Clone {
        self.members.iter().map(|(id, m)| (*id, m))
    }

    /// Every member as the parts see it.
    pub fn whos(&self) -> impl Iterator<Item = Who<'_>> + Clone {
        self.iter().map(|(id, m)| who(id, m))
    }

    /// Member `id` as the parts see it.
    pub fn who(&self, id: MemberId) -> Option<Who<'_>> {
        self.members.get(&id).map(|m| who(id, m))
    }

    pub fn room(&self, name: &RoomName) -> Option<&Room> {
        self.rooms.get(name)
    }

    pub fn room_mut(&mut self, name: &RoomName) -> Option<&mut Room> {
        self.rooms.get_mut(name)
    }

    /// How many rooms are occupied.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// The occupied rooms with their sizes.
    pub fn rooms(&self) -> impl Iterator<Item = (&RoomName, usize)> {
        self.rooms.iter().map(|(name, room)| (name, room.len()))
    }

    /// One page of `room`'s members in the order they arrived: the first `to` by arrival, of
    /// which those from `from` on are returned. It borrows rather than copies names, and selects
    /// before it sorts, so a huge room costs a partial sort of references plus the page.
    pub fn arrivals_in(&self, room: &RoomName, from: usize, to: usize) -> Vec<&Member> {
        let mut here: Vec<(u64, &Member)> = self
            .rooms
            .get(room)
            .map(Room::members)
            .unwrap_or_default()
            .iter()
            .filter_map(|(id, _)| {
                let member = self.members.get(id)?;
                let seat = member.seats.as_slice().iter().find(|s| s.room == *room)?;
                Some((seat.arrived, member))
            })
            .collect();
        let to = to.min(here.len());
        if to < here.len() {
            here.select_nth_unstable_by_key(to, |(arrived, _)| *arrived);
        }
        let shown = &mut here[..to];
        shown.sort_unstable_by_key(|(arrived, _)| *arrived);
        shown[from.min(to)..].iter().map(|(_, n)| *n).collect()
    }
}

fn who(id: MemberId, m: &Member) -> Who<'_> {
    Who {
        id,
        nick: &m.nick,
        account: m.account.as_deref(),
        ip: m.ip,
        operator: m.operator,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbox::{outbox, Budget};
    use crate::names::testing::room;

    fn member(name: &str, budget: &Arc<Budget>) -> (Member, crate::hub::outbox::Inbox) {
        let (outbox, inbox) = outbox(1024, budget.clone());
        let member = Member {
            nick: Nick::parse(name).unwrap(),
            seats: Seats::default(),
            outbox,
            ip: std::net::Ipv4Addr::LOCALHOST.into(),
            account: None,
            operator: false,
            echo: false,
            away: None,
            tls: false,
            realname: None,
            active: Active {
                signon_ms: 0,
                spoke_ms: 0,
            },
        };
        (member, inbox)
    }

    /// A member sits in several rooms; leaving one keeps the others; removal empties them all,
    /// and empty rooms are forgotten. Slots stay right after swap-removals.
    #[test]
    fn several_rooms_per_member() {
        let budget = Budget::new(usize::MAX);
        let mut members = Members::default();
        let mut inboxes = Vec::new();
        for (id, name) in [(1, "alice"), (2, "bob"), (3, "carol")] {
            let (m, inbox) = member(name, &budget);
            members.insert(id, m);
            inboxes.push(inbox);
            assert_eq!(members.seat(id, &room("lobby")), id as usize);
        }
        assert_eq!(members.seat(2, &room("rust")), 1);
        assert_eq!(
            members.seat(2, &room("rust")),
            1,
            "seating twice changes nothing"
        );
        assert_eq!(members.get(2).unwrap().seats.as_slice().len(), 2);
        assert!(members.get(2).unwrap().seats.only().is_none());
        // alice leaves: carol moves into her slot.
        assert!(members.unseat(1, &room("lobby")));
        assert!(!members.unseat(1, &room("lobby")));
        let names: Vec<&str> = members
            .arrivals_in(&room("lobby"), 0, 10)
            .iter()
            .map(|m| m.nick.as_str())
            .collect();
        assert_eq!(names, ["bob", "carol"]);
        assert!(members.remove(2).is_some());
        assert!(
            members.room(&room("rust")).is_none(),
            "an emptied room is forgotten"
        );
        assert!(members.unseat(3, &room("lobby")));
        assert!(members.room(&room("lobby")).is_none());
        assert_eq!(members.get(3).unwrap().seats.only(), None);
    }

    /// `/who` pages come in arrival order, whatever the slots.
    #[test]
    fn pages_follow_arrivals() {
        let budget = Budget::new(usize::MAX);
        let mut members = Members::default();
        let mut inboxes = Vec::new();
        for id in 0..10u64 {
            let (m, inbox) = member(&format!("u{id}"), &budget);
            members.insert(id, m);
            inboxes.push(inbox);
            members.seat(id, &room("lobby"));
        }
        members.unseat(0, &room("lobby"));
        members.seat(0, &room("lobby"));
        let page: Vec<&str> = members
            .arrivals_in(&room("lobby"), 3, 6)
            .iter()
            .map(|m| m.nick.as_str())
            .collect();
        assert_eq!(page, ["u4", "u5", "u6"]);
        let last: Vec<&str> = members
            .arrivals_in(&room("lobby"), 9, 20)
            .iter()
            .map(|m| m.nick.as_str())
            .collect();
        assert_eq!(last, ["u0"]);
    }
}
