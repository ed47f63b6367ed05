//! The IRC verbs the door understands, in one table (as ergo's `irc/commands.go`): name,
//! fewest parameters, whether it is allowed before registration, whether only operators may use
//! it, and its help text. [`check`] runs the generic checks once for every command, so no
//! handler repeats them: `421` for an unknown command, `451` before registration, `461` for too
//! few parameters, `481` for operators' commands. `HELP` is answered from the same table.
//!
//! The handler is the [`Verb`]: the wiring matches on it. Commands whose errors are specific
//! (`PRIVMSG` without a target is `411`, without text `412`; `NICK` without a nick is `431`)
//! ask for no parameters here and check in their handler.

use crate::door::irc::message::Message;
use crate::door::irc::numerics::{
    Numeric, ERR_HELPNOTFOUND, ERR_NEEDMOREPARAMS, ERR_NOPRIVILEGES, ERR_NOTREGISTERED,
    ERR_UNKNOWNCOMMAND, RPL_ENDOFHELP, RPL_HELPSTART, RPL_HELPTXT,
};

/// A command the door handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Authenticate,
    Away,
    Cap,
    ChatHistory,
    Help,
    Ison,
    Join,
    Kick,
    Kill,
    List,
    Lusers,
    Mode,
    Motd,
    Names,
    Nick,
    Notice,
    Oper,
    Part,
    Pass,
    Ping,
    Pong,
    Privmsg,
    Quit,
    Search,
    TagMsg,
    Topic,
    User,
    Userhost,
    Who,
    Whois,
}

/// One row of the command table.
#[derive(Debug, Clone, Copy)]
pub struct Command {
    pub name: &'static str,
    pub verb: Verb,
    /// Fewer parameters are answered `461`.
    pub min_params: usize,
    /// Allowed before registration completes (else `451`).
    pub before_registration: bool,
    /// Only server operators may use it (else `481`).
    pub operator_only: bool,
    /// The usage line, then what it does.
    pub help: &'static str,
}

const fn cmd(name: &'static str, verb: Verb, min_params: usize, help: &'static str) -> Command {
    Command {
        name,
        verb,
        min_params,
        before_registration: false,
        operator_only: false,
        help,
    }
}

const fn pre(c: Command) -> Command {
    Command {
        before_registration: true,
        ..c
    }
}

const fn oper(c: Command) -> Command {
    Command {
        operator_only: true,
        ..c
    }
}

/// Every command, alphabetically.
pub const COMMANDS: &[Command] = &[
    pre(cmd("AUTHENTICATE", Verb::Authenticate, 1, "AUTHENTICATE PLAIN: log in to your account with SASL PLAIN (request the sasl capability first)")),
    cmd("AWAY", Verb::Away, 0, "AWAY [:message]: mark yourself away with a message, or back without one"),
    pre(cmd("CAP", Verb::Cap, 1, "CAP LS|REQ|LIST|END: negotiate protocol extensions")),
    cmd("CHATHISTORY", Verb::ChatHistory, 1, "CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN|TARGETS ...: read a channel's stored history"),
    cmd("HELP", Verb::Help, 0, "HELP [command]: this help"),
    cmd("ISON", Verb::Ison, 1, "ISON nick...: which of these nicks are online"),
    cmd("JOIN", Verb::Join, 1, "JOIN #room[,#room...]: join rooms (an IRC user may be in many at once)"),
    cmd("KICK", Verb::Kick, 2, "KICK #room nick [:reason]: disconnect a user (server operators only)"),
    oper(cmd("KILL", Verb::Kill, 1, "KILL nick [:reason]: disconnect a user (server operators only)")),
    cmd("LIST", Verb::List, 0, "LIST [#room,...]: rooms with people in them"),
    cmd("LUSERS", Verb::Lusers, 0, "LUSERS: how many users are connected"),
    cmd("MODE", Verb::Mode, 1, "MODE #room [+b|-b mask]: the room's modes, or its bans (operators set them)"),
    cmd("MOTD", Verb::Motd, 0, "MOTD: the message of the day"),
    cmd("NAMES", Verb::Names, 0, "NAMES [#room,...]: who is in a room"),
    pre(cmd("NICK", Verb::Nick, 0, "NICK name: choose or change your nick")),
    cmd("NOTICE", Verb::Notice, 0, "NOTICE target :text: like PRIVMSG, but never answered automatically"),
    cmd("OPER", Verb::Oper, 2, "OPER: not used here; operators log in to their account with SASL"),
    cmd("PART", Verb::Part, 1, "PART #room[,#room...] [:reason]: leave rooms"),
    pre(cmd("PASS", Verb::Pass, 1, "PASS password: your account's password, for clients without SASL (before NICK and USER)")),
    pre(cmd("PING", Verb::Ping, 1, "PING token: the server answers PONG with the token, after everything sent before it")),
    pre(cmd("PONG", Verb::Pong, 0, "PONG token: the answer to the server's PING")),
    cmd("PRIVMSG", Verb::Privmsg, 0, "PRIVMSG #room|nick :text: say something to a room or to one user"),
    pre(cmd("QUIT", Verb::Quit, 0, "QUIT [:reason]: leave")),
    cmd("SEARCH", Verb::Search, 0, "SEARCH [#room] [text]: find words, \"exact phrases\" or prefix* in a room's history, newest first, as NOTICEs; without text: older matches of the last search"),
    cmd("TAGMSG", Verb::TagMsg, 1, "TAGMSG #room|nick: send only client tags (typing notifications) to message-tags clients"),
    cmd("TOPIC", Verb::Topic, 1, "TOPIC #room [:text]: show the topic, or set it (server operators)"),
    pre(cmd("USER", Verb::User, 4, "USER username 0 * :real name: the rest of registration")),
    cmd("USERHOST", Verb::Userhost, 1, "USERHOST nick...: nicks' user and host"),
    cmd("WHO", Verb::Who, 0, "WHO #room|mask [%fields[,token]]: who is in a room, or matches a mask"),
    cmd("WHOIS", Verb::Whois, 0, "WHOIS nick: about one user"),
];

/// The command named `name`, ignoring case.
pub fn lookup(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// Why a command is refused before its handler runs, with the numeric to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `421`.
    Unknown,
    /// `451`.
    NotRegistered,
    /// `461`.
    NeedMoreParams,
    /// `481`.
    NotOperator,
}

impl Refusal {
    /// The numeric that answers it.
    pub fn numeric(self) -> Numeric {
        match self {
            Refusal::Unknown => ERR_UNKNOWNCOMMAND,
            Refusal::NotRegistered => ERR_NOTREGISTERED,
            Refusal::NeedMoreParams => ERR_NEEDMOREPARAMS,
            Refusal::NotOperator => ERR_NOPRIVILEGES,
        }
    }

    /// Writes the answer: `421 client CMD :Unknown command`, `461 client CMD :...`,
    /// `451 client :...` or `481 client :...`.
    pub fn write(self, out: &mut Vec<u8>, server: &str, client: &str, command: &str) {
        let command = command.to_ascii_uppercase();
        let command = crate::door::irc::caps::truncate(&command, 32);
        match self {
            Refusal::Unknown | Refusal::NeedMoreParams => {
                self.numeric().write(out, server, client, &[command], &[])
            }
            Refusal::NotRegistered | Refusal::NotOperator => {
                self.numeric().write(out, server, client, &[], &[])
            }
        }
    }
}

/// The generic checks, in ergo's order: known, registered, operator, enough parameters.
pub fn check(msg: &Message<'_>, registered: bool, operator: bool) -> Result<Verb, Refusal> {
    let Some(command) = lookup(msg.command) else {
        // Before registration an unknown command is still "not registered": the client is
        // not yet talking to us as a user.
        return Err(if registered {
            Refusal::Unknown
        } else {
            Refusal::NotRegistered
        });
    };
    if !registered && !command.before_registration {
        return Err(Refusal::NotRegistered);
    }
    if command.operator_only && !operator {
        return Err(Refusal::NotOperator);
    }
    if msg.params().len() < command.min_params {
        return Err(Refusal::NeedMoreParams);
    }
    Ok(command.verb)
}

/// Answers `HELP [subject]`: `704`, a `705` per line, `706`; or `524` for an unknown subject.
/// Operators' commands are listed to operators only.
pub fn help(out: &mut Vec<u8>, server: &str, client: &str, subject: Option<&str>, operator: bool) {
    let visible = |c: &&Command| operator || !c.operator_only;
    match subject {
        None => {
            let subject = "index";
            RPL_HELPSTART.write_text(
                out,
                server,
                client,
                &[subject],
                "Commands (HELP <command> for more):",
            );
            let names: Vec<&str> = COMMANDS.iter().filter(visible).map(|c| c.name).collect();
            for line in names.chunks(10) {
                RPL_HELPTXT.write_text(out, server, client, &[subject], &line.join(" "));
            }
            RPL_ENDOFHELP.write(out, server, client, &[subject], &[]);
        }
        Some(subject) => match lookup(subject).filter(|c| visible(c)) {
            Some(command) => {
                let (usage, what) = command.help.split_once(": ").unwrap_or((command.help, ""));
                RPL_HELPSTART.write_text(out, server, client, &[command.name], usage);
                RPL_HELPTXT.write_text(out, server, client, &[command.name], what);
                RPL_ENDOFHELP.write(out, server, client, &[command.name], &[]);
            }
            None => {
                let subject = crate::door::irc::caps::truncate(subject, 32);
                ERR_HELPNOTFOUND.write(out, server, client, &[subject], &[]);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::message::parse;

    fn checked(line: &str, registered: bool, operator: bool) -> Result<Verb, Refusal> {
        check(&parse(line.as_bytes()).unwrap(), registered, operator)
    }

    #[test]
    fn table_is_sorted_unique_and_documented() {
        for pair in COMMANDS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} {}",
                pair[0].name,
                pair[1].name
            );
        }
        for c in COMMANDS {
            assert!(
                c.help.starts_with(c.name),
                "{}: help starts with its usage",
                c.name
            );
            assert!(
                c.help.contains(": "),
                "{}: usage, then what it does",
                c.name
            );
        }
    }

    #[test]
    fn generic_checks() {
        assert_eq!(checked("privmsg #a :hi", true, false), Ok(Verb::Privmsg));
        assert_eq!(checked("FOO", true, false), Err(Refusal::Unknown));
        assert_eq!(checked("FOO", false, false), Err(Refusal::NotRegistered));
        assert_eq!(
            checked("JOIN #a", false, false),
            Err(Refusal::NotRegistered)
        );
        assert_eq!(checked("nick bar", false, false), Ok(Verb::Nick));
        assert_eq!(
            checked("user u 0 *", false, false),
            Err(Refusal::NeedMoreParams)
        );
        assert_eq!(checked("USER u s e r", false, false), Ok(Verb::User));
        assert_eq!(checked("PING", true, false), Err(Refusal::NeedMoreParams));
        assert_eq!(checked("PING :", true, false), Ok(Verb::Ping));
        assert_eq!(checked("KILL bob", true, false), Err(Refusal::NotOperator));
        assert_eq!(checked("KILL bob", true, true), Ok(Verb::Kill));
        assert_eq!(
            checked("OPER operuser", true, false),
            Err(Refusal::NeedMoreParams)
        );
    }

    #[test]
    fn refusals_name_the_command() {
        let mut out = Vec::new();
        Refusal::Unknown.write(&mut out, "srv", "bob", "foo");
        Refusal::NotRegistered.write(&mut out, "srv", "*", "JOIN");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ":srv 421 bob FOO :Unknown command\r\n:srv 451 * :You have not registered\r\n"
        );
    }

    /// docs/IRC.md's command table lists every command, with its usage and help.
    #[test]
    fn docs_list_every_command() {
        let docs = include_str!("../../../docs/IRC.md");
        for c in COMMANDS {
            let (usage, what) = c.help.split_once(": ").unwrap();
            let row = format!(
                "| `{}` | {} |",
                usage.replace('|', "\\|"),
                what.replace('|', "\\|")
            );
            assert!(docs.contains(&row), "docs/IRC.md has no row `{row}`");
        }
    }

    /// irctest help: HELP, HELP PRIVMSG and an unknown subject.
    #[test]
    fn help_answers_from_the_table() {
        let mut out = Vec::new();
        help(&mut out, "srv", "nick", Some("privmsg"), false);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(lines[0].starts_with(":srv 704 nick PRIVMSG :PRIVMSG #room|nick :text"));
        assert!(lines[1].starts_with(":srv 705 nick PRIVMSG :"));
        assert_eq!(lines[2], ":srv 706 nick PRIVMSG :End of /HELP");
        let mut out = Vec::new();
        help(&mut out, "srv", "nick", Some("THISISNOTACOMMAND"), false);
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with(":srv 524 nick THISISNOTACOMMAND :"));
        let mut out = Vec::new();
        help(&mut out, "srv", "nick", None, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains(" 705 nick index :AUTHENTICATE"));
        assert!(!text.contains("KILL"));
    }
}
