//! The web door's renderer: the hub's events as the JSON objects of docs/WEB.md, one per line.
//!
//! A public line is rendered straight into its JSON (the fan-out's hot path). Notices and
//! replies carry structured fields the page acts on (who joined, the topic, who is here, the
//! rooms) and a `text` to show, in the same words nc users read: the line door's renderer
//! writes the sentences, and each of its lines becomes one object here. So both doors say the
//! same thing, and a new kind of reply shows on the page without a change in this file.

use crate::clock::now_ms;
use crate::door::line::render::{refused, Lines};
use crate::hub::event::{Event, Notice as HubNotice, Refusal, Reply, ServerNotice};
use crate::hub::render::{Personal, Render};
use crate::names::Nick;
use crate::vocab::{Departure, Kind, PrivateKind, Removal};
use crate::wire::markup::for_terminal;

use super::protocol::{
    ByeReason, ErrorCode, Line, LineKind, Notice, NoticeKind, RoomCount, ServerMsg,
};

/// The web door's only renderer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Json;

impl Render for Json {
    fn render(&self, event: &Event, out: &mut Vec<u8>) {
        match event {
            Event::Said(said) => ServerMsg::Line(Line {
                id: said.id,
                time: said.at_ms,
                room: said.room.as_str(),
                sender: said.from.as_str(),
                kind: line_kind(said.kind),
                // IRC formatting codes are for IRC clients, never the page's text.
                text: &for_terminal(&said.text),
            })
            .write_to(out),
            // The page does not show who is away.
            Event::Notice(HubNotice::Away { .. }) => {}
            Event::Notice(notice) => room_notice(notice, out),
            Event::Server(ServerNotice::ShuttingDown) => {
                let text = text_of(|scratch| Lines.render(event, scratch));
                ServerMsg::Bye {
                    reason: ByeReason::Shutdown,
                    text: text.trim_end(),
                    reconnect: true,
                }
                .write_to(out);
            }
            Event::Server(_) => {
                let text = text_of(|scratch| Lines.render(event, scratch));
                notices(NoticeKind::Server, None, &text, out);
            }
            // Another door's live-only data (IRC's TAGMSG): nothing to show.
            Event::Signal(_) => {}
        }
    }

    fn render_to(&self, me: &Nick, personal: Personal<'_>, out: &mut Vec<u8>) {
        match personal {
            // CTCP and signals (IRC's `TAGMSG`) are between IRC clients: nothing here shows them.
            Personal::Private(p) if p.kind.is_ctcp() || p.is_signal() => {}
            Personal::Private(p) => ServerMsg::Private {
                time: now_ms(),
                sender: p.from.as_str(),
                to: p.to.as_str(),
                text: &for_terminal(&p.text),
                action: p.kind == PrivateKind::Action,
            }
            .write_to(out),
            Personal::Reply(reply) => self.reply(me, reply, out),
        }
    }
}

impl Json {
    fn reply(&self, me: &Nick, reply: &Reply, out: &mut Vec<u8>) {
        match reply {
            Reply::Refused(refusal) => {
                let code = match refusal {
                    Refusal::OperatorsOnly(_) => ErrorCode::Command,
                    _ => ErrorCode::Refused,
                };
                let text = refused(refusal);
                ServerMsg::Error { code, text: &text }.write_to(out);
            }
            Reply::PrivateSent { to, text, .. } => ServerMsg::Private {
                time: now_ms(),
                sender: me.as_str(),
                to: to.as_str(),
                text,
                action: false,
            }
            .write_to(out),
            Reply::Who(page) => {
                let names: Vec<&str> = page.items.iter().map(|m| m.nick.as_str()).collect();
                let room = page.room.as_ref().map_or("", |r| r.as_str());
                ServerMsg::Who {
                    room,
                    names: &names,
                    more: page.next().is_some(),
                }
                .write_to(out);
            }
            Reply::Rooms(page) => {
                let rooms: Vec<RoomCount> = page
                    .items
                    .iter()
                    .map(|(room, users)| RoomCount {
                        room: room.as_str(),
                        users: u32::try_from(*users).unwrap_or(u32::MAX),
                    })
                    .collect();
                ServerMsg::Rooms { rooms: &rooms }.write_to(out);
            }
            Reply::Removed(removal) => {
                let reason = match removal {
                    Removal::Kicked { .. } => ByeReason::Kicked,
                    Removal::Banned { .. } => ByeReason::Banned,
                };
                let text = text_of(|s| Lines.render_to(me, Personal::Reply(reply), s));
                ServerMsg::Bye {
                    reason,
                    text: text.trim_end(),
                    reconnect: false,
                }
                .write_to(out);
            }
            Reply::NameTaken { .. } => {
                let text = text_of(|s| Lines.render_to(me, Personal::Reply(reply), s));
                ServerMsg::Bye {
                    reason: ByeReason::Limit,
                    text: text.trim_end(),
                    reconnect: false,
                }
                .write_to(out);
            }
            _ => {
                let text = text_of(|s| Lines.render_to(me, Personal::Reply(reply), s));
                notices(NoticeKind::Info, None, &text, out);
            }
        }
    }
}

/// A notice about a room, with the fields the page keeps its list of who is here by.
fn room_notice(notice: &HubNotice, out: &mut Vec<u8>) {
    let text = text_of(|scratch| Lines.render(&Event::Notice(notice.clone()), scratch));
    let text = text.trim_end();
    let room = Some(notice.room().as_str());
    let (kind, name, to, topic) = match notice {
        HubNotice::Joined { nick, .. } => (NoticeKind::Joined, Some(nick), None, None),
        HubNotice::Left { nick, why, .. } => {
            let kind = match why {
                Departure::Removed(_) => NoticeKind::Kicked,
                _ => NoticeKind::Left,
            };
            (kind, Some(nick), None, None)
        }
        HubNotice::Renamed { old, new, .. } => {
            (NoticeKind::Renamed, Some(old), Some(new.as_str()), None)
        }
        HubNotice::Topic { text: topic, .. } => (
            NoticeKind::Topic,
            None,
            None,
            Some(topic.as_deref().unwrap_or("")),
        ),
        HubNotice::Summary { .. } => return notices(NoticeKind::Info, room, text, out),
        HubNotice::Away { .. } => return,
    };
    ServerMsg::Notice(Notice {
        kind,
        room,
        name: name.map(Nick::as_str),
        to,
        topic,
        text,
    })
    .write_to(out);
}

/// One notice per line of `text`.
fn notices(kind: NoticeKind, room: Option<&str>, text: &str, out: &mut Vec<u8>) {
    for line in text.lines().filter(|l| !l.is_empty()) {
        ServerMsg::Notice(Notice {
            kind,
            room,
            name: None,
            to: None,
            topic: None,
            text: line,
        })
        .write_to(out);
    }
}

/// What the line door's renderer writes, as text.
fn text_of(render: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut scratch = Vec::new();
    render(&mut scratch);
    String::from_utf8_lossy(&scratch).into_owned()
}

pub(super) fn line_kind(kind: Kind) -> LineKind {
    match kind {
        Kind::Action => LineKind::Action,
        Kind::Message => LineKind::Say,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::hub::event::{Page, Said};
    use crate::names::RoomName;

    fn objects(out: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(out).expect("utf-8");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    /// A public line is one `line` object, markup and all as plain text.
    #[test]
    fn a_said_line_is_a_line_object() {
        let said = Said {
            id: 9,
            at_ms: 1_700_000_000_000,
            room: RoomName::parse("lobby").expect("room"),
            from: Nick::parse("bob").expect("nick"),
            account: None,
            kind: Kind::Action,
            text: Arc::from("<img src=x onerror=alert(1)>"),
            attached: None,
        };
        let mut out = Vec::new();
        Json.render(&Event::Said(said), &mut out);
        let objects = objects(&out);
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0]["type"], "line");
        assert_eq!(objects[0]["kind"], "action");
        assert_eq!(objects[0]["text"], "<img src=x onerror=alert(1)>");
    }

    /// Notices carry who they are about; `/who` is a list; a kick is a `bye`.
    #[test]
    fn notices_replies_and_removals() {
        let room = RoomName::parse("lobby").expect("room");
        let bob = Nick::parse("bob").expect("nick");
        let mut out = Vec::new();
        let joined = HubNotice::Joined {
            room: room.clone(),
            nick: bob.clone(),
            listed: None,
        };
        Json.render(&Event::Notice(joined), &mut out);
        let who = Reply::Who(Page {
            room: Some(room),
            page: 0,
            total: 1,
            per_page: 10,
            items: vec![crate::hub::event::Listed::named(bob.clone())],
        });
        Json.render_to(&bob, Personal::Reply(&who), &mut out);
        let kicked = Reply::Removed(Removal::Kicked {
            by: Arc::from("op"),
            reason: None,
        });
        Json.render_to(&bob, Personal::Reply(&kicked), &mut out);
        Json.render_to(
            &bob,
            Personal::Reply(&Reply::Help { operator: false }),
            &mut out,
        );
        let objects = objects(&out);
        assert_eq!(objects[0]["kind"], "joined");
        assert_eq!(objects[0]["name"], "bob");
        assert_eq!(objects[1]["type"], "who");
        assert_eq!(objects[1]["names"][0], "bob");
        assert_eq!(objects[2]["type"], "bye");
        assert_eq!(objects[2]["reason"], "kicked");
        assert_eq!(objects[2]["reconnect"], false);
        assert!(objects.len() > 4, "help is several notices");
        assert!(objects[3..].iter().all(|o| o["kind"] == "info"));
    }
}
