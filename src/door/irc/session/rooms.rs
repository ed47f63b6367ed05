//! Entering rooms: the hub seats the member, then the client gets what IRC shows on a join
//! (its own `JOIN`, the topic, the names) and the room's recent history, before the room's
//! live lines.

use super::chat::Me;
use super::{history, lookup, End, IrcConn};
use crate::door::irc::caps::Cap;
use crate::door::irc::render::{replies, Ctx};
use crate::hub::outbox::Inbox;
use crate::hub::{Intent, Joined};
use crate::names::RoomName;
use crate::session::{pump, Services};
use crate::vocab::MemberId;
use crate::wire::conn::Stream;

/// Enters another room (IRC users may sit in many): `None` if the hub refused and said why in
/// the outbox.
pub(super) async fn join<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    id: MemberId,
    room: RoomName,
    inbox: &Inbox,
) -> Result<Option<Joined>, End> {
    let (reply, answer) = async_channel::bounded(1);
    let intent = Intent::Join {
        id,
        room,
        alone: false,
        reply,
    };
    shared.hub.send(intent).await.map_err(|_| End::Closed)?;
    let Ok(joined) = answer.recv().await else {
        return Ok(None);
    };
    // The join itself (`JOIN #room` from the hub's reply) is queued before the marker.
    pump::up_to_marker(&mut io.conn, inbox)
        .await
        .map_err(|_| End::Closed)?;
    Ok(Some(joined))
}

/// What follows a join: the topic, the names, and the room's recent history.
pub(super) async fn entered<S: Stream>(
    io: &mut IrcConn<S>,
    shared: &Services,
    me: &mut Me,
    joined: &Joined,
) -> std::io::Result<()> {
    let server = super::server();
    let ctx = Ctx {
        server: &server,
        client: me.nick.as_str(),
        caps: me.caps.enabled(),
    };
    if let Some(topic) = &joined.topic {
        let topic = crate::door::irc::event::Topic {
            text: topic.text.clone(),
            set_by: topic.by.clone(),
            set_at_ms: 0,
        };
        replies::topic(ctx, &joined.room, Some(&topic), false, &mut io.conn.out);
    }
    // One hub round trip, so that the names come before the replay (irctest's order, and
    // clients draw the nick list before the history).
    if lookup::joined_names(io, shared, ctx, &joined.room)
        .await
        .is_err()
    {
        return Ok(());
    }
    let caps = me.caps.enabled();
    if caps.contains(Cap::ChatHistory) {
        // The client fetches history itself, with CHATHISTORY.
        return Ok(());
    }
    let batch = caps.contains(Cap::Batch).then(|| me.batches.fresh());
    history::replay(io, shared, joined, caps, batch).await
}
