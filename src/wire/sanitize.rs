//! Text sanitizer for chat lines. It removes control characters, terminal escape sequences and
//! bidirectional overrides, because every line one user sends is written verbatim to the
//! terminals of the others, where such characters could move the cursor, retitle the window,
//! hide text or make a line read differently from what it says.
//!
//! Text must also read as what it is. Unicode spaces (no-break, em, ideographic...) become plain
//! spaces and invisible format characters (zero-width space, word joiner, BOM, soft hyphen...)
//! are dropped, so that `left<NBSP>(...)` cannot slip past the `/me` guard and still look like
//! `left (...)`; the zero-width joiner stays, because emoji sequences need it (the guard ignores
//! it instead). Characters that merely look blank without being spaces (the braille blank U+2800,
//! the Hangul fillers) count as spaces too, so they cannot dodge the `/me` guard or the cap on
//! runs of spaces. Variation selectors and tag characters are kept only where they modify
//! something (after a visible character; tags after the black flag U+1F3F4 of subdivision flags),
//! and dropped where they would stand alone, invisible, e.g. in front of a word. Runs of more than [`MAX_SPACES`] spaces are shortened to that many, so padding
//! cannot push text onto a row of its own on the reader's terminal, where it could pass for a
//! server line.
//!
//! Tabs become spaces; every other character that could act on a terminal is dropped, and escape
//! sequences are dropped together with their parameters. Everything else, including U+FFFD, emoji
//! and CJK text, passes through unchanged. Nothing is trimmed: what counts as an empty line is the
//! caller's decision.
//!
//! The sequence parser follows the state machine of DEC-style terminals closely enough to remove
//! what a terminal would consume: an ESC (or an 8-bit introducer) inside a sequence abandons that
//! sequence and starts a new one, CAN and SUB abandon it, and a sequence still open when the input
//! ends is removed up to the end. Output never contains ESC or a C1 control, so no sequence can
//! survive, and `sanitize` is idempotent.

/// Escape (U+001B), which starts every 7-bit escape sequence.
const ESC: char = '\u{1b}';
/// Bell (U+0007), which terminates an OSC or other control string.
const BEL: char = '\u{07}';
/// Cancel (U+0018), which abandons a sequence in progress.
const CAN: char = '\u{18}';
/// Substitute (U+001A), which abandons a sequence in progress.
const SUB: char = '\u{1a}';
/// The 8-bit String Terminator (U+009C).
const ST: char = '\u{9c}';

/// Where the parser is within an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain text: characters are kept unless forbidden.
    Ground,
    /// After ESC, before any intermediate byte.
    Escape,
    /// After ESC and at least one intermediate byte (0x20..=0x2F).
    EscapeIntermediate,
    /// Inside a control sequence, waiting for a final byte (0x40..=0x7E).
    Csi,
    /// Inside an OSC, DCS, SOS, PM or APC string, waiting for BEL or ST.
    String,
}

/// Longest run of spaces kept in a line. Not configurable: enough for any alignment in prose,
/// far too few to fill a terminal row.
pub const MAX_SPACES: usize = 3;

/// Returns `input` with tabs and Unicode spaces turned into spaces, runs of spaces shortened to
/// [`MAX_SPACES`], and every control character, escape sequence, bidirectional formatting
/// character and invisible format character removed.
pub fn sanitize(input: &str) -> String {
    // Most lines are plain text, so scan once and copy without re-encoding them char by char.
    if is_clean(input) {
        return input.to_owned();
    }
    let mut out = String::with_capacity(input.len());
    let mut state = State::Ground;
    for c in input.chars() {
        state = step(state, c, &mut out);
    }
    if has_long_space_run(&out) {
        out = collapse_spaces(&out);
    }
    out
}

/// Returns true if `s` contains nothing that [`sanitize`] would change or remove.
pub fn is_clean(s: &str) -> bool {
    let mut prev = None;
    s.chars().all(|c| {
        let kept = is_plain(c) || (is_modifier(c) && attaches(prev, c));
        prev = Some(c);
        kept
    }) && !has_long_space_run(s)
}

fn has_long_space_run(s: &str) -> bool {
    s.as_bytes()
        .windows(MAX_SPACES + 1)
        .any(|w| w.iter().all(|&b| b == b' '))
}

fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut run = 0;
    for c in s.chars() {
        run = if c == ' ' { run + 1 } else { 0 };
        if run <= MAX_SPACES {
            out.push(c);
        }
    }
    out
}

/// Returns true for characters that are kept as they are, wherever they stand, when outside an
/// escape sequence.
fn is_plain(c: char) -> bool {
    !is_control(c) && !is_bidi(c) && !is_invisible(c) && !is_unicode_space(c) && !is_modifier(c)
}

/// Spaces other than U+0020, and characters a terminal shows as a blank cell (the braille blank,
/// the Hangul fillers): they become a plain space.
fn is_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\u{a0}' | '\u{115f}' | '\u{1160}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{2800}'
                | '\u{3000}'
                | '\u{3164}'
                | '\u{ffa0}'
    )
}

/// Invisible characters that modify the one before them: variation selectors (emoji or text
/// presentation, CJK variants) and tag characters (subdivision flags).
fn is_modifier(c: char) -> bool {
    is_selector(c) || is_tag(c)
}

fn is_selector(c: char) -> bool {
    matches!(c, '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}')
}

fn is_tag(c: char) -> bool {
    matches!(c, '\u{e0000}'..='\u{e007f}')
}

/// Whether modifier `c` modifies `prev`, the character kept before it. A selector needs a visible
/// character to act on; tags only ever follow the black flag (U+1F3F4) or other tags. Anywhere
/// else they show as nothing and are dropped.
fn attaches(prev: Option<char>, c: char) -> bool {
    match prev {
        None => false,
        Some(p) if is_tag(c) => p == '\u{1f3f4}' || is_tag(p),
        Some(p) => p != ' ' && !is_modifier(p),
    }
}

/// Format characters that show as nothing (zero-width space and non-joiner, marks, word joiner
/// and invisible operators, BOM, soft hyphen...): dropped. The zero-width joiner
/// (U+200D) is not among them: emoji sequences need it.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180e}'
            | '\u{200b}'
            | '\u{200c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206a}'..='\u{206f}'
            | '\u{feff}'
    )
}

/// Returns true for C0 controls (including tab), DEL and C1 controls.
fn is_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// Returns true for bidirectional embeddings, overrides and isolates.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Returns the state an 8-bit C1 introducer starts, if `c` is one.
fn c1_introducer(c: char) -> Option<State> {
    match c {
        '\u{9b}' => Some(State::Csi),
        '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => Some(State::String),
        _ => None,
    }
}

/// Feeds one character to the parser, appending it to `out` if it is kept, and returns the next
/// state.
fn step(state: State, c: char, out: &mut String) -> State {
    // These transitions apply in every state, as they do in a terminal's parser.
    if c == ESC {
        return State::Escape;
    }
    if let Some(next) = c1_introducer(c) {
        return next;
    }
    if c == CAN || c == SUB {
        return State::Ground;
    }
    match state {
        State::Ground => {
            if c == '\t' || is_unicode_space(c) {
                out.push(' ');
            } else if is_plain(c) || (is_modifier(c) && attaches(out.chars().next_back(), c)) {
                out.push(c);
            }
            State::Ground
        }
        State::Escape => match c {
            '[' => State::Csi,
            ']' | 'P' | 'X' | '^' | '_' => State::String,
            '\u{20}'..='\u{2f}' => State::EscapeIntermediate,
            // Other controls are executed by a terminal without ending the sequence; we drop them.
            _ if is_control(c) => State::Escape,
            // Any other character is the final one and ends the sequence.
            _ => State::Ground,
        },
        State::EscapeIntermediate => match c {
            '\u{20}'..='\u{2f}' => State::EscapeIntermediate,
            _ if is_control(c) => State::EscapeIntermediate,
            _ => State::Ground,
        },
        State::Csi => match c {
            '\u{40}'..='\u{7e}' => State::Ground,
            // Parameters, intermediates, controls and anything else stay inside the sequence.
            _ => State::Csi,
        },
        State::String => match c {
            // ESC `\` (the 7-bit ST) arrives here as ESC, handled above, then `\` as a final.
            BEL | ST => State::Ground,
            _ => State::String,
        },
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Plain text, emoji, CJK and U+FFFD pass through unchanged.
    #[test]
    fn keeps_plain_text() {
        for s in [
            "",
            "hello, world",
            "  spaced  ",
            "héllo wörld",
            "日本語のテキスト",
            "emoji 🎉👍🏽 and ZWJ 👨‍👩‍👧",
            "replacement \u{fffd} char",
            "[brackets] and \\backslash\\ ~",
        ] {
            assert_eq!(sanitize(s), s);
            assert!(is_clean(s));
        }
    }

    /// A tab becomes a single space.
    #[test]
    fn unicode_spaces_become_spaces_and_invisibles_go() {
        assert_eq!(sanitize("left\u{a0}(x)"), "left (x)");
        assert_eq!(sanitize("is\u{2003}now"), "is now");
        assert_eq!(sanitize("joi\u{200b}ned\u{2060}\u{feff}"), "joined");
        assert_eq!(sanitize("soft\u{ad}hyphen"), "softhyphen");
        // The zero-width joiner holds emoji sequences together.
        assert_eq!(
            sanitize("\u{1f468}\u{200d}\u{1f469}"),
            "\u{1f468}\u{200d}\u{1f469}"
        );
    }

    /// Blank-looking characters are spaces; selectors and tags stay only where they modify.
    #[test]
    fn blank_lookalikes_and_stray_modifiers() {
        assert_eq!(sanitize("is\u{2800}now"), "is now");
        assert_eq!(
            sanitize("a\u{3164}b\u{115f}c\u{1160}d\u{ffa0}e"),
            "a b c d e"
        );
        assert_eq!(sanitize(&format!("a{}b", "\u{2800}".repeat(70))), "a   b");
        assert_eq!(sanitize("\u{e0100}joined"), "joined");
        assert_eq!(sanitize("\u{e0020}left"), "left");
        assert_eq!(sanitize("\u{fe0f}left"), "left");
        assert_eq!(sanitize("a \u{fe0f}b"), "a b");
        // A heart with emoji presentation, a CJK variant, and the flag of Scotland keep theirs.
        for kept in [
            "\u{2764}\u{fe0f}",
            "\u{845b}\u{e0100}",
            "\u{1f3f4}\u{e0067}\u{e0062}\u{e0073}\u{e0063}\u{e0074}\u{e007f}",
        ] {
            assert_eq!(sanitize(kept), kept);
            assert!(is_clean(kept));
        }
        assert!(!is_clean("\u{e0020}x"));
        assert!(!is_clean("x\u{2800}"));
    }

    #[test]
    fn long_space_runs_are_shortened() {
        assert_eq!(sanitize("a   b"), "a   b");
        assert_eq!(sanitize(&format!("a{}b", " ".repeat(71))), "a   b");
        assert_eq!(sanitize("a\t\t\t\t\tb"), "a   b");
        assert_eq!(sanitize("a \u{a0} \u{3000} b"), "a   b");
    }

    #[test]
    fn tab_becomes_space() {
        assert_eq!(sanitize("a\tb\t"), "a b ");
    }

    /// Every C0 control other than tab, and DEL, is removed.
    #[test]
    fn removes_c0_and_del() {
        for c in ('\u{0}'..='\u{1f}').chain(['\u{7f}']) {
            if c == '\t' || c == ESC || c == CAN || c == SUB {
                continue;
            }
            let s = format!("a{c}b");
            assert_eq!(sanitize(&s), "ab", "{:?}", c);
        }
        assert_eq!(sanitize("bell\u{7}\r\n\u{0}"), "bell");
        assert_eq!(sanitize("a\u{18}b\u{1a}c"), "abc");
    }

    /// C1 controls that do not start a sequence are removed.
    #[test]
    fn removes_c1() {
        for c in '\u{80}'..='\u{9f}' {
            if c1_introducer(c).is_some() {
                continue;
            }
            let s = format!("a{c}b");
            assert_eq!(sanitize(&s), "ab", "{:?}", c);
        }
    }

    /// CSI sequences are removed with their parameters and intermediates.
    #[test]
    fn removes_csi() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m"), "red");
        assert_eq!(sanitize("a\u{1b}[2J\u{1b}[1;1Hb"), "ab");
        assert_eq!(sanitize("x\u{1b}[?1049hy"), "xy");
        assert_eq!(sanitize("x\u{1b}[38;5;196;1 qy"), "xy");
        assert_eq!(sanitize("\u{9b}31mred"), "red");
    }

    /// OSC strings are removed up to BEL or ST.
    #[test]
    fn removes_osc() {
        assert_eq!(sanitize("a\u{1b}]0;evil title\u{7}b"), "ab");
        assert_eq!(
            sanitize("a\u{1b}]8;;http://x\u{1b}\\link\u{1b}]8;;\u{1b}\\b"),
            "alinkb"
        );
        assert_eq!(sanitize("a\u{9d}0;t\u{9c}b"), "ab");
        assert_eq!(sanitize("a\u{9d}0;t\u{7}b"), "ab");
    }

    /// DCS, SOS, PM and APC strings are removed up to ST or BEL, in 7-bit and 8-bit forms.
    #[test]
    fn removes_dcs_sos_pm_apc() {
        for intro in ["\u{1b}P", "\u{1b}X", "\u{1b}^", "\u{1b}_"] {
            assert_eq!(sanitize(&format!("a{intro}1;2|payload\u{1b}\\b")), "ab");
            assert_eq!(sanitize(&format!("a{intro}payload\u{7}b")), "ab");
        }
        for intro in ['\u{90}', '\u{98}', '\u{9e}', '\u{9f}'] {
            assert_eq!(sanitize(&format!("a{intro}payload\u{9c}b")), "ab");
            assert_eq!(sanitize(&format!("a{intro}payload\u{1b}\\b")), "ab");
        }
    }

    /// Other escape sequences lose ESC, their intermediates and one final character.
    #[test]
    fn removes_other_escapes() {
        assert_eq!(sanitize("a\u{1b}cb"), "ab");
        assert_eq!(sanitize("a\u{1b}(0b"), "ab");
        assert_eq!(sanitize("a\u{1b}#8b"), "ab");
        assert_eq!(sanitize("a\u{1b} !%Gb"), "ab");
        assert_eq!(sanitize("a\u{1b}7b\u{1b}8"), "ab");
        assert_eq!(sanitize("a\u{1b}éb"), "ab");
    }

    /// A lone ESC at the end, or any unterminated sequence, is removed up to the end.
    #[test]
    fn removes_unterminated() {
        assert_eq!(sanitize("abc\u{1b}"), "abc");
        assert_eq!(sanitize("abc\u{1b}("), "abc");
        assert_eq!(sanitize("abc\u{1b}[12;3"), "abc");
        assert_eq!(sanitize("abc\u{1b}]0;title never ends"), "abc");
        assert_eq!(sanitize("abc\u{1b}Pdcs"), "abc");
        assert_eq!(sanitize("abc\u{9b}1;2"), "abc");
    }

    /// ESC, CAN and SUB inside a sequence abandon it, as they do in a terminal.
    #[test]
    fn restarts_and_aborts() {
        assert_eq!(sanitize("\u{1b}[1\u{1b}[31mhi"), "hi");
        assert_eq!(sanitize("\u{1b}[12\u{18}hi"), "hi");
        assert_eq!(sanitize("\u{1b}]0;t\u{1a}hi"), "hi");
        assert_eq!(sanitize("\u{1b}]0;t\u{1b}[0mhi"), "hi");
        // Controls inside a CSI are dropped without ending it.
        assert_eq!(sanitize("\u{1b}[1\r2mhi"), "hi");
    }

    /// Bidirectional embeddings, overrides and isolates are removed.
    #[test]
    fn removes_bidi() {
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            let s = format!("a{c}b");
            assert_eq!(sanitize(&s), "ab", "{:?}", c);
            assert!(!is_clean(&s));
        }
        // The invisible direction marks go too (they are invisible); an unassigned neighbour
        // stays.
        assert_eq!(sanitize("a\u{200e}\u{200f}\u{2065}b"), "a\u{2065}b");
    }

    /// Nothing is trimmed, so whitespace-only results reach the caller.
    #[test]
    fn does_not_trim() {
        assert_eq!(sanitize("  \u{1b}[0m "), "   ");
        assert_eq!(sanitize("\t"), " ");
        assert_eq!(sanitize("\u{1b}[0m"), "");
    }

    /// `is_clean` rejects every forbidden character.
    #[test]
    fn is_clean_rejects_forbidden() {
        assert!(!is_clean("\t"));
        assert!(!is_clean("\u{1b}"));
        assert!(!is_clean("\u{7f}"));
        assert!(!is_clean("\u{85}"));
        assert!(!is_clean("\u{2067}"));
        assert!(!is_clean("\u{a0}"));
        assert!(!is_clean("\u{ad}"));
        assert!(!is_clean("a    b"));
        assert!(is_clean("a   b \u{200d}"));
    }

    /// Characters that make up escape sequences, in proportions that build many of them.
    fn biased_char() -> impl Strategy<Value = char> {
        prop_oneof![
            4 => prop::sample::select(vec![
                ESC, '[', ']', BEL, '\\', ';', '0', '1', '9', 'm', 'P', 'X', '^', '_', '(', ' ',
                '\t', CAN, SUB, '\u{7f}', '\u{90}', '\u{98}', '\u{9b}', '\u{9c}', '\u{9d}',
                '\u{9e}', '\u{9f}', '\u{85}', '\u{202e}', '\u{2066}', '\u{2069}', 'a', 'é', '🎉',
                '\u{fe0f}', '\u{e0100}', '\u{e0067}', '\u{1f3f4}', '\u{2800}',
            ]),
            1 => any::<char>(),
        ]
    }

    proptest! {
        /// Output of arbitrary strings is clean and sanitizing again changes nothing.
        #[test]
        fn arbitrary_is_clean_and_idempotent(s in any::<String>()) {
            let once = sanitize(&s);
            prop_assert!(is_clean(&once));
            prop_assert_eq!(sanitize(&once), once);
        }

        /// Output of escape-heavy strings is clean and sanitizing again changes nothing.
        #[test]
        fn biased_is_clean_and_idempotent(chars in prop::collection::vec(biased_char(), 0..64)) {
            let s: String = chars.into_iter().collect();
            let once = sanitize(&s);
            prop_assert!(is_clean(&once));
            prop_assert_eq!(sanitize(&once), once);
        }

        /// Clean strings come back unchanged.
        #[test]
        fn clean_is_unchanged(s in any::<String>()) {
            let clean: String = s.chars().filter(|&c| is_plain(c)).collect();
            prop_assert_eq!(sanitize(&clean), clean);
        }
    }
}
