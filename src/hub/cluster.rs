//! What the cluster threads report, for the hub: entries read back from the log (the one path
//! through [`Core`](crate::hub::core::Core) and [`Moderation::apply`]), private lines from other
//! nodes, the link's state, and names lost while this node was cut off.
//!
//! After a partition heals, one holder per name: a node frozen or cut off past the heartbeat's
//! expiry comes back to find that the others took it for dead, and that some of its members'
//! names may have been given away meanwhile. Redis decides who holds a name (the writer renews
//! only the names still this node's and reports the others, `cluster/writer.rs`); the hub lets
//! the members of lost names go, each told why, and then announces the others again.

use log::warn;

use crate::cluster::{Entry, Incoming, LostName};
use crate::hub::moderation::Origin;
use crate::hub::state::Hub;
use crate::names::Nick;
use crate::vocab::{Change, Departure, Dropped};

impl Hub {
    /// Acts on what the cluster threads report.
    pub fn on_cluster(&mut self, incoming: Incoming) {
        match incoming {
            Incoming::Log(records) => {
                for record in records {
                    if self.closing {
                        return;
                    }
                    if let Entry::Change(change) = &record.entry {
                        // This node's file too, in log order: the account thread skips what it
                        // has.
                        let (id, seq) = (record.id.clone(), record.seq);
                        self.moderation
                            .store()
                            .apply_change(id, seq, change.clone());
                    }
                    let now = self.clock.now();
                    let at_ms = self.clock.now_ms();
                    if let Some((change, here)) = self.core.read_back(record, (now, at_ms)) {
                        self.change(change, here);
                    }
                }
                // Lines stay held until committed; relay what already is.
                self.core.relay_committed(self.clock.now());
            }
            Incoming::Whisper(whisper) => self.core.whisper(whisper, self.clock.now()),
            Incoming::Paused => self.core.cluster_paused(true),
            Incoming::Resumed => self.core.cluster_paused(false),
            Incoming::NamesLost { lost, checked } => self.names_lost(lost, checked),
        }
        self.core.settle(self.clock.now());
    }

    /// An account or moderation change read from the cluster log (`here`: made on this node),
    /// applied to this hub's state. (The account thread applies it to the file.)
    fn change(&mut self, change: Change, here: bool) {
        let origin = if here { Origin::Echo } else { Origin::Remote };
        let named = match &change {
            Change::Mute { name, .. } | Change::Unmute { name } => Nick::parse(name).ok(),
            _ => None,
        };
        let core = &self.core;
        let named = named.and_then(|n| core.who_is(&n));
        let now_ms = self.clock.now_ms();
        let members = core.members.whos();
        let decisions = self
            .moderation
            .apply(&change, origin, now_ms, named, members);
        self.execute(decisions);
    }

    /// After a partition: the members whose names another node holds now go (that node's user
    /// keeps the name), each told why, so no name has two holders; the notice goes through the
    /// log, and only nodes that still list the member show it. Then, if another node had
    /// announced this one gone, the members left are announced again.
    fn names_lost(&mut self, lost: Vec<LostName>, checked: bool) {
        let (now, at_ms) = (self.clock.now(), self.clock.now_ms());
        for name in lost {
            let Some(nick) = self.core.members.get(name.member).map(|m| m.nick.clone()) else {
                continue;
            };
            if nick.skeleton() != name.skeleton {
                // Renamed since: the lost name was released with the rename.
                continue;
            }
            warn!(
                "{nick} disconnected: node {} holds the name now (this node was cut off from \
                 the cluster past the heartbeat's expiry meanwhile)",
                name.holder
            );
            let why = Departure::Dropped(Dropped::NameTaken(name.holder.into()));
            self.core.eject(name.member, why, now, at_ms);
        }
        if self.core.link.names_checked(checked) {
            self.core.announce_members(now, at_ms);
        }
        self.core.settle(now);
    }
}
