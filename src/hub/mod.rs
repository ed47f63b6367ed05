//! The hub: the one owner of who is connected and which rooms they are in.
//!
//! Doors never touch each other's members. They send [`Intent`]s to the hub over one
//! async-channel, and the hub pushes rendered events into the recipients' outboxes without ever
//! waiting on a client. That single owner is what keeps membership consistent (a name is taken
//! by exactly one member, a join notice comes before that member's messages) without locks.
//!
//! Layout:
//! - [`intent`] what doors ask; [`event`] what the hub says, typed; [`render`] how a door turns
//!   events into bytes; [`outbox`] the bytes waiting for each session.
//! - `core` the only code that touches members, rooms and outboxes: membership (`members`,
//!   `room`), ordering (`durable`: committed before relayed; `notices`: storms summed up) and
//!   delivery (`delivery`: one rendering per renderer, copied into outboxes).
//! - `state` the rules: what intents and published entries mean, over the core and the parts
//!   that own their state and return decisions: `names` (unique by look, held after a drop),
//!   `privates` (the private-line allowance), `ignores`, `moderation` (bans, mutes, topics,
//!   operators: every change through one `apply`), `laggards` (the output budget), and `link`,
//!   the one seam to cluster mode (`remote`: the other nodes' members; `cluster`: what the
//!   cluster threads report).
//! - [`run`] the loop: events in, timers, the writer's commits, shutdown.
//!
//! Public lines are relayed only once the history writer has committed them, so every line a
//! client has received is stored, whatever the disk does and however the server ends.

mod cluster;
mod control;
mod core;
mod delivery;
mod durable;
pub mod event;
mod fanout;
mod ignores;
pub mod intent;
mod laggards;
mod link;
mod lists;
pub mod lookup;
mod members;
mod moderation;
mod names;
mod notices;
pub mod outbox;
mod pipeline;
mod privates;
mod remote;
pub mod render;
mod room;
mod run;
mod state;
#[cfg(test)]
mod tests;

pub use self::control::Control;
pub use self::delivery::REPLY_SLACK;
pub use self::ignores::MAX_IGNORED;
pub use self::intent::{Intent, Joined, Refused, Request};
pub use self::run::{run, Setup};

/// Items in one page of a `/who` or `/rooms` reply; page 2 on is asked for by number. A page is
/// at most some 10 KB, so a reply never comes near an outbox's limit. Not configurable.
pub const LIST_PAGE: usize = 200;
