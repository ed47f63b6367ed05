//! What a user may search for, parsed once at the edge into a [`SearchQuery`] that can only
//! render as a safe FTS5 expression.
//!
//! Why not pass the text to FTS5: its query language has operators (`AND`, `NEAR`, `^`, column
//! filters) and syntax errors, so raw input could fail with an SQL error or search columns and
//! rooms it should not. Here every word and phrase becomes a quoted FTS5 string (a quote inside
//! is doubled, though the parser never lets one through), optionally followed by `*` for a
//! prefix; terms are ANDed. Anything else is refused with a reason a user can act on.

use std::fmt;

/// Most words and phrases in one search: enough for any real question, and a bound on how many
/// posting lists one search merges.
pub const MAX_TERMS: usize = 8;

/// Fewest letters or digits before a `*`: `r*` would merge the lists of every word starting
/// with r, which is most of the index.
pub const MIN_PREFIX: usize = 2;

/// One word or quoted phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    text: String,
    phrase: bool,
    prefix: bool,
}

/// A validated search: 1 to [`MAX_TERMS`] words or phrases, all of which must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    terms: Vec<Term>,
}

/// Why a search was refused. Each renders as one line for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// Nothing with a letter or digit to look for.
    Empty,
    /// A `"` without its closing `"`.
    UnclosedQuote,
    /// A `*` anywhere but at the end of a word or phrase.
    MisplacedStar,
    /// A prefix shorter than [`MIN_PREFIX`].
    ShortPrefix,
    TooManyTerms,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Empty => write!(
                f,
                "nothing to search for: give a word with letters or digits"
            ),
            QueryError::UnclosedQuote => write!(
                f,
                "a quote is not closed: put a phrase between two quotes, as in \"exact words\""
            ),
            QueryError::MisplacedStar => write!(
                f,
                "* goes only at the end of a word, for words that start with it, as in rust*"
            ),
            QueryError::ShortPrefix => write!(
                f,
                "a word ending in * needs at least {MIN_PREFIX} letters or digits before the *"
            ),
            QueryError::TooManyTerms => write!(f, "at most {MAX_TERMS} words or phrases"),
        }
    }
}

impl SearchQuery {
    /// Parses what a user typed after `/search`: words, `"exact phrases"`, and a trailing `*`
    /// on either for a prefix (`rust*`, `"hello wor"*`).
    pub fn parse(text: &str) -> Result<SearchQuery, QueryError> {
        let mut terms = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else {
                break;
            };
            let (text, phrase) = if first == '"' {
                chars.next();
                let mut inner = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => inner.push(c),
                        None => return Err(QueryError::UnclosedQuote),
                    }
                }
                (inner, true)
            } else {
                let mut word = String::new();
                while let Some(c) = chars.next_if(|&c| !c.is_whitespace() && c != '"') {
                    word.push(c);
                }
                (word, false)
            };
            let mut prefix = chars.next_if_eq(&'*').is_some();
            let mut text = text;
            if !phrase && text.ends_with('*') {
                text.pop();
                prefix = true;
            }
            if text.contains('*') && !phrase || chars.peek() == Some(&'*') {
                return Err(QueryError::MisplacedStar);
            }
            if !text.chars().any(char::is_alphanumeric) {
                if prefix {
                    return Err(QueryError::ShortPrefix);
                }
                // Punctuation alone has no words to find: skip it, like the index does.
                continue;
            }
            if prefix && last_word_len(&text) < MIN_PREFIX {
                return Err(QueryError::ShortPrefix);
            }
            terms.push(Term {
                text,
                phrase,
                prefix,
            });
            if terms.len() > MAX_TERMS {
                return Err(QueryError::TooManyTerms);
            }
        }
        if terms.is_empty() {
            return Err(QueryError::Empty);
        }
        Ok(SearchQuery { terms })
    }

    /// The FTS5 expression: each term a quoted string, `*` after a prefix, terms ANDed.
    pub(super) fn to_fts(&self) -> String {
        let mut out = String::new();
        for (n, term) in self.terms.iter().enumerate() {
            if n > 0 {
                out.push(' ');
            }
            out.push('"');
            out.push_str(&term.text.replace('"', "\"\""));
            out.push('"');
            if term.prefix {
                out.push('*');
            }
        }
        out
    }
}

/// The query as the user will recognise it: `rust* "exact words"`.
impl fmt::Display for SearchQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, term) in self.terms.iter().enumerate() {
            if n > 0 {
                f.write_str(" ")?;
            }
            if term.phrase {
                write!(f, "\"{}\"", term.text)?;
            } else {
                f.write_str(&term.text)?;
            }
            if term.prefix {
                f.write_str("*")?;
            }
        }
        Ok(())
    }
}

/// Letters and digits in the last word of `text`: what a `*` extends.
fn last_word_len(text: &str) -> usize {
    text.chars()
        .rev()
        .skip_while(|c| !c.is_alphanumeric())
        .take_while(|c| c.is_alphanumeric())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fts(text: &str) -> String {
        SearchQuery::parse(text).unwrap().to_fts()
    }

    /// Words become quoted strings, all of which must match.
    #[test]
    fn words_are_quoted_and_anded() {
        assert_eq!(fts("rust"), r#""rust""#);
        assert_eq!(fts("  hello   world "), r#""hello" "world""#);
        assert_eq!(fts("c++ rocks"), r#""c++" "rocks""#);
    }

    /// A trailing `*` makes a prefix, of a word or of a phrase's last word.
    #[test]
    fn prefixes() {
        assert_eq!(fts("rust*"), r#""rust"*"#);
        assert_eq!(fts(r#""hello wor"*"#), r#""hello wor"*"#);
        assert_eq!(fts("ru* async"), r#""ru"* "async""#);
    }

    /// Quotes make a phrase; FTS5 operators inside or outside are only words.
    #[test]
    fn phrases_and_operators_are_literal() {
        assert_eq!(fts(r#""exact words""#), r#""exact words""#);
        assert_eq!(fts("a OR b NOT c"), r#""a" "OR" "b" "NOT" "c""#);
        assert_eq!(
            fts("body:secret ^start NEAR(a b)"),
            r#""body:secret" "^start" "NEAR(a" "b)""#
        );
        assert_eq!(fts(r#"say"hi""#), r#""say" "hi""#);
    }

    /// Punctuation alone is skipped; nothing left is an error.
    #[test]
    fn nothing_to_search_is_refused() {
        assert_eq!(fts("!!! rust ..."), r#""rust""#);
        for empty in ["", "   ", "!!!", r#""""#, r#"" ""#, "- ."] {
            assert_eq!(
                SearchQuery::parse(empty),
                Err(QueryError::Empty),
                "{empty:?}"
            );
        }
    }

    /// Malformed queries get a reason, never a query.
    #[test]
    fn malformed_queries_are_refused() {
        let cases = [
            (r#""unclosed phrase"#, QueryError::UnclosedQuote),
            (r#"ok "also unclosed"#, QueryError::UnclosedQuote),
            ("ru*st", QueryError::MisplacedStar),
            ("*rust", QueryError::MisplacedStar),
            ("rust**", QueryError::MisplacedStar),
            (r#""a b"**"#, QueryError::MisplacedStar),
            ("r*", QueryError::ShortPrefix),
            ("*", QueryError::ShortPrefix),
            ("foo-b*", QueryError::ShortPrefix),
            ("a b c d e f g h i", QueryError::TooManyTerms),
        ];
        for (text, error) in cases {
            assert_eq!(SearchQuery::parse(text), Err(error), "{text:?}");
        }
        assert!(SearchQuery::parse("a b c d e f g h").is_ok());
    }

    /// What the user sees echoed is what was searched.
    #[test]
    fn display_reads_like_the_input() {
        let query = SearchQuery::parse(r#"  rust*   "exact  words"  x "#).unwrap();
        assert_eq!(query.to_string(), r#"rust* "exact  words" x"#);
    }

    /// Whatever a user types, the expression is only quoted strings, each with an optional
    /// `*`: there is nothing FTS5 could read as an operator or a column.
    fn only_quoted_strings(expr: &str) -> bool {
        let mut rest = expr;
        loop {
            let Some(inner) = rest.strip_prefix('"') else {
                return false;
            };
            // Find the closing quote, skipping doubled ones.
            let mut end = None;
            let bytes = inner.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'"' {
                    if bytes.get(i + 1) == Some(&b'"') {
                        i += 2;
                        continue;
                    }
                    end = Some(i);
                    break;
                }
                i += 1;
            }
            let Some(end) = end else { return false };
            rest = &inner[end + 1..];
            rest = rest.strip_prefix('*').unwrap_or(rest);
            if rest.is_empty() {
                return true;
            }
            match rest.strip_prefix(' ') {
                Some(next) => rest = next,
                None => return false,
            }
        }
    }

    proptest! {
        #[test]
        fn any_input_is_refused_or_quoted(text in r#"[a-z "*():^\-+.]{0,40}|\PC{0,40}"#) {
            if let Ok(query) = SearchQuery::parse(&text) {
                let expr = query.to_fts();
                prop_assert!(only_quoted_strings(&expr), "{text:?} gave {expr:?}");
            }
        }
    }
}
