//! Logging in, for every door: a name's account and ban, the login limiter, and password checks.
//!
//! A door asks [`lookup`] what a name is (free, registered, a look-alike of a registered name,
//! banned), refuses a password where [`passwords_allowed`] says it would cross the network in
//! clear, then [`book`]s the attempt's turn with the limiter (`limits/login.rs`: attempts on one
//! account or from one address take turns, spaced further after each failure), tells its user
//! how long the check waits, waits, and [`verify`]s. Hashing runs on the hasher threads, never on
//! the executor; a password is never logged. Each failure is logged with the address.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::accounts::password::Secret;
use crate::limits::login::Attempt;
use crate::names::Nick;
use crate::session::Services;
use crate::storage::accounts::Account;
use crate::storage::StorageError;

/// What a name is, for the name prompt.
#[derive(Debug)]
pub enum Lookup {
    /// Nobody's account: anyone may take it (if no connected member has it).
    Free,
    /// A registered name: it asks for its password.
    Registered(Account),
    /// It looks like a registered name (the same confusable skeleton): refused.
    LooksRegistered,
    /// Banned, until then (`None`: until lifted).
    Banned(Option<i64>),
}

/// What a name is: banned, registered, like a registered name, or free.
pub async fn lookup(services: &Services, nick: &Nick) -> Result<Lookup, StorageError> {
    if let Some(expires_ms) = name_ban(services, nick) {
        return Ok(Lookup::Banned(expires_ms));
    }
    Ok(match services.accounts.store.find_like(nick).await? {
        None => Lookup::Free,
        Some(account) if account.name != nick.key() => Lookup::LooksRegistered,
        Some(account) => Lookup::Registered(account),
    })
}

/// The expiry of a ban on `nick`, if one is in force (`Some(None)`: until lifted).
pub fn name_ban(services: &Services, nick: &Nick) -> Option<Option<i64>> {
    let bans = services.accounts.bans.read().ok()?;
    let now_ms = crate::clock::now_ms();
    bans.name(nick.key(), now_ms).map(|b| b.expires_ms)
}

/// Whether passwords may cross a connection: over TLS or from loopback (`secure`), or anywhere
/// with `--plaintext-passwords`.
pub fn passwords_allowed(services: &Services, secure: bool) -> bool {
    secure || services.config.plaintext_passwords
}

/// When an attempt on `account` from `ip` may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Now.
    Now,
    /// After this long (its slot is booked: the door says so, waits, then verifies).
    After(Duration),
    /// Not now: too many attempts are queued; one could be checked after this long. Not a
    /// failure.
    Refused(Duration),
}

/// Books the attempt's turn, to be checked within `budget` (the time the caller has left).
pub fn book(services: &Services, account: &str, ip: IpAddr, budget: Duration) -> Turn {
    let attempt = services
        .accounts
        .delays
        .lock()
        .map(|mut d| d.attempt(account, ip, Instant::now(), budget))
        .unwrap_or(Attempt::Wait(Duration::ZERO));
    match attempt {
        Attempt::Wait(delay) if delay.is_zero() => Turn::Now,
        Attempt::Wait(delay) => Turn::After(delay),
        Attempt::Refused(wait) => {
            crate::log_throttled!(
                log::Level::Warn,
                "login refused: queue",
                "{ip}: login to {account} refused, attempts queued for {} s",
                wait.as_secs()
            );
            Turn::Refused(wait)
        }
    }
}

/// Whether `password` is `account`'s. A success clears the account's failures and remembers the
/// address as its owner's (and, when `login`, notes the time); a failure spaces the next
/// attempts further. The door logs either, with what it knows of the connection.
pub async fn verify(
    services: &Services,
    account: &Account,
    password: Secret,
    (ip, login): (IpAddr, bool),
) -> bool {
    let accounts = &services.accounts;
    let right = accounts.hasher.verify(password, account.hash.clone()).await;
    if let Ok(mut delays) = accounts.delays.lock() {
        if right {
            delays.succeeded(&account.name, ip);
        } else {
            delays.failed(&account.name, ip, Instant::now());
        }
    }
    if right && login {
        accounts.store.touch_login(&account.name);
    }
    right
}

/// Whole seconds, rounded up: a wait of 0.4 s is announced as 1 s, not 0 s.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
