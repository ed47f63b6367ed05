//! Retrying what the disk refused: a commit (writer thread) or an fsync (syncer thread).
//!
//! A line is never dropped because the disk is busy or failing (another program holding the
//! write lock, a full disk): the operation is retried with back-off, and chat pauses meanwhile
//! (the hub relays nothing that is not durable). Only errors no retry can fix (the rows
//! themselves at fault) end it at once, and, once shutdown has begun, a deadline.

use std::fmt::Display;
use std::time::{Duration, Instant};

use log::{error, info};

/// How long a failing operation is retried after shutdown has begun, before its lines are given
/// up and reported lost. While the server runs it is retried for as long as it takes.
pub(super) const GIVE_UP_AFTER_CLOSE: Duration = Duration::from_secs(10);

/// The first wait after a failure; it doubles up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(10);
const MAX_DELAY: Duration = Duration::from_secs(1);

/// How a retried operation may end, besides success.
pub(super) struct Retry<'a, E> {
    /// Names the operation in the log: `history commit of 12 lines`.
    pub what: &'a dyn Fn() -> String,
    /// Errors no retry will fix.
    pub permanent: &'a dyn Fn(&E) -> bool,
    /// Whether shutdown has begun: from then on the retries stop at `give_up_at`.
    pub closing: &'a dyn Fn() -> bool,
    /// One deadline for the whole shutdown, set at the first failure after it began.
    pub give_up_at: &'a mut Option<Instant>,
}

impl<E: Display> Retry<'_, E> {
    /// Runs `attempt` until it succeeds (true), fails for good or past the shutdown deadline
    /// (false, logged as an error). Logs the first failure and then about every ten seconds.
    pub(super) fn run(self, mut attempt: impl FnMut() -> Result<(), E>) -> bool {
        let mut delay = FIRST_DELAY;
        let mut failures: u32 = 0;
        loop {
            let e = match attempt() {
                Ok(()) => {
                    if failures > 0 {
                        info!("{} succeeded after {failures} failures", (self.what)());
                    }
                    return true;
                }
                Err(e) => e,
            };
            failures += 1;
            if (self.permanent)(&e) {
                error!("{} failed, its lines are not stored: {e}", (self.what)());
                return false;
            }
            if (self.closing)() {
                let deadline = *self
                    .give_up_at
                    .get_or_insert_with(|| Instant::now() + GIVE_UP_AFTER_CLOSE);
                if Instant::now() >= deadline {
                    error!("{} failed at shutdown, lines lost: {e}", (self.what)());
                    return false;
                }
            }
            if failures == 1 || failures.is_multiple_of(10) {
                error!(
                    "{} failed ({e}); retrying, messages are held meanwhile",
                    (self.what)()
                );
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_DELAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry<'a>(
        permanent: &'a dyn Fn(&String) -> bool,
        closing: &'a dyn Fn() -> bool,
        give_up_at: &'a mut Option<Instant>,
    ) -> Retry<'a, String> {
        Retry {
            what: &|| "test write".to_owned(),
            permanent,
            closing,
            give_up_at,
        }
    }

    /// A failure that goes away is retried until it succeeds.
    #[test]
    fn a_passing_failure_is_retried() {
        let mut left = 3;
        let ok = retry(&|_| false, &|| false, &mut None).run(|| {
            left -= 1;
            if left == 0 {
                Ok(())
            } else {
                Err("busy".to_owned())
            }
        });
        assert!(ok);
        assert_eq!(left, 0);
    }

    /// A permanent failure ends at once, and so does any failure once shutdown's deadline has
    /// passed.
    #[test]
    fn permanent_failures_and_shutdown_end_it() {
        let mut tries = 0;
        let ok = retry(&|e| e == "bad rows", &|| false, &mut None).run(|| {
            tries += 1;
            Err("bad rows".to_owned())
        });
        assert!(!ok);
        assert_eq!(tries, 1);
        let mut past = Some(Instant::now());
        let ok = retry(&|_| false, &|| true, &mut past).run(|| Err("disk full".to_owned()));
        assert!(!ok);
    }
}
