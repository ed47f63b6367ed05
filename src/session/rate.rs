//! The per-user line rate, for every door: a burst, then a sustained rate; lines over it are
//! delayed, never dropped.
//!
//! The door stops reading its socket until [`LineRate::wait`] is over, so TCP pushes back on
//! the sender and a pasted block arrives whole and in order, while other users are not slowed.
//! Every line counts, refused and blank ones too, so neither can be used to flood the server or
//! its log. The user is told once per burst ([`Spent::Throttled`]), not per line.

use std::time::{Duration, Instant};

use crate::limits::ratelimit::{RateConfig, TokenBucket};

/// One user's line rate (no bucket: `--rate-per-sec 0`, no limit). Small, because every idle
/// session holds one.
pub struct LineRate {
    bucket: Option<TokenBucket>,
    /// Whether the user was told since the bucket was last full.
    told: bool,
}

/// What spending a line means for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    Fine,
    /// The burst ran out just now: tell the user, once, that lines are delayed from here on.
    Throttled,
}

impl LineRate {
    pub fn new(rate: Option<RateConfig>, now: Instant) -> LineRate {
        LineRate {
            bucket: rate.map(|rate| TokenBucket::new(rate, now)),
            told: false,
        }
    }

    /// How long to wait before reading the next line; `None` if it may be read now.
    pub fn wait(&mut self, now: Instant) -> Option<Duration> {
        self.bucket.as_mut()?.wait(now)
    }

    /// Spends one line.
    pub fn spend(&mut self, now: Instant) -> Spent {
        let Some(bucket) = &mut self.bucket else {
            return Spent::Fine;
        };
        if bucket.is_full(now) {
            self.told = false;
        }
        bucket.spend(now);
        if bucket.wait(now).is_some() && !self.told {
            self.told = true;
            return Spent::Throttled;
        }
        Spent::Fine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Told once when the burst runs out, again only after the user paused long enough for the
    /// bucket to fill.
    #[test]
    fn told_once_per_burst() {
        let rate = RateConfig {
            burst: 3,
            per_sec: 1,
        };
        let t0 = Instant::now();
        let mut lines = LineRate::new(Some(rate), t0);
        assert_eq!(lines.spend(t0), Spent::Fine);
        assert_eq!(lines.spend(t0), Spent::Fine);
        assert_eq!(lines.spend(t0), Spent::Throttled);
        assert!(lines.wait(t0).is_some());
        assert_eq!(
            lines.spend(t0 + Duration::from_secs(1)),
            Spent::Fine,
            "told already"
        );
        let later = t0 + Duration::from_secs(60);
        assert_eq!(lines.wait(later), None);
        assert_eq!(lines.spend(later), Spent::Fine);
        let mut free = LineRate::new(None, t0);
        assert_eq!((free.spend(t0), free.wait(t0)), (Spent::Fine, None));
    }
}
