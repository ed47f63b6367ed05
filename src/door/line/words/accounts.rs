//! The line door's words about accounts: logging in, registering, passwords.

use crate::names::Nick;

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
pub fn account_removed(name: &str, op: Option<&Nick>) -> String {
    match op {
        Some(op) => format!("{name} is no longer registered: {op} removed the account"),
        None => unregistered(name),
    }
}
