//! History for one user: the replay on joining a room and `/history` pages, streamed from the
//! database chunk by chunk so that a client that does not read holds at most one chunk in memory;
//! and `/search` pages, newest first.

use std::io;

use log::warn;

use crate::hub::Joined;
use crate::names::RoomName;
use crate::protocol;
use crate::storage::{History, SearchQuery, Span, StorageError};
use crate::wire::conn::{Conn, Stream};

/// Rows per history chunk: the most a replay holds in memory for one client at a time.
const HISTORY_CHUNK: u32 = 64;

/// Matches per `/search` page: a screenful, like `/history`'s default. Not configurable; a page
/// is formatted whole, so this also bounds what one search holds in memory.
const SEARCH_PAGE: u32 = 20;

/// What `/search` alone continues: the last search, in the room it was made in, below the
/// oldest match shown.
pub(super) struct SearchCursor {
    query: SearchQuery,
    room: RoomName,
    before: i64,
}

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
    conn.queue(&protocol::history_start(&joined.room));
    let before = joined.last_id + 1;
    let span = span(conn, history, &joined.room, before, limit).await;
    // The note belongs above the rows: that is where the removed messages would be.
    if let Some(after) = &span.removed {
        conn.queue(&protocol::older_removed(after));
    }
    let (count, first) = stream_page(conn, history, &joined.room, before, span).await?;
    conn.queue(&protocol::history_end(count));
    conn.flush().await?;
    Ok(first.unwrap_or(before))
}

/// Answers `/history N`: the N messages of the room before the oldest one shown so far.
pub(super) async fn more_history<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    room: &RoomName,
    oldest: i64,
    n: u32,
) -> io::Result<Option<i64>> {
    conn.queue(&protocol::earlier_start(room));
    let span = span(conn, history, room, oldest, n).await;
    let removed = span.removed.clone();
    let (count, older) = stream_page(conn, history, room, oldest, span).await?;
    if count < n {
        conn.queue(&match removed {
            Some(after) => protocol::beginning_removed(room, &after),
            None => protocol::nothing_older(room),
        });
    }
    conn.queue(&protocol::earlier_end(count));
    conn.flush().await?;
    Ok(older)
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

/// Streams one page of history to the client, chunk by chunk as the database produces it.
/// Returns how many lines were sent and the oldest id among them.
async fn stream_page<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    room: &RoomName,
    before: i64,
    span: Span,
) -> io::Result<(u32, Option<i64>)> {
    let Some(first) = span.first else {
        return Ok((0, None));
    };
    let mut from = first;
    let mut sent = 0;
    while sent < span.count {
        let rows = match history.rows(room, from, before, HISTORY_CHUNK).await {
            Ok(rows) => rows,
            Err(e) => return Ok(unavailable(conn, room, &e)),
        };
        sent += rows.count;
        conn.queue_bytes(&rows.text);
        conn.flush().await?;
        match next_chunk(rows.last, rows.count) {
            Some(next) => from = next,
            None => break,
        }
    }
    Ok((sent, Some(first)))
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
    let (query, before, older) = match (query, cursor.take()) {
        (Some(query), _) => (query, i64::MAX, false),
        (None, Some(last)) if last.room == *room => (last.query, last.before, true),
        (None, _) => {
            conn.queue(protocol::NO_SEARCH);
            return conn.flush().await;
        }
    };
    // Asked first, so that a refused search is one line without a page around it.
    match history.search(room, &query, before, SEARCH_PAGE).await {
        Ok(hits) => {
            conn.queue(&protocol::search_start(room, &query, older));
            conn.queue_bytes(&hits.text);
            if let Some(after) = &hits.removed {
                conn.queue(&protocol::older_removed(after));
            }
            conn.queue(&protocol::search_end(hits.count, hits.more));
            if let (true, Some(oldest)) = (hits.more, hits.oldest) {
                *cursor = Some(Box::new(SearchCursor {
                    query,
                    room: room.clone(),
                    before: oldest,
                }));
            }
        }
        // Limits, not faults: one line to the user, the log aggregated.
        Err(StorageError::SearchBusy) => {
            crate::log_throttled!(
                log::Level::Warn,
                "search busy",
                "too many searches waiting: a search was refused"
            );
            conn.queue(protocol::SEARCH_BUSY);
            // `/search` alone asks for the same page again in a moment.
            if older {
                *cursor = Some(Box::new(SearchCursor {
                    query,
                    room: room.clone(),
                    before,
                }));
            }
        }
        Err(StorageError::SearchTooCostly) => {
            crate::log_throttled!(
                log::Level::Warn,
                "search too costly",
                "a search in {room} was stopped at its cost limit"
            );
            conn.queue(protocol::SEARCH_TOO_COSTLY);
        }
        Err(e) => {
            warn!("search in {room} failed: {e}");
            conn.queue(&protocol::search_start(room, &query, older));
            conn.queue(protocol::SEARCH_UNAVAILABLE);
        }
    }
    conn.flush().await
}

/// Where the next chunk starts: after the last row of a full chunk; a short chunk was the last.
fn next_chunk(last: Option<i64>, count: u32) -> Option<i64> {
    match last {
        Some(last) if count == HISTORY_CHUNK => Some(last + 1),
        _ => None,
    }
}

/// Tells the client history could not be read, and logs why.
fn unavailable<S: Stream>(
    conn: &mut Conn<S>,
    room: &RoomName,
    e: &StorageError,
) -> (u32, Option<i64>) {
    warn!("history read for {room} failed: {e}");
    conn.queue(protocol::HISTORY_UNAVAILABLE);
    (0, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paging goes on after a full chunk and stops after a short or empty one.
    #[test]
    fn a_short_chunk_is_the_last() {
        assert_eq!(next_chunk(Some(100), HISTORY_CHUNK), Some(101));
        assert_eq!(next_chunk(Some(100), HISTORY_CHUNK - 1), None);
        assert_eq!(next_chunk(None, 0), None);
    }
}
