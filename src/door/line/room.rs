//! Room switching (`/join`): everything the old room said before the move is written first, then
//! the new room's history, then its live lines.

use super::{paging, words, End};
use crate::hub::outbox::Inbox;
use crate::hub::{Intent, Joined};
use crate::names::RoomName;
use crate::session::{pump, Services};
use crate::vocab::MemberId;
use crate::wire::conn::{Conn, Stream};

/// Moves to another room. Returns the room and the oldest id shown, `None` if the hub refused
/// (it said why in the outbox).
pub(super) async fn switch_room<S: Stream>(
    conn: &mut Conn<S>,
    shared: &Services,
    id: MemberId,
    room: RoomName,
    inbox: &Inbox,
) -> Result<Option<(Joined, i64)>, End> {
    let (reply_tx, reply_rx) = async_channel::bounded(1);
    if shared
        .hub
        .send(Intent::Join {
            id,
            room,
            alone: true,
            reply: reply_tx,
        })
        .await
        .is_err()
    {
        return Err(End::Closed);
    }
    // No reply means the hub refused (already there) and said why in the outbox.
    let Ok(joined) = reply_rx.recv().await else {
        return Ok(None);
    };
    // The hub queued a marker where the move happened: lines before it belong to the old room.
    pump::up_to_marker(conn, inbox)
        .await
        .map_err(|_| End::Closed)?;
    let oldest = paging::replay(conn, &shared.history, &joined, shared.config.history)
        .await
        .map_err(|_| End::Gone)?;
    if let Some(topic) = &joined.topic {
        conn.queue(&words::topic(&joined.room, &topic.text, &topic.by));
    }
    Ok(Some((joined, oldest)))
}
