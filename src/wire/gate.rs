//! Skips reads that cannot succeed.
//!
//! A session waits on two things at once: its socket and its outbox. Every time the outbox woke
//! it, the read side used to be polled again, which costs a `read` system call that returns
//! EAGAIN. The gate polls the stream with a waker of its own and remembers whether that waker
//! fired since the stream last said "not ready". If it did not, the stream has nothing new (by
//! the `AsyncRead` contract, a pending read wakes its waker when it can progress), so the read
//! is skipped and the earlier registration keeps standing, with no syscall at all.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// The gate in front of one stream's reads.
pub struct ReadGate {
    signal: Arc<Signal>,
    /// The stream's last read said "not ready" with the gate's waker.
    parked: bool,
}

/// The gate's waker: notes that the stream may be readable and wakes the task.
struct Signal {
    woken: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.wake();
        }
    }
}

impl Default for ReadGate {
    fn default() -> ReadGate {
        ReadGate {
            signal: Arc::new(Signal {
                woken: AtomicBool::new(false),
                task: Mutex::new(None),
            }),
            parked: false,
        }
    }
}

impl ReadGate {
    /// Makes the next poll read for real, whatever the stream last said.
    pub fn open(&mut self) {
        self.parked = false;
    }

    /// Polls `read` through the gate: skipped (pending) while the stream has not signalled since
    /// it last said "not ready", else called with the gate's own waker.
    pub fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        read: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // Register the task first, then look: a signal in between wakes the task we stored.
        if let Ok(mut task) = self.signal.task.lock() {
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        if self.parked && !self.signal.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        self.signal.woken.store(false, Ordering::Release);
        let waker = Waker::from(self.signal.clone());
        let poll = read(&mut Context::from_waker(&waker));
        self.parked = poll.is_pending();
        poll
    }
}
