//! Accounts, for every door: a name's account and ban, the login limiter, password checks, and
//! new accounts.
//!
//! A door asks [`lookup`] what a name is (free, registered, a look-alike of a registered name,
//! banned), refuses a password where [`passwords_allowed`] says it would cross the network in
//! clear, then [`book`]s the attempt's turn with the limiter (`limits/login.rs`: attempts on one
//! account or from one address take turns, spaced further after each failure; an address the
//! owner used before skips the account's queue), tells its user how long the check waits, waits,
//! and [`verify`]s. Hashing runs on the hasher threads, never on the executor; a password is
//! never logged. Each failure is logged with the address.
//!
//! A new account takes a slot of `--registrations-per-hour` first ([`take_slot`], before the
//! password is asked for), is made by [`create`], and gives the slot back if none was made.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::accounts::password::Secret;
use crate::limits::address::group;
use crate::limits::login::Attempt;
use crate::limits::registrations::Slot;
use crate::metrics::Refusal;
use crate::names::Nick;
use crate::session::Services;
use crate::storage::accounts::Account;
use crate::storage::StorageError;
use crate::vocab::Change;

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
    // A ban on this very name refuses it before any lookup; one on a look-alike of it refuses
    // it unless it is a registered account's own name (see [`NameBan`]).
    let ban = name_ban(services, nick);
    if let Some(NameBan {
        exact: true,
        expires_ms,
    }) = ban
    {
        services.metrics.refused(Refusal::BannedName);
        return Ok(Lookup::Banned(expires_ms));
    }
    let found = services.accounts.store.find_like(nick).await?;
    if let Some(ban) = ban {
        if !matches!(&found, Some(a) if a.name == nick.key()) {
            services.metrics.refused(Refusal::BannedName);
            return Ok(Lookup::Banned(ban.expires_ms));
        }
    }
    Ok(match found {
        None => Lookup::Free,
        Some(account) if account.name != nick.key() => Lookup::LooksRegistered,
        Some(account) => Lookup::Registered(account),
    })
}

/// A ban in force covering a name.
#[derive(Debug, Clone, Copy)]
pub struct NameBan {
    /// Milliseconds since the epoch; `None` until lifted.
    pub expires_ms: Option<i64>,
    /// On the name itself, which also covers the account of that name; otherwise on a
    /// look-alike of it (a tail of digits, `moderation/lookalike.rs`), which does not keep a
    /// registered account's owner out of it: the banned user is somebody else.
    pub exact: bool,
}

/// The ban covering `nick` (its name or a look-alike of it with a tail of digits), if one is in
/// force.
pub fn name_ban(services: &Services, nick: &Nick) -> Option<NameBan> {
    let bans = services.accounts.bans.read().ok()?;
    let now_ms = crate::clock::now_ms();
    bans.name_or_like(nick, now_ms).map(|(ban, exact)| NameBan {
        expires_ms: ban.expires_ms,
        exact,
    })
}

/// Whether passwords may cross a connection: over TLS or from loopback (`secure`), or anywhere
/// with `--plaintext-passwords`.
pub fn passwords_allowed(services: &Services, secure: bool) -> bool {
    secure || services.config.plaintext_passwords
}

/// A booked attempt: what [`verify`] needs to check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booked {
    /// The address has logged in to the account before: its check goes before strangers'
    /// guesses queued for hashing.
    known: bool,
}

/// When an attempt on `account` from `ip` may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Now.
    Now(Booked),
    /// After this long (its slot is booked: the door says so, waits, then verifies).
    After(Duration, Booked),
    /// Not now: too many attempts are queued; one could be checked after this long. Not a
    /// failure.
    Refused(Duration),
}

/// Books the attempt's turn, to be checked within `budget` (the time the caller has left). An
/// address that has logged in to the account before (remembered in the database, so across
/// restarts) skips the account's queue; if that lookup fails, the attempt simply queues.
pub async fn book(services: &Services, account: &str, ip: IpAddr, budget: Duration) -> Turn {
    let store = &services.accounts.store;
    let known = store.knows_address(account, group(ip)).await;
    let known = known.unwrap_or(false);
    let attempt = services
        .accounts
        .delays
        .lock()
        .map(|mut d| d.attempt(account, ip, known, Instant::now(), budget))
        .unwrap_or(Attempt::Wait(Duration::ZERO));
    match attempt {
        Attempt::Wait(delay) if delay.is_zero() => Turn::Now(Booked { known }),
        Attempt::Wait(delay) => Turn::After(delay, Booked { known }),
        Attempt::Refused(wait) => {
            services.metrics.refused(Refusal::LoginThrottled);
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
    (ip, login, booked): (IpAddr, bool, Booked),
) -> bool {
    let accounts = &services.accounts;
    let stored = account.hash.clone();
    let right = if booked.known {
        accounts.hasher.verify_first(password, stored).await
    } else {
        accounts.hasher.verify(password, stored).await
    };
    if let Ok(mut delays) = accounts.delays.lock() {
        if right {
            delays.succeeded(&account.name, ip);
        } else {
            delays.failed(&account.name, ip, Instant::now());
        }
    }
    if !right {
        // Every door's wrong passwords, at the prompt and in chat alike.
        services.metrics.login_failed();
    }
    if right && login {
        accounts.store.touch_login(&account.name, group(ip));
    }
    right
}

/// Why a new account was not made.
#[derive(Debug)]
pub enum NotCreated {
    /// `--registrations-per-hour` from this address are used up: `per_hour`, and how long until
    /// the next is allowed.
    TooMany {
        per_hour: u32,
        wait: Duration,
    },
    /// The name (or a look-alike) was registered meanwhile.
    Taken,
    Unavailable(StorageError),
}

/// Takes a slot of `--registrations-per-hour` for `ip`: `Ok(None)` when the limit is off or does
/// not apply (loopback, unless `--limit-loopback`). Taken before the password is asked for, so a
/// refused user types nothing in vain; [`create`] gives it back unless an account is made.
pub fn take_slot(services: &Services, ip: IpAddr) -> Result<Option<Slot>, NotCreated> {
    let config = &services.config;
    let Some(per_hour) = config.registrations_per_hour else {
        return Ok(None);
    };
    if ip.is_loopback() && !config.limit_loopback {
        return Ok(None);
    }
    let Ok(mut registrations) = services.accounts.registrations.lock() else {
        return Ok(None);
    };
    match registrations.take(ip, Instant::now()) {
        Ok(slot) => Ok(Some(slot)),
        Err(wait) => {
            crate::log_throttled!(
                log::Level::Warn,
                "refused: registrations",
                "{ip}: /register refused: {per_hour} new accounts from this address in the last hour"
            );
            Err(NotCreated::TooMany { per_hour, wait })
        }
    }
}

/// Makes the account `nick` with the password hash `hash`, for a connection from `ip` (which
/// then skips the account's login queue, as after a login). Returns the change to tell the hub
/// (which replicates it in cluster mode). The slot is given back unless the account was made.
pub async fn create(
    services: &Services,
    nick: &Nick,
    (hash, ip): (String, IpAddr),
    slot: Option<Slot>,
) -> Result<Change, NotCreated> {
    let created_ms = crate::clock::now_ms();
    let store = &services.accounts.store;
    let made = store.create(nick.as_str(), hash.clone(), created_ms).await;
    if !matches!(made, Ok(true)) {
        give_back(services, slot);
    }
    match made {
        Ok(true) => {
            store.remember_address(nick.key(), group(ip));
            Ok(Change::Register {
                display: nick.to_string(),
                hash,
                created_ms,
            })
        }
        Ok(false) => Err(NotCreated::Taken),
        Err(e) => Err(NotCreated::Unavailable(e)),
    }
}

/// Gives a registration slot back: no account was made with it.
pub fn give_back(services: &Services, slot: Option<Slot>) {
    if let (Some(slot), Ok(mut registrations)) = (slot, services.accounts.registrations.lock()) {
        registrations.give_back(slot);
    }
}

/// Whole seconds, rounded up: a wait of 0.4 s is announced as 1 s, not 0 s.
pub fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
