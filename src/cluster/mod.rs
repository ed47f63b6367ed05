//! Cluster mode: several smolchat nodes sharing rooms through one Redis stream, the cluster log.
//!
//! This module owns the link to Redis and nothing else: the connections, the keys and their
//! expiry (node heartbeats, claimed names), appending entries to the log exactly once, reading it
//! back in order, and private lines between nodes (Redis pub/sub, never stored). It runs on
//! dedicated threads with the synchronous `redis` client, bridged to the hub by async-channel,
//! like the history writer: no Redis call ever runs on an executor thread.
//!
//! It must not know about sessions, outboxes, membership or SQL. It hands the hub
//! [`Incoming`] values and takes [`Entry`]s; what an entry means for a room is the hub's business
//! (`hub/link.rs` is its seam, `hub/core.rs` applies entries, `hub/cluster.rs` handles what the
//! threads report), and storing it is the history writer's.
//!
//! Why the sync client: `redis` with `default-features = false, features = ["streams"]` builds
//! on std networking only, while its async API on smol (`smol-comp`) brings the async runtime
//! glue and more dependencies for little gain: `XREAD BLOCK` holds its connection anyway, so the
//! reader needs a connection of its own whichever API is used, and a thread per connection (three
//! per node) is nothing next to the thousands of sessions.
//!
//! The layout of the keys in Redis and the scripts over them are in `keys.rs`; appending to the
//! log and reading ranges of it in `stream.rs`; what expires and its renewal in `renew.rs`.

pub mod entry;
mod keys;
mod reader;
mod renew;
mod silence;
mod stream;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use log::{info, warn};
use redis::{Client, Connection, Value};

pub use entry::{Entry, Whisper};

use self::keys::{key_node, KEY_LOG, KEY_NODES};
use self::stream::{append_batch, range};
use crate::metrics::ClusterStats;
use crate::names::Nick;
use crate::vocab::{stream_id_lt, MemberId};

/// How long a node's heartbeat and its users' names outlive the node: a node killed without a
/// goodbye frees its names, and the others see its users leave, within this (plus one beat).
pub const TTL: Duration = Duration::from_secs(15);

/// How often a node renews its heartbeat and names, and looks for nodes whose heartbeat expired.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// The heartbeat's period and expiry: [`HEARTBEAT`] and [`TTL`], except in tests, which shorten
/// them (the hidden `--test-cluster-ttl-ms`) to cut a node off without waiting 15 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a heartbeat and the names it renews last.
    pub ttl: Duration,
    /// How often they are renewed: a third of `ttl`, so two beats may be missed.
    pub heartbeat: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            ttl: TTL,
            heartbeat: HEARTBEAT,
        }
    }
}

impl Timing {
    /// An expiry of `ttl` (at least 300 ms), renewed every third of it.
    pub fn with_ttl(ttl: Duration) -> Timing {
        let ttl = ttl.max(Duration::from_millis(300));
        Timing {
            ttl,
            heartbeat: ttl / 3,
        }
    }

    /// The expiry in milliseconds, for `PX`.
    fn ttl_ms(&self) -> u64 {
        u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Default `--cluster-stream-max`: about a million entries, a few hundred MB of Redis memory at
/// chat-sized lines; a node away for longer than that many lines recovers only the newest.
pub const DEFAULT_STREAM_MAX: u64 = 1_000_000;

/// Entries the hub may have queued for the log before it refuses new lines as "not sent": while
/// Redis is slow or away, typing is refused rather than piling up without bound.
pub const MAX_QUEUED: usize = 8 * 1024;

/// How long to wait for Redis to answer before counting the link as lost.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// One entry read from the log.
#[derive(Debug, Clone)]
pub struct LogRecord {
    /// The stream entry id, the order every node agrees on.
    pub id: Arc<str>,
    /// The entry's position in the log, from 1.
    pub seq: i64,
    /// The node that wrote it.
    pub node: Arc<str>,
    pub entry: Entry,
}

impl LogRecord {
    /// When Redis appended it, in milliseconds since the epoch (the first part of the id): the
    /// same on every node, unlike each node's clock.
    pub fn at_ms(&self) -> i64 {
        self.id
            .split('-')
            .next()
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(0)
    }
}

/// What the cluster threads tell the hub.
#[derive(Debug)]
pub enum Incoming {
    /// Entries read from the log, in log order.
    Log(Vec<LogRecord>),
    /// A private line for one of this node's users.
    Whisper(Whisper),
    /// The link to Redis was lost: nothing can be appended until [`Incoming::Resumed`].
    Paused,
    Resumed,
    /// Names of this node's users that another node holds now (this node was cut off past
    /// their expiry, and somebody took them). `checked`: the answer to [`Link::check_names`],
    /// sent even when nothing was lost.
    NamesLost {
        lost: Vec<LostName>,
        checked: bool,
    },
}

/// A name this node's member held and another node holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostName {
    /// The name's confusable skeleton (what the key is made of).
    pub skeleton: String,
    pub member: MemberId,
    /// The node that holds it now.
    pub holder: String,
}

/// Why a claim could not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// What the hub and sessions send the writer thread.
enum Outgoing {
    Append(Entry),
    Claim {
        nick: Nick,
        member: MemberId,
        reply: Sender<Result<bool, Unavailable>>,
    },
    Release {
        nick: Nick,
        member: MemberId,
    },
    Whisper {
        node: Arc<str>,
        whisper: Whisper,
    },
    /// Renew (or reclaim) every name now and report those lost ([`Incoming::NamesLost`]).
    CheckNames,
}

/// The hub's and the sessions' handle on the link. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct Link {
    node: Arc<str>,
    run: Arc<str>,
    tx: Sender<Outgoing>,
}

impl Link {
    /// This node's name.
    pub fn node(&self) -> &Arc<str> {
        &self.node
    }

    /// Queues an entry for the log. Entries queued while Redis is away are held and appended,
    /// in order and once, when it is back.
    pub fn append(&self, entry: Entry) {
        let _ = self.tx.try_send(Outgoing::Append(entry));
    }

    /// Entries waiting to be appended (and claims, releases, whispers).
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Claims `nick` cluster-wide for `member`: `Ok(false)` if somebody on any node has it.
    pub async fn claim(&self, nick: &Nick, member: MemberId) -> Result<bool, Unavailable> {
        let (reply, answer) = async_channel::bounded(1);
        let claim = Outgoing::Claim {
            nick: nick.clone(),
            member,
            reply,
        };
        if self.tx.try_send(claim).is_err() {
            return Err(Unavailable);
        }
        answer.recv().await.unwrap_or(Err(Unavailable))
    }

    /// Frees `nick` if `member` holds it.
    pub fn release(&self, nick: &Nick, member: MemberId) {
        let _ = self.tx.try_send(Outgoing::Release {
            nick: nick.clone(),
            member,
        });
    }

    /// Asks the writer to check this node's names in Redis now (renewing those still its own,
    /// reclaiming expired ones); the answer comes as [`Incoming::NamesLost`] with `checked`.
    pub fn check_names(&self) {
        let _ = self.tx.try_send(Outgoing::CheckNames);
    }

    /// Sends a private line to a user on `node`. Not stored, not retried: pub/sub delivers to
    /// whoever listens now.
    pub fn whisper(&self, node: &Arc<str>, whisper: Whisper) {
        let _ = self.tx.try_send(Outgoing::Whisper {
            node: node.clone(),
            whisper,
        });
    }

    fn name_value(&self, member: MemberId) -> String {
        format!("{}/{}/{member}", self.node, self.run)
    }
}

/// A node that has joined the cluster but not started its threads yet: [`Node::catch_up`] first,
/// then [`Node::run`].
pub struct Node {
    url: String,
    name: Arc<str>,
    run: Arc<str>,
    stream_max: u64,
    timing: Timing,
    client: Client,
    conn: Connection,
    /// The id of this run's [`Entry::NodeUp`]: catch-up reads up to it, the reader after it.
    start: Arc<str>,
}

/// What catch-up found.
#[derive(Debug, Default, Clone, Copy)]
pub struct CatchUp {
    /// Entries read.
    pub read: u64,
    /// Entries trimmed from the log before this node could read them.
    pub lost: u64,
}

/// Checks a `--node` name: it becomes part of Redis keys and log lines.
pub fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// The default node name: the host name and the listen port.
pub fn default_node_name(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .take(50)
        .collect();
    format!("{host}:{port}")
}

fn connect(client: &Client) -> redis::RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(IO_TIMEOUT)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(conn)
}

impl Node {
    /// Connects, refuses a name a live node already has, and appends this run's
    /// [`Entry::NodeUp`]. Errors are one line for the command line.
    pub fn start(url: &str, name: &str, stream_max: u64, timing: Timing) -> Result<Node, String> {
        if !valid_node_name(name) {
            return Err(format!(
                "--node {name:?}: use 1 to 64 letters, digits and . _ : -"
            ));
        }
        let client = Client::open(url).map_err(|e| format!("--cluster {url}: {e}"))?;
        let mut conn = connect(&client).map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        let run = run_id();
        let claimed: Value = redis::cmd("SET")
            .arg(key_node(name))
            .arg(&*run)
            .arg("NX")
            .arg("PX")
            .arg(timing.ttl_ms())
            .query(&mut conn)
            .map_err(|e| format!("cannot reach Redis at {url}: {e}"))?;
        if claimed == Value::Nil {
            let ttl: i64 = redis::cmd("TTL")
                .arg(key_node(name))
                .query(&mut conn)
                .unwrap_or(-1);
            return Err(format!(
                "node name {name} is in use by a live node of the cluster at {url} \
                 (choose another --node, or wait {ttl} s if that node has died)"
            ));
        }
        let _: Value = redis::cmd("SADD")
            .arg(KEY_NODES)
            .arg(name)
            .query(&mut conn)
            .map_err(|e| format!("Redis at {url}: {e}"))?;
        let ids = append_batch(
            &mut conn,
            name,
            &run,
            stream_max,
            &[(1, Entry::NodeUp.encode())],
        )
        .map_err(|e| format!("Redis at {url}: cannot append to {KEY_LOG}: {e}"))?;
        let start: Arc<str> = ids
            .into_iter()
            .next()
            .ok_or_else(|| format!("Redis at {url}: the log refused this node's first entry"))?
            .into();
        info!("node {name} joined the cluster at {url} (run {run}, log at {start})");
        Ok(Node {
            url: url.to_owned(),
            name: name.into(),
            run,
            stream_max,
            timing,
            client,
            conn,
            start,
        })
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Reads the log after `after` (a stream id; `None` for the whole log) up to this run's
    /// start, a batch at a time, handing each batch to `store`. Blocking: call it before the
    /// executor runs.
    pub fn catch_up(
        &mut self,
        after: Option<(&str, i64)>,
        mut store: impl FnMut(Vec<LogRecord>),
    ) -> Result<CatchUp, String> {
        let url = self.url.clone();
        let err = |e: redis::RedisError| format!("Redis at {url}: catch-up failed: {e}");
        let mut result = CatchUp::default();
        // What was trimmed: the entries between the last one stored here and the oldest kept.
        let oldest = range(&mut self.conn, "-", &self.start, 1).map_err(err)?;
        if let Some(first) = oldest.first() {
            let (stored_id, stored_seq) = after.unwrap_or(("0-0", 0));
            if stream_id_lt(stored_id, &first.id) && first.seq > stored_seq + 1 {
                result.lost = (first.seq - stored_seq - 1) as u64;
            }
        }
        let mut from = match after {
            Some((id, _)) => format!("({id}"),
            None => "-".to_owned(),
        };
        loop {
            let batch = range(&mut self.conn, &from, &self.start, 4096).map_err(err)?;
            let Some(last) = batch.last() else {
                break;
            };
            let done = *last.id == *self.start;
            from = format!("({}", last.id);
            result.read += batch.len() as u64;
            store(batch);
            if done {
                break;
            }
        }
        if result.lost > 0 {
            warn!(
                "node {}: {} log entries could not be recovered: they were trimmed from {KEY_LOG} \
                 (--cluster-stream-max) while this node was away",
                self.name, result.lost
            );
        }
        Ok(result)
    }

    /// Starts the writer, reader and subscriber threads, which publish the link's state and the
    /// reader's lag to `stats`. Returns the handle for the hub and the sessions, what the hub
    /// reads, and the threads' owner.
    pub fn run(
        self,
        stats: ClusterStats,
    ) -> Result<(Link, Receiver<Incoming>, ClusterThreads), String> {
        let (tx, rx) = async_channel::unbounded();
        let (incoming_tx, incoming) = async_channel::bounded(64);
        let stop = Arc::new(AtomicBool::new(false));
        let link = Link {
            node: self.name.clone(),
            run: self.run.clone(),
            tx: tx.clone(),
        };
        let spawn_err = |e: std::io::Error| format!("cannot start a cluster thread: {e}");
        let reader = {
            let ctx = reader::Reader {
                url: self.url.clone(),
                node: self.name.clone(),
                client: self.client.clone(),
                after: self.start.clone(),
                incoming: incoming_tx.clone(),
                stop: stop.clone(),
                stats: stats.clone(),
            };
            std::thread::Builder::new()
                .name("cluster-reader".into())
                .spawn(move || ctx.run())
                .map_err(spawn_err)?
        };
        let subscriber = {
            let ctx = reader::Subscriber {
                url: self.url.clone(),
                node: self.name.clone(),
                client: self.client.clone(),
                incoming: incoming_tx.clone(),
                stop: stop.clone(),
            };
            std::thread::Builder::new()
                .name("cluster-subscriber".into())
                .spawn(move || ctx.run())
                .map_err(spawn_err)?
        };
        let writer = {
            let ctx = writer::Writer::new(self, link.clone(), rx, incoming_tx, stats);
            std::thread::Builder::new()
                .name("cluster-writer".into())
                .spawn(move || ctx.run())
                .map_err(spawn_err)?
        };
        Ok((
            link,
            incoming,
            ClusterThreads {
                tx,
                stop,
                threads: vec![writer, reader, subscriber],
            },
        ))
    }
}

/// Owns the cluster threads.
pub struct ClusterThreads {
    tx: Sender<Outgoing>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ClusterThreads {
    /// Appends what is queued, says goodbye (the node's users leave the other nodes' rooms, its
    /// names and heartbeat are freed), and stops the threads.
    pub fn close(self) {
        self.tx.close();
        self.stop.store(true, Ordering::Release);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// A name for this run of the node, unique enough that two runs never share one.
fn run_id() -> Arc<str> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}{:x}", nanos as u64, std::process::id()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node names become keys and log lines: odd characters are refused.
    #[test]
    fn node_names() {
        assert!(valid_node_name("box-1.example:7878"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("a b"));
        assert!(!valid_node_name("a/b"));
        assert!(!valid_node_name(&"x".repeat(65)));
        assert!(valid_node_name(&default_node_name(7878)));
    }
}
