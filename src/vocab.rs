//! The words every layer shares: who a member is, what kind a public line is, why a member
//! left, and what an account or moderation change says.
//!
//! They live here, below every other module, so that the storage, the cluster log, the hub and
//! the doors can all name them without importing one another. Nothing here does anything: no
//! I/O, no formatting, no rules.

use std::net::IpAddr;
use std::sync::Arc;

use crate::names::RoomName;

/// Identifies a connection for its whole life, whatever its name becomes. Given at accept, unique
/// within one run of the server; with the node's name, unique across a cluster.
pub type MemberId = u64;

/// What a public line is: a plain message or a `/me` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Action,
}

impl Kind {
    /// The word the history's `kind` column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Action => "action",
        }
    }

    /// Reads the `kind` column; anything unknown counts as a message.
    pub fn from_word(text: &str) -> Kind {
        if text == "action" {
            Kind::Action
        } else {
            Kind::Message
        }
    }
}

/// How a private line is meant. Every door shows a line and a notice; a notice (IRC's
/// `NOTICE`) is never answered, not even by a refusal, because automatic answers to automatic
/// lines are how two bots loop (RFC 2812 3.3.2). A CTCP query (`\x01VERSION\x01` in a
/// `PRIVMSG`) and its reply (in a `NOTICE`) are between IRC clients: the text keeps its
/// `\x01` framing, and other doors show nothing of them. An action is a `/me` said privately
/// (IRC's CTCP `ACTION` to a nick), shown as an action by every door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PrivateKind {
    #[default]
    Line,
    Action,
    Notice,
    Ctcp,
    CtcpReply,
}

impl PrivateKind {
    /// Whether nothing may answer it: no refusal, no automatic reply.
    pub fn is_notice(self) -> bool {
        matches!(self, PrivateKind::Notice | PrivateKind::CtcpReply)
    }

    /// Whether only IRC users see it.
    pub fn is_ctcp(self) -> bool {
        matches!(self, PrivateKind::Ctcp | PrivateKind::CtcpReply)
    }
}

/// A change to the state every node keeps (accounts, operators, bans, mutes, topics). Made on
/// one node, applied there at once, and in cluster mode replayed by every node in log order, so
/// every file and every hub ends up the same. Each carries what the stored row needs (times
/// included), so the rows are equal everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `/register`: the account `display` (its key is the name in lower case).
    Register {
        display: String,
        hash: String,
        created_ms: i64,
    },
    /// `/password`: a new hash for the account `name` (lower case).
    Password {
        name: String,
        hash: String,
    },
    /// `/unregister`.
    Unregister {
        name: String,
    },
    /// `/op` (true) and `/deop` (false).
    Role {
        name: String,
        operator: bool,
    },
    /// `/ban`: `target` as [`Target`](crate::moderation::ban::Target) shows it.
    Ban {
        target: String,
        reason: Option<String>,
        by: String,
        created_ms: i64,
        expires_ms: Option<i64>,
    },
    Unban {
        target: String,
    },
    /// `/mute`: the name muted, and the account and address (an IPv6 /64 as a whole) of the user
    /// it was set on, if that user was connected; `until_ms` is the wall-clock end.
    Mute {
        name: String,
        account: Option<String>,
        ip: Option<IpAddr>,
        until_ms: Option<i64>,
    },
    Unmute {
        name: String,
    },
    /// `/topic`: `None` clears it.
    Topic {
        room: RoomName,
        text: Option<String>,
        by: String,
        at_ms: i64,
    },
}

/// Why a member left a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departure {
    /// Left the chat (closed the connection, or quit), with the user's own words if any.
    Quit(Option<Arc<str>>),
    /// Left this room for another one (the line door's `/join`).
    Moved(RoomName),
    /// Left this room only (IRC's PART), with the user's own words if any.
    Parted(Option<Arc<str>>),
    /// Removed by an operator.
    Removed(Removal),
    /// Dropped by the server.
    Dropped(Dropped),
}

/// Why the server dropped a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Its outbox overflowed: it did not read fast enough.
    TooSlow,
    /// Cluster mode: its node stopped renewing its heartbeat.
    NodeLost(Arc<str>),
    /// Cluster mode: its node came back after dying unannounced.
    NodeRestarted(Arc<str>),
    /// Cluster mode: its node was stopped.
    NodeStopped,
    /// Cluster mode: this node was cut off from the cluster past the heartbeat's expiry, and
    /// meanwhile a user of this node (the one holding it now) took the member's name.
    NameTaken(Arc<str>),
}

/// How an operator removed a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Kicked {
        by: Arc<str>,
        reason: Option<Arc<str>>,
    },
    Banned {
        by: Arc<str>,
        reason: Option<Arc<str>>,
        expires_ms: Option<i64>,
    },
}

/// Whether the cluster log's entry id `a` (a Redis stream id, `MS-SEQ`) is older than `b`,
/// compared as numbers; a malformed part counts as 0.
pub fn stream_id_lt(a: &str, b: &str) -> bool {
    fn parts(id: &str) -> (u64, u64) {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
    }
    parts(a) < parts(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stream ids compare as numbers, not as text.
    #[test]
    fn stream_ids_compare_numerically() {
        assert!(stream_id_lt("9-0", "10-0"));
        assert!(stream_id_lt("10-2", "10-10"));
        assert!(!stream_id_lt("10-0", "10-0"));
        assert!(stream_id_lt("0-0", "1-0"));
    }
}
