//! What the hub says, typed: every door renders these into its own bytes.
//!
//! The hub never spells a line a user reads. It emits an [`Event`] for many (a public line with
//! its id and time, a room notice, a notice from the server to everybody), or a [`Reply`] or
//! [`Private`] line for one member, and each door's renderer (`hub/render.rs`) turns it into bytes: `bob: hi`
//! for the line door, `:bob!bob@host PRIVMSG #lobby :hi` for an IRC client, a JSON object for a
//! browser. So a new door needs no change here, and refusals are values a door can branch on,
//! never text to be read back.

use std::sync::Arc;

use crate::moderation::ban::Ban;
use crate::names::{Nick, RoomName};
use crate::vocab::{Departure, Kind, PrivateKind, Removal};

/// One thing for many members to see, the same for each of them. (What is addressed to one
/// member is a [`Reply`] or a [`Private`] line.)
#[derive(Debug, Clone)]
pub enum Event {
    /// A public line, relayed once stored.
    Said(Said),
    /// Something that happened in a room.
    Notice(Notice),
    /// From the server to everybody.
    Server(ServerNotice),
    /// A live-only signal between members of one kind of door, never stored (IRC's `TAGMSG`).
    Signal(Signal),
}

/// Data a door's client sends to a room for the same door's readers only (IRC's client-only
/// tags in a `TAGMSG`: typing notifications, reactions). The hub relays it live to the room's
/// members of this node, never stores or replicates it, and never reads `data`: a renderer
/// that does not know it renders nothing.
#[derive(Debug, Clone)]
pub struct Signal {
    pub room: RoomName,
    pub from: Nick,
    /// The sender's account (lower case), if it is logged in to one here.
    pub account: Option<Arc<str>>,
    /// Opaque to the hub: only the door that wrote it reads it.
    pub data: Arc<str>,
}

/// A public line as the room sees it.
#[derive(Debug, Clone)]
pub struct Said {
    /// The message id (the history's `id`): doors that resume after a reconnect ask for what
    /// came after the last id they showed.
    pub id: i64,
    /// When it was said, in milliseconds since the epoch (as stored).
    pub at_ms: i64,
    pub room: RoomName,
    pub from: Nick,
    /// The account the sender is logged in to (lower case), if any.
    pub account: Option<Arc<str>>,
    pub kind: Kind,
    pub text: Arc<str>,
    /// Opaque data the sender's door attached (IRC's client-only tags), read only by that
    /// door's renderer, live only: the history and the cluster log never keep it.
    pub attached: Option<Arc<str>>,
}

/// Something that happened in a room, for its members.
#[derive(Debug, Clone)]
pub enum Notice {
    Joined {
        room: RoomName,
        nick: Nick,
        /// What listings show of a joiner of this node (IRC's `extended-join` shows its account
        /// and real name, `away-notify` whether it is away); `None` for another node's.
        listed: Option<Arc<Listed>>,
    },
    Left {
        room: RoomName,
        nick: Nick,
        why: Departure,
    },
    Renamed {
        room: RoomName,
        old: Nick,
        new: Nick,
    },
    /// `None` clears the topic.
    Topic {
        room: RoomName,
        by: Arc<str>,
        text: Option<Arc<str>>,
    },
    /// A member went away (with its message) or came back (`None`). Only doors that show it
    /// (IRC's `away-notify`) render it; the others render nothing.
    Away {
        room: RoomName,
        nick: Nick,
        account: Option<Arc<str>>,
        message: Option<Arc<str>>,
    },
    /// Joins and leaves in a big room during a storm, summed up (docs/PROTOCOL.md), in the order
    /// they happened: a door that keeps a member list (IRC) replays them; the line door shows
    /// counts and the first names.
    Summary {
        room: RoomName,
        changes: Arc<[(Arrival, Nick)]>,
    },
}

impl Notice {
    /// The room this notice is about.
    pub fn room(&self) -> &RoomName {
        match self {
            Notice::Joined { room, .. }
            | Notice::Left { room, .. }
            | Notice::Renamed { room, .. }
            | Notice::Topic { room, .. }
            | Notice::Away { room, .. }
            | Notice::Summary { room, .. } => room,
        }
    }
}

/// Whether a member came or went, in a [`Notice::Summary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    Joined,
    Left,
}

/// A private line, for its recipient.
#[derive(Debug, Clone)]
pub struct Private {
    pub from: Nick,
    /// The sender's account (lower case), if it is logged in to one here.
    pub account: Option<Arc<str>>,
    pub to: Nick,
    /// Empty for a signal alone ([`Private::is_signal`]).
    pub text: Arc<str>,
    pub kind: PrivateKind,
    /// Opaque data the sender's door attached (IRC's client-only tags), read only by that
    /// door's renderer; other doors ignore it. Not carried to other cluster nodes.
    pub attached: Option<Arc<str>>,
}

impl Private {
    /// A private line without text only carries `attached` (IRC's `TAGMSG` to a nick): doors
    /// that do not read `attached` show nothing.
    pub fn is_signal(&self) -> bool {
        self.text.is_empty()
    }
}

/// From the server to everybody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNotice {
    /// The last thing said before every connection closes.
    ShuttingDown,
    /// Public lines have waited a second for the history writer: chat waits until it can write.
    HistoryPaused,
    HistoryResumed,
    /// Room notices past the bound held behind waiting lines were not shown.
    NoticesSkipped(u64),
    /// Cluster mode: the link to the cluster log is lost; lines are refused until it is back.
    ClusterPaused,
    ClusterResumed,
}

/// An answer to a member's own command, or news for that member alone.
#[derive(Debug, Clone)]
pub enum Reply {
    Refused(Refusal),
    /// The member moved into `room` (the line door's `/join`), where `count` members are now.
    Joined {
        room: RoomName,
        count: usize,
        /// The member as listings show it (IRC's `extended-join` shows its account and real
        /// name in its own `JOIN`).
        me: Arc<Listed>,
    },
    /// The member left `room` (IRC's PART), with the reason the room was given.
    Parted {
        room: RoomName,
        reason: Option<Arc<str>>,
    },
    /// The member's private line was sent (or silently not delivered: see `hub/ignores.rs`).
    PrivateSent {
        to: Nick,
        text: Arc<str>,
        /// The recipient's away message, while it is away (IRC answers `301`).
        away: Option<Arc<str>>,
    },
    /// One page of a room's members, in the order they arrived.
    Who(Page<Listed>),
    /// One page of the occupied rooms, by name, with their sizes.
    Rooms(Page<(RoomName, usize)>),
    /// The commands this member may use: doors list their own; operators get theirs too.
    Help {
        operator: bool,
    },
    /// A room's topic; `None`: it has none.
    Topic {
        room: RoomName,
        topic: Option<Topic>,
    },
    /// `/ignore` alone: the names this member ignores, sorted (lower case).
    IgnoreList(Vec<Arc<str>>),
    Ignoring(Nick),
    Unignored(Nick),
    /// The member was removed by an operator: its last words, before the connection closes.
    Removed(Removal),
    /// Cluster mode: the member's name was taken on node `holder` while this node was cut off
    /// from the cluster: its last words ([`Dropped::NameTaken`]).
    NameTaken {
        nick: Nick,
        holder: Arc<str>,
    },
    /// To the operator: done.
    Kicked(Nick),
    BanSet {
        target: String,
        expires_ms: Option<i64>,
        /// Members the ban removed.
        removed: usize,
    },
    Unbanned(String),
    Bans(Vec<Ban>),
    MuteSet {
        nick: Nick,
        /// As typed (`10m`); `None`: until lifted.
        duration: Option<String>,
    },
    Unmuted(Nick),
    /// To the member muted.
    YouWereMuted {
        by: Nick,
        duration: Option<String>,
    },
    YouAreUnmuted,
    /// To the operator: the account `name` was removed (`/unregister NAME`).
    Unregistered(Arc<str>),
    /// To the members logged in to the account `name`: an operator (`by`) removed it; they stay
    /// connected without it.
    AccountRemoved {
        name: Arc<str>,
        by: Option<Nick>,
    },
    /// The account `name` was made an operator (or no longer is): to the operator who did it and
    /// to the members logged in to it.
    Role {
        name: Arc<str>,
        operator: bool,
    },
}

/// A member as listings show it (`/who`, IRC's `NAMES`, `WHO`, `WHOIS`): its name and what a
/// door may show beside it. Each door picks what it shows; the line door shows the name alone.
/// Members of other nodes are known by name only ([`Listed::named`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub nick: Nick,
    /// The account it is logged in to (lower case), if any.
    pub account: Option<Arc<str>>,
    pub operator: bool,
    /// Its away message, while it is away.
    pub away: Option<Arc<str>>,
    /// Connected over TLS.
    pub tls: bool,
    /// How it describes itself, if its door asked (IRC's real name).
    pub realname: Option<Arc<str>>,
    /// When it arrived and last spoke (IRC's `WHOIS` idle time); `None` for another node's.
    pub active: Option<Active>,
}

/// When a member of this node arrived and when it last sent a line (public or private), in
/// milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Active {
    pub signon_ms: i64,
    pub spoke_ms: i64,
}

impl Listed {
    /// A member known by name alone (another node's).
    pub fn named(nick: Nick) -> Listed {
        Listed {
            nick,
            account: None,
            operator: false,
            away: None,
            tls: false,
            realname: None,
            active: None,
        }
    }
}

/// A room's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub text: Arc<str>,
    pub by: Arc<str>,
}

/// One page of a long list.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The room listed, for `/who`.
    pub room: Option<RoomName>,
    /// The page shown, from 1; 0 when the whole list was asked for.
    pub page: usize,
    /// Items in the whole list.
    pub total: usize,
    /// Items on a full page.
    pub per_page: usize,
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// How many pages the list has (at least one).
    pub fn pages(&self) -> usize {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }

    /// The next page's number, if there is one.
    pub fn next(&self) -> Option<usize> {
        (self.page > 0 && self.page.saturating_mul(self.per_page) < self.total)
            .then_some(self.page + 1)
    }

    /// Whether this page lies past the last one (page 1 of an empty list does not).
    pub fn beyond_last(&self) -> bool {
        self.page > self.pages()
    }

    /// Items after this page.
    pub fn left(&self) -> usize {
        self.total
            .saturating_sub(self.page.saturating_mul(self.per_page))
    }
}

/// Why the hub refused what a member asked. Doors render each in their own words (and, for
/// IRC, numerics); none is ever recovered from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The very name (ignoring case) is in use.
    NameTaken(Nick),
    /// A different name that looks the same is in use.
    NameLooksLike(Nick),
    /// Held for the owner of a member dropped moments ago, for this many more seconds.
    NameHeld(Nick, u64),
    AlreadyKnownAs(Nick),
    AlreadyIn(RoomName),
    /// The room looks like an occupied different one (`#рор` in Cyrillic beside `#pop`).
    RoomLooksLike(RoomName, RoomName),
    NotInRoom(RoomName),
    /// A command for "your room" from a member in several rooms: it must say which.
    WhichRoom,
    NoSuchUser(Nick),
    /// The sender is muted.
    Muted,
    /// An action that would read like one of the server's notices (see `hub/render.rs`).
    LooksLikeNotice,
    /// So many lines wait for the history that no more are taken while it is stuck.
    HistoryFull,
    /// Cluster mode: the cluster is unreachable; the line was refused, not held.
    ClusterPaused,
    /// The recipient's private allowance is used up.
    PrivateFlood(Nick),
    /// An operator command from a member who is not an operator.
    OperatorsOnly(OpKind),
    BanTooWide {
        target: String,
        /// The shortest prefix allowed.
        min: u8,
    },
    BanCoversYou,
    /// Only `smolchat op remove` takes the role of an operator made on the command line.
    CliOperator(String),
    NoBan(String),
    NotMuted(Nick),
    IgnoreSelf,
    /// The member ignores this many names already.
    IgnoreFull(usize),
    NotIgnoring(Nick),
    /// `/op` of a name that is not registered.
    NotRegistered(String),
    /// `/unregister NAME` of a name that is not registered.
    NoSuchAccount(String),
    /// The account store could not answer.
    AccountsUnavailable,
    /// `/who N` or `/rooms N` past the list's last page: the list has `pages` (at least one).
    NoSuchPage {
        page: usize,
        pages: usize,
    },
    /// The server is stopping.
    ShuttingDown,
}

/// The operator commands, by what they do: how a door names them is its own business.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Kick,
    Ban,
    Unban,
    Bans,
    Mute,
    Unmute,
    Op,
    Deop,
    SetTopic,
    Unregister,
}
