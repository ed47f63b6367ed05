//! The cluster link's gauges: whether this node reaches Redis, and how far its log reader is
//! behind. Set by the cluster threads when either changes, never per entry.

use prometheus_client::metrics::gauge::Gauge;

/// The cluster link's gauges, set by the cluster threads. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct ClusterStats {
    link_up: Gauge,
    reader_lag: Gauge,
}

impl ClusterStats {
    pub(super) fn new(link_up: Gauge, reader_lag: Gauge) -> ClusterStats {
        ClusterStats {
            link_up,
            reader_lag,
        }
    }

    /// Whether the link to Redis is up (set when it is lost and when it is back).
    pub fn set_link_up(&self, up: bool) {
        self.link_up.set(i64::from(up));
    }

    /// How many log entries the reader has still to read, after a read.
    pub fn set_reader_lag(&self, entries: u64) {
        self.reader_lag
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gauges hold what was last set; clones share them.
    #[test]
    fn link_and_lag() {
        let stats = ClusterStats::default();
        stats.clone().set_link_up(true);
        stats.set_reader_lag(u64::MAX);
        assert_eq!((stats.link_up.get(), stats.reader_lag.get()), (1, i64::MAX));
        stats.set_link_up(false);
        assert_eq!(stats.link_up.get(), 0);
    }
}
