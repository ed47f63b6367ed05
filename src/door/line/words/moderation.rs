//! The line door's words about moderation: kicks, bans, mutes, operators, topics, ignores.

use super::{BANNED, CLEARED_TOPIC, KICKED, SET_TOPIC};
use crate::names::{Nick, RoomName};

/// `until lifted` or `until <time> UTC`, as replies and `smolchat ban` show an expiry.
pub fn until(expires_ms: Option<i64>) -> String {
    match expires_ms {
        Some(ms) => format!(
            "until {} UTC",
            crate::clock::format_utc(ms).get(..16).unwrap_or_default()
        ),
        None => "until lifted".to_owned(),
    }
}

fn with_reason(text: String, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("{text} ({reason})"),
        None => text,
    }
}

pub fn operators_only(command: &str) -> String {
    format!("{command} is for operators only (see /help)")
}

/// The room's notice of a kick: `* NAME was kicked by OP (REASON)`.
pub fn kicked(nick: &Nick, op: &str, reason: Option<&str>) -> String {
    with_reason(format!("* {nick} {KICKED} {op}"), reason)
}

pub fn you_were_kicked(op: &str, reason: Option<&str>) -> String {
    with_reason(format!("you were kicked by {op}"), reason)
}

pub fn you_kicked(nick: &Nick) -> String {
    format!("kicked {nick}")
}

/// The room's notice of a ban that removed somebody.
pub fn banned(nick: &Nick, op: &str, reason: Option<&str>) -> String {
    with_reason(format!("* {nick} {BANNED} {op}"), reason)
}

pub fn you_were_banned(op: &str, expires_ms: Option<i64>, reason: Option<&str>) -> String {
    with_reason(
        format!("you are banned by {op} {}", until(expires_ms)),
        reason,
    )
}

/// The one line a banned address gets at connect, before the connection closes.
pub fn address_banned(expires_ms: Option<i64>, reason: Option<&str>) -> String {
    with_reason(
        format!(
            "your address is banned from this server {}",
            until(expires_ms)
        ),
        reason,
    )
}

/// At the name prompt (or on `/nick`): the name is banned.
pub fn ban_set(target: &str, expires_ms: Option<i64>, kicked: usize) -> String {
    format!(
        "banned {target} {} (disconnected {kicked})",
        until(expires_ms)
    )
}

pub const BAN_COVERS_YOU: &str = "that ban would cover you, not set";

pub fn unbanned(target: &str) -> String {
    format!("lifted the ban on {target}")
}

pub fn no_ban(target: &str) -> String {
    format!("no ban on {target} (see /bans)")
}

pub fn bans_header(count: usize) -> String {
    format!("bans ({count}):")
}

pub fn ban_entry(target: &str, by: &str, expires_ms: Option<i64>, reason: Option<&str>) -> String {
    with_reason(format!("  {target} by {by} {}", until(expires_ms)), reason)
}

pub fn mute_set(nick: &Nick, duration: Option<&str>) -> String {
    match duration {
        Some(d) => format!("muted {nick} for {d}"),
        None => format!("muted {nick} until unmuted"),
    }
}

pub fn you_were_muted(op: &Nick, duration: Option<&str>) -> String {
    let how_long = duration.map_or("until unmuted".to_owned(), |d| format!("for {d}"));
    format!("you were muted by {op} {how_long}: your public lines and /me are not sent; private lines to operators still work")
}

pub const YOU_ARE_MUTED: &str = "you are muted: not sent (private lines to operators still work)";

pub fn unmuted(nick: &Nick) -> String {
    format!("{nick} is no longer muted")
}

pub const YOU_ARE_UNMUTED: &str = "you are no longer muted";

pub fn not_muted(nick: &Nick) -> String {
    format!("{nick} is not muted")
}

pub fn now_operator(name: &str) -> String {
    format!("{name} is now an operator")
}

pub fn no_longer_operator(name: &str) -> String {
    format!("{name} is no longer an operator")
}

/// `/deop` or `/ban` by name of an operator made with `smolchat op add`.
pub fn operator_from_command_line(name: &str) -> String {
    format!(
        "{name} was made an operator on the command line; only `smolchat op remove` takes that role"
    )
}

/// `/ban` of a prefix wider than [`crate::moderation::ban::MIN_PREFIX_V4`] or `_V6`.
pub fn ban_too_wide(target: &str, min: u8) -> String {
    format!(
        "{target} is too wide to ban: a prefix shorter than /{min} would lock out a large part \
         of the internet (an operator who really means it edits the database)"
    )
}

pub fn not_registered(name: &str) -> String {
    format!("{name} is not registered (only registered names can be operators)")
}

pub fn topic(room: &RoomName, text: &str, by: &str) -> String {
    format!("topic of {room}: {text} (set by {by})")
}

pub fn no_topic(room: &RoomName) -> String {
    format!("{room} has no topic")
}

pub fn topic_set(op: &str, room: &RoomName, text: &str) -> String {
    format!("* {op} {SET_TOPIC} {room}: {text}")
}

pub fn topic_cleared(op: &str, room: &RoomName) -> String {
    format!("* {op} {CLEARED_TOPIC} {room}")
}

pub fn ignoring(nick: &Nick) -> String {
    format!(
        "ignoring {nick}: you will not see their lines or private messages (on this connection)"
    )
}

pub fn unignored(nick: &Nick) -> String {
    format!("no longer ignoring {nick}")
}

pub fn not_ignoring(nick: &Nick) -> String {
    format!("you are not ignoring {nick}")
}

pub const IGNORE_SELF: &str = "you cannot ignore yourself";

pub fn ignore_full(max: usize) -> String {
    format!("you ignore {max} names already (the most one connection may): /unignore one first")
}

pub fn ignore_header(count: usize) -> String {
    format!("ignoring ({count}):")
}
