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
use crate::names::Nick;
use crate::session::{enter, Services};
use crate::vocab::{Kind, MemberId};
use crate::wire::codec::Decoded;
use crate::wire::conn::{Conn, Stream};

/// What woke the chat loop.
enum Wake {
    Input(io::Result<Option<Decoded>>),
    Outbox(Option<Taken>),
}

pub(super) async fn chat<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    id: MemberId,
    nick: &Nick,
    me: &mut Me,
    joined: Joined,
    inbox: &Inbox,
) -> End {
    let config = &shared.config;
    debug!("{}: registered as {nick}", conn.peer);
    conn.queue(&words::welcome(nick, &joined.room));
    for text in &config.motd {
        conn.queue(text);
    }
    let mut room = joined.room.clone();
    let mut oldest = match Box::pin(paging::replay(
        conn,
        &shared.history,
        &joined,
        config.history,
    ))
    .await
    {
        Ok(oldest) => oldest,
        Err(_) => return End::Gone,
    };
    if let Some(topic) = &joined.topic {
        conn.queue(&words::topic(&joined.room, &topic.text, &topic.by));
    }
    // Over-long lines are logged as a warning once per session, then at debug level.
    let mut too_long_seen = false;
    // Where `/search` alone goes on; boxed, so an idle session carries one pointer for it.
    let mut search: Option<Box<paging::SearchCursor>> = None;

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
        let request = match commands::parse(&text) {
            Ok(Input::Say(text)) => Request::Say {
                room: None,
                kind: Kind::Message,
                text,
            },
            Ok(Input::Command(Parsed::Hub(request))) => request,
            Ok(Input::Command(Parsed::Local(local))) => match local {
                Local::Register | Local::Password | Local::Unregister => {
                    let dialogue = match local {
                        Local::Register => Dialogue::Register,
                        Local::Password => Dialogue::Password,
                        _ => Dialogue::Unregister,
                    };
                    // Boxed, like the other rare phases: an idle session need not carry its state.
                    match Box::pin(account::run(conn, shared, id, me, inbox, dialogue)).await {
                        Ok(()) => continue,
                        Err(end) => return end,
                    }
                }
                // The rename's checks and claim are boxed too: /nick is rare, and inline their
                // state (an account lookup, a cluster claim) sized every idle session for them.
                Local::Nick(nick) => match Box::pin(account::may_rename(shared, me, &nick)).await {
                    Some(refusal) => {
                        conn.queue(&refusal);
                        continue;
                    }
                    // In cluster mode the new name is claimed on every node first.
                    None => match Box::pin(enter::claim(shared, &nick, id)).await {
                        Ok(true) => Request::Rename(nick),
                        Ok(false) => {
                            conn.queue(&words::name_taken_on_rename(&nick));
                            continue;
                        }
                        Err(_) => {
                            conn.queue(words::NOT_SENT_CLUSTER);
                            continue;
                        }
                    },
                },
                Local::Quit(reason) => return End::Quit(reason),
                Local::History(n) => {
                    let page = paging::more_history(conn, &shared.history, &room, oldest, n);
                    match Box::pin(page).await {
                        Ok(Some(older)) => oldest = older,
                        Ok(None) => {}
                        Err(_) => return End::Gone,
                    }
                    continue;
                }
                // Boxed like /history: a search is rare next to chat.
                Local::Search(query) => {
                    let page = paging::search(conn, &shared.history, &room, query, &mut search);
                    if Box::pin(page).await.is_err() {
                        return End::Gone;
                    }
                    continue;
                }
                Local::Join(to) => {
                    match Box::pin(room::switch_room(conn, shared, id, to, inbox)).await {
                        Ok(Some((joined, older))) => {
                            room = joined.room;
                            oldest = older;
                            continue;
                        }
                        Ok(None) => continue,
                        Err(end) => return end,
                    }
                }
            },
            Err(e) => {
                conn.queue(&e.to_string());
                continue;
            }
        };
        let event = Intent::Request { id, request };
        // Boxed: the send future holds a whole event, which an idle session need not carry.
        if Box::pin(shared.hub.send(event)).await.is_err() {
            return End::Closed;
        }
    }
}
