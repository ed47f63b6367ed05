//! `CHATHISTORY` (`draft/chathistory`) over the SQLite history, by `msgid=` and `timestamp=`.
//!
//! The layer ([`crate::door::irc::history`]) parses the request; this turns its plan into the
//! history service's two reads: the last N rows below an id (`span` then `page`) and the rows
//! of an id range (`range`), oldest first, at most [`CHATHISTORY_MAX`] rows held at once. A
//! `timestamp=` becomes an id first ([`History::first_at`](crate::storage::History::first_at):
//! ids and times rise together), so both kinds of reference take the same reads. Every read
//! stops at the last durable line. Private lines are never stored, so a nick's history is an
//! empty batch, and `TARGETS` lists only rooms.

use std::future::Future;
use std::io;

use log::warn;

use super::history::{parse_row, FORMAT};
use super::render::USER;
use super::IrcConn;
use crate::door::irc::event::Stored;
use crate::door::irc::history::{self as layer, BatchIds, Bound, Plan, Request, Target};
use crate::door::irc::names::channel_name;
use crate::door::irc::render::replies::fail;
use crate::door::irc::render::Ctx;
use crate::names::RoomName;
use crate::session::history::{self, PageError};
use crate::session::{Output, Services};
use crate::wire::conn::Stream;

/// The most rows one request returns (advertised as `CHATHISTORY=`). Not configurable: the
/// rows of one answer are held in memory together.
pub const CHATHISTORY_MAX: usize = 100;

/// Rows streamed from the history, gathered.
#[derive(Default)]
struct Gathered(Vec<Stored>);

impl Output for Gathered {
    fn queue_owned(&mut self, bytes: Vec<u8>) {
        let text = String::from_utf8_lossy(&bytes);
        self.0.extend(text.lines().filter_map(parse_row));
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}

/// Answers one `CHATHISTORY` request. `rooms` are the ones the user is in: only their history
/// is served.
pub(super) async fn answer<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    (ctx, rooms, batches): (Ctx<'_>, &[RoomName], &mut BatchIds),
    request: Request,
) {
    let out = &mut io.conn.out;
    let (subcommand, target, plan, limit) = match request {
        Request::Targets { from, to, limit } => {
            // Private lines are never stored: only rooms have history.
            let found = targets(shared, rooms, (from, to), limit).await;
            layer::targets(ctx, &found, &batches.fresh(), out);
            return;
        }
        Request::Lines {
            subcommand,
            target,
            plan,
            limit,
        } => (subcommand, target, plan, limit),
    };
    let room = match target {
        Target::Room(room) if rooms.contains(&room) => room,
        Target::Room(room) => {
            let channel = channel_name(&room);
            let context = [subcommand, channel.as_str()];
            fail(
                ctx,
                "CHATHISTORY",
                "INVALID_TARGET",
                &context,
                "Not in that channel",
                out,
            );
            return;
        }
        Target::Nick(nick) => {
            layer::batch(ctx, &nick, &[], USER, ctx.server, &batches.fresh(), out);
            return;
        }
    };
    let Some(lines) = lines(shared, &room, plan, limit).await else {
        let channel = channel_name(&room);
        let why = "History is unavailable right now";
        fail(
            ctx,
            "CHATHISTORY",
            "MESSAGE_ERROR",
            &[subcommand, &channel],
            why,
            out,
        );
        return;
    };
    let channel = channel_name(&room);
    layer::batch(
        ctx,
        &channel,
        &lines,
        USER,
        ctx.server,
        &batches.fresh(),
        out,
    );
}

/// How a reference bounds the rows: those after it (`Lower`), or those before it (`Upper`, also
/// the pivot of `AROUND`: rows before it, then from it on).
#[derive(Clone, Copy)]
enum Side {
    Lower,
    Upper,
}

/// A reference as an id, exclusive on its side: a `timestamp=` becomes the first row stored at
/// (`Upper`) or after (`Lower`) the instant, less one for `Lower`. `None` when the history
/// could not be read.
async fn id(shared: &Services, bound: Bound, side: Side) -> Option<i64> {
    let at = match (bound, side) {
        (Bound::Id(id), _) => return Some(id),
        (Bound::Time(at), Side::Lower) => at.saturating_add(1),
        (Bound::Time(at), Side::Upper) => at,
    };
    match shared.history.first_at(at).await {
        Ok(first) if matches!(side, Side::Lower) => Some(first.saturating_sub(1)),
        Ok(first) => Some(first),
        Err(e) => {
            warn!("history by time unavailable: {e}");
            None
        }
    }
}

/// The rows `plan` selects, oldest first; `None` when a `timestamp=` could not be looked up.
async fn lines(
    shared: &Services,
    room: &RoomName,
    plan: Plan,
    limit: usize,
) -> Option<Vec<Stored>> {
    let limit = limit.min(CHATHISTORY_MAX);
    Some(match plan {
        Plan::Latest { after: None } => newest(shared, room, i64::MAX, limit).await,
        Plan::Latest { after: Some(b) } => {
            let after = id(shared, b, Side::Lower).await?;
            let mut rows = newest(shared, room, i64::MAX, limit).await;
            rows.retain(|r| r.id > after);
            rows
        }
        Plan::Before(b) => newest(shared, room, id(shared, b, Side::Upper).await?, limit).await,
        Plan::After(b) => {
            let after = id(shared, b, Side::Lower).await?;
            oldest(shared, room, (after.saturating_add(1), i64::MAX), limit).await
        }
        Plan::Around(b) => {
            let at = id(shared, b, Side::Upper).await?;
            let mut rows = newest(shared, room, at, limit / 2).await;
            let rest = limit - rows.len();
            rows.extend(oldest(shared, room, (at, i64::MAX), rest).await);
            rows
        }
        Plan::Between { from, to } => {
            // Which way the client reads: by the references' values when they are of one
            // kind, else by where they fall in the history.
            let forwards = match (from, to) {
                (Bound::Id(a), Bound::Id(b)) | (Bound::Time(a), Bound::Time(b)) => a <= b,
                _ => id(shared, from, Side::Upper).await? <= id(shared, to, Side::Upper).await?,
            };
            if forwards {
                let low = id(shared, from, Side::Lower).await?;
                let high = id(shared, to, Side::Upper).await?;
                oldest(shared, room, (low.saturating_add(1), high), limit).await
            } else {
                let high = id(shared, from, Side::Upper).await?;
                let low = id(shared, to, Side::Lower).await?;
                let mut rows = newest(shared, room, high, limit).await;
                rows.retain(|r| r.id > low);
                rows
            }
        }
    })
}

/// Answers `TARGETS`: of `rooms` (the client's), those with lines stored strictly between the
/// two instants, with their newest line's instant, in the order of those instants, at most
/// `limit`.
async fn targets(
    shared: &Services,
    rooms: &[RoomName],
    (from, to): (i64, i64),
    limit: usize,
) -> Vec<(RoomName, i64)> {
    let (Some(low), Some(high)) = (
        id(shared, Bound::Time(from), Side::Lower).await,
        id(shared, Bound::Time(to), Side::Upper).await,
    ) else {
        return Vec::new();
    };
    let before = high.min(visible(shared));
    let latest = match shared
        .history
        .latest(rooms, (low.saturating_add(1), before))
        .await
    {
        Ok(latest) => latest,
        Err(e) => {
            warn!("history targets unavailable: {e}");
            return Vec::new();
        }
    };
    let mut found: Vec<(RoomName, i64)> = rooms
        .iter()
        .zip(latest)
        .filter_map(|(room, at)| Some((room.clone(), at?)))
        .collect();
    found.sort_by_key(|(_, at)| *at);
    found.truncate(limit);
    found
}

/// One past the newest id a client may be shown: every read stops at the last durable line, as
/// a join's replay does.
fn visible(shared: &Services) -> i64 {
    shared.history.committed().saturating_add(1)
}

/// The newest `limit` rows of `room` below id `before`, oldest first.
async fn newest(shared: &Services, room: &RoomName, before: i64, limit: usize) -> Vec<Stored> {
    let before = before.min(visible(shared));
    let mut gathered = Gathered::default();
    let Ok(limit) = u32::try_from(limit) else {
        return Vec::new();
    };
    if limit == 0 {
        return Vec::new();
    }
    match shared.history.span(room, before, limit).await {
        Ok(span) => {
            let read = history::page(
                &mut gathered,
                &shared.history,
                (room, before),
                &span,
                FORMAT,
            );
            log_failure(room, read.await.err());
        }
        Err(e) => log_failure(room, Some(PageError::Unavailable(e))),
    }
    gathered.0
}

/// The oldest `limit` rows of `room` with ids in `from..before`.
async fn oldest(shared: &Services, room: &RoomName, ids: (i64, i64), limit: usize) -> Vec<Stored> {
    let ids = (ids.0, ids.1.min(visible(shared)));
    let mut gathered = Gathered::default();
    let Ok(limit) = u32::try_from(limit) else {
        return Vec::new();
    };
    let read = history::range(
        &mut gathered,
        &shared.history,
        (room, ids.0, ids.1),
        limit,
        FORMAT,
    );
    log_failure(room, read.await.err());
    gathered.0
}

fn log_failure(room: &RoomName, error: Option<PageError>) {
    match error {
        None => {}
        Some(PageError::Unavailable(e)) => warn!("history of {room} unavailable: {e}"),
        Some(PageError::Io(e)) => warn!("history of {room}: {e}"),
    }
}
