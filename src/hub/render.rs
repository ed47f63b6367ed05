//! Renderers: how each door turns the hub's events into bytes.
//!
//! A door registers one renderer per flavour of output at start-up (the line door has one; an
//! IRC door has one for clients with `server-time` and one without) and gives each member the
//! [`RendererId`] it wants at registration, changing it later if the client asks (IRC's
//! `CAP REQ`). The hub keeps the id in the member's outbox, where the fan-out reads it beside the
//! buffer it writes to.
//!
//! A line for a room is rendered once per renderer present in the room, not once per member:
//! the fan-out renders lazily into one scratch buffer the first time it meets a member of each
//! flavour, then copies those bytes into every such member's outbox. So a room of nc, IRC and
//! web users costs at most a few renderings per line whatever its size, and nothing is
//! allocated per recipient.

use std::sync::Arc;

use crate::hub::event::{Event, Private, Reply};
use crate::names::Nick;

/// Most renderers one server may register. The fan-out keeps one slot per renderer on the stack
/// (24 bytes each). The IRC door registers 32 (one per combination of the five capabilities that
/// change a relayed line), the line and web doors one each.
pub const MAX_RENDERERS: usize = 40;

/// Which renderer formats a member's output: an index into the registered [`Renderers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RendererId(pub u8);

/// A door's way of turning events into bytes. Implementations are pure: no I/O, no state that
/// changes, so one rendering serves every member of its flavour.
pub trait Render: Send + Sync {
    /// Appends the bytes for `event` as every member of this flavour sees it: nothing here may
    /// depend on who receives it. May append nothing, for an event this door does not show.
    fn render(&self, event: &Event, out: &mut Vec<u8>);

    /// Appends the bytes for a reply or a private line to one member, `me` (some protocols
    /// address every line to its recipient).
    fn render_to(&self, me: &Nick, personal: Personal<'_>, out: &mut Vec<u8>);

    /// Whether this door's readers could take an action (`/me`) with this text for one of the
    /// server's own notices: the hub refuses such actions from any door, so that no door's
    /// users can spoof another door's notices.
    fn mimics_notice(&self, _action: &str) -> bool {
        false
    }
}

/// What is addressed to one member.
#[derive(Debug, Clone, Copy)]
pub enum Personal<'a> {
    Reply(&'a Reply),
    Private(&'a Private),
}

/// The renderers registered at start-up, indexed by [`RendererId`].
#[derive(Clone, Default)]
pub struct Renderers {
    list: Vec<Arc<dyn Render>>,
}

impl Renderers {
    /// Registers a renderer; `None` once [`MAX_RENDERERS`] are registered.
    pub fn register(&mut self, renderer: Arc<dyn Render>) -> Option<RendererId> {
        if self.list.len() >= MAX_RENDERERS {
            return None;
        }
        self.list.push(renderer);
        u8::try_from(self.list.len() - 1).ok().map(RendererId)
    }

    /// The renderer `id`; the first one for an id never registered (a door's bug, not a
    /// client's: it still gets readable output).
    pub fn get(&self, id: RendererId) -> Option<&dyn Render> {
        self.list
            .get(usize::from(id.0))
            .or_else(|| self.list.first())
            .map(|r| &**r)
    }

    /// Whether an action would pass for a notice in any door's rendering.
    pub fn mimics_notice(&self, action: &str) -> bool {
        self.list.iter().any(|r| r.mimics_notice(action))
    }
}
