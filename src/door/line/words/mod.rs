//! Every line the line door says to users, in one place.
//!
//! Its renderer, its sessions and its history format all build their text here, so a replayed
//! line and a live line come from the same function, and the `/me` guard checks actions against
//! the very words the server's own notices use rather than against hand-copied strings.
//! docs/PROTOCOL.md lists these lines for client authors; keep the two in step.
//!
//! This module knows no sockets, no SQL and no membership: it only formats.

use std::fmt::Write as _;

use crate::names::{Nick, RoomName};
use crate::session::TurnedAway;
use crate::storage::Row;
use crate::vocab::Kind;

mod accounts;
mod moderation;
mod names;

pub use self::accounts::*;
pub use self::moderation::*;
pub use self::names::*;

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

/// Told to everybody when public lines have waited a second for the history writer (a locked
/// database, a full disk): lines are relayed only once stored, so chat stops until it can be.
pub const CHAT_PAUSED: &str =
    "* server: chat paused, the history cannot be written; your lines wait and are sent when it resumes";

/// Told to everybody after a backlog, when room notices (joins, leaves, renames) past the bound
/// the hub keeps were not shown.
pub fn notices_skipped(n: u64) -> String {
    format!("* server: {n} notices (joins, leaves, renames) were skipped while chat was paused")
}

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
pub const NOTICE_VERBS: &[&str] = &[
    JOINED,
    LEFT,
    RENAMED,
    KICKED,
    BANNED,
    SET_TOPIC,
    CLEARED_TOPIC,
];
const JOINED: &str = "joined";
const LEFT: &str = "left";
const RENAMED: &str = "is now known as";
pub(super) const KICKED: &str = "was kicked by";
pub(super) const BANNED: &str = "was banned by";
pub(super) const SET_TOPIC: &str = "set the topic of";
pub(super) const CLEARED_TOPIC: &str = "cleared the topic of";

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
/// `[2026-11-27 16:40:17] alice: hi`. A [`crate::storage::Format`].
pub fn replayed(row: &Row<'_>, out: &mut Vec<u8>) {
    let when = row.sent_at.get(..19).unwrap_or(row.sent_at);
    let mut line = String::with_capacity(when.len() + row.sender.len() + row.body.len() + 8);
    let _ = write!(line, "[{when}] ");
    public(&mut line, row.kind, row.sender, row.body);
    line.push('\n');
    out.extend_from_slice(line.as_bytes());
}

/// `Welcome, alice! You are in lobby. ...`
pub fn welcome(nick: &Nick, room: &RoomName) -> String {
    format!("Welcome, {nick}! You are in {room}. Type /help for commands.")
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

/// `* NAME left`, or with the member's own words, marked as such: IRC's PART from one room.
pub fn parted(nick: &Nick, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("* {nick} {LEFT} (part: {reason})"),
        None => format!("* {nick} {LEFT}"),
    }
}

/// The confirmation of leaving one room.
pub fn you_left(room: &RoomName) -> String {
    format!("* you left {room}")
}

pub fn not_in(room: &RoomName) -> String {
    format!("you are not in {room}")
}

/// A command for "your room" from a member in several rooms.
pub const WHICH_ROOM: &str = "you are in several rooms: say which one";

pub fn left_for(nick: &Nick, room: &RoomName) -> String {
    format!("* {nick} {LEFT} for {room}")
}

/// The summary of joins in a big room during a storm (see docs/PROTOCOL.md):
/// `* 37 people joined: alice, bob, carol and 34 others`; one join reads as `* alice joined`.
pub fn people_joined(count: usize, names: &[&Nick]) -> String {
    people(JOINED, count, names)
}

/// The summary of leaves in a big room during a storm: `* 37 people left: alice, ...`.
pub fn people_left(count: usize, names: &[&Nick]) -> String {
    people(LEFT, count, names)
}

fn people(verb: &str, count: usize, names: &[&Nick]) -> String {
    if let ([nick], 1) = (names, count) {
        return format!("* {nick} {verb}");
    }
    let mut text = format!("* {count} people {verb}:");
    for (i, nick) in names.iter().enumerate() {
        let _ = write!(text, "{}{nick}", if i == 0 { " " } else { ", " });
    }
    match count.saturating_sub(names.len()) {
        0 => {}
        1 => text.push_str(" and 1 other"),
        others => {
            let _ = write!(text, " and {others} others");
        }
    }
    text
}

/// A page of a long list after the first: `(page 2 of 48)`, at the end of its header.
pub fn page_of(page: usize, pages: usize) -> String {
    format!("(page {page} of {pages})")
}

/// A page asked for past a list's last: `there is no page 2: the list has 1 page`.
pub fn no_such_page(page: usize, pages: usize) -> String {
    let plural = if pages == 1 { "" } else { "s" };
    format!("there is no page {page}: the list has {pages} page{plural}")
}

/// The line after a page of a long list that has more: how to ask for the next.
pub fn more_pages(left: usize, command: &str, next: usize) -> String {
    format!("  ... and {left} more: type {command} {next} for the next page")
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

pub fn private_action(from: &Nick, text: &str) -> String {
    format!("[private] * {from} {text}")
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

/// `/join` of a room that looks like an occupied one (`#рор` in Cyrillic beside `#pop`).
pub fn room_looks_like(room: &RoomName, other: &RoomName) -> String {
    format!("{room} looks too much like the room {other}: join {other}, or choose another name")
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

/// The one line a connection refused at accept gets.
pub fn turned_away(why: &TurnedAway) -> String {
    match why {
        TurnedAway::Banned { expires_ms, reason } => address_banned(*expires_ms, reason.as_deref()),
        TurnedAway::TooManyConnects(max) => format!(
            "too many connections from your address in the last minute (max {max}), try again later"
        ),
        TurnedAway::TooManyFromAddress(max) => {
            format!("too many connections from your address (max {max})")
        }
        TurnedAway::Full => "server full, try again later".to_owned(),
    }
}

// --- Retention and search (issue 22) ---

/// In a join replay (under its first marker) and at the end of the last `/search` page, when
/// the oldest message kept is reached and `--retention` removed older ones of the room.
pub fn older_removed(after: &str) -> String {
    format!("--- older messages were removed after {after} ---")
}

/// `/history`'s last page when `--retention` removed older messages of the room, in place of
/// [`nothing_older`].
pub fn beginning_removed(room: &RoomName, after: &str) -> String {
    format!("--- beginning of {room} history: older messages were removed after {after} ---")
}

/// The first line of a `/search` page: the query as understood (`rust* "exact words"`).
pub fn search_start(room: &RoomName, query: &dyn std::fmt::Display, older: bool) -> String {
    let order = ["newest first", "older matches"][usize::from(older)];
    format!("--- search of {room} for {query}, {order} ---")
}

/// The last line of a `/search` page.
pub fn search_end(count: u32, more: bool) -> String {
    let found = match count {
        0 => "no matches".to_owned(),
        1 => "1 match".to_owned(),
        n => format!("{n} matches"),
    };
    let rest = match (more, count) {
        (true, _) => "; /search alone shows older ones",
        (false, 0) => "",
        (false, _) => ", no older ones",
    };
    format!("--- end of search ({found}{rest}) ---")
}

/// `/search` alone with nothing to continue.
pub const NO_SEARCH: &str =
    "no search to continue in this room: /search TEXT finds TEXT in your room's history";

/// A search refused because too many are waiting for the search thread.
pub const SEARCH_BUSY: &str = "search: too many searches at once, try again in a moment";

/// A search stopped because it would read too much of the index (storage's search budget).
pub const SEARCH_TOO_COSTLY: &str =
    "search: that would take too long; use rarer words, longer prefixes or a shorter phrase";

/// What a search that failed says instead of its matches.
pub const SEARCH_UNAVAILABLE: &str = "(search is unavailable right now)";

/// The last words of a connection still without a name, evicted to make room for a newcomer
/// (`--max-unregistered`).
pub const EVICTED_WAITING: &str = "too many connections waiting for a name; try again";

/// Cluster mode: the last words to a user whose name another node gave away while this node
/// was cut off from the cluster (past the heartbeat's expiry); the other user keeps it.
pub fn name_taken_while_cut_off(nick: &Nick, holder: &str) -> String {
    format!(
        "disconnected: while this server was cut off from the cluster, another user took the \
         name {nick} on node {holder}; reconnect and choose a name"
    )
}

/// Cluster mode: why such a user left, in its room (`* NAME left (REASON)`).
pub fn name_taken_reason(holder: &str) -> String {
    format!("name taken on node {holder}")
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

/// The sender's answer when the recipient's private-message allowance is used up.
pub fn private_not_delivered(to: &Nick) -> String {
    format!("not delivered: {to} is getting too many private messages; try again later")
}

/// The text the `/me` guard compares: invisible characters removed, any run of white space or
/// blank-looking characters as one space, lower case, then reduced to its confusable skeleton
/// (Unicode TR39: Cyrillic `е` reads as `e`, fullwidth and mathematical letters as plain ones;
/// then [`crate::names::skeleton`] for `i`/`l`, `0`/`o` and the like),
/// with leading spaces and combining marks gone (a mark with nothing before it shows on the
/// space in front of it, as nothing). The sanitizer already normalises much of this; the guard
/// does not rely on it.
fn normalised(action: &str) -> String {
    let mut plain = String::with_capacity(action.len());
    for c in action.chars() {
        if c.is_whitespace() || is_blank(c) {
            plain.push(' ');
        } else if !is_format(c) {
            plain.extend(c.to_lowercase());
        }
    }
    let mut out = String::with_capacity(plain.len());
    let mut space = true;
    for c in unicode_security::skeleton(&plain).flat_map(char::to_lowercase) {
        if c.is_whitespace() || is_blank(c) {
            if !space {
                out.push(' ');
            }
            space = true;
        } else {
            let leading_mark = out.is_empty() && unicode_normalization::char::is_combining_mark(c);
            if leading_mark || is_format(c) {
                continue;
            }
            out.push(c);
            space = false;
        }
    }
    // TR39 keeps case apart (`I` and `l` both become `l`, but `i` stays): the names' skeleton
    // on top folds the ASCII look-alikes of lower case too, so `JOlNED` reads as `joined`.
    crate::names::skeleton(&out)
}

/// Characters a terminal shows as a blank cell without being white space.
fn is_blank(c: char) -> bool {
    matches!(
        c,
        '\u{115f}' | '\u{1160}' | '\u{2800}' | '\u{3164}' | '\u{ffa0}'
    )
}

/// Invisible format characters (Unicode category Cf and the like, variation selectors, tags)
/// that the guard ignores.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180b}'..='\u{180f}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2060}'..='\u{206f}'
            | '\u{fe00}'..='\u{fe0f}'
            | '\u{feff}'
            | '\u{e0000}'..='\u{e007f}'
            | '\u{e0100}'..='\u{e01ef}'
    )
}

/// True for action text that would make `* NAME text` read like one of the server's own notices
/// about NAME. Works on [`normalised`] text, so `left<NBSP>(...)`, `joi<ZWSP>ned` or `lеft` with a
/// Cyrillic `е` are caught.
pub fn mimics_notice(action: &str) -> bool {
    let lower = normalised(action);
    NOTICE_VERBS.iter().any(|verb| {
        lower
            .strip_prefix(normalised(verb).as_str())
            .is_some_and(|rest| !rest.starts_with(char::is_alphanumeric))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::testing::nick;

    /// A replayed line is the live line behind its time.
    #[test]
    fn replayed_is_live_behind_a_timestamp() {
        for kind in [Kind::Message, Kind::Action] {
            let mut out = Vec::new();
            let row = Row {
                id: 1,
                sent_at: "2026-11-27 16:40:17.123",
                sender: "bob",
                kind,
                body: "hi there",
                formatted: None,
            };
            replayed(&row, &mut out);
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
            kicked(&n, "op", Some("spam")),
            banned(&n, "op", None),
            topic_set("mallory", &room, "hello"),
            topic_cleared("mallory", &room),
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
            "is\u{2800}now known as alice",
            "l\u{435}ft (not reading fast enough)",
            "\u{e0100}joined",
            "\u{e0020}left",
            "\u{301}left",
            "\u{ff4c}\u{ff45}\u{ff46}\u{ff54}",
            "\u{1d5c5}eft",
            "JOlNED",
        ] {
            assert!(mimics_notice(spoof), "{spoof:?}");
        }
        assert!(!mimics_notice("waves"));
        assert!(!mimics_notice("leftover pizza"));
        assert!(!mimics_notice("joinedness"));
        assert!(!mimics_notice("l\u{435}ftover"));
        assert!(!mimics_notice("\u{2764}\u{fe0f} left"));
    }
}
