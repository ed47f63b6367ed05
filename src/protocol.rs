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

/// The answer to telnet's Are You There (`IAC AYT`, the `send ayt` command): short and visible.
pub const ARE_YOU_THERE: &str = "[smolchat is here]";

/// The one plaintext line a client gets for speaking plaintext to the TLS port (before closing).
pub const TLS_ONLY: &str =
    "this port speaks TLS: connect with e.g. `openssl s_client -quiet -connect HOST:PORT`";

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
const KICKED: &str = "was kicked by";
const BANNED: &str = "was banned by";
const SET_TOPIC: &str = "set the topic of";
const CLEARED_TOPIC: &str = "cleared the topic of";

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

/// The summary of joins in a big room during a storm (see docs/PROTOCOL.md):
/// `* 37 people joined: alice, bob, carol and 34 others`; one join reads as `* alice joined`.
pub fn people_joined(count: usize, names: &[Nick]) -> String {
    people(JOINED, count, names)
}

/// The summary of leaves in a big room during a storm: `* 37 people left: alice, ...`.
pub fn people_left(count: usize, names: &[Nick]) -> String {
    people(LEFT, count, names)
}

fn people(verb: &str, count: usize, names: &[Nick]) -> String {
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

pub fn server_full() -> String {
    "server full, try again later".to_owned()
}

pub fn too_many_from_address(max: usize) -> String {
    format!("too many connections from your address (max {max})")
}

/// The last words of a connection still without a name, evicted to make room for a newcomer
/// (`--max-unregistered`).
pub const EVICTED_WAITING: &str = "too many connections waiting for a name; try again";

// --- Accounts (issue #13) ---

/// Told to a client that cannot hide typing (nc), before it types a password.
pub const PASSWORD_VISIBLE: &str =
    "note: your client shows what you type, so the password will be visible on your screen";

/// The last words after the third wrong password on one connection.
pub const TOO_MANY_FAILURES: &str = "too many wrong passwords, closing connection";

/// When the account store cannot answer.
pub const ACCOUNTS_UNAVAILABLE: &str = "(accounts are unavailable right now, try again later)";

/// An empty line ends a password dialogue.
pub const CANCELLED: &str = "cancelled, nothing changed";

pub const PASSWORDS_DIFFER: &str = "the two passwords differ, nothing changed";

pub const TYPE_AGAIN: &str = "type the same password again:";

pub const NOT_LOGGED_IN: &str = "you are not logged in to a registered name (see /register, /help)";

/// Why a password is refused on this connection: it would cross the network in clear.
pub fn passwords_need_tls(nick: &Nick) -> String {
    format!("{nick} is registered, but this server accepts passwords only over TLS or from loopback, and this connection is plaintext: choose another name")
}

pub const PLAINTEXT_REFUSED: &str = "this server accepts passwords only over TLS or from loopback, and this connection is plaintext: nothing changed";

pub fn ask_password(nick: &Nick) -> String {
    format!("{nick} is registered: type its password (an empty line to choose another name)")
}

/// An attempt refused at once, because others on the same account (or from the same address)
/// are queued for longer than a login may wait.
pub fn login_busy(nick: &str, secs: u64) -> String {
    format!("too many login attempts on {nick} right now: try again in {secs} s")
}

/// After a refused password dialogue: lines the client had typed ahead (a password, perhaps)
/// were thrown away rather than read as a name or a public line.
pub fn typed_ahead_discarded(lines: usize) -> String {
    format!("({lines} line(s) typed ahead were discarded, in case they held a password)")
}

pub fn login_delay(secs: u64) -> String {
    format!("after failed logins, this attempt is checked in {secs} s")
}

pub fn wrong_password(nick: &Nick) -> String {
    format!("wrong password for {nick}")
}

pub fn logged_in(nick: &Nick, operator: bool) -> String {
    if operator {
        format!("logged in as {nick} (operator)")
    } else {
        format!("logged in as {nick}")
    }
}

pub fn choose_password(nick: &Nick) -> String {
    format!(
        "choose a password for {nick} (at least {} characters; an empty line cancels):",
        crate::accounts::password::MIN_LEN
    )
}

pub fn password_too_short() -> String {
    format!(
        "too short (at least {} characters), nothing changed",
        crate::accounts::password::MIN_LEN
    )
}

pub fn already_registered(nick: &Nick) -> String {
    format!("{nick} is already registered")
}

pub fn registered(nick: &Nick) -> String {
    format!("{nick} is now registered: from now on the name prompt asks for this password")
}

pub fn current_password(account: &str) -> String {
    format!("current password for {account} (an empty line cancels):")
}

pub const NEW_PASSWORD: &str = "new password (an empty line cancels):";

pub const PASSWORD_CHANGED: &str = "password changed";

pub const WRONG_PASSWORD_UNCHANGED: &str = "wrong password, nothing changed";

pub fn unregistered(account: &str) -> String {
    format!("{account} is no longer registered")
}

/// A name refused because it looks like a registered name (the same confusable skeleton).
pub fn name_like_registered(nick: &Nick) -> String {
    format!("name taken: {nick} looks too much like a registered name")
}

pub fn name_registered_on_rename(nick: &Nick) -> String {
    format!("{nick} is registered to someone else: to use it, log in with it at the name prompt (see /help)")
}

// --- Moderation (issue #13) ---

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
pub fn kicked(nick: &Nick, op: &Nick, reason: Option<&str>) -> String {
    with_reason(format!("* {nick} {KICKED} {op}"), reason)
}

pub fn you_were_kicked(op: &Nick, reason: Option<&str>) -> String {
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
pub fn name_banned(nick: &Nick, expires_ms: Option<i64>) -> String {
    format!(
        "{nick} is banned {}: choose another name",
        until(expires_ms)
    )
}

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

pub fn topic_set(op: &Nick, room: &RoomName, text: &str) -> String {
    format!("* {op} {SET_TOPIC} {room}: {text}")
}

pub fn topic_cleared(op: &Nick, room: &RoomName) -> String {
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

/// `/register` from an address that has used up `--registrations-per-hour`; `wait_secs` until
/// the next is allowed (shown in whole minutes, rounded up).
pub fn too_many_registrations(per_hour: u32, wait_secs: u64) -> String {
    let minutes = wait_secs.div_ceil(60).max(1);
    format!(
        "too many new accounts from your address (at most {per_hour} an hour): nothing \
         registered, try again in {minutes} min"
    )
}

/// `/unregister NAME` (operators) of a name that is not registered.
pub fn no_such_account(name: &str) -> String {
    format!("{name} is not registered")
}

/// To the users logged in to an account an operator removed with `/unregister NAME`.
pub fn account_removed(name: &str, op: &Nick) -> String {
    format!("{name} is no longer registered: {op} removed the account")
}

pub fn too_many_connects(per_minute: u32) -> String {
    format!("too many connections from your address in the last minute (max {per_minute}), try again later")
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
            kicked(&n, &nick("op"), Some("spam")),
            banned(&n, "op", None),
            topic_set(&n, &room, "hello"),
            topic_cleared(&n, &room),
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
