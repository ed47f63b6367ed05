//! Taking a name, for every door: claimed cluster-wide, then registered with the hub; and the
//! checks a new name passes before a rename.
//!
//! In cluster mode a name is claimed in Redis before the hub is asked (two users on two nodes
//! racing for one name: Redis decides, one wins), and released again if the hub refuses it or the
//! session gives up. On a single node the hub alone decides.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use log::warn;
use smol::{future, Timer};

use crate::cluster::Unavailable;
use crate::hub::intent::{Identity, Style};
use crate::hub::outbox::Outbox;
use crate::hub::{Intent, Joined, Refused};
use crate::limits::waiting::Place;
use crate::names::Nick;
use crate::session::login;
use crate::session::Services;
use crate::vocab::MemberId;

/// Why a name was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotEntered {
    /// The hub refused it (taken, a look-alike in use, held for a dropped owner).
    Refused(Refused),
    /// Cluster mode: another node's member has it.
    TakenElsewhere,
    /// Cluster mode: the cluster is unreachable, so the name cannot be checked.
    ClusterPaused,
}

/// Claims `nick` cluster-wide (in cluster mode) and registers member `id` with the hub under it,
/// in the lobby.
pub async fn enter(
    services: &Services,
    (id, nick): (MemberId, &Nick),
    outbox: &Outbox,
    (identity, style): (Identity, Style),
) -> Result<Joined, NotEntered> {
    match claim(services, nick, id).await {
        Ok(true) => {}
        Ok(false) => return Err(NotEntered::TakenElsewhere),
        Err(Unavailable) => return Err(NotEntered::ClusterPaused),
    }
    let (reply, answer) = async_channel::bounded(1);
    let intent = Intent::Register {
        id,
        nick: nick.clone(),
        outbox: outbox.clone(),
        identity,
        style,
        reply,
    };
    let answer = match services.hub.send(intent).await {
        Ok(()) => answer.recv().await.unwrap_or(Err(Refused::ShuttingDown)),
        Err(_) => Err(Refused::ShuttingDown),
    };
    if answer.is_err() {
        release(services, nick, id);
    }
    answer.map_err(NotEntered::Refused)
}

/// In cluster mode, claims `nick` on every node for member `id`; `Ok(false)` if another node's
/// member has it. On a single node, always yes (the hub decides).
pub async fn claim(services: &Services, nick: &Nick, id: MemberId) -> Result<bool, Unavailable> {
    match &services.cluster {
        Some(link) => link.claim(nick, id).await,
        None => Ok(true),
    }
}

/// Frees a claim the hub did not take up.
pub fn release(services: &Services, nick: &Nick, id: MemberId) {
    if let Some(link) = &services.cluster {
        link.release(nick, id);
    }
}

/// Why a member may not rename itself to a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRename {
    Banned(Option<i64>),
    /// It looks like a registered name.
    LooksRegistered,
    /// It is somebody else's registered name: logging in with it is the way.
    Registered,
    AccountsUnavailable,
}

/// Checks a new name against bans and accounts for a member logged in to `account` (its own
/// account's name, and look-alikes of it, are its to use).
pub async fn may_rename(
    services: &Services,
    account: Option<&str>,
    nick: &Nick,
) -> Result<(), NoRename> {
    let own = account == Some(nick.key());
    // A look-alike ban does not keep an account's owner from its own name (see `NameBan`).
    match login::name_ban(services, nick) {
        Some(ban) if ban.exact || !own => {
            services
                .metrics
                .refused(crate::metrics::Refusal::BannedName);
            return Err(NoRename::Banned(ban.expires_ms));
        }
        _ if own => return Ok(()),
        _ => {}
    }
    match services.accounts.store.find_like(nick).await {
        Ok(None) => Ok(()),
        // A look-alike of the member's own account is its to use.
        Ok(Some(found)) if account == Some(found.name.as_str()) => Ok(()),
        Ok(Some(found)) if found.name != nick.key() => Err(NoRename::LooksRegistered),
        Ok(Some(_)) => Err(NoRename::Registered),
        Err(e) => {
            warn!("account lookup for /nick {nick} failed: {e}");
            Err(NoRename::AccountsUnavailable)
        }
    }
}

/// What cuts a registration short from outside the door's dialogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The accepted connection's deadline passed without a name.
    Timeout,
    /// The server began stopping.
    ShuttingDown,
    /// Evicted to make room for a newcomer: too many connections were waiting for a name.
    Evicted,
}

/// Why a door's registration did not complete: a [`Cut`] from outside, or the end of the
/// door's own dialogue. Each door words and counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unregistered {
    Timeout,
    /// Evicted to make room for a newcomer: too many connections were waiting for a name.
    Evicted,
    /// The third wrong password on this connection.
    TooManyFailures,
    ShuttingDown,
    /// The client left.
    Gone,
}

impl From<Cut> for Unregistered {
    fn from(cut: Cut) -> Unregistered {
        match cut {
            Cut::Timeout => Unregistered::Timeout,
            Cut::ShuttingDown => Unregistered::ShuttingDown,
            Cut::Evicted => Unregistered::Evicted,
        }
    }
}

/// A door's registration raced against the deadline, the shutdown and an eviction, whichever
/// ends first; the door maps a [`Cut`] into its own refusal. Boxed here, so that a session's
/// task holds a pointer to this once-only phase rather than its whole state (what an idle user
/// costs is the chat loop's size).
pub fn until_cut<'a, T, E: From<Cut> + 'a>(
    registration: impl Future<Output = Result<T, E>> + 'a,
    services: &'a Services,
    (deadline, place): (Instant, &'a Place),
) -> Pin<Box<impl Future<Output = Result<T, E>> + 'a>> {
    let cut = |cut: Cut| Err(E::from(cut));
    Box::pin(future::or(
        future::or(registration, async move {
            Timer::at(deadline).await;
            cut(Cut::Timeout)
        }),
        future::or(
            async move {
                let _ = services.stopping.recv().await;
                cut(Cut::ShuttingDown)
            },
            async move {
                place.evicted().await;
                cut(Cut::Evicted)
            },
        ),
    ))
}
