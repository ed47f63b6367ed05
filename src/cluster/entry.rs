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
