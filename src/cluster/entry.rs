//! What one cluster log entry says, and its encoding in the stream's `e` field.
//!
//! The encoding is a tag letter followed by length-prefixed fields (`5:alice`), so a body may hold
//! any character without escaping, and a field that does not parse (a newer node's entry, a
//! hand-written one) is refused as a whole. Names are validated again here, because the log is an
//! edge: anything in Redis could have been written by something other than a smolchat node.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::names::{Nick, RoomName};
use crate::storage::Kind;

/// Identifies a user on its node (the hub's member id); with the node name, cluster-wide.
pub type Member = u64;

/// One event in the cluster's shared history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A public line (a message or a `/me`): stored by every node.
    Say {
        member: Member,
        nick: Nick,
        room: RoomName,
        kind: Kind,
        body: Arc<str>,
    },
    /// A user registered and is in `room` (the lobby).
    Joined {
        member: Member,
        nick: Nick,
        room: RoomName,
    },
    /// A user moved between rooms with `/join`.
    Moved {
        member: Member,
        nick: Nick,
        from: RoomName,
        to: RoomName,
    },
    /// A user left the chat.
    Left {
        member: Member,
        nick: Nick,
        room: RoomName,
        reason: Option<String>,
    },
    /// A user left with `/quit` (the reason is the user's own words, marked as such).
    Quit {
        member: Member,
        nick: Nick,
        room: RoomName,
        reason: Option<String>,
    },
    Renamed {
        member: Member,
        old: Nick,
        new: Nick,
        room: RoomName,
    },
    /// The writing node started: whatever was known about its earlier run is void, and the other
    /// nodes answer with a [`Entry::Presence`] so it learns who is where.
    NodeUp,
    /// `node` stopped (cleanly, or its heartbeat expired): its users are gone.
    NodeGone { node: Arc<str>, reason: String },
    /// The writing node's users, all of them: a snapshot for nodes that just started.
    Presence {
        members: Vec<(Member, Nick, RoomName)>,
    },
    /// A change to accounts or moderation (see [`Change`]): every node applies it to its file
    /// and its hub's state, in log order.
    Change(Change),
    /// A user was removed by an operator (kicked, banned); `notice` is what its room is told.
    Removed {
        member: Member,
        nick: Nick,
        room: RoomName,
        notice: String,
    },
    /// An operator kicked `nick`: the node holding that user removes it; the others ignore it.
    Kick {
        nick: Nick,
        by: Nick,
        reason: Option<String>,
    },
}

/// A change to the state every node keeps (accounts, operators, bans, mutes, topics), made on one
/// node and replayed by all of them in log order, so every file and every hub ends up the same.
/// Each carries what the stored row needs (times included), so the rows are equal everywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `/register`: the account `display` (its key is the name in lower case).
    Register {
        display: String,
        hash: String,
        created_ms: i64,
    },
    /// `/password`: a new hash for the account `name` (lower case).
    Password {
        name: String,
        hash: String,
    },
    /// `/unregister`.
    Unregister {
        name: String,
    },
    /// `/op` (true) and `/deop` (false).
    Role {
        name: String,
        operator: bool,
    },
    /// `/ban`: `target` as [`Target`](crate::moderation::ban::Target) shows it.
    Ban {
        target: String,
        reason: Option<String>,
        by: String,
        created_ms: i64,
        expires_ms: Option<i64>,
    },
    Unban {
        target: String,
    },
    /// `/mute`: the name muted, and the account and address (an IPv6 /64 as a whole) of the user
    /// it was set on, if that user was connected; `until_ms` is the wall-clock end.
    Mute {
        name: String,
        account: Option<String>,
        ip: Option<std::net::IpAddr>,
        until_ms: Option<i64>,
    },
    Unmute {
        name: String,
    },
    /// `/topic`: `None` clears it.
    Topic {
        room: RoomName,
        text: Option<String>,
        by: String,
        at_ms: i64,
    },
}

/// Why an entry could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed cluster log entry")]
pub struct Malformed;

impl Entry {
    /// The text stored in the stream.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        match self {
            Entry::Say {
                member,
                nick,
                room,
                kind,
                body,
            } => {
                out.push(match kind {
                    Kind::Message => 'S',
                    Kind::Action => 'A',
                });
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put(&mut out, room.as_str());
                put(&mut out, body);
            }
            Entry::Joined { member, nick, room } => {
                out.push('J');
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put(&mut out, room.as_str());
            }
            Entry::Moved {
                member,
                nick,
                from,
                to,
            } => {
                out.push('M');
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put(&mut out, from.as_str());
                put(&mut out, to.as_str());
            }
            Entry::Left {
                member,
                nick,
                room,
                reason,
            } => {
                out.push(if reason.is_some() { 'L' } else { 'l' });
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put(&mut out, room.as_str());
                if let Some(reason) = reason {
                    put(&mut out, reason);
                }
            }
            Entry::Quit {
                member,
                nick,
                room,
                reason,
            } => {
                out.push(if reason.is_some() { 'Q' } else { 'q' });
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put(&mut out, room.as_str());
                if let Some(reason) = reason {
                    put(&mut out, reason);
                }
            }
            Entry::Renamed {
                member,
                old,
                new,
                room,
            } => {
                out.push('R');
                put_member(&mut out, *member);
                put(&mut out, old.as_str());
                put(&mut out, new.as_str());
                put(&mut out, room.as_str());
            }
            Entry::NodeUp => out.push('U'),
            Entry::NodeGone { node, reason } => {
                out.push('G');
                put(&mut out, node);
                put(&mut out, reason);
            }
            Entry::Change(change) => {
                out.push('C');
                change.encode(&mut out);
            }
            Entry::Removed {
                member,
                nick,
                room,
                notice,
            } => {
                out.push('X');
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put(&mut out, room.as_str());
                put(&mut out, notice);
            }
            Entry::Kick { nick, by, reason } => {
                out.push('K');
                put(&mut out, nick.as_str());
                put(&mut out, by.as_str());
                put_opt(&mut out, reason.as_deref());
            }
            Entry::Presence { members } => {
                out.push('P');
                put(&mut out, &members.len().to_string());
                for (member, nick, room) in members {
                    put_member(&mut out, *member);
                    put(&mut out, nick.as_str());
                    put(&mut out, room.as_str());
                }
            }
        }
        out
    }

    /// Reads what [`Entry::encode`] wrote.
    pub fn decode(text: &str) -> Result<Entry, Malformed> {
        let mut chars = text.chars();
        let tag = chars.next().ok_or(Malformed)?;
        let mut f = Fields(chars.as_str());
        let entry = match tag {
            'S' | 'A' => Entry::Say {
                member: f.member()?,
                nick: f.nick()?,
                room: f.room()?,
                kind: if tag == 'S' {
                    Kind::Message
                } else {
                    Kind::Action
                },
                body: f.next()?.into(),
            },
            'J' => Entry::Joined {
                member: f.member()?,
                nick: f.nick()?,
                room: f.room()?,
            },
            'M' => Entry::Moved {
                member: f.member()?,
                nick: f.nick()?,
                from: f.room()?,
                to: f.room()?,
            },
            'L' | 'l' => Entry::Left {
                member: f.member()?,
                nick: f.nick()?,
                room: f.room()?,
                reason: if tag == 'L' {
                    Some(f.next()?.to_owned())
                } else {
                    None
                },
            },
            'Q' | 'q' => Entry::Quit {
                member: f.member()?,
                nick: f.nick()?,
                room: f.room()?,
                reason: if tag == 'Q' {
                    Some(f.next()?.to_owned())
                } else {
                    None
                },
            },
            'R' => Entry::Renamed {
                member: f.member()?,
                old: f.nick()?,
                new: f.nick()?,
                room: f.room()?,
            },
            'U' => Entry::NodeUp,
            'G' => Entry::NodeGone {
                node: f.next()?.into(),
                reason: f.next()?.to_owned(),
            },
            'C' => Entry::Change(Change::decode(&mut f)?),
            'X' => Entry::Removed {
                member: f.member()?,
                nick: f.nick()?,
                room: f.room()?,
                notice: f.next()?.to_owned(),
            },
            'K' => Entry::Kick {
                nick: f.nick()?,
                by: f.nick()?,
                reason: f.opt()?.map(str::to_owned),
            },
            'P' => {
                let n: usize = f.next()?.parse().map_err(|_| Malformed)?;
                // Each member takes at least six bytes, so a forged count cannot allocate much.
                let mut members = Vec::with_capacity(n.min(f.0.len() / 6));
                for _ in 0..n {
                    members.push((f.member()?, f.nick()?, f.room()?));
                }
                Entry::Presence { members }
            }
            _ => return Err(Malformed),
        };
        if f.0.is_empty() {
            Ok(entry)
        } else {
            Err(Malformed)
        }
    }
}

/// A private line between nodes (`/msg` to a user on another node), never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whisper {
    pub from: Nick,
    pub to: Nick,
    pub text: String,
}

impl Whisper {
    pub fn encode(&self) -> String {
        let mut out = String::from("W");
        put(&mut out, self.from.as_str());
        put(&mut out, self.to.as_str());
        put(&mut out, &self.text);
        out
    }

    pub fn decode(text: &str) -> Result<Whisper, Malformed> {
        let rest = text.strip_prefix('W').ok_or(Malformed)?;
        let mut f = Fields(rest);
        let whisper = Whisper {
            from: f.nick()?,
            to: f.nick()?,
            text: f.next()?.to_owned(),
        };
        if f.0.is_empty() {
            Ok(whisper)
        } else {
            Err(Malformed)
        }
    }
}

fn put(out: &mut String, field: &str) {
    let _ = write!(out, "{}:{field}", field.len());
}

fn put_member(out: &mut String, member: Member) {
    put(out, &member.to_string());
}

/// An optional field: `-` for none, `+` and the text for some.
fn put_opt(out: &mut String, field: Option<&str>) {
    match field {
        Some(text) => put(out, &format!("+{text}")),
        None => put(out, "-"),
    }
}

fn put_num(out: &mut String, n: i64) {
    put(out, &n.to_string());
}

impl Change {
    fn encode(&self, out: &mut String) {
        match self {
            Change::Register {
                display,
                hash,
                created_ms,
            } => {
                out.push('r');
                put(out, display);
                put(out, hash);
                put_num(out, *created_ms);
            }
            Change::Password { name, hash } => {
                out.push('p');
                put(out, name);
                put(out, hash);
            }
            Change::Unregister { name } => {
                out.push('u');
                put(out, name);
            }
            Change::Role { name, operator } => {
                out.push(if *operator { 'o' } else { 'd' });
                put(out, name);
            }
            Change::Ban {
                target,
                reason,
                by,
                created_ms,
                expires_ms,
            } => {
                out.push('b');
                put(out, target);
                put_opt(out, reason.as_deref());
                put(out, by);
                put_num(out, *created_ms);
                put_opt(out, expires_ms.map(|ms| ms.to_string()).as_deref());
            }
            Change::Unban { target } => {
                out.push('B');
                put(out, target);
            }
            Change::Mute {
                name,
                account,
                ip,
                until_ms,
            } => {
                out.push('m');
                put(out, name);
                put_opt(out, account.as_deref());
                put_opt(out, ip.map(|ip| ip.to_string()).as_deref());
                put_opt(out, until_ms.map(|ms| ms.to_string()).as_deref());
            }
            Change::Unmute { name } => {
                out.push('M');
                put(out, name);
            }
            Change::Topic {
                room,
                text,
                by,
                at_ms,
            } => {
                out.push('t');
                put(out, room.as_str());
                put_opt(out, text.as_deref());
                put(out, by);
                put_num(out, *at_ms);
            }
        }
    }

    fn decode(f: &mut Fields<'_>) -> Result<Change, Malformed> {
        let mut chars = f.0.chars();
        let tag = chars.next().ok_or(Malformed)?;
        f.0 = chars.as_str();
        let name = |f: &mut Fields<'_>| -> Result<String, Malformed> {
            let text = f.next()?;
            if text.is_empty() {
                return Err(Malformed);
            }
            Ok(crate::names::fold(text))
        };
        Ok(match tag {
            'r' => Change::Register {
                display: Nick::parse(f.next()?).map_err(|_| Malformed)?.to_string(),
                hash: f.next()?.to_owned(),
                created_ms: f.num()?,
            },
            'p' => Change::Password {
                name: name(f)?,
                hash: f.next()?.to_owned(),
            },
            'u' => Change::Unregister { name: name(f)? },
            'o' | 'd' => Change::Role {
                name: name(f)?,
                operator: tag == 'o',
            },
            'b' => Change::Ban {
                target: f.next()?.to_owned(),
                reason: f.opt()?.map(str::to_owned),
                by: f.next()?.to_owned(),
                created_ms: f.num()?,
                expires_ms: f
                    .opt()?
                    .map(|ms| ms.parse().map_err(|_| Malformed))
                    .transpose()?,
            },
            'B' => Change::Unban {
                target: f.next()?.to_owned(),
            },
            'm' => Change::Mute {
                name: name(f)?,
                account: f.opt()?.map(str::to_owned),
                ip: f
                    .opt()?
                    .map(|ip| ip.parse().map_err(|_| Malformed))
                    .transpose()?,
                until_ms: f
                    .opt()?
                    .map(|ms| ms.parse().map_err(|_| Malformed))
                    .transpose()?,
            },
            'M' => Change::Unmute { name: name(f)? },
            't' => Change::Topic {
                room: f.room()?,
                text: f.opt()?.map(str::to_owned),
                by: f.next()?.to_owned(),
                at_ms: f.num()?,
            },
            _ => return Err(Malformed),
        })
    }
}

/// The fields still to read.
struct Fields<'a>(&'a str);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Result<&'a str, Malformed> {
        let (len, rest) = self.0.split_once(':').ok_or(Malformed)?;
        let len: usize = len.parse().map_err(|_| Malformed)?;
        let field = rest.get(..len).ok_or(Malformed)?;
        self.0 = &rest[len..];
        Ok(field)
    }

    fn opt(&mut self) -> Result<Option<&'a str>, Malformed> {
        let field = self.next()?;
        match field.strip_prefix('+') {
            Some(text) => Ok(Some(text)),
            None if field == "-" => Ok(None),
            None => Err(Malformed),
        }
    }

    fn num(&mut self) -> Result<i64, Malformed> {
        self.next()?.parse().map_err(|_| Malformed)
    }

    fn member(&mut self) -> Result<Member, Malformed> {
        self.next()?.parse().map_err(|_| Malformed)
    }

    fn nick(&mut self) -> Result<Nick, Malformed> {
        Nick::parse(self.next()?).map_err(|_| Malformed)
    }

    fn room(&mut self) -> Result<RoomName, Malformed> {
        RoomName::parse(self.next()?).map_err(|_| Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).unwrap()
    }

    fn room(s: &str) -> RoomName {
        RoomName::parse(s).unwrap()
    }

    /// Every kind of entry reads back as itself, bodies with separators and multibyte text too.
    #[test]
    fn entries_round_trip() {
        let entries = [
            Entry::Say {
                member: 7,
                nick: nick("alice"),
                room: room("lobby"),
                kind: Kind::Message,
                body: "3:x: ünïcode, 12:colons".into(),
            },
            Entry::Say {
                member: 0,
                nick: nick("Bob"),
                room: room("rust"),
                kind: Kind::Action,
                body: "".into(),
            },
            Entry::Joined {
                member: 1,
                nick: nick("carol"),
                room: room("lobby"),
            },
            Entry::Moved {
                member: 1,
                nick: nick("carol"),
                from: room("lobby"),
                to: room("rust"),
            },
            Entry::Left {
                member: 1,
                nick: nick("carol"),
                room: room("rust"),
                reason: Some("off to bed".into()),
            },
            Entry::Left {
                member: u64::MAX,
                nick: nick("dave"),
                room: room("lobby"),
                reason: None,
            },
            Entry::Quit {
                member: 3,
                nick: nick("erin"),
                room: room("lobby"),
                reason: Some("bye all".into()),
            },
            Entry::Renamed {
                member: 2,
                old: nick("dave"),
                new: nick("David"),
                room: room("lobby"),
            },
            Entry::NodeUp,
            Entry::NodeGone {
                node: "box:7878".into(),
                reason: "node box:7878 lost".into(),
            },
            Entry::Presence { members: vec![] },
            Entry::Kick {
                nick: nick("mallory"),
                by: nick("op"),
                reason: Some("".into()),
            },
            Entry::Kick {
                nick: nick("mallory"),
                by: nick("op"),
                reason: None,
            },
            Entry::Removed {
                member: 4,
                nick: nick("mallory"),
                room: room("lobby"),
                notice: "* mallory was kicked by op (3:x)".into(),
            },
            Entry::Change(Change::Register {
                display: "Alice".into(),
                hash: "$argon2id$v=19$m=1:x".into(),
                created_ms: 1_718_000_000_000,
            }),
            Entry::Change(Change::Password {
                name: "alice".into(),
                hash: "$argon2id$y".into(),
            }),
            Entry::Change(Change::Unregister {
                name: "alice".into(),
            }),
            Entry::Change(Change::Role {
                name: "alice".into(),
                operator: true,
            }),
            Entry::Change(Change::Role {
                name: "alice".into(),
                operator: false,
            }),
            Entry::Change(Change::Ban {
                target: "192.0.2.0/24".into(),
                reason: Some("spam: 3:x".into()),
                by: "op".into(),
                created_ms: 5,
                expires_ms: Some(-1),
            }),
            Entry::Change(Change::Ban {
                target: "mallory".into(),
                reason: None,
                by: "op".into(),
                created_ms: 5,
                expires_ms: None,
            }),
            Entry::Change(Change::Unban {
                target: "mallory".into(),
            }),
            Entry::Change(Change::Mute {
                name: "mallory".into(),
                account: Some("mallory".into()),
                ip: Some("2001:db8::".parse().unwrap()),
                until_ms: Some(99),
            }),
            Entry::Change(Change::Mute {
                name: "mallory".into(),
                account: None,
                ip: None,
                until_ms: None,
            }),
            Entry::Change(Change::Unmute {
                name: "mallory".into(),
            }),
            Entry::Change(Change::Topic {
                room: room("lobby"),
                text: Some("welcome".into()),
                by: "op".into(),
                at_ms: 7,
            }),
            Entry::Change(Change::Topic {
                room: room("lobby"),
                text: None,
                by: "op".into(),
                at_ms: 7,
            }),
            Entry::Presence {
                members: vec![(1, nick("a"), room("lobby")), (2, nick("b"), room("x"))],
            },
        ];
        for entry in entries {
            assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
        }
        let whisper = Whisper {
            from: nick("alice"),
            to: nick("bob"),
            text: "hi: 2:x".into(),
        };
        assert_eq!(Whisper::decode(&whisper.encode()), Ok(whisper));
    }

    /// Truncated, padded, unknown or invalid entries are refused, not half-read.
    #[test]
    fn malformed_entries_are_refused() {
        let good = Entry::Joined {
            member: 1,
            nick: nick("alice"),
            room: room("lobby"),
        }
        .encode();
        for bad in [
            "",
            "X",
            &good[..good.len() - 1],
            &format!("{good}1:x"),
            "J1:15:alice",
            "J1:19:alice5:lobby",
            "J1:16:server5:lobby",
            "P9999999999:",
        ] {
            assert_eq!(Entry::decode(bad), Err(Malformed), "{bad:?}");
        }
    }
}
