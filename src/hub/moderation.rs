//! Moderation in the hub: operators, kick, ban, mute, topics and per-user ignore lists.
//!
//! An `impl Hub` block of its own, so the hub's core stays about membership and fan-out. The hub
//! decides (it alone knows who is where and who is an operator); the ban list it shares with the
//! accept loop and the name prompt; the database only remembers, through the account thread
//! (`storage/accounts.rs`), written in order behind the hub's back.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use log::{info, warn};

use super::outbox::{line, Line};
use super::{Event, Fault, Hub, Member, MemberId};
use crate::accounts::Accounts;
use crate::clock;
use crate::cluster::{Change, Entry};
use crate::limits::address::group;
use crate::moderation::ban::{Ban, BanList, Target};
use crate::moderation::lookalike;
use crate::names::{Nick, RoomName};
use crate::protocol;
use crate::session::command::HELP_OPERATORS;
use crate::storage::accounts::{LogEntry, Reloaded, StoredMute};

/// Who a newcomer is, beyond the name: where from, and which account it logged in to.
#[derive(Debug, Clone)]
pub struct Identity {
    pub ip: IpAddr,
    /// The account (lower case) this session logged in to or registered, if any.
    pub account: Option<Arc<str>>,
    pub operator: bool,
    /// The role was given on the command line: chat can neither /deop nor ban it by name.
    pub cli_operator: bool,
}

/// What the hub needs for moderation, handed over at start.
pub struct Setup {
    pub accounts: Accounts,
    /// Room name to (topic, set by), as stored.
    pub topics: HashMap<String, (String, String)>,
    /// The mutes in force, as stored.
    pub mutes: Vec<StoredMute>,
    /// Operator accounts, and whether each was made on the command line.
    pub operators: Vec<(String, bool)>,
}

/// The member id of moderation events that come from no connection (SIGHUP). Ids start at 1.
pub const NOBODY: MemberId = 0;

/// The moderation commands and account changes sessions send to the hub.
#[derive(Debug)]
pub enum Action {
    Kick(Nick, Option<String>),
    Ban {
        target: Target,
        duration: Option<(Duration, String)>,
        reason: Option<String>,
    },
    Unban(Target),
    Bans,
    Mute(Nick, Option<(Duration, String)>),
    Unmute(Nick),
    /// Before `/op` or `/deop`: whether the sender is an operator (told so if not). The session
    /// then writes the role itself and reports with [`Action::Opped`]: the hub never waits for
    /// the disk.
    MayOp {
        command: &'static str,
        reply: Sender<bool>,
    },
    /// The role of the account `nick` was stored: apply it to whoever is logged in to it.
    Opped(Nick, bool),
    /// An operator's `/unregister NAME` deleted the account `nick`: tell whoever is logged in
    /// to it, log it, replicate it.
    Unregistered(Nick),
    Topic(Option<String>),
    Ignore(Option<Nick>),
    Unignore(Nick),
    /// SIGHUP: re-read the bans and operator roles (changed by `smolchat ban` and `smolchat op`).
    /// `events` is the hub's own queue, for the answer.
    Reload {
        events: Sender<Event>,
    },
    /// The bans and roles read for [`Action::Reload`], when the hub had made `seen` ban edits.
    Reloaded {
        reloaded: Reloaded,
        seen: u64,
        events: Sender<Event>,
    },
    /// After `/help`: the operator lines, to operators only.
    OperatorHelp,
    /// The session registered, logged in to or gave up an account.
    Account {
        account: Option<Arc<str>>,
        operator: bool,
    },
    /// The session's current name and account.
    Whoami {
        reply: Sender<Nick>,
    },
    /// The session stored an account change (`/register`, `/password`, `/unregister`): in cluster
    /// mode, the hub appends it to the log so every node's file holds it.
    Replicate(Change),
}

/// The hub's moderation state.
pub(super) struct State {
    pub(super) accounts: Accounts,
    /// Mutes in force. Few (operators set them by hand), so a list.
    mutes: Vec<Mute>,
    /// Each ignoring member's ignored names (lower case). Empty for almost everyone, so the
    /// fan-out checks it only when it is not empty at all.
    pub(super) ignoring: HashMap<MemberId, HashSet<Arc<str>>>,
    /// Room name to (topic, set by).
    topics: HashMap<String, (Arc<str>, Arc<str>)>,
    /// Accounts made operators on the command line (lower case): chat can neither /deop nor
    /// ban them by name. Refreshed on SIGHUP.
    cli_operators: HashSet<String>,
    /// Bans and unbans set in chat so far: a reload read before the latest of them is stale.
    ban_edits: u64,
}

impl State {
    pub(super) fn new(setup: Setup) -> State {
        State {
            accounts: setup.accounts,
            mutes: setup.mutes.into_iter().map(Mute::from_stored).collect(),
            ignoring: HashMap::new(),
            cli_operators: setup
                .operators
                .into_iter()
                .filter(|(_, cli)| *cli)
                .map(|(name, _)| name)
                .collect(),
            ban_edits: 0,
            topics: setup
                .topics
                .into_iter()
                .map(|(room, (text, by))| (room, (text.into(), by.into())))
                .collect(),
        }
    }

    /// Notes the origin of a role read at login, fresher than the one loaded at start: a role
    /// given with `smolchat op add` while the server runs is protected from its first login.
    pub(super) fn logged_in(&mut self, identity: &Identity) {
        if let Some(account) = &identity.account {
            if identity.cli_operator {
                self.cli_operators.insert(account.to_string());
            } else {
                self.cli_operators.remove(&**account);
            }
        }
    }

    /// The topic line for a room, if it has one.
    pub(super) fn topic_line(&self, room: &RoomName) -> Option<String> {
        self.topics
            .get(room.as_str())
            .map(|(text, by)| protocol::topic(room, text, by))
    }
}

/// Most names one connection may ignore. Not configurable: a hundred covers any harassment a
/// person meets in one session, and bounds both the hub's memory and the `/ignore` listing.
pub const MAX_IGNORED: usize = 100;

/// Most names one mute remembers for its user (the name muted, then what it renamed to).
const MUTE_NAMES: usize = 8;

/// One mute: the name it was set on, and what else identifies the same person, so that neither
/// `/nick` nor reconnecting under another name lifts it.
struct Mute {
    /// Name keys: the one muted first, then the names its user took since.
    names: Vec<Arc<str>>,
    /// The account the muted user was logged in to, if any.
    account: Option<Arc<str>>,
    /// The muted user's address (an IPv6 /64 as a whole), unless loopback (where every local
    /// user would share it).
    ip: Option<IpAddr>,
    /// The connection muted, if it was connected.
    member: Option<MemberId>,
    /// When it ends, in milliseconds since the epoch (it is stored); `None`: until lifted.
    expires_ms: Option<i64>,
}

impl Mute {
    /// A mute loaded from the database at start: no connection yet.
    fn from_stored(stored: StoredMute) -> Mute {
        Mute {
            names: vec![stored.name.into()],
            account: stored.account.map(Into::into),
            ip: stored.address,
            member: None,
            expires_ms: stored.expires_ms,
        }
    }

    /// Whether this mute covers `member` (`id`).
    fn covers(&self, id: MemberId, member: &Member) -> bool {
        self.member == Some(id)
            || self.names.iter().any(|n| **n == *member.nick.key())
            || member
                .account
                .as_ref()
                .is_some_and(|a| self.account.as_ref() == Some(a) || self.names.contains(a))
            || self.ip.is_some_and(|ip| ip == group(member.ip))
    }
}

/// Whether a ban on `target` would keep `member` out from now on: its address, its account, or
/// its name or a look-alike of it (the rule the name prompt applies, `moderation/lookalike.rs`).
fn locks_out(target: &Target, member: &Member) -> bool {
    match target {
        Target::Name(name) => lookalike::covers(name, &member.nick) || covers(target, member),
        Target::Net(_) => covers(target, member),
    }
}

/// Whether a ban on `target` applies to a connected member: by name, account, or address.
fn covers(target: &Target, member: &Member) -> bool {
    match target {
        Target::Name(name) => {
            member.nick.key() == name.as_str() || member.account.as_deref() == Some(name.as_str())
        }
        Target::Net(net) => net.contains(member.ip),
    }
}

/// What the users logged in to `name` are told when `/op` (true) or `/deop` changes its role.
fn role_notice(name: &str, operator: bool) -> String {
    if operator {
        protocol::now_operator(name)
    } else {
        protocol::no_longer_operator(name)
    }
}

impl Hub {
    pub(super) fn moderate(&mut self, id: MemberId, action: Action) {
        match action {
            Action::Kick(nick, reason) => self.kick(id, &nick, reason),
            Action::Ban {
                target,
                duration,
                reason,
            } => self.ban(id, target, duration, reason),
            Action::Unban(target) => self.unban(id, &target),
            Action::Bans => self.list_bans(id),
            Action::Mute(nick, duration) => self.mute(id, &nick, duration),
            Action::Unmute(nick) => self.unmute(id, &nick),
            Action::MayOp { command, reply } => {
                let allowed = self.operator(id, command).is_some();
                let _ = reply.try_send(allowed);
            }
            Action::Opped(nick, operator) => self.opped(id, &nick, operator),
            Action::Unregistered(nick) => self.unregistered(id, &nick),
            Action::Topic(text) => self.topic(id, text),
            Action::Ignore(nick) => self.ignore(id, nick),
            Action::Unignore(nick) => self.unignore(id, &nick),
            Action::Reload { events } => {
                info!("received SIGHUP, reloading bans and operators");
                self.request_reload(events);
            }
            Action::Reloaded {
                reloaded,
                seen,
                events,
            } => self.reloaded(reloaded, seen, events),
            Action::OperatorHelp => {
                if self.members.get(&id).is_some_and(|m| m.operator) {
                    for text in HELP_OPERATORS {
                        self.tell(id, text);
                    }
                }
            }
            Action::Account { account, operator } => {
                if let Some(member) = self.members.get_mut(&id) {
                    member.account = account;
                    member.operator = operator;
                }
            }
            Action::Whoami { reply } => {
                if let Some(member) = self.members.get(&id) {
                    let _ = reply.try_send(member.nick.clone());
                }
            }
            Action::Replicate(change) => self.replicate(change),
        }
    }

    /// The connected member called `nick`: looked up by confusable skeleton (how `by_nick` is
    /// keyed), then checked for the very name, so a look-alike never finds somebody else.
    pub(super) fn member_by_name(&self, nick: &Nick) -> Option<MemberId> {
        let id = *self.by_nick.get(nick.skeleton())?;
        self.members
            .get(&id)
            .filter(|m| m.nick.key() == nick.key())
            .map(|_| id)
    }

    /// The operator's name if `id` is an operator; otherwise tells the user so.
    fn operator(&mut self, id: MemberId, command: &str) -> Option<Nick> {
        match self.members.get(&id) {
            Some(m) if m.operator => Some(m.nick.clone()),
            Some(_) => {
                self.tell(id, &protocol::operators_only(command));
                None
            }
            None => None,
        }
    }

    fn log_action(
        &self,
        op: &Nick,
        action: &'static str,
        target: String,
        reason: Option<String>,
        duration: Option<String>,
    ) {
        info!("moderation: {op} {action} {target}");
        self.moderation.accounts.store.log_action(LogEntry {
            operator: op.to_string(),
            action,
            target,
            reason,
            duration,
        });
    }

    /// Removes a member at once, with last words for it and a notice for its room. Its session
    /// sees its outbox close and ends; its leave is then a no-op.
    pub(super) fn eject(&mut self, target: MemberId, notice: &str, last_words: &str) {
        let Some(member) = self.detach(target) else {
            return;
        };
        let _ = member.outbox.push(&line(last_words));
        member.outbox.close();
        // In cluster mode through the log, so every node's view of the room loses the user.
        self.announce(&member.room, None, notice, || Entry::Removed {
            member: target,
            nick: member.nick.clone(),
            room: member.room.clone(),
            notice: notice.to_owned(),
        });
    }

    fn kick(&mut self, id: MemberId, nick: &Nick, reason: Option<String>) {
        let Some(op) = self.operator(id, "/kick") else {
            return;
        };
        let Some(target) = self.member_by_name(nick) else {
            // Cluster mode: the node holding that user acts on it.
            match self.remote_nick(nick) {
                Some(name) => {
                    if let Some(cluster) = &self.cluster {
                        cluster.link.append(Entry::Kick {
                            nick: name.clone(),
                            by: op.clone(),
                            reason: reason.clone(),
                        });
                    }
                    self.tell(id, &protocol::you_kicked(&name));
                    self.log_action(&op, "kick", name.key().to_owned(), reason, None);
                }
                None => self.tell(id, &protocol::no_such_user(nick)),
            }
            return;
        };
        let Some(name) = self.members.get(&target).map(|m| m.nick.clone()) else {
            return;
        };
        let reason_text = reason.as_deref();
        self.eject(
            target,
            &protocol::kicked(&name, &op, reason_text),
            &protocol::you_were_kicked(&op, reason_text),
        );
        if target != id {
            self.tell(id, &protocol::you_kicked(&name));
        }
        self.log_action(&op, "kick", name.key().to_owned(), reason, None);
    }

    fn ban(
        &mut self,
        id: MemberId,
        target: Target,
        duration: Option<(Duration, String)>,
        reason: Option<String>,
    ) {
        let Some(op) = self.operator(id, "/ban") else {
            return;
        };
        if let Target::Net(net) = &target {
            if let Some(min) = net.too_wide() {
                self.tell(id, &protocol::ban_too_wide(&target.to_string(), min));
                return;
            }
        }
        if self.members.get(&id).is_some_and(|m| locks_out(&target, m)) {
            self.tell(id, protocol::BAN_COVERS_YOU);
            return;
        }
        if let Some(name) = self.protected_by_name(&target) {
            self.tell(id, &protocol::operator_from_command_line(&name));
            return;
        }
        let now = clock::now_ms();
        let expires_ms = duration
            .as_ref()
            .map(|(d, _)| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
        let ban = Ban {
            target: target.clone(),
            reason: reason.clone(),
            by: op.to_string(),
            created_ms: now,
            expires_ms,
        };
        match self.moderation.accounts.bans.write() {
            Ok(mut bans) => bans.add(ban.clone(), now),
            Err(_) => {
                warn!("the ban list lock is poisoned; ban not applied");
                return;
            }
        }
        self.moderation.accounts.store.insert_ban(ban.clone());
        // After the write is queued: a reload queued later reads it.
        self.moderation.ban_edits += 1;
        self.replicate(Change::Ban {
            target: ban.target.to_string(),
            reason: ban.reason,
            by: ban.by,
            created_ms: ban.created_ms,
            expires_ms: ban.expires_ms,
        });
        let victims: Vec<(MemberId, Nick)> = self
            .members
            .iter()
            .filter(|(_, m)| covers(&target, m))
            .map(|(&mid, m)| (mid, m.nick.clone()))
            .collect();
        let last_words = protocol::you_were_banned(op.as_str(), expires_ms, reason.as_deref());
        for (victim, name) in &victims {
            self.eject(
                *victim,
                &protocol::banned(name, op.as_str(), reason.as_deref()),
                &last_words,
            );
        }
        let shown = target.to_string();
        if self.members.contains_key(&id) {
            self.tell(id, &protocol::ban_set(&shown, expires_ms, victims.len()));
        }
        self.log_action(&op, "ban", shown, reason, duration.map(|(_, text)| text));
    }

    fn unban(&mut self, id: MemberId, target: &Target) {
        let Some(op) = self.operator(id, "/unban") else {
            return;
        };
        let lifted = self
            .moderation
            .accounts
            .bans
            .write()
            .is_ok_and(|mut bans| bans.remove(target, clock::now_ms()));
        let shown = target.to_string();
        if !lifted {
            self.tell(id, &protocol::no_ban(&shown));
            return;
        }
        self.moderation.accounts.store.delete_ban(target.clone());
        self.moderation.ban_edits += 1;
        self.replicate(Change::Unban {
            target: shown.clone(),
        });
        self.tell(id, &protocol::unbanned(&shown));
        self.log_action(&op, "unban", shown, None, None);
    }

    fn list_bans(&mut self, id: MemberId) {
        if self.operator(id, "/bans").is_none() {
            return;
        }
        let lines: Vec<String> = match self.moderation.accounts.bans.read() {
            Ok(bans) => bans
                .active(clock::now_ms())
                .map(|b| {
                    protocol::ban_entry(
                        &b.target.to_string(),
                        &b.by,
                        b.expires_ms,
                        b.reason.as_deref(),
                    )
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        self.tell(id, &protocol::bans_header(lines.len()));
        for text in lines {
            self.tell(id, &text);
        }
    }

    fn mute(&mut self, id: MemberId, nick: &Nick, duration: Option<(Duration, String)>) {
        let Some(op) = self.operator(id, "/mute") else {
            return;
        };
        let expires_ms = duration.as_ref().map(|(d, _)| {
            clock::now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        let target = self.member_by_name(nick);
        let member = target.and_then(|t| self.members.get(&t));
        let mute = Mute {
            names: vec![nick.key().into()],
            account: member.and_then(|m| m.account.clone()),
            ip: member.map(|m| group(m.ip)).filter(|ip| !ip.is_loopback()),
            member: target,
            expires_ms,
        };
        self.moderation.accounts.store.insert_mute(StoredMute {
            name: nick.key().to_owned(),
            account: mute.account.as_deref().map(str::to_owned),
            address: mute.ip,
            by: op.to_string(),
            expires_ms,
        });
        self.replicate(Change::Mute {
            name: nick.key().to_owned(),
            account: mute.account.as_deref().map(str::to_owned),
            ip: mute.ip,
            until_ms: expires_ms,
        });
        // A second mute of the same name replaces the first (a new duration).
        self.moderation
            .mutes
            .retain(|m| !m.names.iter().any(|n| **n == *nick.key()));
        self.moderation.mutes.push(mute);
        let text = duration.as_ref().map(|(_, t)| t.as_str());
        self.tell(id, &protocol::mute_set(nick, text));
        if let Some(target) = target {
            self.tell(target, &protocol::you_were_muted(&op, text));
        }
        self.log_action(
            &op,
            "mute",
            nick.key().to_owned(),
            None,
            duration.map(|(_, t)| t),
        );
    }

    fn unmute(&mut self, id: MemberId, nick: &Nick) {
        let Some(op) = self.operator(id, "/unmute") else {
            return;
        };
        let target = self.member_by_name(nick);
        let member = target.and_then(|t| self.members.get(&t).map(|m| (t, m)));
        let mut lifted = Vec::new();
        self.moderation.mutes.retain(|mute| {
            let lift = mute.names.iter().any(|n| **n == *nick.key())
                || member.is_some_and(|(t, m)| mute.covers(t, m));
            if lift {
                // The name it was set on: the stored row's key.
                lifted.extend(mute.names.first().map(|n| n.to_string()));
            }
            !lift
        });
        if lifted.is_empty() {
            self.tell(id, &protocol::not_muted(nick));
            return;
        }
        self.moderation.accounts.store.delete_mutes(lifted);
        self.replicate(Change::Unmute {
            name: nick.key().to_owned(),
        });
        self.tell(id, &protocol::unmuted(nick));
        if let Some(target) = target {
            self.tell(target, protocol::YOU_ARE_UNMUTED);
        }
        self.log_action(&op, "unmute", nick.key().to_owned(), None, None);
    }

    /// Whether the member called `nick` may not speak publicly now: a mute covers its name, its
    /// account, its address or its connection. Expired mutes are dropped here.
    pub(super) fn is_muted(&mut self, nick: &Nick) -> bool {
        if self.moderation.mutes.is_empty() {
            return false;
        }
        let now = clock::now_ms();
        self.moderation
            .mutes
            .retain(|m| m.expires_ms.is_none_or(|at| at > now));
        let Some(id) = self.member_by_name(nick) else {
            return self
                .moderation
                .mutes
                .iter()
                .any(|m| m.names.iter().any(|n| **n == *nick.key()));
        };
        let Some(member) = self.members.get(&id) else {
            return false;
        };
        self.moderation.mutes.iter().any(|m| m.covers(id, member))
    }

    /// The name of an operator made on the command line that a ban on `target` would cover by
    /// name: the account named or a look-alike of it (a ban on `boss_` would keep `boss` out at
    /// the name prompt), or a connected member logged in to such an account.
    fn protected_by_name(&self, target: &Target) -> Option<String> {
        let Target::Name(name) = target else {
            return None;
        };
        let covered = self.moderation.cli_operators.iter().find(|op| {
            *op == name || Nick::parse(op).is_ok_and(|nick| lookalike::covers(name, &nick))
        });
        if let Some(op) = covered {
            return Some(op.clone());
        }
        self.members
            .values()
            .filter(|m| locks_out(target, m))
            .find_map(|m| {
                m.account
                    .as_deref()
                    .filter(|a| self.moderation.cli_operators.contains(*a))
                    .map(str::to_owned)
            })
    }

    /// Queues a read of the bans and operator roles behind the writes queued so far; the
    /// answer comes back as [`Action::Reloaded`]. The hub does not wait for it.
    fn request_reload(&mut self, events: Sender<Event>) {
        let seen = self.moderation.ban_edits;
        self.moderation.accounts.store.reload(move |reloaded| {
            let answer = Event::Moderate {
                id: NOBODY,
                action: Action::Reloaded {
                    reloaded,
                    seen,
                    events: events.clone(),
                },
            };
            // On the account thread, which may wait for room in the hub's queue; an error
            // means the hub has stopped.
            let _ = events.send_blocking(answer);
        });
    }

    /// Applies a reload: the bans replace those in memory, members now covered by one are
    /// removed as `/ban` would, and operator flags follow the stored roles.
    fn reloaded(&mut self, reloaded: Reloaded, seen: u64, events: Sender<Event>) {
        if seen != self.moderation.ban_edits {
            // A ban set in chat since the read may be missing from it: read again.
            self.request_reload(events);
            return;
        }
        let now = clock::now_ms();
        let n_bans = reloaded.bans.len();
        let bans = BanList::new(reloaded.bans);
        let roles: HashMap<String, bool> = reloaded.operators.into_iter().collect();
        self.moderation.cli_operators = roles
            .iter()
            .filter(|(_, cli)| **cli)
            .map(|(name, _)| name.clone())
            .collect();
        let mut victims = Vec::new();
        let mut changed = Vec::new();
        for (&mid, member) in &self.members {
            let ban = bans
                .address(member.ip, now)
                .or_else(|| bans.name_exact(member.nick.key(), now))
                .or_else(|| {
                    member
                        .account
                        .as_deref()
                        .and_then(|a| bans.name_exact(a, now))
                });
            if let Some(ban) = ban {
                victims.push((mid, member.nick.clone(), ban.clone()));
                continue;
            }
            let operator = member
                .account
                .as_deref()
                .is_some_and(|a| roles.contains_key(a));
            if operator != member.operator {
                changed.push((mid, operator));
            }
        }
        match self.moderation.accounts.bans.write() {
            Ok(mut shared) => *shared = bans,
            Err(_) => warn!("the ban list lock is poisoned; bans not reloaded"),
        }
        for (mid, operator) in changed {
            let Some(member) = self.members.get_mut(&mid) else {
                continue;
            };
            member.operator = operator;
            let name = member.nick.clone();
            let text = if operator {
                protocol::now_operator(name.as_str())
            } else {
                protocol::no_longer_operator(name.as_str())
            };
            self.tell(mid, &text);
        }
        for (mid, name, ban) in &victims {
            self.eject(
                *mid,
                &protocol::banned(name, &ban.by, ban.reason.as_deref()),
                &protocol::you_were_banned(&ban.by, ban.expires_ms, ban.reason.as_deref()),
            );
        }
        info!(
            "reloaded {n_bans} bans and {} operators ({} removed by a ban)",
            roles.len(),
            victims.len()
        );
    }

    /// The members logged in to the account `name` (lower case).
    fn logged_in_to(&self, name: &str) -> Vec<MemberId> {
        self.members
            .iter()
            .filter(|(_, m)| m.account.as_deref() == Some(name))
            .map(|(&mid, _)| mid)
            .collect()
    }

    /// `/op` and `/deop`, once the session has stored the role on the account (see
    /// [`Action::MayOp`]): applied at once to the connected users logged in to it.
    fn opped(&mut self, id: MemberId, nick: &Nick, operator: bool) {
        let Some(op) = self.members.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        let holders = self.logged_in_to(nick.key());
        let text = role_notice(nick.as_str(), operator);
        for holder in holders {
            if let Some(member) = self.members.get_mut(&holder) {
                member.operator = operator;
            }
            if holder != id {
                self.tell(holder, &text);
            }
        }
        self.tell(id, &text);
        self.replicate(Change::Role {
            name: nick.key().to_owned(),
            operator,
        });
        let action = if operator { "op" } else { "deop" };
        self.log_action(&op, action, nick.key().to_owned(), None, None);
    }

    /// `/unregister NAME`, once the session has deleted the account: the users logged in to it
    /// lose it (and any operator role), and are told; in cluster mode every node's file loses it.
    fn unregistered(&mut self, id: MemberId, nick: &Nick) {
        let Some(op) = self.members.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        for holder in self.logged_in_to(nick.key()) {
            if let Some(member) = self.members.get_mut(&holder) {
                member.account = None;
                member.operator = false;
            }
            if holder != id {
                self.tell(holder, &protocol::account_removed(nick.as_str(), &op));
            }
        }
        self.tell(id, &protocol::unregistered(nick.as_str()));
        self.replicate(Change::Unregister {
            name: nick.key().to_owned(),
        });
        self.log_action(&op, "unregister", nick.key().to_owned(), None, None);
    }

    fn topic(&mut self, id: MemberId, text: Option<String>) {
        let Some(room) = self.members.get(&id).map(|m| m.room.clone()) else {
            return;
        };
        let Some(text) = text else {
            let reply = self
                .moderation
                .topic_line(&room)
                .unwrap_or_else(|| protocol::no_topic(&room));
            self.tell(id, &reply);
            return;
        };
        let Some(op) = self.operator(id, "/topic TEXT") else {
            return;
        };
        let store = self.moderation.accounts.store.clone();
        let (notice, stored) = if text == "-" {
            self.moderation.topics.remove(room.as_str());
            (protocol::topic_cleared(&op, &room), None)
        } else {
            let shared: Arc<str> = text.as_str().into();
            self.moderation
                .topics
                .insert(room.as_str().to_owned(), (shared.clone(), op.shared()));
            (protocol::topic_set(&op, &room, &text), Some(shared))
        };
        store.set_topic(room.shared(), stored.clone(), op.shared());
        self.replicate(Change::Topic {
            room: room.clone(),
            text: stored.map(|t| t.to_string()),
            by: op.to_string(),
            at_ms: clock::now_ms(),
        });
        self.broadcast(&room, None, line(&notice));
        self.log_action(&op, "topic", room.as_str().to_owned(), Some(text), None);
    }

    /// Applies a change read from the cluster log to this hub's state (its file is the account
    /// thread's business). Every node applies every change in log order, the node that made it
    /// included (`own`), so concurrent changes end the same everywhere; only the others' changes
    /// are told to users, since the node that made one told them already.
    pub(super) fn apply_change(&mut self, change: Change, own: bool) {
        let now = clock::now_ms();
        match change {
            Change::Register { .. } | Change::Password { .. } => {}
            Change::Unregister { name } => {
                if own {
                    return;
                }
                for member in self.members.values_mut() {
                    if member.account.as_deref() == Some(name.as_str()) {
                        member.account = None;
                        member.operator = false;
                    }
                }
            }
            Change::Role { name, operator } => {
                let holders = self.logged_in_to(&name);
                let text = role_notice(&name, operator);
                for holder in holders {
                    let changed = self
                        .members
                        .get_mut(&holder)
                        .is_some_and(|m| std::mem::replace(&mut m.operator, operator) != operator);
                    if changed && !own {
                        self.tell(holder, &text);
                    }
                }
            }
            Change::Ban {
                target,
                reason,
                by,
                created_ms,
                expires_ms,
            } => {
                let target = Target::parse(&target);
                let ban = Ban {
                    target: target.clone(),
                    reason: reason.clone(),
                    by: by.clone(),
                    created_ms,
                    expires_ms,
                };
                match self.moderation.accounts.bans.write() {
                    Ok(mut bans) => bans.add(ban, now),
                    Err(_) => warn!("the ban list lock is poisoned; ban not applied"),
                }
                if own {
                    return;
                }
                let victims: Vec<(MemberId, Nick)> = self
                    .members
                    .iter()
                    .filter(|(_, m)| covers(&target, m))
                    .map(|(&mid, m)| (mid, m.nick.clone()))
                    .collect();
                let last_words = protocol::you_were_banned(&by, expires_ms, reason.as_deref());
                for (victim, name) in victims {
                    info!("{name} removed by a ban set on another node by {by}");
                    self.eject(
                        victim,
                        &protocol::banned(&name, &by, reason.as_deref()),
                        &last_words,
                    );
                }
            }
            Change::Unban { target } => {
                if let Ok(mut bans) = self.moderation.accounts.bans.write() {
                    bans.remove(&Target::parse(&target), now);
                }
            }
            Change::Mute {
                name,
                account,
                ip,
                until_ms,
            } => {
                if own {
                    return;
                }
                if until_ms.is_some_and(|ms| ms <= now) {
                    return;
                }
                let member = Nick::parse(&name)
                    .ok()
                    .and_then(|nick| self.member_by_name(&nick));
                self.moderation
                    .mutes
                    .retain(|m| !m.names.iter().any(|n| **n == *name));
                self.moderation.mutes.push(Mute {
                    names: vec![name.into()],
                    account: account.map(Arc::from),
                    ip,
                    member,
                    expires_ms: until_ms,
                });
            }
            Change::Unmute { name } => {
                if own {
                    return;
                }
                let target = Nick::parse(&name)
                    .ok()
                    .and_then(|nick| self.member_by_name(&nick));
                let member = target.and_then(|t| self.members.get(&t).map(|m| (t, m)));
                self.moderation.mutes.retain(|mute| {
                    !(mute.names.iter().any(|n| **n == *name)
                        || member.is_some_and(|(t, m)| mute.covers(t, m)))
                });
            }
            Change::Topic { room, text, by, .. } => {
                match &text {
                    Some(text) => {
                        self.moderation.topics.insert(
                            room.as_str().to_owned(),
                            (text.as_str().into(), by.as_str().into()),
                        );
                    }
                    None => {
                        self.moderation.topics.remove(room.as_str());
                    }
                }
                if own {
                    return;
                }
                let Ok(op) = Nick::parse(&by) else {
                    return;
                };
                let notice = match &text {
                    Some(text) => protocol::topic_set(&op, &room, text),
                    None => protocol::topic_cleared(&op, &room),
                };
                self.broadcast(&room, None, line(&notice));
            }
        }
    }

    /// A kick from another node's operator, for a user of this node.
    pub(super) fn kicked_from_afar(&mut self, nick: &Nick, op: &Nick, reason: Option<&str>) {
        let Some(target) = self.member_by_name(nick) else {
            return;
        };
        info!("{nick} kicked by {op} from another node");
        self.eject(
            target,
            &protocol::kicked(nick, op, reason),
            &protocol::you_were_kicked(op, reason),
        );
    }

    fn ignore(&mut self, id: MemberId, nick: Option<Nick>) {
        let Some(me) = self.members.get(&id).map(|m| m.nick.clone()) else {
            return;
        };
        let Some(nick) = nick else {
            let mut names: Vec<String> = self
                .moderation
                .ignoring
                .get(&id)
                .into_iter()
                .flatten()
                .map(|n| n.to_string())
                .collect();
            names.sort();
            let header = protocol::ignore_header(names.len());
            self.tell_list(id, &header, &names);
            return;
        };
        if nick == me {
            self.tell(id, protocol::IGNORE_SELF);
            return;
        }
        let set = self.moderation.ignoring.entry(id).or_default();
        if set.len() >= MAX_IGNORED && !set.contains(nick.key()) {
            self.tell(id, &protocol::ignore_full(MAX_IGNORED));
            return;
        }
        set.insert(nick.key().into());
        self.tell(id, &protocol::ignoring(&nick));
    }

    fn unignore(&mut self, id: MemberId, nick: &Nick) {
        let removed = match self.moderation.ignoring.get_mut(&id) {
            Some(set) => {
                let removed = set.remove(nick.key());
                if set.is_empty() {
                    self.moderation.ignoring.remove(&id);
                }
                removed
            }
            None => false,
        };
        let reply = if removed {
            protocol::unignored(nick)
        } else {
            protocol::not_ignoring(nick)
        };
        self.tell(id, &reply);
    }

    /// Whether `who` ignores the name `sender` (lower case).
    pub(super) fn ignores(&self, who: MemberId, sender: &str) -> bool {
        !self.moderation.ignoring.is_empty()
            && self
                .moderation
                .ignoring
                .get(&who)
                .is_some_and(|set| set.contains(sender))
    }

    /// A renamed member stays ignored by whoever ignored it, and stays muted: the new name
    /// replaces the old one in ignore lists (so they never grow by renaming), and is added to
    /// the mutes that cover the member.
    pub(super) fn follow_rename(&mut self, id: MemberId, old: &Nick, new: &Nick) {
        for set in self.moderation.ignoring.values_mut() {
            if set.remove(old.key()) {
                set.insert(new.key().into());
            }
        }
        let Some(member) = self.members.get(&id) else {
            return;
        };
        for mute in &mut self.moderation.mutes {
            let named = mute.names.iter().any(|n| **n == *old.key());
            if (named || mute.covers(id, member)) && !mute.names.iter().any(|n| **n == *new.key()) {
                if mute.names.len() >= MUTE_NAMES {
                    // Keep the name the operator muted (for `/unmute`); forget the oldest rename.
                    mute.names.remove(1);
                }
                mute.names.push(new.key().into());
                mute.member = Some(id);
            }
        }
    }

    /// True when some member ignores somebody: only then do public lines need filtering.
    pub(super) fn anybody_ignores(&self) -> bool {
        !self.moderation.ignoring.is_empty()
    }

    /// A public line from the user whose name key is `sender` to `room`, skipping those who
    /// ignore the sender. The ordinary fan-out is used when nobody ignores anybody (nearly always).
    pub(super) fn broadcast_said_now(
        &mut self,
        room: &RoomName,
        except: Option<MemberId>,
        sender: &str,
        said: Line,
    ) {
        let mut faults = Vec::new();
        let mut wakes = Vec::new();
        if let Some(members) = self.rooms.get(room) {
            for (mid, outbox) in members.members() {
                if Some(*mid) == except || self.ignores(*mid, sender) {
                    continue;
                }
                match outbox.push_deferred(&said) {
                    Ok(false) => {}
                    Ok(true) => wakes.push(outbox.clone()),
                    Err(super::outbox::PushError::Full) => faults.push((*mid, Fault::Slow)),
                    Err(super::outbox::PushError::Closed) => faults.push((*mid, Fault::Gone)),
                }
            }
        }
        // Woken with the others at the end of the hub's turn.
        self.wakes.append(&mut wakes);
        if !faults.is_empty() {
            self.settle(faults);
        }
        self.enforce_budget();
    }
}
