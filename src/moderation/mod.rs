//! Moderation pieces that know no sockets, no SQL and no membership: the duration parser for
//! `/ban` and `/mute`, the ban list with its matcher for names, addresses and prefixes, and the
//! rule of which look-alike names a name ban covers.
//!
//! They are separate from the hub so each can be tested in microseconds; the hub
//! (`hub/moderation/`) applies them and the accept loop consults the ban list.
pub mod ban;
pub mod duration;
pub mod lookalike;
