//! One page of `/search` for any door: which search a request continues, the storage call, and
//! the refusals logged aggregated. Each door words the outcome its own way (lines, page notices,
//! IRC `NOTICE`s); this module knows no door and writes nothing to the user.

use log::warn;

use crate::names::RoomName;
use crate::storage::{Format, History, Hits, SearchQuery, StorageError};

/// Matches per page: a screenful, like `/history`'s default. Not configurable; a page is
/// formatted whole, so this also bounds what one search holds in memory.
pub const SEARCH_PAGE: u32 = 20;

/// What a search alone continues: the last search, in the room it was made in, below the
/// oldest match shown.
pub struct Cursor {
    query: SearchQuery,
    room: RoomName,
    before: i64,
}

/// What one search request came to.
pub enum Page {
    /// A page of matches (possibly none). `older`: it continues an earlier search.
    Found {
        hits: Hits,
        query: SearchQuery,
        older: bool,
    },
    /// Asked to continue, with no earlier search in this room to continue.
    NothingToContinue,
    /// Too many searches wait for the search thread; asking again continues where this was.
    Busy,
    /// The search would read more of the index than a search may.
    TooCostly,
    /// The search failed (logged).
    Failed { query: SearchQuery, older: bool },
}

/// Runs `query` in `room` from the newest message, or (`None`) continues the last search in
/// `room` below its oldest match; `cursor` is the session's and is kept up to date.
pub async fn page(
    history: &History,
    room: &RoomName,
    query: Option<SearchQuery>,
    cursor: &mut Option<Box<Cursor>>,
    format: Format,
) -> Page {
    let (query, before, older) = match (query, cursor.take()) {
        (Some(query), _) => (query, i64::MAX, false),
        (None, Some(last)) if last.room == *room => (last.query, last.before, true),
        (None, _) => return Page::NothingToContinue,
    };
    match history
        .search((room, &query), before, SEARCH_PAGE, format)
        .await
    {
        Ok(hits) => {
            if let (true, Some(oldest)) = (hits.more, hits.oldest) {
                *cursor = Some(Box::new(Cursor {
                    query: query.clone(),
                    room: room.clone(),
                    before: oldest,
                }));
            }
            Page::Found { hits, query, older }
        }
        // Limits, not faults: the log aggregated.
        Err(StorageError::SearchBusy) => {
            crate::log_throttled!(
                log::Level::Warn,
                "search busy",
                "too many searches waiting: a search was refused"
            );
            // Continuing asks for the same page again in a moment.
            if older {
                *cursor = Some(Box::new(Cursor {
                    query,
                    room: room.clone(),
                    before,
                }));
            }
            Page::Busy
        }
        Err(StorageError::SearchTooCostly) => {
            crate::log_throttled!(
                log::Level::Warn,
                "search too costly",
                "a search in {room} was stopped at its cost limit"
            );
            Page::TooCostly
        }
        Err(e) => {
            warn!("search in {room} failed: {e}");
            Page::Failed { query, older }
        }
    }
}
