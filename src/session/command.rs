//! What a user's line means: a message, or a `/command`.
//!
//! Parsing happens once, here, into [`Input`]; the session and the hub act on typed commands and
//! never look at raw command text. `//text` escapes a message that starts with a slash.

use std::time::Duration;

use crate::moderation::ban::{Net, Target};
use crate::moderation::duration;
use crate::names::{NameError, Nick, RoomName};
use crate::protocol;
use crate::storage::{QueryError, SearchQuery};

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
    /// `/search TEXT` starts a search; `/search` alone continues the last one with older matches.
    Search(Option<SearchQuery>),
    Quit(Option<String>),
    // Accounts.
    Register,
    Password,
    Unregister,
    /// `/unregister NAME` (operators): remove NAME's account, such as a squatted name.
    UnregisterAccount(Nick),
    /// `/ignore` lists; `/ignore NAME` adds.
    Ignore(Option<Nick>),
    Unignore(Nick),
    /// `/topic` shows; `/topic TEXT` sets (operators); `/topic -` clears (operators).
    Topic(Option<String>),
    // Operators.
    Kick(Nick, Option<String>),
    Ban {
        target: Target,
        /// The duration and how it was typed; `None` until lifted.
        duration: Option<(Duration, String)>,
        reason: Option<String>,
    },
    Unban(Target),
    Bans,
    Mute(Nick, Option<(Duration, String)>),
    Unmute(Nick),
    Op(Nick),
    Deop(Nick),
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
    "  /search [TEXT]      find words, \"exact phrases\" or prefix* in your room, newest first; alone: older",
    "  /quit [REASON]      leave",
    "  //text              send a line that starts with /",
    "  /register           claim your current name with a password (asked twice)",
    "  /password           change the password of the name you logged in with",
    "  /unregister         give up your registered name",
    "  /ignore [NAME]      hide NAME's lines from you on this connection; alone, list them",
    "  /unignore NAME      stop ignoring NAME",
    "  /topic              the topic of your room",
];

/// The operator commands, shown by `/help` to operators only.
pub const HELP_OPERATORS: &[&str] = &[
    "operator commands:",
    "  /kick NAME [REASON]         disconnect NAME",
    "  /ban TARGET [DUR] [REASON]  TARGET: a name, an address or ADDRESS/PREFIX; DUR: 1h, 7d...",
    "  /unban TARGET               lift a ban",
    "  /bans                       bans in force, with their expiry",
    "  /mute NAME [DUR]            NAME's public lines and /me are refused",
    "  /unmute NAME                lift a mute",
    "  /op NAME, /deop NAME        give or take the operator role (registered names)",
    "  /unregister NAME            remove NAME's account (a squatted name)",
    "  /topic TEXT, /topic -       set or clear your room's topic",
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
        "search" => match args {
            "" => Command::Search(None),
            text => Command::Search(Some(
                SearchQuery::parse(text).map_err(CommandError::BadSearch)?,
            )),
        },
        "quit" => Command::Quit((!args.is_empty()).then(|| args.to_owned())),
        "register" => Command::Register,
        "password" => Command::Password,
        "unregister" => match args {
            "" => Command::Unregister,
            name => Command::UnregisterAccount(nick_arg(name, "/unregister [NAME]")?),
        },
        "ignore" => match args {
            "" => Command::Ignore(None),
            name => Command::Ignore(Some(nick_arg(name, "/ignore [NAME]")?)),
        },
        "unignore" => Command::Unignore(nick_arg(args, "/unignore NAME")?),
        "topic" => Command::Topic((!args.is_empty()).then(|| args.to_owned())),
        "kick" => {
            let (name, reason) = split_word(args);
            Command::Kick(nick_arg(name, "/kick NAME [REASON]")?, reason)
        }
        "ban" => {
            const USAGE: &str =
                "/ban NAME|ADDRESS|ADDRESS/PREFIX [DURATION like 1h or 7d] [REASON]";
            let (target, rest) = split_word(args);
            let target = ban_target(target).ok_or(CommandError::Usage(USAGE))?;
            let rest = rest.unwrap_or_default();
            let (first, after) = split_word(&rest);
            let (duration, reason) = match duration::parse(first) {
                Some(d) => (Some((d, first.to_ascii_lowercase())), after),
                None => (None, (!rest.is_empty()).then_some(rest.clone())),
            };
            Command::Ban {
                target,
                duration,
                reason,
            }
        }
        "unban" => Command::Unban(
            ban_target(args).ok_or(CommandError::Usage("/unban NAME|ADDRESS|ADDRESS/PREFIX"))?,
        ),
        "bans" => Command::Bans,
        "mute" => {
            const USAGE: &str = "/mute NAME [DURATION like 10m or 1h]";
            let (name, rest) = split_word(args);
            let duration = match rest.as_deref() {
                None => None,
                Some(d) => Some((
                    duration::parse(d).ok_or(CommandError::Usage(USAGE))?,
                    d.to_ascii_lowercase(),
                )),
            };
            Command::Mute(nick_arg(name, USAGE)?, duration)
        }
        "unmute" => Command::Unmute(nick_arg(args, "/unmute NAME")?),
        "op" => Command::Op(nick_arg(args, "/op NAME")?),
        "deop" => Command::Deop(nick_arg(args, "/deop NAME")?),
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

/// The first word and the rest (trimmed, `None` if empty).
fn split_word(args: &str) -> (&str, Option<String>) {
    match args.split_once(char::is_whitespace) {
        Some((word, rest)) if !rest.trim().is_empty() => (word, Some(rest.trim().to_owned())),
        Some((word, _)) => (word, None),
        None => (args, None),
    }
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
        assert_eq!(cmd("/search"), Command::Search(None));
        assert_eq!(
            cmd("/SEARCH rust*  \"exact words\""),
            Command::Search(Some(SearchQuery::parse("rust* \"exact words\"").unwrap()))
        );
        assert_eq!(cmd("/quit"), Command::Quit(None));
        assert_eq!(cmd("/quit bye all"), Command::Quit(Some("bye all".into())));
    }

    #[test]
    fn moderation_commands_parse() {
        let bob = || Nick::parse("bob").unwrap();
        assert_eq!(cmd("/kick bob"), Command::Kick(bob(), None));
        assert_eq!(cmd("/unregister"), Command::Unregister);
        assert_eq!(cmd("/unregister bob"), Command::UnregisterAccount(bob()));
        assert_eq!(
            cmd("/kick bob  too loud "),
            Command::Kick(bob(), Some("too loud".into()))
        );
        assert_eq!(
            cmd("/ban Bob 1h spam spam"),
            Command::Ban {
                target: Target::Name("bob".into()),
                duration: Some((Duration::from_secs(3600), "1h".into())),
                reason: Some("spam spam".into()),
            }
        );
        assert_eq!(
            cmd("/ban 192.0.2.9/24 being rude"),
            Command::Ban {
                target: Target::parse("192.0.2.0/24"),
                duration: None,
                reason: Some("being rude".into()),
            }
        );
        assert_eq!(
            cmd("/unban 2001:db8::/32"),
            Command::Unban(Target::parse("2001:db8::/32"))
        );
        assert_eq!(
            cmd("/mute bob 10m"),
            Command::Mute(bob(), Some((Duration::from_secs(600), "10m".into())))
        );
        assert_eq!(cmd("/ignore"), Command::Ignore(None));
        assert_eq!(cmd("/ignore bob"), Command::Ignore(Some(bob())));
        assert_eq!(cmd("/topic"), Command::Topic(None));
        assert_eq!(
            cmd("/topic Rust  talk"),
            Command::Topic(Some("Rust  talk".into()))
        );
        for bad in [
            "/kick",
            "/ban",
            "/ban _x",
            "/mute bob forever",
            "/op",
            "/unignore",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
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
            "/search \"unclosed",
            "/search r*",
            "/search !!!",
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
                    ("who", Command::WhoPage(n)) | ("rooms", Command::RoomsPage(n)) => {
                        prop_assert!(n >= 2);
                        prop_assert_eq!(args.parse::<usize>(), Ok(n));
                    }
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
