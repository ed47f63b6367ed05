//! Renewing what expires in Redis: the node's heartbeat key, and its claimed names, each only
//! while it is still this node's ([`RENEW`]).
//!
//! Why apart from the writer: the renewal is the rule that keeps one holder per name across a
//! partition, and it is what the writer's heartbeat, its reconnection and its checks share.
//! It must not know about the writer's queue or the hub: it takes a connection and returns the
//! names lost.

use redis::{Connection, Value};

use super::keys::{key_node, KEY_NAME, KEY_NODES, RENEW};
use super::writer::MAX_APPEND;
use super::{LostName, Timing};
use crate::vocab::MemberId;

/// Most names renewed by one script run: a script runs alone in Redis (see [`MAX_APPEND`]).
const MAX_RENEW: usize = MAX_APPEND;

/// Adds to `pipe` the node's heartbeat key (set to its run, for another expiry) and its place
/// in the node set.
pub(super) fn renew_node(pipe: &mut redis::Pipeline, node: &str, run: &str, timing: Timing) {
    pipe.cmd("SET")
        .arg(key_node(node))
        .arg(run)
        .arg("PX")
        .arg(timing.ttl_ms())
        .ignore();
    pipe.cmd("SADD").arg(KEY_NODES).arg(node).ignore();
}

/// Runs [`RENEW`] over `names` (key, this node's value, member), [`MAX_RENEW`] at a time, and
/// returns those another node holds now.
pub(super) fn renew(
    conn: &mut Connection,
    names: &[(String, String, MemberId)],
    timing: Timing,
) -> redis::RedisResult<Vec<LostName>> {
    let mut lost = Vec::new();
    for chunk in names.chunks(MAX_RENEW) {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(RENEW).arg(chunk.len());
        for (key, _, _) in chunk {
            cmd.arg(key);
        }
        cmd.arg(timing.ttl_ms());
        for (_, value, _) in chunk {
            cmd.arg(value);
        }
        let taken: Vec<Value> = cmd.query(conn)?;
        for pair in taken.chunks(2) {
            let [index, holder] = pair else {
                continue;
            };
            let index: usize = redis::from_redis_value_ref(index).unwrap_or(0);
            let holder: String = redis::from_redis_value_ref(holder).unwrap_or_default();
            let Some((key, _, member)) = index.checked_sub(1).and_then(|i| chunk.get(i)) else {
                continue;
            };
            lost.push(LostName {
                skeleton: key.trim_start_matches(KEY_NAME).to_owned(),
                member: *member,
                // The value is `NODE/RUN/MEMBER`; node names have no `/`.
                holder: holder.split('/').next().unwrap_or_default().to_owned(),
            });
        }
    }
    Ok(lost)
}
