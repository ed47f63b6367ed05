//! User and room names, validated once at the edge.
//!
//! A [`Nick`] or [`RoomName`] can only be built by `parse`, so nothing past the parser re-checks a
//! raw `&str`. Names may be written in any one script (Latin, Cyrillic, Greek, Han, Kana, Hangul,
//! Arabic, Hebrew, Devanagari, ...): [`rules`] is the one table of what is accepted, [`fold`] the
//! forms names are stored, compared and told apart in. Each name carries its three forms, so the
//! hub, storage and the cluster never recompute them:
//!
//! - as typed, normalized (NFC): what everybody sees and the history stores;
//! - its key, the Unicode case fold: `Олена` and `олена` are one user, `#Кухня` and `кухня`
//!   one room;
//! - (users) its confusable skeleton: no two users look alike (`aIice` beside `alice`).
//!
//! This module knows nothing of doors, sockets or storage; the wording of refusals is
//! `protocol`'s.

mod fold;
mod refusal;
pub mod rules;

use std::fmt;
use std::sync::Arc;

pub use fold::{fold, skeleton};
pub use unicode_script::Script;

/// Longest user name, in characters (see [`rules::NICK`]).
pub const MAX_NICK: usize = rules::NICK.chars;

/// Longest room name, in characters, not counting a leading `#` (see [`rules::ROOM`]).
pub const MAX_ROOM: usize = rules::ROOM.chars;

/// The room everybody starts in.
pub const LOBBY: &str = "lobby";

/// Why a name was refused (the rule numbers are those of [`rules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// Over the limit in characters.
    TooLong,
    /// Over the limit in terminal columns.
    TooWide,
    /// A user name that does not start with a letter or digit, or a name that starts with a
    /// combining mark.
    BadStart,
    /// A character outside the alphabet: white space, a control or format character, a symbol
    /// or emoji, punctuation other than `_ - .`.
    BadChar(char),
    /// Scripts that may not mix (rule 4), as (a script before, the script that broke the rule);
    /// [`Script::Unknown`] where no script could be named.
    MixedScripts(Script, Script),
    /// Combining marks piled on a letter (rule 2): more than [`rules::MAX_MARKS`] in a row, or
    /// one mark twice in a row.
    PiledMarks,
    /// Digits of two decimal systems (rule 4), as (a digit before, the digit that broke it).
    MixedDigits(char, char),
    /// A right-to-left name that breaks the Bidi Rule (rule 5).
    Direction,
    /// Looks like a name the server's notices use.
    Reserved,
}

/// A valid user name (see [`rules`]), with its case fold and confusable skeleton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nick {
    name: Arc<str>,
    key: Arc<str>,
    skeleton: Arc<str>,
}

/// A valid room name (see [`rules`]), with an optional leading `#` that is not part of the name.
/// Rooms are stored and shown by their case fold (`#Кухня` is `кухня`), and carry their
/// confusable skeleton so that no two occupied rooms look alike.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName {
    key: Arc<str>,
    skeleton: Arc<str>,
}

impl Nick {
    /// Validates a user name as typed (surrounding white space is ignored).
    pub fn parse(raw: &str) -> Result<Nick, NameError> {
        let name = rules::check(raw, &rules::NICK)?;
        if rules::looks_reserved(&name) {
            return Err(NameError::Reserved);
        }
        Ok(Nick {
            key: fold(&name).into(),
            skeleton: skeleton(&name).into(),
            name: name.into(),
        })
    }

    /// The name as the user spelled it (normalized).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The name shared, for the history writer.
    pub fn shared(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The case-folded form: two spellings of one name.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The confusable [`skeleton`], used for uniqueness: no two users look alike.
    pub fn skeleton(&self) -> &str {
        &self.skeleton
    }
}

impl RoomName {
    /// Validates a room name as typed: `rust`, `#Rust` and `RUST` are the same room.
    pub fn parse(raw: &str) -> Result<RoomName, NameError> {
        let raw = raw.trim();
        let raw = raw.strip_prefix('#').unwrap_or(raw);
        let name = rules::check(raw, &rules::ROOM)?;
        // The key is what is stored and what `/join` is given back: it must be a room name
        // itself. A few capitals fold to letters the rules do not allow on their own (Georgian
        // `Ⴭ` to `ⴭ`), and such a name is refused rather than stored as one nobody can type.
        let key = fold(&name);
        rules::check(&key, &rules::ROOM)?;
        Ok(RoomName {
            key: key.into(),
            skeleton: skeleton(&name).into(),
        })
    }

    /// The room everybody starts in.
    pub fn lobby() -> RoomName {
        RoomName {
            key: LOBBY.into(),
            skeleton: skeleton(LOBBY).into(),
        }
    }

    /// The confusable [`skeleton`]: two rooms that share it look alike (`#рор` and `#pop`).
    pub fn skeleton(&self) -> &str {
        &self.skeleton
    }

    /// The canonical name, as stored in the `room` column.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// The name shared, for the history writer.
    pub fn shared(&self) -> Arc<str> {
        self.key.clone()
    }
}

impl fmt::Display for Nick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

/// Names for unit tests: a valid name, parsed.
#[cfg(test)]
pub mod testing {
    use super::{Nick, RoomName};

    pub fn nick(name: &str) -> Nick {
        Nick::parse(name).unwrap()
    }

    pub fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_valid_names() {
        for ok in [
            "a",
            "Alice",
            "bob_2",
            "x.y-z",
            "9lives",
            &"a".repeat(24),
            "олена",
            "王小明",
        ] {
            assert_eq!(Nick::parse(ok).map(|n| n.to_string()), Ok(ok.to_string()));
        }
        assert_eq!(
            Nick::parse("  carol \r").map(|n| n.to_string()),
            Ok("carol".into())
        );
    }

    /// The name is kept as typed, normalized; the key folds case in every script.
    #[test]
    fn nick_forms() {
        let a = Nick::parse("Олена").unwrap();
        let b = Nick::parse("оЛЕНА").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), "олена");
        assert_eq!(a.as_str(), "Олена");
        assert_eq!(a.skeleton(), b.skeleton());
        // Typed decomposed, stored precomposed.
        assert_eq!(Nick::parse("Йосип").unwrap().as_str(), "Йосип");
        assert_eq!(Nick::parse("И\u{306}осип").unwrap().as_str(), "Йосип");
    }

    #[test]
    fn reserved_names_with_decoration_are_refused() {
        for name in [
            "server", "SERVER", "server_", "server.", "_server", "5erver_x", "You.", "y0u", "you--",
        ] {
            // `_server` is refused earlier, for its first character.
            let refused = Nick::parse(name).is_err();
            assert_eq!(refused, name != "5erver_x", "{name}");
        }
    }

    #[test]
    fn room_names_fold_hash_and_case() {
        let a = RoomName::parse("#Rust").unwrap();
        let b = RoomName::parse("rust").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "rust");
        assert_eq!(RoomName::parse("#Кухня").unwrap().as_str(), "кухня");
        assert_eq!(
            RoomName::parse("_x").map(|r| r.to_string()),
            Ok("_x".into())
        );
        assert_eq!(RoomName::parse("#"), Err(NameError::Empty));
        assert_eq!(RoomName::parse(&"r".repeat(33)), Err(NameError::TooLong));
        assert_eq!(RoomName::parse("a/b"), Err(NameError::BadChar('/')));
        // Its case fold must be a room name too (found by the round-trip property below).
        assert_eq!(
            RoomName::parse("\u{10cd}"),
            Err(NameError::BadChar('\u{2d2d}'))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in "\\PC{0,40}") {
            if let Ok(n) = Nick::parse(&s) {
                prop_assert!(n.as_str().chars().count() <= MAX_NICK);
                prop_assert_eq!(Nick::parse(n.as_str()), Ok(n.clone()));
            }
            if let Ok(r) = RoomName::parse(&s) {
                prop_assert!(r.as_str().chars().count() <= MAX_ROOM);
                prop_assert_eq!(RoomName::parse(r.as_str()), Ok(r.clone()));
            }
        }

        /// Uniqueness by skeleton holds across case: names that are one user (same key) always
        /// share a skeleton, so a lookup by skeleton finds every spelling of a connected name.
        #[test]
        fn same_key_same_skeleton(names in proptest::collection::vec("[a-zA-Z0-9_.\\-]{1,8}|[а-яА-ЯёЁіІ]{1,8}|[α-ωΑ-Ω]{1,8}", 1..20)) {
            let mut by_key: HashMap<String, String> = HashMap::new();
            for raw in &names {
                let Ok(n) = Nick::parse(raw) else { continue };
                let seen = by_key.entry(n.key().to_owned()).or_insert_with(|| n.skeleton().to_owned());
                prop_assert_eq!(seen.as_str(), n.skeleton());
            }
        }
    }
}
