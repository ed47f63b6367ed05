//! IRCv3 message tags: the `@key=value;...` section in front of a message.
//!
//! Values are escaped on the wire (`\:` for `;`, `\s` for a space, `\\`, `\r`, `\n`), because a
//! raw `;` would end the tag and a raw space would end the whole tag section. [`escape_into`] and
//! [`unescape`] are exact inverses for every string ([`unescape`] also accepts the sloppy forms
//! the specification tells receivers to tolerate: an unknown escape drops its backslash, a
//! trailing lone backslash is dropped).
//!
//! Tags a client sends are only relayed when they are *client-only* (`+` prefix): anything else
//! would let a client forge the server's own tags, such as `account` or `time`
//! ([`Tags::client_only`]).

use std::borrow::Cow;

/// The most bytes of tag data (between the `@` and the space) a client may send; more is
/// answered with `417 ERR_INPUTTOOLONG`. Not configurable: fixed by the message-tags
/// specification ("Clients MUST NOT send messages with tag data exceeding 4094 bytes").
pub const MAX_CLIENT_TAG_DATA: usize = 4094;

/// The most bytes of tag data the server adds to a message (the specification's limit for
/// servers). Not configurable.
pub const MAX_SERVER_TAG_DATA: usize = 4094;

/// The whole tag section of a line the server sends, `@` and the final space included: the
/// server's tags, a `;` and the relayed client-only tags. Not configurable (message-tags).
pub const MAX_TAG_SECTION: usize = 8191;

/// The tag section of a received message, without its `@` and final space. Borrowed from the
/// line; values stay escaped until asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tags<'a> {
    raw: &'a str,
}

impl<'a> Tags<'a> {
    /// Wraps the raw tag data (what follows the `@`, up to the first space).
    pub fn new(raw: &'a str) -> Tags<'a> {
        Tags { raw }
    }

    /// No tags were sent.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The raw, escaped tag data.
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Every well-formed tag as `(key, escaped value)`, in the order sent; malformed keys are
    /// skipped. A tag without `=` has the empty value.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.raw
            .split(';')
            .map(|tag| tag.split_once('=').unwrap_or((tag, "")))
            .filter(|(key, _)| valid_key(key))
    }

    /// The unescaped value of `key`; the last one wins when a key is repeated.
    pub fn get(&self, key: &str) -> Option<Cow<'a, str>> {
        self.iter()
            .filter(|(k, _)| *k == key)
            .last()
            .map(|(_, v)| unescape(v))
    }

    /// The client-only tags (`+key`), re-escaped canonically and joined with `;`, ready to be
    /// relayed to recipients that negotiated `message-tags`. Repeated keys keep their last
    /// value. Empty when there are none.
    pub fn client_only(&self) -> String {
        let tags: Vec<(&str, &str)> = self.iter().filter(|(k, _)| k.starts_with('+')).collect();
        let mut out = String::new();
        for (i, (key, value)) in tags.iter().enumerate() {
            if tags[i + 1..].iter().any(|(later, _)| later == key) {
                continue;
            }
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(key);
            let value = unescape(value);
            if !value.is_empty() {
                out.push('=');
                escape_into(&mut out, &value);
            }
        }
        out
    }
}

/// Whether `key` is a well-formed tag key: an optional `+`, an optional vendor (a host name)
/// and `/`, then one or more letters, digits or `-`.
pub fn valid_key(key: &str) -> bool {
    let key = key.strip_prefix('+').unwrap_or(key);
    let (vendor, name) = match key.rsplit_once('/') {
        Some((vendor, name)) => (Some(vendor), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let vendor_ok = vendor.is_none_or(|v| {
        !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
    });
    name_ok && vendor_ok
}

/// Appends `value` to `out`, escaped for a tag value.
pub fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `value` escaped for a tag value.
pub fn escape(value: &str) -> Cow<'_, str> {
    if value.contains([';', ' ', '\\', '\r', '\n']) {
        let mut out = String::with_capacity(value.len() + 8);
        escape_into(&mut out, value);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(value)
    }
}

/// The value of an escaped tag value.
pub fn unescape(value: &str) -> Cow<'_, str> {
    if !value.contains('\\') {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            // `\\`, and any other escaped character, stands for itself.
            Some(other) => out.push(other),
            // A lone backslash at the end is dropped.
            None => {}
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_the_five_special_characters() {
        assert_eq!(escape("a;b c\\d\re\nf"), "a\\:b\\sc\\\\d\\re\\nf");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn unescapes_the_tolerated_sloppy_forms() {
        assert_eq!(unescape("fizz\\:buzz"), "fizz;buzz");
        assert_eq!(unescape("a\\b"), "ab");
        assert_eq!(unescape("trailing\\"), "trailing");
        assert_eq!(unescape("\\\\s"), "\\s");
    }

    #[test]
    fn get_returns_the_last_value_of_a_repeated_key() {
        let tags = Tags::new("a=1;b;a=2;c=");
        assert_eq!(tags.get("a").as_deref(), Some("2"));
        assert_eq!(tags.get("b").as_deref(), Some(""));
        assert_eq!(tags.get("c").as_deref(), Some(""));
        assert_eq!(tags.get("d"), None);
    }

    /// irctest message_tags: `+buzz=fizz\:buzz;cat=dog;+steel=wootz` relays only the two `+`
    /// tags, with the value unescaped to `fizz;buzz` on the other side.
    #[test]
    fn client_only_keeps_plus_tags_and_drops_the_rest() {
        let tags = Tags::new("+buzz=fizz\\:buzz;cat=dog;+steel=wootz");
        let relayed = tags.client_only();
        assert_eq!(relayed, "+buzz=fizz\\:buzz;+steel=wootz");
        assert_eq!(
            Tags::new(&relayed).get("+buzz").as_deref(),
            Some("fizz;buzz")
        );
        assert_eq!(Tags::new("+a=1;+a=2").client_only(), "+a=2");
        assert_eq!(Tags::new("time=x;account=y").client_only(), "");
        assert_eq!(
            Tags::new("+example.com/x=1;+bad key=1").client_only(),
            "+example.com/x=1"
        );
    }

    #[test]
    fn keys_follow_the_grammar() {
        for ok in [
            "a",
            "+a",
            "draft/chathistory",
            "+example.com/foo-bar",
            "msgid",
        ] {
            assert!(valid_key(ok), "{ok}");
        }
        for bad in ["", "+", "/a", "a/", "a b", "a_b", "é"] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn unescape_inverts_escape(s in "\\PC*|[;\\\\ \r\nsa:]*") {
            let escaped = escape(&s);
            prop_assert_eq!(unescape(&escaped), s.as_str());
        }

        #[test]
        fn escaped_values_never_break_the_tag_section(s in ".*") {
            let e = escape(&s);
            prop_assert!(!e.contains([';', ' ', '\r', '\n']));
        }
    }
}
