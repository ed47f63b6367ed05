//! History for one user: the replay on joining a room and `/history` pages, streamed from the
//! database chunk by chunk so that a client that does not read holds at most one chunk in memory.

use std::io;

use log::warn;

use super::words;
use crate::hub::Joined;
use crate::names::RoomName;
use crate::session::{self, history::PageError};
use crate::storage::History;
use crate::wire::conn::{Conn, Stream};

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
    let (count, first) = stream_page(conn, history, &joined.room, before, limit).await?;
    conn.queue(&words::history_end(count));
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
    conn.queue(&words::earlier_start(room));
    let (count, older) = stream_page(conn, history, room, oldest, n).await?;
    if count < n {
        conn.queue(&words::nothing_older(room));
    }
    conn.queue(&words::earlier_end(count));
    conn.flush().await?;
    Ok(older)
}

/// Streams one page of history to the client, chunk by chunk as the database produces it (the
/// history service). Returns how many lines were sent and the oldest id among them; history that
/// cannot be read is told, not an error.
async fn stream_page<S: Stream>(
    conn: &mut Conn<S>,
    history: &History,
    room: &RoomName,
    before: i64,
    limit: u32,
) -> io::Result<(u32, Option<i64>)> {
    match session::history::last(conn, history, (room, before, limit), words::replayed).await {
        Ok(page) => Ok((page.count, page.oldest)),
        Err(PageError::Io(e)) => Err(e),
        Err(PageError::Unavailable(e)) => {
            warn!("history read for {room} failed: {e}");
            conn.queue(words::HISTORY_UNAVAILABLE);
            Ok((0, None))
        }
    }
}
