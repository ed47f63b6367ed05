//! History for one user: the replay on joining a room, `/history` pages and `/search` pages, in
//! the line door's words around the rows the history service streams.

use std::io;

use log::warn;

use super::words;
use crate::hub::Joined;
use crate::names::RoomName;
use crate::session::history::{self, PageError, Streamed};
use crate::session::search::{self, Page};
use crate::storage::{History, SearchQuery, Span, StorageError};
use crate::wire::conn::{Conn, Stream};

pub(super) use crate::session::search::Cursor as SearchCursor;

/// Writes the last `limit` messages of the room a user just joined between start and end markers.
/// Returns the oldest id shown (or where the replay ended).
pub(super) async fn replay<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    joined: &Joined,
    limit: u32,
) -> io::Result<i64> {
    // The hub has handed everything up to `last_id` to the writer; wait until it is readable.
    // What is queued so far (the welcome) goes out first, in case that takes a moment.
    conn.flush().await?;
    history.wait_committed(joined.last_id).await;
    conn.queue(&words::history_start(&joined.room));
    let before = joined.last_id + 1;
    let span = span(conn, history, &joined.room, before, limit).await;
    // The note belongs above the rows: that is where the removed messages would be.
    if let Some(after) = &span.removed {
        conn.queue(&words::older_removed(after));
    }
    let shown = stream_page(conn, history, (&joined.room, before), &span).await?;
    conn.queue(&words::history_end(shown.count));
    conn.flush().await?;
    Ok(shown.oldest.unwrap_or(before))
}

/// Answers `/history N`: the N messages of the room before the oldest one shown so far.
pub(super) async fn more_history<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    room: &RoomName,
    oldest: i64,
    n: u32,
) -> io::Result<Option<i64>> {
    conn.queue(&words::earlier_start(room));
    let span = span(conn, history, room, oldest, n).await;
    let shown = stream_page(conn, history, (room, oldest), &span).await?;
    if shown.count < n {
        conn.queue(&match &span.removed {
            Some(after) => words::beginning_removed(room, after),
            None => words::nothing_older(room),
        });
    }
    conn.queue(&words::earlier_end(shown.count));
    conn.flush().await?;
    Ok(shown.oldest)
}

/// Where a page of history starts and how long it is. A failed read is told to the client
/// and counts as an empty page.
async fn span<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    room: &RoomName,
    before: i64,
    limit: u32,
) -> Span {
    match history.span(room, before, limit).await {
        Ok(span) => span,
        Err(e) => {
            unavailable(conn, room, &e);
            Span {
                count: 0,
                first: None,
                removed: None,
            }
        }
    }
}

/// Streams one page of history to the client, chunk by chunk as the database produces it (the
/// history service). History that cannot be read is told, not an error.
async fn stream_page<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    (room, before): (&RoomName, i64),
    span: &Span,
) -> io::Result<Streamed> {
    match history::page(conn, history, (room, before), span, words::replayed).await {
        Ok(page) => Ok(page),
        Err(PageError::Io(e)) => Err(e),
        Err(PageError::Unavailable(e)) => {
            unavailable(conn, room, &e);
            Ok(Streamed {
                count: 0,
                oldest: None,
            })
        }
    }
}

/// Answers `/search TEXT` (a new search, from the newest message) or `/search` alone (older
/// matches of the last search in this room): one page of matches, newest first.
pub(super) async fn search<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    room: &RoomName,
    query: Option<SearchQuery>,
    cursor: &mut Option<Box<SearchCursor>>,
) -> io::Result<()> {
    match search::page(history, room, query, cursor, words::replayed).await {
        Page::Found { hits, query, older } => {
            conn.queue(&words::search_start(room, &query, older));
            conn.queue_bytes(&hits.text);
            if let Some(after) = &hits.removed {
                conn.queue(&words::older_removed(after));
            }
            conn.queue(&words::search_end(hits.count, hits.more));
        }
        Page::NothingToContinue => conn.queue(words::NO_SEARCH),
        Page::Busy => conn.queue(words::SEARCH_BUSY),
        Page::TooCostly => conn.queue(words::SEARCH_TOO_COSTLY),
        Page::Failed { query, older } => {
            conn.queue(&words::search_start(room, &query, older));
            conn.queue(words::SEARCH_UNAVAILABLE);
        }
    }
    conn.flush().await
}

/// Tells the client history could not be read, and logs why.
fn unavailable<S: Stream>(conn: &mut Conn<S>, room: &RoomName, e: &StorageError) {
    warn!("history read for {room} failed: {e}");
    conn.queue(words::HISTORY_UNAVAILABLE);
}
