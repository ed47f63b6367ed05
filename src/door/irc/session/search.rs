//! `SEARCH [#room] [text]`: one page of a room's matches as server `NOTICE`s to the user (a
//! header, one per match with its time and sender, newest first, and a footer saying how to see
//! older ones). The paging and the storage call are `session::search`'s, shared with the other
//! doors; this module only words the page for IRC. A refusal is one `NOTICE`, never a
//! disconnect.

use std::io;

use super::render::notice_to;
use super::IrcConn;
use crate::door::irc::names::channel_name;
use crate::door::irc::numerics::{ERR_NEEDMOREPARAMS, ERR_NOTONCHANNEL};
use crate::door::irc::render::{room_for_text, split_text, Ctx};
use crate::door::line::words;
use crate::names::RoomName;
use crate::session::search::{self, Cursor, Page};
use crate::storage::{History, SearchQuery};
use crate::wire::conn::Stream;

/// Answers `SEARCH`: in `room`, or the user's only room; a new search for `query`, or (`None`)
/// older matches of the last search in that room.
pub(super) async fn answer<S: Stream>(
    io: &mut IrcConn<S>,
    history: &History,
    (ctx, rooms, cursor): (Ctx<'_>, &[RoomName], &mut Option<Box<Cursor>>),
    room: Option<RoomName>,
    query: Option<SearchQuery>,
) -> io::Result<()> {
    let out = &mut io.conn.out;
    let room = match (room, rooms) {
        (Some(room), _) if rooms.contains(&room) => room,
        (Some(room), _) => {
            let channel = channel_name(&room);
            ERR_NOTONCHANNEL.write(out, ctx.server, ctx.client, &[&channel], &[]);
            return Ok(());
        }
        (None, [only]) => only.clone(),
        (None, _) => {
            let why = "Name the room: SEARCH #room text";
            ERR_NEEDMOREPARAMS.write_text(out, ctx.server, ctx.client, &["SEARCH"], why);
            return Ok(());
        }
    };
    let channel = channel_name(&room);
    let notice = |text: &str, out: &mut Vec<u8>| notice_to(ctx.server, ctx.client, text, out);
    let page = search::page(history, &room, query, cursor, words::replayed).await;
    let out = &mut io.conn.out;
    match page {
        Page::Found { hits, query, older } => {
            let order = ["newest first", "older matches"][usize::from(older)];
            notice(&format!("Search of {channel} for {query}, {order}:"), out);
            // A line from another door may be longer than an IRC line: it comes in pieces, as
            // live.
            let room = room_for_text(ctx.server, "NOTICE", ctx.client);
            for line in String::from_utf8_lossy(&hits.text).lines() {
                for piece in split_text(line, room) {
                    notice(piece, out);
                }
            }
            if let Some(after) = &hits.removed {
                notice(&format!("Older messages were removed after {after}"), out);
            }
            notice(&footer(&channel, hits.count, hits.more), out);
        }
        Page::NothingToContinue => {
            let why = format!("search: nothing to continue in {channel}: SEARCH {channel} text");
            notice(&why, out);
        }
        // The line door's words: they name no command.
        Page::Busy => notice(words::SEARCH_BUSY, out),
        Page::TooCostly => notice(words::SEARCH_TOO_COSTLY, out),
        Page::Failed { .. } => notice("search: unavailable right now", out),
    }
    io.conn.flush().await
}

/// The last line of a page: how many matches, and how to see older ones.
fn footer(channel: &str, count: u32, more: bool) -> String {
    let found = match count {
        0 => "no matches".to_owned(),
        1 => "1 match".to_owned(),
        n => format!("{n} matches"),
    };
    if more {
        format!("End of search ({found}; SEARCH {channel} alone shows older ones)")
    } else if count == 0 {
        format!("End of search ({found})")
    } else {
        format!("End of search ({found}, no older ones)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_says_how_to_continue() {
        assert_eq!(
            footer("#lobby", 20, true),
            "End of search (20 matches; SEARCH #lobby alone shows older ones)"
        );
        assert_eq!(
            footer("#lobby", 1, false),
            "End of search (1 match, no older ones)"
        );
        assert_eq!(footer("#lobby", 0, false), "End of search (no matches)");
    }
}
