//! The writer thread: everything this node sends to Redis, on one connection, batched.
//!
//! It gathers what is queued (entries, name claims and releases, private lines), sends it as one
//! pipeline (entries through the exactly-once append script), and every heartbeat (5 s, see
//! [`Timing`]) renews the node's key and its names and looks for nodes whose heartbeat expired.
//! A name is renewed only while it is still this node's ([`RENEW`]): after this node was cut off
//! past the expiry (stopped, frozen, partitioned), a name another node gave away meanwhile is
//! reported to the hub ([`Incoming::NamesLost`]), which lets its user here go, so a name never
//! has two holders once the partition heals. A writer that wakes past its names' expiry (the
//! process was frozen) checks them before it sends anything, and drops what the users of lost
//! names say meanwhile ([`Silenced`]). When Redis is away it
//! keeps the entries, tells the hub once ([`Incoming::Paused`]), reconnects with back-off, and on
//! success re-registers, appends what it held, and tells the hub ([`Incoming::Resumed`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender, TryRecvError};
use log::{debug, error, info, warn};
use redis::{Client, Connection, Value};
use smol::future;

use super::keys::{channel, key_name, key_node, key_reap, CLAIM, KEY_NAME, KEY_NODES, RELEASE};
use super::renew::{renew, renew_node};
use super::silence::Silenced;
use super::stream::append_cmd;
use super::{connect, Entry, Incoming, Link, LostName, Node, Outgoing, Timing, Unavailable};
use crate::metrics::ClusterStats;
use crate::vocab::MemberId;

/// Most queued items taken into one round trip.
const MAX_GATHER: usize = 2048;

/// Most entries in one append script: a script runs alone in Redis, so this bounds how long one
/// batch holds every other client back (well under a millisecond).
pub(super) const MAX_APPEND: usize = 512;

/// First and longest pause between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A claim waiting for its round trip: the name's key, this member's value and id, who is
/// waiting.
type Claim = (String, String, MemberId, Sender<Result<bool, Unavailable>>);

pub(super) struct Writer {
    url: String,
    node: Arc<str>,
    run: Arc<str>,
    stream_max: u64,
    timing: Timing,
    client: Client,
    conn: Option<Connection>,
    link: Link,
    rx: Receiver<Outgoing>,
    incoming: Sender<Incoming>,
    /// Entries not yet acknowledged by Redis, with their sequence numbers in this run.
    pending: VecDeque<(u64, String)>,
    next_seq: u64,
    /// Releases not yet done (kept across an outage: the keys would expire anyway, but freeing
    /// a name promptly is what users expect).
    releases: Vec<(String, String)>,
    /// Names this node holds: key to (value, member), renewed with the heartbeat.
    names: HashMap<String, (String, MemberId)>,
    /// The hub asked for a check of the names ([`Outgoing::CheckNames`]), not yet answered.
    check_names: bool,
    /// When the names were last renewed (the moment before the script was sent): past that
    /// and the expiry, another node may hold some of them.
    renewed_at: Instant,
    /// The users of names another node holds now, whose lines are dropped until they are gone.
    silenced: Silenced,
    /// Set while the link is down: since when, and when to try again.
    down: Option<(Instant, Instant, Duration)>,
    next_beat: Instant,
    /// Where the link's state is published.
    stats: ClusterStats,
}

impl Writer {
    pub(super) fn new(
        node: Node,
        link: Link,
        rx: Receiver<Outgoing>,
        incoming: Sender<Incoming>,
        stats: ClusterStats,
    ) -> Writer {
        // Connected: `Node::start` made the connection this writer takes over.
        stats.set_link_up(true);
        Writer {
            url: node.url,
            node: node.name,
            run: node.run,
            stream_max: node.stream_max,
            timing: node.timing,
            client: node.client,
            conn: Some(node.conn),
            link,
            rx,
            incoming,
            pending: VecDeque::new(),
            // Sequence 1 was this run's NodeUp, appended at start.
            next_seq: 2,
            releases: Vec::new(),
            names: HashMap::new(),
            check_names: false,
            renewed_at: Instant::now(),
            silenced: Silenced::default(),
            down: None,
            next_beat: Instant::now() + node.timing.heartbeat,
            stats,
        }
    }

    pub(super) fn run(mut self) {
        let mut closed = false;
        while !closed {
            let wake = match self.down {
                Some((_, retry_at, _)) => retry_at,
                None if !self.pending.is_empty() || !self.releases.is_empty() => Instant::now(),
                None => self.next_beat,
            };
            let mut claims = Vec::new();
            let mut whispers = Vec::new();
            closed = self.gather(wake, &mut claims, &mut whispers);
            if self.down.is_some() {
                for (_, _, _, reply) in claims.drain(..) {
                    let _ = reply.try_send(Err(Unavailable));
                }
                if Instant::now() >= self.down.map_or(Instant::now(), |d| d.1) {
                    self.reconnect();
                }
                if self.down.is_some() {
                    continue;
                }
            }
            if let Err(e) = self.flush(claims, whispers) {
                self.lost(&e);
                continue;
            }
            if Instant::now() >= self.next_beat {
                self.next_beat = Instant::now() + self.timing.heartbeat;
                if let Err(e) = self.heartbeat() {
                    self.lost(&e);
                }
            } else if self.check_names {
                if let Err(e) = self.renew_names() {
                    self.lost(&e);
                }
            }
        }
        self.goodbye();
    }

    /// Waits until `wake` for the first item, then takes what else is queued. Returns true once
    /// the queue is closed (the server is stopping).
    fn gather(
        &mut self,
        wake: Instant,
        claims: &mut Vec<Claim>,
        whispers: &mut Vec<(Arc<str>, String)>,
    ) -> bool {
        let first = smol::block_on(future::or(async { Some(self.rx.recv().await) }, async {
            smol::Timer::at(wake).await;
            None
        }));
        let mut next = match first {
            Some(Ok(item)) => Some(item),
            Some(Err(_)) => return true,
            None => return false,
        };
        // Woken past the names' expiry (this process was frozen, or this thread stalled): find
        // out which are still this node's before anything goes out, so that the lines typed
        // meanwhile by a user whose name another node gave away are dropped, not appended.
        if self.names_may_have_expired() {
            if let Err(e) = self.renew_names() {
                self.lost(&e);
            }
        }
        let mut taken = 0;
        while let Some(item) = next.take() {
            match item {
                Outgoing::Append(entry) if !self.silenced.admits(&entry) => {
                    debug!(
                        "node {}: dropped an entry of a user whose name is lost",
                        self.node
                    );
                }
                Outgoing::Append(entry) => {
                    self.pending.push_back((self.next_seq, entry.encode()));
                    self.next_seq += 1;
                }
                Outgoing::Claim {
                    nick,
                    member,
                    reply,
                } => claims.push((key_name(&nick), self.link.name_value(member), member, reply)),
                Outgoing::Release { nick, member } => {
                    let key = key_name(&nick);
                    let value = self.link.name_value(member);
                    if self.names.get(&key).is_some_and(|(v, _)| *v == value) {
                        self.names.remove(&key);
                    }
                    self.silenced.released(member, nick.skeleton());
                    self.releases.push((key, value));
                }
                Outgoing::Whisper { node, whisper } => whispers.push((node, whisper.encode())),
                Outgoing::CheckNames => self.check_names = true,
            }
            taken += 1;
            if taken >= MAX_GATHER {
                break;
            }
            next = match self.rx.try_recv() {
                Ok(item) => Some(item),
                Err(TryRecvError::Closed) => return true,
                Err(TryRecvError::Empty) => None,
            };
        }
        false
    }

    /// Sends releases, claims, private lines and the held entries in one pipeline.
    fn flush(
        &mut self,
        claims: Vec<Claim>,
        whispers: Vec<(Arc<str>, String)>,
    ) -> redis::RedisResult<()> {
        if claims.is_empty()
            && whispers.is_empty()
            && self.pending.is_empty()
            && self.releases.is_empty()
        {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (key, value) in &self.releases {
            pipe.cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(key)
                .arg(value)
                .ignore();
        }
        for (key, value, _, _) in &claims {
            pipe.cmd("EVAL")
                .arg(CLAIM)
                .arg(1)
                .arg(key)
                .arg(value)
                .arg(self.timing.ttl_ms());
        }
        if !claims.is_empty() {
            // The heartbeat is renewed after the claims, so it never expires before a name this
            // node holds: a node seen dead has no names left (another node may take them at
            // once).
            renew_node(&mut pipe, &self.node, &self.run, self.timing);
        }
        for (node, payload) in &whispers {
            pipe.cmd("PUBLISH").arg(channel(node)).arg(payload).ignore();
        }
        let batch: Vec<(u64, String)> = self.pending.iter().cloned().collect();
        for chunk in batch.chunks(MAX_APPEND) {
            pipe.add_command(append_cmd(&self.node, &self.run, self.stream_max, chunk))
                .ignore();
        }
        let Some(conn) = self.conn.as_mut() else {
            for (_, _, _, reply) in claims {
                let _ = reply.try_send(Err(Unavailable));
            }
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "not connected",
            )));
        };
        let answers: Vec<i64> = match pipe.query(conn) {
            Ok(answers) => answers,
            Err(e) => {
                for (_, _, _, reply) in claims {
                    let _ = reply.try_send(Err(Unavailable));
                }
                return Err(e);
            }
        };
        self.releases.clear();
        self.pending.clear();
        for ((key, value, member, reply), won) in claims.into_iter().zip(answers) {
            let won = won == 1;
            if reply.try_send(Ok(won)).is_err() && won {
                // The session gave up waiting: free the name again.
                self.releases.push((key, value));
            } else if won {
                self.names.insert(key, (value, member));
            }
        }
        Ok(())
    }

    /// Renews this node's names with [`RENEW`] (only those still its own; expired ones are
    /// claimed again) and tells the hub about the others, which now belong to another node.
    fn renew_names(&mut self) -> redis::RedisResult<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let names: Vec<(String, String, MemberId)> = self
            .names
            .iter()
            .map(|(k, (v, m))| (k.clone(), v.clone(), *m))
            .collect();
        let sent_at = Instant::now();
        let lost = renew(conn, &names, self.timing)?;
        self.renewed_at = sent_at;
        let checked = std::mem::take(&mut self.check_names);
        self.report_lost(lost, checked);
        Ok(())
    }

    /// Whether the names may have expired since they were last renewed (so another node may
    /// hold some of them now).
    fn names_may_have_expired(&self) -> bool {
        self.conn.is_some()
            && !self.names.is_empty()
            && self.renewed_at.elapsed() >= self.timing.ttl
    }

    /// Forgets names another node holds now, logs each, drops what their users here still had
    /// queued, and tells the hub (always, when it asked: `checked`).
    fn report_lost(&mut self, lost: Vec<LostName>, checked: bool) {
        for name in &lost {
            self.names.remove(&format!("{KEY_NAME}{}", name.skeleton));
            self.silenced.lose(name.member, &name.skeleton);
            warn!(
                "node {}: the name of member {} here (skeleton {}) was claimed on node {} while \
                 this node was cut off from the cluster; that user keeps it, this one goes, and \
                 what this one says until then is dropped",
                self.node, name.member, name.skeleton, name.holder
            );
        }
        if self.silenced.any() {
            let silenced = &self.silenced;
            let before = self.pending.len();
            self.pending
                .retain(|(_, text)| Entry::decode(text).map_or(true, |e| silenced.admits(&e)));
            if self.pending.len() < before {
                warn!(
                    "node {}: dropped {} queued entries of users whose names are lost",
                    self.node,
                    before - self.pending.len()
                );
            }
        }
        if checked || !lost.is_empty() {
            let _ = self
                .incoming
                .send_blocking(Incoming::NamesLost { lost, checked });
        }
    }

    /// Renews this node's heartbeat and names, and announces nodes whose heartbeat expired.
    fn heartbeat(&mut self) -> redis::RedisResult<()> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        renew_node(&mut pipe, &self.node, &self.run, self.timing);
        pipe.cmd("SMEMBERS").arg(KEY_NODES);
        let (nodes,): (Vec<String>,) = pipe.query(conn)?;
        self.renew_names()?;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let others: Vec<String> = nodes.into_iter().filter(|n| **n != *self.node).collect();
        if others.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for node in &others {
            pipe.cmd("EXISTS").arg(key_node(node));
        }
        let alive: Vec<bool> = pipe.query(conn)?;
        for (node, alive) in others.into_iter().zip(alive) {
            if alive {
                continue;
            }
            // One node announces each death: whoever sets the reap key first.
            let won: Value = redis::cmd("SET")
                .arg(key_reap(&node))
                .arg(&*self.node)
                .arg("NX")
                .arg("PX")
                .arg(self.timing.ttl_ms())
                .query(conn)?;
            let _: Value = redis::cmd("SREM").arg(KEY_NODES).arg(&node).query(conn)?;
            if won != Value::Nil {
                warn!(
                    "node {}: node {node} stopped renewing its heartbeat; announcing its users left",
                    self.node
                );
                self.pending.push_back((
                    self.next_seq,
                    Entry::NodeGone {
                        node: node.into(),
                        stopped: false,
                    }
                    .encode(),
                ));
                self.next_seq += 1;
            }
        }
        Ok(())
    }

    /// Counts the link as lost: tells the hub once and schedules the first retry.
    fn lost(&mut self, e: &redis::RedisError) {
        self.conn = None;
        match self.down {
            Some(_) => {}
            None => {
                error!(
                    "node {}: lost the link to Redis at {}: {e}; chat paused, {} entries held",
                    self.node,
                    self.url,
                    self.pending.len()
                );
                let now = Instant::now();
                self.down = Some((now, now + BACKOFF_MIN, BACKOFF_MIN));
                self.stats.set_link_up(false);
                let _ = self.incoming.send_blocking(Incoming::Paused);
            }
        }
    }

    /// One reconnection attempt: on success re-registers the node and its names (they may have
    /// expired meanwhile), and the held entries go out with the next flush.
    fn reconnect(&mut self) {
        let Some((since, _, delay)) = self.down else {
            return;
        };
        let names: Vec<(String, String, MemberId)> = self
            .names
            .iter()
            .map(|(k, (v, m))| (k.clone(), v.clone(), *m))
            .collect();
        let timing = self.timing;
        let attempt = connect(&self.client).and_then(|mut conn| {
            let mut pipe = redis::pipe();
            renew_node(&mut pipe, &self.node, &self.run, timing);
            pipe.query::<()>(&mut conn)?;
            let sent_at = Instant::now();
            let lost = renew(&mut conn, &names, timing)?;
            Ok((conn, lost, sent_at))
        });
        match attempt {
            Ok((conn, lost, sent_at)) => {
                self.conn = Some(conn);
                self.renewed_at = sent_at;
                let checked = std::mem::take(&mut self.check_names);
                self.report_lost(lost, checked);
                info!(
                    "node {}: link to Redis at {} recovered after {:.1} s; appending {} held entries",
                    self.node,
                    self.url,
                    since.elapsed().as_secs_f64(),
                    self.pending.len()
                );
                self.down = None;
                self.next_beat = Instant::now();
                self.stats.set_link_up(true);
                let _ = self.incoming.send_blocking(Incoming::Resumed);
            }
            Err(e) => {
                let delay = (delay * 2).min(BACKOFF_MAX);
                log::debug!("node {}: Redis at {} still away: {e}", self.node, self.url);
                self.down = Some((since, Instant::now() + delay, delay));
            }
        }
    }

    /// On shutdown: appends what is held and a goodbye, frees the names and the heartbeat.
    fn goodbye(&mut self) {
        if self.down.is_some() {
            self.reconnect();
        }
        let Some(conn) = self.conn.as_mut() else {
            warn!(
                "node {}: stopping without Redis: {} entries not appended; its names expire in {} s",
                self.node,
                self.pending.len(),
                self.timing.ttl.as_secs()
            );
            return;
        };
        self.pending.push_back((
            self.next_seq,
            Entry::NodeGone {
                node: self.node.clone(),
                stopped: true,
            }
            .encode(),
        ));
        let mut pipe = redis::pipe();
        let releases = self.releases.iter().map(|(k, v)| (k, v));
        for (key, value) in releases.chain(self.names.iter().map(|(k, (v, _))| (k, v))) {
            pipe.cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(key)
                .arg(value)
                .ignore();
        }
        let batch: Vec<(u64, String)> = self.pending.iter().cloned().collect();
        for chunk in batch.chunks(MAX_APPEND) {
            pipe.add_command(append_cmd(&self.node, &self.run, self.stream_max, chunk))
                .ignore();
        }
        pipe.cmd("DEL").arg(key_node(&self.node)).ignore();
        pipe.cmd("SREM").arg(KEY_NODES).arg(&*self.node).ignore();
        match pipe.query::<()>(conn) {
            Ok(()) => info!("node {} left the cluster at {}", self.node, self.url),
            Err(e) => warn!(
                "node {}: goodbye to Redis at {} failed: {e}; its names expire in {} s",
                self.node,
                self.url,
                self.timing.ttl.as_secs()
            ),
        }
    }
}
