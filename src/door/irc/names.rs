//! Nicks and channel names as IRC spells them, validated at the IRC door's edge.
//!
//! The rules of a name are [`Nick::parse`]'s and [`RoomName::parse`]'s, the same for every
//! door; this module adds only what IRC itself forbids, because those characters would change
//! how a line is read: a space, `,` (lists), `*` and `?` (masks), `!` and `@` (the
//! `nick!user@host` source), and a first character that reads as a channel (`#`, `&`), a
//! membership prefix (`@`, `+`, `%`, `~`), a trailing parameter (`:`) or a target mask (`$`).
//! Channels are `#` followed by a room name: `#Lobby` is the room `lobby`, shown as `#lobby`.
//!
//! Names compare by their case fold (and, for uniqueness, their confusable skeleton: that is
//! the hub's business); [`fold`] and [`glob`] serve masks in `WHO`.

use crate::names::{NameError, Nick, RoomName};

/// Characters no IRC nick may contain.
pub const FORBIDDEN: &[char] = &[' ', ',', '*', '?', '!', '@'];

/// Characters no IRC nick may start with.
pub const FORBIDDEN_FIRST: &[char] = &['#', '&', '@', '+', '%', '~', ':', '$'];

/// The most rooms an IRC user may be in at once (advertised as `CHANLIMIT`); a `JOIN` past
/// it is `405`. Not configurable: it bounds the per-user state the hub keeps.
pub const MAX_ROOMS: usize = 50;

/// Why a nick was refused at the IRC door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NickRefusal {
    /// `NICK` without a name: `431`.
    Missing,
    /// IRC cannot carry it: `432`.
    ForbiddenByIrc,
    /// The name rules refuse it: `432`.
    Invalid(NameError),
}

impl NickRefusal {
    /// The reason in `432`'s text.
    pub fn reason(self) -> String {
        match self {
            NickRefusal::Missing => "no nickname given".to_owned(),
            NickRefusal::ForbiddenByIrc => {
                "IRC nicks cannot hold spaces or , * ? ! @, nor start with # & @ + % ~ : $"
                    .to_owned()
            }
            NickRefusal::Invalid(e) => e.nick_reason(),
        }
    }
}

/// Whether IRC can carry `name` as a nick.
pub fn irc_safe(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(FORBIDDEN_FIRST)
        && !name.contains(FORBIDDEN)
        && !name.chars().any(char::is_control)
}

/// Validates a nick sent in `NICK`.
pub fn nick(raw: &str) -> Result<Nick, NickRefusal> {
    if raw.is_empty() {
        return Err(NickRefusal::Missing);
    }
    if !irc_safe(raw) {
        return Err(NickRefusal::ForbiddenByIrc);
    }
    Nick::parse(raw).map_err(NickRefusal::Invalid)
}

/// Validates a channel name: `#` and a room name. Anything else is `403 ERR_NOSUCHCHANNEL`.
pub fn channel(raw: &str) -> Option<RoomName> {
    let name = raw.strip_prefix('#')?;
    if name.starts_with('#') || name.contains(FORBIDDEN) {
        return None;
    }
    RoomName::parse(raw).ok()
}

/// How IRC shows a room: `#` and its canonical name.
pub fn channel_name(room: &RoomName) -> String {
    format!("#{}", room.as_str())
}

/// The case fold two names are compared by.
pub fn fold(name: &str) -> String {
    name.to_lowercase()
}

/// Whether `name` matches `mask`, where `*` stands for any run of characters and `?` for one,
/// ignoring case.
pub fn glob(mask: &str, name: &str) -> bool {
    let mask: Vec<char> = fold(mask).chars().collect();
    let name: Vec<char> = fold(name).chars().collect();
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut m, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match mask.get(m) {
            Some('*') => {
                star = Some((m, n));
                m += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                m += 1;
                n += 1;
            }
            _ => match star {
                Some((sm, sn)) => {
                    m = sm + 1;
                    n = sn + 1;
                    star = Some((sm, sn + 1));
                }
                None => return false,
            },
        }
    }
    mask[m..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// irctest testStarNick and testEmptyNick: `*` and an empty nick are refused.
    #[test]
    fn refuses_what_irc_cannot_carry() {
        assert_eq!(nick(""), Err(NickRefusal::Missing));
        for bad in [
            "*", "a b", "a,b", "a?", "a!b", "a@b", "#a", "&a", "+a", ":a", "$a", "~a",
        ] {
            assert!(nick(bad).is_err(), "{bad}");
        }
        assert_eq!(nick("alice").map(|n| n.to_string()), Ok("alice".into()));
        assert!(matches!(
            nick(&"a".repeat(25)),
            Err(NickRefusal::Invalid(_))
        ));
    }

    #[test]
    fn channels_need_a_hash() {
        assert_eq!(
            channel("#Lobby").map(|r| channel_name(&r)),
            Some("#lobby".into())
        );
        assert_eq!(channel("lobby"), None);
        assert_eq!(channel("#"), None);
        assert_eq!(channel("##a"), None);
        assert_eq!(channel("#a,b"), None);
        assert!(channel(&format!("#{}", "a".repeat(32))).is_some());
        assert_eq!(channel(&format!("#{}", "b".repeat(33))), None);
    }

    #[test]
    fn glob_matches_masks() {
        assert!(glob("coolni*", "coolNick"));
        assert!(glob("*", "x"));
        assert!(glob("c?olnick", "COOLNICK"));
        assert!(glob("*an1", "#chan1"));
        assert!(!glob("*an2", "#chan1"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(!glob("", "a"));
        assert!(glob("", ""));
    }

    proptest! {
        /// Any name any door accepts can travel in IRC: if the shared name rules ever allow a
        /// character IRC forbids, this fails and the IRC door needs a decision.
        #[test]
        fn every_nick_any_door_accepts_is_safe_in_irc(s in "\\PC{1,30}|[a-zA-Z0-9 ,*?!@#&+%~:$._-]{1,30}") {
            if let Ok(n) = Nick::parse(&s) {
                prop_assert!(irc_safe(n.as_str()), "{:?} is a name but not an IRC nick", n.as_str());
            }
        }

        #[test]
        fn glob_star_matches_everything_and_literals_match_themselves(s in "[a-z#]{0,20}") {
            prop_assert!(glob("*", &s));
            prop_assert!(glob(&s, &s.to_uppercase()));
        }
    }
}
