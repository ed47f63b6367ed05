-- The search index trails the server's commits (issue 23).
--
-- The server's history writer commits lines without indexing them, relays them once the commit
-- is on disk, and indexes them for search in a transaction of its own right after (while that
-- commit's fsync is in flight). A crash in between leaves committed rows that the index does not
-- cover yet; they are indexed when the server next opens the file. To know exactly which rows
-- those are, the index keeps a mark:
--
-- search_indexed: exactly one row. through_id: every message with an id up to it is in
-- messages_fts, and none after it. Rows past it are indexed by the server (at start, or right
-- after its commit) and the mark moved, in one transaction, so no row is ever indexed twice or
-- never.
CREATE TABLE search_indexed (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    through_id INTEGER NOT NULL
);

-- Until now every row was indexed in the transaction that stored it.
INSERT INTO search_indexed (id, through_id) SELECT 1, coalesce(max(id), 0) FROM messages;

-- The triggers (on for every connection but the server's writer: the sqlite3 shell, scripts)
-- keep the mark true: a row inserted there is indexed together with any rows the server had
-- committed but not indexed yet, and the mark moves past it; a row past the mark, which the
-- index does not hold, is deleted or edited without touching the index (the server indexes it
-- as it is later).
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;

CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body, room)
        SELECT id, body, room FROM messages
        WHERE id = new.id
           OR (id > (SELECT through_id FROM search_indexed) AND id <= new.id);
    UPDATE search_indexed SET through_id = new.id WHERE through_id < new.id;
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.id <= (SELECT through_id FROM search_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, room)
        VALUES ('delete', old.id, old.body, old.room);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF body, room ON messages
WHEN old.id <= (SELECT through_id FROM search_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body, room)
        VALUES ('delete', old.id, old.body, old.room);
    INSERT INTO messages_fts (rowid, body, room) VALUES (new.id, new.body, new.room);
END;
