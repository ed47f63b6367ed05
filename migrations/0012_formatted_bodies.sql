-- IRC formatting (issue 20): bold, colours and the like, kept for IRC users.
--
-- IRC clients mark up text with control characters (\x02 bold, \x03 colour, \x1d italics, ...).
-- `body` stays what it always was, plain text with no control character, which the sqlite3
-- shell, search and the line and web doors show as it is. The formatted text goes beside it:
-- formatted: the body as an IRC user sent it, with its formatting codes (and nothing else below
--            U+0020); NULL when it had none, as for every line from another door. IRC clients
--            are replayed this one.
ALTER TABLE messages ADD COLUMN formatted TEXT;
