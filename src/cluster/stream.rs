//! The log's commands: appending a batch exactly once ([`APPEND`]) and reading a range back,
//! each entry parsed into a [`LogRecord`].
//!
//! It must not know what an entry means, nor hold a connection: callers pass theirs.

use log::warn;
use redis::Connection;

use super::keys::{key_seen, APPEND, KEY_COUNTER, KEY_LOG};
use super::{Entry, LogRecord};

/// Appends `(sequence, encoded entry)` pairs with [`APPEND`]; returns the ids of those appended.
pub(super) fn append_batch(
    conn: &mut Connection,
    node: &str,
    run: &str,
    stream_max: u64,
    batch: &[(u64, String)],
) -> redis::RedisResult<Vec<String>> {
    append_cmd(node, run, stream_max, batch).query(conn)
}

pub(super) fn append_cmd(
    node: &str,
    run: &str,
    stream_max: u64,
    batch: &[(u64, String)],
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(APPEND)
        .arg(3)
        .arg(KEY_LOG)
        .arg(key_seen(node, run))
        .arg(KEY_COUNTER)
        .arg(stream_max)
        .arg(node)
        .arg(run);
    for (seq, entry) in batch {
        cmd.arg(*seq).arg(entry);
    }
    cmd
}

/// `XRANGE KEY_LOG from to COUNT count`, parsed. Entries that do not parse are logged and skipped.
pub(super) fn range(
    conn: &mut Connection,
    from: &str,
    to: &str,
    count: usize,
) -> redis::RedisResult<Vec<LogRecord>> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(KEY_LOG)
        .arg(from)
        .arg(to)
        .arg("COUNT")
        .arg(count)
        .query(conn)?;
    Ok(reply.ids.iter().filter_map(parse_entry).collect())
}

/// Reads one stream entry; `None` (and a warning) if it is not a smolchat entry.
pub(super) fn parse_entry(raw: &redis::streams::StreamId) -> Option<LogRecord> {
    let text = |field: &str| -> Option<String> {
        raw.map
            .get(field)
            .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
    };
    let parsed = (|| {
        let node = text("o")?;
        let seq = text("n")?.parse().ok()?;
        let entry = Entry::decode(&text("e")?).ok()?;
        Some(LogRecord {
            id: raw.id.as_str().into(),
            seq,
            node: node.into(),
            entry,
        })
    })();
    if parsed.is_none() {
        warn!("skipped log entry {}: not a smolchat entry", raw.id);
    }
    parsed
}
