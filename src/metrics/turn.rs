//! Counting the hub's work per turn: a plain struct the hub fills as it goes, added to the
//! shared counters once at the end of the turn.
//!
//! A fan-out to a thousand users is a thousand outbox pushes; an atomic add for each, on a
//! counter every executor thread also touches, would bounce one cache line between the cores
//! and show in the fan-out benchmark. So [`TurnCounts`] has ordinary `u64` fields, and the hub
//! calls [`HubStats::flush`] once per turn (a turn handles up to 64 events): a few relaxed
//! atomic adds, and none at all for a turn that counted nothing.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use super::refusal::{Refusal, KINDS};

/// Which bound a dropped slow reader passed, for the `limit` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowLimit {
    /// Its own outbox was full (`--outbox-bytes`).
    Outbox,
    /// All outboxes together were over `--outbox-total-bytes` and it was furthest behind.
    Total,
}

/// What the hub did in one turn. Plain fields: filling it costs an add in a register.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TurnCounts {
    relayed: u64,
    deliveries: u64,
    bytes: u64,
    dropped: [u64; 2],
    refusals: [u64; KINDS],
}

impl TurnCounts {
    /// `lines` public lines relayed to their rooms (after their commit).
    pub fn relayed(&mut self, lines: u64) {
        self.relayed += lines;
    }

    /// `lines` lines pushed into outboxes, `bytes` bytes in all: call it once per fan-out with
    /// the number of recipients reached and `recipients * line.len()`, not once per recipient.
    pub fn delivered(&mut self, lines: u64, bytes: u64) {
        self.deliveries += lines;
        self.bytes += bytes;
    }

    /// A slow reader dropped.
    pub fn dropped(&mut self, limit: SlowLimit) {
        self.dropped[limit as usize] += 1;
    }

    /// A refusal the hub made (a private-message flood, a line refused while chat is paused).
    pub fn refused(&mut self, kind: Refusal) {
        self.refusals[kind as usize] += 1;
    }
}

/// The hub's shared counters and gauges. Cloning shares them.
#[derive(Debug, Clone)]
pub struct HubStats {
    relayed: Counter,
    deliveries: Counter,
    bytes: Counter,
    dropped: Vec<Counter>,
    refusals: Vec<Counter>,
    users: Gauge,
    rooms: Gauge,
    paused: Gauge,
}

impl Default for HubStats {
    /// Counters registered nowhere: for tests, and hubs run without a server.
    fn default() -> HubStats {
        let counters = |n| (0..n).map(|_| Counter::default()).collect();
        HubStats::new(
            Default::default(),
            counters(2),
            counters(KINDS),
            Default::default(),
        )
    }
}

impl HubStats {
    /// From the registered instruments (see `Metrics::new`).
    pub(super) fn new(
        [relayed, deliveries, bytes]: [Counter; 3],
        dropped: Vec<Counter>,
        refusals: Vec<Counter>,
        [users, rooms, paused]: [Gauge; 3],
    ) -> HubStats {
        HubStats {
            relayed,
            deliveries,
            bytes,
            dropped,
            refusals,
            users,
            rooms,
            paused,
        }
    }

    /// Adds a turn's counts to the shared counters and clears them for the next turn. Call it
    /// once per turn, after the turn's last event.
    pub fn flush(&self, turn: &mut TurnCounts) {
        if *turn == TurnCounts::default() {
            return;
        }
        let add = |counter: &Counter, n: u64| {
            if n > 0 {
                counter.inc_by(n);
            }
        };
        add(&self.relayed, turn.relayed);
        add(&self.deliveries, turn.deliveries);
        add(&self.bytes, turn.bytes);
        for (counter, n) in self.dropped.iter().zip(turn.dropped) {
            add(counter, n);
        }
        for (counter, n) in self.refusals.iter().zip(turn.refusals) {
            add(counter, n);
        }
        *turn = TurnCounts::default();
    }

    /// The users with a name and the rooms with someone in them, on this node. Cheap enough
    /// to call every turn (two relaxed stores), or only when they change.
    pub fn set_sizes(&self, users: usize, rooms: usize) {
        self.users.set(super::gauge_value(users));
        self.rooms.set(super::gauge_value(rooms));
    }

    /// Whether chat is paused (users were told so): call it where the hub tells them.
    pub fn set_paused(&self, paused: bool) {
        self.paused.set(i64::from(paused));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A turn's counts reach the shared counters at the flush, and only then; the turn is
    /// cleared for the next one.
    #[test]
    fn a_turn_is_added_once_at_its_flush() {
        let stats = HubStats::default();
        let mut turn = TurnCounts::default();
        turn.relayed(1);
        turn.delivered(1000, 1000 * 12);
        turn.delivered(2, 40);
        turn.dropped(SlowLimit::Total);
        turn.refused(Refusal::PrivateFlood);
        turn.refused(Refusal::PrivateFlood);
        assert_eq!(stats.deliveries.get(), 0, "nothing shared before the flush");
        stats.flush(&mut turn);
        assert_eq!(turn, TurnCounts::default());
        assert_eq!(stats.relayed.get(), 1);
        assert_eq!(stats.deliveries.get(), 1002);
        assert_eq!(stats.bytes.get(), 12_040);
        assert_eq!(stats.dropped[SlowLimit::Total as usize].get(), 1);
        assert_eq!(stats.dropped[SlowLimit::Outbox as usize].get(), 0);
        assert_eq!(stats.refusals[Refusal::PrivateFlood as usize].get(), 2);
        stats.flush(&mut turn);
        assert_eq!(stats.deliveries.get(), 1002, "an empty turn adds nothing");
    }

    /// Clones share their counters: the hub's handle and the registry's are the same.
    #[test]
    fn clones_share() {
        let stats = HubStats::default();
        let mut turn = TurnCounts::default();
        turn.relayed(3);
        stats.clone().flush(&mut turn);
        assert_eq!(stats.relayed.get(), 3);
        stats.set_sizes(5, 2);
        stats.set_paused(true);
        assert_eq!(
            (stats.users.get(), stats.rooms.get(), stats.paused.get()),
            (5, 2, 1)
        );
    }
}
