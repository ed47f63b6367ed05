//! Every numeric reply the IRC door sends, named once (as ergo's `irc/numerics.go` does), with
//! the text each one carries. Code, tests and docs/IRC.md read this table: a test checks that
//! the docs list every entry.
//!
//! A text may hold `{name}` placeholders, filled by [`Numeric::write`] from the values given;
//! an empty text means the numeric has no free-text trailing parameter (its parameters say it
//! all, as in `004` or `353`).

use crate::door::irc::message::Writer;

/// One numeric reply: its three-digit code, its conventional name, and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numeric {
    pub code: &'static str,
    pub name: &'static str,
    pub text: &'static str,
}

macro_rules! numerics {
    ($($name:ident = $code:literal, $text:literal;)*) => {
        $(
            #[doc = concat!("`", $code, "`: ", $text)]
            pub const $name: Numeric = Numeric { code: $code, name: stringify!($name), text: $text };
        )*
        /// The whole table, in code order.
        pub const ALL: &[Numeric] = &[$($name),*];
    };
}

numerics! {
    RPL_WELCOME = "001", "Welcome to the {network} IRC Network {nick}";
    RPL_YOURHOST = "002", "Your host is {server}, running version {version}";
    RPL_CREATED = "003", "This server was created {date}";
    RPL_MYINFO = "004", "";
    RPL_ISUPPORT = "005", "are supported by this server";
    RPL_UMODEIS = "221", "";
    RPL_LUSERCLIENT = "251", "There are {users} users and {invisible} invisible on {servers} servers";
    RPL_LUSEROP = "252", "operator(s) online";
    RPL_LUSERUNKNOWN = "253", "unknown connection(s)";
    RPL_LUSERCHANNELS = "254", "channels formed";
    RPL_LUSERME = "255", "I have {clients} clients and {servers} servers";
    RPL_LOCALUSERS = "265", "Current local users {users}, max {max}";
    RPL_GLOBALUSERS = "266", "Current global users {users}, max {max}";
    RPL_AWAY = "301", "";
    RPL_USERHOST = "302", "";
    RPL_ISON = "303", "";
    RPL_UNAWAY = "305", "You are no longer marked as being away";
    RPL_NOWAWAY = "306", "You have been marked as being away";
    RPL_WHOISUSER = "311", "";
    RPL_WHOISSERVER = "312", "";
    RPL_WHOISOPERATOR = "313", "is an IRC operator";
    RPL_ENDOFWHO = "315", "End of WHO list";
    RPL_WHOISIDLE = "317", "seconds idle, signon time";
    RPL_ENDOFWHOIS = "318", "End of /WHOIS list";
    RPL_WHOISCHANNELS = "319", "";
    RPL_LISTSTART = "321", "Users  Name";
    RPL_LIST = "322", "";
    RPL_LISTEND = "323", "End of /LIST";
    RPL_CHANNELMODEIS = "324", "";
    RPL_CREATIONTIME = "329", "";
    RPL_WHOISACCOUNT = "330", "is logged in as";
    RPL_NOTOPIC = "331", "No topic is set";
    RPL_TOPIC = "332", "";
    RPL_TOPICWHOTIME = "333", "";
    RPL_WHOREPLY = "352", "";
    RPL_NAMREPLY = "353", "";
    RPL_WHOSPCRPL = "354", "";
    RPL_ENDOFNAMES = "366", "End of /NAMES list";
    RPL_BANLIST = "367", "";
    RPL_ENDOFBANLIST = "368", "End of channel ban list";
    RPL_MOTD = "372", "";
    RPL_MOTDSTART = "375", "- {server} Message of the day - ";
    RPL_ENDOFMOTD = "376", "End of /MOTD command";
    RPL_YOUREOPER = "381", "You are now an IRC operator";
    ERR_UNKNOWNERROR = "400", "";
    ERR_NOSUCHNICK = "401", "No such nick/channel";
    ERR_NOSUCHSERVER = "402", "No such server";
    ERR_NOSUCHCHANNEL = "403", "No such channel";
    ERR_CANNOTSENDTOCHAN = "404", "Cannot send to channel";
    ERR_TOOMANYCHANNELS = "405", "You have joined too many channels";
    ERR_NOORIGIN = "409", "No origin specified";
    ERR_INVALIDCAPCMD = "410", "Invalid CAP subcommand";
    ERR_NORECIPIENT = "411", "No recipient given ({command})";
    ERR_NOTEXTTOSEND = "412", "No text to send";
    ERR_INPUTTOOLONG = "417", "Input line was too long";
    ERR_UNKNOWNCOMMAND = "421", "Unknown command";
    ERR_NOMOTD = "422", "MOTD File is missing";
    ERR_NONICKNAMEGIVEN = "431", "No nickname given";
    ERR_ERRONEUSNICKNAME = "432", "Erroneous nickname: {reason}";
    ERR_NICKNAMEINUSE = "433", "Nickname is already in use";
    ERR_USERNOTINCHANNEL = "441", "They aren't on that channel";
    ERR_NOTONCHANNEL = "442", "You're not on that channel";
    ERR_NOTREGISTERED = "451", "You have not registered";
    ERR_NEEDMOREPARAMS = "461", "Not enough parameters";
    ERR_ALREADYREGISTERED = "462", "You may not reregister";
    ERR_PASSWDMISMATCH = "464", "Password incorrect";
    ERR_YOUREBANNEDCREEP = "465", "You are banned from this server";
    ERR_UNKNOWNMODE = "472", "is an unknown mode character";
    ERR_BANNEDFROMCHAN = "474", "Cannot join channel (+b)";
    ERR_BADCHANMASK = "476", "Bad channel mask";
    ERR_NOPRIVILEGES = "481", "Permission Denied- You're not an IRC operator";
    ERR_CHANOPRIVSNEEDED = "482", "You're not a channel operator (server operators are)";
    ERR_NOOPERHOST = "491", "Log in to an operator account (SASL) instead";
    ERR_UMODEUNKNOWNFLAG = "501", "Unknown MODE flag";
    ERR_USERSDONTMATCH = "502", "Can't change mode for other users";
    ERR_HELPNOTFOUND = "524", "No help available on this topic";
    RPL_WHOISSECURE = "671", "is using a secure connection";
    RPL_HELPSTART = "704", "";
    RPL_HELPTXT = "705", "";
    RPL_ENDOFHELP = "706", "End of /HELP";
    RPL_LOGGEDIN = "900", "You are now logged in as {account}";
    RPL_LOGGEDOUT = "901", "You are now logged out";
    ERR_NICKLOCKED = "902", "You must use a nick assigned to you";
    RPL_SASLSUCCESS = "903", "SASL authentication successful";
    ERR_SASLFAIL = "904", "SASL authentication failed";
    ERR_SASLTOOLONG = "905", "SASL message too long";
    ERR_SASLABORTED = "906", "SASL authentication aborted";
    ERR_SASLALREADY = "907", "You have already authenticated using SASL";
    RPL_SASLMECHS = "908", "are available SASL mechanisms";
}

impl Numeric {
    /// Writes `:server CODE client params... :text`, the text filled from `vars`
    /// (`("network", "smolchat")` fills `{network}`). With an empty text the last parameter
    /// ends the line.
    pub fn write(
        &self,
        out: &mut Vec<u8>,
        server: &str,
        client: &str,
        params: &[&str],
        vars: &[(&str, &str)],
    ) {
        let w = Writer::new(out, "", Some(server), self.code).param(client);
        match params.split_last() {
            Some((last, middles)) if self.text.is_empty() => w.params(middles).last(last),
            _ if self.text.is_empty() => w.end(),
            _ => w.params(params).trailing(&fill(self.text, vars)),
        }
    }

    /// Writes `:server CODE client params... :trailing`, with free text (a topic, an away
    /// message, a real name) in place of the table's text.
    pub fn write_text(
        &self,
        out: &mut Vec<u8>,
        server: &str,
        client: &str,
        params: &[&str],
        trailing: &str,
    ) {
        Writer::new(out, "", Some(server), self.code)
            .param(client)
            .params(params)
            .trailing(trailing);
    }

    /// The numeric with this code, if the door uses it.
    pub fn by_code(code: &str) -> Option<Numeric> {
        ALL.iter().copied().find(|n| n.code == code)
    }
}

/// `template` with each `{name}` replaced by its value in `vars`; unknown names stay as they
/// are.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .map(|close| (&after[..close], &after[close + 1..]))
        {
            Some((name, tail)) => {
                match vars.iter().find(|(k, _)| *k == name) {
                    Some((_, value)) => out.push_str(value),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = tail;
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_three_digit_and_in_order() {
        for pair in ALL.windows(2) {
            assert!(pair[0].code < pair[1].code, "{:?} {:?}", pair[0], pair[1]);
        }
        for n in ALL {
            assert!(n.code.len() == 3 && n.code.bytes().all(|b| b.is_ascii_digit()));
            assert!(n.name.starts_with("RPL_") || n.name.starts_with("ERR_"));
        }
    }

    #[test]
    fn docs_list_every_numeric() {
        let docs = include_str!("../../../docs/IRC.md");
        for n in ALL {
            let row = format!("| {} | {} |", n.code, n.name);
            assert!(docs.contains(&row), "docs/IRC.md has no row `{row}`");
        }
    }

    #[test]
    fn writes_with_filled_text_or_bare_parameters() {
        let mut out = Vec::new();
        RPL_WELCOME.write(
            &mut out,
            "irc.test",
            "alice",
            &[],
            &[("network", "smolchat"), ("nick", "alice")],
        );
        ERR_NEEDMOREPARAMS.write(&mut out, "irc.test", "*", &["USER"], &[]);
        RPL_MYINFO.write(
            &mut out,
            "irc.test",
            "alice",
            &["irc.test", "v1", "io", "bnst"],
            &[],
        );
        RPL_TOPIC.write_text(&mut out, "irc.test", "alice", &["#lobby"], "hello world");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ":irc.test 001 alice :Welcome to the smolchat IRC Network alice\r\n\
             :irc.test 461 * USER :Not enough parameters\r\n\
             :irc.test 004 alice irc.test v1 io bnst\r\n\
             :irc.test 332 alice #lobby :hello world\r\n"
        );
    }

    #[test]
    fn fill_leaves_unknown_and_unclosed_placeholders() {
        assert_eq!(fill("a {x} b {y} {", &[("x", "1")]), "a 1 b {y} {");
        assert_eq!(Numeric::by_code("433"), Some(ERR_NICKNAMEINUSE));
    }
}
