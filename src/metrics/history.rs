//! The history writer's statistics: commit latency, failed attempts, lines stored and lost,
//! and the writer's queue depth. Updated by the writer thread once per commit or attempt.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use super::table::COMMIT_BUCKETS;

/// The writer's instruments. Cloning shares them; [`WriterStats::default`] makes unregistered
/// ones, for writers opened outside a server (tests, the bench, the command line).
#[derive(Debug, Clone)]
pub struct WriterStats {
    commit: Histogram,
    failures: Counter,
    stored: Counter,
    lost: Counter,
    queue: Gauge,
}

/// The commit latency histogram, with the table's buckets.
pub(super) fn commit_histogram() -> Histogram {
    Histogram::new(COMMIT_BUCKETS.iter().copied())
}

impl Default for WriterStats {
    fn default() -> WriterStats {
        WriterStats::new(commit_histogram(), Default::default(), Gauge::default())
    }
}

impl WriterStats {
    pub(super) fn new(
        commit: Histogram,
        [failures, stored, lost]: [Counter; 3],
        queue: Gauge,
    ) -> WriterStats {
        WriterStats {
            commit,
            failures,
            stored,
            lost,
            queue,
        }
    }

    /// A batch of `lines` committed, `took` after its first attempt began.
    pub fn committed(&self, lines: usize, took: Duration) {
        self.commit.observe(took.as_secs_f64());
        self.stored.inc_by(lines as u64);
    }

    /// One commit attempt failed (it will be retried, or the batch given up).
    pub fn failed(&self) {
        self.failures.inc();
    }

    /// Commit attempts that failed so far (each one paused chat while it was retried).
    pub fn failures(&self) -> u64 {
        self.failures.get()
    }

    /// `lines` lines given up on.
    pub fn lost(&self, lines: usize) {
        self.lost.inc_by(lines as u64);
    }

    /// Records waiting in the writer's queue now.
    pub fn queued(&self, depth: usize) {
        self.queue.set(super::gauge_value(depth));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each call lands in its instrument; clones share them.
    #[test]
    fn writer_stats_count() {
        let stats = WriterStats::default();
        let writer = stats.clone();
        writer.committed(3, Duration::from_micros(300));
        writer.failed();
        writer.lost(2);
        writer.queued(7);
        assert_eq!(
            (stats.stored.get(), stats.failures.get(), stats.lost.get()),
            (3, 1, 2)
        );
        assert_eq!(stats.queue.get(), 7);
    }
}
