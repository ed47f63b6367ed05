//! The replay of a room's recent history on joining, as IRC lines.
//!
//! History rows are formatted on a reader thread by a plain function ([`Format`]), which knows
//! neither the room nor the recipient's capabilities. So the IRC door's format is a compact
//! row (`id kind time sender body`), and [`Replay`], the output the rows are streamed to,
//! turns each into the `PRIVMSG` the client reads, with its `time` tag when the client
//! negotiated `server-time`: a replayed line looks like the live one did.

use std::future::Future;
use std::io;

use log::warn;

use super::render::{notice_to, USER};
use super::IrcConn;
use crate::door::irc::caps::{Cap, CapSet};
use crate::door::irc::event::Stored;
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
    out.extend_from_slice(row.body.as_bytes());
    out.push(b'\n');
};

/// Rows in, IRC lines out, into the connection's buffer.
struct Replay<'a, S> {
    io: &'a mut IrcConn<S>,
    channel: String,
    caps: CapSet,
    server: &'a str,
}

impl<S: Stream> Output for Replay<'_, S> {
    fn queue_owned(&mut self, bytes: Vec<u8>) {
        let text = String::from_utf8_lossy(&bytes);
        for row in text.lines() {
            if let Some(stored) = parse_row(row) {
                replayed(&stored, &self.channel, USER, self.server)
                    .write(self.caps, &mut self.io.conn.out);
            }
        }
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        self.io.conn.flush()
    }
}

/// Reads a row [`FORMAT`] wrote.
fn parse_row(row: &str) -> Option<Stored> {
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
/// the member arrived; its outbox carries the rest.
pub(super) async fn replay<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    joined: &Joined,
    timed: bool,
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
    let caps = if timed {
        CapSet::of(&[Cap::ServerTime])
    } else {
        CapSet::default()
    };
    let mut out = Replay {
        io,
        channel: channel_name(&joined.room),
        caps,
        server: &server,
    };
    match history::page(&mut out, history, (&joined.room, before), &span, FORMAT).await {
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
