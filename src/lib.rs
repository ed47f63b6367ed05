//! smolchat: a chat server people join with nothing but `nc` or `telnet`.
//!
//! # Layout
//! Folders by layer, from the socket inwards (ARCHITECTURE.md has the map and the rules):
//! - [`net`]: listening sockets, the accept loops and admission (caps, waiting queue, bans).
//! - [`wire`]: bytes to clean lines and back (reader, telnet/line codec, sanitizer).
//! - [`door`]: the kinds of client: [`door::line`] (nc, telnet), and the IRC and web doors'
//!   protocol layers; each door turns its input into hub intents and renders hub events.
//! - [`session`]: services every door shares: login, entering the hub, the line rate, the
//!   outbox pump, history reads.
//! - [`hub`]: the single owner of membership and rooms; typed intents in, typed events out.
//! - [`storage`]: SQLite: migrations, the group-commit writer thread, retention, replay and
//!   search reads, backup and check, accounts.
//! - [`cluster`]: cluster mode's link to Redis (the shared log, names, heartbeats); off by default.
//! - [`accounts`], [`moderation`], [`names`], [`limits`]: passwords, bans and durations, validated
//!   names, socket-free limiters.
//! - [`metrics`]: the Prometheus metrics, counted per hub turn, served by `--metrics-listen`.
//! - [`app`], [`config`], [`clock`], [`vocab`]: start-up and subcommands, the checked
//!   configuration, time, the words every layer shares.
pub mod accounts;
pub mod app;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod door;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod moderation;
pub mod names;
pub mod net;
pub mod session;
pub mod storage;
pub mod vocab;
pub mod wire;
