-- Cluster mode (--cluster): where each row sits in the cluster log. Both are NULL for rows written
-- by a single node, whose order is the id alone.
-- stream_id: the Redis stream entry id ('1718000000000-0'), unique, so storing an entry twice is
--            a no-op and catch-up is idempotent; every node's file holds the same ids.
-- log_seq:   the entry's position in the cluster log (1, 2, ...), counting every entry (joins and
--            leaves too): a node that was away longer than the log is kept can tell how many
--            entries it could not recover.
ALTER TABLE messages ADD COLUMN stream_id TEXT;
ALTER TABLE messages ADD COLUMN log_seq INTEGER;
CREATE UNIQUE INDEX messages_stream_id ON messages (stream_id);
