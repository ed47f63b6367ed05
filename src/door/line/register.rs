//! Registration: ask for a name until the client gives a valid, free, unbanned one, and the
//! password when the name is registered.
//!
//! A registered name asks for its password: the right one logs in; a wrong one is told so and
//! the name prompt comes back (try again, or choose another name); the third wrong password on
//! one connection closes it. Attempts take turns and are spaced after failures (the login
//! service, `session/login.rs`). The deadline for the whole dialogue is set by the caller
//! ([`super::run`]), which races this against a timer and against shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use smol::Timer;

use super::{words, Me, Refusal};
use crate::accounts::password::Secret;
use crate::hub::intent::{Identity, Style};
use crate::hub::outbox::Outbox;
use crate::hub::render::RendererId;
use crate::hub::{Joined, Refused};
use crate::limits::ratelimit::Pace;
use crate::metrics;
use crate::names::Nick;
use crate::session::enter::{self, NotEntered};
use crate::session::login::{self, Lookup, Turn};
use crate::session::Services;
use crate::storage::accounts::Account;
use crate::vocab::MemberId;
use crate::wire::codec::Decoded;
use crate::wire::conn::{Conn, Stream};

/// Wrong passwords one connection may give before it is closed.
pub(super) const MAX_FAILURES: u32 = 3;

/// Time kept in hand at the name prompt for checking a password and joining: a login that would
/// wait past `deadline - DEADLINE_MARGIN` for its slot is refused at once (with a line saying
/// when to try again) rather than left to meet the name deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// Asks for a name until the client gives a valid, free one (and its password if registered),
/// and registers it with the hub, rendered by `renderer`.
pub(super) async fn register<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    (id, renderer): (MemberId, RendererId),
    outbox: &Outbox,
    (secure, deadline): (bool, Instant),
) -> Result<(Nick, Joined, Me), Refusal> {
    conn.queue(words::GREETING);
    // Every line here counts against the rate, as in the chat: a flood of names is delayed
    // (the socket is not read), and the checks below run cheapest first (the name's form, then
    // the bans in memory, then the account lookup, then the hub).
    let mut prompt = Prompt {
        pace: Pace::new(shared.config.rate, Instant::now()),
        failures: 0,
    };
    loop {
        let Some(text) = next_line(conn, shared, &mut prompt.pace).await? else {
            conn.queue(words::ASK_NAME);
            continue;
        };
        if text.trim().is_empty() {
            conn.queue(words::ASK_NAME);
            continue;
        }
        let nick = match Nick::parse(&text) {
            Ok(nick) => nick,
            Err(e) => {
                conn.queue(&e.nick_reason());
                conn.queue(words::ASK_NAME);
                continue;
            }
        };
        let (account, operator) = match login::lookup(shared, &nick).await {
            Ok(Lookup::Free) => (None, (false, false)),
            Ok(Lookup::Banned(expires_ms)) => {
                info!("{}: refused banned name {nick}", conn.peer);
                conn.queue(&words::name_banned(&nick, expires_ms));
                conn.queue(words::ASK_NAME);
                continue;
            }
            Ok(Lookup::LooksRegistered) => {
                conn.queue(&words::name_like_registered(&nick));
                conn.queue(words::ASK_NAME);
                continue;
            }
            Ok(Lookup::Registered(account)) => {
                let budget = deadline
                    .saturating_duration_since(Instant::now())
                    .saturating_sub(DEADLINE_MARGIN);
                let attempt = (secure, budget, &mut prompt);
                match login(conn, shared, &nick, &account, attempt).await? {
                    true => (
                        Some(Arc::<str>::from(nick.key())),
                        (account.operator, account.cli_operator),
                    ),
                    false => {
                        discard_typed_ahead(conn).await;
                        conn.queue(words::ASK_NAME);
                        continue;
                    }
                }
            }
            Err(e) => {
                warn!("{}: account lookup failed: {e}", conn.peer);
                conn.queue(words::ACCOUNTS_UNAVAILABLE);
                // A password typed ahead would be read as the next name, and announced.
                discard_typed_ahead(conn).await;
                conn.queue(words::ASK_NAME);
                continue;
            }
        };
        let identity = Identity::in_lobby(conn.peer.ip().to_canonical(), account.clone(), operator);
        let style = Style {
            renderer,
            echo: false,
        };
        match enter::enter(shared, (id, &nick), outbox, (identity, style)).await {
            Ok(joined) => {
                if account.is_some() {
                    conn.queue(&words::logged_in(&nick, operator.0));
                }
                let pace = prompt.pace;
                let me = Me {
                    secure,
                    account,
                    pace,
                };
                return Ok((nick, joined, me));
            }
            Err(NotEntered::Refused(Refused::ShuttingDown)) => return Err(Refusal::ShuttingDown),
            Err(why) => {
                conn.queue(&words::not_entered(&nick, &why));
                conn.queue(words::ASK_NAME);
            }
        }
    }
}

/// Throws away lines typed ahead (after a refused login, they may hold a password), telling the
/// user if there were any.
pub(super) async fn discard_typed_ahead<S: Stream>(conn: &mut Conn<S>) {
    let dropped = conn.discard_typed_ahead().await;
    if dropped > 0 {
        conn.queue(&words::typed_ahead_discarded(dropped));
    }
}

/// What the name prompt keeps across attempts: the pace of lines, and wrong passwords so far.
struct Prompt {
    pace: Pace,
    failures: u32,
}

/// Flushes, waits for the pace if the user is over the rate, then reads one line (and counts
/// it); `None` after an over-long line (already answered).
async fn next_line<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
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
            shared.metrics.refused(metrics::Refusal::LineRate);
            conn.queue(&words::slow_down(rate.burst, rate.per_sec));
        }
        if line.is_none() {
            shared.metrics.refused(metrics::Refusal::LineTooLong);
            conn.queue(&words::too_long(shared.config.max_line));
        }
        return Ok(line);
    }
}

/// Asks for the password of a registered name. True when it is right; false when the user should
/// be asked for a name again (told why). `budget`: how long the attempt may wait for its turn.
async fn login<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    nick: &Nick,
    account: &Account,
    (secure, budget, prompt): (bool, Duration, &mut Prompt),
) -> Result<bool, Refusal> {
    if !login::passwords_allowed(shared, secure) {
        conn.queue(&words::passwords_need_tls(nick));
        return Ok(false);
    }
    conn.queue(&words::ask_password(nick));
    if !conn.is_telnet() {
        conn.queue(words::PASSWORD_VISIBLE);
    }
    conn.hide_input();
    let answer = next_line(conn, shared, &mut prompt.pace).await;
    conn.show_input();
    let Some(password) = answer?.filter(|p| !p.is_empty()) else {
        return Ok(false);
    };
    let ip = conn.peer.ip().to_canonical();
    let booked = match login::book(shared, nick.key(), ip, budget).await {
        Turn::Now(booked) => booked,
        Turn::After(delay, booked) => {
            conn.queue(&words::login_delay(login::ceil_secs(delay)));
            conn.flush().await.map_err(|_| Refusal::Gone)?;
            Timer::after(delay).await;
            booked
        }
        Turn::Refused(wait) => {
            conn.queue(&words::login_busy(nick.as_str(), login::ceil_secs(wait)));
            return Ok(false);
        }
    };
    let password = Secret::new(password);
    if login::verify(shared, account, password, (ip, true, booked)).await {
        info!("{}: logged in as {nick}", conn.peer);
        return Ok(true);
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
    conn.queue(&words::wrong_password(nick));
    Ok(false)
}
