//! The one line a user gets when a name is refused: the reason, then the rule in short. Kept
//! beside [`super::rules`] (rather than in `protocol`) so that the rules and their wording change
//! together; docs/PROTOCOL.md lists these lines.

use unicode_script::Script;
use unicode_width::UnicodeWidthChar;

use super::rules::{Limits, NICK, ROOM};
use super::NameError;

impl NameError {
    /// The one-line reason shown to a user whose user name was refused.
    pub fn nick_reason(self) -> String {
        format!(
            "invalid name ({}): use 1-{} letters or digits of one script, '_', '-' or '.', \
             starting with a letter or digit",
            self.why(&NICK),
            NICK.chars
        )
    }

    /// The one-line reason shown to a user whose room name was refused.
    pub fn room_reason(self) -> String {
        format!(
            "invalid room name ({}): use 1-{} letters or digits of one script, '_', '-' or '.', \
             optionally after '#'",
            self.why(&ROOM),
            ROOM.chars
        )
    }

    fn why(self, limits: &Limits) -> String {
        match self {
            NameError::Empty => "it is empty".to_owned(),
            NameError::TooLong => format!("it is longer than {} characters", limits.chars),
            NameError::TooWide => format!(
                "it is wider than {} columns; CJK characters take two",
                limits.columns
            ),
            NameError::BadStart if limits.letter_first => {
                "it must start with a letter or digit".to_owned()
            }
            NameError::BadStart => "it must not start with a combining mark".to_owned(),
            // Bytes that were not UTF-8, most often telnet's first line: until 8-bit mode is on
            // (after that line) telnet takes some bytes of letters for its own keys (see
            // `wire::codec`), and a second try goes through whole.
            NameError::BadChar(char::REPLACEMENT_CHARACTER) => {
                "it is not UTF-8 text; in telnet, type it again (your first line went out before \
                 8-bit mode was on)"
                    .to_owned()
            }
            NameError::BadChar(c) => format!("{} is not allowed", describe(c)),
            NameError::PiledMarks => format!(
                "it piles up combining marks: at most {} in a row, and never one mark twice",
                super::rules::MAX_MARKS
            ),
            NameError::MixedDigits(a, b) => {
                format!("it mixes the digits '{a}' and '{b}' of two number systems")
            }
            NameError::MixedScripts(a, b) => match (named(a), named(b)) {
                (Some(a), Some(b)) => {
                    format!("it mixes {a} and {b} letters, which can look alike")
                }
                _ => "it mixes scripts that can look alike".to_owned(),
            },
            NameError::Direction => "a right-to-left name must start with a right-to-left \
                letter, end with one or a digit, and hold no left-to-right letters"
                .to_owned(),
            NameError::Reserved => "it is reserved for the server".to_owned(),
        }
    }
}

/// A character as a user can recognise it: `'@' (U+0040)`, or only its code point when it is
/// invisible (a space, a control or format character), named where it is common.
fn describe(c: char) -> String {
    if c == ' ' {
        return "a space".to_owned();
    }
    let code = format!("U+{:04X}", u32::from(c));
    match c.width() {
        Some(w) if w > 0 && !c.is_whitespace() => format!("'{c}' ({code})"),
        _ => format!("the invisible character {code}"),
    }
}

/// A script's English name, if it is a real script.
fn named(script: Script) -> Option<&'static str> {
    match script {
        Script::Common | Script::Inherited | Script::Unknown => None,
        s => Some(s.full_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_what_is_wrong() {
        assert_eq!(
            NameError::MixedScripts(Script::Cyrillic, Script::Latin).nick_reason(),
            "invalid name (it mixes Cyrillic and Latin letters, which can look alike): use 1-24 \
             letters or digits of one script, '_', '-' or '.', starting with a letter or digit"
        );
        assert!(NameError::BadChar('@')
            .nick_reason()
            .starts_with("invalid name ('@' (U+0040) is not allowed)"));
        assert!(NameError::BadChar('\u{200d}')
            .nick_reason()
            .contains("the invisible character U+200D is not allowed"));
        assert!(NameError::BadChar(' ')
            .room_reason()
            .starts_with("invalid room name (a space is not allowed)"));
        assert!(NameError::BadChar('\u{fffd}').nick_reason().starts_with(
            "invalid name (it is not UTF-8 text; in telnet, type it again (your first"
        ));
        assert!(NameError::MixedDigits('१', '1')
            .nick_reason()
            .starts_with("invalid name (it mixes the digits '१' and '1' of two number systems)"));
        assert!(NameError::PiledMarks
            .nick_reason()
            .contains("at most 4 in a row, and never one mark twice"));
        assert!(NameError::TooWide
            .nick_reason()
            .contains("wider than 24 columns"));
    }
}
