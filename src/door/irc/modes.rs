//! `MODE`: what a mode command asks, for rooms and for the user.
//!
//! Rooms have fixed modes (`+nt`: only members speak, only operators set the topic) and one
//! list, bans (`+b`), which server operators change. Setting `+n` or `+t` again is accepted as
//! what it is, a no-op; any other letter is `472 ERR_UNKNOWNMODE`. One mode with a parameter
//! per command (`MODES=1`).
//!
//! A user's own modes: `o` (operator, read only) and `i`, accepted and shown but without
//! effect, since clients such as irssi set it on connecting and an error would only confuse.

/// What `MODE #room ...` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomMode {
    /// `MODE #room`: `324` and `329`.
    Show,
    /// `MODE #room b` or `+b` without a mask: the ban list.
    ListBans,
    /// `+b mask` or `-b mask`.
    Ban { set: bool, mask: String },
    /// Only `+n`/`+t`/`-n`/`-t`: nothing changes (and removing them is refused).
    Fixed { removing: bool },
    /// A letter this server has no such mode for.
    Unknown(char),
}

/// Parses `MODE #room [modestring [param]]`.
pub fn room_mode(modestring: Option<&str>, param: Option<&str>) -> RoomMode {
    let Some(modes) = modestring else {
        return RoomMode::Show;
    };
    let mut set = true;
    let mut removing = false;
    let mut saw_fixed = false;
    for c in modes.chars() {
        match c {
            '+' => set = true,
            '-' => set = false,
            'b' => {
                return match param.filter(|p| !p.is_empty()) {
                    Some(mask) => RoomMode::Ban {
                        set,
                        mask: normalize_ban(mask),
                    },
                    None => RoomMode::ListBans,
                };
            }
            'n' | 't' => {
                saw_fixed = true;
                removing |= !set;
            }
            other => return RoomMode::Unknown(other),
        }
    }
    if saw_fixed {
        RoomMode::Fixed { removing }
    } else {
        RoomMode::Show
    }
}

/// A ban mask as IRC shows it: a bare nick becomes `nick!*@*`.
fn normalize_ban(mask: &str) -> String {
    if mask.contains(['!', '@']) {
        mask.to_owned()
    } else {
        format!("{mask}!*@*")
    }
}

/// The nick a ban mask names, when it names one (`nick!*@*`, `nick!*@`, `nick`): the only
/// masks that map onto the server's name bans. Addresses are banned with `/ban` or
/// `smolchat ban add`, where they can be checked against the wide-prefix rule.
pub fn banned_nick(mask: &str) -> Option<&str> {
    let (nick, rest) = mask.split_once('!').unwrap_or((mask, "*@*"));
    (matches!(rest, "*@*" | "*@" | "*") && !nick.is_empty() && !nick.contains(['*', '?', '@']))
        .then_some(nick)
}

/// What `MODE nick ...` asks of the user's own modes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserMode {
    /// `MODE nick`: `221`.
    Show,
    /// The changes accepted (`+i`, `-i`), to echo as `MODE nick :+i`.
    Changed(String),
    /// A flag this server does not have, or `+o` asked for: `501`.
    Unknown,
}

/// Parses `MODE nick [modestring]` for the user's own nick.
pub fn user_mode(modestring: Option<&str>) -> UserMode {
    let Some(modes) = modestring else {
        return UserMode::Show;
    };
    let mut set = true;
    let mut changed = String::new();
    for c in modes.chars() {
        match c {
            '+' => set = true,
            '-' => set = false,
            'i' => {
                changed.push(if set { '+' } else { '-' });
                changed.push('i');
            }
            // Dropping `o` is refused too: the role is an account's, changed with /deop.
            _ => return UserMode::Unknown,
        }
    }
    if changed.is_empty() {
        UserMode::Show
    } else {
        UserMode::Changed(changed)
    }
}

/// The user modes `221` shows.
pub fn user_modes_shown(operator: bool, invisible: bool) -> String {
    let mut modes = String::from("+");
    if invisible {
        modes.push('i');
    }
    if operator {
        modes.push('o');
    }
    modes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_modes() {
        assert_eq!(room_mode(None, None), RoomMode::Show);
        assert_eq!(room_mode(Some("b"), None), RoomMode::ListBans);
        assert_eq!(room_mode(Some("+b"), None), RoomMode::ListBans);
        assert_eq!(
            room_mode(Some("+b"), Some("bar!*@*")),
            RoomMode::Ban {
                set: true,
                mask: "bar!*@*".into()
            }
        );
        assert_eq!(
            room_mode(Some("-b"), Some("bar")),
            RoomMode::Ban {
                set: false,
                mask: "bar!*@*".into()
            }
        );
        assert_eq!(
            room_mode(Some("+nt"), None),
            RoomMode::Fixed { removing: false }
        );
        assert_eq!(
            room_mode(Some("-t"), None),
            RoomMode::Fixed { removing: true }
        );
        assert_eq!(room_mode(Some("+int"), None), RoomMode::Unknown('i'));
        assert_eq!(room_mode(Some("+v"), Some("foo")), RoomMode::Unknown('v'));
    }

    #[test]
    fn ban_masks_that_name_a_nick() {
        assert_eq!(banned_nick("bar!*@*"), Some("bar"));
        assert_eq!(banned_nick("BAR!*@*"), Some("BAR"));
        assert_eq!(banned_nick("bar"), Some("bar"));
        assert_eq!(banned_nick("*!*@1.2.3.4"), None);
        assert_eq!(banned_nick("bar!~u@host"), None);
        assert_eq!(banned_nick("b*r!*@*"), None);
    }

    #[test]
    fn user_modes() {
        assert_eq!(user_mode(None), UserMode::Show);
        assert_eq!(user_mode(Some("+i")), UserMode::Changed("+i".into()));
        assert_eq!(user_mode(Some("-i")), UserMode::Changed("-i".into()));
        assert_eq!(user_mode(Some("+T")), UserMode::Unknown);
        assert_eq!(user_mode(Some("-o")), UserMode::Unknown);
        assert_eq!(user_modes_shown(true, true), "+io");
        assert_eq!(user_modes_shown(false, false), "+");
    }
}
