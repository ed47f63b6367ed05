//! The per-user rate limit: a token bucket, and [`Pace`], the one a connection keeps from its
//! first line (at the name prompt) to its last.
//!
//! Lines over the rate are delayed, never dropped: the session simply stops reading the socket
//! until a token is due, so TCP pushes back on the sender and a pasted block arrives whole and in
//! order, while other users are not slowed at all. Lines typed at the name prompt count like any
//! other: unpaced, one connection answered ten thousand names a second there, each a lookup.

use std::time::{Duration, Instant};

/// A token bucket's shape: a burst, then a sustained rate per second.
#[derive(Debug, Clone, Copy)]
pub struct RateConfig {
    pub burst: u32,
    pub per_sec: u32,
}

/// A token bucket holding up to `burst` lines, refilled at `per_sec` lines per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    burst: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(config: RateConfig, now: Instant) -> TokenBucket {
        TokenBucket {
            burst: f64::from(config.burst),
            per_sec: f64::from(config.per_sec),
            tokens: f64::from(config.burst),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.last = now;
    }

    /// How long to wait before the next line may be read; `None` if it may be read now.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec))
        }
    }

    /// True when the bucket holds its whole burst again: the user has been quiet for a while.
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    /// Spends one token for a line that was read.
    pub fn spend(&mut self, now: Instant) {
        self.refill(now);
        self.tokens -= 1.0;
    }
}

/// A connection's pace: its bucket (none when `--rate-per-sec 0`), and whether it has been
/// told to slow down since the bucket was last full, so it is told once per burst.
#[derive(Debug, Clone)]
pub struct Pace {
    bucket: Option<TokenBucket>,
    told: bool,
}

impl Pace {
    /// A full bucket at `rate`, or no limit.
    pub fn new(rate: Option<RateConfig>, now: Instant) -> Pace {
        Pace {
            bucket: rate.map(|rate| TokenBucket::new(rate, now)),
            told: false,
        }
    }

    /// How long to wait before reading the next line; `None` to read it now.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.bucket.as_mut()?.wait(now)
    }

    /// Counts a line that was read. True when the user is to be told, now, that lines are
    /// being delayed: the burst just ran out, for the first time since the bucket was full.
    pub fn spend(&mut self, now: Instant) -> bool {
        let Some(bucket) = &mut self.bucket else {
            return false;
        };
        if bucket.is_full(now) {
            self.told = false;
        }
        bucket.spend(now);
        if bucket.wait(now).is_some() && !self.told {
            self.told = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_sustained_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            RateConfig {
                burst: 10,
                per_sec: 2,
            },
            t0,
        );
        for _ in 0..10 {
            assert_eq!(b.wait(t0), None);
            b.spend(t0);
        }
        let wait = b.wait(t0).unwrap();
        assert!(wait > Duration::from_millis(490) && wait <= Duration::from_millis(500));
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.wait(t1), None);
        b.spend(t1);
        assert!(b.wait(t1).is_some());
        // A long pause refills only up to the burst.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..10 {
            assert_eq!(b.wait(t2), None);
            b.spend(t2);
        }
        assert!(b.wait(t2).is_some());
        assert!(!b.is_full(t2));
        assert!(b.is_full(t2 + Duration::from_secs(5)));
    }

    #[test]
    fn the_pace_tells_once_per_burst() {
        let t0 = Instant::now();
        let rate = RateConfig {
            burst: 3,
            per_sec: 1,
        };
        let mut pace = Pace::new(Some(rate), t0);
        let told: Vec<bool> = (0..6).map(|_| pace.spend(t0)).collect();
        assert_eq!(told, [false, false, true, false, false, false]);
        assert!(pace.wait(t0).is_some());
        // Quiet until full again: the next burst is announced again.
        let later = t0 + Duration::from_secs(10);
        let told: Vec<bool> = (0..4).map(|_| pace.spend(later)).collect();
        assert_eq!(told, [false, false, true, false]);
        let mut free = Pace::new(None, t0);
        assert!((0..100).all(|_| !free.spend(t0)));
        assert_eq!(free.wait(t0), None);
    }
}
