//! History for the page: the replay on entering a room, the resume after a reconnect (the lines
//! after the last id the page showed), and older pages as the user scrolls up, as `history`
//! objects streamed chunk by chunk (docs/WEB.md).
//!
//! Rows are formatted on the reader thread by [`row`], each a JSON object ended by a comma; a
//! chunk of them is wrapped into one `history` object here, and the page's last chunk says
//! `done` and what lies before it. The rows of a `history` object carry no `room`: it is the
//! object's.

use std::io;

use log::warn;
use serde::Serialize;

use super::protocol::{HistoryPage, LineKind, Notice, NoticeKind, Older, ServerMsg};
use super::render::line_kind;
use super::session::WebConn;
use crate::hub::Joined;
use crate::names::RoomName;
use crate::session::history::{self, PageError};
use crate::session::Output;
use crate::storage::{History, Row, Span};
use crate::wire::conn::Stream;

/// Most lines a resume replays; a page away for longer starts afresh (`gap`).
pub const RESUME_MAX: u32 = 1000;

/// Most lines one `history` request may ask for.
pub const OLDER_MAX: u32 = 200;

/// The replay on entering `joined.room`: its last `limit` lines. Returns the oldest id shown.
pub(super) async fn join<S: Stream>(
    conn: &mut WebConn<S>,
    history: &History,
    joined: &Joined,
    limit: u32,
) -> io::Result<i64> {
    conn.flush().await?;
    history.wait_committed(joined.last_id).await;
    let before = joined.last_id + 1;
    let (oldest, _) = page(
        conn,
        history,
        (&joined.room, before),
        limit,
        (HistoryPage::Join, false),
    )
    .await?;
    Ok(oldest.unwrap_or(before))
}

/// The replay after a reconnect: the lines of `joined.room` after `after` (the last id the page
/// showed) up to where the live lines start. If more than [`RESUME_MAX`] were missed, or `after`
/// is newer than anything relayed, the join replay instead, marked `gap`. Returns the oldest id
/// the page has.
pub(super) async fn resume<S: Stream>(
    conn: &mut WebConn<S>,
    history: &History,
    joined: &Joined,
    (after, limit): (i64, u32),
) -> io::Result<i64> {
    conn.flush().await?;
    history.wait_committed(joined.last_id).await;
    let room = &joined.room;
    let before = joined.last_id + 1;
    let span = match history.span(room, before, RESUME_MAX).await {
        Ok(span) => span,
        Err(e) => {
            return unavailable(conn, room, &e.to_string(), HistoryPage::Resume).map(|()| before)
        }
    };
    // A page that showed a line newer than any relayed (a history restored from a backup, or a
    // made-up id) holds ids that are not this history's: it starts afresh, as after a gap.
    let beyond = after > joined.last_id;
    let missed_more = beyond
        || match span.first {
            Some(first) if span.count == RESUME_MAX && first > after.saturating_add(1) => {
                let older = history.span(room, first, 1).await;
                older.map_or(true, |older| older.first.is_some_and(|id| id > after))
            }
            _ => false,
        };
    if missed_more {
        let (oldest, _) = page(
            conn,
            history,
            (room, before),
            limit,
            (HistoryPage::Resume, true),
        )
        .await?;
        return Ok(oldest.unwrap_or(before));
    }
    let mut chunks = Chunks::new(conn, room, HistoryPage::Resume);
    let from = after.saturating_add(1).max(0);
    match history::range(&mut chunks, history, (room, from, before), RESUME_MAX, row).await {
        Ok(_) | Err(PageError::Unavailable(_)) => {}
        Err(PageError::Io(e)) => return Err(e),
    }
    done(conn, room, HistoryPage::Resume, None, false);
    conn.flush().await?;
    Ok(after)
}

/// Up to `limit` lines of `room` older than `before` (a `history` request, `/history N`).
/// Returns the oldest id sent, if any.
pub(super) async fn older<S: Stream>(
    conn: &mut WebConn<S>,
    history: &History,
    room: &RoomName,
    before: i64,
    limit: u32,
) -> io::Result<Option<i64>> {
    let limit = limit.clamp(1, OLDER_MAX);
    let (oldest, _) = page(
        conn,
        history,
        (room, before),
        limit,
        (HistoryPage::Older, false),
    )
    .await?;
    Ok(oldest)
}

/// Streams the last `limit` lines of `room` before `before`, then the closing chunk.
async fn page<S: Stream>(
    conn: &mut WebConn<S>,
    history: &History,
    (room, before): (&RoomName, i64),
    limit: u32,
    (kind, gap): (HistoryPage, bool),
) -> io::Result<(Option<i64>, u32)> {
    let span = match history.span(room, before, limit).await {
        Ok(span) => span,
        Err(e) => return unavailable(conn, room, &e.to_string(), kind).map(|()| (None, 0)),
    };
    let mut chunks = Chunks::new(conn, room, kind);
    let streamed = match history::page(&mut chunks, history, (room, before), &span, row).await {
        Ok(streamed) => streamed,
        Err(PageError::Io(e)) => return Err(e),
        Err(PageError::Unavailable(e)) => {
            return unavailable(conn, room, &e.to_string(), kind).map(|()| (None, 0))
        }
    };
    done(conn, room, kind, Some(older_than(&span, limit)), gap);
    conn.flush().await?;
    Ok((streamed.oldest, streamed.count))
}

/// What lies before a page of `span`, asked with `limit`.
fn older_than(span: &Span, limit: u32) -> Older {
    match (span.count < limit, &span.removed) {
        (false, _) => Older::More,
        (true, Some(_)) => Older::Removed,
        (true, None) => Older::None,
    }
}

/// The last chunk of a page: no lines, `done`, and what lies before.
fn done<S: Stream>(
    conn: &mut WebConn<S>,
    room: &RoomName,
    page: HistoryPage,
    older: Option<Older>,
    gap: bool,
) {
    conn.queue(&ServerMsg::History {
        room: room.as_str(),
        page,
        lines: &[],
        done: true,
        older,
        gap,
    });
}

/// Tells the page that history could not be read, and closes the page it asked for.
fn unavailable<S: Stream>(
    conn: &mut WebConn<S>,
    room: &RoomName,
    why: &str,
    page: HistoryPage,
) -> io::Result<()> {
    warn!("history read for {room} failed: {why}");
    conn.queue(&ServerMsg::Notice(Notice {
        kind: NoticeKind::Server,
        room: None,
        name: None,
        to: None,
        topic: None,
        text: crate::door::line::words::HISTORY_UNAVAILABLE,
    }));
    done(conn, room, page, Some(Older::None), false);
    Ok(())
}

/// One stored row as a line of a `history` object, and a comma. A [`crate::storage::Format`].
pub fn row(row: &Row<'_>, out: &mut Vec<u8>) {
    #[derive(Serialize)]
    struct Stored<'a> {
        id: i64,
        time: i64,
        sender: &'a str,
        kind: LineKind,
        text: &'a str,
    }
    let stored = Stored {
        id: row.id,
        time: utc_ms(row.sent_at).unwrap_or(0),
        sender: row.sender,
        kind: line_kind(row.kind),
        text: row.body,
    };
    let len = out.len();
    match serde_json::to_writer(&mut *out, &stored) {
        Ok(()) => out.push(b','),
        Err(_) => out.truncate(len),
    }
}

/// `YYYY-MM-DD HH:MM:SS.SSS` (UTC, as stored) in milliseconds since the epoch.
fn utc_ms(text: &str) -> Option<i64> {
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let millis = num(20..23).unwrap_or(0);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// An [`Output`] that wraps each chunk of formatted rows into one `history` object.
struct Chunks<'a, S> {
    conn: &'a mut WebConn<S>,
    /// `{"type":"history","room":...,"page":...,"lines":[`
    head: String,
}

impl<'a, S: Stream> Chunks<'a, S> {
    fn new(conn: &'a mut WebConn<S>, room: &RoomName, page: HistoryPage) -> Chunks<'a, S> {
        // Serializing a string or a unit variant cannot fail.
        let head = format!(
            "{{\"type\":\"history\",\"room\":{},\"page\":{},\"lines\":[",
            serde_json::to_string(room.as_str()).unwrap_or_default(),
            serde_json::to_string(&page).unwrap_or_default()
        );
        Chunks { conn, head }
    }
}

impl<S: Stream> Output for Chunks<'_, S> {
    fn queue_owned(&mut self, mut rows: Vec<u8>) {
        if rows.last() == Some(&b',') {
            rows.pop();
        }
        if rows.is_empty() {
            return;
        }
        let mut chunk = Vec::with_capacity(self.head.len() + rows.len() + 24);
        chunk.extend_from_slice(self.head.as_bytes());
        chunk.extend_from_slice(&rows);
        chunk.extend_from_slice(b"],\"done\":false}\n");
        self.conn.queue_owned(chunk);
    }

    fn flush(&mut self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        self.conn.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored times read back as the epoch milliseconds they stand for.
    #[test]
    fn stored_times_in_milliseconds() {
        assert_eq!(utc_ms("1970-01-01 00:00:00.000"), Some(0));
        assert_eq!(utc_ms("2023-11-14 22:13:20.123"), Some(1_700_000_000_123));
        assert_eq!(utc_ms("2024-02-29 00:00:01"), Some(1_709_164_801_000));
        assert_eq!(utc_ms("garbage"), None);
    }

    /// A row is a JSON object and a comma, without the room.
    #[test]
    fn a_row_is_an_object_and_a_comma() {
        let mut out = Vec::new();
        let stored = Row {
            id: 3,
            sent_at: "1970-01-01 00:00:01.500",
            sender: "bob",
            kind: crate::vocab::Kind::Message,
            body: "<b>hi</b>",
            formatted: None,
        };
        row(&stored, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"id":3,"time":1500,"sender":"bob","kind":"say","text":"<b>hi</b>"},"#
        );
    }
}
