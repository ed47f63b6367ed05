//! Registration over the wire: the protocol layer's [`Registration`] fed line by line, its
//! checks answered by the services every door uses.
//!
//! A nick passes the same checks as a name at the line door's prompt, cheapest first: its
//! form (the layer's), bans, the account store, then the hub (taken, a look-alike, held). A
//! registered nick needs its account's password, by SASL PLAIN or `PASS`, under the same rule
//! as the line door (TLS or loopback, unless `--plaintext-passwords`) and the same login
//! spacing; the third wrong password closes the connection, as there.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use smol::Timer;

use super::{chat::Me, IrcConn, Styles};
use crate::accounts::password::Secret;
use crate::door::irc::caps::{default_offer, Cap, CapSet};
use crate::door::irc::commands::check;
use crate::door::irc::framing::Framed;
use crate::door::irc::message::{self, ParseError};
use crate::door::irc::numerics::{ERR_ERRONEUSNICKNAME, ERR_INPUTTOOLONG, ERR_PASSWDMISMATCH};
use crate::door::irc::registration::{Ready, Registration, Step, Taken};
use crate::door::irc::render::{replies, Ctx};
use crate::door::irc::sasl::Credentials;
use crate::hub::intent::Identity;
use crate::hub::outbox::Outbox;
use crate::hub::Refused;
use crate::limits::ratelimit::Pace;
use crate::names::Nick;
use crate::session::enter::{self, Cut, NotEntered};
use crate::session::login::{self, Lookup, Turn};
use crate::session::Services;
use crate::storage::accounts::Account;
use crate::vocab::MemberId;
use crate::wire::conn::Stream;

/// Wrong passwords one connection may give before it is closed (as at the line door).
const MAX_FAILURES: u32 = 3;

/// The longest a login waits for its turn before it is refused (the client may try again).
const LOGIN_BUDGET: Duration = Duration::from_secs(10);

/// Why registration did not complete.
pub(super) enum Failed {
    Timeout,
    Evicted,
    ShuttingDown,
    TooManyFailures,
    Quit,
    Gone,
}

impl From<Cut> for Failed {
    fn from(cut: Cut) -> Failed {
        match cut {
            Cut::Timeout => Failed::Timeout,
            Cut::ShuttingDown => Failed::ShuttingDown,
            Cut::Evicted => Failed::Evicted,
        }
    }
}

/// The capabilities this wiring honours: the layer's [`default_offer`], with `sasl` only where
/// a password may be sent.
pub(super) fn offer(shared: &Services, secure: bool) -> CapSet {
    let offer = default_offer();
    if login::passwords_allowed(shared, secure) {
        offer
    } else {
        offer.without(Cap::Sasl)
    }
}

/// Registers the client, or says why not.
pub(super) async fn register<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    (id, styles, server): (MemberId, Styles, &Arc<str>),
    outbox: &Outbox,
    (secure, tls): (bool, bool),
) -> Result<Me, Failed> {
    let mut reg = Registration::new(offer(shared, secure));
    let mut pace = Pace::new(shared.config.rate, Instant::now());
    let mut failures = 0;
    // The account SASL logged in to.
    let mut sasl: Option<Account> = None;
    let peer = io.conn.peer;
    loop {
        io.conn.flush().await.map_err(|_| Failed::Gone)?;
        if let Some(wait) = pace.wait(Instant::now()) {
            // Not reading: TCP pushes back on a client that floods registration.
            Timer::after(wait).await;
        }
        let framed = io.next().await.ok_or(Failed::Gone)?;
        if pace.spend(Instant::now()) && shared.config.rate.is_some() {
            shared.metrics.refused(crate::metrics::Refusal::LineRate);
        }
        let out = &mut io.conn.out;
        let parsed = match framed {
            Framed::TooLong => Err(ParseError::TooLong),
            Framed::Line => message::parse(io.reader.line()),
        };
        let msg = match parsed {
            Ok(msg) => msg,
            Err(ParseError::TooLong | ParseError::TagsTooLong) => {
                shared.metrics.refused(crate::metrics::Refusal::LineTooLong);
                ERR_INPUTTOOLONG.write(out, server, reg.client(), &[], &[]);
                continue;
            }
            Err(ParseError::InvalidUtf8 { command }) => {
                // As once registered: refused with a word, never read as something else.
                let ctx = Ctx {
                    server,
                    client: reg.client(),
                    caps: reg.caps().enabled(),
                };
                replies::invalid_utf8(ctx, command, out);
                continue;
            }
            Err(_) => continue,
        };
        let verb = match check(&msg, false, false) {
            Ok(verb) => verb,
            Err(refusal) => {
                refusal.write(out, server, reg.client(), msg.command);
                continue;
            }
        };
        let mut step = reg.handle(verb, &msg, server, out);
        if let Step::Verify(credentials) = step {
            let account = sasl_login(io, shared, secure, credentials).await?;
            let host = server.to_string();
            let name = account.as_ref().map(|a| a.name.clone());
            step = reg.sasl_result(name.as_deref(), &host, server, &mut io.conn.out);
            if account.is_none() {
                failures += 1;
                if failures >= MAX_FAILURES {
                    return Err(Failed::TooManyFailures);
                }
            }
            sasl = account.or(sasl);
        }
        let ready = match step {
            Step::Continue | Step::Verify(_) => continue,
            Step::Quit(_) => return Err(Failed::Quit),
            Step::Ready(ready) => ready,
        };
        let account = match checked(io, shared, secure, &ready, sasl.as_ref()).await {
            Ok(Some(account)) => account,
            Ok(None) => {
                reg.declined();
                failures += u32::from(ready.password.is_some());
                if failures >= MAX_FAILURES {
                    return Err(Failed::TooManyFailures);
                }
                continue;
            }
            Err(taken) => {
                reg.refused(taken, server, &mut io.conn.out);
                continue;
            }
        };
        let style = styles.style(ready.caps);
        let identity = Identity {
            ip: peer.ip().to_canonical(),
            account: account.as_ref().map(|a| Arc::from(a.name.as_str())),
            operator: account.as_ref().is_some_and(|a| a.operator),
            cli_operator: account.as_ref().is_some_and(|a| a.cli_operator),
            tls,
            realname: Some(ready.realname.as_str().into()),
            lobby: false,
        };
        let operator = identity.operator;
        match enter::enter(shared, (id, &ready.nick), outbox, (identity.clone(), style)).await {
            Ok(_) => {
                info!("{peer}: registered as {} over IRC", ready.nick);
                super::idents::signed_on(id, &ready.nick, &ready.username);
                let (caps, _) = reg.finish();
                return Ok(Me {
                    nick: ready.nick,
                    account: identity.account,
                    operator,
                    caps,
                    pace,
                    styles,
                    invisible: false,
                    batches: Default::default(),
                    search: None,
                });
            }
            Err(NotEntered::Refused(Refused::ShuttingDown)) => return Err(Failed::ShuttingDown),
            Err(NotEntered::Refused(Refused::LooksLike)) => {
                reg.refused(Taken::LookAlike, server, &mut io.conn.out);
            }
            Err(_) => reg.refused(Taken::InUse, server, &mut io.conn.out),
        }
    }
}

/// The checks a nick passes before the hub sees it: bans and accounts. `Ok(Some(account))`
/// to go on (logged in to `account`, if any); `Ok(None)` when refused with a reply already
/// written and the client should send another `NICK`; `Err` for `433`.
async fn checked<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    secure: bool,
    ready: &Ready,
    sasl: Option<&Account>,
) -> Result<Option<Option<Account>>, Taken> {
    let server = super::server();
    let nick = &ready.nick;
    let refuse_nick = |io: &mut IrcConn<S>, reason: &str| {
        ERR_ERRONEUSNICKNAME.write_text(&mut io.conn.out, &server, "*", &[nick.as_str()], reason);
    };
    match login::lookup(shared, nick).await {
        Ok(Lookup::Free) => Ok(Some(sasl.cloned())),
        Ok(Lookup::Banned(_)) => {
            info!("{}: refused banned name {nick}", io.conn.peer);
            refuse_nick(io, "That nickname is banned");
            Ok(None)
        }
        Ok(Lookup::LooksRegistered) => Err(Taken::LookAlike),
        Ok(Lookup::Registered(account)) => {
            if sasl.is_some_and(|a| a.name == account.name) {
                return Ok(Some(Some(account)));
            }
            let Some(password) = ready.password.clone() else {
                return Err(Taken::Registered);
            };
            if !login::passwords_allowed(shared, secure) {
                refuse_nick(io, "Registered nickname: passwords need TLS here");
                return Ok(None);
            }
            match password_ok(io, shared, &account, password).await {
                true => Ok(Some(Some(account))),
                false => {
                    ERR_PASSWDMISMATCH.write(&mut io.conn.out, &server, "*", &[], &[]);
                    Ok(None)
                }
            }
        }
        Err(e) => {
            warn!("{}: account lookup failed: {e}", io.conn.peer);
            refuse_nick(io, "Accounts are unavailable, try again");
            Ok(None)
        }
    }
}

/// Checks SASL PLAIN credentials against the accounts: the account when they are right.
async fn sasl_login<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    secure: bool,
    credentials: Credentials,
) -> Result<Option<Account>, Failed> {
    // `sasl` is not offered where passwords may not cross, but a client may try anyway.
    if !login::passwords_allowed(shared, secure) {
        return Ok(None);
    }
    let Ok(nick) = Nick::parse(&credentials.account) else {
        return Ok(None);
    };
    let account = match login::lookup(shared, &nick).await {
        Ok(Lookup::Registered(account)) => account,
        _ => return Ok(None),
    };
    Ok(password_ok(io, shared, &account, credentials.password)
        .await
        .then_some(account))
}

/// Whether `password` is `account`'s, through the login spacing every door shares.
async fn password_ok<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    account: &Account,
    password: Secret,
) -> bool {
    let ip = io.conn.peer.ip().to_canonical();
    let booked = match login::book(shared, &account.name, ip, LOGIN_BUDGET).await {
        Turn::Now(booked) => booked,
        Turn::After(delay, booked) => {
            let _ = io.conn.flush().await;
            Timer::after(delay).await;
            booked
        }
        Turn::Refused(_) => return false,
    };
    let right = login::verify(shared, account, password, (ip, true, booked)).await;
    if right {
        info!("{}: logged in as {} over IRC", io.conn.peer, account.name);
    } else {
        warn!(
            "{}: wrong password for {} over IRC",
            io.conn.peer, account.name
        );
    }
    right
}
