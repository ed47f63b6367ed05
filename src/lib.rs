//! smolchat: a chat server people join with nothing but `nc` or `telnet`.
//!
//! # Layout
//! Folders by layer, from the socket inwards:
//! - [`net`]: listening sockets, the accept loop and connection admission.
//! - [`wire`]: bytes to clean lines and back (reader, telnet/line codec, sanitizer).
//! - [`door`]: ways in besides the line door: the web page over WebSocket (not wired yet).
//! - [`session`]: the dialogue with one user: name, history replay, commands, the chat loop.
//! - [`hub`]: the single owner of membership and rooms; relays lines into outboxes.
//! - [`storage`]: SQLite: migrations, the group-commit writer thread, retention, replay and
//!   search reads, backup and check.
//! - [`protocol`]: every line the server says to users, in one place.
//! - [`door`]: the protocol layers of other kinds of client (IRC), as pure code.
//! - [`limits`]: small, socket-free limiters (rate).
//! - [`metrics`]: the Prometheus metrics, counted per hub turn, served by `--metrics-listen`.
//! - [`cluster`]: cluster mode's link to Redis (the shared log, names, heartbeats); off by default.
//! - [`app`], [`config`], [`names`], [`clock`]: start-up, flags, validated names, time.
//! - [`maintenance`]: `smolchat backup`, `check` and `compact`.
pub mod accounts;
pub mod app;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod door;
pub mod hub;
pub mod limits;
pub mod maintenance;
pub mod metrics;
pub mod moderation;
pub mod names;
pub mod net;
pub mod protocol;
pub mod session;
pub mod storage;
pub mod wire;
