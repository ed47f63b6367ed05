//! `CHATHISTORY` (`draft/chathistory`) over the SQLite history, for references by `msgid`.
//!
//! The layer ([`crate::door::irc::history`]) parses the request; this turns its plan into the
//! history service's two reads: the last N rows below an id (`span` then `page`) and the rows
//! of an id range (`range`), oldest first, at most [`CHATHISTORY_MAX`] rows held at once.
//! References by `timestamp=` are refused (`MSGREFTYPES=msgid`): the history is indexed by id.
//! Private lines are never stored, so a nick's history is an empty batch.

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
        Request::Targets { .. } => {
            // Which rooms had lines when: not indexed by time; an empty answer.
            layer::targets(ctx, &[], &batches.fresh(), out);
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
        let context = [subcommand, "timestamp"];
        let why = "Only msgid references are supported here";
        fail(ctx, "CHATHISTORY", "INVALID_PARAMS", &context, why, out);
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

/// The rows `plan` selects, oldest first; `None` for a plan with a `timestamp=` reference.
async fn lines(
    shared: &Services,
    room: &RoomName,
    plan: Plan,
    limit: usize,
) -> Option<Vec<Stored>> {
    let id = |b: Bound| match b {
        Bound::Id(id) => Some(id),
        Bound::Time(_) => None,
    };
    let limit = limit.min(CHATHISTORY_MAX);
    Some(match plan {
        Plan::Latest { after: None } => newest(shared, room, i64::MAX, limit).await,
        Plan::Latest { after: Some(b) } => {
            let after = id(b)?;
            let mut rows = newest(shared, room, i64::MAX, limit).await;
            rows.retain(|r| r.id > after);
            rows
        }
        Plan::Before(b) => newest(shared, room, id(b)?, limit).await,
        Plan::After(b) => oldest(shared, room, (id(b)?.saturating_add(1), i64::MAX), limit).await,
        Plan::Around(b) => {
            let at = id(b)?;
            let mut rows = newest(shared, room, at, limit / 2).await;
            let rest = limit - rows.len();
            rows.extend(oldest(shared, room, (at, i64::MAX), rest).await);
            rows
        }
        Plan::Between { from, to } => {
            let (from, to) = (id(from)?, id(to)?);
            if from <= to {
                oldest(shared, room, (from.saturating_add(1), to), limit).await
            } else {
                let mut rows = newest(shared, room, from, limit).await;
                rows.retain(|r| r.id > to);
                rows
            }
        }
    })
}

/// The newest `limit` rows of `room` below id `before`, oldest first.
async fn newest(shared: &Services, room: &RoomName, before: i64, limit: usize) -> Vec<Stored> {
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
