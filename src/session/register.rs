//! Registration: ask for a name until the client gives a valid, free, unbanned one, and the
//! password when the name is registered.
//!
//! A registered name asks for its password: the right one logs in; a wrong one is told so and
//! the name prompt comes back (try again, or choose another name); the third wrong password on
//! one connection closes it. Each attempt after a failure waits a growing delay (per account and
//! per address, `limits/login.rs`), and each failure is logged with the address, never the
//! password. The deadline for the whole dialogue is set by the caller ([`super::run`]), which
//! races this against a timer and against shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use smol::Timer;

use crate::accounts::password::Secret;
use crate::clock;
use crate::cluster::Unavailable;
use crate::hub::moderation::Identity;
use crate::hub::outbox::Outbox;
use crate::hub::{Event, Joined, MemberId, RegisterError};
use crate::limits::address::group;
use crate::limits::login::Attempt;
use crate::limits::ratelimit::Pace;
use crate::names::Nick;
use crate::protocol;
use crate::storage::accounts::Account;
use crate::wire::codec::Decoded;
use crate::wire::conn::{Conn, Stream};

use super::{Me, Refusal, Shared};

/// Wrong passwords one connection may give before it is closed.
pub(super) const MAX_FAILURES: u32 = 3;

/// Time kept in hand at the name prompt for checking a password and joining: a login that would
/// wait past `deadline - DEADLINE_MARGIN` for its slot is refused at once (with a line saying
/// when to try again) rather than left to meet the name deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Asks for a name until the client gives a valid, free one (and its password if registered).
pub(super) async fn register<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    id: MemberId,
    outbox: &Outbox,
    secure: bool,
    deadline: Instant,
) -> Result<(Nick, Joined, Me), Refusal> {
    conn.queue(protocol::GREETING);
    // Every line here counts against the rate, as in the chat: a flood of names is delayed
    // (the socket is not read), and the checks below run cheapest first (the name's form, then
    // the bans in memory, then the account lookup, then the hub).
    let mut prompt = Prompt {
        pace: Pace::new(shared.config.rate, Instant::now()),
        failures: 0,
    };
    loop {
        let Some(text) = next_line(conn, shared, &mut prompt.pace).await? else {
            conn.queue(protocol::ASK_NAME);
            continue;
        };
        if text.trim().is_empty() {
            conn.queue(protocol::ASK_NAME);
            continue;
        }
        let nick = match Nick::parse(&text) {
            Ok(nick) => nick,
            Err(e) => {
                conn.queue(&e.nick_reason());
                conn.queue(protocol::ASK_NAME);
                continue;
            }
        };
        // A ban on this very name refuses it before any lookup; one on a look-alike of it
        // refuses it unless it is a registered account's own name (see `name_ban`).
        let ban = name_ban(shared, &nick);
        if let Some(ban @ NameBan { exact: true, .. }) = ban {
            refuse_banned(conn, &nick, ban);
            continue;
        }
        let found = shared.accounts.store.find_like(&nick).await;
        if let Some(ban) = ban {
            if !matches!(&found, Ok(Some(a)) if a.name == nick.key()) {
                refuse_banned(conn, &nick, ban);
                continue;
            }
        }
        let (account, operator) = match found {
            Ok(None) => (None, (false, false)),
            Ok(Some(account)) if account.name != nick.key() => {
                conn.queue(&protocol::name_like_registered(&nick));
                conn.queue(protocol::ASK_NAME);
                continue;
            }
            Ok(Some(account)) => {
                let budget = deadline
                    .saturating_duration_since(Instant::now())
                    .saturating_sub(DEADLINE_MARGIN);
                let attempt = login(conn, shared, &nick, &account, secure, budget, &mut prompt);
                match attempt.await? {
                    true => (
                        Some(Arc::<str>::from(nick.key())),
                        (account.operator, account.cli_operator),
                    ),
                    false => {
                        discard_typed_ahead(conn).await;
                        conn.queue(protocol::ASK_NAME);
                        continue;
                    }
                }
            }
            Err(e) => {
                warn!("{}: account lookup failed: {e}", conn.peer);
                conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
                // A password typed ahead would be read as the next name, and announced.
                discard_typed_ahead(conn).await;
                conn.queue(protocol::ASK_NAME);
                continue;
            }
        };
        match claim(shared, &nick, id).await {
            Ok(true) => {}
            Ok(false) => {
                conn.queue(&protocol::name_taken(&nick));
                conn.queue(protocol::ASK_NAME);
                continue;
            }
            Err(Unavailable) => {
                conn.queue(protocol::NAME_PAUSED);
                conn.queue(protocol::ASK_NAME);
                continue;
            }
        }
        let (reply_tx, reply_rx) = async_channel::bounded(1);
        let identity = Identity {
            ip: conn.peer.ip().to_canonical(),
            account: account.clone(),
            operator: operator.0,
            cli_operator: operator.1,
        };
        let event = Event::Register {
            id,
            nick: nick.clone(),
            outbox: outbox.clone(),
            identity,
            reply: reply_tx,
        };
        if shared.hub.send(event).await.is_err() {
            release(shared, &nick, id);
            return Err(Refusal::ShuttingDown);
        }
        let reply = reply_rx.recv().await;
        if !matches!(reply, Ok(Ok(_))) {
            release(shared, &nick, id);
        }
        match reply {
            Ok(Ok(joined)) => {
                if account.is_some() {
                    conn.queue(&protocol::logged_in(&nick, operator.0));
                }
                let pace = prompt.pace;
                return Ok((
                    nick,
                    joined,
                    Me {
                        secure,
                        account,
                        pace,
                    },
                ));
            }
            Ok(Err(RegisterError::Taken)) => {
                conn.queue(&protocol::name_taken(&nick));
                conn.queue(protocol::ASK_NAME);
            }
            Ok(Err(RegisterError::LooksLike)) => {
                conn.queue(&protocol::name_confusable(&nick));
                conn.queue(protocol::ASK_NAME);
            }
            Ok(Err(RegisterError::Held(secs))) => {
                conn.queue(&protocol::name_held(&nick, secs));
                conn.queue(protocol::ASK_NAME);
            }
            Ok(Err(RegisterError::ShuttingDown)) | Err(_) => return Err(Refusal::ShuttingDown),
        }
    }
}

/// In cluster mode, claims `nick` on every node before the hub is asked (two users on two nodes
/// racing for one name: Redis decides, one wins). On a single node the hub alone decides.
pub(super) async fn claim(shared: &Shared, nick: &Nick, id: MemberId) -> Result<bool, Unavailable> {
    match &shared.cluster {
        Some(link) => link.claim(nick, id).await,
        None => Ok(true),
    }
}

/// Frees a claim the hub did not take up.
fn release(shared: &Shared, nick: &Nick, id: MemberId) {
    if let Some(link) = &shared.cluster {
        link.release(nick, id);
    }
}

/// A ban in force covering a name.
#[derive(Debug, Clone, Copy)]
pub(super) struct NameBan {
    /// Milliseconds since the epoch; `None` until lifted.
    pub expires_ms: Option<i64>,
    /// On the name itself, which also covers the account of that name; otherwise on a
    /// look-alike of it (a tail of digits, `moderation/lookalike.rs`), which does not keep a
    /// registered account's owner out of it: the banned user is somebody else.
    pub exact: bool,
}

/// The ban covering `nick` (its name or a look-alike of it with a tail of digits), if one is in
/// force.
pub(super) fn name_ban(shared: &Shared, nick: &Nick) -> Option<NameBan> {
    let bans = shared.accounts.bans.read().ok()?;
    bans.name_or_like(nick, clock::now_ms())
        .map(|(ban, exact)| NameBan {
            expires_ms: ban.expires_ms,
            exact,
        })
}

/// Tells the user `nick` is banned and asks for another name.
fn refuse_banned<S: Stream>(conn: &mut Conn<S>, nick: &Nick, ban: NameBan) {
    info!("{}: refused banned name {nick}", conn.peer);
    conn.queue(&protocol::name_banned(nick, ban.expires_ms));
    conn.queue(protocol::ASK_NAME);
}

/// Throws away lines typed ahead (after a refused login, they may hold a password), telling the
/// user if there were any.
pub(super) async fn discard_typed_ahead<S: Stream>(conn: &mut Conn<S>) {
    let dropped = conn.discard_typed_ahead().await;
    if dropped > 0 {
        conn.queue(&protocol::typed_ahead_discarded(dropped));
    }
}

/// Flushes, waits for the pace if the user is over the rate, then reads one line (and counts
/// it); `None` after an over-long line (already answered).
async fn next_line<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    pace: &mut Pace,
) -> Result<Option<String>, Refusal> {
    loop {
        conn.flush().await.map_err(|_| Refusal::Gone)?;
        if let Some(wait) = pace.wait(Instant::now()) {
            // Not reading: TCP pushes back on a client that floods the prompt.
            Timer::after(wait).await;
        }
        let line = match conn.read_line().await {
            Ok(Some(Decoded::Line(text))) => Some(text),
            // A telnet answer to send: flushed at the top of the loop. Not a line: not counted.
            Ok(Some(Decoded::Reply)) => continue,
            Ok(Some(Decoded::TooLong)) => None,
            Ok(None) | Err(_) => return Err(Refusal::Gone),
        };
        if let (true, Some(rate)) = (pace.spend(Instant::now()), shared.config.rate) {
            crate::log_throttled!(
                log::Level::Warn,
                "rate limit: name prompt",
                "{}: over the rate limit at the name prompt, delaying lines",
                conn.peer
            );
            conn.queue(&protocol::slow_down(rate.burst, rate.per_sec));
        }
        if line.is_none() {
            conn.queue(&protocol::too_long(shared.config.max_line));
        }
        return Ok(line);
    }
}

/// What the name prompt keeps across attempts: the pace of lines, and wrong passwords so far.
struct Prompt {
    pace: Pace,
    failures: u32,
}

/// Asks for the password of a registered name. True when it is right; false when the user should
/// be asked for a name again (told why). `budget`: how long the attempt may wait for its turn.
async fn login<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    nick: &Nick,
    account: &Account,
    secure: bool,
    budget: Duration,
    prompt: &mut Prompt,
) -> Result<bool, Refusal> {
    if !(secure || shared.config.plaintext_passwords) {
        conn.queue(&protocol::passwords_need_tls(nick));
        return Ok(false);
    }
    conn.queue(&protocol::ask_password(nick));
    if !conn.is_telnet() {
        conn.queue(protocol::PASSWORD_VISIBLE);
    }
    conn.hide_input();
    let answer = next_line(conn, shared, &mut prompt.pace).await;
    conn.show_input();
    let Some(password) = answer?.filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let ip = conn.peer.ip().to_canonical();
    let address = group(ip);
    // An address the owner has logged in from skips the account's queue (remembered in the
    // database, so across restarts); if the lookup fails, the attempt simply queues.
    let known = shared
        .accounts
        .store
        .knows_address(nick.key(), address)
        .await
        .unwrap_or(false);
    let delays = &shared.accounts.delays;
    let attempt = delays
        .lock()
        .map(|mut d| d.attempt(nick.key(), ip, known, Instant::now(), budget))
        .unwrap_or(Attempt::Wait(Duration::ZERO));
    match attempt {
        Attempt::Wait(delay) if !delay.is_zero() => {
            conn.queue(&protocol::login_delay(ceil_secs(delay)));
            conn.flush().await.map_err(|_| Refusal::Gone)?;
            Timer::after(delay).await;
        }
        Attempt::Wait(_) => {}
        Attempt::Refused(wait) => {
            crate::log_throttled!(
                log::Level::Warn,
                "login refused: queue",
                "{}: login to {nick} refused, attempts queued for {} s",
                conn.peer,
                wait.as_secs()
            );
            conn.queue(&protocol::login_busy(nick.as_str(), ceil_secs(wait)));
            return Ok(false);
        }
    }
    // A known address is also checked before strangers' guesses queued for hashing.
    let hasher = &shared.accounts.hasher;
    let (password, stored) = (Secret::new(password), account.hash.clone());
    let right = if known {
        hasher.verify_first(password, stored).await
    } else {
        hasher.verify(password, stored).await
    };
    if right {
        if let Ok(mut d) = delays.lock() {
            d.succeeded(nick.key(), ip);
        }
        shared.accounts.store.touch_login(nick.key(), address);
        info!("{}: logged in as {nick}", conn.peer);
        return Ok(true);
    }
    if let Ok(mut d) = delays.lock() {
        d.failed(nick.key(), ip, Instant::now());
    }
    prompt.failures += 1;
    let failures = prompt.failures;
    warn!(
        "{}: wrong password for {nick} ({} of {MAX_FAILURES})",
        conn.peer, failures
    );
    if failures >= MAX_FAILURES {
        return Err(Refusal::TooManyFailures);
    }
    conn.queue(&protocol::wrong_password(nick));
    Ok(false)
}

/// Whole seconds, rounded up: a wait of 0.4 s is announced as 1 s, not 0 s.
pub(super) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
