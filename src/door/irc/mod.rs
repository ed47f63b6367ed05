//! The IRC door's protocol layer: IRC bytes in, typed requests out; the hub's events in, IRC
//! bytes out. Pure code: no sockets, no clock, no hub.
//!
//! # Layout
//! - [`framing`]: bytes to lines (CR LF, LF or CR), bounded; [`IrcReader`] over a socket.
//! - [`message`] and [`tags`]: parsing and writing messages and IRCv3 tags, with the protocol's
//!   length limits.
//! - [`numerics`]: the one table of numeric replies the door sends.
//!
//! **Invariant:** nothing here touches the hub, the database or a socket (apart from
//! [`IrcReader`], which only reads); every function is a value in, bytes or a decision out, so
//! each part is tested in microseconds.
pub mod caps;
pub mod commands;
pub mod event;
pub mod format;
pub mod framing;
pub mod message;
pub mod names;
pub mod numerics;
pub mod registration;
pub mod render;
pub mod sasl;
pub mod tags;
pub mod time;

pub use framing::IrcReader;
