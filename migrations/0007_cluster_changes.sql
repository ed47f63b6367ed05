-- Cluster mode (--cluster): how far this file has applied the cluster log's account and
-- moderation changes (registrations, passwords, operators, bans, topics), so replaying the log
-- after a restart applies each change at most once, in order. One row at most; none for a file
-- only a single node wrote. (Messages keep their own position, in messages.stream_id.)
-- stream_id: the Redis stream entry id of the newest change applied ('1718000000000-0'); a
--            catch-up also advances it over entries that change nothing here.
-- log_seq:   that entry's position in the cluster log.
CREATE TABLE cluster_applied (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    stream_id TEXT NOT NULL,
    log_seq   INTEGER NOT NULL
);
