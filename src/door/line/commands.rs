//! The line door's `/commands`: one table that parsing, `/help`, refusals and the README read.
//!
//! Each [`Command`] names itself, says how it is called, what `/help` says of it, whether it is
//! for operators, and how its arguments are parsed. A command parses to what it asks: a hub
//! [`Request`] (the hub checks the operator role once, for all operator commands) or a dialogue
//! the session runs itself ([`Local`]). Adding a command is one row here and, if it is new to
//! the hub, one request there. Parsing happens once, here; nothing after it reads command text.
//! `//text` escapes a message that starts with a slash.

use std::sync::LazyLock;

use super::words;
use crate::hub::event::OpKind;
use crate::hub::intent::{OpCommand, Request};
use crate::hub::LIST_PAGE;
use crate::moderation::ban::{Net, Target};
use crate::moderation::duration;
use crate::names::{NameError, Nick, RoomName};
use crate::storage::{QueryError, SearchQuery};
use crate::vocab::{Kind, PrivateKind};

/// Default page size of `/history`.
pub const HISTORY_DEFAULT: u32 = 20;

/// Largest page `/history N` returns. Not configurable: a page is a screenful or a few, and
/// bigger pages are what the sqlite3 shell is for.
pub const HISTORY_MAX: u32 = 200;

/// One line from a registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A message for the room.
    Say(String),
    Command(Parsed),
}

/// What a command asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Something for the hub.
    Hub(Request),
    /// Something the session does itself.
    Local(Local),
}

/// The commands the line session handles itself: dialogues, history paging, moving, leaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// `/nick`: checked against bans and accounts, and claimed cluster-wide, before the hub.
    Nick(Nick),
    Join(RoomName),
    History(u32),
    /// `/search TEXT` starts a search; `/search` alone continues the last one with older matches.
    Search(Option<SearchQuery>),
    Quit(Option<String>),
    Register,
    Password,
    Unregister,
}

/// Where `/help` lists a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Everyone,
    Operators,
}

/// One `/help` line: how the command is shown, and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Help {
    pub section: Section,
    pub shown: &'static str,
    pub text: &'static str,
}

/// One `/command`.
pub struct Command {
    /// What follows the slash (any case).
    pub name: &'static str,
    /// How it is called, as a usage error shows it.
    pub usage: &'static str,
    /// Its `/help` lines (none when another command's line covers it, as `/op`'s does `/deop`).
    pub help: &'static [Help],
    /// What it does for the operator gate's refusal, if it is an operator command.
    pub operator: Option<OpKind>,
    /// Parses the arguments (after the name, trimmed).
    pub parse: fn(&str, &'static str) -> Result<Parsed, CommandError>,
}

/// Why a command line was refused. Each renders as one line that mentions `/help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Unknown(String),
    Usage(&'static str),
    BadNick(NameError),
    BadRoom(NameError),
    BadSearch(QueryError),
    /// A `/me` whose text would read like a server notice about the user.
    LooksLikeNotice,
}

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommandError::Unknown(name) => {
                write!(f, "unknown command /{name} (type /help for the list)")
            }
            CommandError::Usage(usage) => write!(f, "usage: {usage} (type /help for more)"),
            CommandError::BadNick(e) => write!(f, "{} (see /help)", e.nick_reason()),
            CommandError::BadRoom(e) => write!(f, "{} (see /help)", e.room_reason()),
            CommandError::BadSearch(e) => write!(f, "search: {e} (see /help)"),
            CommandError::LooksLikeNotice => write!(
                f,
                "that action would look like a server notice, not sent (see /help)"
            ),
        }
    }
}

const fn help(shown: &'static str, text: &'static str) -> Help {
    Help {
        section: Section::Everyone,
        shown,
        text,
    }
}

const fn op_help(shown: &'static str, text: &'static str) -> Help {
    Help {
        section: Section::Operators,
        shown,
        text,
    }
}

/// Every command, in the order `/help` lists them. Help texts may name `{page}`, `{history}`
/// and `{history_max}`, which [`help_lines`] fills in from the constants.
pub static COMMANDS: &[Command] = &[
    Command {
        name: "help",
        usage: "/help",
        help: &[help("/help", "this list")],
        operator: None,
        parse: |_, _| Ok(Parsed::Hub(Request::Help)),
    },
    Command {
        name: "who",
        usage: "/who [PAGE]",
        help: &[help("/who [PAGE]", "users in your room, {page} a page")],
        operator: None,
        parse: |args, usage| {
            let page = page(args, usage)?;
            Ok(Parsed::Hub(Request::Who { room: None, page }))
        },
    },
    Command {
        name: "nick",
        usage: "/nick NEW",
        help: &[help("/nick NEW", "change your name")],
        operator: None,
        parse: |args, usage| Ok(Parsed::Local(Local::Nick(nick_arg(args, usage)?))),
    },
    Command {
        name: "me",
        usage: "/me ACTION",
        help: &[help("/me ACTION", "say an action: * you ACTION")],
        operator: None,
        parse: |args, usage| match args {
            "" => Err(CommandError::Usage(usage)),
            action if words::mimics_notice(action) => Err(CommandError::LooksLikeNotice),
            action => Ok(Parsed::Hub(Request::Say {
                room: None,
                kind: Kind::Action,
                text: action.to_owned(),
                attached: None,
            })),
        },
    },
    Command {
        name: "msg",
        usage: "/msg NAME TEXT",
        help: &[help(
            "/msg NAME TEXT",
            "private line only NAME sees (not stored in history)",
        )],
        operator: None,
        parse: |args, usage| {
            let (to, text) = args
                .split_once(char::is_whitespace)
                .map(|(to, text)| (to, text.trim()))
                .filter(|(_, text)| !text.is_empty())
                .ok_or(CommandError::Usage(usage))?;
            let to = Nick::parse(to).map_err(CommandError::BadNick)?;
            let text = text.to_owned();
            Ok(Parsed::Hub(Request::Private {
                to,
                text,
                kind: PrivateKind::Line,
                attached: None,
            }))
        },
    },
    Command {
        name: "join",
        usage: "/join ROOM",
        help: &[help(
            "/join ROOM",
            "go to ROOM (created on first use); you see its recent history",
        )],
        operator: None,
        parse: |args, usage| {
            let room = one_word(args).ok_or(CommandError::Usage(usage))?;
            let room = RoomName::parse(room).map_err(CommandError::BadRoom)?;
            Ok(Parsed::Local(Local::Join(room)))
        },
    },
    Command {
        name: "rooms",
        usage: "/rooms [PAGE]",
        help: &[help(
            "/rooms [PAGE]",
            "rooms with users in them, {page} a page",
        )],
        operator: None,
        parse: |args, usage| {
            Ok(Parsed::Hub(Request::Rooms {
                page: page(args, usage)?,
                only: Vec::new(),
            }))
        },
    },
    Command {
        name: "history",
        usage: "/history [N], N a positive number (at most 200 are shown)",
        help: &[help(
            "/history [N]",
            "N (default {history}, max {history_max}) older messages of your room",
        )],
        operator: None,
        parse: |args, usage| match args {
            "" => Ok(Parsed::Local(Local::History(HISTORY_DEFAULT))),
            n => match n.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Parsed::Local(Local::History(n.min(HISTORY_MAX)))),
                _ => Err(CommandError::Usage(usage)),
            },
        },
    },
    Command {
        name: "search",
        usage: "/search [TEXT]",
        help: &[help(
            "/search [TEXT]",
            "find words, \"exact phrases\" or prefix* in your room, newest first; alone: older",
        )],
        operator: None,
        parse: |args, _| match args {
            "" => Ok(Parsed::Local(Local::Search(None))),
            text => SearchQuery::parse(text)
                .map(|query| Parsed::Local(Local::Search(Some(query))))
                .map_err(CommandError::BadSearch),
        },
    },
    Command {
        name: "quit",
        usage: "/quit [REASON]",
        help: &[
            help("/quit [REASON]", "leave"),
            help("//text", "send a line that starts with /"),
        ],
        operator: None,
        parse: |args, _| Ok(Parsed::Local(Local::Quit(words(args)))),
    },
    Command {
        name: "register",
        usage: "/register",
        help: &[help(
            "/register",
            "claim your current name with a password (asked twice)",
        )],
        operator: None,
        parse: |_, _| Ok(Parsed::Local(Local::Register)),
    },
    Command {
        name: "password",
        usage: "/password",
        help: &[help(
            "/password",
            "change the password of the name you logged in with",
        )],
        operator: None,
        parse: |_, _| Ok(Parsed::Local(Local::Password)),
    },
    Command {
        name: "kick",
        usage: "/kick NAME [REASON]",
        help: &[op_help("/kick NAME [REASON]", "disconnect NAME")],
        operator: Some(OpKind::Kick),
        parse: |args, usage| {
            let (name, reason) = split_word(args);
            let nick = nick_arg(name, usage)?;
            Ok(operator(OpCommand::Kick { nick, reason }))
        },
    },
    Command {
        name: "ban",
        usage: "/ban NAME|ADDRESS|ADDRESS/PREFIX [DURATION like 1h or 7d] [REASON]",
        help: &[op_help(
            "/ban TARGET [DUR] [REASON]",
            "TARGET: a name, an address or ADDRESS/PREFIX; DUR: 1h, 7d...",
        )],
        operator: Some(OpKind::Ban),
        parse: |args, usage| {
            let (target, rest) = split_word(args);
            let target = ban_target(target).ok_or(CommandError::Usage(usage))?;
            let rest = rest.unwrap_or_default();
            let (first, after) = split_word(&rest);
            let (duration, reason) = match duration::parse(first) {
                Some(d) => (Some((d, first.to_ascii_lowercase())), after),
                None => (None, words(&rest)),
            };
            Ok(operator(OpCommand::Ban {
                target,
                duration,
                reason,
            }))
        },
    },
    Command {
        name: "unban",
        usage: "/unban NAME|ADDRESS|ADDRESS/PREFIX",
        help: &[op_help("/unban TARGET", "lift a ban")],
        operator: Some(OpKind::Unban),
        parse: |args, usage| {
            let target = ban_target(args).ok_or(CommandError::Usage(usage))?;
            Ok(operator(OpCommand::Unban(target)))
        },
    },
    Command {
        name: "bans",
        usage: "/bans",
        help: &[op_help("/bans", "bans in force, with their expiry")],
        operator: Some(OpKind::Bans),
        parse: |_, _| Ok(operator(OpCommand::Bans)),
    },
    Command {
        name: "mute",
        usage: "/mute NAME [DURATION like 10m or 1h]",
        help: &[op_help(
            "/mute NAME [DUR]",
            "NAME's public lines and /me are refused",
        )],
        operator: Some(OpKind::Mute),
        parse: |args, usage| {
            let (name, rest) = split_word(args);
            let duration = match rest.as_deref() {
                None => None,
                Some(d) => {
                    let length = duration::parse(d).ok_or(CommandError::Usage(usage))?;
                    Some((length, d.to_ascii_lowercase()))
                }
            };
            let nick = nick_arg(name, usage)?;
            Ok(operator(OpCommand::Mute { nick, duration }))
        },
    },
    Command {
        name: "unmute",
        usage: "/unmute NAME",
        help: &[op_help("/unmute NAME", "lift a mute")],
        operator: Some(OpKind::Unmute),
        parse: |args, usage| Ok(operator(OpCommand::Unmute(nick_arg(args, usage)?))),
    },
    Command {
        name: "op",
        usage: "/op NAME",
        help: &[op_help(
            "/op NAME, /deop NAME",
            "give or take the operator role (registered names)",
        )],
        operator: Some(OpKind::Op),
        parse: |args, usage| {
            let nick = nick_arg(args, usage)?;
            Ok(operator(OpCommand::Role {
                nick,
                operator: true,
            }))
        },
    },
    Command {
        name: "deop",
        usage: "/deop NAME",
        help: &[],
        operator: Some(OpKind::Deop),
        parse: |args, usage| {
            let nick = nick_arg(args, usage)?;
            Ok(operator(OpCommand::Role {
                nick,
                operator: false,
            }))
        },
    },
    Command {
        name: "unregister",
        usage: "/unregister [NAME]",
        help: &[
            help("/unregister", "give up your registered name"),
            op_help(
                "/unregister NAME",
                "remove NAME's account (a squatted name)",
            ),
        ],
        operator: Some(OpKind::Unregister),
        parse: |args, usage| match args {
            "" => Ok(Parsed::Local(Local::Unregister)),
            name => Ok(operator(OpCommand::Unregister(nick_arg(name, usage)?))),
        },
    },
    Command {
        name: "ignore",
        usage: "/ignore [NAME]",
        help: &[help(
            "/ignore [NAME]",
            "hide NAME's lines from you on this connection; alone, list them",
        )],
        operator: None,
        parse: |args, usage| {
            let nick = (!args.is_empty())
                .then(|| nick_arg(args, usage))
                .transpose()?;
            Ok(Parsed::Hub(Request::Ignore(nick)))
        },
    },
    Command {
        name: "unignore",
        usage: "/unignore NAME",
        help: &[help("/unignore NAME", "stop ignoring NAME")],
        operator: None,
        parse: |args, usage| Ok(Parsed::Hub(Request::Unignore(nick_arg(args, usage)?))),
    },
    Command {
        name: "topic",
        usage: "/topic [TEXT]",
        help: &[
            help("/topic", "the topic of your room"),
            op_help("/topic TEXT, /topic -", "set or clear your room's topic"),
        ],
        operator: Some(OpKind::SetTopic),
        parse: |args, _| {
            Ok(Parsed::Hub(match args {
                "" => Request::Topic { room: None },
                text => Request::Operator(OpCommand::SetTopic {
                    room: None,
                    text: (text != "-").then(|| text.to_owned()),
                }),
            }))
        },
    },
];

/// The commands by name, for parsing.
static BY_NAME: LazyLock<std::collections::HashMap<&'static str, &'static Command>> =
    LazyLock::new(|| COMMANDS.iter().map(|c| (c.name, c)).collect());

/// Parses a non-empty line from a registered user.
pub fn parse(line: &str) -> Result<Input, CommandError> {
    let line = line.trim_end();
    let Some(rest) = line.strip_prefix('/') else {
        return Ok(Input::Say(line.to_owned()));
    };
    if rest.starts_with('/') {
        return Ok(Input::Say(rest.to_owned()));
    }
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (rest, ""),
    };
    let command = BY_NAME
        .get(name.to_ascii_lowercase().as_str())
        .ok_or_else(|| CommandError::Unknown(name.to_owned()))?;
    (command.parse)(args, command.usage).map(Input::Command)
}

/// The `/help` lines: the commands everyone has, and those of operators for an operator.
pub fn help_lines(operator: bool) -> Vec<String> {
    let section = |section: Section, width: usize| {
        let rows = COMMANDS
            .iter()
            .flat_map(|c| c.help)
            .filter(move |h| h.section == section);
        rows.map(move |h| format!("  {:<width$}{}", h.shown, expand(h.text)))
    };
    let mut lines = vec!["commands:".to_owned()];
    lines.extend(section(Section::Everyone, 20));
    if operator {
        lines.push("operator commands:".to_owned());
        lines.extend(section(Section::Operators, 28));
    }
    lines
}

/// How the line door names an operator command in a refusal: its `/help` line's command, as
/// far as the arguments (`/topic TEXT`, `/kick`).
pub fn operator_command(kind: OpKind) -> String {
    let command = COMMANDS.iter().find(|c| c.operator == Some(kind));
    let shown = command.and_then(|c| c.help.iter().find(|h| h.section == Section::Operators));
    match (command, shown) {
        // A command for everyone too (`/topic`, `/unregister`) is named with its operators'
        // arguments.
        (Some(c), _) if !c.help.iter().any(|h| h.section == Section::Everyone) => {
            format!("/{}", c.name)
        }
        (_, Some(h)) => h.shown.split(',').next().unwrap_or(h.shown).to_owned(),
        _ => format!("{kind:?}"),
    }
}

/// A help text with its numbers filled in.
fn expand(text: &str) -> String {
    text.replace("{page}", &LIST_PAGE.to_string())
        .replace("{history_max}", &HISTORY_MAX.to_string())
        .replace("{history}", &HISTORY_DEFAULT.to_string())
}

/// An operator command for the hub.
fn operator(command: OpCommand) -> Parsed {
    Parsed::Hub(Request::Operator(command))
}

/// The page number of `/who N` or `/rooms N`: 1 when none is given.
fn page(args: &str, usage: &'static str) -> Result<usize, CommandError> {
    match args {
        "" => Ok(1),
        n => match n.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(CommandError::Usage(usage)),
        },
    }
}

/// The first word and the rest (trimmed, `None` if empty).
fn split_word(args: &str) -> (&str, Option<String>) {
    match args.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, words(rest)),
        None => (args, None),
    }
}

/// The text, trimmed; `None` if empty.
fn words(args: &str) -> Option<String> {
    let args = args.trim();
    (!args.is_empty()).then(|| args.to_owned())
}

/// Exactly one valid name.
fn nick_arg(args: &str, usage: &'static str) -> Result<Nick, CommandError> {
    match one_word(args) {
        Some(n) => Nick::parse(n).map_err(CommandError::BadNick),
        None => Err(CommandError::Usage(usage)),
    }
}

/// An address or prefix, else a valid name.
fn ban_target(word: &str) -> Option<Target> {
    if let Some(net) = Net::parse(word) {
        return Some(Target::Net(net));
    }
    Nick::parse(one_word(word)?)
        .ok()
        .map(|n| Target::Name(n.key().to_owned()))
}

/// The argument if it is exactly one word.
fn one_word(args: &str) -> Option<&str> {
    (!args.is_empty() && !args.contains(char::is_whitespace)).then_some(args)
}

#[cfg(test)]
mod tests;
