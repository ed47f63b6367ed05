//! The hub's loop: intents from doors, entries from the cluster log, answers from the account
//! thread, the writer's commits and the timers, until the server stops.
//!
//! Everything the hub decides happens in [`Hub`](super::state::Hub), synchronously, with the
//! time read from its clock; this loop only waits. It takes up to [`TURN_EVENTS`] queued events
//! before waking the sessions that got output, so each woken session writes the lines of many
//! events at once, and it announces departures in batches, yielding between them, so a storm of
//! leaves delays neither other tasks nor the shutdown.

use std::sync::Arc;

use async_channel::Receiver;
use log::debug;
use smol::future;

use crate::clock::Clock;
use crate::cluster::{self, Incoming};
use crate::hub::control::Control;
use crate::hub::core::Core;
use crate::hub::intent::{Intent, Request};
use crate::hub::link::Link;
use crate::hub::moderation::Moderation;
use crate::hub::outbox::Budget;
use crate::hub::pipeline::Pipeline;
use crate::hub::render::Renderers;
use crate::hub::state::Hub;
use crate::metrics::HubStats;
use crate::moderation::ban::SharedBans;
use crate::storage::accounts::{Saved, Store};
use crate::storage::History;

/// Events the hub handles in one turn before it wakes the sessions that got output: enough to
/// batch a busy room's lines into one write per session, few enough that the stop signal and the
/// first line's latency are not held up.
const TURN_EVENTS: usize = 64;

/// Departure notices sent between yields: each goes to a whole room, so this bounds how long
/// the hub runs without letting other tasks (and the shutdown signal) in.
const ANNOUNCE_BATCH: usize = 16;

/// What the hub starts with: one bundle, built once at start-up.
pub struct Setup {
    pub history: History,
    /// The newest message id stored.
    pub last_id: i64,
    /// The ban list, shared with the accept loop and the name prompt.
    pub bans: SharedBans,
    /// The account thread, where moderation is stored.
    pub store: Store,
    /// The topics, mutes and operator roles stored.
    pub saved: Saved,
    /// In cluster mode, the link to the log and what its threads report.
    pub cluster: Option<(cluster::Link, Receiver<Incoming>)>,
    /// What every outbox counts against (`--outbox-total-bytes`).
    pub budget: Arc<Budget>,
    /// Every door's renderers.
    pub renderers: Renderers,
    pub clock: Arc<dyn Clock>,
    /// What the hub counts for the metrics.
    pub stats: HubStats,
}

/// What woke the loop.
enum Step {
    Intent(Intent),
    Control(Control),
    /// In cluster mode: entries read from the log, or news about the link.
    Cluster(Incoming),
    /// The server is stopping.
    Stop,
    /// Every sender is gone.
    Closed,
    /// A commit, or time to tell users that chat is paused.
    Look,
    /// Held join/leave notices are due.
    Summaries,
}

/// Runs the hub until every intent sender is gone. When `stopping` closes, the hub tells
/// everybody the server is stopping and closes every outbox; it notices that before any queued
/// event, so a backlog cannot delay the shutdown. `control` carries SIGHUP's reloads; the hub
/// keeps a sender of its own for the account thread's answers.
pub async fn run(
    setup: Setup,
    intents: Receiver<Intent>,
    (control_tx, control): (async_channel::Sender<Control>, Receiver<Control>),
    stopping: Receiver<()>,
) {
    let history = setup.history.clone();
    let (link, incoming) = match setup.cluster {
        Some((link, incoming)) => (Link::cluster(link), Some(incoming)),
        None => (Link::Single, None),
    };
    let pipeline = Pipeline::new(
        setup.renderers,
        (setup.budget, setup.stats),
        Box::new(setup.history),
        setup.last_id,
    );
    let moderation = Moderation::new(setup.bans, setup.store, setup.saved, control_tx);
    let mut hub = Hub::new(Core::new(pipeline, link), moderation, setup.clock);
    // The cluster threads' channel; a closed one (they stopped) is never ready again.
    let from_cluster = || async {
        match incoming.as_ref().map(|rx| rx.recv()) {
            Some(recv) => match recv.await {
                Ok(incoming) => Step::Cluster(incoming),
                Err(_) => future::pending().await,
            },
            None => future::pending().await,
        }
    };
    loop {
        while hub.announce_departures(ANNOUNCE_BATCH) {
            hub.core.pipeline.wake();
            future::yield_now().await;
            if stopping.is_closed() && !hub.closing {
                hub.shutdown();
            }
        }
        if !hub.closing {
            hub.relay_committed();
        }
        hub.core.pipeline.wake();
        let members = &hub.core.members;
        hub.core.pipeline.sizes(members.len(), members.room_count());
        // Lines waiting for the writer: wake on its next commit, or when users must be told.
        let wake = hub.core.pipeline.relay().wake_at().filter(|_| !hub.closing);
        let due = hub.core.pipeline.next_summary().filter(|_| !hub.closing);
        let waiting = async {
            match wake {
                None => future::pending::<()>().await,
                Some(None) => history.commit_happened().await,
                Some(Some(at)) => {
                    future::or(history.commit_happened(), async {
                        smol::Timer::at(at).await;
                    })
                    .await
                }
            }
            Step::Look
        };
        let next = async {
            match intents.recv().await {
                Ok(intent) => Step::Intent(intent),
                Err(_) => Step::Closed,
            }
        };
        let controls = async {
            match control.recv().await {
                Ok(control) => Step::Control(control),
                Err(_) => future::pending().await,
            }
        };
        let summaries = async {
            match due {
                Some(at) => {
                    smol::Timer::at(at).await;
                    Step::Summaries
                }
                None => future::pending().await,
            }
        };
        let step = if hub.closing {
            future::or(next, waiting).await
        } else {
            let stop = async {
                let _ = stopping.recv().await;
                Step::Stop
            };
            // Neither sessions typing nor the cluster log arriving may starve the other.
            let next = future::race(next, future::or(from_cluster(), controls));
            future::or(stop, future::or(next, future::or(waiting, summaries))).await
        };
        match step {
            Step::Intent(intent) => {
                if !handle(&mut hub, intent, &history, &stopping).await {
                    continue;
                }
                // Take what else is queued before waking anybody, so each woken session
                // writes the lines of several events at once.
                for _ in 1..TURN_EVENTS {
                    if stopping.is_closed() {
                        break;
                    }
                    match intents.try_recv() {
                        Ok(intent) => {
                            if !handle(&mut hub, intent, &history, &stopping).await {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
            Step::Control(control) => hub.control(control),
            Step::Cluster(incoming) => hub.on_cluster(incoming),
            Step::Summaries => hub.due_summaries(),
            Step::Look => {}
            Step::Stop if !intents.is_closed() => hub.shutdown(),
            Step::Stop | Step::Closed => break,
        }
    }
    hub.core.pipeline.relay_mut().hand_over();
    debug!("hub stopped");
}

/// Handles one intent. A public line when [`durable::MAX_HELD`](super::durable::MAX_HELD)
/// lines already wait and the writer is merely behind (chat not paused) first waits for its
/// commits: backpressure that slows every sender, as a healthy but busy disk should. Once chat
/// is paused the hub refuses such lines instead, so a stuck disk never freezes it (joins,
/// `/who`, the shutdown all go on). False if the server began stopping meanwhile.
async fn handle(hub: &mut Hub, intent: Intent, history: &History, stopping: &Receiver<()>) -> bool {
    let says = matches!(
        &intent,
        Intent::Request {
            request: Request::Say { .. },
            ..
        }
    );
    while says
        && hub.core.pipeline.relay().is_full()
        && !hub.core.pipeline.relay().is_paused()
        && !hub.closing
    {
        // About to wait: who has output must not wait with the hub.
        hub.core.pipeline.wake();
        let at = hub
            .core
            .pipeline
            .relay()
            .wake_at()
            .flatten()
            .unwrap_or_else(|| std::time::Instant::now() + super::durable::PAUSE_NOTICE_AFTER);
        let stopped = future::or(
            async {
                let _ = stopping.recv().await;
                true
            },
            future::or(
                async {
                    history.commit_happened().await;
                    false
                },
                async {
                    smol::Timer::at(at).await;
                    false
                },
            ),
        )
        .await;
        if stopped {
            hub.shutdown();
            return false;
        }
        hub.relay_committed();
    }
    if hub.closing && says {
        return true;
    }
    hub.handle(intent);
    true
}
