//! User and room names, validated once at the edge.
//!
//! A [`Nick`] or [`RoomName`] can only be built by `parse`, so nothing past the parser re-checks a
//! raw `&str`. Names are compared ignoring ASCII case (`Alice` and `alice` are the same user), so
//! each carries its lower-case key beside the spelling the user chose.

use std::fmt;
use std::sync::Arc;

/// Longest user name, in characters. Not configurable: names appear in every relayed line and in
/// the history table, and 24 is what IRC networks commonly allow.
pub const MAX_NICK: usize = 24;

/// Longest room name, in characters (not counting a leading `#`). Not configurable.
pub const MAX_ROOM: usize = 32;

/// The room everybody starts in.
pub const LOBBY: &str = "lobby";

/// Names nobody may take, because server notices use them (`* server shutting down`,
/// `* you joined ROOM`): a user with such a name could forge those with `/me`.
const RESERVED: &[&str] = &["server", "you"];

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    Empty,
    Reserved,
    TooLong,
    BadStart,
    BadChar,
}

/// A valid user name: 1 to [`MAX_NICK`] ASCII letters, digits, `_`, `-`, `.`, starting with a
/// letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nick {
    name: Arc<str>,
    key: Arc<str>,
    skeleton: Arc<str>,
}

/// The confusable skeleton of an ASCII name, in the spirit of Unicode TR39: two names with the
/// same skeleton look alike (`aIice` and `alice`, `rnallory` and `mallory`, `B0B` and `bob`).
///
/// Names are ASCII only, so a small table of ASCII look-alikes does the job of TR39's full one
/// (the `unicode-security` crate would add a dependency and a table for characters a name can
/// never hold): case is ignored, `i` (for `I`), `1` and `|` read as `l`, `0` as `o`, and the
/// pairs `rn`, `vv` and `cl` as `m`, `w` and `d`.
pub fn skeleton(name: &str) -> String {
    // Lower case first, so that two spellings of one name always share a skeleton; then `i`
    // joins `l`, because `I` (which lower-cases to `i`) is the classic look-alike of `l`. That
    // also makes `aiice` collide with `alice`: a small price for a rule with no case exceptions.
    let mut out: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            'i' | '1' | '|' => 'l',
            '0' => 'o',
            c => c,
        })
        .collect();
    for (pair, one) in [("rn", "m"), ("vv", "w"), ("cl", "d")] {
        while out.contains(pair) {
            out = out.replace(pair, one);
        }
    }
    out
}

/// True if `raw` looks like a reserved name, punctuation at either end aside (`server_`, `You.`,
/// `5erver` does not count, `SERVER` and `y0u` do).
fn looks_reserved(raw: &str) -> bool {
    let core = skeleton(raw.trim_matches(|c| matches!(c, '_' | '-' | '.')));
    RESERVED.iter().any(|r| skeleton(r) == core)
}

/// A valid room name: 1 to [`MAX_ROOM`] ASCII letters, digits, `_`, `-`, `.`, with an optional
/// leading `#` that is not part of the name. Rooms are stored and shown in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomName {
    key: Arc<str>,
}

fn check(raw: &str, max: usize, start_alnum: bool) -> Result<(), NameError> {
    let first = raw.chars().next().ok_or(NameError::Empty)?;
    if raw.chars().count() > max {
        return Err(NameError::TooLong);
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(NameError::BadChar);
    }
    if start_alnum && !first.is_ascii_alphanumeric() {
        return Err(NameError::BadStart);
    }
    Ok(())
}

impl Nick {
    /// Validates a user name as typed (surrounding white space is ignored).
    pub fn parse(raw: &str) -> Result<Nick, NameError> {
        let raw = raw.trim();
        check(raw, MAX_NICK, true)?;
        if looks_reserved(raw) {
            return Err(NameError::Reserved);
        }
        Ok(Nick {
            name: raw.into(),
            key: raw.to_ascii_lowercase().into(),
            skeleton: skeleton(raw).into(),
        })
    }

    /// The name as the user spelled it.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The name shared, for the history writer.
    pub fn shared(&self) -> Arc<str> {
        self.name.clone()
    }

    /// The lower-case form: two spellings of one name.
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
        check(raw, MAX_ROOM, false)?;
        Ok(RoomName {
            key: raw.to_ascii_lowercase().into(),
        })
    }

    /// The room everybody starts in.
    pub fn lobby() -> RoomName {
        RoomName { key: LOBBY.into() }
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

impl NameError {
    /// The one-line reason shown to a user whose user name was refused.
    pub fn nick_reason(self) -> String {
        let why = match self {
            NameError::Empty => "it is empty",
            NameError::Reserved => "it is reserved for the server",
            NameError::TooLong => "it is longer than 24 characters",
            NameError::BadStart => "it must start with a letter or digit",
            NameError::BadChar => "only letters, digits, '_', '-' and '.' are allowed",
        };
        format!("invalid name ({why}): use 1-24 letters, digits, '_', '-' or '.', starting with a letter or digit")
    }

    /// The one-line reason shown to a user whose room name was refused.
    pub fn room_reason(self) -> String {
        let why = match self {
            NameError::Empty => "it is empty",
            NameError::Reserved => "it is reserved",
            NameError::TooLong => "it is longer than 32 characters",
            NameError::BadStart | NameError::BadChar => {
                "only letters, digits, '_', '-' and '.' are allowed"
            }
        };
        format!("invalid room name ({why}): use 1-32 letters, digits, '_', '-' or '.', optionally after '#'")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_names() {
        for ok in ["a", "Alice", "bob_2", "x.y-z", "9lives", &"a".repeat(24)] {
            assert_eq!(Nick::parse(ok).map(|n| n.to_string()), Ok(ok.to_string()));
        }
        assert_eq!(
            Nick::parse("  carol \r").map(|n| n.to_string()),
            Ok("carol".into())
        );
    }

    #[test]
    fn refuses_invalid_names() {
        assert_eq!(Nick::parse(""), Err(NameError::Empty));
        assert_eq!(Nick::parse("   "), Err(NameError::Empty));
        assert_eq!(Nick::parse(&"a".repeat(25)), Err(NameError::TooLong));
        assert_eq!(Nick::parse("_x"), Err(NameError::BadStart));
        assert_eq!(Nick::parse(".x"), Err(NameError::BadStart));
        assert_eq!(Nick::parse("a b"), Err(NameError::BadChar));
        assert_eq!(Nick::parse("é"), Err(NameError::BadChar));
        assert_eq!(Nick::parse("a:b"), Err(NameError::BadChar));
        assert_eq!(Nick::parse("Server"), Err(NameError::Reserved));
        assert_eq!(Nick::parse("you"), Err(NameError::Reserved));
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        for (a, b) in [
            ("alice", "aIice"),
            ("alice", "a1ice"),
            ("mallory", "rnallory"),
            ("bob", "B0B"),
            ("wendy", "vvendy"),
            ("dave", "clave"),
        ] {
            assert_eq!(skeleton(a), skeleton(b), "{a} {b}");
        }
        assert_ne!(skeleton("alice"), skeleton("alice_"));
        assert_ne!(skeleton("bob"), skeleton("rob"));
        assert_eq!(skeleton("ALICE"), skeleton("alice"));
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
    fn nick_key_ignores_case() {
        let a = Nick::parse("Alice").unwrap();
        let b = Nick::parse("aLICE").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.as_str(), "Alice");
    }

    #[test]
    fn room_names_fold_hash_and_case() {
        let a = RoomName::parse("#Rust").unwrap();
        let b = RoomName::parse("rust").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "rust");
        assert_eq!(
            RoomName::parse("_x").map(|r| r.to_string()),
            Ok("_x".into())
        );
        assert_eq!(RoomName::parse("#"), Err(NameError::Empty));
        assert_eq!(RoomName::parse(&"r".repeat(33)), Err(NameError::TooLong));
        assert_eq!(RoomName::parse("a/b"), Err(NameError::BadChar));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepts_only_the_alphabet(s in ".{0,40}") {
            if let Ok(n) = Nick::parse(&s) {
                prop_assert!(n.as_str().len() <= MAX_NICK);
                prop_assert!(n.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)));
            }
            if let Ok(r) = RoomName::parse(&s) {
                prop_assert!(r.as_str().len() <= MAX_ROOM);
                prop_assert_eq!(RoomName::parse(r.as_str()), Ok(r.clone()));
            }
        }
    }
}
