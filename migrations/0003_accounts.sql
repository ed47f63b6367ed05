-- Accounts and moderation. These tables are a public interface, like `messages`: operators
-- inspect them with the sqlite3 shell. Times are UTC text, 'YYYY-MM-DD HH:MM:SS.SSS'.

-- Registered names. A name here asks for its password at the name prompt.
-- name:          the name in lower case (names are unique ignoring case).
-- display:       the name as it was registered.
-- password_hash: an Argon2id hash in PHC string form ('$argon2id$v=19$m=...'); opaque.
-- role:          'user', or 'operator' for the moderation commands.
-- created_at:    when the name was registered.
-- last_login_at: the last successful password login, NULL if never.
CREATE TABLE accounts (
    name          TEXT PRIMARY KEY,
    display       TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'operator')),
    created_at    TEXT NOT NULL,
    last_login_at TEXT
);

-- Bans in force (lifted bans are deleted; expired ones are ignored, and deleted when lifted or
-- replaced).
-- kind:       'name' (refused at the name prompt; covers the account of that name) or
--             'address' (refused at connect).
-- target:     the name in lower case, or an address or prefix ('192.0.2.7', '2001:db8::/32').
-- reason:     the operator's reason, NULL if none given.
-- banned_by:  the operator's name.
-- created_at: when the ban was set.
-- expires_at: when it ends; NULL until lifted.
CREATE TABLE bans (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('name', 'address')),
    target     TEXT NOT NULL,
    reason     TEXT,
    banned_by  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    UNIQUE (kind, target)
);

-- Every operator action, in order: an append-only audit trail.
-- at:       when.
-- operator: who (the operator's name, or 'cli' for `smolchat op`).
-- action:   'kick', 'ban', 'unban', 'mute', 'unmute', 'op', 'deop' or 'topic'.
-- target:   the name, address or prefix acted on (the room, for 'topic').
-- reason:   the reason given (the new text, for 'topic'), NULL if none.
-- duration: for bans and mutes, the duration as typed ('1h', '7d'); NULL for until lifted.
CREATE TABLE moderation_log (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    operator TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    reason   TEXT,
    duration TEXT
);

-- Room topics, shown after the history block on joining.
-- room:   the room's canonical name.
-- topic:  the text.
-- set_by: the operator who set it.
-- set_at: when.
CREATE TABLE topics (
    room   TEXT PRIMARY KEY,
    topic  TEXT NOT NULL,
    set_by TEXT NOT NULL,
    set_at TEXT NOT NULL
);
