//! Text crossing the IRC door: IRC formatting, CTCP, and what other doors may see.
//!
//! IRC clients colour and embolden text with control characters (bold `\x02`, colour `\x03`
//! with up to two numbers, hex colour `\x04`, reset `\x0f`, monospace `\x11`, reverse `\x16`,
//! italics `\x1d`, strikethrough `\x1e`, underline `\x1f`). They mean something to IRC clients
//! and must pass between IRC users; on an nc or telnet terminal the same bytes are raw control
//! characters, which the line door never lets through.
//!
//! The decision: **text from IRC is stored as sent, sanitized, with its formatting codes
//! kept** ([`from_irc`]: everything `wire::sanitize` removes is removed, except those nine
//! codes). IRC users (live and from the history) see the formatting; every other door renders
//! with [`for_terminal`], which drops the codes with their colour parameters and sanitizes again,
//! so no control byte reaches a terminal. Text from the line door holds no control characters,
//! so it needs nothing on the way to IRC. The `messages` table may therefore hold these nine
//! codes in bodies written by IRC users, and nothing else below U+0020.
//!
//! CTCP (`\x01COMMAND params\x01`) is split off before any of this: `ACTION` is the line door's
//! `/me` ([`Ctcp::Action`]); other CTCP requests only make sense between IRC clients.

use std::borrow::Cow;

use crate::wire::sanitize::sanitize;

/// The CTCP delimiter.
pub const CTCP: char = '\u{1}';

/// The IRC formatting codes kept in stored text.
pub const FORMAT_CODES: &[char] = &[
    '\u{2}', '\u{3}', '\u{4}', '\u{f}', '\u{11}', '\u{16}', '\u{1d}', '\u{1e}', '\u{1f}',
];

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

/// Text from an IRC client as it is stored and relayed: sanitized as the line door sanitizes
/// (terminal controls, escape sequences, bidirectional overrides, invisible characters), with
/// IRC formatting codes kept.
pub fn from_irc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if FORMAT_CODES.contains(&c) {
            out.push_str(&sanitize(&text[start..i]));
            out.push(c);
            start = i + c.len_utf8();
        }
    }
    out.push_str(&sanitize(&text[start..]));
    out
}

/// Text as a terminal may show it: IRC formatting (with colour parameters) removed, then
/// sanitized, so no control character remains. Borrows when there is nothing to remove.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    if !text.contains(FORMAT_CODES) && !text.contains(CTCP) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(sanitize(&strip_formatting(text)))
}

/// `text` without IRC formatting codes and their colour parameters.
pub fn strip_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{3}' => skip_colour(&mut chars, 2, |c| c.is_ascii_digit()),
            '\u{4}' => skip_colour(&mut chars, 6, |c| c.is_ascii_hexdigit()),
            c if FORMAT_CODES.contains(&c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Skips a colour's `FG[,BG]` parameters, each at most `max` characters of `digit`. A comma not
/// followed by a digit is text, and stays.
fn skip_colour(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    max: usize,
    digit: fn(char) -> bool,
) {
    let mut taken = 0;
    while taken < max && chars.peek().copied().is_some_and(digit) {
        chars.next();
        taken += 1;
    }
    if taken == 0 {
        return;
    }
    let mut ahead = chars.clone();
    if ahead.next() == Some(',') && ahead.peek().copied().is_some_and(digit) {
        chars.next();
        let mut taken = 0;
        while taken < max && chars.peek().copied().is_some_and(digit) {
            chars.next();
            taken += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::sanitize::is_clean;
    use proptest::prelude::*;

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

    #[test]
    fn from_irc_keeps_formatting_and_drops_terminal_controls() {
        assert_eq!(
            from_irc("\u{2}bold\u{2} \u{3}4,12red\u{f}"),
            "\u{2}bold\u{2} \u{3}4,12red\u{f}"
        );
        assert_eq!(from_irc("a\u{1b}[2Jb\u{7}c"), "abc");
        assert_eq!(from_irc("\u{1b}\u{2}[31mx"), "\u{2}[31mx");
        assert_eq!(from_irc("rtl\u{202e}txet"), "rtltxet");
        assert_eq!(from_irc("tab\there"), "tab here");
    }

    #[test]
    fn for_terminal_drops_codes_and_colour_numbers() {
        assert_eq!(
            for_terminal("\u{2}bold\u{2} \u{3}4,12red\u{3} \u{3}99x\u{f}"),
            "bold red x"
        );
        assert_eq!(for_terminal("\u{3},5 comma stays"), ",5 comma stays");
        assert_eq!(for_terminal("\u{3}04,text"), ",text");
        assert_eq!(for_terminal("\u{4}FF00aa,000000hex"), "hex");
        assert_eq!(for_terminal("\u{3}123"), "3");
        assert!(matches!(for_terminal("plain text"), Cow::Borrowed(_)));
        assert_eq!(for_terminal("a \u{2}  \u{2}    b"), "a   b");
    }

    proptest! {
        /// Whatever an IRC user sends, a terminal gets no control character, no escape
        /// sequence and no long run of spaces.
        #[test]
        fn nothing_from_irc_reaches_a_terminal_unclean(s in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{9f}\u{202a}-\u{202e}])*") {
            let shown = for_terminal(&from_irc(&s)).into_owned();
            prop_assert!(is_clean(&shown), "{:?} -> {:?}", s, shown);
            prop_assert!(!shown.contains(FORMAT_CODES) && !shown.contains(CTCP));
        }

        /// Stored IRC text holds no control character but the nine formatting codes.
        #[test]
        fn stored_text_holds_only_formatting_controls(s in "(\\PC|[\u{0}-\u{1f}\u{7f}-\u{9f}])*") {
            let stored = from_irc(&s);
            prop_assert!(stored.chars().all(|c| !c.is_control() || FORMAT_CODES.contains(&c)));
            prop_assert_eq!(from_irc(&stored), stored.clone(), "idempotent");
        }
    }
}
