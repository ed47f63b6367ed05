//! The private-message allowance of each recipient.
//!
//! Private lines to one recipient pass a token bucket per recipient ([`PRIVATE_RATE`]); senders
//! over it are told their line was not delivered. The recipient's outbox never fills with other
//! people's flooding, so the recipient is never dropped for it.

use std::collections::HashMap;
use std::time::Instant;

use crate::limits::ratelimit::{RateConfig, TokenBucket};
use crate::vocab::MemberId;

/// Private lines one recipient may receive: a burst, then a sustained rate. At 1 KiB per line this
/// is about 5 KiB/s, which any client that reads at all keeps up with, while a conversation, even
/// with several people at once, stays far below it. Not configurable.
pub const PRIVATE_RATE: RateConfig = RateConfig {
    burst: 20,
    per_sec: 5,
};

/// One bucket per recipient that has received a private line.
#[derive(Default)]
pub struct Privates {
    buckets: HashMap<MemberId, TokenBucket>,
}

impl Privates {
    /// Spends one of `to`'s allowance; false when it is used up.
    pub fn allow(&mut self, to: MemberId, now: Instant) -> bool {
        let bucket = self
            .buckets
            .entry(to)
            .or_insert_with(|| TokenBucket::new(PRIVATE_RATE, now));
        if bucket.wait(now).is_some() {
            return false;
        }
        bucket.spend(now);
        true
    }

    /// Forgets a member that left.
    pub fn forget(&mut self, id: MemberId) {
        self.buckets.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A burst, then the sustained rate; each recipient has its own allowance.
    #[test]
    fn a_burst_then_the_rate_per_recipient() {
        let mut privates = Privates::default();
        let t0 = Instant::now();
        for _ in 0..PRIVATE_RATE.burst {
            assert!(privates.allow(1, t0));
        }
        assert!(!privates.allow(1, t0));
        assert!(privates.allow(2, t0), "another recipient has its own");
        assert!(privates.allow(1, t0 + Duration::from_millis(200)));
        privates.forget(1);
        assert!(
            privates.allow(1, t0),
            "a newcomer with the same id starts full"
        );
    }
}
