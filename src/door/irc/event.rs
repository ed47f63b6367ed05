//! What the IRC door renders: the hub's events and replies as plain values.
//!
//! These are drafts of the typed events the reshaped hub will carry, shaped after what it
//! already knows (message ids, millisecond timestamps, `Nick`, `RoomName`, `Kind`, accounts,
//! operator flags) plus the little IRC needs on top (`user@host`, the real name, client-only
//! tags). When the hub's own types land, these become conversions from them, or go.
//!
//! Text in these values is as stored: from the line door, sanitized; from the IRC door,
//! sanitized with IRC formatting kept (see [`crate::door::irc::format`]).

use std::sync::Arc;

use crate::names::{Nick, RoomName};
use crate::vocab::Kind;

/// Who did something, as IRC shows them: `nick!user@host`, and the account they logged in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub nick: Nick,
    /// The user part: `~name` from `USER` for IRC clients; the door's name (`nc`, `web`) for
    /// the others.
    pub user: Arc<str>,
    /// The host part: never the raw address (the wiring picks a cloak).
    pub host: Arc<str>,
    pub account: Option<Arc<str>>,
}

/// A public line relayed to a room, after it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    /// The history row's id: the IRC `msgid`.
    pub id: i64,
    /// When it was stored, in milliseconds since the epoch: the IRC `time` (the same instant
    /// the history holds, so a replay carries the same tags).
    pub at_ms: i64,
    pub room: RoomName,
    pub from: Origin,
    pub kind: Kind,
    pub text: Arc<str>,
    /// Sent as `NOTICE` (IRC recipients see a notice; the history keeps a message).
    pub notice: bool,
    /// Client-only tags from an IRC sender, escaped, for `message-tags` recipients.
    pub client_tags: Option<Arc<str>>,
}

/// A private line (never stored, so no id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whispered {
    pub at_ms: i64,
    pub from: Origin,
    pub to: Nick,
    pub kind: Kind,
    pub text: Arc<str>,
    pub notice: bool,
    pub client_tags: Option<Arc<str>>,
}

/// A `TAGMSG`: client-only tags and nothing else, for `message-tags` recipients only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub at_ms: i64,
    pub from: Origin,
    /// `#room` or a nick, as IRC writes it.
    pub target: String,
    pub client_tags: Arc<str>,
}

/// A change in who is where, or who is who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Joined {
        room: RoomName,
        who: Origin,
        realname: Arc<str>,
        /// Set when the joiner is away (`away-notify` recipients then get an `AWAY`).
        away: Option<Arc<str>>,
    },
    Parted {
        room: RoomName,
        who: Origin,
        reason: Option<Arc<str>>,
    },
    /// Sent once to each user sharing a room with `who`, however many rooms they share.
    Quit {
        who: Origin,
        reason: Option<Arc<str>>,
    },
    /// Sent once to each user sharing a room with `who`, and to `who`.
    Renamed { who: Origin, to: Nick },
    Kicked {
        room: RoomName,
        by: Origin,
        target: Nick,
        reason: Option<Arc<str>>,
    },
    Topic {
        room: RoomName,
        by: Origin,
        /// `None` when cleared.
        text: Option<Arc<str>>,
    },
    /// For `away-notify` recipients only.
    Away {
        who: Origin,
        message: Option<Arc<str>>,
    },
    /// An operator set (`+b`) or lifted (`-b`) a ban, shown as a mode change on the room.
    Ban {
        room: RoomName,
        by: Origin,
        set: bool,
        mask: Arc<str>,
    },
}

/// A member as listings show them (`NAMES`, `WHO`, `WHOIS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub origin: Origin,
    pub realname: Arc<str>,
    /// A server operator: shown `@` in rooms, `*` in `WHO`.
    pub operator: bool,
    pub away: Option<Arc<str>>,
    /// Connected over TLS (`671` in `WHOIS`).
    pub secure: bool,
    /// Seconds since its last line and its sign-on time (`317` in `WHOIS`); `None` when not
    /// known (another node's member).
    pub idle: Option<Idle>,
}

/// What `317` shows: seconds idle and when the user signed on (seconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Idle {
    pub seconds: i64,
    pub signon: i64,
}

/// A room's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub text: Arc<str>,
    pub set_by: Arc<str>,
    pub set_at_ms: i64,
}

/// A room in `LIST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub room: RoomName,
    pub users: usize,
    pub topic: Option<Arc<str>>,
}

/// A ban as `MODE #room +b` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    pub mask: Arc<str>,
    pub set_by: Arc<str>,
    pub set_at_ms: i64,
}

/// A stored line as the history returns it, for replays and `CHATHISTORY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub id: i64,
    pub at_ms: i64,
    pub sender: Arc<str>,
    pub kind: Kind,
    pub text: Arc<str>,
}
