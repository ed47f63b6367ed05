//! Registration: ask for a name until the client gives a valid, free one.
//!
//! The deadline for the whole dialogue is set by the caller ([`super::run`]), which races this
//! against a timer and against shutdown.

use crate::cluster::Unavailable;
use crate::hub::outbox::Outbox;
use crate::hub::{Event, Joined, MemberId, RegisterError};
use crate::names::Nick;
use crate::protocol;
use crate::wire::codec::Decoded;
use crate::wire::conn::{Conn, Stream};

use super::{Refusal, Shared};

/// Asks for a name until the client gives a valid, free one.
pub(super) async fn register<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Shared,
    id: MemberId,
    outbox: &Outbox,
) -> Result<(Nick, Joined), Refusal> {
    conn.queue(protocol::GREETING);
    loop {
        conn.flush().await.map_err(|_| Refusal::Gone)?;
        let text = match conn.read_line().await {
            Ok(Some(Decoded::Line(text))) => text,
            Ok(Some(Decoded::TooLong)) => {
                conn.queue(&protocol::too_long(shared.config.max_line));
                conn.queue(protocol::ASK_NAME);
                continue;
            }
            Ok(None) | Err(_) => return Err(Refusal::Gone),
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
        let event = Event::Register {
            id,
            nick: nick.clone(),
            ip: conn.peer.ip().to_canonical(),
            outbox: outbox.clone(),
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
            Ok(Ok(joined)) => return Ok((nick, joined)),
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
