//! A session's outbox: the queue of lines waiting to be written to one client.
//!
//! The hub pushes with a non-blocking `push`, so a client that stops reading can never stall the
//! room: its outbox fills up to a byte limit, the push fails with [`PushError::Full`], and the hub
//! disconnects that client instead. Lines are shared (`Arc<[u8]>`): a line relayed to a thousand
//! users is formatted and allocated once.
//!
//! The queue is an unbounded async-channel plus a byte counter rather than a bounded channel,
//! because a bounded channel allocates all its slots up front, which idle users would pay for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_channel::{Receiver, Sender};

/// One formatted line, newline included, shared among its recipients. The empty line is a marker
/// (see [`Outbox::push_marker`]) and is never written.
pub type Line = Arc<[u8]>;

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The client is not reading fast enough: the outbox holds its byte limit.
    Full,
    /// The session is gone.
    Closed,
}

/// The sending side, held by the hub and by the session itself.
#[derive(Clone)]
pub struct Outbox {
    lines: Sender<Line>,
    state: Arc<State>,
}

/// The receiving side, held by the session's writer.
pub struct Inbox {
    lines: Receiver<Line>,
    state: Arc<State>,
}

/// What both sides share: the bytes queued and whether the hub gave up on this client.
pub struct State {
    queued: AtomicUsize,
    limit: usize,
    kicked: AtomicBool,
}

/// Creates an outbox that holds at most `limit` bytes of queued lines.
pub fn outbox(limit: usize) -> (Outbox, Inbox) {
    let (lines_tx, lines_rx) = async_channel::unbounded();
    let state = Arc::new(State {
        queued: AtomicUsize::new(0),
        limit,
        kicked: AtomicBool::new(false),
    });
    (
        Outbox {
            lines: lines_tx,
            state: state.clone(),
        },
        Inbox {
            lines: lines_rx,
            state,
        },
    )
}

impl Outbox {
    /// Queues a line without waiting.
    pub fn push(&self, line: Line) -> Result<(), PushError> {
        let n = line.len();
        let before = self.state.queued.fetch_add(n, Ordering::Relaxed);
        if before + n > self.state.limit {
            self.state.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(PushError::Full);
        }
        self.lines.try_send(line).map_err(|_| {
            self.state.queued.fetch_sub(n, Ordering::Relaxed);
            PushError::Closed
        })
    }

    /// Queues a line built from text.
    pub fn push_text(&self, text: &str) -> Result<(), PushError> {
        self.push(line(text))
    }

    /// Queues the empty marker line, which the session uses to find where a room switch happened
    /// in its queue. It takes no room, so it never fails as full.
    pub fn push_marker(&self) -> Result<(), PushError> {
        self.lines
            .try_send(Arc::from(&b""[..]))
            .map_err(|_| PushError::Closed)
    }

    /// Gives up on a client that stopped reading: the session stops writing (even in the middle
    /// of a blocked write) and ends without flushing.
    pub fn kick(&self) {
        self.state.kicked.store(true, Ordering::Release);
        self.lines.close();
    }

    /// Ends the queue: the session writes what is queued, then finishes.
    pub fn close(&self) {
        self.lines.close();
    }
}

impl Inbox {
    /// Waits for the next line; `None` once the outbox is closed and empty (or kicked).
    pub async fn recv(&self) -> Option<Line> {
        if self.was_kicked() {
            return None;
        }
        let line = self.lines.recv().await.ok()?;
        self.state.queued.fetch_sub(line.len(), Ordering::Relaxed);
        Some(line)
    }

    /// The next line if one is queued.
    pub fn try_recv(&self) -> Option<Line> {
        let line = self.lines.try_recv().ok()?;
        self.state.queued.fetch_sub(line.len(), Ordering::Relaxed);
        Some(line)
    }

    /// True once the hub has kicked this session.
    pub fn was_kicked(&self) -> bool {
        self.state.kicked.load(Ordering::Acquire)
    }

    /// The shared state, for a writer that must notice a kick while blocked.
    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }
}

impl State {
    /// True once the hub has kicked this session.
    pub fn kicked(&self) -> bool {
        self.kicked.load(Ordering::Acquire)
    }
}

/// Builds a line from text, adding the newline.
pub fn line(text: &str) -> Line {
    let mut bytes = Vec::with_capacity(text.len() + 1);
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    bytes.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_at_the_byte_limit_and_frees_on_receive() {
        let (tx, rx) = outbox(10);
        assert_eq!(tx.push_text("1234"), Ok(())); // 5 bytes
        assert_eq!(tx.push_text("1234"), Ok(())); // 10 bytes
        assert_eq!(tx.push_text("x"), Err(PushError::Full));
        assert_eq!(tx.push_marker(), Ok(()));
        assert_eq!(rx.try_recv().as_deref(), Some(&b"1234\n"[..]));
        assert_eq!(tx.push_text("x"), Ok(()));
    }

    #[test]
    fn closed_after_the_inbox_is_gone() {
        let (tx, rx) = outbox(100);
        drop(rx);
        assert_eq!(tx.push_text("hi"), Err(PushError::Closed));
    }

    #[test]
    fn close_lets_queued_lines_drain() {
        let (tx, rx) = outbox(100);
        tx.push_text("last").unwrap();
        tx.close();
        assert_eq!(smol::block_on(rx.recv()).as_deref(), Some(&b"last\n"[..]));
        assert_eq!(smol::block_on(rx.recv()), None);
    }
}
