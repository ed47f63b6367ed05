//! Outbox output to the client while a session waits for something else.
//!
//! A session normally races its client's input against its outbox and writes whatever the hub
//! queued. When it must wait for something else (a password check, the store, the hub's answer
//! to a move), output keeps flowing through these, so a member busy with a dialogue is never
//! dropped as a slow reader meanwhile; input waits (TCP pushes back).

use std::future::Future;
use std::sync::Arc;

use smol::future;

use crate::hub::outbox::{self, Inbox};
use crate::session::Output;
use crate::wire::conn::Abandon;

/// The session's outbox was closed: the server is stopping, or the hub let the member go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Why a wait ended early.
#[derive(Debug)]
pub enum Broken {
    /// Writing to the client failed.
    Gone,
    Closed,
}

/// A blocked write gives up once the hub has kicked the member (see `wire/conn.rs`).
pub struct Kicked(pub Arc<outbox::Shared>);

impl Abandon for Kicked {
    fn abandoned(&self) -> bool {
        self.0.kicked()
    }
}

/// Awaits `work` while writing outbox output to `out`.
pub async fn relaying<O: Output, T>(
    out: &mut O,
    inbox: &Inbox,
    work: impl Future<Output = T>,
) -> Result<T, Broken> {
    let mut work = std::pin::pin!(work);
    loop {
        out.flush().await.map_err(|_| Broken::Gone)?;
        // Written: what was taken from the outbox no longer counts against its limit.
        inbox.sent();
        let step = future::or(async { Ok(work.as_mut().await) }, async {
            Err(inbox.recv().await)
        })
        .await;
        match step {
            Ok(done) => return Ok(done),
            Err(Some(taken)) => out.queue_owned(taken.bytes),
            Err(None) => return Err(Broken::Closed),
        }
    }
}

/// Queues the outbox's output up to the marker the hub placed where the member moved rooms:
/// what came before belongs to the old room, what comes after to the new one.
pub async fn up_to_marker<O: Output>(out: &mut O, inbox: &Inbox) -> Result<(), Closed> {
    loop {
        let taken = inbox.recv().await.ok_or(Closed)?;
        out.queue_owned(taken.bytes);
        if taken.at_marker {
            return Ok(());
        }
    }
}
