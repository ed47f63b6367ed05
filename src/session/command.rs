//! What a user's line means: a message, or a `/command`.
//!
//! Parsing happens once, here, into [`Input`]; the session and the hub act on typed commands and
//! never look at raw command text. `//text` escapes a message that starts with a slash.

use crate::names::{NameError, Nick, RoomName};
use crate::protocol;

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
    Command(Command),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Who,
    Nick(Nick),
    Me(String),
    Msg(Nick, String),
    Join(RoomName),
    Rooms,
    /// `/who N` and `/rooms N`: page N (from 2) of a long list.
    WhoPage(usize),
    RoomsPage(usize),
    History(u32),
    Quit(Option<String>),
}

/// Why a command line was refused. Each renders as one line that mentions `/help`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    Unknown(String),
    Usage(&'static str),
    BadNick(NameError),
    BadRoom(NameError),
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
            CommandError::LooksLikeNotice => write!(
                f,
                "that action would look like a server notice, not sent (see /help)"
            ),
        }
    }
}

/// The `/help` text, one line per command.
pub const HELP: &[&str] = &[
    "commands:",
    "  /help               this list",
    "  /who [PAGE]         users in your room, 200 a page",
    "  /nick NEW           change your name",
    "  /me ACTION          say an action: * you ACTION",
    "  /msg NAME TEXT      private line only NAME sees (not stored in history)",
    "  /join ROOM          go to ROOM (created on first use); you see its recent history",
    "  /rooms [PAGE]       rooms with users in them, 200 a page",
    "  /history [N]        N (default 20, max 200) older messages of your room",
    "  /quit [REASON]      leave",
    "  //text              send a line that starts with /",
];

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
    let command = match name.to_ascii_lowercase().as_str() {
        "help" => Command::Help,
        "who" => match page(args, "/who [PAGE]")? {
            None => Command::Who,
            Some(n) => Command::WhoPage(n),
        },
        "rooms" => match page(args, "/rooms [PAGE]")? {
            None => Command::Rooms,
            Some(n) => Command::RoomsPage(n),
        },
        "nick" => match one_word(args) {
            Some(n) => Command::Nick(Nick::parse(n).map_err(CommandError::BadNick)?),
            None => return Err(CommandError::Usage("/nick NEW")),
        },
        "me" => match args {
            "" => return Err(CommandError::Usage("/me ACTION")),
            action if protocol::mimics_notice(action) => return Err(CommandError::LooksLikeNotice),
            action => Command::Me(action.to_owned()),
        },
        "msg" => {
            let (to, text) = args
                .split_once(char::is_whitespace)
                .map(|(to, text)| (to, text.trim()))
                .filter(|(_, text)| !text.is_empty())
                .ok_or(CommandError::Usage("/msg NAME TEXT"))?;
            Command::Msg(
                Nick::parse(to).map_err(CommandError::BadNick)?,
                text.to_owned(),
            )
        }
        "join" => match one_word(args) {
            Some(r) => Command::Join(RoomName::parse(r).map_err(CommandError::BadRoom)?),
            None => return Err(CommandError::Usage("/join ROOM")),
        },
        "history" => match args {
            "" => Command::History(HISTORY_DEFAULT),
            n => match n.parse::<u32>() {
                Ok(n) if n > 0 => Command::History(n.min(HISTORY_MAX)),
                _ => {
                    return Err(CommandError::Usage(
                        "/history [N], N a positive number (at most 200 are shown)",
                    ))
                }
            },
        },
        "quit" => Command::Quit((!args.is_empty()).then(|| args.to_owned())),
        _ => return Err(CommandError::Unknown(name.to_owned())),
    };
    Ok(Input::Command(command))
}

/// The page number of `/who N` or `/rooms N`: `None` for the first page.
fn page(args: &str, usage: &'static str) -> Result<Option<usize>, CommandError> {
    match args {
        "" => Ok(None),
        n => match n.parse::<usize>() {
            Ok(1) => Ok(None),
            Ok(n) if n > 1 => Ok(Some(n)),
            _ => Err(CommandError::Usage(usage)),
        },
    }
}

/// The argument if it is exactly one word.
fn one_word(args: &str) -> Option<&str> {
    (!args.is_empty() && !args.contains(char::is_whitespace)).then_some(args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd(s: &str) -> Command {
        match parse(s) {
            Ok(Input::Command(c)) => c,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    #[test]
    fn plain_lines_and_escapes_are_messages() {
        assert_eq!(parse("hello  "), Ok(Input::Say("hello".into())));
        assert_eq!(parse("//etc/passwd"), Ok(Input::Say("/etc/passwd".into())));
        assert_eq!(parse(" /who"), Ok(Input::Say(" /who".into())));
    }

    #[test]
    fn commands_parse() {
        assert_eq!(cmd("/help"), Command::Help);
        assert_eq!(cmd("/WHO"), Command::Who);
        assert_eq!(cmd("/nick bob"), Command::Nick(Nick::parse("bob").unwrap()));
        assert_eq!(cmd("/me waves  hi"), Command::Me("waves  hi".into()));
        assert_eq!(
            cmd("/msg bob  hello there"),
            Command::Msg(Nick::parse("bob").unwrap(), "hello there".into())
        );
        assert_eq!(
            cmd("/join #Rust"),
            Command::Join(RoomName::parse("rust").unwrap())
        );
        assert_eq!(cmd("/rooms"), Command::Rooms);
        assert_eq!(cmd("/rooms 3"), Command::RoomsPage(3));
        assert_eq!(cmd("/who 1"), Command::Who);
        assert_eq!(cmd("/who 2"), Command::WhoPage(2));
        assert_eq!(cmd("/history"), Command::History(20));
        assert_eq!(cmd("/history 5"), Command::History(5));
        assert_eq!(cmd("/history 100000"), Command::History(HISTORY_MAX));
        assert_eq!(cmd("/quit"), Command::Quit(None));
        assert_eq!(cmd("/quit bye all"), Command::Quit(Some("bye all".into())));
    }

    #[test]
    fn bad_commands_mention_help() {
        for bad in [
            "/frobnicate",
            "/nick",
            "/nick a b",
            "/nick _bad",
            "/me",
            "/msg bob",
            "/msg",
            "/join",
            "/join a/b",
            "/history x",
            "/history 0",
            "/me joined",
            "/me left (quit)",
            "/me is now known as bob",
            "/",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.to_string().contains("/help"), "{bad}: {err}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "/?.{0,60}") {
            let _ = parse(&s);
        }
    }
}
