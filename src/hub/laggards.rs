//! The server-wide budget for queued output, and giving memory back after a storm.
//!
//! Each outbox is bounded (`--outbox-bytes`), but a thousand clients that stop reading at once
//! could each fill theirs: 1000 x 256 KiB is a quarter of a gigabyte. The budget
//! (`--outbox-total-bytes`) bounds the sum; when it is exceeded the hub drops the clients that
//! are furthest behind first, because they hold the most and are the least likely to catch up.
//!
//! glibc keeps freed memory in its arenas, so after a storm the RSS would stay at its peak;
//! `malloc_trim` returns it to the system. It runs on a blocking thread because it walks the
//! whole heap.

use log::warn;

use super::{Fault, Hub, MemberId};

/// Notices or departures in one go that count as a storm, after which memory is given back.
pub(super) const STORM: usize = 256;

impl Hub {
    /// Drops the largest laggards until the queued output is back within the budget. Costs one
    /// atomic load when within budget; a scan of the members when over it, which only a mass
    /// stall causes.
    pub(super) fn enforce_budget(&mut self) {
        let Some(excess) = self.budget.excess() else {
            return;
        };
        let mut laggards: Vec<(usize, MemberId)> = self
            .members
            .iter()
            .map(|(id, m)| (m.outbox.queued(), *id))
            .filter(|(queued, _)| *queued > 0)
            .collect();
        laggards.sort_unstable_by_key(|(queued, _)| std::cmp::Reverse(*queued));
        let mut freed = 0;
        let mut faults = Vec::new();
        for (queued, id) in laggards {
            if freed >= excess {
                break;
            }
            freed += queued;
            faults.push((id, Fault::Slow));
        }
        warn!(
            "queued output over the server-wide budget by {excess} bytes: dropping the {} \
             furthest-behind clients",
            faults.len()
        );
        self.settle(faults);
        give_back_memory();
    }
}

/// Returns freed heap memory to the system, in the background.
pub(super) fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    smol::unblock(|| {
        // SAFETY: malloc_trim only walks and trims glibc's own arenas; it is thread-safe.
        unsafe {
            libc::malloc_trim(0);
        }
    })
    .detach();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_channel::Sender;

    use crate::hub::outbox::{Budget, Inbox};
    use crate::hub::{run, Event, MemberId};
    use crate::storage::History;
    use crate::vocab::Kind;

    fn register(
        events: &Sender<Event>,
        id: MemberId,
        name: &str,
        budget: &std::sync::Arc<Budget>,
    ) -> Inbox {
        let (answer, inbox) = crate::hub::tests::register_within(events, id, name, budget.clone());
        assert!(smol::block_on(answer.recv()).unwrap().is_ok());
        inbox
    }

    /// Drains what `inbox` holds, as a reading client would.
    fn drain(inbox: &Inbox) {
        while inbox.try_recv().is_some() {
            inbox.sent();
        }
    }

    /// Over the server-wide budget, the client furthest behind is dropped first, and a client
    /// that reads is never dropped.
    #[test]
    fn the_furthest_behind_is_dropped_first() {
        let dir = tempfile::tempdir().unwrap();
        let (history, writer, last_id) =
            History::open(&dir.path().join("chat.db"), Duration::from_millis(5)).unwrap();
        let loaded = crate::accounts::Accounts::load(&dir.path().join("chat.db")).unwrap();
        std::mem::forget(loaded.thread);
        let setup = crate::hub::moderation::Setup {
            accounts: loaded.accounts,
            topics: loaded.topics,
            mutes: loaded.mutes,
            operators: loaded.operators,
        };
        let budget = Budget::new(4000);
        let (events, events_rx) = async_channel::unbounded();
        let (_stop, stopping) = async_channel::bounded::<()>(1);
        let hub_budget = budget.clone();
        let hub = std::thread::spawn(move || {
            smol::block_on(run(
                events_rx, stopping, history, last_id, setup, hub_budget,
            ))
        });
        let talker = register(&events, 1, "talker", &budget);
        let reader = register(&events, 4, "reader", &budget);
        // `far` is one join notice further behind than `near` from the start.
        let far = register(&events, 2, "far", &budget);
        let near = register(&events, 3, "near", &budget);
        drain(&talker);
        drain(&reader);
        let mut first_dropped = None;
        for n in 0..200 {
            let text = format!("line {n} {}", "x".repeat(40));
            let say = Event::Say {
                id: 1,
                kind: Kind::Message,
                text,
            };
            smol::block_on(events.send(say)).unwrap();
            // Wait until the line is relayed (lines wait for the history's commit): the reader
            // gets it in the same fan-out as the laggards.
            let marker = format!("line {n} ");
            loop {
                let taken = smol::block_on(reader.recv()).expect("the reader was dropped");
                reader.sent();
                if String::from_utf8_lossy(&taken.bytes).contains(&marker) {
                    break;
                }
            }
            drain(&talker);
            assert!(!talker.was_kicked() && !reader.was_kicked());
            match (far.was_kicked(), near.was_kicked()) {
                (false, false) => {}
                (true, false) => {
                    first_dropped.get_or_insert(n);
                }
                (far_kicked, near_kicked) => {
                    assert!(far_kicked && near_kicked, "near was dropped before far");
                    break;
                }
            }
        }
        assert!(first_dropped.is_some(), "nobody was dropped");
        assert!(budget.used() <= 4000 + 64 * 1024);
        events.close();
        hub.join().unwrap();
        writer.close();
    }
}
