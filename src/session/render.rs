//! The line door's renderer: the hub's events as the lines nc and telnet users read.
//!
//! Every line ends in `\n`; the connection turns that into CR LF for telnet clients when it
//! writes. The words come from `protocol.rs`, so a rendered line and the `/me` guard use the
//! same verbs.

use unicode_width::UnicodeWidthStr;

use crate::hub::event::{Arrival, Event, Notice, Page, Refusal, Reply, ServerNotice};
use crate::hub::render::{Personal, Render};
use crate::names::Nick;
use crate::protocol;
use crate::session::command;
use crate::vocab::{Departure, Dropped, Removal};

/// Widest line of a `/who` or `/rooms` reply, in terminal columns (CJK and other wide
/// characters count two), before it continues on the next line: an 80-column terminal shows
/// each line on one row, with no name broken across rows. Not configurable.
const LIST_WIDTH: usize = 79;

/// Names shown in a storm's summary before "and N others".
const NAMED: usize = 3;

/// The line door's only renderer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Lines;

impl Render for Lines {
    fn render(&self, event: &Event, out: &mut Vec<u8>) {
        match event {
            Event::Said(said) => {
                let mut text =
                    String::with_capacity(said.from.as_str().len() + said.text.len() + 4);
                protocol::public(&mut text, said.kind, said.from.as_str(), &said.text);
                line(out, &text);
            }
            Event::Notice(notice) => self.notice(notice, out),
            Event::Server(notice) => line(out, &server(*notice)),
        }
    }

    fn render_to(&self, _me: &Nick, personal: Personal<'_>, out: &mut Vec<u8>) {
        match personal {
            Personal::Private(p) => line(out, &protocol::private_from(&p.from, &p.text)),
            Personal::Reply(reply) => reply_lines(reply, out),
        }
    }

    fn mimics_notice(&self, action: &str) -> bool {
        protocol::mimics_notice(action)
    }
}

impl Lines {
    fn notice(&self, notice: &Notice, out: &mut Vec<u8>) {
        let text = match notice {
            Notice::Joined { nick, .. } => protocol::joined(nick),
            Notice::Left { nick, why, .. } => departure(nick, why),
            Notice::Renamed { old, new, .. } => protocol::renamed(old, new),
            Notice::Topic { room, by, text } => match text {
                Some(text) => protocol::topic_set(by, room, text),
                None => protocol::topic_cleared(by, room),
            },
            Notice::Summary { changes, .. } => {
                for arrival in [Arrival::Joined, Arrival::Left] {
                    let of_kind = || changes.iter().filter(move |(a, _)| *a == arrival);
                    let count = of_kind().count();
                    if count == 0 {
                        continue;
                    }
                    let names: Vec<&Nick> = of_kind().take(NAMED).map(|(_, n)| n).collect();
                    let text = match arrival {
                        Arrival::Joined => protocol::people_joined(count, &names),
                        Arrival::Left => protocol::people_left(count, &names),
                    };
                    line(out, &text);
                }
                return;
            }
        };
        line(out, &text);
    }
}

/// The room's notice of a member leaving.
fn departure(nick: &Nick, why: &Departure) -> String {
    match why {
        Departure::Quit(reason) => protocol::quit(nick, reason.as_deref()),
        Departure::Moved(room) => protocol::left_for(nick, room),
        Departure::Parted(reason) => protocol::parted(nick, reason.as_deref()),
        Departure::Removed(Removal::Kicked { by, reason }) => {
            protocol::kicked(nick, by, reason.as_deref())
        }
        Departure::Removed(Removal::Banned { by, reason, .. }) => {
            protocol::banned(nick, by, reason.as_deref())
        }
        Departure::Dropped(dropped) => {
            let reason = match dropped {
                Dropped::TooSlow => protocol::REASON_TOO_SLOW.to_owned(),
                Dropped::NodeLost(node) => format!("node {node} lost"),
                Dropped::NodeRestarted(node) => format!("node {node} restarted"),
                Dropped::NodeStopped => "server shutting down".to_owned(),
            };
            protocol::left(nick, Some(&reason))
        }
    }
}

fn server(notice: ServerNotice) -> String {
    match notice {
        ServerNotice::ShuttingDown => protocol::SHUTTING_DOWN.to_owned(),
        ServerNotice::HistoryPaused => protocol::CHAT_PAUSED.to_owned(),
        ServerNotice::HistoryResumed => protocol::CHAT_RESUMED.to_owned(),
        ServerNotice::NoticesSkipped(n) => protocol::notices_skipped(n),
        ServerNotice::ClusterPaused => protocol::CLUSTER_PAUSED.to_owned(),
        ServerNotice::ClusterResumed => protocol::CLUSTER_RESUMED.to_owned(),
    }
}

fn reply_lines(reply: &Reply, out: &mut Vec<u8>) {
    let text = match reply {
        Reply::Refused(refusal) => refused(refusal),
        Reply::Joined { room, count } => protocol::you_joined(room, *count),
        Reply::Parted { room } => protocol::you_left(room),
        Reply::PrivateSent { to, text } => protocol::private_to(to, text),
        Reply::Who(page) => {
            let header = page
                .room
                .as_ref()
                .map(|room| protocol::who_header(room, page.total))
                .unwrap_or_default();
            let items: Vec<String> = page.items.iter().map(Nick::to_string).collect();
            return list_page(out, header, &items, page, "/who");
        }
        Reply::Rooms(page) => {
            let items: Vec<String> = page
                .items
                .iter()
                .map(|(room, n)| protocol::room_entry(room, *n))
                .collect();
            return list_page(
                out,
                protocol::rooms_header(page.total),
                &items,
                page,
                "/rooms",
            );
        }
        Reply::Help { operator } => {
            for text in command::help_lines(*operator) {
                line(out, &text);
            }
            return;
        }
        Reply::Topic { room, topic } => match topic {
            Some(topic) => protocol::topic(room, &topic.text, &topic.by),
            None => protocol::no_topic(room),
        },
        Reply::IgnoreList(names) => {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            return list(out, &protocol::ignore_header(names.len()), &names);
        }
        Reply::Ignoring(nick) => protocol::ignoring(nick),
        Reply::Unignored(nick) => protocol::unignored(nick),
        Reply::Removed(Removal::Kicked { by, reason }) => {
            protocol::you_were_kicked(by, reason.as_deref())
        }
        Reply::Removed(Removal::Banned {
            by,
            reason,
            expires_ms,
        }) => protocol::you_were_banned(by, *expires_ms, reason.as_deref()),
        Reply::Kicked(nick) => protocol::you_kicked(nick),
        Reply::BanSet {
            target,
            expires_ms,
            removed,
        } => protocol::ban_set(target, *expires_ms, *removed),
        Reply::Unbanned(target) => protocol::unbanned(target),
        Reply::Bans(bans) => {
            line(out, &protocol::bans_header(bans.len()));
            for b in bans {
                let target = b.target.to_string();
                let entry = protocol::ban_entry(&target, &b.by, b.expires_ms, b.reason.as_deref());
                line(out, &entry);
            }
            return;
        }
        Reply::MuteSet { nick, duration } => protocol::mute_set(nick, duration.as_deref()),
        Reply::Unmuted(nick) => protocol::unmuted(nick),
        Reply::YouWereMuted { by, duration } => protocol::you_were_muted(by, duration.as_deref()),
        Reply::YouAreUnmuted => protocol::YOU_ARE_UNMUTED.to_owned(),
        Reply::Role {
            name,
            operator: true,
        } => protocol::now_operator(name),
        Reply::Role {
            name,
            operator: false,
        } => protocol::no_longer_operator(name),
    };
    line(out, &text);
}

/// A refusal, in the line door's words.
pub fn refused(refusal: &Refusal) -> String {
    match refusal {
        Refusal::NameTaken(nick) => protocol::name_taken_on_rename(nick),
        Refusal::NameLooksLike(nick) => protocol::name_confusable(nick),
        Refusal::NameHeld(nick, secs) => protocol::name_held(nick, *secs),
        Refusal::AlreadyKnownAs(nick) => protocol::already_known_as(nick),
        Refusal::AlreadyIn(room) => protocol::already_in(room),
        Refusal::NotInRoom(room) => protocol::not_in(room),
        Refusal::WhichRoom => protocol::WHICH_ROOM.to_owned(),
        Refusal::NoSuchUser(nick) => protocol::no_such_user(nick),
        Refusal::Muted => protocol::YOU_ARE_MUTED.to_owned(),
        Refusal::LooksLikeNotice => command::CommandError::LooksLikeNotice.to_string(),
        Refusal::HistoryFull => protocol::NOT_SENT_PAUSED.to_owned(),
        Refusal::ClusterPaused => protocol::NOT_SENT_CLUSTER.to_owned(),
        Refusal::PrivateFlood(nick) => protocol::private_not_delivered(nick),
        Refusal::OperatorsOnly(kind) => protocol::operators_only(&command::operator_command(*kind)),
        Refusal::BanTooWide { target, min } => protocol::ban_too_wide(target, *min),
        Refusal::BanCoversYou => protocol::BAN_COVERS_YOU.to_owned(),
        Refusal::CliOperator(name) => protocol::operator_from_command_line(name),
        Refusal::NoBan(target) => protocol::no_ban(target),
        Refusal::NotMuted(nick) => protocol::not_muted(nick),
        Refusal::IgnoreSelf => protocol::IGNORE_SELF.to_owned(),
        Refusal::IgnoreFull(max) => protocol::ignore_full(*max),
        Refusal::NotIgnoring(nick) => protocol::not_ignoring(nick),
        Refusal::NotRegistered(name) => protocol::not_registered(name),
        Refusal::AccountsUnavailable => protocol::ACCOUNTS_UNAVAILABLE.to_owned(),
        Refusal::ShuttingDown => protocol::SHUTTING_DOWN.to_owned(),
    }
}

/// One page of a list: its header (with the page number after the first), the items, and how
/// to ask for the next page if there is one.
fn list_page<T>(
    out: &mut Vec<u8>,
    mut header: String,
    items: &[String],
    page: &Page<T>,
    command: &str,
) {
    if page.page > 1 {
        header.push(' ');
        header.push_str(&protocol::page_of(page.page, page.pages()));
    }
    list(out, &header, items);
    if let Some(next) = page.next() {
        line(out, &protocol::more_pages(page.left(), command, next));
    }
}

/// `header item, item, ...`, continued on further lines when long, so that no reply line
/// outgrows an outbox however many users or rooms there are.
fn list(out: &mut Vec<u8>, header: &str, items: &[String]) {
    let mut text = header.to_owned();
    let mut width = text.width();
    let mut first = true;
    for item in items {
        // The item and its separator, and the comma that would end this line.
        let item_width = item.width() + 2;
        if width + item_width + 1 > LIST_WIDTH && !first {
            text.push(',');
            line(out, &text);
            text = "  ".to_owned();
            width = 2;
            first = true;
        }
        text.push_str(if first { " " } else { ", " });
        text.push_str(item);
        width += item_width;
        first = false;
    }
    line(out, &text);
}

/// Appends one line of text and its newline.
fn line(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}
