//! Taking turns at writing: the history writer and the account thread each open a write
//! transaction only in their turn, and turns are given first come, first served.
//!
//! Why not leave it to SQLite: two connections that want the write lock at once meet SQLite's
//! busy handler, which sleeps and polls (up to 100 ms between tries). A connection that writes
//! back to back, as the account thread did through an operator's burst of `/ban`s, takes the
//! lock again in the instant between its transactions, so the poller misses every gap; after
//! its busy timeout (a second) the history writer's commit failed with "database is locked" and
//! chat paused. With turns, neither ever waits for the other inside SQLite: the history writer
//! waits at most for the one account transaction in progress, however long the burst. The busy
//! timeouts remain for other programs (`sqlite3`, `smolchat op`), which take no turn.
//!
//! It must not know SQL: it is a fair lock, handed out in ticket order.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The turns of every connection of this process that writes one database. Cloning shares them.
#[derive(Clone, Default)]
pub struct WriteTurns {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tickets: Mutex<Tickets>,
    /// Signalled when a turn ends.
    next: Condvar,
}

#[derive(Default)]
struct Tickets {
    /// The ticket the next caller gets.
    issued: u64,
    /// The ticket whose turn it is.
    serving: u64,
}

/// One connection's turn: it may write until this is dropped.
pub struct Turn<'a> {
    inner: &'a Inner,
}

fn lock(inner: &Inner) -> MutexGuard<'_, Tickets> {
    // Every update is one addition: a panic cannot leave the tickets half-changed.
    inner.tickets.lock().unwrap_or_else(PoisonError::into_inner)
}

impl WriteTurns {
    /// Blocks until every turn asked for before this one has ended. Only for dedicated threads.
    pub fn wait(&self) -> Turn<'_> {
        let mut tickets = lock(&self.inner);
        let mine = tickets.issued;
        tickets.issued += 1;
        while tickets.serving != mine {
            tickets = self
                .inner
                .next
                .wait(tickets)
                .unwrap_or_else(PoisonError::into_inner);
        }
        Turn { inner: &self.inner }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        lock(self.inner).serving += 1;
        self.inner.next.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    /// Turns go in the order they were asked for: a thread that ends its turn and asks again at
    /// once goes behind the one already waiting, never in front of it.
    #[test]
    fn turns_are_first_come_first_served() {
        let turns = WriteTurns::default();
        let first = turns.wait();
        let (order_tx, order) = mpsc::channel();
        let (asked_tx, asked) = mpsc::channel();
        let waiter = {
            let (turns, order_tx) = (turns.clone(), order_tx.clone());
            std::thread::spawn(move || {
                asked_tx.send(()).unwrap();
                let _turn = turns.wait();
                order_tx.send("waiter").unwrap();
            })
        };
        asked.recv().unwrap();
        // The waiter holds its ticket once it is blocked: wait for that, not for a time.
        while lock(&turns.inner).issued < 2 {
            std::thread::yield_now();
        }
        drop(first);
        let again = turns.wait();
        order_tx.send("again").unwrap();
        drop(again);
        waiter.join().unwrap();
        let order: Vec<&str> = (0..2)
            .map(|_| order.recv_timeout(Duration::from_secs(30)).unwrap())
            .collect();
        assert_eq!(order, ["waiter", "again"]);
    }
}
