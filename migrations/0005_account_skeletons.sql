-- Look-alike registered names (issue #13, review finding 8): `aIice` must not be taken while the
-- owner of `alice` is offline.
-- skeleton: the confusable skeleton of the name (lower case, look-alike characters folded, as
--           `names::skeleton` computes it; `alice`, `aIice` and `a1ice` share one). Filled in by
--           the server for rows that have none (made before this migration), since it is computed
--           in Rust, not SQL. A name is refused at the prompt, on /nick and on /register when its
--           skeleton is another account's.
ALTER TABLE accounts ADD COLUMN skeleton TEXT;
CREATE INDEX accounts_skeleton ON accounts (skeleton);
