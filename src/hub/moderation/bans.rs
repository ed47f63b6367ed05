//! Bans as the hub keeps them: the list shared with the accept loop and the name prompt, the
//! rules a chat ban must pass, and the operators chat may not ban by name.
//!
//! The list itself (`moderation/ban.rs` at the top level) matches names and prefixes; this part
//! decides who a ban covers among connected members, refuses bans that are too wide, cover their
//! operator or name an operator made on the command line, and replaces the list on SIGHUP.

use std::collections::{HashMap, HashSet};

use log::{info, warn};

use crate::hub::event::Refusal;
use crate::hub::members::Who;
use crate::hub::moderation::Decision;
use crate::moderation::ban::{Ban, BanList, SharedBans, Target};
use crate::moderation::lookalike;
use crate::names::Nick;
use crate::storage::accounts::Reloaded;
use crate::vocab::Removal;

/// Whether a ban on `target` covers a connected member: by name, account, or address.
pub fn covers(target: &Target, who: &Who<'_>) -> bool {
    match target {
        Target::Name(name) => who.nick.key() == name.as_str() || who.account == Some(name.as_str()),
        Target::Net(net) => net.contains(who.ip),
    }
}

/// Whether a ban on `target` would keep `who` out from now on: its address, its account, or its
/// name or a look-alike of it (the rule the name prompt applies, `moderation/lookalike.rs`).
fn locks_out(target: &Target, who: &Who<'_>) -> bool {
    match target {
        Target::Name(name) => lookalike::covers(name, who.nick) || covers(target, who),
        Target::Net(_) => covers(target, who),
    }
}

/// The hub's side of the ban list.
pub struct Bans {
    list: SharedBans,
    /// Accounts made operators on the command line (lower case): chat can neither /deop nor
    /// ban them by name. Refreshed on SIGHUP and at each such operator's login.
    cli_operators: HashSet<String>,
    /// Bans and unbans set in chat so far: a reload read before the latest of them is stale.
    edits: u64,
}

impl Bans {
    /// `list` is the list shared with the accept loop; `operators` the stored roles.
    pub fn new(list: SharedBans, operators: &[(String, bool)]) -> Bans {
        let cli_operators = operators
            .iter()
            .filter(|(_, cli)| *cli)
            .map(|(name, _)| name.clone())
            .collect();
        Bans {
            list,
            cli_operators,
            edits: 0,
        }
    }

    /// Notes the origin of a role read at login, fresher than the one loaded at start: a role
    /// given with `smolchat op add` while the server runs is protected from its first login.
    pub fn logged_in(&mut self, account: &str, cli_operator: bool) {
        if cli_operator {
            self.cli_operators.insert(account.to_owned());
        } else {
            self.cli_operators.remove(account);
        }
    }

    /// Whether `op` may ban `target`: not too wide (a prefix shorter than /8 or /32), not
    /// covering the operator, not naming an operator made on the command line.
    pub fn allowed<'a>(
        &self,
        op: &Who<'_>,
        target: &Target,
        mut members: impl Iterator<Item = Who<'a>>,
    ) -> Result<(), Refusal> {
        if let Target::Net(net) = target {
            if let Some(min) = net.too_wide() {
                let target = target.to_string();
                return Err(Refusal::BanTooWide { target, min });
            }
        }
        if locks_out(target, op) {
            return Err(Refusal::BanCoversYou);
        }
        let Target::Name(name) = target else {
            return Ok(());
        };
        // The account named, or a look-alike of it (a ban on `boss_` would keep `boss` out at
        // the name prompt).
        let covered = self.cli_operators.iter().find(|op| {
            *op == name || Nick::parse(op).is_ok_and(|nick| lookalike::covers(name, &nick))
        });
        if let Some(op) = covered {
            return Err(Refusal::CliOperator(op.clone()));
        }
        // A connected member logged in to such an account, under another name.
        let protected = members.find_map(|w| {
            w.account
                .filter(|a| locks_out(target, &w) && self.cli_operators.contains(*a))
                .map(str::to_owned)
        });
        protected.map_or(Ok(()), |name| Err(Refusal::CliOperator(name)))
    }

    /// Adds a ban (replacing one on the same target).
    pub fn add(&mut self, ban: Ban, now_ms: i64) {
        match self.list.write() {
            Ok(mut bans) => bans.add(ban, now_ms),
            Err(_) => warn!("the ban list lock is poisoned; ban not applied"),
        }
    }

    /// Lifts the ban on `target`; false if there was none in force.
    pub fn remove(&mut self, target: &Target, now_ms: i64) -> bool {
        self.list
            .write()
            .is_ok_and(|mut bans| bans.remove(target, now_ms))
    }

    /// Notes a ban or unban set in chat (after its write is queued: a reload queued later
    /// reads it).
    pub fn edited(&mut self) {
        self.edits += 1;
    }

    /// The reload's token: bans and unbans set in chat so far.
    pub fn edits(&self) -> u64 {
        self.edits
    }

    /// The bans in force, oldest first.
    pub fn active(&self, now_ms: i64) -> Vec<Ban> {
        match self.list.read() {
            Ok(bans) => bans.active(now_ms).cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// SIGHUP: the bans and roles read behind every write queued before `seen` edits. `None`
    /// if chat has set bans since (the read may miss them: read again); otherwise the bans
    /// replace those in memory, and members now covered by one are removed, and members whose
    /// role changed get it.
    pub fn reloaded<'a>(
        &mut self,
        reloaded: Reloaded,
        seen: u64,
        now_ms: i64,
        members: impl Iterator<Item = Who<'a>>,
    ) -> Option<Vec<Decision>> {
        if seen != self.edits {
            return None;
        }
        let n_bans = reloaded.bans.len();
        let bans = BanList::new(reloaded.bans);
        let roles: HashMap<String, bool> = reloaded.operators.into_iter().collect();
        self.cli_operators = roles
            .iter()
            .filter(|(_, cli)| **cli)
            .map(|(name, _)| name.clone())
            .collect();
        let mut decisions = Vec::new();
        for w in members {
            let ban = bans
                .address(w.ip, now_ms)
                .or_else(|| bans.name_exact(w.nick.key(), now_ms))
                .or_else(|| w.account.and_then(|a| bans.name_exact(a, now_ms)));
            if let Some(ban) = ban {
                let removal = Removal::Banned {
                    by: ban.by.as_str().into(),
                    reason: ban.reason.as_deref().map(Into::into),
                    expires_ms: ban.expires_ms,
                };
                decisions.push(Decision::Remove(w.id, removal));
                continue;
            }
            let operator = w.account.is_some_and(|a| roles.contains_key(a));
            if operator != w.operator {
                decisions.push(Decision::Operator {
                    member: w.id,
                    operator,
                    tell: true,
                });
            }
        }
        match self.list.write() {
            Ok(mut shared) => *shared = bans,
            Err(_) => warn!("the ban list lock is poisoned; bans not reloaded"),
        }
        let removed = decisions
            .iter()
            .filter(|d| matches!(d, Decision::Remove(..)))
            .count();
        info!(
            "reloaded {n_bans} bans and {} operators ({removed} removed by a ban)",
            roles.len()
        );
        Some(decisions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Nick;
    use std::sync::{Arc, RwLock};

    fn who<'a>(id: u64, nick: &'a Nick, account: Option<&'a str>, ip: &str) -> Who<'a> {
        Who {
            id,
            nick,
            account,
            ip: ip.parse().unwrap(),
            operator: account == Some("boss"),
        }
    }

    /// Too wide, covering the operator, or naming a command-line operator (or a member logged
    /// in to one): refused. Anything else is allowed.
    #[test]
    fn what_a_chat_ban_may_not_do() {
        let list = Arc::new(RwLock::new(BanList::default()));
        let bans = Bans::new(list, &[("root".into(), true), ("carol".into(), false)]);
        let boss = Nick::parse("boss").unwrap();
        let op = who(1, &boss, Some("boss"), "192.0.2.1");
        let sneaky = Nick::parse("sneaky").unwrap();
        let members = || vec![who(2, &sneaky, Some("root"), "198.51.100.7")].into_iter();
        let check = |t: &str| bans.allowed(&op, &Target::parse(t), members());
        assert!(matches!(
            check("0.0.0.0/0"),
            Err(Refusal::BanTooWide { min: 8, .. })
        ));
        assert_eq!(check("192.0.2.0/24"), Err(Refusal::BanCoversYou));
        assert_eq!(check("root"), Err(Refusal::CliOperator("root".into())));
        assert_eq!(check("sneaky"), Err(Refusal::CliOperator("root".into())));
        assert_eq!(check("carol"), Ok(()));
        assert_eq!(
            check("198.51.100.0/24"),
            Ok(()),
            "an address ban is not by name"
        );
    }

    /// A reload read before a chat ban is stale; otherwise covered members are removed and
    /// changed roles given.
    #[test]
    fn a_reload_replaces_the_list() {
        let list = Arc::new(RwLock::new(BanList::default()));
        let mut bans = Bans::new(list.clone(), &[]);
        let (bob, carol) = (Nick::parse("bob").unwrap(), Nick::parse("carol").unwrap());
        let members = || {
            vec![
                who(2, &bob, None, "192.0.2.9"),
                who(3, &carol, Some("carol"), "198.51.100.1"),
            ]
            .into_iter()
        };
        let reloaded = || Reloaded {
            bans: vec![Ban {
                target: Target::parse("192.0.2.0/24"),
                reason: None,
                by: "cli".into(),
                created_ms: 0,
                expires_ms: None,
            }],
            operators: vec![("carol".into(), true)],
        };
        bans.edited();
        assert!(
            bans.reloaded(reloaded(), 0, 0, members()).is_none(),
            "stale"
        );
        let decisions = bans.reloaded(reloaded(), 1, 0, members()).unwrap();
        assert!(matches!(decisions[0], Decision::Remove(2, _)));
        assert!(matches!(
            decisions[1],
            Decision::Operator {
                member: 3,
                operator: true,
                tell: true
            }
        ));
        assert!(list
            .read()
            .unwrap()
            .address("192.0.2.3".parse().unwrap(), 0)
            .is_some());
        assert_eq!(
            bans.allowed(
                &who(1, &bob, None, "203.0.113.1"),
                &Target::parse("carol"),
                members()
            ),
            Err(Refusal::CliOperator("carol".into()))
        );
    }
}
