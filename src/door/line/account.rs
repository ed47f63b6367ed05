//! `/register`, `/password` and `/unregister`: password dialogues inside the chat loop.
//!
//! While a dialogue waits for the user's answer, lines from the outbox keep flowing to the client
//! (a slow typist must not be dropped as a slow reader). An empty answer cancels. Passwords are
//! refused over plaintext connections unless `--plaintext-passwords`, hidden from telnet users'
//! screens, and never logged or echoed.

use std::sync::Arc;

use log::{info, warn};
use smol::future;

use super::{words, End, Me};
use crate::accounts::password::Secret;
use crate::hub::outbox::Inbox;
use crate::hub::{Intent, Request};
use crate::limits::login::QUEUE_MAX;
use crate::names::Nick;
use crate::session::enter::{self, NoRename};
use crate::session::login::{self, NotCreated, Turn};
use crate::session::Services;
use crate::vocab::{Change, MemberId};
use crate::wire::codec::Decoded;
use crate::wire::conn::{Conn, Stream};

/// Which dialogue.
#[derive(Debug, Clone, Copy)]
pub(super) enum Dialogue {
    Register,
    Password,
    Unregister,
}

/// Runs a dialogue to its end. Errors end the session.
///
/// Whatever the user typed ahead and the dialogue did not read is then thrown away (the user is
/// told): a dialogue refused or cut short leaves pasted passwords behind, which would otherwise
/// be relayed to the room as public lines.
pub(super) async fn run<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    id: MemberId,
    me: &mut Me,
    inbox: &Inbox,
    dialogue: Dialogue,
) -> Result<(), End> {
    dialogue_inner(conn, shared, id, me, inbox, dialogue).await?;
    super::register::discard_typed_ahead(conn).await;
    Ok(())
}

async fn dialogue_inner<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    id: MemberId,
    me: &mut Me,
    inbox: &Inbox,
    dialogue: Dialogue,
) -> Result<(), End> {
    if !login::passwords_allowed(shared, me.secure) {
        conn.queue(words::PLAINTEXT_REFUSED);
        return Ok(());
    }
    match dialogue {
        Dialogue::Register => register(conn, shared, id, me, inbox).await,
        Dialogue::Password | Dialogue::Unregister => {
            let Some(account) = me.account.clone() else {
                conn.queue(words::NOT_LOGGED_IN);
                return Ok(());
            };
            let Some(old) = ask(conn, inbox, &words::current_password(&account)).await? else {
                return Ok(());
            };
            if !check(conn, shared, &account, old).await {
                return Ok(());
            }
            if let Dialogue::Unregister = dialogue {
                return unregister(conn, shared, id, me, &account).await;
            }
            let Some(new) = new_password(conn, inbox, words::NEW_PASSWORD).await? else {
                return Ok(());
            };
            let Some(hash) = shared.accounts.hasher.hash(new).await else {
                conn.queue(words::ACCOUNTS_UNAVAILABLE);
                return Ok(());
            };
            match shared
                .accounts
                .store
                .set_password(&account, hash.clone())
                .await
            {
                Ok(true) => {
                    info!("{}: changed the password of {account}", conn.peer);
                    let change = Change::Password {
                        name: account.to_string(),
                        hash,
                    };
                    tell_hub(shared, id, Request::Replicate(change)).await?;
                    conn.queue(words::PASSWORD_CHANGED);
                }
                Ok(false) => conn.queue(words::NOT_LOGGED_IN),
                Err(e) => {
                    warn!("{}: password change failed: {e}", conn.peer);
                    conn.queue(words::ACCOUNTS_UNAVAILABLE);
                }
            }
            Ok(())
        }
    }
}

async fn register<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    id: MemberId,
    me: &mut Me,
    inbox: &Inbox,
) -> Result<(), End> {
    // The session does not track renames (the hub owns names): ask for the current one.
    let (reply, answer) = async_channel::bounded(1);
    let whoami = Intent::Whoami { id, reply };
    shared.hub.send(whoami).await.map_err(|_| End::Closed)?;
    let Ok(nick) = answer.recv().await else {
        return Err(End::Closed);
    };
    // A look-alike ban does not keep out a registered account's owner: a name used from
    // before the ban must not become one now.
    if let Some(ban) = login::name_ban(shared, &nick) {
        conn.queue(&words::name_banned(&nick, ban.expires_ms));
        return Ok(());
    }
    match shared.accounts.store.find_like(&nick).await {
        Ok(None) => {}
        Ok(Some(account)) if account.name != nick.key() => {
            conn.queue(&words::name_like_registered(&nick));
            return Ok(());
        }
        Ok(Some(_)) => {
            conn.queue(&words::already_registered(&nick));
            return Ok(());
        }
        Err(e) => {
            warn!("{}: account lookup failed: {e}", conn.peer);
            conn.queue(words::ACCOUNTS_UNAVAILABLE);
            return Ok(());
        }
    }
    // A slot of `--registrations-per-hour`, taken before the password is asked for (so a
    // refused user types nothing in vain) and given back unless an account is made.
    let ip = conn.peer.ip().to_canonical();
    let slot = match login::take_slot(shared, ip) {
        Ok(slot) => slot,
        Err(refused) => {
            conn.queue(&not_created(&nick, &refused));
            return Ok(());
        }
    };
    let Some(password) = new_password(conn, inbox, &words::choose_password(&nick)).await? else {
        login::give_back(shared, slot);
        return Ok(());
    };
    let Some(hash) = shared.accounts.hasher.hash(password).await else {
        login::give_back(shared, slot);
        conn.queue(words::ACCOUNTS_UNAVAILABLE);
        return Ok(());
    };
    match login::create(shared, &nick, (hash, ip), slot).await {
        Ok(change) => {
            info!("{}: registered {nick}", conn.peer);
            let account: Arc<str> = nick.key().into();
            me.account = Some(account.clone());
            let logged_in = Some(account);
            tell_hub(shared, id, Request::Account { logged_in, change }).await?;
            conn.queue(&words::registered(&nick));
        }
        Err(refused) => {
            if let NotCreated::Unavailable(e) = &refused {
                warn!("{}: registration failed: {e}", conn.peer);
            }
            conn.queue(&not_created(&nick, &refused));
        }
    }
    Ok(())
}

/// Why no account was made, in the line door's words.
fn not_created(nick: &Nick, refused: &NotCreated) -> String {
    match refused {
        NotCreated::TooMany { per_hour, wait } => {
            words::too_many_registrations(*per_hour, wait.as_secs())
        }
        NotCreated::Taken => words::already_registered(nick),
        NotCreated::Unavailable(_) => words::ACCOUNTS_UNAVAILABLE.to_owned(),
    }
}

async fn unregister<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    id: MemberId,
    me: &mut Me,
    account: &str,
) -> Result<(), End> {
    match shared.accounts.store.delete(account).await {
        Ok(_) => {
            info!("{}: unregistered {account}", conn.peer);
            let change = Change::Unregister {
                name: account.to_owned(),
            };
            me.account = None;
            let logged_in = None;
            tell_hub(shared, id, Request::Account { logged_in, change }).await?;
            conn.queue(&words::unregistered(account));
        }
        Err(e) => {
            warn!("{}: unregistering failed: {e}", conn.peer);
            conn.queue(words::ACCOUNTS_UNAVAILABLE);
        }
    }
    Ok(())
}

/// Tells the hub about an account change this session stored (see [`Request::Account`]).
async fn tell_hub(shared: &Services, id: MemberId, request: Request) -> Result<(), End> {
    let intent = Intent::Request { id, request };
    shared.hub.send(intent).await.map_err(|_| End::Closed)
}

/// Whether `password` is the account's; a wrong one counts as a failed login (and waits its
/// turn first, like the name prompt).
async fn check<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    account: &str,
    password: Secret,
) -> bool {
    let stored = match shared.accounts.store.find(account).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            conn.queue(words::NOT_LOGGED_IN);
            return false;
        }
        Err(e) => {
            warn!("{}: account lookup failed: {e}", conn.peer);
            conn.queue(words::ACCOUNTS_UNAVAILABLE);
            return false;
        }
    };
    let ip = conn.peer.ip().to_canonical();
    let booked = match login::book(shared, account, ip, QUEUE_MAX).await {
        Turn::Now(booked) => booked,
        Turn::After(delay, booked) => {
            conn.queue(&words::login_delay(login::ceil_secs(delay)));
            let _ = conn.flush().await;
            smol::Timer::after(delay).await;
            booked
        }
        Turn::Refused(wait) => {
            conn.queue(&words::login_busy(account, login::ceil_secs(wait)));
            return false;
        }
    };
    if login::verify(shared, &stored, password, (ip, false, booked)).await {
        return true;
    }
    warn!("{}: wrong password for {account} (in chat)", conn.peer);
    conn.queue(words::WRONG_PASSWORD_UNCHANGED);
    false
}

/// Asks for a new password twice; `None` if cancelled or refused (told why).
async fn new_password<S: Stream>(
    conn: &mut Conn<S>,
    inbox: &Inbox,
    prompt: &str,
) -> Result<Option<Secret>, End> {
    let Some(first) = ask(conn, inbox, prompt).await? else {
        return Ok(None);
    };
    if !first.long_enough() {
        conn.queue(&words::password_too_short());
        return Ok(None);
    }
    let Some(second) = ask(conn, inbox, words::TYPE_AGAIN).await? else {
        return Ok(None);
    };
    if first != second {
        conn.queue(words::PASSWORDS_DIFFER);
        return Ok(None);
    }
    Ok(Some(first))
}

/// Asks for a password: the prompt, typing hidden for telnet (a warning for others), one line.
/// `None` for an empty line (told it was cancelled).
async fn ask<S: Stream>(
    conn: &mut Conn<S>,
    inbox: &Inbox,
    prompt: &str,
) -> Result<Option<Secret>, End> {
    conn.queue(prompt);
    if !conn.is_telnet() {
        conn.queue(words::PASSWORD_VISIBLE);
    }
    conn.hide_input();
    let answer = read_answer(conn, inbox).await;
    conn.show_input();
    match answer? {
        Some(text) if !text.is_empty() => Ok(Some(Secret::new(text))),
        _ => {
            conn.queue(words::CANCELLED);
            Ok(None)
        }
    }
}

/// What woke a dialogue.
enum Wake {
    Input(std::io::Result<Option<Decoded>>),
    Outbox(Option<crate::hub::outbox::Taken>),
}

/// The user's next line, passing outbox lines to the client meanwhile. An over-long line counts
/// as an empty answer.
async fn read_answer<S: Stream>(conn: &mut Conn<S>, inbox: &Inbox) -> Result<Option<String>, End> {
    loop {
        conn.flush().await.map_err(|_| End::Gone)?;
        // Written: what was taken from the outbox no longer counts against its limit.
        inbox.sent();
        let wake = {
            let reader = &mut conn.reader;
            let stream = &mut conn.stream;
            future::race(async { Wake::Input(reader.next(stream).await) }, async {
                Wake::Outbox(inbox.recv().await)
            })
            .await
        };
        match wake {
            Wake::Outbox(Some(taken)) => conn.queue_owned(taken.bytes),
            Wake::Outbox(None) => return Err(End::Closed),
            Wake::Input(Ok(Some(Decoded::Line(text)))) => return Ok(Some(text)),
            Wake::Input(Ok(Some(Decoded::TooLong))) => return Ok(None),
            // A telnet answer to send: flushed at the top of the loop.
            Wake::Input(Ok(Some(Decoded::Reply))) => {}
            Wake::Input(Ok(None) | Err(_)) => return Err(End::Gone),
        }
    }
}

/// Checks a `/nick` target against bans and accounts: the reason to refuse, if any.
pub(super) async fn may_rename(shared: &Services, me: &Me, nick: &Nick) -> Option<String> {
    let refusal = enter::may_rename(shared, me.account.as_deref(), nick)
        .await
        .err()?;
    Some(match refusal {
        NoRename::Banned(expires_ms) => words::name_banned(nick, expires_ms),
        NoRename::LooksRegistered => words::name_like_registered(nick),
        NoRename::Registered => words::name_registered_on_rename(nick),
        NoRename::AccountsUnavailable => words::ACCOUNTS_UNAVAILABLE.to_owned(),
    })
}
