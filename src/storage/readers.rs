//! Replay and search reads: threads that each own a read-only connection and serve a queue of
//! jobs. The history runs two queues on them: replays and `/history` pages on a pool of
//! [`READERS`], searches on a thread of their own.
//!
//! WAL lets them read while the writer writes. A fixed pool (rather than the blocking pool)
//! bounds threads and connections under a join storm. Rows leave here already formatted, by the
//! [`Format`] the door asking for them gave, so a replay costs the executor no formatting.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use log::debug;
use rusqlite::{params, Connection, OpenFlags};

use super::instants;
use super::query::SearchQuery;
use super::search::{self, Hits};
use super::{Format, Row, StorageError};
use crate::vocab::Kind;

/// Reader threads, each with one read-only connection. A replay of a thousand rows from an index
/// takes about a millisecond, so two keep up with thousands of joins per second.
pub(super) const READERS: usize = 2;

/// Where a page of history starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Messages in the page.
    pub count: u32,
    /// The oldest id in the page, if any.
    pub first: Option<i64>,
    /// When the page is short (it reached the oldest message kept) and retention removed some
    /// of the room's history: the retention it was removed under (`30d`).
    pub removed: Option<Arc<str>>,
}

/// One chunk of a page, formatted.
#[derive(Debug, Clone)]
pub struct Rows {
    pub text: Vec<u8>,
    pub count: u32,
    /// The id of the last row in the chunk.
    pub last: Option<i64>,
}

pub(super) enum ReadJob {
    Span {
        room: Arc<str>,
        before: i64,
        limit: u32,
        reply: Sender<Result<Span, StorageError>>,
    },
    Rows {
        room: Arc<str>,
        from: i64,
        before: i64,
        max: u32,
        format: Format,
        reply: Sender<Result<Rows, StorageError>>,
    },
    FirstAt {
        at_ms: i64,
        reply: Sender<Result<i64, StorageError>>,
    },
    Latest {
        rooms: Vec<Arc<str>>,
        ids: (i64, i64),
        reply: Sender<Result<Vec<Option<i64>>, StorageError>>,
    },
    Search {
        room: Arc<str>,
        query: SearchQuery,
        before: i64,
        limit: u32,
        format: Format,
        reply: Sender<Result<Hits, StorageError>>,
    },
    /// Tests only: keeps a thread busy until every sender of the channel is gone.
    #[cfg(test)]
    Hold(Receiver<()>),
}

impl ReadJob {
    fn fail(self, e: StorageError) {
        match self {
            ReadJob::Span { reply, .. } => {
                let _ = reply.try_send(Err(e));
            }
            ReadJob::Rows { reply, .. } => {
                let _ = reply.try_send(Err(e));
            }
            ReadJob::FirstAt { reply, .. } => {
                let _ = reply.try_send(Err(e));
            }
            ReadJob::Latest { reply, .. } => {
                let _ = reply.try_send(Err(e));
            }
            ReadJob::Search { reply, .. } => {
                let _ = reply.try_send(Err(e));
            }
            #[cfg(test)]
            ReadJob::Hold(_) => {}
        }
    }
}

/// A reader thread: opens its read-only connection on first use and serves jobs until every
/// history handle is gone. A connection that failed is dropped and opened again for the next job.
pub(super) fn reader_loop(path: &Path, jobs: &Receiver<ReadJob>) {
    let mut conn: Option<Connection> = None;
    while let Ok(job) = jobs.recv_blocking() {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match open_reader(path) {
                Ok(c) => c,
                Err(e) => {
                    job.fail(e.into());
                    continue;
                }
            },
        };
        let ok = match job {
            ReadJob::Span {
                room,
                before,
                limit,
                reply,
            } => {
                let result = read_span(&c, &room, before, limit).map_err(StorageError::from);
                let ok = result.is_ok();
                let _ = reply.try_send(result);
                ok
            }
            ReadJob::Rows {
                room,
                from,
                before,
                max,
                format,
                reply,
            } => {
                let result =
                    read_rows(&c, &room, from, before, max, format).map_err(StorageError::from);
                let ok = result.is_ok();
                let _ = reply.try_send(result);
                ok
            }
            ReadJob::FirstAt { at_ms, reply } => {
                let result = instants::first_at(&c, at_ms).map_err(StorageError::from);
                let ok = result.is_ok();
                let _ = reply.try_send(result);
                ok
            }
            ReadJob::Latest { rooms, ids, reply } => {
                let result = instants::latest(&c, &rooms, ids).map_err(StorageError::from);
                let ok = result.is_ok();
                let _ = reply.try_send(result);
                ok
            }
            ReadJob::Search {
                room,
                query,
                before,
                limit,
                format,
                reply,
            } => {
                let result = search::read_hits(&mut c, (&room, &query), before, limit, format);
                // A search stopped for its cost leaves the connection as good as before.
                let ok = matches!(result, Ok(_) | Err(StorageError::SearchTooCostly));
                let _ = reply.try_send(result);
                ok
            }
            #[cfg(test)]
            ReadJob::Hold(release) => {
                let _ = release.recv_blocking();
                true
            }
        };
        if ok {
            conn = Some(c);
        }
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Counts the page: an index-only walk of `(room, id)` backwards from `before`. A short page
/// also says whether retention removed older messages of the room.
fn read_span(conn: &Connection, room: &str, before: i64, limit: u32) -> rusqlite::Result<Span> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*), min(id) FROM (
             SELECT id FROM messages WHERE room = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3
         )",
    )?;
    let mut span = stmt.query_row(params![room, before, i64::from(limit)], |row| {
        Ok(Span {
            count: row.get(0)?,
            first: row.get(1)?,
            removed: None,
        })
    })?;
    if span.count < limit {
        span.removed = removed_after(conn, room)?;
    }
    Ok(span)
}

/// The retention under which some of `room`'s history was removed, if any was.
pub(super) fn removed_after(conn: &Connection, room: &str) -> rusqlite::Result<Option<Arc<str>>> {
    let mut stmt = conn.prepare_cached("SELECT after FROM history_removed WHERE room = ?1")?;
    let mut rows = stmt.query([room])?;
    match rows.next()? {
        Some(row) => Ok(Some(row.get::<_, String>(0)?.into())),
        None => Ok(None),
    }
}

/// Formats a row selected as `id, sent_at, sender, kind, body, formatted` with `format`, appending it to
/// `out`; returns its id.
pub(super) fn format_row(
    row: &rusqlite::Row<'_>,
    format: Format,
    out: &mut Vec<u8>,
) -> rusqlite::Result<i64> {
    let id: i64 = row.get(0)?;
    let sent_at: String = row.get(1)?;
    let sender: String = row.get(2)?;
    let kind: String = row.get(3)?;
    let body: String = row.get(4)?;
    let formatted: Option<String> = row.get(5)?;
    let row = Row {
        id,
        sent_at: &sent_at,
        sender: &sender,
        kind: Kind::from_word(&kind),
        body: &body,
        formatted: formatted.as_deref(),
    };
    format(&row, out);
    Ok(id)
}

/// Reads and formats one chunk of a page, walking `(room, id)` forwards from `from`.
fn read_rows(
    conn: &Connection,
    room: &str,
    from: i64,
    before: i64,
    max: u32,
    format: Format,
) -> rusqlite::Result<Rows> {
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(
        "SELECT id, sent_at, sender, kind, body, formatted FROM messages
         WHERE room = ?1 AND id >= ?2 AND id < ?3 ORDER BY id LIMIT ?4",
    )?;
    let mut rows = stmt.query(params![room, from, before, i64::from(max)])?;
    let mut chunk = Rows {
        text: Vec::with_capacity(4096),
        count: 0,
        last: None,
    };
    while let Some(row) = rows.next()? {
        chunk.last = Some(format_row(row, format, &mut chunk.text)?);
        chunk.count += 1;
    }
    debug!(
        "read {} history lines of {room} in {} us",
        chunk.count,
        started.elapsed().as_micros()
    );
    Ok(chunk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::open_connection;

    fn db(rows: &[(i64, &str, &str, &str)]) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("chat.db")).unwrap();
        for (id, room, kind, body) in rows {
            conn.execute(
                "INSERT INTO messages (id, sent_at, sender, body, room, kind)
                 VALUES (?1, '2026-11-27 16:40:17.000', 'bob', ?2, ?3, ?4)",
                params![id, body, room, kind],
            )
            .unwrap();
        }
        (dir, conn)
    }

    /// A page is the newest `limit` rows of the room below `before`, other rooms skipped.
    #[test]
    fn span_counts_the_room_backwards() {
        let (_dir, conn) = db(&[
            (1, "lobby", "message", "a"),
            (2, "rust", "message", "b"),
            (3, "lobby", "message", "c"),
            (4, "lobby", "message", "d"),
            (5, "lobby", "message", "e"),
        ]);
        let span = read_span(&conn, "lobby", 5, 2).unwrap();
        assert_eq!(
            span,
            Span {
                count: 2,
                first: Some(3),
                removed: None
            }
        );
        let span = read_span(&conn, "lobby", 3, 10).unwrap();
        assert_eq!(
            span,
            Span {
                count: 1,
                first: Some(1),
                removed: None
            }
        );
        let span = read_span(&conn, "nowhere", 100, 10).unwrap();
        assert_eq!(
            span,
            Span {
                count: 0,
                first: None,
                removed: None
            }
        );
    }

    /// A door's format, for the test: the stored fields as they come.
    fn fields(row: &Row<'_>, out: &mut Vec<u8>) {
        let line = format!(
            "{} {} {} {}: {}\n",
            row.id,
            &row.sent_at[..19],
            row.kind.as_str(),
            row.sender,
            row.body
        );
        out.extend_from_slice(line.as_bytes());
    }

    /// Rows come oldest first, each formatted by the caller's format, chunked by `max`.
    #[test]
    fn rows_are_formatted_and_chunked() {
        let (_dir, conn) = db(&[
            (1, "lobby", "message", "a"),
            (2, "lobby", "action", "waves"),
            (3, "lobby", "message", "c"),
        ]);
        let chunk = read_rows(&conn, "lobby", 1, 4, 2, fields).unwrap();
        assert_eq!(chunk.count, 2);
        assert_eq!(chunk.last, Some(2));
        assert_eq!(
            String::from_utf8(chunk.text).unwrap(),
            "1 2026-11-27 16:40:17 message bob: a\n2 2026-11-27 16:40:17 action bob: waves\n"
        );
        let rest = read_rows(&conn, "lobby", 3, 4, 2, fields).unwrap();
        assert_eq!(rest.count, 1);
    }
}
