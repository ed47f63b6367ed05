//! What goes to a room, and who in the room does not get it.

use std::sync::Arc;

use crate::hub::event::Event;
use crate::names::RoomName;
use crate::vocab::MemberId;

/// An event for the members of one room, with the members it skips.
#[derive(Debug, Clone)]
pub struct ToRoom {
    pub room: RoomName,
    pub event: Event,
    /// A member who does not get it (the sender of a public line, unless it asked for its own
    /// lines back; a newcomer, for the notice that it joined).
    pub except: Option<MemberId>,
    /// For a public line, the sender's name key: members who ignore it skip the line.
    pub sender: Option<Arc<str>>,
    /// Rooms told the same news just before (a member leaving several rooms): members seated in
    /// any of them got it there, once.
    pub told_in: Option<Arc<[RoomName]>>,
}

impl ToRoom {
    /// `event` for everybody in `room`.
    pub fn new(room: RoomName, event: Event) -> ToRoom {
        ToRoom {
            room,
            event,
            except: None,
            sender: None,
            told_in: None,
        }
    }

    /// The same, but not for members seated in any of `rooms` (told there already).
    pub fn told_in(mut self, rooms: &[RoomName]) -> ToRoom {
        self.told_in = (!rooms.is_empty()).then(|| rooms.into());
        self
    }

    /// The same, but not for `member`.
    pub fn except(mut self, member: Option<MemberId>) -> ToRoom {
        self.except = member;
        self
    }
}
