//! `/register`, `/password` and `/unregister`: password dialogues inside the chat loop.
//!
//! While a dialogue waits for the user's answer, lines from the outbox keep flowing to the client
//! (a slow typist must not be dropped as a slow reader). An empty answer cancels. Passwords are
//! refused over plaintext connections unless `--plaintext-passwords`, hidden from telnet users'
//! screens, and never logged or echoed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{info, warn};
use smol::future;

use super::{End, Me, Shared};
use crate::accounts::password::Secret;
use crate::cluster::Change;
use crate::hub::moderation::Action;
use crate::hub::outbox::Inbox;
use crate::hub::{Event, MemberId};
use crate::limits::address::group;
use crate::limits::login::{Attempt, QUEUE_MAX};
use crate::limits::registrations::Slot;
use crate::names::Nick;
use crate::protocol;
use crate::storage::accounts::RoleChange;
use crate::storage::StorageError;
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
    shared: &Shared,
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
    shared: &Shared,
    id: MemberId,
    me: &mut Me,
    inbox: &Inbox,
    dialogue: Dialogue,
) -> Result<(), End> {
    if !(me.secure || shared.config.plaintext_passwords) {
        conn.queue(protocol::PLAINTEXT_REFUSED);
        return Ok(());
    }
    match dialogue {
        Dialogue::Register => register(conn, shared, id, me, inbox).await,
        Dialogue::Password | Dialogue::Unregister => {
            let Some(account) = me.account.clone() else {
                conn.queue(protocol::NOT_LOGGED_IN);
                return Ok(());
            };
            let Some(old) = ask(conn, inbox, &protocol::current_password(&account)).await? else {
                return Ok(());
            };
            if !check(conn, shared, &account, old).await {
                return Ok(());
            }
            if let Dialogue::Unregister = dialogue {
                return unregister(conn, shared, id, me, &account).await;
            }
            let Some(new) = new_password(conn, inbox, protocol::NEW_PASSWORD).await? else {
                return Ok(());
            };
            let Some(hash) = shared.accounts.hasher.hash(new).await else {
                conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
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
                    replicate(shared, id, change).await?;
                    conn.queue(protocol::PASSWORD_CHANGED);
                }
                Ok(false) => conn.queue(protocol::NOT_LOGGED_IN),
                Err(e) => {
                    warn!("{}: password change failed: {e}", conn.peer);
                    conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
                }
            }
            Ok(())
        }
    }
}

async fn register<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    id: MemberId,
    me: &mut Me,
    inbox: &Inbox,
) -> Result<(), End> {
    // The session does not track renames (the hub owns names): ask for the current one.
    let (reply, answer) = async_channel::bounded(1);
    moderate(shared, id, Action::Whoami { reply }).await?;
    let Ok(nick) = answer.recv().await else {
        return Err(End::Closed);
    };
    // A look-alike ban does not keep out a registered account's owner: a name used from
    // before the ban must not become one now.
    if let Some(ban) = super::register::name_ban(shared, &nick) {
        conn.queue(&protocol::name_banned(&nick, ban.expires_ms));
        return Ok(());
    }
    match shared.accounts.store.find_like(&nick).await {
        Ok(None) => {}
        Ok(Some(account)) if account.name != nick.key() => {
            conn.queue(&protocol::name_like_registered(&nick));
            return Ok(());
        }
        Ok(Some(_)) => {
            conn.queue(&protocol::already_registered(&nick));
            return Ok(());
        }
        Err(e) => {
            warn!("{}: account lookup failed: {e}", conn.peer);
            conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
            return Ok(());
        }
    }
    // A slot of `--registrations-per-hour`, taken before the password is asked for (so a
    // refused user types nothing in vain) and given back unless an account is made.
    let slot = match take_registration(conn, shared) {
        Ok(slot) => slot,
        Err(refusal) => {
            conn.queue(&refusal);
            return Ok(());
        }
    };
    let created = create(conn, shared, id, me, inbox, &nick).await;
    if let (Some(slot), false) = (slot, matches!(created, Ok(true))) {
        if let Ok(mut registrations) = shared.accounts.registrations.lock() {
            registrations.give_back(slot);
        }
    }
    created.map(|_| ())
}

/// Takes a registration slot for this connection's address: `Ok(None)` when the limit is off
/// or does not apply (loopback, unless `--limit-loopback`), the refusal line when used up.
fn take_registration<S: Stream>(conn: &Conn<S>, shared: &Shared) -> Result<Option<Slot>, String> {
    let config = &shared.config;
    let ip = conn.peer.ip().to_canonical();
    let Some(per_hour) = config.registrations_per_hour else {
        return Ok(None);
    };
    if ip.is_loopback() && !config.limit_loopback {
        return Ok(None);
    }
    let Ok(mut registrations) = shared.accounts.registrations.lock() else {
        return Ok(None);
    };
    match registrations.take(ip, Instant::now()) {
        Ok(slot) => Ok(Some(slot)),
        Err(wait) => {
            crate::log_throttled!(
                log::Level::Warn,
                "refused: registrations",
                "{}: /register refused: {per_hour} new accounts from this address in the last hour",
                conn.peer
            );
            Err(protocol::too_many_registrations(per_hour, wait.as_secs()))
        }
    }
}

/// The password dialogue and the new account. True when the account was made.
async fn create<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    id: MemberId,
    me: &mut Me,
    inbox: &Inbox,
    nick: &Nick,
) -> Result<bool, End> {
    let Some(password) = new_password(conn, inbox, &protocol::choose_password(nick)).await? else {
        return Ok(false);
    };
    let Some(hash) = shared.accounts.hasher.hash(password).await else {
        conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
        return Ok(false);
    };
    let created_ms = crate::clock::now_ms();
    match shared
        .accounts
        .store
        .create(nick.as_str(), hash.clone())
        .await
    {
        Ok(true) => {
            info!("{}: registered {nick}", conn.peer);
            // Registering proves ownership as a login does: this address skips the queue.
            let address = group(conn.peer.ip().to_canonical());
            shared.accounts.store.remember_address(nick.key(), address);
            let change = Change::Register {
                display: nick.to_string(),
                hash,
                created_ms,
            };
            replicate(shared, id, change).await?;
            let account: Arc<str> = nick.key().into();
            me.account = Some(account.clone());
            logged_in(shared, id, Some(account)).await?;
            conn.queue(&protocol::registered(nick));
            Ok(true)
        }
        Ok(false) => {
            conn.queue(&protocol::already_registered(nick));
            Ok(false)
        }
        Err(e) => {
            warn!("{}: registration failed: {e}", conn.peer);
            conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
            Ok(false)
        }
    }
}

async fn unregister<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
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
            replicate(shared, id, change).await?;
            me.account = None;
            logged_in(shared, id, None).await?;
            conn.queue(&protocol::unregistered(account));
        }
        Err(e) => {
            warn!("{}: unregistering failed: {e}", conn.peer);
            conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
        }
    }
    Ok(())
}

/// Hands an account change this session stored to the hub, which appends it to the cluster log
/// in cluster mode (and does nothing on a single node).
async fn replicate(shared: &Shared, id: MemberId, change: Change) -> Result<(), End> {
    moderate(shared, id, Action::Replicate(change)).await
}

/// Tells the hub which account this session is now logged in to (`None`: none), as a plain
/// user: registering or unregistering never makes an operator.
async fn logged_in(shared: &Shared, id: MemberId, account: Option<Arc<str>>) -> Result<(), End> {
    let action = Action::Account {
        account,
        operator: false,
    };
    moderate(shared, id, action).await
}

/// Sends this session's `action` to the hub; a hub that is gone ends the session.
async fn moderate(shared: &Shared, id: MemberId, action: Action) -> Result<(), End> {
    let event = Event::Moderate { id, action };
    shared.hub.send(event).await.map_err(|_| End::Closed)
}

/// Whether `password` is the account's; a wrong one counts as a failed login (and waits the
/// login delay first, like the name prompt).
async fn check<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    account: &str,
    password: Secret,
) -> bool {
    let stored = match shared.accounts.store.find(account).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            conn.queue(protocol::NOT_LOGGED_IN);
            return false;
        }
        Err(e) => {
            warn!("{}: account lookup failed: {e}", conn.peer);
            conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
            return false;
        }
    };
    let ip = conn.peer.ip().to_canonical();
    let known = shared
        .accounts
        .store
        .knows_address(account, group(ip))
        .await
        .unwrap_or(false);
    let delays = &shared.accounts.delays;
    let attempt = delays
        .lock()
        .map(|mut d| d.attempt(account, ip, known, Instant::now(), QUEUE_MAX))
        .unwrap_or(Attempt::Wait(Duration::ZERO));
    match attempt {
        Attempt::Wait(delay) if !delay.is_zero() => {
            conn.queue(&protocol::login_delay(super::register::ceil_secs(delay)));
            let _ = conn.flush().await;
            smol::Timer::after(delay).await;
        }
        Attempt::Wait(_) => {}
        Attempt::Refused(wait) => {
            let secs = super::register::ceil_secs(wait);
            conn.queue(&protocol::login_busy(account, secs));
            return false;
        }
    }
    let hasher = &shared.accounts.hasher;
    let right = if known {
        hasher.verify_first(password, stored.hash).await
    } else {
        hasher.verify(password, stored.hash).await
    };
    if right {
        if let Ok(mut d) = delays.lock() {
            d.succeeded(account, ip);
        }
        return true;
    }
    if let Ok(mut d) = delays.lock() {
        d.failed(account, ip, Instant::now());
    }
    warn!("{}: wrong password for {account} (in chat)", conn.peer);
    conn.queue(protocol::WRONG_PASSWORD_UNCHANGED);
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
        conn.queue(&protocol::password_too_short());
        return Ok(None);
    }
    let Some(second) = ask(conn, inbox, protocol::TYPE_AGAIN).await? else {
        return Ok(None);
    };
    if first != second {
        conn.queue(protocol::PASSWORDS_DIFFER);
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
        conn.queue(protocol::PASSWORD_VISIBLE);
    }
    conn.hide_input();
    let answer = read_answer(conn, inbox).await;
    conn.show_input();
    match answer? {
        Some(text) if !text.is_empty() => Ok(Some(Secret::new(text))),
        _ => {
            conn.queue(protocol::CANCELLED);
            Ok(None)
        }
    }
}

/// `/op` and `/deop`: the hub says whether the sender is an operator, this session stores the
/// role (on the account thread, however long the database is locked, while the outbox keeps
/// flowing), and then the hub applies it. The hub never waits for the disk.
pub(super) async fn set_role<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    id: MemberId,
    inbox: &Inbox,
    nick: Nick,
    operator: bool,
) -> Result<(), End> {
    let command = if operator { "/op" } else { "/deop" };
    let store = &shared.accounts.store;
    let write = store.set_operator_in_chat(nick.key(), operator);
    match operator_write(conn, shared, id, inbox, command, &nick, write).await? {
        Some(RoleChange::Done) => moderate(shared, id, Action::Opped(nick, operator)).await?,
        Some(RoleChange::NotRegistered) => conn.queue(&protocol::not_registered(nick.as_str())),
        _ => {}
    }
    Ok(())
}

/// `/unregister NAME` by an operator: like `/op`, the hub says whether the sender is an
/// operator, this session deletes the account (never one made an operator on the command line),
/// and the hub then tells whoever is logged in to it, logs it and replicates it.
pub(super) async fn remove<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    id: MemberId,
    inbox: &Inbox,
    nick: Nick,
) -> Result<(), End> {
    let write = shared.accounts.store.remove_in_chat(nick.key());
    match operator_write(conn, shared, id, inbox, "/unregister NAME", &nick, write).await? {
        Some(RoleChange::Done) => moderate(shared, id, Action::Unregistered(nick)).await?,
        Some(RoleChange::NotRegistered) => conn.queue(&protocol::no_such_account(nick.as_str())),
        _ => {}
    }
    Ok(())
}

/// An operator's change to the account `nick` (`/op`, `/deop`, `/unregister NAME`): the hub
/// says whether the sender is an operator (telling it if not), then this session runs `write`
/// on the account thread while relaying its outbox. The outcome, or `None` when the user was
/// refused or told of a failure (also when the account's operator was made on the command line,
/// which chat may not touch).
async fn operator_write<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    id: MemberId,
    inbox: &Inbox,
    command: &'static str,
    nick: &Nick,
    write: impl std::future::Future<Output = Result<RoleChange, StorageError>>,
) -> Result<Option<RoleChange>, End> {
    let (reply, answer) = async_channel::bounded(1);
    moderate(shared, id, Action::MayOp { command, reply }).await?;
    // Refused (the hub told the user why) or gone.
    if !relaying(conn, inbox, answer.recv()).await?.unwrap_or(false) {
        return Ok(None);
    }
    match relaying(conn, inbox, write).await? {
        Ok(RoleChange::MadeOnCommandLine) => {
            conn.queue(&protocol::operator_from_command_line(nick.as_str()));
            Ok(None)
        }
        Ok(done) => Ok(Some(done)),
        Err(e) => {
            warn!("{}: {command} {nick}: {e}", conn.peer);
            conn.queue(protocol::ACCOUNTS_UNAVAILABLE);
            Ok(None)
        }
    }
}

/// Awaits `work` while passing outbox lines to the client, so a session waiting for the
/// database is not dropped as a slow reader meanwhile. Input waits (TCP pushes back).
async fn relaying<S: Stream, T>(
    conn: &mut Conn<S>,
    inbox: &Inbox,
    work: impl std::future::Future<Output = T>,
) -> Result<T, End> {
    let mut work = std::pin::pin!(work);
    loop {
        conn.flush().await.map_err(|_| End::Gone)?;
        // Written: what was taken from the outbox no longer counts against its limit.
        inbox.sent();
        let step = future::or(async { Ok(work.as_mut().await) }, async {
            Err(inbox.recv().await)
        })
        .await;
        match step {
            Ok(done) => return Ok(done),
            Err(Some(taken)) => conn.queue_owned(taken.bytes),
            Err(None) => return Err(End::Closed),
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
pub(super) async fn may_rename(shared: &Shared, me: &Me, nick: &Nick) -> Option<String> {
    let own = me.account.as_deref() == Some(nick.key());
    // A look-alike ban does not keep an account's owner from its own name (see `name_ban`).
    match super::register::name_ban(shared, nick) {
        Some(ban) if ban.exact || !own => return Some(protocol::name_banned(nick, ban.expires_ms)),
        _ if own => return None,
        _ => {}
    }
    match shared.accounts.store.find_like(nick).await {
        Ok(None) => None,
        // A look-alike of the user's own account is theirs to use.
        Ok(Some(account)) if me.account.as_deref() == Some(account.name.as_str()) => None,
        Ok(Some(account)) if account.name != nick.key() => {
            Some(protocol::name_like_registered(nick))
        }
        Ok(Some(_)) => Some(protocol::name_registered_on_rename(nick)),
        Err(_) => Some(protocol::ACCOUNTS_UNAVAILABLE.to_owned()),
    }
}
