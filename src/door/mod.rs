//! Doors: the ways into the chat other than the line door (nc, telnet).
//!
//! Each door owns its bytes (framing, escaping, its protocol's errors); for now only the web door
//! lives here, ahead of the hub's reshaping into a core plus doors (issue 18).
pub mod web;
