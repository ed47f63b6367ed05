//! The three forms of a name: as stored (normalized), as compared (case-folded), and as told
//! apart from look-alikes (the confusable skeleton).
//!
//! The forms follow PRECIS's UsernameCaseMapped profile (RFC 8265) and Unicode TR39, so that two
//! names that are the same to a reader are the same to the server: `Олена` and `олена` share a
//! [`fold`], `alice`, `aIice` and `ALICE` share a [`skeleton`], and so do the Latin `olena` and a
//! Cyrillic name spelled with look-alike letters. This module knows nothing of which characters
//! a name may hold (that is [`super::rules`]).

use unicode_normalization::UnicodeNormalization;

/// The name as stored and shown: fullwidth and halfwidth forms mapped to their ordinary width
/// (PRECIS's width mapping rule: `ｏｌｅｎａ` is `olena`, halfwidth `ｶﾞ` is `ガ`), then NFC, so
/// one spelling has one sequence of code points whatever the keyboard sent.
pub fn normalize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if is_width_form(c) {
            // The compatibility decomposition of these blocks is exactly their width mapping.
            out.extend(std::iter::once(c).nfkc());
        } else {
            out.push(c);
        }
    }
    if unicode_normalization::is_nfc(&out) {
        out
    } else {
        out.nfc().collect()
    }
}

/// The Halfwidth and Fullwidth Forms block.
fn is_width_form(c: char) -> bool {
    ('\u{ff00}'..='\u{ffef}').contains(&c)
}

/// The case-folded form, by which names are the same user (or room): Unicode lower case
/// (PRECIS's case mapping rule), with the Greek final sigma as an ordinary sigma, then NFC again.
/// For ASCII this is exactly ASCII lower case, so keys stored before names could be Unicode
/// stay valid.
pub fn fold(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    let lower: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect();
    lower.nfc().collect()
}

/// Pairs of letters that read as one letter, which TR39's character-by-character skeleton
/// cannot see.
const LETTER_PAIRS: [(&str, &str); 3] = [("rn", "m"), ("vv", "w"), ("cl", "d")];

/// The confusable skeleton, by which no two names may look alike: the [`fold`]ed name reduced to
/// its TR39 skeleton (`unicode-security`: Cyrillic `о` reads as `o`, `0` as `O`, `1` as `l`),
/// lower-cased again (TR39's prototypes are sometimes capitals), `i` read as `l`, and the
/// [`LETTER_PAIRS`] `rn`, `vv`, `cl` read as `m`, `w`, `d`.
///
/// `i` joins `l` because names are compared ignoring case: `I` is the classic look-alike of
/// `l`, and it folds to `i`. It makes `aiice` collide with `alice` too: a small price for a rule
/// with no case exceptions. The skeleton is stored (`accounts.skeleton`); a change here needs a
/// migration that recomputes it (see `storage::accounts::recompute_skeletons`).
pub fn skeleton(name: &str) -> String {
    let mut out: String = unicode_security::skeleton(&fold(name))
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'i' { 'l' } else { c })
        .collect();
    // TR39 maps one character at a time, so pairs of letters that read as one are joined here.
    for (pair, one) in LETTER_PAIRS {
        while out.contains(pair) {
            out = out.replace(pair, one);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn width_forms_and_nfc() {
        assert_eq!(normalize("ｏｌｅｎａ"), "olena");
        assert_eq!(normalize("ｶﾞｯ"), "ガッ");
        // `й` typed as `и` and a combining breve becomes the one precomposed character.
        assert_eq!(normalize("и\u{306}"), "й");
        assert_eq!(normalize("олена"), "олена");
    }

    #[test]
    fn fold_is_unicode_lower_case() {
        assert_eq!(fold("Олена"), "олена");
        assert_eq!(fold("ALICE"), "alice");
        assert_eq!(fold("ΟΔΥΣΣΕΥΣ"), fold("οδυσσευσ"));
        assert_eq!(fold("Ünal"), "ünal");
        assert_eq!(fold("本"), "本");
    }

    #[test]
    fn look_alikes_share_a_skeleton() {
        for (a, b) in [
            ("alice", "aIice"),
            ("alice", "a1ice"),
            ("alice", "ALICE"),
            ("mallory", "rnallory"),
            ("bob", "B0B"),
            ("wendy", "vvendy"),
            ("dave", "clave"),
            // Cyrillic о in front of Latin letters.
            ("olena", "оlena"),
            // Whole-script look-alikes: all Cyrillic, all Greek.
            ("pop", "рор"),
            ("server", "ѕеrvеr"),
        ] {
            assert_eq!(skeleton(a), skeleton(b), "{a} {b}");
        }
        assert_ne!(skeleton("alice"), skeleton("alice_"));
        assert_ne!(skeleton("bob"), skeleton("rob"));
        assert_ne!(skeleton("олена"), skeleton("olena"));
    }

    proptest! {
        /// Each form is stable: normalizing or folding twice changes nothing, and the skeleton
        /// of a name is the skeleton of its folded form.
        #[test]
        fn forms_are_stable(s in "\\PC{0,24}") {
            let n = normalize(&s);
            prop_assert_eq!(normalize(&n), n.clone());
            let f = fold(&n);
            prop_assert_eq!(fold(&f), f.clone());
            prop_assert_eq!(skeleton(&n), skeleton(&f));
        }
    }
}
