//! The IRC door's protocol layer: IRC bytes in, typed requests out; the hub's events in, IRC
//! bytes out. Pure code: no sockets (but [`IrcReader`], which only reads), no clock, no hub,
//! so each part is tested in microseconds and the wiring to the hub is a small step.
//!
//! # Layout
//! From the socket inwards:
//! - [`framing`]: bytes to lines (CR LF, LF or CR), bounded at the longest valid line.
//! - [`message`], [`tags`]: parsing and writing messages and IRCv3 tags, with the protocol's
//!   length limits (`417` for what is over them).
//! - [`commands`]: the one table of verbs and the generic checks (`421`, `451`, `461`, `481`),
//!   `HELP`.
//! - [`registration`] (with [`caps`] and [`sasl`]): from the first byte to "ready to register",
//!   a [`registration::Ready`] value for the hub.
//! - [`request`] (with [`modes`], [`history`]): a registered user's commands as typed
//!   [`request::Request`]s, or answered on the spot.
//! - [`names`], [`format`](mod@format): what IRC adds to the shared name rules; IRC formatting, CTCP, and the
//!   text other doors may see.
//! - [`event`]: the hub's future events as plain values; [`render`]: those events and the
//!   replies as IRC lines, each relayed line formatted once ([`render::Prepared`]).
//! - [`numerics`]: the one table of numeric replies; [`time`]: `server-time`; [`labeled`]:
//!   `labeled-response`.
//!
//! **Invariant:** nothing here but [`session`] touches the hub, the database or a socket's
//! write side; every other function is a value in, bytes or a decision out. [`session`] is the
//! wiring: a connection's task, the hub's renderers, the history replay.
//!
//! **Invariant:** every line written fits the protocol (512 bytes with CR LF after the tags,
//! 8191 bytes of tags), whatever the input; long text is split, never cut. Property tests feed
//! arbitrary input to the parser, the framing, the command layer and the text rules.
pub mod caps;
pub mod commands;
pub mod event;
pub mod format;
pub mod framing;
pub mod history;
pub mod labeled;
pub mod message;
pub mod modes;
pub mod names;
pub mod numerics;
pub mod registration;
pub mod render;
pub mod request;
pub mod sasl;
pub mod session;
pub mod tags;
#[cfg(test)]
mod testing;
pub mod time;

pub use framing::IrcReader;
