//! The command table: parsing every command, `/help` from the table, and the README's command
//! tables checked against it.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::names::testing::nick;

fn cmd(s: &str) -> Parsed {
    match parse(s) {
        Ok(Input::Command(c)) => c,
        other => panic!("{s:?} gave {other:?}"),
    }
}

fn hub(request: Request) -> Parsed {
    Parsed::Hub(request)
}

fn local(local: Local) -> Parsed {
    Parsed::Local(local)
}

#[test]
fn plain_lines_and_escapes_are_messages() {
    assert_eq!(parse("hello  "), Ok(Input::Say("hello".into())));
    assert_eq!(parse("//etc/passwd"), Ok(Input::Say("/etc/passwd".into())));
    assert_eq!(parse(" /who"), Ok(Input::Say(" /who".into())));
}

#[test]
fn commands_parse() {
    let who = |page| hub(Request::Who { room: None, page });
    assert_eq!(cmd("/help"), hub(Request::Help));
    assert_eq!(cmd("/WHO"), who(1));
    assert_eq!(cmd("/nick bob"), local(Local::Nick(nick("bob"))));
    let action = |text: &str| {
        let text = text.to_owned();
        hub(Request::Say {
            room: None,
            kind: Kind::Action,
            text,
            attached: None,
        })
    };
    assert_eq!(cmd("/me waves  hi"), action("waves  hi"));
    let private = hub(Request::Private {
        to: nick("bob"),
        text: "hello there".into(),
        kind: PrivateKind::Line,
        attached: None,
    });
    assert_eq!(cmd("/msg bob  hello there"), private);
    let rust = RoomName::parse("rust").unwrap();
    assert_eq!(cmd("/join #Rust"), local(Local::Join(rust)));
    assert_eq!(
        cmd("/rooms"),
        hub(Request::Rooms {
            page: 1,
            only: vec![]
        })
    );
    assert_eq!(
        cmd("/rooms 3"),
        hub(Request::Rooms {
            page: 3,
            only: vec![]
        })
    );
    assert_eq!(cmd("/who 1"), who(1));
    assert_eq!(cmd("/who 2"), who(2));
    assert_eq!(cmd("/history"), local(Local::History(20)));
    assert_eq!(cmd("/history 5"), local(Local::History(5)));
    assert_eq!(cmd("/history 100000"), local(Local::History(HISTORY_MAX)));
    assert_eq!(cmd("/search"), local(Local::Search(None)));
    assert_eq!(
        cmd("/SEARCH rust*  \"exact words\""),
        local(Local::Search(Some(
            SearchQuery::parse("rust* \"exact words\"").unwrap()
        )))
    );
    assert_eq!(cmd("/quit"), local(Local::Quit(None)));
    assert_eq!(
        cmd("/quit bye all"),
        local(Local::Quit(Some("bye all".into())))
    );
}

#[test]
fn moderation_commands_parse() {
    let op = |command| hub(Request::Operator(command));
    let kick = |reason: Option<&str>| {
        let reason = reason.map(str::to_owned);
        op(OpCommand::Kick {
            nick: nick("bob"),
            reason,
        })
    };
    assert_eq!(cmd("/kick bob"), kick(None));
    assert_eq!(cmd("/kick bob  too loud "), kick(Some("too loud")));
    assert_eq!(
        cmd("/ban Bob 1h spam spam"),
        op(OpCommand::Ban {
            target: Target::Name("bob".into()),
            duration: Some((Duration::from_secs(3600), "1h".into())),
            reason: Some("spam spam".into()),
        })
    );
    assert_eq!(
        cmd("/ban 192.0.2.9/24 being rude"),
        op(OpCommand::Ban {
            target: Target::parse("192.0.2.0/24"),
            duration: None,
            reason: Some("being rude".into()),
        })
    );
    let unban = op(OpCommand::Unban(Target::parse("2001:db8::/32")));
    assert_eq!(cmd("/unban 2001:db8::/32"), unban);
    let ten = Some((Duration::from_secs(600), "10m".into()));
    let mute = op(OpCommand::Mute {
        nick: nick("bob"),
        duration: ten,
    });
    assert_eq!(cmd("/mute bob 10m"), mute);
    assert_eq!(cmd("/ignore"), hub(Request::Ignore(None)));
    assert_eq!(cmd("/ignore bob"), hub(Request::Ignore(Some(nick("bob")))));
    assert_eq!(cmd("/topic"), hub(Request::Topic { room: None }));
    let topic = |text: Option<&str>| {
        let text = text.map(str::to_owned);
        op(OpCommand::SetTopic { room: None, text })
    };
    assert_eq!(cmd("/topic Rust  talk"), topic(Some("Rust  talk")));
    assert_eq!(cmd("/topic -"), topic(None));
    let role = |operator| {
        op(OpCommand::Role {
            nick: nick("bob"),
            operator,
        })
    };
    assert_eq!(cmd("/op bob"), role(true));
    assert_eq!(cmd("/deop bob"), role(false));
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

/// `/help` is built from the table, with its numbers from the constants.
#[test]
fn help_is_the_table() {
    let everyone = help_lines(false);
    assert_eq!(everyone[0], "commands:");
    assert_eq!(
        everyone[2],
        "  /who [PAGE]         users in your room, 200 a page"
    );
    assert_eq!(
        everyone[8],
        "  /history [N]        N (default 20, max 200) older messages of your room"
    );
    assert_eq!(
        everyone[9],
        "  /search [TEXT]      find words, \"exact phrases\" or prefix* in your room, newest first; alone: older"
    );
    assert_eq!(
        everyone[11],
        "  //text              send a line that starts with /"
    );
    assert_eq!(
        everyone.last().unwrap(),
        "  /topic              the topic of your room"
    );
    assert!(!everyone.iter().any(|l| l.contains("operator")));
    let operators = help_lines(true);
    let at = operators
        .iter()
        .position(|l| l == "operator commands:")
        .unwrap();
    assert_eq!(
        operators[at + 1],
        "  /kick NAME [REASON]         disconnect NAME"
    );
    assert_eq!(
        operators.last().unwrap(),
        "  /topic TEXT, /topic -       set or clear your room's topic"
    );
    assert_eq!(operator_command(OpKind::SetTopic), "/topic TEXT");
    assert_eq!(operator_command(OpKind::Deop), "/deop");
    // Every command is either listed or covered by another command's line.
    for c in COMMANDS {
        let listed = operators
            .iter()
            .any(|l| l.contains(&format!("/{}", c.name)));
        assert!(listed, "/{} is not in /help", c.name);
    }
}

/// The commands in one of the README's command tables: every `/word` in the first cell of a
/// row, `//text` aside.
fn readme_commands(table: &str) -> std::collections::BTreeSet<String> {
    table
        .lines()
        .filter_map(|row| row.strip_prefix("| "))
        .filter_map(|row| row.split(" | ").next())
        .flat_map(|cell| cell.split('`'))
        .filter_map(|code| code.strip_prefix('/'))
        .filter(|code| !code.starts_with('/'))
        .filter_map(|code| code.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// README's two command tables (everyone's, then operators') list exactly the table's
/// commands, each in its section.
#[test]
fn the_readme_lists_the_table() {
    let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let at = readme
        .find("### Commands")
        .expect("README has a Commands section");
    let mut tables = readme[at..]
        .split("\n\n")
        .filter(|b| b.starts_with("| command |"));
    let everyone = readme_commands(tables.next().expect("the commands table"));
    let operators = readme_commands(tables.next().expect("the operator commands table"));
    for c in COMMANDS {
        let sections: Vec<Section> = c.help.iter().map(|h| h.section).collect();
        let for_everyone = sections.contains(&Section::Everyone);
        // A command without a help line of its own (`/deop`) is listed where its kind is.
        let unlisted_operator = sections.is_empty() && c.operator.is_some();
        let for_operators = sections.contains(&Section::Operators) || unlisted_operator;
        assert_eq!(
            everyone.contains(c.name),
            for_everyone,
            "/{} in README's first table",
            c.name
        );
        assert_eq!(
            operators.contains(c.name),
            for_operators,
            "/{} in the operators' table",
            c.name
        );
    }
    for name in everyone.iter().chain(&operators) {
        assert!(
            COMMANDS.iter().any(|c| c.name == name),
            "README lists /{name}, no such command"
        );
    }
}

/// Lines of any shape, and lines that start with a command name (every one in the table, and
/// one that is not) in any case followed by arguments of the shapes the commands take.
fn line() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = COMMANDS.iter().map(|c| c.name).chain(["frob"]).collect();
    let command = (
        prop::sample::select(names),
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
    /// line without a single leading slash; for a command in the table, what that command's row
    /// parses its arguments to; otherwise one error line that mentions /help.
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
        let row = COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(word));
        let Some(row) = row else {
            prop_assert_eq!(result, Err(CommandError::Unknown(word.to_owned())));
            return Ok(());
        };
        prop_assert_eq!(&result, &(row.parse)(args, row.usage).map(Input::Command));
        let parsed = match result {
            Ok(Input::Command(parsed)) => parsed,
            Ok(Input::Say(text)) => {
                prop_assert!(false, "{s:?} was said as {text:?}");
                return Ok(());
            }
            Err(error) => {
                let text = error.to_string();
                prop_assert!(text.contains("/help") && !text.contains('\n'), "{text:?}");
                return Ok(());
            }
        };
        match (row.name, parsed) {
            ("help", Parsed::Hub(Request::Help)) => {}
            ("who", Parsed::Hub(Request::Who { page: n, .. }))
            | ("rooms", Parsed::Hub(Request::Rooms { page: n, .. })) => {
                prop_assert!(n >= 1);
                if !args.is_empty() {
                    prop_assert_eq!(args.parse::<usize>(), Ok(n));
                }
            }
            ("nick", Parsed::Local(Local::Nick(nick))) => prop_assert_eq!(Nick::parse(args), Ok(nick)),
            ("me", Parsed::Hub(Request::Say { kind: Kind::Action, text, .. })) => {
                prop_assert_eq!(text.as_str(), args);
                prop_assert!(!text.is_empty() && !words::mimics_notice(&text));
            }
            ("msg", Parsed::Hub(Request::Private { to, text, .. })) => {
                let (raw_to, raw_text) = args.split_once(char::is_whitespace).unwrap();
                prop_assert_eq!(Nick::parse(raw_to), Ok(to));
                prop_assert_eq!(text.as_str(), raw_text.trim());
                prop_assert!(!text.is_empty());
            }
            ("join", Parsed::Local(Local::Join(room))) => {
                prop_assert!(one_word(args).is_some());
                prop_assert_eq!(RoomName::parse(args), Ok(room));
            }
            ("history", Parsed::Local(Local::History(n))) => {
                prop_assert!((1..=HISTORY_MAX).contains(&n), "{s:?} -> {n}");
                if args.is_empty() {
                    prop_assert_eq!(n, HISTORY_DEFAULT);
                }
            }
            ("quit", Parsed::Local(Local::Quit(reason))) => {
                prop_assert_eq!(reason.as_deref(), (!args.is_empty()).then_some(args));
            }
            ("help" | "who" | "rooms" | "nick" | "me" | "msg" | "join" | "history" | "quit", other) => {
                prop_assert!(false, "/{} gave {other:?}", row.name);
            }
            // The other commands' shapes are pinned by the unit tests above.
            _ => {}
        }
    }
}
