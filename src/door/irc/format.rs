//! Text crossing the IRC door: IRC formatting, CTCP, and what other doors may see.
//!
//! IRC formatting codes (bold, colours...) are kept in text from IRC by [`from_irc`] and
//! removed wherever anything but an IRC client reads it by [`for_terminal`]; both live in
//! `wire::markup`, the one sanitizer that lets them through, which says why.
//!
//! CTCP (`\x01COMMAND params\x01`) is split off before any of this: `ACTION` is the line door's
//! `/me` ([`Ctcp::Action`]); other CTCP requests only make sense between IRC clients.

pub use crate::wire::markup::{for_terminal, from_irc, strip_formatting, FORMAT_CODES};

/// The CTCP delimiter.
pub const CTCP: char = '\u{1}';

/// What a `PRIVMSG` or `NOTICE` text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctcp<'a> {
    /// Plain text.
    Text(&'a str),
    /// `\x01ACTION text\x01`: the line door's `/me`.
    Action(&'a str),
    /// Any other CTCP request or reply, such as `VERSION` or `PING`.
    Other { command: &'a str, params: &'a str },
}

/// Splits off CTCP. The closing `\x01` is optional, as clients are sloppy about it.
pub fn ctcp(text: &str) -> Ctcp<'_> {
    let Some(inner) = text.strip_prefix(CTCP) else {
        return Ctcp::Text(text);
    };
    let inner = inner.strip_suffix(CTCP).unwrap_or(inner);
    let (command, params) = inner.split_once(' ').unwrap_or((inner, ""));
    if command.eq_ignore_ascii_case("ACTION") {
        Ctcp::Action(params)
    } else {
        Ctcp::Other { command, params }
    }
}

/// `text` as a CTCP `ACTION`, for IRC clients.
pub fn action(text: &str) -> String {
    format!("{CTCP}ACTION {text}{CTCP}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctcp_action_and_others() {
        assert_eq!(ctcp("\u{1}ACTION waves\u{1}"), Ctcp::Action("waves"));
        assert_eq!(ctcp("\u{1}ACTION waves"), Ctcp::Action("waves"));
        assert_eq!(ctcp("\u{1}action\u{1}"), Ctcp::Action(""));
        assert_eq!(
            ctcp("\u{1}VERSION\u{1}"),
            Ctcp::Other {
                command: "VERSION",
                params: ""
            }
        );
        assert_eq!(
            ctcp("\u{1}PING 1473523796 918320\u{1}"),
            Ctcp::Other {
                command: "PING",
                params: "1473523796 918320"
            }
        );
        assert_eq!(ctcp("hello"), Ctcp::Text("hello"));
        assert_eq!(action("waves"), "\u{1}ACTION waves\u{1}");
    }
}
