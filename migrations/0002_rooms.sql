-- Rooms and actions. Every row written before rooms existed belongs to the lobby.
-- room: the room's canonical name (lower case, no leading '#').
-- kind: 'message' for a plain line, 'action' for /me.
ALTER TABLE messages ADD COLUMN room TEXT NOT NULL DEFAULT 'lobby';
ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'
    CHECK (kind IN ('message', 'action'));
-- The join replay and /history read one room backwards from an id: this keeps that an index range
-- scan however large the table grows.
CREATE INDEX messages_room_id ON messages (room, id);
