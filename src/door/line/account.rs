//! `/register`, `/password` and `/unregister`: password dialogues inside the chat loop.
//!
//! While a dialogue waits for the user's answer, lines from the outbox keep flowing to the client
//! (a slow typist must not be dropped as a slow reader). An empty answer cancels. Passwords are
//! refused over plaintext connections unless `--plaintext-passwords`, hidden from telnet users'
//! screens, and never logged or echoed.
//!
//! The dialogues are written against [`Talk`], what they need of a door (say a sentence, ask
//! for a password, read the answer), so the web door runs the same ones on its page.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use log::{info, warn};
use smol::future;

use super::{words, End, Me};
use crate::accounts::password::Secret;
use crate::hub::outbox::Inbox;
use crate::hub::{Intent, Request};
use crate::limits::login::QUEUE_MAX;
use crate::names::Nick;
use crate::session::enter;
use crate::session::login::{self, NotCreated, Turn};
use crate::session::pump::Broken;
use crate::session::Services;
use crate::vocab::{Change, MemberId};
use crate::wire::codec::Decoded;
use crate::wire::conn::{Conn, Stream};

/// Which dialogue.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dialogue {
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
    let mut talk = LineTalk { conn, inbox };
    let done = dialogue_run(
        &mut talk,
        shared,
        id,
        (me.secure, &mut me.account),
        dialogue,
    )
    .await;
    done.map_err(|broken| match broken {
        Broken::Gone => End::Gone,
        Broken::Closed => End::Closed,
    })?;
    super::register::discard_typed_ahead(conn).await;
    Ok(())
}

/// What a password dialogue needs of its door.
pub(crate) trait Talk: Send {
    /// Queues one sentence for the user.
    fn tell(&mut self, text: &str);
    /// Asks for a password (hiding the typing where the door can).
    fn ask_password(&mut self, prompt: &str);
    /// The user's answer, with outbox output flowing meanwhile; `None` for no usable answer.
    fn answer(&mut self) -> impl Future<Output = Result<Option<String>, Broken>> + Send;
    /// Writes what is queued.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
    /// The client's address, as limits and logs see it.
    fn ip(&self) -> IpAddr;
    fn peer(&self) -> SocketAddr;
}

/// The line door's side of a dialogue.
struct LineTalk<'a, S> {
    conn: &'a mut Conn<S>,
    inbox: &'a Inbox,
}

impl<S: Stream> Talk for LineTalk<'_, S> {
    fn tell(&mut self, text: &str) {
        self.conn.queue(text);
    }

    fn ask_password(&mut self, prompt: &str) {
        self.conn.queue(prompt);
        if !self.conn.is_telnet() {
            self.conn.queue(words::PASSWORD_VISIBLE);
        }
        self.conn.hide_input();
    }

    async fn answer(&mut self) -> Result<Option<String>, Broken> {
        let answer = read_answer(self.conn, self.inbox).await;
        self.conn.show_input();
        answer
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        self.conn.flush()
    }

    fn ip(&self) -> IpAddr {
        self.conn.peer.ip().to_canonical()
    }

    fn peer(&self) -> SocketAddr {
        self.conn.peer
    }
}

/// Runs a dialogue for a member (`secure`: passwords may cross its connection; `account`: the
/// account it is logged in to, changed by `/register` and `/unregister`).
pub(crate) async fn dialogue_run(
    talk: &mut impl Talk,
    shared: &Services,
    id: MemberId,
    (secure, account): (bool, &mut Option<Arc<str>>),
    dialogue: Dialogue,
) -> Result<(), Broken> {
    if !login::passwords_allowed(shared, secure) {
        talk.tell(words::PLAINTEXT_REFUSED);
        return Ok(());
    }
    match dialogue {
        Dialogue::Register => register(talk, shared, id, account).await,
        Dialogue::Password | Dialogue::Unregister => {
            let Some(name) = account.clone() else {
                talk.tell(words::NOT_LOGGED_IN);
                return Ok(());
            };
            let Some(old) = ask(talk, &words::current_password(&name)).await? else {
                return Ok(());
            };
            if !check(talk, shared, &name, old).await {
                return Ok(());
            }
            if let Dialogue::Unregister = dialogue {
                return unregister(talk, shared, id, account, &name).await;
            }
            let Some(new) = new_password(talk, words::NEW_PASSWORD).await? else {
                return Ok(());
            };
            let Some(hash) = shared.accounts.hasher.hash(new).await else {
                talk.tell(words::ACCOUNTS_UNAVAILABLE);
                return Ok(());
            };
            match shared
                .accounts
                .store
                .set_password(&name, hash.clone())
                .await
            {
                Ok(true) => {
                    info!("{}: changed the password of {name}", talk.peer());
                    let change = Change::Password {
                        name: name.to_string(),
                        hash,
                    };
                    tell_hub(shared, id, Request::Replicate(change)).await?;
                    talk.tell(words::PASSWORD_CHANGED);
                }
                Ok(false) => talk.tell(words::NOT_LOGGED_IN),
                Err(e) => {
                    warn!("{}: password change failed: {e}", talk.peer());
                    talk.tell(words::ACCOUNTS_UNAVAILABLE);
                }
            }
            Ok(())
        }
    }
}

async fn register(
    talk: &mut impl Talk,
    shared: &Services,
    id: MemberId,
    logged_in_to: &mut Option<Arc<str>>,
) -> Result<(), Broken> {
    // The session does not track renames (the hub owns names): ask for the current one.
    let (reply, answer) = async_channel::bounded(1);
    let whoami = Intent::Whoami { id, reply };
    shared.hub.send(whoami).await.map_err(|_| Broken::Closed)?;
    let Ok(nick) = answer.recv().await else {
        return Err(Broken::Closed);
    };
    // A look-alike ban does not keep out a registered account's owner: a name used from
    // before the ban must not become one now.
    if let Some(ban) = login::name_ban(shared, &nick) {
        talk.tell(&words::name_banned(&nick, ban.expires_ms));
        return Ok(());
    }
    match shared.accounts.store.find_like(&nick).await {
        Ok(None) => {}
        Ok(Some(account)) if account.name != nick.key() => {
            talk.tell(&words::name_like_registered(&nick));
            return Ok(());
        }
        Ok(Some(_)) => {
            talk.tell(&words::already_registered(&nick));
            return Ok(());
        }
        Err(e) => {
            warn!("{}: account lookup failed: {e}", talk.peer());
            talk.tell(words::ACCOUNTS_UNAVAILABLE);
            return Ok(());
        }
    }
    // A slot of `--registrations-per-hour`, taken before the password is asked for (so a
    // refused user types nothing in vain) and given back unless an account is made.
    let ip = talk.ip();
    let slot = match login::take_slot(shared, ip) {
        Ok(slot) => slot,
        Err(refused) => {
            talk.tell(&not_created(&nick, &refused));
            return Ok(());
        }
    };
    let Some(password) = new_password(talk, &words::choose_password(&nick)).await? else {
        login::give_back(shared, slot);
        return Ok(());
    };
    let Some(hash) = shared.accounts.hasher.hash(password).await else {
        login::give_back(shared, slot);
        talk.tell(words::ACCOUNTS_UNAVAILABLE);
        return Ok(());
    };
    match login::create(shared, &nick, (hash, ip), slot).await {
        Ok(change) => {
            info!("{}: registered {nick}", talk.peer());
            let account: Arc<str> = nick.key().into();
            *logged_in_to = Some(account.clone());
            let logged_in = Some(account);
            tell_hub(shared, id, Request::Account { logged_in, change }).await?;
            talk.tell(&words::registered(&nick));
        }
        Err(refused) => {
            if let NotCreated::Unavailable(e) = &refused {
                warn!("{}: registration failed: {e}", talk.peer());
            }
            talk.tell(&not_created(&nick, &refused));
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

async fn unregister(
    talk: &mut impl Talk,
    shared: &Services,
    id: MemberId,
    logged_in_to: &mut Option<Arc<str>>,
    account: &str,
) -> Result<(), Broken> {
    match shared.accounts.store.delete(account).await {
        Ok(_) => {
            info!("{}: unregistered {account}", talk.peer());
            let change = Change::Unregister {
                name: account.to_owned(),
            };
            *logged_in_to = None;
            let logged_in = None;
            tell_hub(shared, id, Request::Account { logged_in, change }).await?;
            talk.tell(&words::unregistered(account));
        }
        Err(e) => {
            warn!("{}: unregistering failed: {e}", talk.peer());
            talk.tell(words::ACCOUNTS_UNAVAILABLE);
        }
    }
    Ok(())
}

/// Tells the hub about an account change this session stored (see [`Request::Account`]).
async fn tell_hub(shared: &Services, id: MemberId, request: Request) -> Result<(), Broken> {
    let intent = Intent::Request { id, request };
    shared.hub.send(intent).await.map_err(|_| Broken::Closed)
}

/// Whether `password` is the account's; a wrong one counts as a failed login (and waits its
/// turn first, like the name prompt).
async fn check(talk: &mut impl Talk, shared: &Services, account: &str, password: Secret) -> bool {
    let stored = match shared.accounts.store.find(account).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            talk.tell(words::NOT_LOGGED_IN);
            return false;
        }
        Err(e) => {
            warn!("{}: account lookup failed: {e}", talk.peer());
            talk.tell(words::ACCOUNTS_UNAVAILABLE);
            return false;
        }
    };
    let ip = talk.ip();
    let booked = match login::book(shared, account, ip, QUEUE_MAX).await {
        Turn::Now(booked) => booked,
        Turn::After(delay, booked) => {
            talk.tell(&words::login_delay(login::ceil_secs(delay)));
            let _ = talk.flush().await;
            smol::Timer::after(delay).await;
            booked
        }
        Turn::Refused(wait) => {
            talk.tell(&words::login_busy(account, login::ceil_secs(wait)));
            return false;
        }
    };
    if login::verify(shared, &stored, password, (ip, false, booked)).await {
        return true;
    }
    warn!("{}: wrong password for {account} (in chat)", talk.peer());
    talk.tell(words::WRONG_PASSWORD_UNCHANGED);
    false
}

/// Asks for a new password twice; `None` if cancelled or refused (told why).
async fn new_password(talk: &mut impl Talk, prompt: &str) -> Result<Option<Secret>, Broken> {
    let Some(first) = ask(talk, prompt).await? else {
        return Ok(None);
    };
    if !first.long_enough() {
        talk.tell(&words::password_too_short());
        return Ok(None);
    }
    let Some(second) = ask(talk, words::TYPE_AGAIN).await? else {
        return Ok(None);
    };
    if first != second {
        talk.tell(words::PASSWORDS_DIFFER);
        return Ok(None);
    }
    Ok(Some(first))
}

/// Asks for a password: the prompt, typing hidden for telnet (a warning for others), one line.
/// `None` for an empty line (told it was cancelled).
async fn ask(talk: &mut impl Talk, prompt: &str) -> Result<Option<Secret>, Broken> {
    talk.ask_password(prompt);
    match talk.answer().await? {
        Some(text) if !text.is_empty() => Ok(Some(Secret::new(text))),
        _ => {
            talk.tell(words::CANCELLED);
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
async fn read_answer<S: Stream>(
    conn: &mut Conn<S>,
    inbox: &Inbox,
) -> Result<Option<String>, Broken> {
    loop {
        conn.flush().await.map_err(|_| Broken::Gone)?;
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
            Wake::Outbox(None) => return Err(Broken::Closed),
            Wake::Input(Ok(Some(Decoded::Line(text)))) => return Ok(Some(text)),
            Wake::Input(Ok(Some(Decoded::TooLong))) => return Ok(None),
            // A telnet answer to send: flushed at the top of the loop.
            Wake::Input(Ok(Some(Decoded::Reply))) => {}
            Wake::Input(Ok(None) | Err(_)) => return Err(Broken::Gone),
        }
    }
}

/// Checks a `/nick` target against bans and accounts: the reason to refuse, if any.
pub(super) async fn may_rename(shared: &Services, me: &Me, nick: &Nick) -> Option<String> {
    let refusal = enter::may_rename(shared, me.account.as_deref(), nick)
        .await
        .err()?;
    Some(words::no_rename(nick, &refusal))
}
