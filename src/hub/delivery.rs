//! Delivery: events rendered into bytes and copied into outboxes, without ever waiting.
//!
//! A room's line is rendered once per renderer present (see `hub/render.rs`) into one scratch
//! buffer, then copied into each recipient's outbox: a memcpy under an uncontended lock, no
//! allocation per recipient. Sessions are woken once per hub turn ([`Delivery::wake`]): a push
//! that finds an empty buffer only notes the outbox, so a turn of many lines costs each session
//! one wake and one write. A push that fails (a full or closed outbox) is reported back as a
//! [`Fault`]; the hub removes those members, never the room.

use std::ops::Range;
use std::sync::Arc;

use crate::hub::event::Event;
use crate::hub::outbox::{Budget, Outbox, PushError};
use crate::hub::render::{Personal, Renderers, MAX_RENDERERS};
use crate::metrics::{HubStats, TurnCounts};
use crate::names::Nick;
use crate::vocab::MemberId;

/// How far a reply to a member's own command may overshoot its outbox limit: a page of a list
/// and then some. A member is never dropped for what it asked for; a reply that does not fit
/// even so is skipped (that client is far behind and the next relay drops it).
pub const REPLY_SLACK: usize = 32 * 1024;

/// Why an outbox could not take a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Full: the client is not reading.
    Slow,
    /// Closed: the session is gone.
    Gone,
}

/// The renderers, the scratch buffer they render into, and the sessions to wake.
pub struct Delivery {
    renderers: Renderers,
    scratch: Vec<u8>,
    /// Sessions that got output this turn and are still to be woken.
    wakes: Vec<Outbox>,
    budget: Arc<Budget>,
    /// This turn's counts (plain fields), added to `stats` once per turn at [`Delivery::wake`].
    counts: TurnCounts,
    stats: HubStats,
}

/// Where in the scratch buffer each renderer's bytes for the current event are, once rendered.
type Rendered = [Option<Range<usize>>; MAX_RENDERERS];

impl Delivery {
    pub fn new(renderers: Renderers, budget: Arc<Budget>, stats: HubStats) -> Delivery {
        Delivery {
            renderers,
            scratch: Vec::new(),
            wakes: Vec::new(),
            budget,
            counts: TurnCounts::default(),
            stats,
        }
    }

    /// This turn's counts, for what the pipeline counts itself (lines relayed, readers dropped,
    /// refusals).
    pub fn counts(&mut self) -> &mut TurnCounts {
        &mut self.counts
    }

    /// The shared metrics, for the gauges the pipeline sets.
    pub fn stats(&self) -> &HubStats {
        &self.stats
    }

    pub fn renderers(&self) -> &Renderers {
        &self.renderers
    }

    /// The server-wide output budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Pushes `event` into the outboxes of `recipients` that `skip` does not exclude, rendering it
    /// at most once per renderer. Returns the members it could not reach.
    pub fn fan_out<'a>(
        &mut self,
        recipients: impl IntoIterator<Item = (MemberId, &'a Outbox)>,
        event: &Event,
        skip: impl FnMut(MemberId) -> bool,
    ) -> Vec<(MemberId, Fault)> {
        self.fan_out_within(recipients, event, skip, 0)
    }

    /// Like [`Delivery::fan_out`], each outbox's limit raised by `slack` (the last words of a
    /// server shutting down reach even a client that is behind).
    pub fn fan_out_within<'a>(
        &mut self,
        recipients: impl IntoIterator<Item = (MemberId, &'a Outbox)>,
        event: &Event,
        mut skip: impl FnMut(MemberId) -> bool,
        slack: usize,
    ) -> Vec<(MemberId, Fault)> {
        let mut faults = Vec::new();
        let mut rendered: Rendered = [const { None }; MAX_RENDERERS];
        self.scratch.clear();
        // Counted in locals and added once, not per recipient.
        let (mut lines, mut bytes_out) = (0u64, 0u64);
        for (id, outbox) in recipients {
            if skip(id) {
                continue;
            }
            let Some(bytes) = self.rendered(&mut rendered, outbox, event) else {
                continue;
            };
            let len = bytes.len() as u64;
            match outbox.push_deferred_within(&self.scratch[bytes], slack) {
                Ok(woken) => {
                    lines += 1;
                    bytes_out += len;
                    if woken {
                        self.wakes.push(outbox.clone());
                    }
                }
                Err(PushError::Full) => faults.push((id, Fault::Slow)),
                Err(PushError::Closed) => faults.push((id, Fault::Gone)),
            }
        }
        // One addition for the whole fan-out (see `Budget`).
        self.budget.add(bytes_out as usize);
        self.counts.delivered(lines, bytes_out);
        faults
    }

    /// The range of this outbox's renderer's bytes for `event`, rendering them on first use;
    /// `None` when that renderer shows nothing for it.
    fn rendered(
        &mut self,
        rendered: &mut Rendered,
        outbox: &Outbox,
        event: &Event,
    ) -> Option<Range<usize>> {
        let id = outbox.renderer();
        let slot = usize::from(id.0).min(MAX_RENDERERS - 1);
        let range = match &rendered[slot] {
            Some(range) => range.clone(),
            None => {
                let start = self.scratch.len();
                if let Some(renderer) = self.renderers.get(id) {
                    renderer.render(event, &mut self.scratch);
                }
                let range = start..self.scratch.len();
                rendered[slot] = Some(range.clone());
                range
            }
        };
        (!range.is_empty()).then_some(range)
    }

    /// Sends a reply or a private line to one member, `me`. A reply may overshoot the outbox
    /// limit by [`REPLY_SLACK`] (a member is never dropped for what it asked for); a private line
    /// may not. Nothing is returned for a reply skipped because even the slack is used up.
    pub fn tell(
        &mut self,
        outbox: &Outbox,
        me: &Nick,
        personal: Personal<'_>,
    ) -> Result<(), Fault> {
        self.scratch.clear();
        if let Some(renderer) = self.renderers.get(outbox.renderer()) {
            renderer.render_to(me, personal, &mut self.scratch);
        }
        if self.scratch.is_empty() {
            return Ok(());
        }
        let pushed = match personal {
            Personal::Reply(_) => outbox.push_reply(&self.scratch, REPLY_SLACK),
            Personal::Private(_) => outbox.push(&self.scratch),
        };
        match pushed {
            Ok(()) => {
                self.counts.delivered(1, self.scratch.len() as u64);
                Ok(())
            }
            Err(PushError::Full) if matches!(personal, Personal::Reply(_)) => {
                log::debug!("reply to {me} skipped: outbox full");
                Ok(())
            }
            Err(PushError::Full) => Err(Fault::Slow),
            Err(PushError::Closed) => Err(Fault::Gone),
        }
    }

    /// Writes last words to a member the hub has already let go of (kicked, banned), if its
    /// outbox takes them.
    pub fn last_words(&mut self, outbox: &Outbox, me: &Nick, reply: &crate::hub::event::Reply) {
        self.scratch.clear();
        if let Some(renderer) = self.renderers.get(outbox.renderer()) {
            renderer.render_to(me, Personal::Reply(reply), &mut self.scratch);
        }
        let _ = outbox.push(&self.scratch);
    }

    /// Wakes every session that got output since the last call, once each, and adds the turn's
    /// counts to the shared metrics (a few atomic adds a turn, none for an empty one).
    pub fn wake(&mut self) {
        for outbox in self.wakes.drain(..) {
            outbox.wake();
        }
        self.stats.flush(&mut self.counts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::event::{Reply, ServerNotice};
    use crate::hub::outbox::outbox;
    use crate::hub::render::{Render, RendererId};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Renders every event as `tag\n` and counts its renderings.
    struct Counting {
        tag: &'static str,
        renders: AtomicUsize,
    }

    impl Render for Counting {
        fn render(&self, _: &Event, out: &mut Vec<u8>) {
            self.renders.fetch_add(1, Ordering::Relaxed);
            out.extend_from_slice(self.tag.as_bytes());
            out.push(b'\n');
        }

        fn render_to(&self, me: &Nick, _: Personal<'_>, out: &mut Vec<u8>) {
            out.extend_from_slice(format!("{} to {me}\n", self.tag).as_bytes());
        }
    }

    /// A room of many members of two flavours costs two renderings; each member gets its own
    /// flavour's bytes; `skip` leaves members out; a full outbox is a fault, not a stop.
    #[test]
    fn one_rendering_per_renderer() {
        let budget = Budget::new(usize::MAX);
        let line = Arc::new(Counting {
            tag: "line",
            renders: AtomicUsize::new(0),
        });
        let irc = Arc::new(Counting {
            tag: "irc",
            renders: AtomicUsize::new(0),
        });
        let mut renderers = Renderers::default();
        let line_id = renderers.register(line.clone()).unwrap();
        let irc_id = renderers.register(irc.clone()).unwrap();
        let mut delivery = Delivery::new(renderers, budget.clone(), HubStats::default());
        let mut boxes = Vec::new();
        for n in 0..100u64 {
            let (tx, rx) = outbox(if n == 7 { 2 } else { 1024 }, budget.clone());
            tx.set_renderer(if n % 2 == 0 { line_id } else { irc_id });
            boxes.push((n, tx, rx));
        }
        let event = Event::Server(ServerNotice::ShuttingDown);
        let faults = delivery.fan_out(boxes.iter().map(|(id, tx, _)| (*id, tx)), &event, |id| {
            id == 3
        });
        assert_eq!(faults, [(7, Fault::Slow)]);
        assert_eq!(line.renders.load(Ordering::Relaxed), 1);
        assert_eq!(irc.renders.load(Ordering::Relaxed), 1);
        delivery.wake();
        let got = |n: usize| boxes[n].2.try_recv().map(|t| t.bytes);
        assert_eq!(got(0).as_deref(), Some(&b"line\n"[..]));
        assert_eq!(got(1).as_deref(), Some(&b"irc\n"[..]));
        assert_eq!(got(3), None, "skipped");
        // A reply is rendered for its one recipient, by its renderer.
        assert_eq!(got(5).as_deref(), Some(&b"irc\n"[..]));
        let me = Nick::parse("bob").unwrap();
        let reply = Reply::YouAreUnmuted;
        assert_eq!(
            delivery.tell(&boxes[5].1, &me, Personal::Reply(&reply)),
            Ok(())
        );
        assert_eq!(got(5).as_deref(), Some(&b"irc to bob\n"[..]));
        // An unknown renderer id falls back to the first.
        assert_eq!(got(9).as_deref(), Some(&b"irc\n"[..]));
        boxes[9].1.set_renderer(RendererId(5));
        delivery.fan_out([(9, &boxes[9].1)], &event, |_| false);
        assert_eq!(got(9).as_deref(), Some(&b"line\n"[..]));
    }
}
