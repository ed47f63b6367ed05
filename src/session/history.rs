//! History for every door: pages streamed from the database chunk by chunk, so a client that
//! does not read holds at most one chunk in server memory.
//!
//! A door gives its own [`Format`] (the line door's `[time] name: text`, a web door's JSON), which
//! runs on the reader thread beside the query, and its own markers around a page; this module
//! only moves the chunks: each is asked for once the previous one is written.

use std::io;

use crate::names::RoomName;
use crate::session::Output;
use crate::storage::{Format, History, Span, StorageError};

/// Rows per history chunk: the most a page holds in memory for one client at a time.
pub const HISTORY_CHUNK: u32 = 64;

/// What a streamed page held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streamed {
    /// Rows written.
    pub count: u32,
    /// The oldest id among them, if any.
    pub oldest: Option<i64>,
}

/// Why a page could not be streamed.
#[derive(Debug)]
pub enum PageError {
    /// The client's connection failed: the session ends.
    Io(io::Error),
    /// The database could not be read: the door says so, and the session goes on.
    Unavailable(StorageError),
}

impl From<io::Error> for PageError {
    fn from(e: io::Error) -> PageError {
        PageError::Io(e)
    }
}

/// Streams the page `span` describes (its rows before id `before`), oldest first. The span
/// ([`History::span`]) comes first so that a door can say what it knows of the page above its
/// rows: that retention removed older messages, for one.
pub async fn page<O: Output>(
    out: &mut O,
    history: &History,
    (room, before): (&RoomName, i64),
    span: &Span,
    format: Format,
) -> Result<Streamed, PageError> {
    let Some(first) = span.first else {
        return Ok(Streamed {
            count: 0,
            oldest: None,
        });
    };
    let count = range(out, history, (room, first, before), span.count, format).await?;
    Ok(Streamed {
        count,
        oldest: Some(first),
    })
}

/// Streams up to `max` messages of `room` with ids in `from..before`, oldest first (a resume:
/// what a client missed after the last id it showed). Returns how many went out.
pub async fn range<O: Output>(
    out: &mut O,
    history: &History,
    (room, mut from, before): (&RoomName, i64, i64),
    max: u32,
    format: Format,
) -> Result<u32, PageError> {
    let mut sent = 0;
    while sent < max {
        let chunk = HISTORY_CHUNK.min(max - sent);
        let rows = history
            .rows(room, (from, before), chunk, format)
            .await
            .map_err(PageError::Unavailable)?;
        sent += rows.count;
        out.queue_owned(rows.text);
        out.flush().await?;
        match next_chunk(rows.last, rows.count, chunk) {
            Some(next) => from = next,
            None => break,
        }
    }
    Ok(sent)
}

/// Where the next chunk starts: after the last row of a full chunk; a short chunk was the last.
fn next_chunk(last: Option<i64>, count: u32, asked: u32) -> Option<i64> {
    match last {
        Some(last) if count == asked => Some(last + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paging goes on after a full chunk and stops after a short or empty one.
    #[test]
    fn a_short_chunk_is_the_last() {
        assert_eq!(
            next_chunk(Some(100), HISTORY_CHUNK, HISTORY_CHUNK),
            Some(101)
        );
        assert_eq!(
            next_chunk(Some(100), HISTORY_CHUNK - 1, HISTORY_CHUNK),
            None
        );
        assert_eq!(next_chunk(None, 0, HISTORY_CHUNK), None);
    }
}
