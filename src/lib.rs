//! smolchat: a chat server people join with nothing but `nc` or `telnet`.
//!
//! # Layout
//! - [`app`]: start-up and shutdown around an executor the program owns.
//! - [`server`]: the accept loop and connection limits; one task per connection.
//! - [`session`]: one connection: name, history replay, then the chat loop.
//! - [`hub`]: the single owner of membership and rooms; relays lines into outboxes.
//! - [`outbox`]: a session's byte-bounded queue of lines to write.
//! - [`history`]: SQLite: migrations, the group-commit writer thread, replay reads.
//! - [`reader`], [`codec`], [`sanitize`]: bytes off the socket into clean lines.
//! - [`command`], [`names`], [`ratelimit`], [`config`], [`clock`], [`net`]: small pieces.
pub mod app;
pub mod clock;
pub mod codec;
pub mod command;
pub mod config;
pub mod history;
pub mod hub;
pub mod names;
pub mod net;
pub mod outbox;
pub mod ratelimit;
pub mod reader;
pub mod sanitize;
pub mod server;
pub mod session;
