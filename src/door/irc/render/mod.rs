//! The hub's events and replies as IRC lines.
//!
//! Relayed lines (a message, a join, a topic change) go to many recipients whose capabilities
//! differ only in which tags they get, and sometimes in one variant of the line
//! (`extended-join`). So [`relay`] renders each once into a [`Prepared`]: the body bytes and each
//! tag pre-escaped; a recipient's bytes are then a few copies ([`Prepared::write`]), never a
//! new formatting. Replies to one user (numerics, listings) are written straight into that
//! user's buffer by [`replies`] and [`welcome`], given a [`Ctx`].
//!
//! **Invariant:** every line written here fits the protocol: at most 512 bytes with CR LF
//! after the tags, and at most 8191 bytes of tags. Long text is split over several lines at
//! character boundaries (preferring spaces), never cut.

pub mod relay;
pub mod replies;
pub mod welcome;

use std::sync::Arc;

use crate::door::irc::caps::{Cap, CapSet};
use crate::door::irc::event::Origin;
use crate::door::irc::message::MAX_BODY;
use crate::door::irc::tags::escape_into;
use crate::door::irc::time;

/// Who a reply is for, and how to address it.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The server's name, the source of numerics.
    pub server: &'a str,
    /// The recipient's nick (`*` before it has one).
    pub client: &'a str,
    /// The recipient's capabilities.
    pub caps: CapSet,
}

/// `nick!user@host`.
pub fn mask(origin: &Origin) -> String {
    format!("{}!{}@{}", origin.nick, origin.user, origin.host)
}

/// A relayed line rendered once: its body (one or more lines) and its tags, ready to be copied
/// out for each recipient according to its capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// `time=...`, for `server-time` recipients.
    time: String,
    /// `msgid=...`, for `message-tags` recipients; on the first line only.
    msgid: Option<String>,
    /// `account=...`, for `account-tag` recipients.
    account: Option<String>,
    /// Client-only tags, for `message-tags` recipients.
    client_tags: Option<Arc<str>>,
    /// One or more complete lines, each ending in CR LF, without tags.
    body: Vec<u8>,
    /// Another body for recipients with this capability (`extended-join`).
    alt: Option<(Cap, Vec<u8>)>,
    /// Recipients without this capability get nothing (`away-notify`, `TAGMSG`).
    requires: Option<Cap>,
}

impl Prepared {
    /// A line at `at_ms` with `body` (complete lines, CR LF included).
    pub fn new(at_ms: i64, body: Vec<u8>) -> Prepared {
        Prepared {
            time: format!("time={}", time::format(at_ms)),
            msgid: None,
            account: None,
            client_tags: None,
            body,
            alt: None,
            requires: None,
        }
    }

    /// Adds the `msgid` tag.
    pub fn msgid(mut self, id: &str) -> Prepared {
        let mut tag = String::from("msgid=");
        escape_into(&mut tag, id);
        self.msgid = Some(tag);
        self
    }

    /// Adds the sender's `account` tag, when it has an account.
    pub fn account(mut self, origin: &Origin) -> Prepared {
        self.account = origin.account.as_deref().map(|a| {
            let mut tag = String::from("account=");
            escape_into(&mut tag, a);
            tag
        });
        self
    }

    /// Adds client-only tags (already escaped).
    pub fn client_tags(mut self, tags: Option<Arc<str>>) -> Prepared {
        self.client_tags = tags.filter(|t| !t.is_empty());
        self
    }

    /// Uses `body` instead for recipients with `cap`.
    pub fn alt(mut self, cap: Cap, body: Vec<u8>) -> Prepared {
        self.alt = Some((cap, body));
        self
    }

    /// Only recipients with `cap` get the line.
    pub fn requires(mut self, cap: Cap) -> Prepared {
        self.requires = Some(cap);
        self
    }

    /// Whether a recipient with `caps` gets anything.
    pub fn wanted_by(&self, caps: CapSet) -> bool {
        self.requires.is_none_or(|cap| caps.contains(cap))
    }

    /// Appends the line as a recipient with `caps` gets it.
    pub fn write(&self, caps: CapSet, out: &mut Vec<u8>) {
        self.write_with(caps, "", out);
    }

    /// Appends the line with one more tag (escaped): `batch=ID` inside a batch, `label=...`
    /// for the sender's echo.
    pub fn write_with(&self, caps: CapSet, extra: &str, out: &mut Vec<u8>) {
        if !self.wanted_by(caps) {
            return;
        }
        let body = match &self.alt {
            Some((cap, alt)) if caps.contains(*cap) => alt,
            _ => &self.body,
        };
        let tagged = caps.contains(Cap::MessageTags);
        let mut first = true;
        for line in body.split_inclusive(|&b| b == b'\n') {
            let tags = [
                Some(extra).filter(|e| !e.is_empty()),
                caps.contains(Cap::ServerTime).then_some(self.time.as_str()),
                self.msgid.as_deref().filter(|_| tagged && first),
                self.account
                    .as_deref()
                    .filter(|_| caps.contains(Cap::AccountTag)),
                self.client_tags.as_deref().filter(|_| tagged),
            ];
            let mut any = false;
            for tag in tags.into_iter().flatten() {
                out.push(if any { b';' } else { b'@' });
                out.extend_from_slice(tag.as_bytes());
                any = true;
            }
            if any {
                out.push(b' ');
            }
            out.extend_from_slice(line);
            first = false;
        }
    }
}

/// Splits `text` into pieces of at most `room` bytes, at character boundaries, preferring to
/// break after a space in the last quarter of a piece. Never returns an empty list; an empty
/// text is one empty piece.
pub fn split_text(text: &str, room: usize) -> Vec<&str> {
    let room = room.max(4);
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > room {
        let mut end = room;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if let Some(space) = rest[..end]
            .rfind(' ')
            .filter(|&s| s >= end - end / 4 && s > 0)
        {
            end = space + 1;
        }
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    pieces.push(rest);
    pieces
}

/// The bytes left for text in `:source COMMAND target :text` within one line.
pub fn room_for_text(source: &str, command: &str, target: &str) -> usize {
    MAX_BODY.saturating_sub(1 + source.len() + 1 + command.len() + 1 + target.len() + 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Nick;
    use proptest::prelude::*;

    fn origin(account: Option<&str>) -> Origin {
        Origin {
            nick: Nick::parse("alice").unwrap(),
            user: "~a".into(),
            host: "h".into(),
            account: account.map(Into::into),
        }
    }

    fn prepared() -> Prepared {
        Prepared::new(0, b":alice!~a@h PRIVMSG #x :hi\r\n".to_vec())
            .msgid("7")
            .account(&origin(Some("alice")))
            .client_tags(Some("+draft/reply=5".into()))
    }

    fn written(p: &Prepared, caps: &[Cap]) -> String {
        let mut out = Vec::new();
        p.write(CapSet::of(caps), &mut out);
        String::from_utf8(out).unwrap()
    }

    /// irctest message_tags testBasic: no caps, no tags; server-time alone, only time;
    /// message-tags, msgid and client tags.
    #[test]
    fn each_recipient_gets_the_tags_it_negotiated() {
        let p = prepared();
        assert_eq!(written(&p, &[]), ":alice!~a@h PRIVMSG #x :hi\r\n");
        assert_eq!(
            written(&p, &[Cap::ServerTime]),
            "@time=1970-01-01T00:00:00.000Z :alice!~a@h PRIVMSG #x :hi\r\n"
        );
        assert_eq!(
            written(&p, &[Cap::MessageTags]),
            "@msgid=7;+draft/reply=5 :alice!~a@h PRIVMSG #x :hi\r\n"
        );
        assert_eq!(
            written(&p, &[Cap::AccountTag]),
            "@account=alice :alice!~a@h PRIVMSG #x :hi\r\n"
        );
        let mut out = Vec::new();
        p.write_with(CapSet::of(&[Cap::Batch]), "batch=b1", &mut out);
        assert_eq!(out, b"@batch=b1 :alice!~a@h PRIVMSG #x :hi\r\n");
    }

    #[test]
    fn alt_bodies_and_required_caps() {
        let p = Prepared::new(0, b"A\r\n".to_vec()).alt(Cap::ExtendedJoin, b"B\r\n".to_vec());
        assert_eq!(written(&p, &[]), "A\r\n");
        assert_eq!(written(&p, &[Cap::ExtendedJoin]), "B\r\n");
        let p = Prepared::new(0, b"AWAY\r\n".to_vec()).requires(Cap::AwayNotify);
        assert_eq!(written(&p, &[Cap::ServerTime]), "");
        assert!(!p.wanted_by(CapSet::default()));
    }

    #[test]
    fn msgid_only_on_the_first_of_several_lines() {
        let p = Prepared::new(0, b"L1\r\nL2\r\n".to_vec()).msgid("9");
        assert_eq!(written(&p, &[Cap::MessageTags]), "@msgid=9 L1\r\nL2\r\n");
    }

    #[test]
    fn split_prefers_spaces_and_keeps_characters_whole() {
        assert_eq!(split_text("", 10), [""]);
        assert_eq!(
            split_text("hello world again", 12),
            ["hello world ", "again"]
        );
        assert_eq!(split_text("ééééé", 5), ["éé", "éé", "é"]);
    }

    proptest! {
        #[test]
        fn split_pieces_fit_and_rejoin(text in "\\PC{0,300}", room in 4usize..60) {
            let pieces = split_text(&text, room);
            prop_assert_eq!(pieces.concat(), text.clone());
            for p in &pieces {
                prop_assert!(p.len() <= room.max(4));
            }
            if !text.is_empty() {
                prop_assert!(pieces.iter().all(|p| !p.is_empty()));
            }
        }
    }
}
