-- Search over the history, and what retention removed (issue 22).

-- messages_fts: a full-text index of messages.body (and room, so a search in one room does not
-- walk the other rooms' matches), FTS5 with external content: the text stays in `messages` only,
-- the index holds the words. Query it with the sqlite3 shell:
--   SELECT m.* FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
--   WHERE messages_fts MATCH 'body : "rust"' ORDER BY m.id DESC LIMIT 20;
-- unicode61 with remove_diacritics 2: case and accents are ignored (`cafe` finds `Café`).
-- columnsize = 0: no per-row size table, since matches are ordered by id, never ranked (bm25).
-- No prefix index: `rust*` merges the lists of the words it covers, fast unless it covers most
-- of the history, and prefix indexes for 2 and 3 letters would near triple the index.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    body,
    room,
    content = 'messages',
    content_rowid = 'id',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Triggers, not the server's writer, keep the index in step: rows inserted, deleted or edited
-- with the sqlite3 shell are indexed too, and retention's deletes leave no stale entries.
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body, room) VALUES (new.id, new.body, new.room);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, room)
        VALUES ('delete', old.id, old.body, old.room);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, room ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, room)
        VALUES ('delete', old.id, old.body, old.room);
    INSERT INTO messages_fts (rowid, body, room) VALUES (new.id, new.body, new.room);
END;

-- The rows already there, once: about 3 s per million messages.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

-- What --retention removed, one row per room it removed messages from. Removal goes in id order,
-- so every message of the room with an id up to through_id is gone.
-- room:       the room's canonical name.
-- through_id: the newest id removed from the room.
-- stream_id:  cluster mode: the Redis stream id of that newest removed row (NULL on a single
--             node), so a node whose newest messages were all removed still knows where it
--             stands in the cluster log.
-- log_seq:    cluster mode: that row's position in the cluster log.
-- after:      the retention in force when it was removed, as given ('30d'); replays and
--             /history say "older messages were removed after 30d".
-- removed_at: when the latest removal happened, UTC text.
-- removed:    how many messages of the room were removed, in all.
CREATE TABLE history_removed (
    room       TEXT PRIMARY KEY,
    through_id INTEGER NOT NULL,
    stream_id  TEXT,
    log_seq    INTEGER,
    after      TEXT NOT NULL,
    removed_at TEXT NOT NULL,
    removed    INTEGER NOT NULL
);
