//! The IRC door's session: the protocol layer above wired to a connection and the hub.
//!
//! A session is one future on the executor, like the line door's: it registers the client
//! ([`register`]: `CAP`, `NICK`/`USER`, SASL, the same name rules, bans and accounts as every
//! door, through `session::login` and `session::enter`), sends the welcome burst, then loops
//! ([`chat`]): commands become the hub's intents, and the hub's events, rendered by [`render`],
//! go from the outbox to the client. Unlike a line door user, an IRC client arrives in no room:
//! it joins the channels it wants ([`rooms`]: the join, topic, names, then the history,
//! replayed through [`history`]'s row format).
//!
//! Every line the client reads leaves through one ordered path: the session's write buffer, fed
//! from the outbox and by the session's own replies, in the order they were produced. A `PING`
//! waits for the hub to have handled everything sent before it, so its `PONG` comes after every
//! reply those commands caused.

mod chat;
mod chathistory;
mod history;
mod idents;
mod lookup;
mod private;
mod register;
pub mod render;
mod rooms;
mod search;

use std::sync::{Arc, OnceLock};

use log::{debug, warn};
use smol::future;

use crate::door::irc::caps::{Cap, CapSet};
use crate::door::irc::framing::{Framed, IrcReader};
use crate::door::irc::render::replies;
use crate::hub::intent::Style;
use crate::hub::outbox::{outbox, Inbox};
use crate::hub::render::{RendererId, Renderers, MAX_RENDERERS};
use crate::hub::Intent;
use crate::session::enter;
use crate::session::pump::Kicked;
use crate::session::{Accepted, Services};
use crate::wire::conn::{Conn, Stream};

/// The capabilities that change what a relayed line looks like, or whether it is sent: the IRC
/// door registers one renderer per combination of them. A room's line costs one rendering per
/// combination present in the room, not per member (clients of one program ask for the same).
const FLAVOURS: [Cap; 5] = [
    Cap::ServerTime,
    Cap::MessageTags,
    Cap::AccountTag,
    Cap::ExtendedJoin,
    Cap::AwayNotify,
];

// Every combination gets its own renderer beside the line and web doors' (one each): past
// the hub's table, a client would silently get another door's renderer.
const _: () = assert!(2 + (1 << FLAVOURS.len()) <= MAX_RENDERERS);

/// The IRC door's renderers, as registered: one per combination of [`FLAVOURS`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Styles {
    renderers: [RendererId; 1 << FLAVOURS.len()],
}

impl Styles {
    /// Registers the renderers (the server's name in their prefixes).
    pub fn register(renderers: &mut Renderers, server: &Arc<str>) -> Styles {
        let mut styles = Styles::default();
        for (n, slot) in styles.renderers.iter_mut().enumerate() {
            let lines = render::IrcLines::new(server.clone(), flavour_of(n));
            *slot = renderers.register(Arc::new(lines)).unwrap_or_default();
        }
        styles
    }

    /// The renderer for a client with `caps`, and whether it echoes its own lines.
    pub fn style(&self, caps: CapSet) -> Style {
        let n = (FLAVOURS.iter().enumerate())
            .filter(|(_, cap)| caps.contains(**cap))
            .fold(0, |n, (bit, _)| n | 1 << bit);
        Style {
            renderer: self.renderers[n],
            echo: caps.contains(Cap::EchoMessage),
        }
    }
}

/// The capabilities of renderer `n`: bit `k` stands for `FLAVOURS[k]`.
fn flavour_of(n: usize) -> CapSet {
    (FLAVOURS.iter().enumerate())
        .filter(|(bit, _)| n & 1 << bit != 0)
        .fold(CapSet::default(), |caps, (_, cap)| caps.with(*cap))
}

/// The server's name in prefixes and numerics (`--server-name`), set once at start-up. History
/// rows are formatted by a plain function on a reader thread, which has no other way to it.
static SERVER: OnceLock<Arc<str>> = OnceLock::new();

/// When the server started, for `003`.
static CREATED: OnceLock<String> = OnceLock::new();

/// Records the server's name and start time; the first call wins (one server per process).
pub fn start(server: &str) -> Arc<str> {
    let _ = CREATED.set(crate::door::irc::time::format(crate::clock::now_ms()));
    SERVER.get_or_init(|| server.into()).clone()
}

/// The server's name.
pub(crate) fn server() -> Arc<str> {
    SERVER.get_or_init(|| "smolchat".into()).clone()
}

fn created() -> &'static str {
    CREATED.get().map_or("at start-up", String::as_str)
}

/// A client connection: the line-door `Conn` for writing (its buffer, batched and abandoned
/// writes, the graceful close) and the IRC framing for reading.
pub(crate) struct IrcConn<S> {
    pub conn: Conn<S>,
    pub reader: IrcReader,
}

impl<S: Stream> IrcConn<S> {
    /// The next framed line; `None` when the client closed or the connection broke.
    pub async fn next(&mut self) -> Option<Framed> {
        match self.reader.next(&mut self.conn.stream).await {
            Ok(framed) => framed,
            Err(e) => {
                debug!("{}: read error: {e}", self.conn.peer);
                None
            }
        }
    }

    /// Sends `ERROR :text` and closes gracefully.
    pub async fn close_with(mut self, text: &str) {
        replies::error(text, &mut self.conn.out);
        Box::pin(self.conn.close()).await;
    }
}

/// How a session ended.
pub(crate) enum End {
    /// The client closed the connection or it broke.
    Gone,
    Quit(Option<String>),
    /// The server closed the outbox: shutting down, or the hub let the member go.
    Closed,
}

/// Runs one IRC connection to the end. Registration must complete by the accepted
/// connection's deadline, as at the line door's name prompt.
pub async fn run<S: Stream>(stream: S, accepted: Accepted, shared: Arc<Services>, styles: Styles) {
    let Accepted {
        id,
        peer,
        deadline,
        secure,
        tls,
        place,
    } = accepted;
    let config = &shared.config;
    let mut io = IrcConn {
        conn: Conn::new(stream, peer, config.max_line),
        reader: IrcReader::new(),
    };
    let (outbox, inbox) = outbox(config.outbox_bytes, shared.output_budget.clone());
    let server = server();
    let registration = register::register(
        &mut io,
        &shared,
        (id, styles, &server),
        &outbox,
        (secure, tls),
    );
    let registered = enter::until_cut(registration, &shared, (deadline, &place)).await;
    drop(place);
    let me = match registered {
        Ok(me) => me,
        Err(failed) => {
            let text = match failed {
                register::Failed::Timeout => {
                    shared
                        .metrics
                        .refused(crate::metrics::Refusal::NameDeadline);
                    let secs = config.register_timeout.as_secs();
                    crate::log_throttled!(
                        log::Level::Warn,
                        "no name in time",
                        "{peer}: IRC registration not complete within {secs} s, disconnecting"
                    );
                    format!("Closing link: registration timed out after {secs} s")
                }
                register::Failed::Evicted => {
                    crate::limits::waiting::log_eviction(peer);
                    let _ = shared.hub.send(Intent::Quit { id, reason: None }).await;
                    "Closing link: too many connections are registering".to_owned()
                }
                register::Failed::ShuttingDown => {
                    "Closing link: the server is shutting down".into()
                }
                register::Failed::TooManyFailures => {
                    warn!("{peer}: too many wrong passwords, disconnecting");
                    "Closing link: too many failed logins".to_owned()
                }
                register::Failed::Quit => "Closing link: quit".to_owned(),
                register::Failed::Gone => return,
            };
            io.close_with(&text).await;
            return;
        }
    };
    drop(outbox);
    io.conn.watch(Arc::new(Kicked(inbox.state())));
    let nick = me.nick.clone();
    let end = chat::chat(&mut io, &shared, id, me, &inbox).await;
    Box::pin(farewell(io, &shared, id, &nick, &inbox, end)).await;
}

/// Ends a registered session: `ERROR`, the hub told, the connection closed.
async fn farewell<S: Stream>(
    mut io: IrcConn<S>,
    shared: &Services,
    id: crate::vocab::MemberId,
    nick: &crate::names::Nick,
    inbox: &Inbox,
    end: End,
) {
    // Kept a while, so that the QUIT the hub renders after this still shows the user name.
    idents::signed_off(id);
    if inbox.was_kicked() {
        // The hub already removed this user and told its rooms; one try at the last words.
        replies::error("Closing link: not reading fast enough", &mut io.conn.out);
        let _ = future::poll_once(io.conn.flush()).await;
        return;
    }
    let orderly = !matches!(end, End::Gone);
    let (reason, text) = match end {
        End::Gone => (None, None),
        // The hub let the member go with its last words (`ERROR`, rendered): nothing to add.
        End::Closed if !shared.stopping.is_closed() => (None, None),
        End::Closed => (
            None,
            Some("Closing link: the server is shutting down".to_owned()),
        ),
        End::Quit(reason) => {
            let text = format!("Closing link: Quit: {}", reason.as_deref().unwrap_or(""));
            (reason, Some(text))
        }
    };
    let _ = shared.hub.send(Intent::Quit { id, reason }).await;
    match text {
        Some(text) => io.close_with(&text).await,
        None if orderly => Box::pin(io.conn.close()).await,
        None => {}
    }
    debug!("session of {nick} ended");
}

/// The one line a connection refused at accept gets: `ERROR`, as IRC closes a link.
pub fn turned_away(why: &crate::session::TurnedAway) -> String {
    use crate::session::TurnedAway;
    let text = match why {
        TurnedAway::Banned { .. } => "You are banned from this server".to_owned(),
        TurnedAway::TooManyConnects(max) => {
            format!("Too many connections from your address in the last minute (max {max})")
        }
        TurnedAway::TooManyFromAddress(max) => {
            format!("Too many connections from your address (max {max})")
        }
        TurnedAway::Full => "Server full, try again later".to_owned(),
    };
    format!("ERROR :Closing link: {text}\r")
}
