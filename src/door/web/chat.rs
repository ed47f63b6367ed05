//! The registered part of a web session: the welcome and the replay (or the resume after a
//! reconnect), then messages from the page and the outbox raced until one side ends.
//!
//! What the page types is a line as nc users type it: it goes through the line door's command
//! table (`door/line/commands.rs`), so every `/command` works the same here, and becomes the
//! same intents. The page's own messages (`history`, `who`, `rooms`, `join`) are the same
//! requests without the typing.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use log::debug;
use smol::{future, Timer};

use super::account::{dialogue_run, Dialogue, WebTalk};
use super::protocol::{self, ByeReason, ClientMsg, ErrorCode, ServerMsg};
use super::reclaim::Issued;
use super::replay::{self, OLDER_MAX};
use super::session::{Me, WebConn};
use super::ws::WsEnd;
use crate::door::line::commands::{self, Input, Local, Parsed};
use crate::door::line::words;
use crate::hub::outbox::{Inbox, Taken};
use crate::hub::{Intent, Joined, Request};
use crate::names::RoomName;
use crate::net::admission::Slot;
use crate::session::pump::Broken;
use crate::session::{enter, pump, Output, Services};
use crate::vocab::Kind;
use crate::wire::conn::Stream;

/// Lines an older page holds when the page does not say.
const OLDER_DEFAULT: u32 = 20;

/// How a session ended.
enum End {
    Gone,
    Quit,
    /// The hub closed the outbox: shutting down, or the member was removed.
    Closed,
}

/// What woke the chat loop.
enum Wake {
    Input(Result<Option<String>, WsEnd>),
    Outbox(Option<Taken>),
}

/// Where the user is: its room, the oldest line of it shown, and what `/search` alone goes
/// on with (boxed: an idle session carries one pointer for it).
struct Place {
    room: RoomName,
    oldest: i64,
    search: Option<Box<super::search::Cursor>>,
}

/// Runs a registered session to its end, and says goodbye. It owns what the session needs (it
/// runs boxed, apart from the registration: see `session::run`); `arrival` (the hub's answer
/// and the page's resume) comes boxed, and `slot` is the session's place under a forwarded
/// client's address, held to the end. Not an `async fn`, which would hold each argument twice
/// (as itself and as the local it becomes): the block holds the connection once.
#[allow(clippy::manual_async_fn)] // on purpose: see above
pub(super) fn chat<S: Stream>(
    mut conn: WebConn<S>,
    services: Arc<Services>,
    mut me: Me,
    arrival: Box<(Joined, Option<protocol::Resume>)>,
    inbox: Inbox,
    slot: Option<Slot>,
) -> impl Future<Output = ()> + Send {
    async move {
        let entering = Box::pin(enter(&mut conn, &services, &me, *arrival, &inbox));
        let end = match entering.await {
            Ok(mut place) => run(&mut conn, &services, &mut me, &mut place, &inbox).await,
            Err(end) => end,
        };
        // The end is boxed too: an idle session need not be sized for its goodbye.
        Box::pin(goodbye(conn, &services, me, &inbox, end)).await;
        drop(slot);
    }
}

/// The goodbye: the hub told, the WebSocket closed as the end calls for.
async fn goodbye<S: Stream>(
    mut conn: WebConn<S>,
    services: &Services,
    me: Me,
    inbox: &Inbox,
    end: End,
) {
    if inbox.was_kicked() {
        // The hub has removed this user already and told the room.
        let bye = (ByeReason::Limit, words::TOO_SLOW, true);
        return conn.bye(bye, CloseCode::Policy).await;
    }
    // The hub forgets the user whichever way it ended.
    let _ = services
        .hub
        .send(Intent::Quit {
            id: me.id,
            reason: None,
        })
        .await;
    match end {
        End::Quit => {
            conn.bye((ByeReason::Quit, words::BYE, false), CloseCode::Normal)
                .await;
        }
        // Its last words (a `bye`) were in the outbox.
        End::Closed => conn.close(CloseCode::Away).await,
        End::Gone => {}
    }
    debug!("{}: web session of {} ended", conn.peer, me.nick);
}

/// The welcome, the room a reconnecting page was in, and its history: the join replay, or the
/// lines after the last one the page showed.
async fn enter<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    me: &Me,
    (mut joined, resume): (Joined, Option<protocol::Resume>),
    inbox: &Inbox,
) -> Result<Place, End> {
    let config = &services.config;
    let back_to = resume.as_ref().and_then(|r| RoomName::parse(&r.room).ok());
    if let Some(room) = back_to.filter(|room| *room != joined.room) {
        if let Some(moved) = move_to(conn, services, me, room, inbox, false).await? {
            joined = moved;
        }
    }
    let room = joined.room.as_str();
    let text = words::welcome(&me.nick, &joined.room);
    let token = me.token.as_ref().map(Issued::text);
    conn.queue(&ServerMsg::Welcome {
        name: me.nick.as_str(),
        room,
        text: &text,
        token: token.as_deref(),
    });
    for line in &config.motd {
        conn.info(line);
    }
    let resumed = resume.filter(|r| RoomName::parse(&r.room).ok().as_ref() == Some(&joined.room));
    let oldest = match resumed {
        Some(resume) => {
            let history = replay::resume(
                conn,
                &services.history,
                &joined,
                (resume.last_id, config.history),
            );
            history.await
        }
        None => replay::join(conn, &services.history, &joined, config.history).await,
    };
    let oldest = oldest.map_err(|_| End::Gone)?;
    topic(conn, &joined);
    Ok(Place {
        room: joined.room,
        oldest,
        search: None,
    })
}

/// The room's topic, after its history.
fn topic<S: Stream>(conn: &mut WebConn<S>, joined: &Joined) {
    if let Some(topic) = &joined.topic {
        let text = words::topic(&joined.room, &topic.text, &topic.by);
        conn.queue(&ServerMsg::Notice(protocol::Notice {
            kind: protocol::NoticeKind::Topic,
            room: Some(joined.room.as_str()),
            name: None,
            to: None,
            topic: Some(&topic.text),
            text: &text,
        }));
    }
}

/// Moves the user to `room` (leaving its room). What the old room said before the move is
/// written first when `show_old`, else dropped (a resume: the page never showed that room).
/// `None`: the hub refused, and said why in the outbox.
async fn move_to<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    me: &Me,
    room: RoomName,
    inbox: &Inbox,
    show_old: bool,
) -> Result<Option<Joined>, End> {
    let (reply, answer) = async_channel::bounded(1);
    let intent = Intent::Join {
        id: me.id,
        room,
        alone: true,
        reply,
    };
    if services.hub.send(intent).await.is_err() {
        return Err(End::Closed);
    }
    let Ok(joined) = answer.recv().await else {
        return Ok(None);
    };
    if show_old {
        pump::up_to_marker(conn, inbox)
            .await
            .map_err(|_| End::Closed)?;
    } else {
        loop {
            let taken = inbox.recv().await.ok_or(End::Closed)?;
            if taken.at_marker {
                break;
            }
        }
    }
    Ok(Some(joined))
}

/// The loop: the page's messages against the outbox.
async fn run<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    me: &mut Me,
    place: &mut Place,
    inbox: &Inbox,
) -> End {
    let config = &services.config;
    loop {
        if conn.flush().await.is_err() {
            return End::Gone;
        }
        inbox.sent();
        let wake = {
            let socket = &mut conn.socket;
            let pace = &mut me.pace;
            let read = async move {
                if let Some(wait) = pace.wait(Instant::now()) {
                    Timer::after(wait).await;
                }
                Wake::Input(socket.recv().await)
            };
            future::race(read, async { Wake::Outbox(inbox.recv().await) }).await
        };
        let frame = match wake {
            Wake::Outbox(Some(taken)) => {
                conn.queue_owned(taken.bytes);
                continue;
            }
            Wake::Outbox(None) => return End::Closed,
            Wake::Input(Ok(Some(frame))) => frame,
            Wake::Input(Ok(None)) => return End::Gone,
            Wake::Input(Err(e)) => {
                e.log(conn.peer);
                return End::Gone;
            }
        };
        // Every message counts against the rate, refused ones too.
        if let (true, Some(limit)) = (me.pace.spend(Instant::now()), config.rate) {
            crate::log_throttled!(
                log::Level::Warn,
                "rate limit",
                "{}: over the rate limit, delaying lines",
                me.nick
            );
            services.metrics.refused(crate::metrics::Refusal::LineRate);
            conn.info(&words::slow_down(limit.burst, limit.per_sec));
        }
        let request = match protocol::parse(&frame, config.max_line) {
            Ok(ClientMsg::Say { text }) => {
                match Box::pin(typed(conn, services, me, place, inbox, &text)).await {
                    Ok(Some(request)) => request,
                    Ok(None) => continue,
                    Err(end) => return end,
                }
            }
            Ok(ClientMsg::History { before, limit, .. }) => {
                let limit = limit.unwrap_or(OLDER_DEFAULT).min(OLDER_MAX);
                let page = replay::older(conn, &services.history, &place.room, before, limit);
                match Box::pin(page).await {
                    Ok(oldest) => place.oldest = oldest.unwrap_or(place.oldest).min(place.oldest),
                    Err(_) => return End::Gone,
                }
                continue;
            }
            Ok(ClientMsg::Who { room }) => {
                let room = room.and_then(|r| RoomName::parse(&r).ok());
                Request::Who { room, page: 0 }
            }
            Ok(ClientMsg::Rooms {}) => Request::Rooms {
                page: 0,
                only: Vec::new(),
            },
            Ok(ClientMsg::Join { room }) => match RoomName::parse(room.trim_start_matches('#')) {
                Ok(room) => match Box::pin(switch(conn, services, me, place, inbox, room)).await {
                    Ok(()) => continue,
                    Err(end) => return end,
                },
                Err(e) => {
                    conn.refuse(ErrorCode::Command, &e.room_reason());
                    continue;
                }
            },
            Ok(ClientMsg::Hello { .. } | ClientMsg::Password { .. }) => {
                conn.refuse(ErrorCode::State, "already registered");
                continue;
            }
            Err(e) => {
                conn.refuse_message(&e, &services.metrics);
                continue;
            }
        };
        let intent = Intent::Request { id: me.id, request };
        if Box::pin(services.hub.send(intent)).await.is_err() {
            return End::Closed;
        }
    }
}

/// A line the user typed: chat, or a `/command` of the line door's table. `Some` is a request
/// for the hub; `None` was answered here.
async fn typed<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    me: &mut Me,
    place: &mut Place,
    inbox: &Inbox,
    text: &str,
) -> Result<Option<Request>, End> {
    let text = crate::wire::sanitize::sanitize(text);
    if text.trim().is_empty() {
        return Ok(None);
    }
    let local = match commands::parse(&text) {
        Ok(Input::Say(text)) => {
            return Ok(Some(Request::Say {
                room: None,
                kind: Kind::Message,
                text,
                attached: None,
            }))
        }
        Ok(Input::Command(Parsed::Hub(request))) => return Ok(Some(request)),
        Ok(Input::Command(Parsed::Local(local))) => local,
        Err(e) => {
            conn.refuse(ErrorCode::Command, &e.to_string());
            return Ok(None);
        }
    };
    match local {
        Local::Quit(_) => Err(End::Quit),
        Local::Join(room) => switch(conn, services, me, place, inbox, room)
            .await
            .map(|()| None),
        Local::History(n) => {
            let page = replay::older(conn, &services.history, &place.room, place.oldest, n);
            match page.await {
                Ok(Some(oldest)) => place.oldest = oldest,
                Ok(None) => {}
                Err(_) => return Err(End::Gone),
            }
            Ok(None)
        }
        Local::Nick(nick) => {
            let account = me.account.as_deref();
            if let Err(refusal) = enter::may_rename(services, account, &nick).await {
                conn.refuse(ErrorCode::Refused, &words::no_rename(&nick, &refusal));
                return Ok(None);
            }
            match enter::claim(services, &nick, me.id).await {
                Ok(true) => Ok(Some(Request::Rename(nick))),
                Ok(false) => {
                    conn.refuse(ErrorCode::Refused, &words::name_taken_on_rename(&nick));
                    Ok(None)
                }
                Err(_) => {
                    conn.refuse(ErrorCode::Refused, words::NOT_SENT_CLUSTER);
                    Ok(None)
                }
            }
        }
        Local::Search(query) => {
            let history = &services.history;
            let found = super::search::search(conn, history, &place.room, query, &mut place.search);
            found.await.map_err(|_| End::Gone)?;
            Ok(None)
        }
        Local::Register | Local::Password | Local::Unregister => {
            let dialogue = match local {
                Local::Register => Dialogue::Register,
                Local::Password => Dialogue::Password,
                _ => Dialogue::Unregister,
            };
            let max_line = services.config.max_line;
            let mut talk = WebTalk {
                conn,
                inbox,
                max_line,
            };
            let account = (me.secure, &mut me.account);
            let done = dialogue_run(&mut talk, services, me.id, account, dialogue).await;
            match done {
                Ok(()) => Ok(None),
                Err(Broken::Gone) => Err(End::Gone),
                Err(Broken::Closed) => Err(End::Closed),
            }
        }
    }
}

/// Moves to `room`: the `room` object, then its history and topic.
async fn switch<S: Stream>(
    conn: &mut WebConn<S>,
    services: &Services,
    me: &Me,
    place: &mut Place,
    inbox: &Inbox,
    room: RoomName,
) -> Result<(), End> {
    let Some(joined) = move_to(conn, services, me, room, inbox, true).await? else {
        return Ok(());
    };
    conn.queue(&ServerMsg::Room {
        room: joined.room.as_str(),
        topic: joined.topic.as_ref().map(|t| &*t.text),
    });
    let config = &services.config;
    let oldest = replay::join(conn, &services.history, &joined, config.history)
        .await
        .map_err(|_| End::Gone)?;
    topic(conn, &joined);
    *place = Place {
        room: joined.room,
        oldest,
        search: None,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use smol::Async;

    use super::*;

    fn size_of_future<A, B, C, D, E, G, F: Future>(_: impl FnOnce(A, B, C, D, E, G) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// What an idle web user's task holds is its chat phase (the session around it is a
    /// pointer), so its size is pinned: 4416 bytes for the whole session as one future before,
    /// 1560 for the chat phase after (docs/PERFORMANCE.md). A change that makes it larger
    /// should box what it adds, or raise this bound and say why.
    #[test]
    fn an_idle_session_stays_small() {
        let size = size_of_future(chat::<Async<TcpStream>>);
        assert!(size <= 1700, "the web door's chat future is {size} bytes");
    }
}
