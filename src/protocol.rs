//! Every line the server says to users, in one place.
//!
//! The hub, the sessions and the history readers all build their text here, so a replayed line and
//! a live line come from the same function, and the `/me` guard checks actions against the very
//! words the server's own notices use rather than against hand-copied strings. docs/PROTOCOL.md
//! lists these lines for client authors; keep the two in step.
//!
//! This module knows no sockets, no SQL and no membership: it only formats.

use std::fmt::Write as _;

use crate::names::{Nick, RoomName};
use crate::storage::Kind;

/// The first line a newcomer sees.
pub const GREETING: &str = "Welcome to smolchat! What is your name?";

/// The question a newcomer is asked again after every refused name.
pub const ASK_NAME: &str = "What is your name?";

/// The last line everybody gets when the server stops.
pub const SHUTTING_DOWN: &str = "* server shutting down";

/// Cluster mode: told once to everybody when the link to the cluster log is lost.
pub const CLUSTER_PAUSED: &str =
    "* server: chat paused, the cluster is unreachable; lines you type are not sent until it is back";

/// Cluster mode: told once to everybody when the link is back.
pub const CLUSTER_RESUMED: &str = "* server: chat resumed, the cluster is reachable again";

/// Cluster mode: the answer to a line typed while the cluster is unreachable. The line is
/// refused, not held, so nothing a user typed after the notice can arrive later out of order.
pub const NOT_SENT_CLUSTER: &str =
    "* server: not sent, the chat is paused (the cluster is unreachable)";

/// Cluster mode: a name could not be checked because the cluster is unreachable.
pub const NAME_PAUSED: &str =
    "* server: the chat is paused (the cluster is unreachable); try again shortly";

/// The goodbye after `/quit`.
pub const BYE: &str = "bye";

/// The last words to a client whose outbox overflowed.
pub const TOO_SLOW: &str = "disconnected: you are not reading fast enough";

/// The one plaintext line a client gets for speaking plaintext to the TLS port (before closing).
pub const TLS_ONLY: &str =
    "this port speaks TLS: connect with e.g. `openssl s_client -quiet -connect HOST:PORT`";

/// Told to everybody when public lines have waited a second for the history writer (a locked
/// database, a full disk): lines are relayed only once stored, so chat stops until it can be.
pub const CHAT_PAUSED: &str =
    "* server: chat paused, the history cannot be written; your lines wait and are sent when it resumes";

/// Told to everybody once the waiting lines have been stored and relayed.
pub const CHAT_RESUMED: &str = "* server: chat resumed, the history is written again";

/// The reply to a public line when so many lines already wait for the history that no more fit.
pub const NOT_SENT_PAUSED: &str =
    "not sent: chat is paused because the history cannot be written; try again later";

/// What a history read that failed says instead of the rows.
pub const HISTORY_UNAVAILABLE: &str = "(history is unavailable right now)";

/// The words that follow a user's name in the server's own notices about that user
/// (`* NAME joined`, `* NAME left ...`, `* NAME is now known as ...`). An action starting with one
/// of them would read like a notice, so the `/me` guard refuses it.
pub const NOTICE_VERBS: &[&str] = &[JOINED, LEFT, RENAMED];
const JOINED: &str = "joined";
const LEFT: &str = "left";
const RENAMED: &str = "is now known as";

/// Why the server removed somebody, shown in the leave notice.
pub const REASON_TOO_SLOW: &str = "not reading fast enough";

/// A public line as the room sees it: `alice: hi`, or `* alice waves` for an action.
pub fn public(out: &mut String, kind: Kind, sender: &str, body: &str) {
    let _ = match kind {
        Kind::Message => write!(out, "{sender}: {body}"),
        Kind::Action => write!(out, "* {sender} {body}"),
    };
}

/// A live public line.
pub fn live(kind: Kind, sender: &str, body: &str) -> String {
    let mut out = String::with_capacity(sender.len() + body.len() + 4);
    public(&mut out, kind, sender, body);
    out
}

/// A replayed public line, newline included: the live line behind its UTC time to the second,
/// `[2026-11-27 16:40:17] alice: hi`.
pub fn replayed(out: &mut Vec<u8>, sent_at: &str, kind: Kind, sender: &str, body: &str) {
    let when = sent_at.get(..19).unwrap_or(sent_at);
    let mut line = String::with_capacity(when.len() + sender.len() + body.len() + 8);
    let _ = write!(line, "[{when}] ");
    public(&mut line, kind, sender, body);
    line.push('\n');
    out.extend_from_slice(line.as_bytes());
}

/// `Welcome, alice! You are in lobby. ...`
pub fn welcome(nick: &Nick, room: &RoomName) -> String {
    format!("Welcome, {nick}! You are in {room}. Type /help for commands.")
}

pub fn name_taken(nick: &Nick) -> String {
    format!("name taken: {nick} is already in use")
}

pub fn name_taken_on_rename(nick: &Nick) -> String {
    format!("name taken: {nick} is already in use (see /help)")
}

pub fn no_name_in_time(secs: u64) -> String {
    format!("no name given in {secs} s, closing connection")
}

pub fn too_long(max: usize) -> String {
    format!("line too long (max {max} bytes), not sent")
}

pub fn slow_down(burst: u32, per_sec: u32) -> String {
    format!("slow down: after {burst} lines, lines are sent at {per_sec} per second (delayed, not dropped)")
}

pub fn joined(nick: &Nick) -> String {
    format!("* {nick} {JOINED}")
}

/// `* NAME left`, or with the reason in brackets.
pub fn left(nick: &Nick, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("* {nick} {LEFT} ({reason})"),
        None => format!("* {nick} {LEFT}"),
    }
}

pub fn left_for(nick: &Nick, room: &RoomName) -> String {
    format!("* {nick} {LEFT} for {room}")
}

pub fn renamed(old: &Nick, new: &Nick) -> String {
    format!("* {old} {RENAMED} {new}")
}

pub fn already_known_as(nick: &Nick) -> String {
    format!("you are already known as {nick}")
}

pub fn private_from(from: &Nick, text: &str) -> String {
    format!("[private] {from}: {text}")
}

pub fn private_to(to: &Nick, text: &str) -> String {
    format!("[private to {to}] {text}")
}

pub fn no_such_user(nick: &Nick) -> String {
    format!("no such user: {nick} is not connected (see /who, /help)")
}

pub fn already_in(room: &RoomName) -> String {
    format!("you are already in {room}")
}

/// The confirmation of `/join`, with how many are there now (the mover included).
pub fn you_joined(room: &RoomName, count: usize) -> String {
    let here = if count == 1 {
        "you are alone here".to_owned()
    } else {
        format!("{count} users here")
    };
    format!("* you joined {room} ({here})")
}

pub fn who_header(room: &RoomName, count: usize) -> String {
    format!("users in {room} ({count}):")
}

pub fn rooms_header(count: usize) -> String {
    format!("rooms ({count}):")
}

pub fn room_entry(room: &RoomName, users: usize) -> String {
    format!(
        "{room} ({users} {})",
        if users == 1 { "user" } else { "users" }
    )
}

pub fn history_start(room: &RoomName) -> String {
    format!("--- history of {room} ---")
}

pub fn history_end(count: u32) -> String {
    format!("--- end of history ({}) ---", messages(count))
}

pub fn earlier_start(room: &RoomName) -> String {
    format!("--- earlier history of {room} ---")
}

pub fn nothing_older(room: &RoomName) -> String {
    format!("--- beginning of {room} history: nothing older ---")
}

pub fn earlier_end(count: u32) -> String {
    format!("--- end of earlier history ({}) ---", messages(count))
}

pub fn server_full() -> String {
    "server full, try again later".to_owned()
}

pub fn too_many_from_address(max: usize) -> String {
    format!("too many connections from your address (max {max})")
}

fn messages(n: u32) -> String {
    if n == 1 {
        "1 message".into()
    } else {
        format!("{n} messages")
    }
}

/// `* NAME left (quit: reason)`: a user's own reason, marked as such so that it cannot pass for
/// one the server gives (`* NAME left (not reading fast enough)`).
pub fn quit(nick: &Nick, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("* {nick} {LEFT} (quit: {reason})"),
        None => format!("* {nick} {LEFT}"),
    }
}

/// A name refused because it looks like one in use (`aIice` beside `alice`).
pub fn name_confusable(nick: &Nick) -> String {
    format!("name taken: {nick} looks too much like a name already in use")
}

/// A name refused because its owner was dropped moments ago and may come back for it.
pub fn name_held(nick: &Nick, secs: u64) -> String {
    format!("name taken: {nick} is held for its owner for {secs} s")
}

/// The sender's answer when the recipient's private-message allowance is used up.
pub fn private_not_delivered(to: &Nick) -> String {
    format!("not delivered: {to} is getting too many private messages; try again later")
}

/// The text the `/me` guard compares: invisible characters removed, any run of white space
/// (Unicode spaces included) as one space, leading space gone, lower case. The sanitizer already
/// normalises most of this; the guard does not rely on it.
fn normalised(action: &str) -> String {
    let mut out = String::with_capacity(action.len());
    let mut space = true;
    for c in action.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
            }
            space = true;
        } else if !is_format(c) {
            out.extend(c.to_lowercase());
            space = false;
        }
    }
    out
}

/// Invisible format characters (Unicode category Cf and the like) that the guard ignores.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{ffa0}'
    )
}

/// True for action text that would make `* NAME text` read like one of the server's own notices
/// about NAME. Works on [`normalised`] text, so `left<NBSP>(...)` or `joi<ZWSP>ned` are caught.
pub fn mimics_notice(action: &str) -> bool {
    let lower = normalised(action);
    NOTICE_VERBS.iter().any(|verb| {
        lower
            .strip_prefix(verb)
            .is_some_and(|rest| !rest.starts_with(char::is_alphanumeric))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).unwrap()
    }

    /// A replayed line is the live line behind its time.
    #[test]
    fn replayed_is_live_behind_a_timestamp() {
        for kind in [Kind::Message, Kind::Action] {
            let mut out = Vec::new();
            replayed(&mut out, "2026-11-27 16:40:17.123", kind, "bob", "hi there");
            let live = live(kind, "bob", "hi there");
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("[2026-11-27 16:40:17] {live}\n")
            );
        }
    }

    /// Every notice about a user is caught by the guard when typed as an action.
    #[test]
    fn the_guard_knows_every_notice() {
        let n = nick("mallory");
        let room = RoomName::parse("rust").unwrap();
        for notice in [
            joined(&n),
            left(&n, None),
            left(&n, Some(REASON_TOO_SLOW)),
            left_for(&n, &room),
            renamed(&n, &nick("bob")),
        ] {
            let action = notice.strip_prefix("* mallory ").unwrap();
            assert!(mimics_notice(action), "{notice}");
            assert_eq!(live(Kind::Action, "mallory", action), notice);
        }
        for spoof in [
            "left\u{a0}(not reading fast enough)",
            "is\u{a0}now known as bob",
            "joined\u{200b}",
            "jo\u{2060}ined",
            "\u{feff}left",
            "  LEFT  ",
            "is  now\u{3000}known as x",
            "left(not reading fast enough)",
        ] {
            assert!(mimics_notice(spoof), "{spoof:?}");
        }
        assert!(!mimics_notice("waves"));
        assert!(!mimics_notice("leftover pizza"));
        assert!(!mimics_notice("joinedness"));
    }
}
