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
//!    or other punctuation; and no more than [`MAX_MARKS`] nonspacing marks in a row, nor one
//!    mark twice in a row (UTS #39 section 5.4: no Zalgo text);
//! 3. starts with a letter or digit (user names) or with anything but a combining mark (rooms);
//! 4. is at most UTS #39 "moderately restrictive" ([`RESTRICTION`]): one script, or Han with
//!    Hiragana and Katakana (Japanese), Han with Hangul (Korean), Han with Bopomofo, or Latin
//!    with any one of these or with one other Recommended script except Cyrillic and Greek; so a
//!    Latin name with a Cyrillic `о` is refused outright; and its decimal digits are all of one
//!    system (UTS #39 section 5.3: not `१` with `1`);
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
use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::fold::{fold, normalize, skeleton};
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

/// Most nonspacing combining marks in a row (rule 2), as UTS #39 section 5.4 suggests: enough
/// for the stacks real scripts write (Vietnamese, Thai, Devanagari, Tibetan), too few to pile
/// marks up over the rows above and below a name (Zalgo text). Not configurable.
pub const MAX_MARKS: usize = 4;

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
    // The folded form too: rooms are shown folded, and a few capitals fold to a letter that is
    // not allowed (Georgian `Ⴭ` to `ⴭ`), which would make a name that cannot be typed back.
    let folded = fold(&name);
    if let Some(c) = name.chars().chain(folded.chars()).find(|&c| !allowed(c)) {
        return Err(NameError::BadChar(c));
    }
    if marks_piled(&name) {
        return Err(NameError::PiledMarks);
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
    if let Some((a, b)) = mixed_digits(&name) {
        return Err(NameError::MixedDigits(a, b));
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

/// Rule 2's limit on marks, checked on the decomposed name (so `á` counts as `a` and U+0301):
/// more than [`MAX_MARKS`] nonspacing marks in a row, or one mark twice in a row. A nonspacing
/// mark is a combining mark that takes no terminal column (Mn and Me; not the spacing vowel
/// signs of Indic scripts, which are letters' parts a reader sees side by side).
fn marks_piled(name: &str) -> bool {
    let mut run = 0;
    let mut last = None;
    for c in name.nfd() {
        if is_combining_mark(c) && c.width() == Some(0) {
            run += 1;
            if run > MAX_MARKS || last == Some(c) {
                return true;
            }
            last = Some(c);
        } else {
            run = 0;
            last = None;
        }
    }
    false
}

/// Rule 4's digits (UTS #39 section 5.3): the first two decimal digits of the name that come
/// from different systems (`१` and `1`), if any.
fn mixed_digits(name: &str) -> Option<(char, char)> {
    let mut first: Option<(char, u32)> = None;
    for c in name.chars() {
        let Some(zero) = decimal_zero(c) else {
            continue;
        };
        match first {
            None => first = Some((c, zero)),
            Some((d, system)) if system != zero => return Some((d, c)),
            Some(_) => {}
        }
    }
    None
}

/// The code point of the zero of `c`'s decimal system, if `c` is a decimal digit.
///
/// Unicode encodes each system's digits together, zero to nine in order, and none of the
/// systems a name may hold (the 12 of Identifier_Status=Allowed) follows another numeric
/// character: so the zero is the first of the run of numeric characters `c` ends, and a
/// numeric character that does not start a run of ten (`〇`, the ideographic zero) is no
/// decimal digit. (The standard library has no General_Category and no digit values.)
fn decimal_zero(c: char) -> Option<u32> {
    let numeric = |p: u32| char::from_u32(p).is_some_and(char::is_numeric);
    let at = u32::from(c);
    if !numeric(at) {
        return None;
    }
    let zero = (at.saturating_sub(9)..at)
        .rev()
        .take_while(|&p| numeric(p))
        .last()
        .unwrap_or(at);
    (zero..zero + 10).all(numeric).then_some(zero)
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
            // Marks as scripts stack them: Vietnamese, Thai, Devanagari, Tibetan.
            "Nguyễn",
            "Thủy",
            "ที่นี่",
            "स्त्री",
            "བསྒྲུབས",
            "देव१२",
            "ไทย๑๒",
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
            ("\u{10cd}", BadChar('\u{2d2d}')),
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
            // Marks piled on a letter (Zalgo text): five in a row, or one mark twice, also
            // when the first is part of a precomposed letter (`á` is `a` and U+0301).
            ("za\u{300}\u{301}\u{302}\u{303}\u{304}", PiledMarks),
            ("za\u{301}\u{301}", PiledMarks),
            ("z\u{e1}\u{301}", PiledMarks),
            // Digits of two decimal systems (UTS #39 5.3): Devanagari `१` with ASCII `1`, Thai
            // `๑` with `1`, Arabic-Indic `١` with extended Arabic-Indic `۲`.
            ("देव१1", MixedDigits('१', '1')),
            ("ไทย๑1", MixedDigits('๑', '1')),
            ("علي١۲", MixedDigits('١', '۲')),
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

    /// Every digit a name may hold belongs to its system's run of ten, zero first: the systems
    /// are told apart exactly, and `〇` (a numeral, not a decimal digit) is in none.
    #[test]
    fn decimal_systems_of_allowed_digits() {
        let mut systems = Vec::new();
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if !(allowed(c) && c.is_numeric()) {
                continue;
            }
            match decimal_zero(c) {
                Some(zero) => {
                    assert!((zero..zero + 10).contains(&u32::from(c)), "{c}");
                    let zero = char::from_u32(zero).map(|z| allowed(z) && !z.is_alphabetic());
                    assert_eq!(zero, Some(true), "{c}");
                }
                None => assert_eq!(c, '〇'),
            }
            systems.extend(decimal_zero(c));
        }
        systems.dedup();
        assert_eq!(systems.len(), 12, "{systems:x?}");
        assert_eq!(decimal_zero('a'), None);
        assert_eq!(decimal_zero('7'), Some(0x30));
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
