//! One web connection from accept to close: the page's files over HTTP, or the WebSocket and a
//! chat session on it (the name prompt, then [`super::chat`], then the goodbye).
//!
//! The session is a user like any other: the name rules, bans, the login limiter and the rule
//! that passwords cross only HTTPS or loopback come from `src/session/`, the line rate from
//! `limits`, and the name deadline, the waiting place and shutdown from `net/`, exactly as for
//! the line door. The sentences shown are the line door's (`door/line/words`), so both doors
//! say the same thing.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use log::{debug, info, warn};
use smol::{future, Timer};

pub(super) use super::conn::WebConn;
use super::protocol::{self, ByeReason, ClientMsg, ErrorCode, PromptField, Resume, ServerMsg};
use super::reclaim::{Issued, Tokens};
use super::{chat, serve, Door, Scheme, TrustProxy, WebConfig};
use crate::accounts::password::Secret;
use crate::door::line::words;
use crate::hub::intent::{Identity, Style};
use crate::hub::outbox::{outbox, Outbox};
use crate::hub::{Intent, Joined, Refused};
use crate::limits::ratelimit::Pace;
use crate::names::Nick;
use crate::net::admission::Slot;
use crate::session::enter::{self, NotEntered, Unregistered as Refusal};
use crate::session::login::{self, Lookup, Turn};
use crate::session::{Accepted, Output, Services, TurnedAway};
use crate::storage::accounts::Account;
use crate::vocab::MemberId;
use crate::wire::conn::Stream;

/// Wrong passwords one connection may give before it is closed (as at the line door).
const MAX_FAILURES: u32 = 3;

/// Time kept in hand for checking a password and joining before the name deadline.
const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// What a session knows of its user once registered.
pub(super) struct Me {
    pub id: MemberId,
    pub nick: Nick,
    /// Passwords may cross this connection (HTTPS or loopback).
    pub secure: bool,
    pub account: Option<Arc<str>>,
    pub pace: Pace,
    /// The secret that lets this user's page take the name back after a blip (`reclaim.rs`).
    pub token: Option<Issued>,
}

/// The chat phase of a registered session, boxed on its own (see [`run`]).
pub(super) type Chatting = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs one connection of a web listener (`tls`: an HTTPS one) to the end.
///
/// In two boxed phases: the files, the upgrade and the name prompt ([`arrive`]), then the chat
/// ([`chat::chat`]), which owns what it needs. A task holds every value any of its awaits keeps
/// (and an `async fn` keeps its arguments to the end), so as one future an idle user carried
/// the HTTP state, the upgrade and the registration (4.4 KB); now it carries the chat phase.
pub fn run<S: Stream>(
    stream: S,
    accepted: Accepted,
    services: Arc<Services>,
    door: Door,
    tls: bool,
) -> impl Future<Output = ()> + Send {
    let arrival = Box::pin(arrive(stream, accepted, services, door, tls));
    async move {
        if let Some(chatting) = arrival.await {
            chatting.await;
        }
    }
}

/// A connection up to its registration: the page's files, the upgrade, the name prompt.
/// Returns the chat phase of a user who registered.
async fn arrive<S: Stream>(
    stream: S,
    accepted: Accepted,
    services: Arc<Services>,
    door: Door,
    tls: bool,
) -> Option<Chatting> {
    let Accepted {
        id,
        peer,
        deadline: _,
        secure,
        place,
        ..
    } = accepted;
    let config = &services.config;
    let scheme = if tls { Scheme::Https } else { Scheme::Http };
    let mut web = WebConfig::new(scheme, config.max_line);
    web.trust_proxy = TrustProxy::of(config.trusted_proxies.clone());
    // Files are served until the page asks for the WebSocket, within the HTTP limits; shutdown
    // and eviction end it too. A client a trusted proxy forwarded is screened for an address
    // ban and counted under its own address before the upgrade is answered (at accept, the
    // proxy's connection was counted in the total only).
    let admit = |client: IpAddr| admit_forwarded(&services, client, peer);
    let upgraded = Box::pin(future::or(serve(stream, peer, &web, admit), async {
        future::or(
            async {
                let _ = services.stopping.recv().await;
            },
            place.evicted(),
        )
        .await;
        Ok(None)
    }))
    .await;
    let upgraded = match upgraded {
        Ok(Some(upgraded)) => upgraded,
        Ok(None) => return None,
        Err(e) => {
            debug!("{peer}: web: {e}");
            return None;
        }
    };
    let (client, slot) = (upgraded.client, upgraded.admitted);
    // The name deadline counts from the upgrade: a page may have loaded its files on this
    // connection first, within the HTTP limits.
    let deadline = Instant::now() + config.register_timeout;
    // Passwords: this listener's TLS or a trusted proxy's HTTPS, or a loopback client that is
    // not behind a proxy.
    let secure = upgraded.secure || (secure && client == peer.ip().to_canonical());
    let mut conn = WebConn::new(upgraded.socket, client, peer);
    let (outbox, inbox) = outbox(config.outbox_bytes, services.output_budget.clone());
    let registration = register(
        &mut conn,
        &services,
        (id, &door),
        &outbox,
        (secure, deadline),
    );
    let registered = enter::until_cut(registration, &services, (deadline, &place)).await;
    drop(place);
    let (me, joined, resume) = match registered {
        Ok(done) => done,
        Err(refusal) => {
            Box::pin(refused(conn, &services, id, refusal)).await;
            return None;
        }
    };
    drop(outbox);
    conn.watch(inbox.state());
    let arrival = Box::new((joined, resume));
    Some(Box::pin(chat::chat(
        conn, services, me, arrival, inbox, slot,
    )))
}

/// For a trusted proxy's connection, the forwarded client's address screened for a ban and
/// given a place under `--max-per-ip` (`None` for a direct client, screened and counted at
/// accept), or the refusal, logged and counted as at accept; the upgrade is then answered as
/// a connection refused at accept is (403 for a ban, 429 over the cap).
fn admit_forwarded(
    services: &Services,
    client: IpAddr,
    peer: SocketAddr,
) -> Result<Option<Slot>, TurnedAway> {
    let proxy = peer.ip().to_canonical();
    if !services.config.trusts_proxy(proxy) {
        return Ok(None);
    }
    let admission = &services.admission;
    // The proxy's own address was screened at accept.
    let banned = (client != proxy)
        .then(|| address_ban(services, client))
        .flatten();
    let admitted = match banned {
        Some(why) => Err(why),
        None => admission.admit_forwarded(client, &services.config),
    };
    admitted.map(Some).inspect_err(|why| {
        let who = format_args!("{client} (via {peer})");
        admission.refused(who, why, &words::turned_away(why));
    })
}

/// Why `ip` is refused, if an address ban names it.
fn address_ban(services: &Services, ip: IpAddr) -> Option<TurnedAway> {
    let bans = services.accounts.bans.read().ok()?;
    let ban = bans.address(ip, crate::clock::now_ms())?;
    Some(TurnedAway::Banned {
        expires_ms: ban.expires_ms,
        reason: ban.reason.clone(),
    })
}

/// Tells a connection that did not register why, and closes it.
async fn refused<S: Stream>(mut conn: WebConn<S>, services: &Services, id: MemberId, why: Refusal) {
    let peer = conn.peer;
    let text = match why {
        Refusal::Timeout => {
            let secs = services.config.register_timeout.as_secs();
            crate::log_throttled!(
                log::Level::Warn,
                "no name in time",
                "{peer}: no name within {secs} s, disconnecting"
            );
            services
                .metrics
                .refused(crate::metrics::Refusal::NameDeadline);
            (ByeReason::Limit, words::no_name_in_time(secs), true)
        }
        Refusal::Evicted => {
            crate::limits::waiting::log_eviction(peer);
            let _ = services.hub.send(Intent::Quit { id, reason: None }).await;
            (ByeReason::Limit, words::EVICTED_WAITING.to_owned(), true)
        }
        Refusal::ShuttingDown => (ByeReason::Shutdown, words::SHUTTING_DOWN.to_owned(), true),
        Refusal::TooManyFailures => {
            warn!("{peer}: too many wrong passwords, disconnecting");
            (ByeReason::Limit, words::TOO_MANY_FAILURES.to_owned(), false)
        }
        Refusal::Gone => return debug!("{peer}: left before choosing a name"),
    };
    conn.bye((text.0, &text.1, text.2), CloseCode::Policy).await;
}

/// What the name prompt keeps across attempts.
struct Prompt {
    pace: Pace,
    failures: u32,
    /// A registered name waiting for its password, and where the page left off.
    pending: Option<(Nick, Account, Option<Resume>)>,
}

/// Asks for a name until the page gives a valid, free one (and its password if registered),
/// and registers it with the hub.
async fn register<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    (id, door): (MemberId, &Door),
    outbox: &Outbox,
    (secure, deadline): (bool, Instant),
) -> Result<(Me, Joined, Option<Resume>), Refusal> {
    conn.queue(&ServerMsg::Prompt {
        field: PromptField::Name,
        text: words::GREETING,
    });
    let mut prompt = Prompt {
        pace: Pace::new(services.config.rate, Instant::now()),
        failures: 0,
        pending: None,
    };
    loop {
        let Some(msg) = next_msg(conn, services, &mut prompt.pace).await? else {
            continue;
        };
        let (nick, account, password, resume) = match msg {
            ClientMsg::Hello {
                name,
                password,
                resume,
            } => {
                prompt.pending = None;
                let Some((nick, account)) = check_name(conn, services, &name).await else {
                    ask_name(conn);
                    continue;
                };
                (nick, account, password, resume)
            }
            ClientMsg::Password { password } => match prompt.pending.take() {
                Some((nick, account, resume)) => (nick, Some(account), Some(password), resume),
                None => {
                    conn.refuse(ErrorCode::State, "no password was asked for");
                    continue;
                }
            },
            _ => {
                conn.refuse(ErrorCode::State, "choose a name first");
                continue;
            }
        };
        let mut operator = (false, false);
        if let Some(account) = &account {
            let budget = deadline
                .saturating_duration_since(Instant::now())
                .saturating_sub(DEADLINE_MARGIN);
            let Some(password) = password else {
                if !login::passwords_allowed(services, secure) {
                    conn.refuse(ErrorCode::Password, &words::passwords_need_tls(&nick));
                    ask_name(conn);
                    continue;
                }
                conn.queue(&ServerMsg::Prompt {
                    field: PromptField::Password,
                    text: &words::ask_password(&nick),
                });
                prompt.pending = Some((nick, account.clone(), resume));
                continue;
            };
            if !log_in(
                conn,
                services,
                (&nick, account),
                password,
                (secure, budget, &mut prompt),
            )
            .await?
            {
                ask_name(conn);
                continue;
            }
            operator = (account.operator, account.cli_operator);
        }
        let account = account.map(|_| Arc::<str>::from(nick.key()));
        let identity = Identity::in_lobby(conn.client, account.clone(), operator);
        // The page shows its own lines when they come back with their ids.
        let style = Style {
            renderer: door.renderer,
            echo: true,
        };
        let token = resume.as_ref().and_then(|r| r.token.as_deref());
        let reclaim = (&*door.tokens, token);
        let entered = enter_reclaiming(
            conn.peer,
            services,
            (id, &nick),
            outbox,
            (identity, style),
            reclaim,
        );
        match entered.await {
            Ok(joined) => {
                if account.is_some() {
                    conn.info(&words::logged_in(&nick, operator.0));
                }
                let me = Me {
                    id,
                    nick,
                    secure,
                    account,
                    pace: prompt.pace,
                    token: door.tokens.issue(id),
                };
                return Ok((me, joined, resume));
            }
            Err(NotEntered::Refused(Refused::ShuttingDown)) => return Err(Refusal::ShuttingDown),
            Err(why) => {
                conn.refuse(ErrorCode::Name, &words::not_entered(&nick, &why));
                ask_name(conn);
            }
        }
    }
}

/// Takes the name as [`enter::enter`] does; when it is taken by this page's own stale session
/// (`token` is that session's), ends that session and takes the name again.
async fn enter_reclaiming(
    peer: SocketAddr,
    services: &Services,
    (id, nick): (MemberId, &Nick),
    outbox: &Outbox,
    (identity, style): (Identity, Style),
    (tokens, token): (&Tokens, Option<&str>),
) -> Result<Joined, NotEntered> {
    let again = (identity.clone(), style);
    let entered = enter::enter(services, (id, nick), outbox, (identity, style)).await;
    let taken = matches!(
        entered,
        Err(NotEntered::Refused(Refused::Taken) | NotEntered::TakenElsewhere)
    );
    let (true, Some(token)) = (taken, token) else {
        return entered;
    };
    if !tokens.evict_stale(services, (token, nick), peer).await {
        return entered;
    }
    enter::enter(services, (id, nick), outbox, again).await
}

fn ask_name<S: Stream>(conn: &mut WebConn<S>) {
    conn.queue(&ServerMsg::Prompt {
        field: PromptField::Name,
        text: words::ASK_NAME,
    });
}

/// The name's form, bans and account: `Some((nick, Some(account)))` for a registered name,
/// `None` when refused (and told why).
async fn check_name<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    name: &str,
) -> Option<(Nick, Option<Account>)> {
    let nick = match Nick::parse(name.trim()) {
        Ok(nick) => nick,
        Err(e) => {
            conn.refuse(ErrorCode::Name, &e.nick_reason());
            return None;
        }
    };
    let text = match login::lookup(services, &nick).await {
        Ok(Lookup::Free) => return Some((nick, None)),
        Ok(Lookup::Registered(account)) => return Some((nick, Some(account))),
        Ok(Lookup::Banned(expires_ms)) => {
            info!("{}: refused banned name {nick}", conn.peer);
            words::name_banned(&nick, expires_ms)
        }
        Ok(Lookup::LooksRegistered) => words::name_like_registered(&nick),
        Err(e) => {
            warn!("{}: account lookup failed: {e}", conn.peer);
            words::ACCOUNTS_UNAVAILABLE.to_owned()
        }
    };
    conn.refuse(ErrorCode::Name, &text);
    None
}

/// Checks a registered name's password. True when right; false when the name prompt should
/// come back (told why).
async fn log_in<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    (nick, account): (&Nick, &Account),
    password: protocol::Password,
    (secure, budget, prompt): (bool, Duration, &mut Prompt),
) -> Result<bool, Refusal> {
    if !login::passwords_allowed(services, secure) {
        conn.refuse(ErrorCode::Password, &words::passwords_need_tls(nick));
        return Ok(false);
    }
    let ip = conn.client;
    let booked = match login::book(services, nick.key(), ip, budget).await {
        Turn::Now(booked) => booked,
        Turn::After(delay, booked) => {
            conn.info(&words::login_delay(login::ceil_secs(delay)));
            conn.flush().await.map_err(|_| Refusal::Gone)?;
            Timer::after(delay).await;
            booked
        }
        Turn::Refused(wait) => {
            let text = words::login_busy(nick.as_str(), login::ceil_secs(wait));
            conn.refuse(ErrorCode::Password, &text);
            return Ok(false);
        }
    };
    let secret = Secret::new(password.expose().to_owned());
    if login::verify(services, account, secret, (ip, true, booked)).await {
        info!("{}: logged in as {nick}", conn.peer);
        return Ok(true);
    }
    prompt.failures += 1;
    warn!(
        "{}: wrong password for {nick} ({} of {MAX_FAILURES})",
        conn.peer, prompt.failures
    );
    if prompt.failures >= MAX_FAILURES {
        return Err(Refusal::TooManyFailures);
    }
    conn.refuse(ErrorCode::Password, &words::wrong_password(nick));
    Ok(false)
}

/// Flushes, waits for the pace if the page is over the rate, then reads one message (and
/// counts it); `None` after one that was refused (already answered).
async fn next_msg<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    pace: &mut Pace,
) -> Result<Option<ClientMsg>, Refusal> {
    conn.flush().await.map_err(|_| Refusal::Gone)?;
    if let Some(wait) = pace.wait(Instant::now()) {
        Timer::after(wait).await;
    }
    let frame = match conn.socket.recv().await {
        Ok(Some(frame)) => frame,
        Ok(None) => return Err(Refusal::Gone),
        Err(e) => {
            e.log(conn.peer);
            return Err(Refusal::Gone);
        }
    };
    if let (true, Some(rate)) = (pace.spend(Instant::now()), services.config.rate) {
        crate::log_throttled!(
            log::Level::Warn,
            "rate limit: name prompt",
            "{}: over the rate limit at the name prompt, delaying messages",
            conn.peer
        );
        services.metrics.refused(crate::metrics::Refusal::LineRate);
        conn.info(&words::slow_down(rate.burst, rate.per_sec));
    }
    match protocol::parse(&frame, services.config.max_line) {
        Ok(msg) => Ok(Some(msg)),
        Err(e) => {
            conn.refuse_message(&e, &services.metrics);
            Ok(None)
        }
    }
}
