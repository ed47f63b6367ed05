//! The long lists members ask for: who is in a room, and which rooms are occupied, a page at a
//! time ([`LIST_PAGE`] items), this node's members first and then other nodes'.
//!
//! Pure functions over membership: they borrow names rather than copy them, and select before
//! they sort, so a page of a huge room costs a partial sort of references plus the page.

use std::collections::HashMap;

use crate::hub::event::{Listed, Page};
use crate::hub::members::Members;
use crate::hub::remote::Remotes;
use crate::hub::LIST_PAGE;
use crate::names::RoomName;

/// One page (from 1; 0 for all) of `room`'s members in the order they arrived.
pub fn who(
    members: &Members,
    remotes: Option<&Remotes>,
    room: RoomName,
    page: usize,
) -> Page<Listed> {
    let local = members.room(&room).map_or(0, |r| r.len());
    let remote = remotes.map(|r| r.names_in(&room)).unwrap_or_default();
    let total = local + remote.len();
    let (from, to) = bounds(page, total);
    let mut items: Vec<Listed> = members
        .arrivals_in(&room, from, to.min(local))
        .into_iter()
        .map(|m| m.listed())
        .collect();
    let remote = &remote[from.saturating_sub(local)..to.saturating_sub(local)];
    items.extend(remote.iter().cloned().map(Listed::named));
    Page {
        room: Some(room),
        page,
        total,
        per_page: LIST_PAGE,
        items,
    }
}

/// One page (from 1; 0 for all) of the occupied rooms, by name, with their sizes: of those in
/// `only`, or of all when it is empty.
pub fn rooms(
    members: &Members,
    remotes: Option<&Remotes>,
    page: usize,
    only: &[RoomName],
) -> Page<(RoomName, usize)> {
    let mut counts: HashMap<&RoomName, usize> = members.rooms().collect();
    if let Some(remotes) = remotes {
        remotes.count_into(&mut counts);
    }
    if !only.is_empty() {
        counts.retain(|room, _| only.contains(room));
    }
    let mut rooms: Vec<(&RoomName, usize)> = counts.into_iter().collect();
    let total = rooms.len();
    let (from, to) = bounds(page, total);
    let by_name = |a: &(&RoomName, usize), b: &(&RoomName, usize)| a.0.as_str().cmp(b.0.as_str());
    if to < total {
        rooms.select_nth_unstable_by(to, by_name);
    }
    let shown = &mut rooms[..to];
    shown.sort_unstable_by(by_name);
    let items = shown[from..]
        .iter()
        .map(|(r, n)| ((*r).clone(), *n))
        .collect();
    Page {
        room: None,
        page,
        total,
        per_page: LIST_PAGE,
        items,
    }
}

/// The range of items on `page` (from 1; 0 for all) of a list of `total`.
fn bounds(page: usize, total: usize) -> (usize, usize) {
    if page == 0 {
        return (0, total);
    }
    let from = (page - 1).saturating_mul(LIST_PAGE).min(total);
    (from, from.saturating_add(LIST_PAGE).min(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages cut the list at [`LIST_PAGE`]; page 0 is the whole list; past the end is empty.
    #[test]
    fn pages() {
        assert_eq!(bounds(1, 450), (0, 200));
        assert_eq!(bounds(3, 450), (400, 450));
        assert_eq!(bounds(4, 450), (450, 450));
        assert_eq!(bounds(0, 450), (0, 450));
        assert_eq!(bounds(usize::MAX, 10), (10, 10));
    }

    /// A page knows whether another follows and how many items are left after it.
    #[test]
    fn what_follows_a_page() {
        let page = |n| Page::<()> {
            room: None,
            page: n,
            total: 450,
            per_page: LIST_PAGE,
            items: Vec::new(),
        };
        assert_eq!(
            (page(1).next(), page(1).left(), page(1).pages()),
            (Some(2), 250, 3)
        );
        assert_eq!(page(3).next(), None);
        assert_eq!(page(0).next(), None, "the whole list has no next page");
    }
}
