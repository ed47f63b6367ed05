//! `/search` on the page: one page of matches in the room, newest first, each shown as a notice
//! in the line door's words (`[time] name: text`); `/search` alone shows older ones.

use super::session::WebConn;
use crate::door::line::words;
use crate::names::RoomName;
use crate::session::search::{self, Page};
use crate::session::Output;
use crate::storage::{History, SearchQuery};
use crate::wire::conn::Stream;

pub(super) use crate::session::search::Cursor;

/// Answers `/search TEXT` (from the newest message) or `/search` alone (older matches of the
/// last search in this room).
pub(super) async fn search<S: Stream>(
    conn: &mut WebConn<S>,
    history: &History,
    room: &RoomName,
    query: Option<SearchQuery>,
    cursor: &mut Option<Box<Cursor>>,
) -> std::io::Result<()> {
    match search::page(history, room, query, cursor, words::replayed).await {
        Page::Found { hits, query, older } => {
            conn.info(&words::search_start(room, &query, older));
            for line in String::from_utf8_lossy(&hits.text).lines() {
                conn.info(line);
            }
            if let Some(after) = &hits.removed {
                conn.info(&words::older_removed(after));
            }
            conn.info(&words::search_end(hits.count, hits.more));
        }
        Page::NothingToContinue => conn.info(words::NO_SEARCH),
        Page::Busy => conn.info(words::SEARCH_BUSY),
        Page::TooCostly => conn.info(words::SEARCH_TOO_COSTLY),
        Page::Failed { .. } => conn.info(words::SEARCH_UNAVAILABLE),
    }
    conn.flush().await
}
