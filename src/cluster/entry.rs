//! What one cluster log entry says, and its encoding in the stream's `e` field.
//!
//! The encoding is a tag letter followed by length-prefixed fields (`5:alice`), so a body may hold
//! any character without escaping, and a field that does not parse (a newer node's entry, a
//! hand-written one) is refused as a whole. Names are validated again here, because the log is an
//! edge: anything in Redis could have been written by something other than a smolchat node.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::names::{Nick, RoomName};
use crate::vocab::{Change, Departure, Dropped, Kind, MemberId, PrivateKind, Removal};

/// One event in the cluster's shared history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A public line (a message or a `/me`): stored by every node.
    Say {
        member: MemberId,
        nick: Nick,
        /// The account the sender is logged in to, if any.
        account: Option<Arc<str>>,
        room: RoomName,
        kind: Kind,
        body: Arc<str>,
        /// Opaque data for this node's live readers (IRC client-only tags): never encoded, so
        /// never in the log, on other nodes or in the history.
        attached: Option<Arc<str>>,
    },
    /// A member entered `room` (on registering, the lobby).
    Joined {
        member: MemberId,
        nick: Nick,
        room: RoomName,
    },
    /// A member left `rooms` (all of its rooms, when it left the chat), and why.
    Left {
        member: MemberId,
        nick: Nick,
        rooms: Vec<RoomName>,
        why: Departure,
    },
    /// A member took another name; `rooms` are told.
    Renamed {
        member: MemberId,
        old: Nick,
        new: Nick,
        rooms: Vec<RoomName>,
    },
    /// The writing node started: whatever was known about its earlier run is void, and the other
    /// nodes answer with a [`Entry::Presence`] so it learns who is where.
    NodeUp,
    /// `node` stopped cleanly (`stopped`), or its heartbeat expired: its members are gone.
    NodeGone { node: Arc<str>, stopped: bool },
    /// The writing node's members, once per room each: a snapshot for nodes that just started.
    Presence {
        members: Vec<(MemberId, Nick, RoomName)>,
    },
    /// Members of the writing node in no room: one that just arrived (IRC users arrive in none),
    /// or, beside a [`Entry::Presence`] snapshot, every such member. Other nodes know them by
    /// name (`/msg`, `/kick`) though no room lists them.
    Arrived { members: Vec<(MemberId, Nick)> },
    /// A change to accounts or moderation (see [`Change`]): every node applies it to its file
    /// and its hub's state, in log order.
    Change(Change),
    /// An operator kicked `nick`: the node holding that member removes it; the others ignore it.
    Kick {
        nick: Nick,
        by: Nick,
        reason: Option<String>,
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
                account,
                room,
                kind,
                body,
                attached: _,
            } => {
                out.push(match kind {
                    Kind::Message => 'S',
                    Kind::Action => 'A',
                });
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put_opt(&mut out, account.as_deref());
                put(&mut out, room.as_str());
                put(&mut out, body);
            }
            Entry::Joined { member, nick, room } => {
                out.push('J');
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put(&mut out, room.as_str());
            }
            Entry::Left {
                member,
                nick,
                rooms,
                why,
            } => {
                out.push('L');
                put_member(&mut out, *member);
                put(&mut out, nick.as_str());
                put_rooms(&mut out, rooms);
                encode_departure(why, &mut out);
            }
            Entry::Renamed {
                member,
                old,
                new,
                rooms,
            } => {
                out.push('R');
                put_member(&mut out, *member);
                put(&mut out, old.as_str());
                put(&mut out, new.as_str());
                put_rooms(&mut out, rooms);
            }
            Entry::NodeUp => out.push('U'),
            Entry::NodeGone { node, stopped } => {
                out.push(if *stopped { 'G' } else { 'g' });
                put(&mut out, node);
            }
            Entry::Change(change) => {
                out.push('C');
                encode_change(change, &mut out);
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
            Entry::Arrived { members } => {
                out.push('E');
                put(&mut out, &members.len().to_string());
                for (member, nick) in members {
                    put_member(&mut out, *member);
                    put(&mut out, nick.as_str());
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
                account: f.opt()?.map(Into::into),
                room: f.room()?,
                kind: if tag == 'S' {
                    Kind::Message
                } else {
                    Kind::Action
                },
                body: f.next()?.into(),
                attached: None,
            },
            'J' => Entry::Joined {
                member: f.member()?,
                nick: f.nick()?,
                room: f.room()?,
            },
            'L' => Entry::Left {
                member: f.member()?,
                nick: f.nick()?,
                rooms: f.rooms()?,
                why: decode_departure(&mut f)?,
            },
            'R' => Entry::Renamed {
                member: f.member()?,
                old: f.nick()?,
                new: f.nick()?,
                rooms: f.rooms()?,
            },
            'U' => Entry::NodeUp,
            'G' | 'g' => Entry::NodeGone {
                node: f.next()?.into(),
                stopped: tag == 'G',
            },
            'C' => Entry::Change(decode_change(&mut f)?),
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
            'E' => {
                let n: usize = f.next()?.parse().map_err(|_| Malformed)?;
                // Each member takes at least four bytes, so a forged count cannot allocate much.
                let mut members = Vec::with_capacity(n.min(f.0.len() / 4));
                for _ in 0..n {
                    members.push((f.member()?, f.nick()?));
                }
                Entry::Arrived { members }
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

/// A private line between nodes (`/msg` to a user on another node), never stored. Its kind is
/// its first letter (`W` a line, `N` a notice, `C` a CTCP query, `R` its reply), so a node that knows only lines refuses the
/// rest as malformed rather than showing a notice as something to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whisper {
    pub from: Nick,
    pub to: Nick,
    pub text: String,
    pub kind: PrivateKind,
}

impl Whisper {
    pub fn encode(&self) -> String {
        let mut out = String::from(match self.kind {
            PrivateKind::Line => "W",
            PrivateKind::Action => "A",
            PrivateKind::Notice => "N",
            PrivateKind::Ctcp => "C",
            PrivateKind::CtcpReply => "R",
        });
        put(&mut out, self.from.as_str());
        put(&mut out, self.to.as_str());
        put(&mut out, &self.text);
        out
    }

    pub fn decode(text: &str) -> Result<Whisper, Malformed> {
        let (kind, rest) = match text.split_at_checked(1) {
            Some(("W", rest)) => (PrivateKind::Line, rest),
            Some(("A", rest)) => (PrivateKind::Action, rest),
            Some(("N", rest)) => (PrivateKind::Notice, rest),
            Some(("C", rest)) => (PrivateKind::Ctcp, rest),
            Some(("R", rest)) => (PrivateKind::CtcpReply, rest),
            _ => return Err(Malformed),
        };
        let mut f = Fields(rest);
        let whisper = Whisper {
            from: f.nick()?,
            to: f.nick()?,
            text: f.next()?.to_owned(),
            kind,
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

fn put_member(out: &mut String, member: MemberId) {
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

/// A list of rooms: its length, then each.
fn put_rooms(out: &mut String, rooms: &[RoomName]) {
    put(out, &rooms.len().to_string());
    for room in rooms {
        put(out, room.as_str());
    }
}

/// Appends why a member left: a tag letter and its fields.
fn encode_departure(why: &Departure, out: &mut String) {
    match why {
        Departure::Quit(reason) => {
            out.push('q');
            put_opt(out, reason.as_deref());
        }
        Departure::Moved(room) => {
            out.push('m');
            put(out, room.as_str());
        }
        Departure::Parted(reason) => {
            out.push('p');
            put_opt(out, reason.as_deref());
        }
        Departure::Removed(Removal::Kicked { by, reason }) => {
            out.push('k');
            put(out, by);
            put_opt(out, reason.as_deref());
        }
        Departure::Removed(Removal::Banned {
            by,
            reason,
            expires_ms,
        }) => {
            out.push('b');
            put(out, by);
            put_opt(out, reason.as_deref());
            put_opt(out, expires_ms.map(|ms| ms.to_string()).as_deref());
        }
        Departure::Dropped(Dropped::NameTaken(holder)) => {
            out.push('t');
            put(out, holder);
        }
        // Only a slow reader's own node drops it; node losses are each node's own conclusion.
        Departure::Dropped(_) => out.push('s'),
    }
}

/// Reads what [`encode_departure`] wrote.
fn decode_departure(f: &mut Fields<'_>) -> Result<Departure, Malformed> {
    let mut chars = f.0.chars();
    let tag = chars.next().ok_or(Malformed)?;
    f.0 = chars.as_str();
    let words = |f: &mut Fields<'_>| Ok::<_, Malformed>(f.opt()?.map(Into::into));
    Ok(match tag {
        'q' => Departure::Quit(words(f)?),
        'm' => Departure::Moved(f.room()?),
        'p' => Departure::Parted(words(f)?),
        'k' => Departure::Removed(Removal::Kicked {
            by: f.next()?.into(),
            reason: words(f)?,
        }),
        'b' => Departure::Removed(Removal::Banned {
            by: f.next()?.into(),
            reason: words(f)?,
            expires_ms: f
                .opt()?
                .map(|ms| ms.parse().map_err(|_| Malformed))
                .transpose()?,
        }),
        's' => Departure::Dropped(Dropped::TooSlow),
        't' => Departure::Dropped(Dropped::NameTaken(f.next()?.into())),
        _ => return Err(Malformed),
    })
}

/// Appends a change's encoding (a tag letter and its fields) to `out`.
fn encode_change(change: &Change, out: &mut String) {
    match change {
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

/// Reads a change written by [`encode_change`].
fn decode_change(f: &mut Fields<'_>) -> Result<Change, Malformed> {
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

    fn member(&mut self) -> Result<MemberId, Malformed> {
        self.next()?.parse().map_err(|_| Malformed)
    }

    fn nick(&mut self) -> Result<Nick, Malformed> {
        Nick::parse(self.next()?).map_err(|_| Malformed)
    }

    fn room(&mut self) -> Result<RoomName, Malformed> {
        RoomName::parse(self.next()?).map_err(|_| Malformed)
    }

    fn rooms(&mut self) -> Result<Vec<RoomName>, Malformed> {
        let n: usize = self.next()?.parse().map_err(|_| Malformed)?;
        // Each room takes at least three bytes, so a forged count cannot allocate much.
        let mut rooms = Vec::with_capacity(n.min(self.0.len() / 3));
        for _ in 0..n {
            rooms.push(self.room()?);
        }
        Ok(rooms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::testing::{nick, room};

    /// Every kind of entry reads back as itself, bodies with separators and multibyte text too.
    #[test]
    fn entries_round_trip() {
        let entries = [
            Entry::Say {
                member: 7,
                nick: nick("alice"),
                account: Some("alice".into()),
                room: room("lobby"),
                kind: Kind::Message,
                body: "3:x: ünïcode, 12:colons".into(),
                attached: None,
            },
            Entry::Say {
                member: 0,
                nick: nick("Bob"),
                account: None,
                room: room("rust"),
                kind: Kind::Action,
                body: "".into(),
                attached: None,
            },
            Entry::Joined {
                member: 1,
                nick: nick("carol"),
                room: room("lobby"),
            },
            Entry::Left {
                member: 1,
                nick: nick("carol"),
                rooms: vec![room("lobby")],
                why: Departure::Moved(room("rust")),
            },
            Entry::Left {
                member: 1,
                nick: nick("carol"),
                rooms: vec![room("rust"), room("go")],
                why: Departure::Parted(Some("off to bed".into())),
            },
            Entry::Left {
                member: u64::MAX,
                nick: nick("dave"),
                rooms: vec![],
                why: Departure::Dropped(Dropped::TooSlow),
            },
            Entry::Left {
                member: 2,
                nick: nick("alice"),
                rooms: vec![room("lobby")],
                why: Departure::Dropped(Dropped::NameTaken("b".into())),
            },
            Entry::Left {
                member: 3,
                nick: nick("erin"),
                rooms: vec![room("lobby")],
                why: Departure::Quit(Some("bye all".into())),
            },
            Entry::Left {
                member: 3,
                nick: nick("erin"),
                rooms: vec![room("lobby")],
                why: Departure::Quit(None),
            },
            Entry::Left {
                member: 4,
                nick: nick("mallory"),
                rooms: vec![room("lobby")],
                why: Departure::Removed(Removal::Kicked {
                    by: "op".into(),
                    reason: Some("3:x".into()),
                }),
            },
            Entry::Left {
                member: 4,
                nick: nick("mallory"),
                rooms: vec![room("lobby")],
                why: Departure::Removed(Removal::Banned {
                    by: "cli".into(),
                    reason: None,
                    expires_ms: Some(1_718_000_000_000),
                }),
            },
            Entry::Renamed {
                member: 2,
                old: nick("dave"),
                new: nick("David"),
                rooms: vec![room("lobby"), room("rust")],
            },
            Entry::NodeUp,
            Entry::NodeGone {
                node: "box:7878".into(),
                stopped: false,
            },
            Entry::NodeGone {
                node: "box:7878".into(),
                stopped: true,
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
            Entry::Arrived { members: vec![] },
            Entry::Arrived {
                members: vec![(1, nick("a")), (7, nick("ann"))],
            },
        ];
        for entry in entries {
            assert_eq!(Entry::decode(&entry.encode()), Ok(entry));
        }
        let kinds = [
            PrivateKind::Line,
            PrivateKind::Action,
            PrivateKind::Notice,
            PrivateKind::Ctcp,
            PrivateKind::CtcpReply,
        ];
        for kind in kinds {
            let whisper = Whisper {
                from: nick("alice"),
                to: nick("bob"),
                text: "hi: 2:x".into(),
                kind,
            };
            assert_eq!(Whisper::decode(&whisper.encode()), Ok(whisper));
        }
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
