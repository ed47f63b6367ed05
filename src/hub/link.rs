//! The one seam between the hub and cluster mode.
//!
//! Everything a member does that other members see (a public line, a join, a leave, a rename) is
//! an [`Entry`] the hub *publishes*. On a single node [`Link::publish`] hands it straight back,
//! and the hub applies it at once as its own; in cluster mode it is appended to the cluster log
//! and applied when the reader thread reads it back, in log order, on every node alike. So the
//! hub has one path for what entries mean, whichever the mode, and the rest of the hub never asks
//! which mode it is in.

use std::sync::Arc;

use log::{info, warn};

use crate::cluster::{self, Entry, Whisper};
use crate::hub::event::Refusal;
use crate::hub::remote::{Remote, Remotes};
use crate::names::{Nick, RoomName};
use crate::vocab::{Change, Departure, Dropped, MemberId};

/// What an entry read from the log means here, beyond the entry itself.
#[derive(Debug)]
pub enum Seen {
    /// Another node's member left these rooms (its node is gone).
    Left(Nick, Vec<RoomName>, Departure),
    /// Another node's member, not known before, is in this room (a snapshot).
    Joined(Nick, RoomName),
    /// This node must say who is here (a node started).
    AnnounceMembers,
    /// The entry is about another node's member this node no longer lists: not to be shown.
    Unlisted,
}

/// The departures of a gone node's members.
fn gone(remotes: Vec<Remote>, why: &Departure) -> impl Iterator<Item = Seen> + '_ {
    remotes
        .into_iter()
        .map(move |r| Seen::Left(r.nick, r.rooms, why.clone()))
}

/// Alone, or one node of a cluster.
pub enum Link {
    Single,
    Cluster(Box<Cluster>),
}

/// A cluster node's link and what it knows of the other nodes.
pub struct Cluster {
    link: cluster::Link,
    /// Set while the link to Redis is down: lines typed meanwhile are refused.
    paused: bool,
    /// Another node took this one for dead: its members are announced again once the writer
    /// has checked which of their names are still this node's ([`Link::names_checked`]).
    reannounce: bool,
    pub remotes: Remotes,
}

impl Link {
    /// In cluster mode, over `link`.
    pub fn cluster(link: cluster::Link) -> Link {
        Link::Cluster(Box::new(Cluster {
            link,
            paused: false,
            reannounce: false,
            remotes: Remotes::default(),
        }))
    }

    /// Publishes an entry: handed back on a single node, to be applied now; appended to the log
    /// in cluster mode, to be applied when read back.
    pub fn publish(&self, entry: Entry) -> Option<Entry> {
        match self {
            Link::Single => Some(entry),
            Link::Cluster(cluster) => {
                cluster.link.append(entry);
                None
            }
        }
    }

    /// Sends an account or moderation change, already applied here, to the other nodes (cluster
    /// mode only: a single node has stored it and there is nobody else to tell).
    pub fn replicate(&self, change: Change) {
        if let Link::Cluster(cluster) = self {
            cluster.link.append(Entry::Change(change));
        }
    }

    /// Whether a new public line may be published now.
    pub fn accepts_lines(&self) -> Result<(), Refusal> {
        match self {
            Link::Cluster(c) if c.paused || c.link.queued() > cluster::MAX_QUEUED => {
                Err(Refusal::ClusterPaused)
            }
            _ => Ok(()),
        }
    }

    /// Frees a name claimed cluster-wide for `member`.
    pub fn release(&self, nick: &Nick, member: MemberId) {
        if let Link::Cluster(cluster) = self {
            cluster.link.release(nick, member);
        }
    }

    /// This node's name in the cluster.
    pub fn node(&self) -> Option<&Arc<str>> {
        match self {
            Link::Single => None,
            Link::Cluster(cluster) => Some(cluster.link.node()),
        }
    }

    /// The other nodes' members (none on a single node).
    pub fn remotes(&self) -> Option<&Remotes> {
        match self {
            Link::Single => None,
            Link::Cluster(cluster) => Some(&cluster.remotes),
        }
    }

    /// Sends a private line to a member of another node; refused while the cluster is away.
    pub fn whisper(&self, node: &Arc<str>, whisper: Whisper) -> Result<(), Refusal> {
        match self {
            Link::Cluster(c) if c.paused => Err(Refusal::ClusterPaused),
            Link::Cluster(c) => {
                c.link.whisper(node, whisper);
                Ok(())
            }
            Link::Single => Ok(()),
        }
    }

    /// Keeps the view of the other nodes' members up to date with an entry read from the log
    /// (`from`: the node that wrote it, `None` for this node), and says what it means here
    /// beyond the entry itself: members gone with their node, members a snapshot announces,
    /// and whether this node must announce its own members.
    pub fn observe(&mut self, from: Option<&Arc<str>>, entry: &Entry) -> Vec<Seen> {
        let Link::Cluster(cluster) = self else {
            return Vec::new();
        };
        let remotes = &mut cluster.remotes;
        let me = cluster.link.node();
        let mut seen = Vec::new();
        match (from, entry) {
            (Some(node), Entry::Joined { member, nick, room }) => {
                remotes.entered(node, *member, nick, room);
            }
            (
                Some(node),
                Entry::Left {
                    member,
                    nick,
                    rooms,
                    why,
                },
            ) => {
                if !remotes.knows(node, *member) {
                    seen.push(Seen::Unlisted);
                }
                for room in rooms {
                    remotes.left(node, *member, room);
                }
                match why {
                    // A move is one step for the view (its join follows in the next entry), so
                    // the member is never missing from `/who` and `/rooms` in between.
                    Departure::Moved(to) => {
                        remotes.entered(node, *member, nick, to);
                    }
                    // Out of a room, still in the chat (perhaps in no room: IRC's `PART`).
                    Departure::Parted(_) => {}
                    Departure::Quit(_) | Departure::Removed(_) | Departure::Dropped(_) => {
                        remotes.forget(node, *member);
                    }
                }
            }
            (Some(node), Entry::Renamed { member, new, .. }) => {
                remotes.renamed(node, *member, new);
            }
            (Some(node), Entry::Arrived { members }) => {
                for (member, nick) in members {
                    remotes.arrived(node, *member, nick);
                }
            }
            (Some(node), Entry::Presence { members }) => {
                for (member, nick, room) in members {
                    if remotes.entered(node, *member, nick, room) {
                        seen.push(Seen::Joined(nick.clone(), room.clone()));
                    }
                }
            }
            (Some(node), Entry::NodeUp) => {
                // A new run of that node: its earlier members (if it died unannounced) are gone.
                info!("node {node} joined the cluster; sending it who is here");
                let why = Departure::Dropped(Dropped::NodeRestarted(node.clone()));
                seen.extend(gone(remotes.forget_node(node), &why));
                seen.push(Seen::AnnounceMembers);
            }
            (_, Entry::NodeGone { node, .. }) if node == me => {
                // Another node took this one for dead (a long outage, a freeze): its names may
                // have been given away meanwhile. The writer checks them first; the members who
                // kept theirs are announced again after (`hub/cluster.rs`).
                warn!("node {node} was announced gone; checking its names, then announcing its members again");
                cluster.reannounce = true;
                cluster.link.check_names();
            }
            (_, Entry::NodeGone { node, stopped }) => {
                info!("node {node} left the cluster");
                let dropped = if *stopped {
                    Dropped::NodeStopped
                } else {
                    Dropped::NodeLost(node.clone())
                };
                let why = Departure::Dropped(dropped);
                seen.extend(gone(remotes.forget_node(node), &why));
            }
            _ => {}
        }
        seen
    }

    /// The writer checked this node's names (`checked`, or reported some lost on its own):
    /// true if this node's members are to be announced again now.
    pub fn names_checked(&mut self, checked: bool) -> bool {
        match self {
            Link::Cluster(c) if checked => std::mem::take(&mut c.reannounce),
            _ => false,
        }
    }

    /// Notes that the link to the cluster was lost or is back; true if that is news.
    pub fn set_paused(&mut self, paused: bool) -> bool {
        match self {
            Link::Cluster(c) if c.paused != paused => {
                c.paused = paused;
                true
            }
            _ => false,
        }
    }
}
