//! Moderation: operator commands, and the state every node keeps (bans, mutes, topics, roles).
//!
//! Every change to that state is a [`Change`] applied by [`Moderation::apply`], whether an
//! operator here just asked for it or it was read from the cluster log: each ban and mute rule
//! exists once. This part owns its state and decides; it never touches members or outboxes. It
//! returns [`Decision`]s ("remove member 7 as banned", "tell the operator", "replicate this
//! change") and the hub carries them out. The database only remembers, through the account
//! thread, written in order behind the hub's back; a write whose answer matters (`/op`, a
//! SIGHUP reload) answers on the hub's control channel, so the hub never waits for the disk.

mod accounts;
mod bans;
mod mutes;

use std::collections::HashMap;
use std::sync::Arc;

use async_channel::Sender;
use log::info;

use self::bans::Bans;
use self::mutes::{Mutes, Muting};
use crate::cluster::Entry;
use crate::hub::control::Control;
use crate::hub::event::{Notice, Refusal, Reply, Topic};
use crate::hub::intent::OpCommand;
use crate::hub::members::Who;
use crate::limits::address::group;
use crate::moderation::ban::{Ban, SharedBans};
use crate::names::{Nick, RoomName};
use crate::storage::accounts::{InChat, LogEntry, Saved, Store, StoredMute};
use crate::vocab::{Change, MemberId, Removal};

/// What the hub must do about a moderation command or change.
#[derive(Debug)]
pub enum Decision {
    Tell(MemberId, Reply),
    Notice(RoomName, Notice),
    /// Remove a member, with these last words and room notices.
    Remove(MemberId, Removal),
    /// Set a member's operator flag, telling it.
    Operator {
        member: MemberId,
        operator: bool,
        tell: bool,
    },
    /// The member's account is gone (unregistered elsewhere).
    LoggedOut(MemberId),
    /// Publish an entry (a kick for a member of another node).
    Publish(Entry),
    /// Send the change to the other nodes (cluster mode).
    Replicate(Change),
}

/// Where a change comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// An operator here just asked for it: apply and act.
    Here,
    /// Read back from the cluster log, made here: apply again (the log's order decides), but it
    /// was acted on already.
    Echo,
    /// Read from the cluster log, made on another node: apply and act.
    Remote,
}

/// What an operator command is about, as the hub found it.
pub struct Context<'a, M> {
    /// The operator.
    pub op: Who<'a>,
    /// The connected member the command names (kick, mute, unmute), if any.
    pub target: Option<Who<'a>>,
    /// Cluster mode: the name as another node's member has it, if the command names one.
    pub remote: Option<Nick>,
    /// The room the command is about (a topic).
    pub room: Option<RoomName>,
    /// Every member.
    pub members: M,
    pub now_ms: i64,
}

/// The hub's moderation state.
pub struct Moderation {
    bans: Bans,
    mutes: Mutes,
    topics: HashMap<RoomName, Topic>,
    store: Store,
    /// Where the account thread answers.
    control: Sender<Control>,
}

impl Moderation {
    /// The state loaded at start-up; `bans` is shared with the accept loop and the name prompt.
    pub fn new(
        bans: SharedBans,
        store: Store,
        saved: Saved,
        control: Sender<Control>,
    ) -> Moderation {
        let topics = saved
            .topics
            .into_iter()
            .filter_map(|t| {
                let room = RoomName::parse(&t.room).ok()?;
                Some((
                    room,
                    Topic {
                        text: t.text.into(),
                        by: t.by.into(),
                    },
                ))
            })
            .collect();
        Moderation {
            bans: Bans::new(bans, &saved.operators),
            mutes: Mutes::new(saved.mutes),
            topics,
            store,
            control,
        }
    }

    /// The account thread.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A member logged in to `account` (see [`Bans::logged_in`]).
    pub fn logged_in(&mut self, account: &str, cli_operator: bool) {
        self.bans.logged_in(account, cli_operator);
    }

    pub fn topic(&self, room: &RoomName) -> Option<Topic> {
        self.topics.get(room).cloned()
    }

    /// Whether `who` may not speak publicly now.
    pub fn is_muted(&mut self, who: &Who<'_>, now_ms: i64) -> bool {
        self.mutes.covers(who, now_ms)
    }

    /// `who` was called `old`: it stays muted under its new name.
    pub fn renamed(&mut self, who: &Who<'_>, old: &Nick) {
        self.mutes.renamed(who, old.key());
    }

    /// An operator's command (the hub checked the role). Most are applied at once as a
    /// [`Change`]; `/op`, `/deop` and `/unregister NAME` are stored first, and applied when the
    /// account thread answers ([`Moderation::control`]).
    pub fn command<'a>(
        &mut self,
        command: OpCommand,
        cx: Context<'a, impl Iterator<Item = Who<'a>> + Clone>,
    ) -> Result<Vec<Decision>, Refusal> {
        let op = cx.op;
        let until = |d: &Option<crate::hub::intent::Typed>| {
            d.as_ref().map(|(d, _)| {
                cx.now_ms
                    .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            })
        };
        let mut decisions = Vec::new();
        match command {
            OpCommand::Kick { nick, reason } => {
                let name = match (cx.target, cx.remote) {
                    (Some(target), _) => {
                        let removal = Removal::Kicked {
                            by: op.nick.shared(),
                            reason: reason.as_deref().map(Into::into),
                        };
                        decisions.push(Decision::Remove(target.id, removal));
                        target.nick.clone()
                    }
                    // Cluster mode: the node holding that member acts on it.
                    (None, Some(name)) => {
                        let (by, reason) = (op.nick.clone(), reason.clone());
                        decisions.push(Decision::Publish(Entry::Kick {
                            nick: name.clone(),
                            by,
                            reason,
                        }));
                        name
                    }
                    (None, None) => return Err(Refusal::NoSuchUser(nick)),
                };
                if cx.target.is_none_or(|t| t.id != op.id) {
                    decisions.push(Decision::Tell(op.id, Reply::Kicked(name.clone())));
                }
                self.log(op.nick, "kick", name.key().to_owned(), [reason, None]);
            }
            OpCommand::Ban {
                target,
                duration,
                reason,
            } => {
                self.bans.allowed(&op, &target, cx.members.clone())?;
                let expires_ms = until(&duration);
                let ban = Ban {
                    target: target.clone(),
                    reason: reason.clone(),
                    by: op.nick.to_string(),
                    created_ms: cx.now_ms,
                    expires_ms,
                };
                self.store.insert_ban(ban.clone());
                self.bans.edited();
                let change = Change::Ban {
                    target: target.to_string(),
                    reason: ban.reason,
                    by: ban.by,
                    created_ms: cx.now_ms,
                    expires_ms,
                };
                decisions = self.apply(&change, Origin::Here, cx.now_ms, None, cx.members);
                let removed = decisions.len();
                let shown = target.to_string();
                decisions.push(Decision::Replicate(change));
                let set = Reply::BanSet {
                    target: shown.clone(),
                    expires_ms,
                    removed,
                };
                decisions.push(Decision::Tell(op.id, set));
                self.log(op.nick, "ban", shown, [reason, duration.map(|(_, t)| t)]);
            }
            OpCommand::Unban(target) => {
                let shown = target.to_string();
                if !self.bans.remove(&target, cx.now_ms) {
                    return Err(Refusal::NoBan(shown));
                }
                self.store.delete_ban(target);
                self.bans.edited();
                self.log(op.nick, "unban", shown.clone(), [None, None]);
                decisions.push(Decision::Replicate(Change::Unban {
                    target: shown.clone(),
                }));
                decisions.push(Decision::Tell(op.id, Reply::Unbanned(shown)));
            }
            OpCommand::Bans => {
                let bans = self.bans.active(cx.now_ms);
                decisions.push(Decision::Tell(op.id, Reply::Bans(bans)));
            }
            OpCommand::Mute { nick, duration } => {
                let target = cx.target;
                let change = Change::Mute {
                    name: nick.key().to_owned(),
                    account: target.and_then(|t| t.account).map(str::to_owned),
                    ip: target.map(|t| group(t.ip)).filter(|ip| !ip.is_loopback()),
                    until_ms: until(&duration),
                };
                if let Change::Mute {
                    name,
                    account,
                    ip,
                    until_ms,
                } = &change
                {
                    let by = op.nick.to_string();
                    let (name, account, address) = (name.clone(), account.clone(), *ip);
                    let expires_ms = *until_ms;
                    self.store.insert_mute(StoredMute {
                        name,
                        account,
                        address,
                        by,
                        expires_ms,
                    });
                }
                self.apply(&change, Origin::Here, cx.now_ms, target, std::iter::empty());
                let typed = duration.map(|(_, text)| text);
                decisions.push(Decision::Replicate(change));
                let set = Reply::MuteSet {
                    nick: nick.clone(),
                    duration: typed.clone(),
                };
                decisions.push(Decision::Tell(op.id, set));
                if let Some(target) = target {
                    let by = op.nick.clone();
                    let told = Reply::YouWereMuted {
                        by,
                        duration: typed.clone(),
                    };
                    decisions.push(Decision::Tell(target.id, told));
                }
                self.log(op.nick, "mute", nick.key().to_owned(), [None, typed]);
            }
            OpCommand::Unmute(nick) => {
                let lifted = self.mutes.lift(nick.key(), cx.target.as_ref());
                if lifted.is_empty() {
                    return Err(Refusal::NotMuted(nick));
                }
                self.store.delete_mutes(lifted);
                decisions.push(Decision::Replicate(Change::Unmute {
                    name: nick.key().to_owned(),
                }));
                decisions.push(Decision::Tell(op.id, Reply::Unmuted(nick.clone())));
                if let Some(target) = cx.target {
                    decisions.push(Decision::Tell(target.id, Reply::YouAreUnmuted));
                }
                self.log(op.nick, "unmute", nick.key().to_owned(), [None, None]);
            }
            OpCommand::Role { nick, operator } => {
                self.store_first(op.id, nick, InChat::Role(operator))
            }
            OpCommand::Unregister(nick) => self.store_first(op.id, nick, InChat::Remove),
            OpCommand::SetTopic { text, .. } => {
                let Some(room) = cx.room else {
                    return Err(Refusal::WhichRoom);
                };
                let logged = text.clone().unwrap_or_else(|| "-".to_owned());
                let stored = text.as_deref().map(Into::into);
                let by = (op.nick.shared(), cx.now_ms);
                self.store.set_topic(room.shared(), stored, by);
                let by = op.nick.to_string();
                let change = Change::Topic {
                    room: room.clone(),
                    text,
                    by,
                    at_ms: cx.now_ms,
                };
                decisions = self.apply(&change, Origin::Here, cx.now_ms, None, std::iter::empty());
                decisions.push(Decision::Replicate(change));
                self.log(
                    op.nick,
                    "topic",
                    room.as_str().to_owned(),
                    [Some(logged), None],
                );
            }
        }
        Ok(decisions)
    }

    /// Answers from the account thread, and SIGHUP.
    pub fn control<'a>(
        &mut self,
        control: Control,
        now_ms: i64,
        members: impl Iterator<Item = Who<'a>> + Clone,
    ) -> Vec<Decision> {
        match control {
            Control::Reload => {
                info!("received SIGHUP, reloading bans and operators");
                self.request_reload();
            }
            Control::Reloaded { reloaded, seen } => {
                match self.bans.reloaded(reloaded, seen, now_ms, members) {
                    Some(decisions) => return decisions,
                    // A ban set in chat since the read may be missing from it: read again.
                    None => self.request_reload(),
                }
            }
            Control::Stored {
                op,
                nick,
                change,
                result,
            } => {
                return self.stored(op, (nick, change), result, now_ms, members);
            }
        }
        Vec::new()
    }

    /// Queues a read of the bans and roles behind the writes queued so far; the answer comes
    /// back as [`Control::Reloaded`].
    fn request_reload(&mut self) {
        let seen = self.bans.edits();
        let control = self.control.clone();
        self.store.reload(move |reloaded| {
            let _ = control.send_blocking(Control::Reloaded { reloaded, seen });
        });
    }

    /// Applies a change to this hub's state (its file is the account thread's business): the
    /// one place each rule lives. `named` is the connected member a mute names, if any;
    /// `members` every member, for the ones a change covers.
    pub fn apply<'a>(
        &mut self,
        change: &Change,
        origin: Origin,
        now_ms: i64,
        named: Option<Who<'_>>,
        members: impl Iterator<Item = Who<'a>>,
    ) -> Vec<Decision> {
        let act = origin != Origin::Echo;
        let of = |name: &str, w: &Who<'_>| w.account == Some(name);
        match change {
            Change::Register { .. } | Change::Password { .. } | Change::Unban { .. } => {
                if let Change::Unban { target } = change {
                    self.bans
                        .remove(&crate::moderation::ban::Target::parse(target), now_ms);
                }
                Vec::new()
            }
            Change::Unregister { name } => members
                .filter(|w| of(name, w))
                .map(|w| Decision::LoggedOut(w.id))
                .collect(),
            Change::Role { name, operator } => members
                .filter(|w| of(name, w))
                .map(|w| Decision::Operator {
                    member: w.id,
                    operator: *operator,
                    tell: act && w.operator != *operator,
                })
                .collect(),
            Change::Ban { .. } => {
                let Some(ban) = Ban::of(change) else {
                    return Vec::new();
                };
                let target = ban.target.clone();
                let removal = Removal::Banned {
                    by: ban.by.as_str().into(),
                    reason: ban.reason.as_deref().map(Into::into),
                    expires_ms: ban.expires_ms,
                };
                self.bans.add(ban, now_ms);
                if !act {
                    return Vec::new();
                }
                members
                    .filter(|w| bans::covers(&target, w))
                    .map(|w| Decision::Remove(w.id, removal.clone()))
                    .collect()
            }
            Change::Mute {
                name,
                account,
                ip,
                until_ms,
            } => {
                if until_ms.is_none_or(|ms| ms > now_ms) {
                    self.mutes.set(Muting {
                        name,
                        account: account.as_deref(),
                        ip: *ip,
                        member: named.map(|w| w.id),
                        expires_ms: *until_ms,
                    });
                }
                Vec::new()
            }
            Change::Unmute { name } => {
                self.mutes.lift(name, named.as_ref());
                Vec::new()
            }
            Change::Topic { room, text, by, .. } => {
                let text: Option<Arc<str>> = text.as_deref().map(Into::into);
                match &text {
                    Some(text) => {
                        let topic = Topic {
                            text: text.clone(),
                            by: by.as_str().into(),
                        };
                        self.topics.insert(room.clone(), topic);
                    }
                    None => {
                        self.topics.remove(room);
                    }
                }
                let notice = Notice::Topic {
                    room: room.clone(),
                    by: by.as_str().into(),
                    text,
                };
                let notice = Decision::Notice(room.clone(), notice);
                if act {
                    vec![notice]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Writes an operator's action to `moderation_log`: the reason and the duration as typed.
    fn log(
        &self,
        op: &Nick,
        action: &'static str,
        target: String,
        [reason, duration]: [Option<String>; 2],
    ) {
        info!("moderation: {op} {action} {target}");
        let operator = op.to_string();
        let entry = LogEntry {
            operator,
            action,
            target,
            reason,
            duration,
        };
        self.store.log_action(entry);
    }
}
