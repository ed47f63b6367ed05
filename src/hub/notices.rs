//! Join and leave notices that stay readable in big rooms.
//!
//! 15,000 people joining one room would be 112 million join notices if each went to everybody
//! already there: nobody reads that, and relaying it is what made join storms take half a
//! minute. The rule (documented in docs/PROTOCOL.md):
//!
//! - In a room of at most [`SMALL_ROOM`] members, every join and leave is announced at once.
//! - In a bigger room, the first [`FEW`] joins and leaves in a [`WINDOW`] are announced at once;
//!   later ones are held, and when the window ends the room gets one summary of them, in the
//!   order they happened (the line door shows it as at most two lines, `* 37 people joined:
//!   alice, bob, carol and 34 others` and the same for leaves).
//! - Held notices also go out, as a summary, before any other line the room is sent (a message,
//!   a rename), so nobody's message arrives before the notice that they joined.
//! - A room's size, for this rule, is the most members it had since its last join or leave
//!   notice: sessions
//!   that all end at once (a network cut) are removed together before the first of their leave
//!   notices, which would otherwise find a small room and go out one by one. And while a window
//!   a big room opened lasts, the room counts as big.
//!
//! This type only decides and remembers; the hub sends the notices and keeps the timers. Time
//! is a parameter, so tests move it instead of waiting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::hub::event::Arrival;
use crate::names::Nick;

/// Rooms up to this many members see every notice at once: small enough that even a burst of
/// joins is a readable screenful. Not configurable.
pub const SMALL_ROOM: usize = 32;

/// Notices a big room gets one by one per window before they are summed up. Not configurable.
pub const FEW: u32 = 4;

/// How long held notices wait before their summary goes out. A second is short enough to read
/// as "at once" and long enough to sum up a storm into a line or two. Not configurable.
pub const WINDOW: Duration = Duration::from_secs(1);

/// One room's notice state.
#[derive(Default)]
pub struct Notices {
    window_start: Option<Instant>,
    sent_in_window: u32,
    /// Held joins and leaves, in order.
    held: Vec<(Arrival, Nick)>,
    /// The most members the room had since the last join or leave notice (0: nobody left since).
    peak: usize,
}

impl Notices {
    /// Whether a notice for a room of `members` recipients goes out now. Counts it if so.
    pub fn admit(&mut self, now: Instant, members: usize) -> bool {
        let size = members.max(std::mem::take(&mut self.peak));
        if self.is_holding() {
            // Keep the order: nothing overtakes notices already held.
            return false;
        }
        let current = self
            .window_start
            .is_some_and(|start| now.duration_since(start) < WINDOW);
        if size <= SMALL_ROOM && !current {
            return true;
        }
        if !current {
            self.window_start = Some(now);
            self.sent_in_window = 0;
        }
        if self.sent_in_window < FEW {
            self.sent_in_window += 1;
            return true;
        }
        false
    }

    /// A member is leaving a room of `members` (counting it): the size the next notice sees.
    pub fn leaving(&mut self, members: usize) {
        self.peak = self.peak.max(members);
    }

    /// Holds a notice for the summary. Returns true for the first one held, when the caller
    /// must arrange for [`Notices::summary`] to be called a [`WINDOW`] later.
    pub fn hold(&mut self, arrival: Arrival, nick: &Nick) -> bool {
        let first = !self.is_holding();
        self.held.push((arrival, nick.clone()));
        first
    }

    /// True while notices wait for their summary.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Takes the held notices, in order, for one summary. The room stays in "storm" mode for a
    /// window: its next notices are held at once.
    pub fn summary(&mut self, now: Instant) -> Option<Arc<[(Arrival, Nick)]>> {
        self.window_start = Some(now);
        self.sent_in_window = FEW;
        let held = std::mem::take(&mut self.held);
        (!held.is_empty()).then(|| held.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::testing::nick;

    #[test]
    fn a_small_room_sees_every_notice() {
        let mut notices = Notices::default();
        let now = Instant::now();
        assert!((0..100).all(|_| notices.admit(now, SMALL_ROOM)));
    }

    /// Members removed together before their notices still make the room big for the first of
    /// them, and the window it opens keeps the rest held.
    #[test]
    fn a_room_emptied_at_once_counts_as_big() {
        let mut notices = Notices::default();
        let now = Instant::now();
        for members in (2..=100).rev() {
            notices.leaving(members);
        }
        let admitted = (0..99).filter(|_| notices.admit(now, 1)).count();
        assert_eq!(admitted, FEW as usize);
    }

    /// Past a few notices in a window, a big room's notices are held and summed up in order;
    /// the room stays in storm mode for a window, then notices go one by one again.
    #[test]
    fn a_big_room_sums_up_a_storm() {
        let mut notices = Notices::default();
        let now = Instant::now();
        for _ in 0..FEW {
            assert!(notices.admit(now, 1000));
        }
        assert!(!notices.admit(now, 1000));
        assert!(notices.hold(Arrival::Joined, &nick("alice")));
        for name in ["bob", "carol", "dave", "erin"] {
            assert!(!notices.admit(now, 1000));
            assert!(!notices.hold(Arrival::Joined, &nick(name)));
        }
        assert!(!notices.hold(Arrival::Left, &nick("zed")));
        let summary = notices.summary(now + WINDOW).unwrap();
        let shown: Vec<(Arrival, &str)> = summary.iter().map(|(a, n)| (*a, n.as_str())).collect();
        assert_eq!(
            shown,
            [
                (Arrival::Joined, "alice"),
                (Arrival::Joined, "bob"),
                (Arrival::Joined, "carol"),
                (Arrival::Joined, "dave"),
                (Arrival::Joined, "erin"),
                (Arrival::Left, "zed"),
            ]
        );
        assert!(!notices.is_holding());
        assert!(notices.summary(now + WINDOW).is_none());
        // Still in the storm: the next notice in the window is held.
        assert!(!notices.admit(now + WINDOW, 1000));
        // A window later, notices go out one by one again.
        assert!(notices.admit(now + WINDOW * 3, 1000));
    }
}
