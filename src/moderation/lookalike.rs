//! What a name ban covers: the banned name and the names a troll comes back as.
//!
//! Comparing the exact name lets `/ban mallory` be dodged by `ma1lory2`, `maIlory2` or
//! `rnallory2`. Comparing confusable skeletons ([`Nick::skeleton`]) catches the look-alike
//! letters but not the `2`. So a ban also ignores a *tail*: the digits and separators (`_`,
//! `-`, `.`) a name ends in.
//!
//! The rule: a ban on `B` covers a name `N` when some *stem* of `N` has the skeleton of `B`, or
//! the skeleton of `B` without its tail. The stems of `N` are `N` itself and what is left after
//! dropping one or more of its tail's characters (never all of `N`). So `mallory` covers
//! `ma1lory2`, `mallory_`, `Mallory.99`, `rnallory` and `paul` covers `pau1_2`; but `al` does
//! not cover `alice` (a stem is only ever `N` shortened by its tail), `mallory` does not cover
//! `mallory_fan` or `2mallory`, and a ban whose name is all tail (`2`) covers only names that
//! are its skeleton followed by more tail (`2`, `22`, `2_`), never every name.
//!
//! A combining mark on a tail character (`2́`, a `2` with an acute accent, which no precomposed
//! character absorbs) is part of the tail with it: otherwise `mallory2́` would dodge a ban on
//! `mallory`. A mark on a letter is not (in many scripts marks are what tells names apart).
//!
//! The tail is taken from the name as typed, before the skeleton: the skeleton reads `1` as `l`
//! and `0` as `o`, so stripping digits from it would miss `mallory1`. Comparing every stem, not
//! only the shortest, keeps a `1` that stands for an `l` at the end of a banned name (`pau1_2`
//! for `paul`).
//!
//! It compares skeletons only, computed by the one function behind [`Nick::skeleton`], so it
//! follows whatever the name rules say a skeleton is (Unicode TR39: a Cyrillic `а` reads as
//! `a`); a tail character is a separator or anything `char::is_numeric` calls a digit, in any
//! script. A stored ban (a name's case fold) is compared as it is, even if that fold would not
//! pass as a name on its own.

use unicode_normalization::char::is_combining_mark;

use crate::names::{skeleton, Nick};

/// Whether a ban on the name `banned` (as stored: lower case) covers `nick`.
pub fn covers(banned: &str, nick: &Nick) -> bool {
    let forms = forms(banned);
    !forms.is_empty() && stems(nick).iter().any(|s| forms.contains(s))
}

/// The skeletons a ban on `banned` matches: its own, and that of its name without the tail.
/// Empty for an empty name. A name is covered when one of its [`stems`] is among them.
pub fn forms(banned: &str) -> Vec<String> {
    if banned.is_empty() {
        return Vec::new();
    }
    let mut forms = vec![skeleton(banned)];
    let mut core = banned;
    while let Some(shorter) = without_last_tail(core) {
        core = shorter;
    }
    if !core.is_empty() && core != banned {
        forms.push(skeleton(core));
    }
    forms
}

/// The skeletons of `nick` and of each shortening of it by its tail (never to nothing).
pub fn stems(nick: &Nick) -> Vec<String> {
    let mut stems = vec![nick.skeleton().to_owned()];
    let mut rest = nick.as_str();
    while let Some(shorter) = without_last_tail(rest) {
        if shorter.is_empty() {
            break;
        }
        rest = shorter;
        stems.push(skeleton(rest));
    }
    stems
}

/// `text` without its last character if that is a tail character (with any combining marks
/// on it); `None` if it ends otherwise.
fn without_last_tail(text: &str) -> Option<&str> {
    let base = text.trim_end_matches(is_combining_mark);
    let last = base.chars().next_back().filter(|c| is_tail(*c))?;
    Some(&base[..base.len() - last.len_utf8()])
}

/// A character of a name's tail: a digit or a separator.
fn is_tail(c: char) -> bool {
    c.is_numeric() || matches!(c, '_' | '-' | '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn covered(banned: &str, name: &str) -> bool {
        covers(banned, &Nick::parse(name).unwrap())
    }

    #[test]
    fn a_ban_covers_look_alikes_with_a_tail() {
        for name in [
            "mallory",
            "MALLORY",
            "ma1lory2",
            "maIlory2",
            "rnallory2",
            "mallory_",
            "Mallory.99",
            "mallory1",
            "ma11ory-0",
            "rnaIl0ry",
        ] {
            assert!(covered("mallory", name), "{name}");
        }
        // A banned name's own tail is not part of what it covers.
        assert!(covered("mallory2", "mallory"));
        assert!(covered("mallory2", "rnallory7"));
        // Other scripts: a Cyrillic `рор` with a tail is a look-alike of `pop`.
        assert!(covered("pop", "\u{440}\u{43e}\u{440}2"));
        assert!(covered("pop", "\u{440}\u{43e}\u{440}_"));
        // An `l` written as `1` at the end survives a tail after it.
        assert!(covered("paul", "pau1_2"));
        assert!(covered("paul", "pau1"));
        // A mark on a tail character is tail too (`2́` has no precomposed form).
        assert!(covered("mallory", "mallory2\u{301}"));
        assert!(covered("mallory", "ma1lory_\u{301}7\u{308}"));
        assert!(covered("mallory2\u{301}", "mallory"));
    }

    #[test]
    fn a_ban_does_not_over_match() {
        for (banned, name) in [
            ("al", "alice"),
            ("al", "a"),
            ("mallory", "mallory_fan"),
            ("mallory", "2mallory"),
            ("mallory", "malloryx2"),
            ("bob", "rob"),
            ("bob", "bobby"),
            ("2", "x2"),
            ("2", "3"),
            ("7", "alice7"),
        ] {
            assert!(!covered(banned, name), "{banned} covered {name}");
        }
        // A mark on a letter is not tail: in many scripts it is what tells names apart.
        assert!(!covered("bob", "bob\u{301}"));
        assert!(!covered("zoe", "zo\u{eb}2"));
        // All tail: only its own skeleton with more tail.
        assert!(covered("2", "2"));
        assert!(covered("2", "22"));
        assert!(covered("2", "2_"));
        // An empty row covers nothing; another row only its own look-alikes.
        assert!(!covered("", "a"));
        assert!(!covered("not a name", "not"));
    }

    proptest! {
        /// Whatever the names, a ban covers its own name, and it covers only names that share
        /// the first character of a stem with it (so it never covers everything).
        #[test]
        fn a_ban_covers_itself_and_not_everything(a in "[a-z0-9][a-z0-9_.-]{0,10}", b in "[a-z][a-z]{0,10}") {
            if let Ok(nick) = Nick::parse(&a) {
                prop_assert!(covers(nick.key(), &nick));
            }
            // A name of letters only covers only names of the same skeleton plus a tail.
            if let (Ok(banned), Ok(other)) = (Nick::parse(&b), Nick::parse(&a)) {
                if covers(banned.key(), &other) {
                    prop_assert!(stems(&other).contains(&banned.skeleton().to_owned()));
                }
            }
        }
    }
}
