//! The line door's renderer: the hub's events as the lines nc and telnet users read.
//!
//! Every line ends in `\n`; the connection turns that into CR LF for telnet clients when it
//! writes. The words come from `words/`, so a rendered line and the `/me` guard use the
//! same verbs.

use unicode_width::UnicodeWidthStr;

use super::commands;
use super::words;
use crate::hub::event::{Arrival, Event, Notice, Page, Refusal, Reply, ServerNotice};
use crate::hub::render::{Personal, Render};
use crate::names::Nick;
use crate::vocab::{Departure, Dropped, PrivateKind, Removal};
use crate::wire::markup::for_terminal;

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
                // IRC formatting codes are for IRC clients: never a terminal's control bytes.
                words::public(
                    &mut text,
                    said.kind,
                    said.from.as_str(),
                    &for_terminal(&said.text),
                );
                line(out, &text);
            }
            Event::Notice(notice) => self.notice(notice, out),
            Event::Server(notice) => line(out, &server(*notice)),
            // Another door's live-only data (IRC's TAGMSG): nothing to show.
            Event::Signal(_) => {}
        }
    }

    fn render_to(&self, _me: &Nick, personal: Personal<'_>, out: &mut Vec<u8>) {
        match personal {
            // CTCP and signals (IRC's `TAGMSG`) are between IRC clients: nothing here shows them.
            Personal::Private(p) if p.kind.is_ctcp() || p.is_signal() => {}
            Personal::Private(p) if p.kind == PrivateKind::Action => {
                line(out, &words::private_action(&p.from, &for_terminal(&p.text)));
            }
            Personal::Private(p) => {
                line(out, &words::private_from(&p.from, &for_terminal(&p.text)));
            }
            Personal::Reply(reply) => reply_lines(reply, out),
        }
    }

    fn mimics_notice(&self, action: &str) -> bool {
        // As shown: formatting codes must not hide a notice's words from the guard.
        words::mimics_notice(&for_terminal(action))
    }
}

impl Lines {
    fn notice(&self, notice: &Notice, out: &mut Vec<u8>) {
        let text = match notice {
            Notice::Joined { nick, .. } => words::joined(nick),
            // The line door does not show who is away.
            Notice::Away { .. } => return,
            Notice::Left { nick, why, .. } => departure(nick, why),
            Notice::Renamed { old, new, .. } => words::renamed(old, new),
            Notice::Topic { room, by, text } => match text {
                Some(text) => words::topic_set(by, room, text),
                None => words::topic_cleared(by, room),
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
                        Arrival::Joined => words::people_joined(count, &names),
                        Arrival::Left => words::people_left(count, &names),
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
        Departure::Quit(reason) => words::quit(nick, reason.as_deref()),
        Departure::Moved(room) => words::left_for(nick, room),
        Departure::Parted(reason) => words::parted(nick, reason.as_deref()),
        Departure::Removed(Removal::Kicked { by, reason }) => {
            words::kicked(nick, by, reason.as_deref())
        }
        Departure::Removed(Removal::Banned { by, reason, .. }) => {
            words::banned(nick, by, reason.as_deref())
        }
        Departure::Dropped(dropped) => {
            let reason = match dropped {
                Dropped::TooSlow => words::REASON_TOO_SLOW.to_owned(),
                Dropped::NodeLost(node) => format!("node {node} lost"),
                Dropped::NodeRestarted(node) => format!("node {node} restarted"),
                Dropped::NodeStopped => "server shutting down".to_owned(),
                Dropped::NameTaken(holder) => words::name_taken_reason(holder),
            };
            words::left(nick, Some(&reason))
        }
    }
}

fn server(notice: ServerNotice) -> String {
    match notice {
        ServerNotice::ShuttingDown => words::SHUTTING_DOWN.to_owned(),
        ServerNotice::HistoryPaused => words::CHAT_PAUSED.to_owned(),
        ServerNotice::HistoryResumed => words::CHAT_RESUMED.to_owned(),
        ServerNotice::NoticesSkipped(n) => words::notices_skipped(n),
        ServerNotice::ClusterPaused => words::CLUSTER_PAUSED.to_owned(),
        ServerNotice::ClusterResumed => words::CLUSTER_RESUMED.to_owned(),
    }
}

fn reply_lines(reply: &Reply, out: &mut Vec<u8>) {
    let text = match reply {
        Reply::Refused(refusal) => refused(refusal),
        Reply::Joined { room, count, .. } => words::you_joined(room, *count),
        Reply::Parted { room, .. } => words::you_left(room),
        Reply::PrivateSent { to, text, .. } => words::private_to(to, text),
        Reply::Who(page) => {
            let header = page
                .room
                .as_ref()
                .map(|room| words::who_header(room, page.total))
                .unwrap_or_default();
            let items: Vec<String> = page.items.iter().map(|m| m.nick.to_string()).collect();
            return list_page(out, header, &items, page, "/who");
        }
        Reply::Rooms(page) => {
            let items: Vec<String> = page
                .items
                .iter()
                .map(|(room, n)| words::room_entry(room, *n))
                .collect();
            return list_page(out, words::rooms_header(page.total), &items, page, "/rooms");
        }
        Reply::Help { operator } => {
            for text in commands::help_lines(*operator) {
                line(out, &text);
            }
            return;
        }
        Reply::Topic { room, topic } => match topic {
            Some(topic) => words::topic(room, &topic.text, &topic.by),
            None => words::no_topic(room),
        },
        Reply::IgnoreList(names) => {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            return list(out, &words::ignore_header(names.len()), &names);
        }
        Reply::Ignoring(nick) => words::ignoring(nick),
        Reply::Unignored(nick) => words::unignored(nick),
        Reply::Removed(Removal::Kicked { by, reason }) => {
            words::you_were_kicked(by, reason.as_deref())
        }
        Reply::Removed(Removal::Banned {
            by,
            reason,
            expires_ms,
        }) => words::you_were_banned(by, *expires_ms, reason.as_deref()),
        Reply::NameTaken { nick, holder } => words::name_taken_while_cut_off(nick, holder),
        Reply::Kicked(nick) => words::you_kicked(nick),
        Reply::BanSet {
            target,
            expires_ms,
            removed,
        } => words::ban_set(target, *expires_ms, *removed),
        Reply::Unbanned(target) => words::unbanned(target),
        Reply::Bans(bans) => {
            line(out, &words::bans_header(bans.len()));
            for b in bans {
                let target = b.target.to_string();
                let entry = words::ban_entry(&target, &b.by, b.expires_ms, b.reason.as_deref());
                line(out, &entry);
            }
            return;
        }
        Reply::MuteSet { nick, duration } => words::mute_set(nick, duration.as_deref()),
        Reply::Unmuted(nick) => words::unmuted(nick),
        Reply::YouWereMuted { by, duration } => words::you_were_muted(by, duration.as_deref()),
        Reply::YouAreUnmuted => words::YOU_ARE_UNMUTED.to_owned(),
        Reply::Unregistered(name) => words::unregistered(name),
        Reply::AccountRemoved { name, by } => words::account_removed(name, by.as_ref()),
        Reply::Role {
            name,
            operator: true,
        } => words::now_operator(name),
        Reply::Role {
            name,
            operator: false,
        } => words::no_longer_operator(name),
    };
    line(out, &text);
}

/// A refusal, in the line door's words.
pub fn refused(refusal: &Refusal) -> String {
    match refusal {
        Refusal::NameTaken(nick) => words::name_taken_on_rename(nick),
        Refusal::NameLooksLike(nick) => words::name_confusable(nick),
        Refusal::NameHeld(nick, secs) => words::name_held(nick, *secs),
        Refusal::AlreadyKnownAs(nick) => words::already_known_as(nick),
        Refusal::AlreadyIn(room) => words::already_in(room),
        Refusal::RoomLooksLike(room, other) => words::room_looks_like(room, other),
        Refusal::NotInRoom(room) => words::not_in(room),
        Refusal::WhichRoom => words::WHICH_ROOM.to_owned(),
        Refusal::NoSuchUser(nick) => words::no_such_user(nick),
        Refusal::Muted => words::YOU_ARE_MUTED.to_owned(),
        Refusal::LooksLikeNotice => commands::CommandError::LooksLikeNotice.to_string(),
        Refusal::HistoryFull => words::NOT_SENT_PAUSED.to_owned(),
        Refusal::ClusterPaused => words::NOT_SENT_CLUSTER.to_owned(),
        Refusal::PrivateFlood(nick) => words::private_not_delivered(nick),
        Refusal::OperatorsOnly(kind) => words::operators_only(&commands::operator_command(*kind)),
        Refusal::BanTooWide { target, min } => words::ban_too_wide(target, *min),
        Refusal::BanCoversYou => words::BAN_COVERS_YOU.to_owned(),
        Refusal::CliOperator(name) => words::operator_from_command_line(name),
        Refusal::NoBan(target) => words::no_ban(target),
        Refusal::NotMuted(nick) => words::not_muted(nick),
        Refusal::IgnoreSelf => words::IGNORE_SELF.to_owned(),
        Refusal::IgnoreFull(max) => words::ignore_full(*max),
        Refusal::NotIgnoring(nick) => words::not_ignoring(nick),
        Refusal::NotRegistered(name) => words::not_registered(name),
        Refusal::NoSuchAccount(name) => words::no_such_account(name),
        Refusal::AccountsUnavailable => words::ACCOUNTS_UNAVAILABLE.to_owned(),
        Refusal::NoSuchPage { page, pages } => words::no_such_page(*page, *pages),
        Refusal::ShuttingDown => words::SHUTTING_DOWN.to_owned(),
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
        header.push_str(&words::page_of(page.page, page.pages()));
    }
    list(out, &header, items);
    if let Some(next) = page.next() {
        line(out, &words::more_pages(page.left(), command, next));
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
