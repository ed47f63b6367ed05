//! `/search` on the page: one page of matches in the room, newest first, each shown as a notice
//! in the line door's words (`[time] name: text`); `/search` alone shows older ones.

use log::warn;

use super::session::WebConn;
use crate::door::line::words;
use crate::names::RoomName;
use crate::session::Output;
use crate::storage::{History, SearchQuery, StorageError};
use crate::wire::conn::Stream;

/// Matches per `/search` page, as at the line door.
const SEARCH_PAGE: u32 = 20;

/// What `/search` alone continues: the last search, in the room it was made in, below the
/// oldest match shown.
pub(super) struct Cursor {
    query: SearchQuery,
    room: RoomName,
    before: i64,
}

/// Answers `/search TEXT` (from the newest message) or `/search` alone (older matches of the
/// last search in this room).
pub(super) async fn search<S: Stream>(
    conn: &mut WebConn<S>,
    history: &History,
    room: &RoomName,
    query: Option<SearchQuery>,
    cursor: &mut Option<Box<Cursor>>,
) -> std::io::Result<()> {
    let (query, before, older) = match (query, cursor.take()) {
        (Some(query), _) => (query, i64::MAX, false),
        (None, Some(last)) if last.room == *room => (last.query, last.before, true),
        (None, _) => {
            conn.info(words::NO_SEARCH);
            return conn.flush().await;
        }
    };
    match history
        .search((room, &query), before, SEARCH_PAGE, words::replayed)
        .await
    {
        Ok(hits) => {
            conn.info(&words::search_start(room, &query, older));
            for line in String::from_utf8_lossy(&hits.text).lines() {
                conn.info(line);
            }
            if let Some(after) = &hits.removed {
                conn.info(&words::older_removed(after));
            }
            conn.info(&words::search_end(hits.count, hits.more));
            if let (true, Some(oldest)) = (hits.more, hits.oldest) {
                *cursor = Some(Box::new(Cursor {
                    query,
                    room: room.clone(),
                    before: oldest,
                }));
            }
        }
        Err(StorageError::SearchBusy) => conn.info(words::SEARCH_BUSY),
        Err(StorageError::SearchTooCostly) => conn.info(words::SEARCH_TOO_COSTLY),
        Err(e) => {
            warn!("search in {room} failed: {e}");
            conn.info(words::SEARCH_UNAVAILABLE);
        }
    }
    conn.flush().await
}
