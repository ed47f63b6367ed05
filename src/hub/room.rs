//! One occupied room: its members with their outboxes, and its held join/leave notices.
//!
//! Members sit in a plain `Vec` so that a relay walks contiguous memory. Each member remembers
//! its slot, so leaving is a `swap_remove`, O(1) whatever the room's size: at 15,000 members a
//! scan per leave made a leave storm quadratic. The price is that the order of the `Vec` is
//! not the joining order; `/who` sorts by each member's arrival instead.

use crate::hub::notices::Notices;
use crate::hub::outbox::Outbox;
use crate::vocab::MemberId;

/// A room's members and its notice coalescer.
#[derive(Default)]
pub(super) struct Room {
    members: Vec<(MemberId, Outbox)>,
    pub(super) notices: Notices,
}

impl Room {
    /// Adds a member; returns its slot, which [`Room::remove`] needs.
    pub(super) fn add(&mut self, id: MemberId, outbox: Outbox) -> usize {
        self.members.push((id, outbox));
        self.members.len() - 1
    }

    /// Removes the member in `slot`. The last member moves into that slot: its id is returned
    /// so the caller can update its slot.
    pub(super) fn remove(&mut self, slot: usize) -> Option<MemberId> {
        if slot >= self.members.len() {
            return None;
        }
        self.notices.leaving(self.members.len());
        self.members.swap_remove(slot);
        self.members.get(slot).map(|(id, _)| *id)
    }

    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(super) fn members(&self) -> &[(MemberId, Outbox)] {
        &self.members
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::outbox::{outbox, Budget};

    #[test]
    fn removal_moves_the_last_member_into_the_slot() {
        let budget = Budget::new(usize::MAX);
        let mut room = Room::default();
        let mut inboxes = Vec::new();
        for id in 0..3 {
            let (tx, rx) = outbox(100, budget.clone());
            inboxes.push(rx);
            assert_eq!(room.add(id, tx), id as usize);
        }
        assert_eq!(room.remove(0), Some(2));
        assert_eq!(room.members()[0].0, 2);
        assert_eq!(room.remove(1), None);
        assert_eq!(room.len(), 1);
        assert_eq!(room.remove(5), None);
    }
}
