//! The hub after a partition heals: one holder per name.
//!
//! A node frozen or cut off past the heartbeat's expiry comes back to find that the others took
//! it for dead, and that some of its users' names may have been given away meanwhile. Redis
//! decides who holds a name (the writer renews only the names still this node's and reports
//! the others, `cluster/writer.rs`); this part lets the users of lost names go, each told why,
//! and then announces the others again. An `impl Hub` block of its own, beside `cluster.rs`.

use log::warn;

use super::Hub;
use crate::cluster::LostName;
use crate::protocol;

impl Hub {
    /// After a partition: the users of this node whose names another node holds now go (that
    /// node's user keeps the name, and Redis says who holds it), each told why, so no name has
    /// two holders. The notice goes through the log, and only nodes that still list the user
    /// show it (those that took this node for dead already said it left). Then, if another
    /// node had announced this one gone, the users left are announced again.
    pub(super) fn names_lost(&mut self, lost: Vec<LostName>, checked: bool) {
        for name in lost {
            let Some(nick) = self.members.get(&name.member).map(|m| m.nick.clone()) else {
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
            let reason = protocol::name_taken_reason(&name.holder);
            self.eject(
                name.member,
                &protocol::left(&nick, Some(&reason)),
                &protocol::name_taken_while_cut_off(&nick, &name.holder),
            );
        }
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        if checked && std::mem::take(&mut cluster.reannounce) {
            let snapshot = self.presence();
            if let Some(cluster) = &self.cluster {
                cluster.link.append(snapshot);
            }
        }
    }
}
