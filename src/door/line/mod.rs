//! The line door: nc, telnet and TLS clients, one line of text per message.
//!
//! A session is one future on the executor. It asks for a name ([`register`]), replays the room's
//! history ([`paging`]), then loops ([`chat`]): lines from the client become intents for the hub
//! (its `/commands` are one table, [`commands`]), and the hub's events, rendered by [`render`]
//! in the words of [`words`], go from its outbox to the client. It is the only code that writes
//! to its connection.
//!
//! It knows the wire only as [`Conn`] over some byte stream, so TCP and TLS users run the same
//! session; it never reads or changes membership, which is the hub's alone. What other doors
//! need too (logging in, taking a name, the line rate, history pages) it takes from
//! `src/session/`.

pub(crate) mod account;
mod chat;
pub mod commands;
mod paging;
mod register;
pub mod render;
mod room;
pub mod words;

use std::sync::Arc;

use log::{debug, warn};

use crate::hub::outbox::{outbox, Inbox, Outbox};
use crate::hub::render::RendererId;
use crate::hub::{Intent, Joined};
use crate::limits::ratelimit::Pace;
use crate::metrics;
use crate::names::Nick;
use crate::session::enter::{self, Unregistered as Refusal};
use crate::session::pump::Kicked;
use crate::session::{Accepted, Services};
use crate::vocab::MemberId;
use crate::wire::conn::{Conn, Stream};

/// What a session knows about its user beyond the name.
pub(crate) struct Me {
    /// Passwords may cross this connection: TLS, or loopback (see `net/server.rs`).
    pub secure: bool,
    /// The account logged in to or registered (lower case).
    pub account: Option<Arc<str>>,
    /// The line rate, from the first line typed at the name prompt to the last.
    pub pace: Pace,
}

/// How a session ended.
enum End {
    /// The client closed the connection or it broke.
    Gone,
    Quit(Option<String>),
    /// The server closed the outbox: shutting down.
    Closed,
}

/// Runs one connection to the end. Errors are the client's business and end only this session.
/// A name must be chosen by the accepted connection's deadline (set at accept, so that a TLS
/// handshake counts against it). Until registered, the connection holds its place among those
/// waiting for a name, and gives up if evicted from it; registering gives the place back.
/// `renderer` is the line door's (see [`register`](crate::door)).
///
/// Not an `async fn`, and what happens once runs boxed: a task holds every value any of its
/// awaits keeps, and an `async fn` keeps each argument twice (as the argument and as the local
/// it becomes), so the connection would be held twice. The connection and the outbox are built
/// here, and the future holds them once, beside the chat loop: that is what an idle user costs.
pub fn run<S: Stream>(
    stream: S,
    accepted: Accepted,
    shared: Arc<Services>,
    renderer: RendererId,
) -> impl std::future::Future<Output = ()> + Send {
    let id = accepted.id;
    let mut conn = Conn::new(stream, accepted.peer, shared.config.max_line);
    let (outbox, inbox) = outbox(shared.config.outbox_bytes, shared.output_budget.clone());
    // Boxed: the future keeps room for what it captures even once that is used up.
    let arrival = Box::new((accepted, renderer, outbox));
    async move {
        let arrive = Box::pin(arrive(&mut conn, &shared, arrival));
        let (nick, joined, mut me) = match arrive.await {
            Ok(done) => done,
            Err(refusal) => {
                Box::pin(refused(conn, &shared, id, refusal)).await;
                return;
            }
        };
        conn.watch(Arc::new(Kicked(inbox.state())));
        let end = chat::chat(&mut conn, &shared, (id, &nick), &mut me, &inbox, joined).await;
        Box::pin(farewell(conn, &shared, id, &nick, &inbox, end)).await;
    }
}

/// Registration, within the accepted connection's deadline, and the place among those waiting
/// for a name given back either way. `Joined` comes boxed, since the chat loop holds it only
/// until its welcome.
async fn arrive<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    arrival: Box<(Accepted, RendererId, Outbox)>,
) -> Result<(Nick, Box<Joined>, Me), Refusal> {
    let (accepted, renderer, outbox) = *arrival;
    let Accepted {
        id,
        deadline,
        secure,
        place,
        ..
    } = accepted;
    let registration =
        register::register(conn, shared, (id, renderer), &outbox, (secure, deadline));
    let registered = enter::until_cut(registration, shared, (deadline, &place)).await;
    // Registered or not, this connection no longer waits for a name; and from here only the
    // hub holds the sending side, so if the hub ever goes away the inbox closes and the session
    // ends in order.
    drop((place, outbox));
    registered.map(|(nick, joined, me)| (nick, Box::new(joined), me))
}

// The two ends of a session below are boxed, like registration: an idle session waits in the
// chat loop, and its task need not be sized for the awaits that only its end makes.

/// Tells a connection that did not register why, and closes it.
async fn refused<S: Stream>(mut conn: Conn<S>, shared: &Services, id: MemberId, refusal: Refusal) {
    let peer = conn.peer;
    match refusal {
        Refusal::Timeout => {
            shared.metrics.refused(metrics::Refusal::NameDeadline);
            let secs = shared.config.register_timeout.as_secs();
            crate::log_throttled!(
                log::Level::Warn,
                "no name in time",
                "{peer}: no name within {secs} s, disconnecting"
            );
            conn.try_last_words(&words::no_name_in_time(secs)).await;
        }
        Refusal::Evicted => {
            crate::limits::waiting::log_eviction(peer);
            // The hub may have taken a name for this connection just as it was evicted.
            let _ = shared.hub.send(Intent::Quit { id, reason: None }).await;
            conn.try_last_words(words::EVICTED_WAITING).await;
            // Closed at once, without the goodbye's linger: a flood evicts as fast as it
            // connects, and each evicted connection must give its descriptor back now.
            // A silent client has sent nothing unread, so the close does not reset the
            // connection and the line arrives.
            return;
        }
        Refusal::ShuttingDown => conn.try_last_words(words::SHUTTING_DOWN).await,
        Refusal::TooManyFailures => {
            warn!("{peer}: too many wrong passwords, disconnecting");
            conn.queue(words::TOO_MANY_FAILURES);
        }
        Refusal::Gone => {
            debug!("{peer}: left before choosing a name");
            return;
        }
    }
    Box::pin(conn.close()).await;
}

/// Ends a registered session: its goodbye, the hub told, the connection closed.
async fn farewell<S: Stream>(
    mut conn: Conn<S>,
    shared: &Services,
    id: MemberId,
    nick: &Nick,
    inbox: &Inbox,
    end: End,
) {
    let peer = conn.peer;
    // A connection that broke gets no goodbye; any other end is closed gracefully.
    let orderly = !matches!(end, End::Gone);
    if inbox.was_kicked() {
        // The hub has already removed this user and told the room.
        conn.try_last_words(words::TOO_SLOW).await;
        return;
    }
    let reason = match end {
        End::Gone | End::Closed => None,
        End::Quit(reason) => {
            conn.queue(words::BYE);
            reason
        }
    };
    let _ = shared.hub.send(Intent::Quit { id, reason }).await;
    if orderly {
        Box::pin(conn.close()).await;
    }
    debug!("{peer}: session of {nick} ended");
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::net::TcpStream;

    use smol::Async;

    use super::*;

    fn size_of_future<A, B, C, D, F: Future>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// An idle user costs its session's future (plus the socket, the outbox and its seat in
    /// the hub), so its size is pinned: 1576 bytes before the registration's values and the
    /// commands' state were moved out of it, 912 after (docs/PERFORMANCE.md). A change that
    /// makes it larger should box what it adds, or raise this bound and say why.
    #[test]
    fn an_idle_session_stays_small() {
        let size = size_of_future(run::<Async<TcpStream>>);
        assert!(
            size <= 1024,
            "the line door's session future is {size} bytes"
        );
    }
}
