//! The cluster's keys in Redis and the Lua scripts over them: one place that says what is
//! stored where, so the writer, the reader and start-up agree.
//!
//! The keys (all under `smolchat:`):
//! - `log`: the stream. Each entry has fields `o` (origin node), `r` (its run), `n` (position in
//!   the log, counting from 1) and `e` (the [`Entry`](super::Entry), encoded).
//! - `n`: the counter behind `n`. `seen:NODE:RUN`: the last sequence number of that run appended,
//!   so a batch resent after a lost reply is not appended twice.
//! - `node:NODE`: the node's heartbeat (value: its run), expiring after [`TTL`](super::TTL).
//!   `nodes`: the set of node names, so live nodes notice one whose heartbeat expired.
//!   `reap:NODE`: who announces that.
//! - `name:SKELETON`: a claimed name (its confusable skeleton, lower case) (value
//!   `NODE/RUN/MEMBER`), expiring with the heartbeat, which renews it only while it is still this
//!   node's (a node cut off past the expiry may find it taken: its user then goes, see
//!   `hub/cluster.rs`).
//! - channel `to:NODE`: private lines for that node's users.
//!
//! It must not know about connections or threads: names and scripts only.

use crate::names::Nick;

pub(super) const KEY_LOG: &str = "smolchat:log";
pub(super) const KEY_COUNTER: &str = "smolchat:n";
pub(super) const KEY_NODES: &str = "smolchat:nodes";

pub(super) fn key_node(node: &str) -> String {
    format!("smolchat:node:{node}")
}

/// What a name's key starts with; the confusable skeleton follows.
pub(super) const KEY_NAME: &str = "smolchat:name:";

/// A name's key: its confusable skeleton, so no two users on any node look alike (`aIice` and
/// `alice`), exactly as on a single node.
pub(super) fn key_name(nick: &Nick) -> String {
    format!("{KEY_NAME}{}", nick.skeleton())
}

pub(super) fn key_seen(node: &str, run: &str) -> String {
    format!("smolchat:seen:{node}:{run}")
}

pub(super) fn key_reap(node: &str) -> String {
    format!("smolchat:reap:{node}")
}

pub(super) fn channel(node: &str) -> String {
    format!("smolchat:to:{node}")
}

/// Appends a batch of one run's entries to the log, skipping those already appended (a batch
/// resent after its reply was lost), so each entry is in the log exactly once. Atomic, as every
/// script is, so the counter `n` and the stream agree. Returns the new entries' ids.
/// ARGV: max length, node, run, then (sequence, entry) pairs.
pub(super) const APPEND: &str = r"
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
local ids = {}
for i = 4, #ARGV, 2 do
  local s = tonumber(ARGV[i])
  if s > last then
    local n = redis.call('INCR', KEYS[3])
    ids[#ids + 1] = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
      'o', ARGV[2], 'r', ARGV[3], 'n', n, 'e', ARGV[i + 1])
    last = s
  end
end
redis.call('SET', KEYS[2], last, 'EX', 86400)
return ids
";

/// Claims a name for a member: 1 if it was free (or already this member's), 0 if taken.
/// ARGV: the member's value, the expiry in milliseconds.
pub(super) const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Renews this node's names, and only those still its own: a name renewed blindly after this
/// node was cut off past its expiry would be somebody else's by then (two users of one name).
/// A name whose key expired meanwhile and nobody took is claimed again. Returns, for each name
/// now held by somebody else, its position in KEYS (from 1) and the holder's value.
/// ARGV: the expiry in milliseconds, then this node's value for each key.
pub(super) const RENEW: &str = r"
local lost = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
  elseif v == false then
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
  else
    lost[#lost + 1] = i
    lost[#lost + 1] = v
  end
end
return lost
";

/// Frees a name if it still belongs to this member (never somebody else's after an expiry).
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";
