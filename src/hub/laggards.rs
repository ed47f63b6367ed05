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
