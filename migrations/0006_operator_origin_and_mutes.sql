-- Operator safety (review finding 9) and mutes that survive a restart (finding 2).

-- Where an operator's role came from, so a rogue chat operator cannot undo the operators the
-- server's owner made.
-- role_origin: 'chat' when the role was given with /op in chat (a chat operator may /deop it);
--              'cli' when it was given with `smolchat op add`. An operator row with 'cli' or NULL
--              (set by hand with sqlite3) counts as made on the command line: it cannot be
--              /deop'ed or banned by name in chat, only `smolchat op remove` takes the role.
--              NULL for users.
-- Operators from before this migration: 'chat' when their latest 'op' entry in moderation_log
-- is by a chat operator, else 'cli'.
ALTER TABLE accounts ADD COLUMN role_origin TEXT CHECK (role_origin IN ('cli', 'chat'));
UPDATE accounts SET role_origin = CASE
    WHEN COALESCE((SELECT m.operator FROM moderation_log m
                   WHERE m.action = 'op' AND m.target = accounts.name
                   ORDER BY m.id DESC LIMIT 1), 'cli') = 'cli' THEN 'cli'
    ELSE 'chat' END
WHERE role = 'operator';

-- Mutes in force (lifted mutes are deleted; expired ones are ignored at start).
-- name:       the name muted, lower case (a second mute of the same name replaces the first).
-- account:    the account the muted user was logged in to, NULL if none.
-- address:    the muted user's address (an IPv6 /64 as its first address), NULL for loopback or
--             a user who was not connected.
-- muted_by:   the operator's name.
-- created_at: when the mute was set.
-- expires_at: when it ends; NULL until lifted.
CREATE TABLE mutes (
    name       TEXT PRIMARY KEY,
    account    TEXT,
    address    TEXT,
    muted_by   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
