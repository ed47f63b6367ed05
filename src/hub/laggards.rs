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

use crate::vocab::MemberId;

/// Notices or departures in one go that count as a storm, after which memory is given back.
pub const STORM: usize = 256;

/// The members to drop, furthest behind first, so that at least `excess` bytes are freed.
/// `queued` gives each member's queued bytes. Costs a scan and a sort, which only a mass stall
/// causes: within budget the hub never calls it.
pub fn furthest_behind(
    excess: usize,
    queued: impl Iterator<Item = (MemberId, usize)>,
) -> Vec<MemberId> {
    let mut laggards: Vec<(usize, MemberId)> = queued
        .filter(|(_, bytes)| *bytes > 0)
        .map(|(id, bytes)| (bytes, id))
        .collect();
    laggards.sort_unstable_by_key(|(bytes, _)| std::cmp::Reverse(*bytes));
    let mut freed = 0;
    let mut dropped = Vec::new();
    for (bytes, id) in laggards {
        if freed >= excess {
            break;
        }
        freed += bytes;
        dropped.push(id);
    }
    dropped
}

/// Counts what a storm left behind, and says when to give memory back.
#[derive(Default)]
pub struct Storms {
    /// Notices summed up since memory was last given back.
    summed: usize,
}

impl Storms {
    /// `n` notices were summed up in a room.
    pub fn summed(&mut self, n: usize) {
        self.summed += n;
    }

    /// A room calmed down: gives memory back if a storm was summed up since the last time.
    pub fn calmed(&mut self) {
        if self.summed >= STORM {
            self.summed = 0;
            give_back_memory();
        }
    }
}

/// Returns freed heap memory to the system, in the background.
pub fn give_back_memory() {
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
    use super::*;

    /// The furthest behind go first, only as many as free the excess; idle members never go.
    #[test]
    fn the_furthest_behind_go_first() {
        let queued = [(1, 100), (2, 5000), (3, 0), (4, 3000), (5, 200)];
        assert_eq!(furthest_behind(6000, queued.into_iter()), [2, 4]);
        assert_eq!(furthest_behind(1, queued.into_iter()), [2]);
        assert_eq!(furthest_behind(1_000_000, queued.into_iter()), [2, 4, 5, 1]);
    }
}
