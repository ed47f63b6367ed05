-- Where each account has logged in from (issue 17): an address that has logged in to an account
-- (or registered it) skips that account's queue of login attempts, across restarts, so strangers
-- guessing its password cannot lock its owner out.
-- account:   the account (accounts.name, lower case); its rows go when the account goes.
-- address:   the address group, as every per-address limit counts them: an IPv4 address, or an
--            IPv6 /64 as its first address (2001:db8:1:2::).
-- last_seen: the last successful login (or the registration) from it, UTC.
-- Written to be harmless if applied twice (IF NOT EXISTS).
-- The server keeps at most 16 rows per account (the least recently seen go first) and forgets
-- a row unused for 90 days.
CREATE TABLE IF NOT EXISTS account_addresses (
    account   TEXT NOT NULL,
    address   TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (account, address)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS account_addresses_follow_the_account AFTER DELETE ON accounts
BEGIN
    DELETE FROM account_addresses WHERE account = OLD.name;
END;
