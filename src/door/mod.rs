//! Doors: the kinds of client that reach the hub, each owning its own bytes.
//!
//! A door turns its protocol's input into what the hub understands and renders the hub's events
//! into its protocol's output (framing, escaping, its protocol's errors). [`irc`] and [`web`] are
//! the IRC and web doors' protocol layers: code with no knowledge of the hub's internals, wired to
//! the hub once it is reshaped into a core plus doors (issue 18).
pub mod irc;
pub mod web;
