//! Join and leave notices that stay readable in big rooms.
//!
//! 15,000 people joining one room would be 112 million join notices if each went to everybody
//! already there: nobody reads that, and relaying it is what made join storms take half a
//! minute. The rule (documented in docs/PROTOCOL.md):
//!
//! - In a room of at most [`SMALL_ROOM`] members, every join and leave is announced at once.
//! - In a bigger room, the first [`FEW`] joins and leaves in a [`WINDOW`] are announced at once;
//!   later ones are held, and when the window ends the room gets at most two summary lines,
//!   `* 37 people joined: alice, bob, carol and 34 others` and the same for leaves.
//! - Held notices also go out, as summaries, before any other line the room is sent (a message,
//!   a rename), so nobody's message arrives before the notice that they joined.
//!
//! This type only decides and remembers; the hub sends the lines and keeps the timers.

use std::time::{Duration, Instant};

use crate::names::Nick;
use crate::protocol;

/// Rooms up to this many members see every notice at once: small enough that even a burst of
/// joins is a readable screenful. Not configurable.
pub const SMALL_ROOM: usize = 32;

/// Notices a big room gets one by one per window before they are summed up. Not configurable.
pub const FEW: u32 = 4;

/// How long held notices wait before their summary goes out. A second is short enough to read
/// as "at once" and long enough to sum up a storm into a line or two. Not configurable.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Names listed in a summary before "and N others".
const NAMED: usize = 3;

/// Whether a user came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Joined,
    Left,
}

/// One room's notice state.
#[derive(Default)]
pub struct Notices {
    window_start: Option<Instant>,
    sent_in_window: u32,
    joined: Held,
    left: Held,
}

/// Notices of one kind waiting for their summary: a count and the first few names.
#[derive(Default)]
struct Held {
    count: usize,
    names: Vec<Nick>,
}

impl Held {
    fn add(&mut self, nick: &Nick) {
        self.count += 1;
        if self.names.len() < NAMED {
            self.names.push(nick.clone());
        }
    }

    fn summary(&mut self, change: Change) -> Option<String> {
        if self.count == 0 {
            return None;
        }
        let held = std::mem::take(self);
        Some(match change {
            Change::Joined => protocol::people_joined(held.count, &held.names),
            Change::Left => protocol::people_left(held.count, &held.names),
        })
    }
}

impl Notices {
    /// Whether a notice for a room of `members` recipients goes out now. Counts it if so.
    pub fn admit(&mut self, now: Instant, members: usize) -> bool {
        if self.is_holding() {
            // Keep the order: nothing overtakes notices already held.
            return false;
        }
        if members <= SMALL_ROOM {
            return true;
        }
        let current = self
            .window_start
            .is_some_and(|start| now.duration_since(start) < WINDOW);
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

    /// Holds a notice for the summary. Returns true for the first one held, when the caller
    /// must arrange for [`Notices::summaries`] to be called a [`WINDOW`] later.
    pub fn hold(&mut self, change: Change, nick: &Nick) -> bool {
        let first = !self.is_holding();
        match change {
            Change::Joined => self.joined.add(nick),
            Change::Left => self.left.add(nick),
        }
        first
    }

    /// True while notices wait for their summary.
    pub fn is_holding(&self) -> bool {
        self.joined.count > 0 || self.left.count > 0
    }

    /// Takes the summary lines (joins first, then leaves) and how many notices they sum up.
    /// The room stays in "storm" mode for a window: its next notices are held at once.
    pub fn summaries(&mut self, now: Instant) -> (Vec<String>, usize) {
        let n = self.joined.count + self.left.count;
        let lines = [
            self.joined.summary(Change::Joined),
            self.left.summary(Change::Left),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.window_start = Some(now);
        self.sent_in_window = FEW;
        (lines, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).unwrap()
    }

    #[test]
    fn a_small_room_sees_every_notice() {
        let mut notices = Notices::default();
        let now = Instant::now();
        assert!((0..100).all(|_| notices.admit(now, SMALL_ROOM)));
    }

    #[test]
    fn a_big_room_sums_up_a_storm() {
        let mut notices = Notices::default();
        let now = Instant::now();
        for _ in 0..FEW {
            assert!(notices.admit(now, 1000));
        }
        assert!(!notices.admit(now, 1000));
        assert!(notices.hold(Change::Joined, &nick("alice")));
        for name in ["bob", "carol", "dave", "erin"] {
            assert!(!notices.admit(now, 1000));
            assert!(!notices.hold(Change::Joined, &nick(name)));
        }
        assert!(!notices.hold(Change::Left, &nick("zed")));
        let (lines, n) = notices.summaries(now + WINDOW);
        assert_eq!(n, 6);
        assert_eq!(
            lines,
            [
                "* 5 people joined: alice, bob, carol and 2 others",
                "* zed left"
            ]
        );
        assert!(!notices.is_holding());
        // Still in the storm: the next notice in the window is held.
        assert!(!notices.admit(now + WINDOW, 1000));
        // A window later, notices go out one by one again.
        assert!(notices.admit(now + WINDOW * 3, 1000));
    }
}
