//! IRC formatting codes: the one markup the server keeps in text, and the one sanitizer that
//! lets it through.
//!
//! IRC clients colour and embolden text with control characters (bold `\x02`, colour `\x03`
//! with up to two numbers, hex colour `\x04`, reset `\x0f`, monospace `\x11`, reverse `\x16`,
//! italics `\x1d`, strikethrough `\x1e`, underline `\x1f`). They mean something to IRC clients
//! and pass between IRC users; on an nc or telnet terminal, in a web page or in the `sqlite3`
//! shell the same bytes are raw control characters.
//!
//! So text from IRC is sanitized by [`from_irc`] (everything [`sanitize`] removes is removed,
//! except those nine codes), and travels through the hub and the cluster log like that; every
//! place that shows text to anything but an IRC client takes [`for_terminal`] of it, which
//! drops the codes with their colour parameters and sanitizes again: the line and web
//! renderers, and the history writer, which stores the plain text as `body` (what `sqlite3`,
//! search and the other doors read) and the formatted text beside it only when it differs
//! (see storage's migration 0012). Text from the other doors holds no control characters, so
//! both functions leave it as it is, and [`for_terminal`] borrows it.

use std::borrow::Cow;

use crate::wire::sanitize::sanitize;

/// The CTCP delimiter, never shown either.
const CTCP: char = '\u{1}';

/// The IRC formatting codes kept in stored text.
pub const FORMAT_CODES: &[char] = &[
    '\u{2}', '\u{3}', '\u{4}', '\u{f}', '\u{11}', '\u{16}', '\u{1d}', '\u{1e}', '\u{1f}',
];

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
