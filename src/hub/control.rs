//! What reaches the hub from outside the doors: SIGHUP, and answers from the account thread.
//!
//! The hub never waits for the database. A write whose result matters (`/op`, `/unregister
//! NAME`, a reload) goes to
//! the account thread with a callback that sends one of these back on the hub's own control
//! channel, and the hub carries on meanwhile.

use crate::names::Nick;
use crate::storage::accounts::{InChat, Reloaded, RoleChange};
use crate::storage::StorageError;
use crate::vocab::MemberId;

/// A message for the hub that no member sent.
pub enum Control {
    /// SIGHUP: re-read the bans and operator roles (changed by `smolchat ban` and `smolchat op`).
    Reload,
    /// The bans and roles read for a reload, behind the writes queued when `seen` ban edits had
    /// been made.
    Reloaded { reloaded: Reloaded, seen: u64 },
    /// `/op`, `/deop` or `/unregister NAME` from member `op` was stored, or not.
    Stored {
        op: MemberId,
        nick: Nick,
        change: InChat,
        result: Result<RoleChange, StorageError>,
    },
}
