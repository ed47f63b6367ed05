//! What doors ask of the hub: intents.
//!
//! A door turns its input into these (the line door from `/commands`, an IRC door from its
//! verbs, a web door from its messages) and sends them over one channel. Each carries the
//! member it comes from; answers come back as events in the member's outbox, or, where the door
//! must wait for one (registering, moving), on a reply channel.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;

use crate::hub::lookup::{Found, Lookup};
use crate::hub::outbox::Outbox;
use crate::hub::render::RendererId;
use crate::moderation::ban::Target;
use crate::names::{Nick, RoomName};
use crate::vocab::{Change, Kind, MemberId, PrivateKind};

/// A duration as an operator typed it (`10m`), and its length.
pub type Typed = (Duration, String);

/// One thing a door asks of the hub.
pub enum Intent {
    /// A newcomer chose a name (already claimed cluster-wide in cluster mode). The reply says
    /// where it landed, or why not.
    Register {
        id: MemberId,
        nick: Nick,
        outbox: Outbox,
        identity: Identity,
        style: Style,
        reply: Sender<Result<Joined, Refused>>,
    },
    /// A request from a registered member.
    Request { id: MemberId, request: Request },
    /// Enter `room`; with `alone`, leave every other room first (the line door's `/join`).
    /// The reply says where the room's history ends; a refusal is told in the outbox instead.
    Join {
        id: MemberId,
        room: RoomName,
        alone: bool,
        reply: Sender<Joined>,
    },
    /// The member leaves the chat (quit, closed, or its session ended).
    Quit {
        id: MemberId,
        reason: Option<String>,
    },
    /// The member's name and account, for a door that asks (the line door's `/register`).
    Whoami { id: MemberId, reply: Sender<Nick> },
    /// Facts about members, for a door that shows them its own way and waits for them (IRC's
    /// `NAMES`, `WHO`, `WHOIS`, `USERHOST`, `ISON`, `LUSERS`). Rooms are public: any room may
    /// be asked about.
    Lookup {
        lookup: Lookup,
        reply: Sender<Found>,
    },
}

/// Where a newcomer comes from and who it is, beyond its name.
#[derive(Debug, Clone)]
pub struct Identity {
    pub ip: IpAddr,
    /// The account (lower case) this connection logged in to, if any.
    pub account: Option<Arc<str>>,
    pub operator: bool,
    /// The role was given on the command line: chat can neither `/deop` nor ban it by name.
    pub cli_operator: bool,
    /// Connected over TLS (shown by IRC's `WHOIS`).
    pub tls: bool,
    /// How the member describes itself, if its door asks (IRC's real name).
    pub realname: Option<Arc<str>>,
    /// Seated in the lobby on arrival (the line door); an IRC client joins the channels it
    /// chooses, and is in none until it does.
    pub lobby: bool,
}

impl Identity {
    /// A member of a door that seats it in the lobby and shows neither TLS nor a real name (the
    /// line and web doors): `operator` is (the role, given on the command line).
    pub fn in_lobby(ip: IpAddr, account: Option<Arc<str>>, operator: (bool, bool)) -> Identity {
        Identity {
            ip,
            account,
            operator: operator.0,
            cli_operator: operator.1,
            tls: false,
            realname: None,
            lobby: true,
        }
    }
}

/// How a member wants its output: which renderer formats it, and whether it sees its own
/// public lines (IRC's `echo-message`). A door picks it at registration and may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub renderer: RendererId,
    pub echo: bool,
}

/// Where a member landed.
#[derive(Debug, Clone)]
pub struct Joined {
    pub room: RoomName,
    /// The id of the newest message relayed before the member arrived: the replay shows
    /// messages up to it, and the outbox carries everything after it.
    pub last_id: i64,
    /// The room's topic, shown after the history.
    pub topic: Option<crate::hub::event::Topic>,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    Taken,
    /// A different name that looks the same is in use.
    LooksLike,
    /// Held for a member dropped moments ago, for this many more seconds.
    Held(u64),
    ShuttingDown,
}

/// A request from a registered member. `room: None` means "the member's room" and is refused
/// ([`crate::hub::event::Refusal::WhichRoom`]) for a member in several rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The request inside, answered by nothing if refused: IRC's `NOTICE` to a room, which no
    /// reply may answer (RFC 2812 3.3.2), not even a refusal.
    Quietly(Box<Request>),
    Say {
        room: Option<RoomName>,
        kind: Kind,
        text: String,
        /// Opaque data for live readers of the sender's door (IRC client-only tags): never
        /// stored (see [`crate::hub::event::Said::attached`]).
        attached: Option<Arc<str>>,
    },
    /// Leave one room (IRC's PART).
    Part {
        room: RoomName,
        reason: Option<String>,
    },
    /// One page (from 1) of a room's members; page 0: all of them.
    Who {
        room: Option<RoomName>,
        page: usize,
    },
    /// One page (from 1) of the occupied rooms; page 0: all of them. `only` names the rooms
    /// wanted (IRC's `LIST #a,#b`); empty: every room.
    Rooms {
        page: usize,
        only: Vec<RoomName>,
    },
    /// Take another name (already claimed cluster-wide in cluster mode).
    Rename(Nick),
    Private {
        to: Nick,
        text: String,
        kind: PrivateKind,
        /// Opaque data for the recipient's door, when it is the sender's (IRC client-only
        /// tags); with an empty `text`, a signal alone (see [`crate::hub::event::Private`]).
        attached: Option<Arc<str>>,
    },
    /// A live-only signal to a room the sender is in (see [`crate::hub::event::Signal`]).
    Signal {
        room: RoomName,
        data: Arc<str>,
    },
    /// `None`: list the names ignored.
    Ignore(Option<Nick>),
    Unignore(Nick),
    /// A room's topic: a named one whether the member is in it or not (rooms are public), or
    /// the member's own room.
    Topic {
        room: Option<RoomName>,
    },
    /// The commands this member may use.
    Help,
    /// Operators only: the hub checks once, for all of them.
    Operator(OpCommand),
    /// This connection registered or gave up an account: it is now logged in to `logged_in`
    /// (`None`: none) as a plain user, and in cluster mode the change it stored is replicated.
    Account {
        logged_in: Option<Arc<str>>,
        change: Change,
    },
    /// This connection stored an account change that changes nothing here (a new password):
    /// replicated in cluster mode.
    Replicate(Change),
    /// Away with this message, or back (`None`); the member's rooms are told
    /// ([`crate::hub::event::Notice::Away`]). Kept on this node only: other nodes do not learn it.
    Away(Option<String>),
    /// Another renderer or echo setting (IRC's `CAP REQ`).
    Restyle(Style),
}

/// What an operator asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpCommand {
    Kick {
        nick: Nick,
        reason: Option<String>,
    },
    Ban {
        target: Target,
        duration: Option<Typed>,
        reason: Option<String>,
    },
    Unban(Target),
    Bans,
    Mute {
        nick: Nick,
        duration: Option<Typed>,
    },
    Unmute(Nick),
    /// `/op` (true) and `/deop`.
    Role {
        nick: Nick,
        operator: bool,
    },
    /// Remove the account NAME (a squatted name).
    Unregister(Nick),
    /// `None` clears it.
    SetTopic {
        room: Option<RoomName>,
        text: Option<String>,
    },
}

impl OpCommand {
    /// What the command does, for a refusal.
    pub fn kind(&self) -> crate::hub::event::OpKind {
        use crate::hub::event::OpKind;
        match self {
            OpCommand::Kick { .. } => OpKind::Kick,
            OpCommand::Ban { .. } => OpKind::Ban,
            OpCommand::Unban(_) => OpKind::Unban,
            OpCommand::Bans => OpKind::Bans,
            OpCommand::Mute { .. } => OpKind::Mute,
            OpCommand::Unmute(_) => OpKind::Unmute,
            OpCommand::Role { operator: true, .. } => OpKind::Op,
            OpCommand::Role { .. } => OpKind::Deop,
            OpCommand::SetTopic { .. } => OpKind::SetTopic,
            OpCommand::Unregister(_) => OpKind::Unregister,
        }
    }
}
