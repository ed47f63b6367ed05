//! Why a name was refused, in words: one table for the name prompt and `/nick` of every door
//! that speaks the line door's sentences (the line door and the web door), so both say the
//! same thing and a new refusal is worded once.
//!
//! The session layer decides (`session::enter::NotEntered` and `NoRename`); this only words
//! its answers.

use super::until;
use crate::hub::Refused;
use crate::names::Nick;
use crate::session::enter::{NoRename, NotEntered};

/// Why the hub (or, in cluster mode, another node) did not give `nick` to a newcomer at the
/// name prompt.
pub fn not_entered(nick: &Nick, why: &NotEntered) -> String {
    match why {
        NotEntered::Refused(Refused::Taken) | NotEntered::TakenElsewhere => name_taken(nick),
        NotEntered::Refused(Refused::LooksLike) => name_confusable(nick),
        NotEntered::Refused(Refused::Held(secs)) => name_held(nick, *secs),
        NotEntered::Refused(Refused::ShuttingDown) | NotEntered::ClusterPaused => {
            super::NAME_PAUSED.to_owned()
        }
    }
}

/// Why `/nick` may not take `nick` (its bans and accounts; the hub's refusals come back as
/// `Refusal`s, worded by the renderer).
pub fn no_rename(nick: &Nick, why: &NoRename) -> String {
    match why {
        NoRename::Banned(expires_ms) => name_banned(nick, *expires_ms),
        NoRename::LooksRegistered => name_like_registered(nick),
        NoRename::Registered => name_registered_on_rename(nick),
        NoRename::AccountsUnavailable => super::ACCOUNTS_UNAVAILABLE.to_owned(),
    }
}

pub fn name_taken(nick: &Nick) -> String {
    format!("name taken: {nick} is already in use")
}

pub fn name_taken_on_rename(nick: &Nick) -> String {
    format!("name taken: {nick} is already in use (see /help)")
}

/// A name refused because it looks like one in use (`aIice` beside `alice`).
pub fn name_confusable(nick: &Nick) -> String {
    format!("name taken: {nick} looks too much like a name already in use")
}

/// A name refused because its owner was dropped moments ago and may come back for it.
pub fn name_held(nick: &Nick, secs: u64) -> String {
    format!("name taken: {nick} is held for its owner for {secs} s")
}

/// A name refused because it looks like a registered name (the same confusable skeleton).
pub fn name_like_registered(nick: &Nick) -> String {
    format!("name taken: {nick} looks too much like a registered name")
}

pub fn name_registered_on_rename(nick: &Nick) -> String {
    format!("{nick} is registered to someone else: to use it, log in with it at the name prompt (see /help)")
}

pub fn name_banned(nick: &Nick, expires_ms: Option<i64>) -> String {
    format!(
        "{nick} is banned {}: choose another name",
        until(expires_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::testing::nick;

    /// Every way the hub or the cluster refuses a name at the prompt has its sentence, and only
    /// a server that cannot check the name says to try again later.
    #[test]
    fn every_refusal_at_the_prompt_is_worded() {
        let alice = nick("alice");
        let said = |why: NotEntered| not_entered(&alice, &why);
        assert_eq!(
            said(NotEntered::Refused(Refused::Taken)),
            "name taken: alice is already in use"
        );
        assert_eq!(
            said(NotEntered::TakenElsewhere),
            said(NotEntered::Refused(Refused::Taken))
        );
        assert!(said(NotEntered::Refused(Refused::LooksLike)).contains("looks too much like"));
        assert!(said(NotEntered::Refused(Refused::Held(42))).contains("for 42 s"));
        assert!(said(NotEntered::ClusterPaused).contains("paused"));
        assert!(no_rename(&alice, &NoRename::Banned(None)).contains("banned until lifted"));
        assert!(no_rename(&alice, &NoRename::Registered).contains("registered to someone else"));
    }
}
