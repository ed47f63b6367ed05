//! A session's outbox: the bytes waiting to be written to one client.
//!
//! The hub appends formatted lines to a per-session byte buffer with a non-blocking `push`, so a
//! client that stops reading can never stall the room: its outbox fills up to a byte limit, the
//! push fails with [`PushError::Full`], and the hub disconnects that client instead.
//!
//! Why bytes and a wake-up token rather than a channel of lines: a relay to a thousand users
//! used to cost, per recipient and line, a shared `Arc` clone and drop (one cache line bounced
//! between all cores), a queue push and pop, and a task wake. Now a line is copied into each
//! recipient's buffer (a memcpy of some 80 bytes under an uncontended lock), and the session is
//! woken only when its buffer goes from empty to non-empty (the hub even defers that to the end
//! of its turn). The session then takes the whole buffer and writes it with one call, however
//! many lines arrived meanwhile. An idle session holds no buffer at all.
//!
//! The wake-up is an `event_listener::Event`, the primitive async-channel itself is built on,
//! rather than a `bounded(1)` channel: a channel's state is some 700 bytes (cache-padded queue
//! ends), which every idle user would pay for; the event is one pointer plus a small node while
//! the session waits.
//!
//! The byte limit counts what waits in the buffer *and* what the session has taken but not yet
//! written, so one connection never holds more than `--outbox-bytes` of output. Every outbox
//! also counts against one server-wide [`Budget`], which the hub enforces by dropping the
//! largest laggards first.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use event_listener::Event;

use crate::hub::render::RendererId;

/// Capacity reserved, at least, when an empty buffer gets its first line: most wakes carry a few
/// lines, so this makes them cost one allocation instead of a doubling series. A busy session
/// reserves what its last take held instead (see `Queue::hint`).
const FIRST_RESERVE: usize = 1024;

/// The most a hint makes an empty buffer reserve: a take after a burst (a replay marker, a
/// catch-up) says little about the next one, and a short line must not cost a large buffer.
const MAX_RESERVE: usize = 64 * 1024;

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The client is not reading fast enough: the outbox holds its byte limit.
    Full,
    /// The session is gone.
    Closed,
}

/// The server-wide budget for queued output: the sum over all outboxes of the bytes waiting or
/// being written. Updated once per write and once per relay (the hub adds a whole fan-out's
/// bytes after the loop, [`Budget::add`]), never per recipient: the counter's cache line is
/// written by every session's thread, and one miss per delivery was a measurable share of a
/// relay's cost. A session may write and subtract a line before the hub has added it, so the
/// count can dip below zero for a moment; it is read as a signed number.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes for all outboxes together.
    pub fn new(limit: usize) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicUsize::new(0),
            limit,
        })
    }

    /// Bytes over the budget right now, if any.
    pub fn excess(&self) -> Option<usize> {
        let used = self.used();
        (used > self.limit).then(|| used - self.limit)
    }

    /// Bytes queued in all outboxes (0 while a write's subtraction runs ahead of its relay's
    /// addition: see [`Budget`]).
    pub fn used(&self) -> usize {
        // The counter wraps below zero; a wrapped value reads as a negative one.
        usize::try_from(self.used.load(Ordering::Relaxed) as isize).unwrap_or(0)
    }

    /// Counts `n` bytes the caller pushed with [`Outbox::push_deferred_within`], which leaves
    /// the budget to it so that a relay adds once, not once per recipient.
    pub fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// The sending side, held by the hub (and by the session until it registers). When the last
/// `Outbox` is dropped the outbox closes, which ends the session in order if the hub ever lets
/// go of it.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side, held by the session.
pub struct Inbox {
    shared: Arc<Shared>,
}

/// What both sides share.
pub struct Shared {
    queue: Mutex<Queue>,
    /// Bytes the session took from the queue and has not finished writing yet.
    in_flight: AtomicUsize,
    limit: usize,
    kicked: AtomicBool,
    /// The renderer this member's output is formatted by (see `hub/render.rs`): kept here, beside
    /// the buffer the fan-out writes to, so reading it costs no extra cache miss and no memory.
    renderer: AtomicU8,
    budget: Arc<Budget>,
    /// Notified when the queue goes from empty to non-empty, and when it closes.
    ready: Event,
    /// Live `Outbox` handles.
    senders: AtomicUsize,
}

struct Queue {
    bytes: Vec<u8>,
    /// Where a room switch happened in `bytes` (see [`Outbox::push_marker`]).
    marker: Option<usize>,
    /// No more pushes: the session is gone or the hub closed the outbox.
    closed: bool,
    /// About how many bytes the session's recent takes held: the largest, halved at each take
    /// (saturated). The next empty buffer reserves twice as much. Under load a take carries
    /// dozens of lines, and growing the buffer from 1 KiB by doubling copied it several times
    /// per take (a tenth of a mixed room's instructions under callgrind). A `u32` fits beside
    /// `closed` without growing the queue.
    hint: u32,
}

/// What the session takes from its outbox in one go.
pub struct Taken {
    pub bytes: Vec<u8>,
    /// True when `bytes` ends where the hub placed a marker.
    pub at_marker: bool,
}

/// Creates an outbox that holds at most `limit` bytes of output, counted against `budget`.
pub fn outbox(limit: usize, budget: Arc<Budget>) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            bytes: Vec::new(),
            marker: None,
            closed: false,
            hint: 0,
        }),
        in_flight: AtomicUsize::new(0),
        limit,
        kicked: AtomicBool::new(false),
        renderer: AtomicU8::new(0),
        budget,
        ready: Event::new(),
        senders: AtomicUsize::new(1),
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        Inbox { shared },
    )
}

impl Clone for Outbox {
    fn clone(&self) -> Outbox {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Outbox {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
        }
    }
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock leaves plain bytes behind, still consistent.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// True once the hub has kicked this session.
    pub fn kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let queue = self.queue.get_mut().unwrap_or_else(|p| p.into_inner());
        self.budget
            .sub(queue.bytes.len() + *self.in_flight.get_mut());
    }
}

impl Outbox {
    /// Appends a line (newline included) without waiting.
    pub fn push(&self, line: &[u8]) -> Result<(), PushError> {
        self.append(line, self.shared.limit)
    }

    /// Appends a reply to the user's own command. A reply may overshoot the byte limit by
    /// `slack`: asking for a list must never get the asker dropped as a slow reader.
    pub fn push_reply(&self, line: &[u8], slack: usize) -> Result<(), PushError> {
        self.append(line, self.shared.limit.saturating_add(slack))
    }

    /// Appends a line like [`Outbox::push`], with the limit raised by `slack`, but leaves two
    /// things to the caller: the wake-up (`Ok(true)` means the buffer was empty, and
    /// [`Outbox::wake`] must follow) and counting the bytes against the [`Budget`]
    /// ([`Budget::add`]). The hub relays a whole turn of events this way, adds each fan-out's
    /// bytes once, and then wakes each session once, so a write carries more lines.
    pub fn push_deferred_within(&self, line: &[u8], slack: usize) -> Result<bool, PushError> {
        self.append_quietly(line, self.shared.limit.saturating_add(slack))
    }

    fn append(&self, line: &[u8], limit: usize) -> Result<(), PushError> {
        let woken = self.append_quietly(line, limit)?;
        self.shared.budget.add(line.len());
        if woken {
            self.wake();
        }
        Ok(())
    }

    /// Appends; returns whether the buffer was empty (the session must be woken). The caller
    /// counts the bytes against the budget.
    fn append_quietly(&self, line: &[u8], limit: usize) -> Result<bool, PushError> {
        let n = line.len();
        let was_empty = {
            let mut queue = self.shared.queue();
            if queue.closed {
                return Err(PushError::Closed);
            }
            let queued = queue.bytes.len() + self.shared.in_flight.load(Ordering::Relaxed);
            if queued + n > limit {
                return Err(PushError::Full);
            }
            let was_empty = queue.bytes.is_empty();
            if was_empty {
                // Room for a batch twice the recent ones, so a growing batch still fits in one
                // buffer; never more than the limit lets the buffer hold. The buffer lives only
                // until its write.
                let want = (2 * queue.hint as usize).min(limit).min(MAX_RESERVE);
                let want = want.max(FIRST_RESERVE);
                queue.bytes.reserve(n.max(want));
            }
            queue.bytes.extend_from_slice(line);
            was_empty
        };
        Ok(was_empty)
    }

    /// Marks the current end of the queue, which the session uses to find where a room switch
    /// happened: what comes before belongs to the old room. It takes no room, so it never fails
    /// as full.
    pub fn push_marker(&self) -> Result<(), PushError> {
        {
            let mut queue = self.shared.queue();
            if queue.closed {
                return Err(PushError::Closed);
            }
            queue.marker = Some(queue.bytes.len());
        }
        self.wake();
        Ok(())
    }

    /// The renderer this member's output is formatted by.
    pub fn renderer(&self) -> RendererId {
        RendererId(self.shared.renderer.load(Ordering::Relaxed))
    }

    /// Formats this member's output with another renderer from now on.
    pub fn set_renderer(&self, renderer: RendererId) {
        self.shared.renderer.store(renderer.0, Ordering::Relaxed);
    }

    /// Wakes the session (it takes everything queued).
    pub fn wake(&self) {
        self.shared.ready.notify(1);
    }

    /// Bytes waiting or being written: how far behind this client is.
    pub fn queued(&self) -> usize {
        self.shared.queue().bytes.len() + self.shared.in_flight.load(Ordering::Relaxed)
    }

    /// True once the session is gone or the outbox was closed.
    pub fn is_closed(&self) -> bool {
        self.shared.queue().closed
    }

    /// The budget this outbox counts against.
    pub fn budget(&self) -> &Budget {
        &self.shared.budget
    }

    /// Gives up on a client that stopped reading: the session stops writing (even in the middle
    /// of a blocked write) and ends without flushing.
    /// What it held is freed (and leaves the budget) at once: it will never be written.
    pub fn kick(&self) {
        self.shared.kicked.store(true, Ordering::Release);
        let freed = {
            let mut queue = self.shared.queue();
            queue.closed = true;
            queue.marker = None;
            std::mem::take(&mut queue.bytes)
        };
        let in_flight = self.shared.in_flight.swap(0, Ordering::Relaxed);
        self.shared.budget.sub(freed.len() + in_flight);
        self.wake();
    }

    /// Ends the queue: the session writes what is queued, then finishes.
    pub fn close(&self) {
        self.shared.queue().closed = true;
        self.wake();
    }
}

impl Inbox {
    /// Waits for output; `None` once the outbox is closed and empty (or kicked). What is taken
    /// counts against the limit until [`Inbox::sent`].
    pub async fn recv(&self) -> Option<Taken> {
        loop {
            if let Some(taken) = self.try_recv() {
                return Some(taken);
            }
            if self.was_kicked() || self.shared.queue().closed {
                return None;
            }
            let listener = self.shared.ready.listen();
            // Look again now that the listener is in place: a push in between notified nobody.
            if let Some(taken) = self.try_recv() {
                return Some(taken);
            }
            if self.was_kicked() || self.shared.queue().closed {
                return None;
            }
            listener.await;
        }
    }

    /// Everything queued, up to the marker if there is one; `None` if nothing is queued.
    pub fn try_recv(&self) -> Option<Taken> {
        if self.was_kicked() {
            return None;
        }
        let mut queue = self.shared.queue();
        let taken = match queue.marker.take() {
            Some(at) => {
                let rest = queue.bytes.split_off(at);
                Taken {
                    bytes: std::mem::replace(&mut queue.bytes, rest),
                    at_marker: true,
                }
            }
            None if queue.bytes.is_empty() => return None,
            None => Taken {
                bytes: std::mem::take(&mut queue.bytes),
                at_marker: false,
            },
        };
        let took = u32::try_from(taken.bytes.len()).unwrap_or(u32::MAX);
        queue.hint = took.max(queue.hint / 2);
        drop(queue);
        self.shared
            .in_flight
            .fetch_add(taken.bytes.len(), Ordering::Relaxed);
        Some(taken)
    }

    /// Everything taken so far has been written: it no longer counts against the limits.
    pub fn sent(&self) {
        let n = self.shared.in_flight.swap(0, Ordering::Relaxed);
        if n > 0 {
            self.shared.budget.sub(n);
        }
    }

    /// True once the hub has kicked this session.
    pub fn was_kicked(&self) -> bool {
        self.shared.kicked()
    }

    /// The shared state, for a writer that must notice a kick while blocked.
    pub fn state(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        // The session is gone: later pushes fail as closed, and what waits is freed now.
        let mut queue = self.shared.queue();
        queue.closed = true;
        let freed = std::mem::take(&mut queue.bytes);
        drop(queue);
        self.shared.budget.sub(freed.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Outbox {
        /// Appends `text` and a newline (the hub itself only ever appends rendered bytes).
        fn push_text(&self, text: &str) -> Result<(), PushError> {
            self.push(format!("{text}\n").as_bytes())
        }
    }

    fn budget() -> Arc<Budget> {
        Budget::new(usize::MAX)
    }

    #[test]
    fn full_at_the_byte_limit_and_frees_once_sent() {
        let (tx, rx) = outbox(10, budget());
        assert_eq!(tx.push_text("1234"), Ok(())); // 5 bytes
        assert_eq!(tx.push_text("1234"), Ok(())); // 10 bytes
        assert_eq!(tx.push_text("x"), Err(PushError::Full));
        let taken = rx.try_recv().unwrap();
        assert_eq!(taken.bytes, b"1234\n1234\n");
        // Taken but not written yet: still counted.
        assert_eq!(tx.push_text("x"), Err(PushError::Full));
        rx.sent();
        assert_eq!(tx.push_text("x"), Ok(()));
    }

    #[test]
    fn a_reply_may_overshoot_by_the_slack() {
        let (tx, _rx) = outbox(10, budget());
        tx.push_text("123456789").unwrap();
        assert_eq!(tx.push(b"abcd\n"), Err(PushError::Full));
        assert_eq!(tx.push_reply(b"abcd\n", 8), Ok(()));
    }

    #[test]
    fn the_marker_splits_the_queue() {
        let (tx, rx) = outbox(100, budget());
        tx.push_text("old").unwrap();
        tx.push_marker().unwrap();
        tx.push_text("new").unwrap();
        let first = rx.try_recv().unwrap();
        assert_eq!((&first.bytes[..], first.at_marker), (&b"old\n"[..], true));
        let second = rx.try_recv().unwrap();
        assert_eq!(
            (&second.bytes[..], second.at_marker),
            (&b"new\n"[..], false)
        );
    }

    #[test]
    fn closed_after_the_inbox_is_gone() {
        let (tx, rx) = outbox(100, budget());
        drop(rx);
        assert_eq!(tx.push_text("hi"), Err(PushError::Closed));
    }

    #[test]
    fn close_lets_queued_lines_drain() {
        let (tx, rx) = outbox(100, budget());
        tx.push_text("last").unwrap();
        tx.close();
        let taken = smol::block_on(rx.recv()).unwrap();
        assert_eq!(taken.bytes, b"last\n");
        assert!(smol::block_on(rx.recv()).is_none());
    }

    #[test]
    fn the_budget_counts_until_written_or_dropped() {
        let budget = Budget::new(8);
        let (tx, rx) = outbox(100, budget.clone());
        tx.push_text("12345").unwrap();
        tx.push_text("678").unwrap();
        assert_eq!(budget.used(), 10);
        assert_eq!(budget.excess(), Some(2));
        let _ = rx.try_recv();
        assert_eq!(budget.used(), 10);
        rx.sent();
        assert_eq!(budget.used(), 0);
        tx.push_text("abc").unwrap();
        drop(rx);
        drop(tx);
        assert_eq!(budget.used(), 0);
    }

    /// A relay's bytes are added after its fan-out, so a session may write and subtract them
    /// first: the budget reads 0 meanwhile, never a huge excess, and is right once added.
    #[test]
    fn the_budget_survives_a_write_before_its_relay_is_counted() {
        let budget = Budget::new(8);
        let (tx, rx) = outbox(100, budget.clone());
        assert_eq!(tx.push_deferred_within(b"12345\n", 0), Ok(true));
        let _ = rx.try_recv();
        rx.sent();
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.excess(), None);
        budget.add(6);
        assert_eq!(budget.used(), 0);
        tx.push_text("678").unwrap();
        assert_eq!(budget.used(), 4);
    }

    /// An empty buffer reserves about what the last take held, within bounds, so a busy
    /// session's batch is one allocation, not a doubling series.
    #[test]
    fn an_empty_buffer_reserves_what_the_last_take_held() {
        let (tx, rx) = outbox(1 << 20, budget());
        let line = [b'x'; 99];
        tx.push(&line).unwrap();
        assert!(rx.try_recv().unwrap().bytes.capacity() >= FIRST_RESERVE);
        for _ in 0..40 {
            tx.push(&line).unwrap();
        }
        assert_eq!(rx.try_recv().unwrap().bytes.len(), 40 * 99);
        tx.push(&line).unwrap();
        assert!(rx.try_recv().unwrap().bytes.capacity() >= 2 * 40 * 99);
        for _ in 0..1000 {
            tx.push(&line).unwrap();
        }
        let _ = rx.try_recv();
        tx.push(&line).unwrap();
        assert_eq!(rx.try_recv().unwrap().bytes.capacity(), MAX_RESERVE);
    }
}
