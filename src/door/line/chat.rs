//! The registered part of a session: relays in both directions until the client leaves or the
//! server closes the outbox. Lines typed by the user pass the rate limit, then become commands
//! (some answered here, most sent to the hub as events) or messages.

use std::io;
use std::time::Instant;

use log::debug;
use smol::{future, Timer};

use super::account::{self, Dialogue};
use super::commands::{self, Input, Local, Parsed};
use super::{paging, room, words, End, Me};
use crate::hub::outbox::{Inbox, Taken};
use crate::hub::{Intent, Joined, Request};
use crate::metrics;
use crate::names::{Nick, RoomName};
use crate::session::{enter, Services};
use crate::vocab::{Kind, MemberId};
use crate::wire::codec::Decoded;
use crate::wire::conn::{Conn, Stream};

/// What woke the chat loop.
enum Wake {
    Input(io::Result<Option<Decoded>>),
    Outbox(Option<Taken>),
}

/// Where the user sits, how far back its history has been shown (`/history` goes on from
/// there), and where `/search` alone goes on (boxed, so an idle session carries one pointer
/// for it).
struct Seat {
    room: RoomName,
    oldest: i64,
    search: Option<Box<paging::SearchCursor>>,
}

/// The welcome, the message of the day, the room's history and its topic: what a newcomer sees
/// once. Run boxed, apart from the loop, so that `joined` and the replay's state are not part of
/// what every idle session holds.
async fn start<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    nick: &Nick,
    joined: Joined,
) -> Result<Seat, End> {
    let config = &shared.config;
    debug!("{}: registered as {nick}", conn.peer);
    conn.queue(&words::welcome(nick, &joined.room));
    for text in &config.motd {
        conn.queue(text);
    }
    let oldest = paging::replay(conn, &shared.history, &joined, config.history)
        .await
        .map_err(|_| End::Gone)?;
    if let Some(topic) = &joined.topic {
        conn.queue(&words::topic(&joined.room, &topic.text, &topic.by));
    }
    Ok(Seat {
        room: joined.room,
        oldest,
        search: None,
    })
}

/// The welcome, then the loop: lines in, output out, until the user leaves or the outbox
/// closes. `joined` comes boxed and is let go after the welcome: an argument is held for the
/// whole loop, so by value it would make every idle session larger.
pub(super) async fn chat<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    (id, nick): (MemberId, &Nick),
    me: &mut Me,
    inbox: &Inbox,
    joined: Box<Joined>,
) -> End {
    let mut seat = match Box::pin(start(conn, shared, nick, *joined)).await {
        Ok(seat) => seat,
        Err(end) => return end,
    };
    let config = &shared.config;
    // Over-long lines are logged as a warning once per session, then at debug level.
    let mut too_long_seen = false;

    loop {
        if conn.flush().await.is_err() {
            return End::Gone;
        }
        // Written: what was taken from the outbox no longer counts against its limit.
        inbox.sent();
        let wake = {
            let reader = &mut conn.reader;
            let stream = &mut conn.stream;
            let pace = &mut me.pace;
            let read = async move {
                if let Some(wait) = pace.wait(Instant::now()) {
                    Timer::after(wait).await;
                }
                Wake::Input(reader.next(stream).await)
            };
            let recv = async { Wake::Outbox(inbox.recv().await) };
            future::race(read, recv).await
        };
        let text = match wake {
            Wake::Outbox(Some(taken)) => {
                // Everything the hub appended since the last wake, written with one call.
                conn.queue_owned(taken.bytes);
                continue;
            }
            Wake::Outbox(None) => {
                let _ = conn.flush().await;
                return End::Closed;
            }
            Wake::Input(Ok(None)) => return End::Gone,
            Wake::Input(Err(e)) => {
                debug!("{}: read error: {e}", conn.peer);
                return End::Gone;
            }
            // A telnet answer (such as the timing mark Ctrl-C asks for): the loop flushes it at
            // once. It is not a line, so it does not count against the rate.
            Wake::Input(Ok(Some(Decoded::Reply))) => continue,
            Wake::Input(Ok(Some(Decoded::TooLong))) => None,
            Wake::Input(Ok(Some(Decoded::Line(text)))) => Some(text),
        };
        // Every line counts against the rate, refused and blank ones too, so that neither can
        // be used to flood the server (or its log). The pace goes on from the name prompt.
        if let (true, Some(limit)) = (me.pace.spend(Instant::now()), config.rate) {
            crate::log_throttled!(
                log::Level::Warn,
                "rate limit",
                "{nick}: over the rate limit, delaying lines"
            );
            shared.metrics.refused(metrics::Refusal::LineRate);
            conn.queue(&words::slow_down(limit.burst, limit.per_sec));
        }
        let Some(text) = text else {
            if too_long_seen {
                debug!(
                    "{nick}: another line over {} bytes refused",
                    config.max_line
                );
            } else {
                crate::log_throttled!(
                    log::Level::Warn,
                    "line too long",
                    "{nick}: line over {} bytes refused",
                    config.max_line
                );
                too_long_seen = true;
            }
            shared.metrics.refused(metrics::Refusal::LineTooLong);
            conn.queue(&words::too_long(config.max_line));
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        // Commands and their awaits run boxed, apart from the loop: as part of it, the parsed
        // command and each command's state sized every idle session for them.
        let typed = typed(conn, shared, id, me, inbox, &mut seat, text);
        if let Err(end) = Box::pin(typed).await {
            return end;
        }
    }
}

/// A line the user typed (not blank): chat, a command answered here, or a request for the hub.
async fn typed<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    id: MemberId,
    me: &mut Me,
    inbox: &Inbox,
    seat: &mut Seat,
    text: String,
) -> Result<(), End> {
    let local = match commands::parse(&text) {
        Ok(Input::Say(text)) => {
            let say = Request::Say {
                room: None,
                kind: Kind::Message,
                text,
                attached: None,
            };
            return tell_hub(shared, id, say).await;
        }
        Ok(Input::Command(Parsed::Hub(request))) => return tell_hub(shared, id, request).await,
        Ok(Input::Command(Parsed::Local(local))) => local,
        Err(e) => {
            conn.queue(&e.to_string());
            return Ok(());
        }
    };
    match local {
        Local::Register | Local::Password | Local::Unregister => {
            let dialogue = match local {
                Local::Register => Dialogue::Register,
                Local::Password => Dialogue::Password,
                _ => Dialogue::Unregister,
            };
            // Boxed, like the other rare phases: a line of chat need not carry their state.
            Box::pin(account::run(conn, shared, id, me, inbox, dialogue)).await
        }
        // The rename's checks and claim are boxed too: /nick is rare.
        Local::Nick(nick) => match Box::pin(account::may_rename(shared, me, &nick)).await {
            Some(refusal) => {
                conn.queue(&refusal);
                Ok(())
            }
            // In cluster mode the new name is claimed on every node first.
            None => match Box::pin(enter::claim(shared, &nick, id)).await {
                Ok(true) => tell_hub(shared, id, Request::Rename(nick)).await,
                Ok(false) => {
                    conn.queue(&words::name_taken_on_rename(&nick));
                    Ok(())
                }
                Err(_) => {
                    conn.queue(words::NOT_SENT_CLUSTER);
                    Ok(())
                }
            },
        },
        Local::Quit(reason) => Err(End::Quit(reason)),
        Local::History(n) => {
            let page = paging::more_history(conn, &shared.history, &seat.room, seat.oldest, n);
            if let Some(older) = Box::pin(page).await.map_err(|_| End::Gone)? {
                seat.oldest = older;
            }
            Ok(())
        }
        Local::Search(query) => {
            let page = paging::search(conn, &shared.history, &seat.room, query, &mut seat.search);
            Box::pin(page).await.map_err(|_| End::Gone)
        }
        Local::Join(to) => {
            if let Some((joined, older)) =
                Box::pin(room::switch_room(conn, shared, id, to, inbox)).await?
            {
                seat.room = joined.room;
                seat.oldest = older;
            }
            Ok(())
        }
    }
}

/// Hands a request to the hub.
async fn tell_hub(shared: &Services, id: MemberId, request: Request) -> Result<(), End> {
    let event = Intent::Request { id, request };
    shared.hub.send(event).await.map_err(|_| End::Closed)
}
