//! The hub in cluster mode: what the cluster log's entries mean for this node's rooms.
//!
//! In cluster mode the hub does not relay a public line or a notice when a session asks: it
//! appends an entry to the log, and relays entries only as it reads them back, in log order, on
//! every node alike (the sender's included). So every node shows a room's lines in the same
//! order, and no node relays a line that is not in the log. Each message read is stored, with its
//! stream id, by this node's one history writer *before* it is relayed, as on a single node.
//!
//! Local membership stays the hub's own and changes at once; what the hub knows about the other
//! nodes' users (for `/who`, `/rooms` and `/msg`) is a view built from the log's presence entries.

use std::collections::HashMap;
use std::sync::Arc;

use async_channel::Receiver;
use log::{debug, info, warn};

use super::outbox::line;
use super::{Hub, MemberId};
use crate::cluster::{self, Change, Entry, Incoming, Link, LogRecord, Member, Whisper};
use crate::names::{Nick, RoomName};
use crate::protocol;
use crate::storage::{accounts, History, Kind, LogPos, Record};

/// What the hub needs to run in cluster mode.
pub struct ClusterLink {
    pub link: Link,
    pub incoming: Receiver<Incoming>,
}

/// The hub's cluster state.
pub(super) struct State {
    pub link: Link,
    /// Set while the link to Redis is down: lines typed meanwhile are refused.
    paused: bool,
    /// Users of other nodes, by (node, member).
    remote: HashMap<(Arc<str>, Member), Remote>,
    /// Lower-case name to (node, member), for `/msg`.
    remote_by_nick: HashMap<Arc<str>, (Arc<str>, Member)>,
    /// Another node took this one for dead: its users are announced again once the writer has
    /// checked which of their names are still this node's (the answer to `check_names`, see
    /// `partition.rs`).
    pub(super) reannounce: bool,
}

struct Remote {
    nick: Nick,
    room: RoomName,
}

impl State {
    pub(super) fn new(link: Link) -> State {
        State {
            link,
            paused: false,
            remote: HashMap::new(),
            remote_by_nick: HashMap::new(),
            reannounce: false,
        }
    }

    fn insert(&mut self, node: &Arc<str>, member: Member, nick: Nick, room: RoomName) -> bool {
        let key = (node.clone(), member);
        if let Some(old) = self.remote.get(&key) {
            self.remote_by_nick.remove(old.nick.key());
        }
        self.remote_by_nick
            .insert(nick.key().into(), (node.clone(), member));
        self.remote.insert(key, Remote { nick, room }).is_none()
    }

    fn remove(&mut self, node: &Arc<str>, member: Member) -> Option<Remote> {
        let remote = self.remote.remove(&(node.clone(), member))?;
        if self
            .remote_by_nick
            .get(remote.nick.key())
            .is_some_and(|(n, m)| n == node && *m == member)
        {
            self.remote_by_nick.remove(remote.nick.key());
        }
        Some(remote)
    }

    /// Forgets every user of `node`, returning them.
    fn forget_node(&mut self, node: &Arc<str>) -> Vec<Remote> {
        let members: Vec<Member> = self
            .remote
            .keys()
            .filter(|(n, _)| n == node)
            .map(|(_, m)| *m)
            .collect();
        members
            .into_iter()
            .filter_map(|m| self.remove(node, m))
            .collect()
    }
}

impl Hub {
    /// Tells `room` about a change: on a single node straight away; in cluster mode by appending
    /// `entry` to the log, which relays it to every node's members in log order.
    pub(super) fn announce(
        &mut self,
        room: &RoomName,
        except: Option<MemberId>,
        text: &str,
        entry: impl FnOnce() -> Entry,
    ) {
        match &self.cluster {
            Some(cluster) => cluster.link.append(entry()),
            None => self.broadcast(room, except, line(text)),
        }
    }

    /// A public line in cluster mode: appended to the log (relayed when read back), or refused
    /// with a notice while the log is unreachable or too far behind.
    pub(super) fn say_to_log(&mut self, id: MemberId, kind: Kind, text: String) {
        // Mutes are this node's moderation state (see docs/CLUSTER.md: not yet cluster-wide).
        let Some(nick) = self.members.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        if self.is_muted(&nick) {
            self.tell(id, protocol::YOU_ARE_MUTED);
            return;
        }
        let (Some(cluster), Some(member)) = (&self.cluster, self.members.get(&id)) else {
            return;
        };
        if cluster.paused || cluster.link.queued() > cluster::MAX_QUEUED {
            self.tell(id, protocol::NOT_SENT_CLUSTER);
            return;
        }
        debug!(
            "line from {} in {} to the cluster log",
            member.nick, member.room
        );
        cluster.link.append(Entry::Say {
            member: id,
            nick: member.nick.clone(),
            room: member.room.clone(),
            kind,
            body: text.into(),
        });
    }

    /// Appends an account or moderation change to the log (cluster mode only; a single node has
    /// stored it already and there is nobody else to tell).
    pub(super) fn replicate(&self, change: Change) {
        if let Some(cluster) = &self.cluster {
            cluster.link.append(Entry::Change(change));
        }
    }

    /// The name as its user spells it, if a user of another node has it.
    pub(super) fn remote_nick(&self, nick: &Nick) -> Option<Nick> {
        let cluster = self.cluster.as_ref()?;
        let key = cluster.remote_by_nick.get(nick.key())?;
        Some(cluster.remote.get(key)?.nick.clone())
    }

    /// `/msg` to a name with no local user: to its node if another node has it.
    pub(super) fn whisper(&mut self, id: MemberId, from: Nick, to: Nick, text: String) {
        let target = self.cluster.as_ref().and_then(|c| {
            c.remote_by_nick
                .get(to.key())
                .and_then(|(node, m)| Some((node.clone(), c.remote.get(&(node.clone(), *m))?)))
                .map(|(node, r)| (node, r.nick.clone(), c.paused))
        });
        let Some((node, to_nick, paused)) = target else {
            self.tell(id, &protocol::no_such_user(&to));
            return;
        };
        if paused {
            self.tell(id, protocol::NOT_SENT_CLUSTER);
            return;
        }
        debug!("private message from {from} to {to_nick} on node {node}");
        let echo = protocol::private_to(&to_nick, &text);
        if let Some(cluster) = &self.cluster {
            cluster.link.whisper(
                &node,
                Whisper {
                    from,
                    to: to_nick,
                    text,
                },
            );
        }
        self.tell(id, &echo);
    }

    /// Names of other nodes' users in `room`.
    pub(super) fn remote_names_in(&self, room: &RoomName) -> Vec<String> {
        let Some(cluster) = &self.cluster else {
            return Vec::new();
        };
        let mut names: Vec<String> = cluster
            .remote
            .values()
            .filter(|r| r.room == *room)
            .map(|r| r.nick.to_string())
            .collect();
        names.sort_unstable();
        names
    }

    /// Adds other nodes' users to per-room counts.
    pub(super) fn count_remote<'a>(&'a self, counts: &mut HashMap<&'a RoomName, usize>) {
        if let Some(cluster) = &self.cluster {
            for remote in cluster.remote.values() {
                *counts.entry(&remote.room).or_default() += 1;
            }
        }
    }

    /// Acts on what the cluster threads report.
    pub(super) fn on_cluster(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Log(records) => {
                for record in records {
                    if self.closing {
                        return;
                    }
                    self.apply(record);
                }
                // Lines stay held until committed; relay what already is.
                self.relay_committed();
            }
            Incoming::Whisper(whisper) => {
                let Some(target) = self.member_by_name(&whisper.to) else {
                    debug!("private line for {}, who is not here any more", whisper.to);
                    return;
                };
                if !self.allow_private(target) {
                    // The recipient's allowance is used up; the sender's node cannot be told.
                    debug!("private line for {} refused: allowance used", whisper.to);
                    return;
                }
                let text = protocol::private_from(&whisper.from, &whisper.text);
                self.deliver(target, &line(&text));
            }
            Incoming::Paused => self.set_paused(true),
            Incoming::Resumed => self.set_paused(false),
            Incoming::NamesLost { lost, checked } => self.names_lost(lost, checked),
        }
    }

    fn set_paused(&mut self, paused: bool) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        if cluster.paused == paused {
            return;
        }
        cluster.paused = paused;
        let notice = line(if paused {
            protocol::CLUSTER_PAUSED
        } else {
            protocol::CLUSTER_RESUMED
        });
        let ids: Vec<MemberId> = self.members.keys().copied().collect();
        for id in ids {
            self.deliver(id, &notice);
        }
        info!(
            "told {} users the chat is {}",
            self.members.len(),
            if paused { "paused" } else { "back" }
        );
    }

    /// Relays one log entry to this node's users (storing it first if it is a message).
    fn apply(&mut self, record: LogRecord) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let node = record.node.clone();
        let own = *node == **cluster.link.node();
        // The member on this node that wrote the entry, who does not see it echoed.
        let local = |m: Member| own.then_some(m);
        match record.entry.clone() {
            Entry::Say {
                member,
                nick,
                room,
                kind,
                body,
            } => {
                let msg_id = self.next_msg_id;
                self.next_msg_id += 1;
                let formatted = line(&protocol::live(kind, nick.as_str(), &body));
                let stored = Record {
                    id: msg_id,
                    at_ms: record.at_ms(),
                    room: room.shared(),
                    sender: nick.shared(),
                    kind,
                    body,
                    log: Some(LogPos {
                        stream_id: record.id.clone(),
                        seq: record.seq,
                    }),
                };
                // Committed before relayed, as on a single node.
                let sender = Some(Arc::from(nick.key()));
                self.hold(stored, room, local(member), sender, formatted);
            }
            Entry::Joined { member, nick, room } => {
                if !own {
                    cluster.insert(&node, member, nick.clone(), room.clone());
                }
                self.broadcast(&room, local(member), line(&protocol::joined(&nick)));
            }
            Entry::Moved {
                member,
                nick,
                from,
                to,
            } => {
                if !own {
                    cluster.insert(&node, member, nick.clone(), to.clone());
                }
                self.broadcast(&from, local(member), line(&protocol::left_for(&nick, &to)));
                self.broadcast(&to, local(member), line(&protocol::joined(&nick)));
            }
            Entry::Left {
                member,
                nick,
                room,
                reason,
            }
            | Entry::Quit {
                member,
                nick,
                room,
                reason,
            } => {
                if !own {
                    cluster.remove(&node, member);
                }
                // A `/quit` reason is the user's own words, and is marked as such.
                let text = if matches!(record.entry, Entry::Quit { .. }) {
                    protocol::quit(&nick, reason.as_deref())
                } else {
                    protocol::left(&nick, reason.as_deref())
                };
                self.broadcast(&room, None, line(&text));
            }
            Entry::Renamed {
                member,
                old,
                new,
                room,
            } => {
                if !own {
                    cluster.insert(&node, member, new.clone(), room.clone());
                }
                self.broadcast(&room, None, line(&protocol::renamed(&old, &new)));
            }
            Entry::Change(change) => {
                // This node's file too, in log order: the account thread skips what it has.
                self.moderation.accounts.store.apply_change(
                    record.id.clone(),
                    record.seq,
                    change.clone(),
                );
                self.apply_change(change, own);
            }
            Entry::Kick { nick, by, reason } => {
                self.kicked_from_afar(&nick, &by, reason.as_deref());
            }
            Entry::Removed {
                member,
                room,
                notice,
                ..
            } => {
                // A node that no longer lists that user (it took the user's node for dead and
                // said so) does not say it left twice.
                let listed = own || cluster.remove(&node, member).is_some();
                if listed {
                    self.broadcast(&room, None, line(&notice));
                }
            }
            Entry::NodeUp => {
                if own {
                    return;
                }
                // A new run of that node: its earlier users (if it died unannounced) are gone.
                let reason = format!("node {node} restarted");
                self.forget_node(&node, &reason);
                info!("node {node} joined the cluster; sending it who is here");
                let snapshot = self.presence();
                if let Some(cluster) = &self.cluster {
                    cluster.link.append(snapshot);
                }
            }
            Entry::NodeGone { node: gone, reason } => {
                if *gone == **cluster.link.node() {
                    // Another node took this one for dead (a long outage, a freeze): its names
                    // may have been given away meanwhile. The writer checks them first; the
                    // users who kept theirs are announced again after (`names_lost`).
                    warn!(
                        "node {gone} was announced gone ({reason}); checking its users' names, \
                         then announcing them again"
                    );
                    cluster.reannounce = true;
                    cluster.link.check_names();
                    return;
                }
                info!("node {gone} left the cluster ({reason})");
                self.forget_node(&gone, &reason);
            }
            Entry::Presence { members } => {
                if own {
                    return;
                }
                for (member, nick, room) in members {
                    let new = self
                        .cluster
                        .as_mut()
                        .is_some_and(|c| c.insert(&node, member, nick.clone(), room.clone()));
                    if new {
                        self.broadcast(&room, None, line(&protocol::joined(&nick)));
                    }
                }
            }
        }
    }

    /// Removes a node's users from the view and tells their rooms they left.
    fn forget_node(&mut self, node: &Arc<str>, reason: &str) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        for remote in cluster.forget_node(node) {
            let text = protocol::left(&remote.nick, Some(reason));
            self.broadcast(&remote.room, None, line(&text));
        }
    }

    /// This node's users, for a node that just started.
    pub(super) fn presence(&self) -> Entry {
        Entry::Presence {
            members: self
                .members
                .iter()
                .map(|(id, m)| (*id, m.nick.clone(), m.room.clone()))
                .collect(),
        }
    }
}

/// Stores what this node missed: the log's messages after the newest row stored here, with
/// local ids after `last_id`, and the account and moderation changes after the newest one
/// applied to `db`, up to this run's start. Runs before the server accepts anybody (and before
/// the bans and topics are loaded), so neither a replay nor a login sees a file behind the
/// cluster. Returns the new newest id.
pub fn catch_up(
    node: &mut cluster::Node,
    history: &History,
    db: &std::path::Path,
    last_id: i64,
    position: Option<LogPos>,
) -> Result<i64, String> {
    let conn = accounts::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
    let applied = accounts::applied_position(&conn)
        .map_err(|e| format!("{}: cluster_applied: {e}", db.display()))?;
    // Read from the older of the two positions; each kind skips what it has.
    let messages_after: Option<Arc<str>> = position.as_ref().map(|p| p.stream_id.clone());
    let after: Option<(String, i64)> = match (&position, &applied) {
        (Some(p), Some((id, seq))) => Some(if cluster::stream_id_lt(id, &p.stream_id) {
            (id.clone(), *seq)
        } else {
            (p.stream_id.to_string(), p.seq)
        }),
        _ => None,
    };
    let mut next_id = last_id + 1;
    let mut changes = 0u64;
    let mut newest: Option<(Arc<str>, i64)> = None;
    let mut failed = None;
    let result = node.catch_up(
        after.as_ref().map(|(id, seq)| (id.as_str(), *seq)),
        |batch| {
            for record in batch {
                newest = Some((record.id.clone(), record.seq));
                match &record.entry {
                    Entry::Say {
                        nick,
                        room,
                        kind,
                        body,
                        ..
                    } => {
                        let have = messages_after
                            .as_deref()
                            .is_some_and(|stored| !cluster::stream_id_lt(stored, &record.id));
                        if have {
                            continue;
                        }
                        let stored = Record {
                            id: next_id,
                            at_ms: record.at_ms(),
                            room: room.shared(),
                            sender: nick.shared(),
                            kind: *kind,
                            body: body.clone(),
                            log: Some(LogPos {
                                stream_id: record.id.clone(),
                                seq: record.seq,
                            }),
                        };
                        next_id += 1;
                        smol::block_on(history.append(stored));
                    }
                    Entry::Change(change) if failed.is_none() => {
                        match accounts::apply_change(&conn, &record.id, record.seq, change) {
                            Ok(true) => changes += 1,
                            Ok(false) => {}
                            Err(e) => failed = Some(e),
                        }
                    }
                    _ => {}
                }
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(format!(
            "{}: cannot apply the cluster log's account changes: {e}",
            db.display()
        ));
    }
    // Entries that changed nothing here count as applied too, so the next start reads less.
    if let Some((id, seq)) = newest {
        let behind = applied
            .as_ref()
            .is_none_or(|(applied, _)| cluster::stream_id_lt(applied, &id));
        if behind {
            accounts::set_applied(&conn, &id, seq)
                .map_err(|e| format!("{}: cluster_applied: {e}", db.display()))?;
        }
    }
    let stored = next_id - 1 - last_id;
    let last_id = next_id - 1;
    smol::block_on(history.wait_committed(last_id));
    info!(
        "node {}: caught up {} log entries ({} messages stored, {} account changes applied){}",
        node.name(),
        result.read,
        stored,
        changes,
        if result.lost > 0 {
            format!(", {} could not be recovered", result.lost)
        } else {
            String::new()
        }
    );
    Ok(last_id)
}
