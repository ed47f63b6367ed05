//! The user names IRC clients gave in `USER`, by nick: the `~username` of `nick!~username@SERVER`
//! in every line that names an IRC user of this node (relayed lines, `JOIN`/`PART`/`QUIT`,
//! `WHO`, `WHOIS`, `USERHOST`).
//!
//! Why a table of the door's and not a field of the hub's events: the hub's events name senders
//! by nick alone, for every door and node, and IRC is the only door with a user name. The
//! renderers run in the hub's fan-out, once per relayed line and flavour, and read the table
//! there; sessions write it when they register, rename and leave. Users of other doors, of
//! other nodes, and senders of replayed lines who are gone show [`OTHER`].
//!
//! A leaver's entry is kept until [`KEPT`] more have left, so that its own `QUIT`, rendered by
//! the hub after the session said goodbye, still shows its name; it is shown for [`GRACE`]
//! only, so that a user of another door who takes the nick later does not wear it. It must not know anything of
//! the hub beyond names and member ids.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use crate::names::Nick;
use crate::vocab::MemberId;

/// The user part for everyone without an IRC user name here.
pub const OTHER: &str = "~u";

/// How many leavers' entries are kept after they left.
const KEPT: usize = 1024;

/// How long a leaver's name is shown after it left (its `QUIT`, rendered just after).
const GRACE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Table {
    /// Nick key to the member holding it, its user name, and when it let the nick go.
    by_nick: HashMap<String, (MemberId, Arc<str>, Option<Instant>)>,
    /// Member to the nick key it holds now.
    by_id: HashMap<MemberId, String>,
    /// Entries of members who left or renamed, oldest first, removed past [`KEPT`].
    gone: VecDeque<(String, MemberId)>,
}

impl Table {
    fn forget(&mut self, key: String, id: MemberId) {
        if let Some((holder, _, left)) = self.by_nick.get_mut(&key) {
            if *holder == id {
                *left = Some(Instant::now());
            }
        }
        self.gone.push_back((key, id));
        while self.gone.len() > KEPT {
            let Some((key, id)) = self.gone.pop_front() else {
                break;
            };
            // Unless the nick was taken again since (by another member, or by this one
            // renaming away and back).
            let holds = self.by_id.get(&id) == Some(&key);
            if !holds && (self.by_nick.get(&key)).is_some_and(|(holder, ..)| *holder == id) {
                self.by_nick.remove(&key);
            }
        }
    }
}

static TABLE: LazyLock<RwLock<Table>> = LazyLock::new(RwLock::default);

/// Member `id` registered as `nick` with `user` (already `~` and tidied).
pub fn signed_on(id: MemberId, nick: &Nick, user: &str) {
    let Ok(mut t) = TABLE.write() else { return };
    let key = nick.key().to_owned();
    t.by_nick.insert(key.clone(), (id, user.into(), None));
    t.by_id.insert(id, key);
}

/// Member `id` is now `nick`.
pub fn renamed(id: MemberId, nick: &Nick) {
    let Ok(mut t) = TABLE.write() else { return };
    let Some(old) = t.by_id.get(&id).cloned() else {
        return;
    };
    let Some((_, user, _)) = t.by_nick.get(&old).cloned() else {
        return;
    };
    let key = nick.key().to_owned();
    t.by_nick.insert(key.clone(), (id, user, None));
    t.by_id.insert(id, key);
    t.forget(old, id);
}

/// Member `id` left.
pub fn signed_off(id: MemberId) {
    let Ok(mut t) = TABLE.write() else { return };
    if let Some(key) = t.by_id.remove(&id) {
        t.forget(key, id);
    }
}

/// The user part of `nick`'s mask.
pub fn user(nick: &Nick) -> Arc<str> {
    user_at(nick, Instant::now())
}

fn user_at(nick: &Nick, now: Instant) -> Arc<str> {
    let shown = |(_, user, left): &(MemberId, Arc<str>, Option<Instant>)| {
        let recent = left.is_none_or(|left| now.saturating_duration_since(left) <= GRACE);
        recent.then(|| user.clone())
    };
    (TABLE.read().ok())
        .and_then(|t| t.by_nick.get(nick.key()).and_then(shown))
        .unwrap_or_else(|| OTHER.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name follows renames; a leaver's stays until enough others left; a nick taken again
    /// keeps its new holder's.
    #[test]
    fn names_follow_their_members() {
        let nick = |n: &str| Nick::parse(n).unwrap();
        signed_on(9_000_001, &nick("idAlice"), "~ali");
        assert_eq!(&*user(&nick("IDALICE")), "~ali");
        renamed(9_000_001, &nick("idAlicia"));
        assert_eq!(&*user(&nick("idAlicia")), "~ali");
        signed_off(9_000_001);
        assert_eq!(&*user(&nick("idAlicia")), "~ali");
        signed_on(9_000_002, &nick("idAlicia"), "~other");
        for id in 0..KEPT as u64 + 2 {
            signed_on(9_100_000 + id, &nick(&format!("idx{id}")), "~x");
            signed_off(9_100_000 + id);
        }
        assert_eq!(&*user(&nick("idAlicia")), "~other");
        assert_eq!(&*user(&nick("idAlice")), OTHER);
        assert_eq!(&*user(&nick("idx0")), OTHER);
        assert_eq!(&*user(&nick("nobodyhere")), OTHER);
    }

    /// A leaver's name is shown for its `QUIT` only, not to whoever takes the nick later at
    /// another door; a member who renamed away and back keeps its name however many leave.
    #[test]
    fn leavers_names_fade_and_returns_keep_theirs() {
        let nick = |n: &str| Nick::parse(n).unwrap();
        signed_on(9_200_001, &nick("fadeCarol"), "~admin");
        signed_off(9_200_001);
        assert_eq!(&*user(&nick("fadeCarol")), "~admin");
        let later = Instant::now() + GRACE * 2;
        assert_eq!(&*user_at(&nick("fadeCarol"), later), OTHER);
        signed_on(9_200_002, &nick("backEve"), "~eve");
        renamed(9_200_002, &nick("backEvex"));
        renamed(9_200_002, &nick("backEve"));
        for id in 0..KEPT as u64 + 2 {
            signed_on(9_300_000 + id, &nick(&format!("idy{id}")), "~y");
            signed_off(9_300_000 + id);
        }
        assert_eq!(&*user_at(&nick("backEve"), later), "~eve");
    }
}
