//! The connections still waiting for a name, oldest first, capped at `--max-unregistered`.
//!
//! Why: a connection that never chooses a name holds its place until the name deadline (60 s).
//! Without a cap, clients that connect and stay silent could hold every place of a full server
//! again and again, and a real user got in about 1 time in 32. With it, they hold at most a
//! share of the server; when the share is full (or the server is), a newcomer evicts the
//! oldest connection still waiting, so a real user who answers the name prompt always gets in.
//!
//! Socket-free: each waiting connection holds a [`Place`] whose [`Place::evicted`] resolves when
//! it is evicted; the session races its registration against that, like against the deadline.
//! The place is given back when dropped (registered, or gone).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The queue of connections waiting for a name.
pub struct Waiting {
    capacity: usize,
    queue: Mutex<Queue>,
}

#[derive(Default)]
struct Queue {
    /// Order of arrival of the next connection to enter: the smallest key is the oldest.
    next: u64,
    /// Closing a sender is the eviction signal; removing it without closing gives the place back.
    entries: BTreeMap<u64, async_channel::Sender<()>>,
}

/// One connection's place in the queue; leaves the queue when dropped.
pub struct Place {
    waiting: Arc<Waiting>,
    seq: u64,
    evicted: async_channel::Receiver<()>,
}

impl Waiting {
    /// A queue for at most `capacity` connections (at least one).
    pub fn new(capacity: usize) -> Arc<Waiting> {
        Arc::new(Waiting {
            capacity: capacity.max(1),
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Enters a newcomer. When the queue is full the oldest is evicted first; the second value
    /// says whether one was.
    pub fn enter(self: &Arc<Self>) -> (Place, bool) {
        let (tx, rx) = async_channel::bounded(1);
        // A poisoned lock only means a panic elsewhere while holding it; the map is still whole.
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let evicted = queue.entries.len() >= self.capacity && queue.evict_oldest();
        let seq = queue.next;
        queue.next += 1;
        queue.entries.insert(seq, tx);
        drop(queue);
        let place = Place {
            waiting: self.clone(),
            seq,
            evicted: rx,
        };
        (place, evicted)
    }

    /// Evicts the oldest waiting connection, if there is one (a full server makes room).
    pub fn evict_oldest(&self) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.evict_oldest()
    }

    /// How many connections are waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.entries.len())
    }

    /// Whether no connection is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Queue {
    fn evict_oldest(&mut self) -> bool {
        match self.entries.pop_first() {
            Some((_, signal)) => {
                signal.close();
                true
            }
            None => false,
        }
    }
}

impl Place {
    /// Resolves once this connection has been evicted; never, while it keeps its place.
    pub async fn evicted(&self) {
        // Nothing is ever sent: the sender is closed to evict, and kept (in the queue) otherwise.
        let _ = self.evicted.recv().await;
    }

    /// Whether this connection has been evicted.
    pub fn is_evicted(&self) -> bool {
        self.evicted.is_closed()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut queue = self.waiting.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.entries.remove(&self.seq);
    }
}

/// Logs that `peer` was evicted while waiting for a name (or its TLS handshake), aggregated:
/// a flood of silent connections evicts as fast as it connects.
pub fn log_eviction(peer: std::net::SocketAddr) {
    crate::log_throttled!(
        log::Level::Warn,
        "evicted: waiting for a name",
        "{peer}: evicted: --max-unregistered connections were already waiting for a name"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past capacity each newcomer evicts the oldest; places given back make room without
    /// evicting anybody.
    #[test]
    fn newcomers_evict_the_oldest_once_full() {
        let waiting = Waiting::new(2);
        let (a, ea) = waiting.enter();
        let (b, eb) = waiting.enter();
        assert!(!ea && !eb);
        let (c, ec) = waiting.enter();
        assert!(ec);
        assert!(a.is_evicted() && !b.is_evicted() && !c.is_evicted());
        assert_eq!(waiting.len(), 2);
        // An evicted place that is dropped does not take anybody else's place with it.
        drop(a);
        assert_eq!(waiting.len(), 2);
        // b registers: its place is free, so the next newcomer evicts nobody.
        drop(b);
        let (d, ed) = waiting.enter();
        assert!(!ed && !c.is_evicted() && !d.is_evicted());
        // A full server makes room by evicting the oldest, here c.
        assert!(waiting.evict_oldest());
        assert!(c.is_evicted() && !d.is_evicted());
        drop(d);
        assert!(waiting.is_empty());
        assert!(!waiting.evict_oldest());
    }

    /// The eviction signal resolves the future a session races against; a kept place does not.
    #[test]
    fn evicted_resolves_only_on_eviction() {
        let waiting = Waiting::new(1);
        let (old, _) = waiting.enter();
        let still_waiting = smol::future::block_on(smol::future::poll_once(old.evicted()));
        assert!(still_waiting.is_none());
        let (_new, evicted) = waiting.enter();
        assert!(evicted);
        smol::future::block_on(old.evicted());
    }
}
