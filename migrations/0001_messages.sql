-- The chat history. This table is a public interface: people query it with the sqlite3 shell.
-- id:      increasing message number, in the order the server relayed the messages.
-- sent_at: when the server relayed the message, UTC, 'YYYY-MM-DD HH:MM:SS.SSS'
--          (SQLite's own date format, so date() and strftime() work on it).
-- sender:  the name the user had when sending.
-- body:    the text as relayed, after sanitizing.
CREATE TABLE messages (
    id      INTEGER PRIMARY KEY,
    sent_at TEXT    NOT NULL,
    sender  TEXT    NOT NULL,
    body    TEXT    NOT NULL
);
