//! Aggregated logging of repeated events: the first of a kind is logged in full, the rest of its
//! interval are only counted, and the count is logged with the next one after the interval.
//!
//! Why: every refusal and limit hit is caused by a client, so logging each one lets any client
//! write the log as fast as it can connect (one address hammering the per-address cap once wrote
//! 45 MB in 10 s). With this, each kind costs at most one log line per interval.
//!
//! One process-wide instance, [`LOG`], like the logger it protects; it knows no sockets.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often each kind of event may reach the log. Not configurable: short enough that an
/// operator watching sees an attack within seconds, long enough to bound the volume.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// The server's throttle for refusals and limit hits.
pub static LOG: LogThrottle = LogThrottle::new(INTERVAL);

/// Counts events per kind and says which ones to log.
pub struct LogThrottle {
    interval: Duration,
    kinds: Mutex<Vec<Kind>>,
}

struct Kind {
    key: &'static str,
    logged_at: Instant,
    suppressed: u64,
}

impl LogThrottle {
    pub const fn new(interval: Duration) -> LogThrottle {
        LogThrottle {
            interval,
            kinds: Mutex::new(Vec::new()),
        }
    }

    /// Records one event of kind `key`. Returns `Some(n)` when it should be logged, `n` being how
    /// many of its kind were left out since the last one logged; `None` when it is only counted.
    pub fn check(&self, key: &'static str, now: Instant) -> Option<u64> {
        let Ok(mut kinds) = self.kinds.lock() else {
            return Some(0);
        };
        match kinds.iter_mut().find(|k| k.key == key) {
            None => {
                kinds.push(Kind {
                    key,
                    logged_at: now,
                    suppressed: 0,
                });
                Some(0)
            }
            Some(kind) if now.saturating_duration_since(kind.logged_at) >= self.interval => {
                kind.logged_at = now;
                Some(std::mem::take(&mut kind.suppressed))
            }
            Some(kind) => {
                kind.suppressed += 1;
                None
            }
        }
    }
}

/// Logs `$($arg)*` at `$level` through [`LOG`] under `$key`, adding how many were left out.
#[macro_export]
macro_rules! log_throttled {
    ($level:expr, $key:expr, $($arg:tt)*) => {
        if let Some(left_out) = $crate::limits::throttle::LOG.check($key, std::time::Instant::now()) {
            if left_out > 0 {
                log::log!($level, "{} ({left_out} more like it not logged in the last {} s)",
                    format_args!($($arg)*), $crate::limits::throttle::INTERVAL.as_secs());
            } else {
                log::log!($level, $($arg)*);
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first event is logged, the rest of the interval counted, and the count reported with
    /// the first event after it; kinds are independent.
    #[test]
    fn first_logged_then_counted_per_kind() {
        let t = LogThrottle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.check("full", start), Some(0));
        for n in 1..=1000 {
            assert_eq!(t.check("full", start + Duration::from_millis(n)), None);
        }
        assert_eq!(t.check("per-ip", start), Some(0));
        assert_eq!(t.check("full", start + Duration::from_secs(10)), Some(1000));
        assert_eq!(t.check("full", start + Duration::from_secs(11)), None);
    }
}
