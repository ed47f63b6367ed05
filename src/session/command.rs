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
    "  /who                users in your room",
    "  /nick NEW           change your name",
    "  /me ACTION          say an action: * you ACTION",
    "  /msg NAME TEXT      private line only NAME sees (not stored in history)",
    "  /join ROOM          go to ROOM (created on first use); you see its recent history",
    "  /rooms              rooms with users in them",
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
        "who" => Command::Who,
        "rooms" => Command::Rooms,
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

    /// Every command name, for generating lines that are mostly commands.
    const NAMES: [&str; 10] = [
        "help", "who", "nick", "me", "msg", "join", "rooms", "history", "quit", "frob",
    ];

    /// Lines of any shape, and lines that start with a command name in any case followed by
    /// arguments of the shapes the commands take, and others.
    fn line() -> impl Strategy<Value = String> {
        let command = (
            prop::sample::select(&NAMES[..]),
            any::<u16>(),
            "[ \t]{1,3}",
            // Arbitrary text, numbers, names (some valid), a name followed by text, and the words of
            // the server's notices (which `/me` must refuse).
            prop_oneof![
                ".{0,40}",
                "-?[0-9]{1,6}",
                "#?[A-Za-z0-9_.-]{1,34}",
                "[A-Za-z0-9_.-]{1,26}[ \t]{1,2}.{0,30}",
                "(?i)(joined|left|is now known as)( .{0,10})?",
            ],
        )
            .prop_map(|(name, case, gap, args)| {
                let name: String = name
                    .chars()
                    .enumerate()
                    .map(|(i, c)| {
                        if case >> i & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c
                        }
                    })
                    .collect();
                format!("/{name}{gap}{args}")
            });
        prop_oneof![1 => "/?.{0,60}", 1 => "//.{0,20}", 6 => command]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Whatever the line, parsing gives the result its first word calls for: a message for a
        /// line without a single leading slash; for a command, its variant with well-formed
        /// arguments; otherwise one error line that mentions /help.
        #[test]
        fn parse_gives_what_the_first_word_calls_for(s in line()) {
            let line = s.trim_end();
            let result = parse(&s);
            if let Some(escaped) = line.strip_prefix("//") {
                prop_assert_eq!(result, Ok(Input::Say(format!("/{escaped}"))));
                return Ok(());
            }
            let Some(rest) = line.strip_prefix('/') else {
                prop_assert_eq!(result, Ok(Input::Say(line.to_owned())));
                return Ok(());
            };
            let (word, args) = match rest.split_once(char::is_whitespace) {
                Some((word, args)) => (word, args.trim()),
                None => (rest, ""),
            };
            let name = word.to_ascii_lowercase();
            match result {
                Ok(Input::Say(text)) => prop_assert!(false, "{s:?} was said as {text:?}"),
                Ok(Input::Command(command)) => match (name.as_str(), command) {
                    ("help", Command::Help) | ("who", Command::Who) | ("rooms", Command::Rooms) => {}
                    ("nick", Command::Nick(nick)) => prop_assert_eq!(Nick::parse(args), Ok(nick)),
                    ("me", Command::Me(action)) => {
                        prop_assert_eq!(action.as_str(), args);
                        prop_assert!(!action.is_empty() && !protocol::mimics_notice(&action));
                    }
                    ("msg", Command::Msg(to, text)) => {
                        let (raw_to, raw_text) = args.split_once(char::is_whitespace).unwrap();
                        prop_assert_eq!(Nick::parse(raw_to), Ok(to));
                        prop_assert_eq!(text.as_str(), raw_text.trim());
                        prop_assert!(!text.is_empty());
                    }
                    ("join", Command::Join(room)) => {
                        prop_assert!(one_word(args).is_some());
                        prop_assert_eq!(RoomName::parse(args), Ok(room));
                    }
                    ("history", Command::History(n)) => {
                        prop_assert!((1..=HISTORY_MAX).contains(&n), "{s:?} -> {n}");
                        if args.is_empty() {
                            prop_assert_eq!(n, HISTORY_DEFAULT);
                        }
                    }
                    ("quit", Command::Quit(reason)) => {
                        prop_assert_eq!(reason.as_deref(), (!args.is_empty()).then_some(args));
                    }
                    (name, command) => prop_assert!(false, "/{name} gave {command:?}"),
                },
                Err(error) => {
                    let text = error.to_string();
                    prop_assert!(text.contains("/help") && !text.contains('\n'), "{text:?}");
                    if let CommandError::Unknown(unknown) = &error {
                        prop_assert_eq!(unknown.as_str(), word);
                        prop_assert!(!NAMES[..9].contains(&name.as_str()), "{s:?}: {text}");
                    }
                }
            }
        }
    }
}
