//! Doors: the kinds of client that reach the hub, each owning its own bytes.
//!
//! A door turns its protocol's input into what the hub understands and renders the hub's events
//! into its protocol's output. [`irc`] is the IRC door's protocol layer: pure code with no
//! sockets and no knowledge of the hub's internals, so wiring it to the hub is a small step.
pub mod irc;
