//! The name rules, in one table: which user and room names are accepted. README ("Names") and
//! docs/PROTOCOL.md ("Names") describe exactly this file; every door (the line door today, the
//! IRC and web doors later) and the cluster's name keys go through it, so a name valid on one is
//! valid on all.
//!
//! A name, after trimming white space at its ends and [`normalize`] (width forms, NFC):
//!
//! 1. holds 1 to [`Limits::chars`] characters (code points), at most [`Limits::columns`]
//!    terminal columns wide (CJK characters take two);
//! 2. holds only letters, digits and combining marks that UTS #39's General Security Profile
//!    allows in identifiers (Identifier_Status=Allowed: the Recommended scripts, no
//!    compatibility or obsolete characters), and the [`SEPARATORS`] `_ - .`; so never white
//!    space, control or format characters (zero-width joiners, bidi controls), symbols, emoji,
//!    or other punctuation;
//! 3. starts with a letter or digit (user names) or with anything but a combining mark (rooms);
//! 4. is at most UTS #39 "moderately restrictive" ([`RESTRICTION`]): one script, or Han with
//!    Hiragana and Katakana (Japanese), Han with Hangul (Korean), Han with Bopomofo, or Latin
//!    with any one of these or with one other Recommended script except Cyrillic and Greek; so a
//!    Latin name with a Cyrillic `о` is refused outright;
//! 5. if it holds right-to-left characters (Arabic, Hebrew, Thaana), follows the Bidi Rule of
//!    RFC 5893 (as PRECIS does): it starts with a right-to-left letter, ends with one or with a
//!    digit, holds no left-to-right letters and not both European and Arabic-Indic digits;
//! 6. (user names) does not look like a [`RESERVED`] name, separators at its ends aside.
//!
//! Two user names are the same user when their [`super::fold`]s are equal, and may not be used
//! at once (or one registered while the other is used) when their [`super::skeleton`]s are.
//!
//! What this leaves out on purpose, for the doors: no name ever holds a space, `,`, `*`, `?`,
//! `!`, `@`, `#`, `&`, `:` or a control character, so an IRC door can use user names as
//! nicknames and room names as `#channels` as they are. A user name may start with a digit and
//! hold `.`, which RFC 2812 nicknames may not: a door that needs that refuses or maps them itself.

use unicode_bidi::{bidi_class, BidiClass};
use unicode_normalization::char::is_combining_mark;
use unicode_script::{Script, UnicodeScript};
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};
use unicode_width::UnicodeWidthStr;

use super::fold::{normalize, skeleton};
use super::NameError;

/// How long a kind of name may be, and how it may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most characters (code points), which bounds the bytes too (4 per character at most).
    pub chars: usize,
    /// Most terminal columns: CJK characters and other wide ones take two, combining marks none.
    pub columns: usize,
    /// The first character must be a letter or digit (else only not a combining mark).
    pub letter_first: bool,
}

/// User names: 24 characters and 24 columns (12 CJK characters). Not configurable: a name
/// starts every relayed line and must leave a terminal's row for the text, and 24 is what IRC
/// networks commonly allow.
pub const NICK: Limits = Limits {
    chars: 24,
    columns: 24,
    letter_first: true,
};

/// Room names (without a leading `#`): 32 characters and 32 columns. Not configurable. A room
/// name may start with a separator (`#_meta`), as it always could.
pub const ROOM: Limits = Limits {
    chars: 32,
    columns: 32,
    letter_first: false,
};

/// The punctuation a name may hold, besides letters, digits and marks.
pub const SEPARATORS: [char; 3] = ['_', '-', '.'];

/// The most mixing of scripts a name may show (UTS #39 section 5.2).
pub const RESTRICTION: RestrictionLevel = RestrictionLevel::ModeratelyRestrictive;

/// Names nobody may take, because server notices use them (`* server shutting down`,
/// `* you joined ROOM`): a user with such a name could forge those with `/me`. Refused in every
/// spelling that looks like them (same skeleton), with separators around them too.
pub const RESERVED: [&str; 2] = ["server", "you"];

/// Checks a name as typed against the rules and returns it normalized (as it is stored and
/// shown).
pub fn check(raw: &str, limits: &Limits) -> Result<String, NameError> {
    let name = normalize(raw.trim());
    let first = name.chars().next().ok_or(NameError::Empty)?;
    if name.chars().count() > limits.chars {
        return Err(NameError::TooLong);
    }
    if let Some(c) = name.chars().find(|&c| !allowed(c)) {
        return Err(NameError::BadChar(c));
    }
    let starts_well = if limits.letter_first {
        first.is_alphanumeric()
    } else {
        !is_combining_mark(first)
    };
    if !starts_well {
        return Err(NameError::BadStart);
    }
    if name.width() > limits.columns {
        return Err(NameError::TooWide);
    }
    if !script_mix_allowed(&name) {
        return Err(mixed_scripts(&name));
    }
    if !bidi_rule(&name) {
        return Err(NameError::Direction);
    }
    Ok(name)
}

/// True if `name` looks like a reserved name, separators at either end aside (`server_`,
/// `You.`, `y0u` and a Cyrillic `ѕеrvеr` do; `5erver_x` does not).
pub fn looks_reserved(name: &str) -> bool {
    let core = skeleton(name.trim_matches(SEPARATORS));
    RESERVED.iter().any(|r| skeleton(r) == core)
}

/// Rule 2: a separator, or a letter, digit or combining mark allowed in identifiers.
fn allowed(c: char) -> bool {
    SEPARATORS.contains(&c)
        || (c.identifier_allowed() && (c.is_alphanumeric() || is_combining_mark(c)))
}

/// Rule 4, on the name without its separators (which belong to no script).
fn script_mix_allowed(name: &str) -> bool {
    let letters: String = name.chars().filter(|c| !SEPARATORS.contains(c)).collect();
    letters.as_str().check_restriction_level(RESTRICTION)
}

/// Names the two scripts that may not mix: the first character that breaks rule 4, and a script
/// before it.
fn mixed_scripts(name: &str) -> NameError {
    let mut end = 0;
    for c in name.chars() {
        end += c.len_utf8();
        if script_mix_allowed(&name[..end]) {
            continue;
        }
        let second = c.script();
        let first = name[..end - c.len_utf8()]
            .chars()
            .map(|c| c.script())
            .find(|&s| s != second && s != Script::Common && s != Script::Inherited)
            .unwrap_or(Script::Unknown);
        return NameError::MixedScripts(first, second);
    }
    NameError::MixedScripts(Script::Unknown, Script::Unknown)
}

/// Rule 5: RFC 5893's Bidi Rule, for names with right-to-left characters (R, AL or AN).
fn bidi_rule(name: &str) -> bool {
    use BidiClass::{AL, AN, BN, CS, EN, ES, ET, NSM, ON, R};
    let classes: Vec<BidiClass> = name.chars().map(bidi_class).collect();
    if !classes.iter().any(|c| matches!(c, R | AL | AN)) {
        return true;
    }
    let first_rtl = matches!(classes.first(), Some(R | AL));
    let only_rtl = classes
        .iter()
        .all(|c| matches!(c, R | AL | AN | EN | ES | CS | ET | ON | BN | NSM));
    let ends_well = matches!(
        classes.iter().rev().find(|&&c| c != NSM),
        Some(R | AL | EN | AN)
    );
    let one_kind_of_digit = !(classes.contains(&EN) && classes.contains(&AN));
    first_rtl && only_rtl && ends_well && one_kind_of_digit
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::names::fold::fold;

    fn nick(raw: &str) -> Result<String, NameError> {
        check(raw, &NICK)
    }

    /// Names in many scripts, and the usual combinations, are accepted as typed.
    #[test]
    fn many_scripts_are_accepted() {
        for ok in [
            "alice",
            "9lives",
            "x.y-z_",
            "олена",
            "Олена_К",
            "Αλέξανδρος",
            "σοφία",
            "Zoë",
            "Łukasz",
            "Ştefan",
            "Jürgen",
            "José-María",
            "Nguyễn",
            "王小明",
            "さくら",
            "サクラ",
            "山田たろう",
            "김민준",
            "李민준",
            "mika_山田",
            "علي",
            "علي٣",
            "דוד",
            "देवनागरी",
            "क्षत्रिय",
            "বাংলা",
            "தமிழ்",
            "ქართული",
            "Հայկ",
            "ไทย",
            "ジョー",
        ] {
            assert_eq!(nick(ok).as_deref(), Ok(ok), "{ok}");
        }
    }

    /// The refused examples of README and docs/PROTOCOL.md, each for its reason.
    #[test]
    fn refused_examples() {
        use NameError::*;
        let latin = Script::Latin;
        let cyrillic = Script::Cyrillic;
        for (raw, why) in [
            ("", Empty),
            ("   ", Empty),
            ("оlena", MixedScripts(cyrillic, latin)),
            ("olеna", MixedScripts(latin, cyrillic)),
            ("pаypal", MixedScripts(latin, cyrillic)),
            ("Αlex", MixedScripts(Script::Greek, latin)),
            ("олена_σ", MixedScripts(cyrillic, Script::Greek)),
            ("a b", BadChar(' ')),
            ("ol\u{200d}ena", BadChar('\u{200d}')),
            ("ol\u{200b}ena", BadChar('\u{200b}')),
            ("ol\u{202e}ena", BadChar('\u{202e}')),
            ("ol\u{7}ena", BadChar('\u{7}')),
            ("olena🚀", BadChar('🚀')),
            ("a@b", BadChar('@')),
            ("a:b", BadChar(':')),
            ("a,b", BadChar(',')),
            ("#chan", BadChar('#')),
            ("ｏｌｅｎａ!", BadChar('!')),
            ("ℌello", BadChar('ℌ')),
            ("a·b", BadChar('·')),
            ("_x", BadStart),
            (".x", BadStart),
            ("\u{301}olena", BadStart),
            (&"a".repeat(25), TooLong),
            (&"本".repeat(13), TooWide),
            ("ali_علي", Direction),
            ("عليali", Direction),
            ("7علي", Direction),
            ("server", Reserved),
            ("SERVER", Reserved),
            ("server_", Reserved),
            ("y0u", Reserved),
            ("You.", Reserved),
            ("ѕеrvеr", MixedScripts(cyrillic, latin)),
        ] {
            let got = nick(raw).and_then(|n| {
                if looks_reserved(&n) {
                    Err(Reserved)
                } else {
                    Ok(n)
                }
            });
            assert_eq!(got, Err(why), "{raw:?}");
        }
        assert_eq!(nick(&"本".repeat(12)).map(|n| n.width()), Ok(24));
    }

    /// Room names follow the same alphabet, may start with a separator, and are longer.
    #[test]
    fn room_rules() {
        assert_eq!(check("кухня", &ROOM).as_deref(), Ok("кухня"));
        assert_eq!(check("_meta", &ROOM).as_deref(), Ok("_meta"));
        assert_eq!(check(&"r".repeat(32), &ROOM).map(|r| r.len()), Ok(32));
        assert_eq!(check(&"r".repeat(33), &ROOM), Err(NameError::TooLong));
        assert_eq!(
            check("кухнa", &ROOM),
            Err(NameError::MixedScripts(Script::Cyrillic, Script::Latin))
        );
        assert_eq!(check("a/b", &ROOM), Err(NameError::BadChar('/')));
    }

    proptest! {
        /// Whatever is typed, an accepted name fits the limits, holds no character a door could
        /// misread, is its own normalized form, and is accepted again as it is.
        #[test]
        fn accepted_names_are_clean(s in "\\PC{0,30}|[a-zA-Zа-яА-Яα-ω本さ_.@ -]{0,30}") {
            if let Ok(name) = nick(&s) {
                prop_assert!(name.chars().count() <= NICK.chars);
                prop_assert!(name.width() <= NICK.columns);
                prop_assert!(!name.contains([' ', ',', '*', '?', '!', '@', '#', '&', ':']));
                prop_assert!(!name.chars().any(|c| c.is_control() || c.is_whitespace()));
                prop_assert_eq!(nick(&name), Ok(name.clone()));
                prop_assert_eq!(fold(&fold(&name)), fold(&name));
            }
        }

        /// Two accepted Latin/Cyrillic names that differ only by look-alike letters never both
        /// pass: either the mix is refused or the skeletons are equal.
        #[test]
        fn cyrillic_look_alike_letters_never_pass_beside_latin(
            s in "[aceopxy]{1,6}",
            at in 0usize..6,
        ) {
            let swapped: String = s
                .chars()
                .enumerate()
                .map(|(i, c)| if i == at % s.len() { to_cyrillic(c) } else { c })
                .collect();
            if let Ok(other) = nick(&swapped) {
                prop_assert_eq!(skeleton(&other), skeleton(&s));
            }
        }
    }

    /// The Cyrillic look-alike of a Latin letter.
    fn to_cyrillic(c: char) -> char {
        match c {
            'a' => 'а',
            'c' => 'с',
            'e' => 'е',
            'o' => 'о',
            'p' => 'р',
            'x' => 'х',
            'y' => 'у',
            other => other,
        }
    }
}
