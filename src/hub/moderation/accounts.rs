//! Operators' changes to accounts: `/op`, `/deop` and `/unregister NAME`. Each is stored on the
//! account thread first (the database decides: is the name registered, was its role given on
//! the command line?), and applied when the answer comes back on the hub's control channel.

use log::warn;

use super::{Decision, Moderation, Origin};
use crate::hub::control::Control;
use crate::hub::event::{Refusal, Reply};
use crate::hub::members::Who;
use crate::names::Nick;
use crate::storage::accounts::{InChat, RoleChange};
use crate::storage::StorageError;
use crate::vocab::{Change, MemberId};

impl Moderation {
    /// Stores `change` to the account `nick` on the account thread, however long the database
    /// is locked; the answer comes back as [`Control::Stored`].
    pub(super) fn store_first(&mut self, op: MemberId, nick: Nick, change: InChat) {
        let control = self.control.clone();
        let name = nick.key().to_owned();
        self.store.change_in_chat_then(name, change, move |result| {
            let stored = Control::Stored {
                op,
                nick,
                change,
                result,
            };
            let _ = control.send_blocking(stored);
        });
    }

    /// A change by member `op` to the account `nick`, once stored: applied to the members
    /// logged in to the account, who are told (by the name the operator typed), as is the
    /// operator; replicated, and logged.
    pub(super) fn stored<'a>(
        &mut self,
        op: MemberId,
        (nick, change): (Nick, InChat),
        result: Result<RoleChange, StorageError>,
        now_ms: i64,
        members: impl Iterator<Item = Who<'a>> + Clone,
    ) -> Vec<Decision> {
        let name = nick.to_string();
        let refusal = match (result, change) {
            (Ok(RoleChange::Done), _) => None,
            (Ok(RoleChange::NotRegistered), InChat::Role(_)) => Some(Refusal::NotRegistered(name)),
            (Ok(RoleChange::NotRegistered), InChat::Remove) => Some(Refusal::NoSuchAccount(name)),
            (Ok(RoleChange::MadeOnCommandLine), _) => Some(Refusal::CliOperator(name)),
            (Err(e), _) => {
                warn!("{change:?} {nick}: {e}");
                Some(Refusal::AccountsUnavailable)
            }
        };
        if let Some(refusal) = refusal {
            return vec![Decision::Tell(op, Reply::Refused(refusal))];
        }
        let (replicated, told, done, action) = match change {
            InChat::Role(operator) => {
                let role = Reply::Role {
                    name: nick.shared(),
                    operator,
                };
                let change = Change::Role {
                    name: nick.key().to_owned(),
                    operator,
                };
                let action = if operator { "op" } else { "deop" };
                (change, role.clone(), role, action)
            }
            InChat::Remove => {
                let by = members.clone().find(|w| w.id == op).map(|w| w.nick.clone());
                let removed = Reply::AccountRemoved {
                    name: nick.shared(),
                    by,
                };
                let change = Change::Unregister {
                    name: nick.key().to_owned(),
                };
                (
                    change,
                    removed,
                    Reply::Unregistered(nick.shared()),
                    "unregister",
                )
            }
        };
        let mut decisions = self.apply(&replicated, Origin::Echo, now_ms, None, members.clone());
        let holders: Vec<MemberId> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Operator { member, .. } | Decision::LoggedOut(member)
                    if *member != op =>
                {
                    Some(*member)
                }
                _ => None,
            })
            .collect();
        decisions.extend(holders.into_iter().map(|h| Decision::Tell(h, told.clone())));
        decisions.push(Decision::Tell(op, done));
        decisions.push(Decision::Replicate(replicated));
        if let Some(by) = members.clone().find(|w| w.id == op) {
            self.log(by.nick, action, nick.key().to_owned(), [None, None]);
        }
        decisions
    }
}
