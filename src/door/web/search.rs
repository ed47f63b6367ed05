//! `/search` on the page: one page of matches in the room, newest first, each shown as a notice
//! in the line door's words (`[time] name: text`).

use log::warn;

use super::session::WebConn;
use crate::door::line::words;
use crate::names::RoomName;
use crate::session::Output;
use crate::storage::{History, SearchQuery, StorageError};
use crate::wire::conn::Stream;

/// Matches per `/search` page, as at the line door.
const SEARCH_PAGE: u32 = 20;

/// Answers `/search TEXT`. `/search` alone (older matches) is the line door's only.
pub(super) async fn search<S: Stream>(
    conn: &mut WebConn<S>,
    history: &History,
    room: &RoomName,
    query: Option<SearchQuery>,
) -> std::io::Result<()> {
    let Some(query) = query else {
        conn.info(words::NO_SEARCH);
        return conn.flush().await;
    };
    match history
        .search((room, &query), i64::MAX, SEARCH_PAGE, words::replayed)
        .await
    {
        Ok(hits) => {
            conn.info(&words::search_start(room, &query, false));
            for line in String::from_utf8_lossy(&hits.text).lines() {
                conn.info(line);
            }
            if let Some(after) = &hits.removed {
                conn.info(&words::older_removed(after));
            }
            conn.info(&words::search_end(hits.count, false));
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
