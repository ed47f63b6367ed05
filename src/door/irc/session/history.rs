//! The replay of a room's recent history on joining, as IRC lines.
//!
//! History rows are formatted on a reader thread by a plain function ([`Format`]), which knows
//! neither the room nor the recipient's capabilities. So the IRC door's format is a compact
//! row (`id kind time sender body`), and [`Replay`], the output the rows are streamed to,
//! turns each into the `PRIVMSG` the client reads, with its `time` tag when the client
//! negotiated `server-time` and its `msgid` with `message-tags`: a replayed line looks like the
//! live one did. A client with `batch` gets the replay inside a `chathistory` batch.

use std::future::Future;
use std::io;

use log::warn;

use super::render::{notice_to, USER};
use super::IrcConn;
use crate::door::irc::caps::{Cap, CapSet};
use crate::door::irc::event::Stored;
use crate::door::irc::message::Writer;
use crate::door::irc::names::channel_name;
use crate::door::irc::render::relay::replayed;
use crate::hub::Joined;
use crate::session::history::{self, PageError};
use crate::session::{Output, Services};
use crate::storage::{Format, Row};
use crate::vocab::Kind;
use crate::wire::conn::Stream;

/// The IRC door's history row: `id kind YYYY-MM-DDTHH:MM:SS.SSS sender body`, one a line.
/// Stored bodies hold no line breaks, and names no spaces.
pub const FORMAT: Format = |row: &Row<'_>, out: &mut Vec<u8>| {
    let head = format!(
        "{} {} {} {} ",
        row.id,
        row.kind.as_str(),
        row.sent_at.replace(' ', "T"),
        row.sender
    );
    out.extend_from_slice(head.as_bytes());
    // IRC clients are shown the formatting their senders used, as live.
    out.extend_from_slice(row.formatted.unwrap_or(row.body).as_bytes());
    out.push(b'\n');
};

/// Rows in, IRC lines out, into the connection's buffer.
struct Replay<'a, S> {
    io: &'a mut IrcConn<S>,
    channel: String,
    caps: CapSet,
    server: &'a str,
    /// `batch=ID`, or empty.
    batch_tag: String,
}

impl<S: Stream> Output for Replay<'_, S> {
    fn queue_owned(&mut self, bytes: Vec<u8>) {
        let text = String::from_utf8_lossy(&bytes);
        for row in text.lines() {
            if let Some(stored) = parse_row(row) {
                replayed(&stored, &self.channel, USER, self.server).write_with(
                    self.caps,
                    &self.batch_tag,
                    &mut self.io.conn.out,
                );
            }
        }
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        self.io.conn.flush()
    }
}

/// Reads a row [`FORMAT`] wrote.
pub(super) fn parse_row(row: &str) -> Option<Stored> {
    let mut parts = row.splitn(5, ' ');
    let id = parts.next()?.parse().ok()?;
    let kind = Kind::from_word(parts.next()?);
    let at_ms = crate::door::irc::time::parse(&format!("{}Z", parts.next()?))?;
    let sender = parts.next()?.into();
    let text = parts.next().unwrap_or("").into();
    Some(Stored {
        id,
        at_ms,
        sender,
        kind,
        text,
    })
}

/// Replays the last messages of the room just joined (up to `--history`): those relayed before
/// the member arrived; its outbox carries the rest. `caps` are the client's; `batch` the id of
/// the `chathistory` batch to put them in, for a client with `batch`.
pub(super) async fn replay<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    joined: &Joined,
    caps: CapSet,
    batch: Option<String>,
) -> io::Result<()> {
    let server = super::server();
    let history = &shared.history;
    io.conn.flush().await?;
    history.wait_committed(joined.last_id).await;
    let before = joined.last_id + 1;
    let span = match history
        .span(&joined.room, before, shared.config.history)
        .await
    {
        Ok(span) => span,
        Err(e) => {
            warn!("history of {} unavailable: {e}", joined.room);
            notice_to(
                &server,
                "*",
                "The history cannot be read just now",
                &mut io.conn.out,
            );
            return Ok(());
        }
    };
    let channel = channel_name(&joined.room);
    if let Some(id) = &batch {
        Writer::new(&mut io.conn.out, "", Some(&server), "BATCH")
            .params(&[&format!("+{id}"), "chathistory"])
            .last(&channel);
    }
    let mut out = Replay {
        io,
        channel,
        caps: [Cap::ServerTime, Cap::MessageTags]
            .into_iter()
            .filter(|&cap| caps.contains(cap))
            .fold(CapSet::default(), CapSet::with),
        server: &server,
        batch_tag: batch
            .as_ref()
            .map_or_else(String::new, |id| format!("batch={id}")),
    };
    let paged = history::page(&mut out, history, (&joined.room, before), &span, FORMAT).await;
    if let Some(id) = &batch {
        Writer::new(&mut io.conn.out, "", Some(&server), "BATCH").last(&format!("-{id}"));
    }
    match paged {
        Ok(_) => Ok(()),
        Err(PageError::Io(e)) => Err(e),
        Err(PageError::Unavailable(e)) => {
            warn!("history of {} unavailable: {e}", joined.room);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let mut out = Vec::new();
        FORMAT(
            &Row {
                id: 42,
                sent_at: "2026-01-02 03:04:05.678",
                sender: "bob",
                kind: Kind::Action,
                body: "waves at  everyone",
                formatted: None,
            },
            &mut out,
        );
        let row = String::from_utf8(out).unwrap();
        let stored = parse_row(row.trim_end()).unwrap();
        assert_eq!(stored.id, 42);
        assert_eq!(stored.kind, Kind::Action);
        assert_eq!(&*stored.sender, "bob");
        assert_eq!(&*stored.text, "waves at  everyone");
        assert_eq!(
            crate::door::irc::time::format(stored.at_ms),
            "2026-01-02T03:04:05.678Z"
        );
    }
}
