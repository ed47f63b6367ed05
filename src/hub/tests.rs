//! The hub as a whole, driven synchronously: no SQLite, no sockets, no threads (but the one a
//! test may choose for a small stack). The history writer is `durable::fake::Writer`, the
//! account store a detached one, the clock a [`ManualClock`], and the renderer spells events
//! plainly so tests read what each member got.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_channel::Receiver;

use super::control::Control;
use super::core::Core;
use super::durable::fake::Writer;
use super::event::{Event, Notice, Reply};
use super::intent::{Identity, Intent, Joined, OpCommand, Refused, Request, Style};
use super::link::Link;
use super::lookup::{Found, Lookup};
use super::moderation::Moderation;
use super::names::NAME_HOLD;
use super::notices;
use super::outbox::{outbox, Budget, Inbox};
use super::pipeline::Pipeline;
use super::render::{Personal, Render, RendererId, Renderers};
use super::state::Hub;
use crate::clock::ManualClock;
use crate::metrics::Metrics;
use crate::moderation::ban::BanList;
use crate::names::testing::{nick, room};
use crate::names::Nick;
use crate::storage::accounts::{Saved, Store};
use crate::vocab::{Kind, MemberId, PrivateKind};

/// Spells events plainly; `tag` tells two renderers apart.
struct Plain(&'static str);

impl Render for Plain {
    fn render(&self, event: &Event, out: &mut Vec<u8>) {
        let text = match event {
            Event::Said(said) => format!("{}said {}: {}", self.0, said.from, said.text),
            Event::Notice(Notice::Joined { room, nick, .. }) => format!("joined {nick} {room}"),
            Event::Notice(Notice::Left { room, nick, why }) => {
                format!("left {nick} {room} {why:?}")
            }
            Event::Notice(Notice::Summary { changes, .. }) => format!("summary {}", changes.len()),
            Event::Notice(notice) => format!("{notice:?}"),
            Event::Server(notice) => format!("server {notice:?}"),
            Event::Signal(signal) => format!("signal {}: {}", signal.from, signal.data),
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }

    fn render_to(&self, _: &Nick, personal: Personal<'_>, out: &mut Vec<u8>) {
        let text = match personal {
            Personal::Reply(Reply::Refused(refusal)) => format!("refused {refusal:?}"),
            Personal::Reply(reply) => format!("reply {reply:?}"),
            Personal::Private(p) => format!("private {}: {}", p.from, p.text),
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }

    fn mimics_notice(&self, action: &str) -> bool {
        action.starts_with("joined")
    }
}

/// A hub and what it is built on.
struct Fixture {
    hub: Hub,
    writer: Writer,
    clock: Arc<ManualClock>,
    budget: Arc<Budget>,
    inboxes: HashMap<MemberId, Inbox>,
    /// What the hub counted, read with [`Fixture::metric`].
    metrics: Metrics,
    _control: Receiver<Control>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_budget(usize::MAX)
    }

    fn with_budget(limit: usize) -> Fixture {
        let writer = Writer::new(1 << 20);
        let budget = Budget::new(limit);
        let metrics = Metrics::new(false);
        let mut renderers = Renderers::default();
        renderers.register(Arc::new(Plain(""))).unwrap();
        renderers.register(Arc::new(Plain("irc "))).unwrap();
        let pipeline = Pipeline::new(
            renderers,
            (budget.clone(), metrics.hub()),
            Box::new(writer.clone()),
            0,
        );
        let (control_tx, control) = async_channel::unbounded();
        let bans = Arc::new(std::sync::RwLock::new(BanList::default()));
        let moderation = Moderation::new(bans, Store::detached(), Saved::default(), control_tx);
        let clock = Arc::new(ManualClock::new());
        let core = Core::new(pipeline, Link::Single);
        Fixture {
            hub: Hub::new(core, moderation, clock.clone()),
            writer,
            clock,
            budget,
            inboxes: HashMap::new(),
            metrics,
            _control: control,
        }
    }

    /// Registers `name` from 192.0.2.x (x = id), as a plain user of renderer 0.
    fn join(&mut self, id: MemberId, name: &str) -> Result<Joined, Refused> {
        self.join_with(
            id,
            name,
            false,
            Style {
                renderer: RendererId(0),
                echo: false,
            },
        )
    }

    fn join_with(
        &mut self,
        id: MemberId,
        name: &str,
        operator: bool,
        style: Style,
    ) -> Result<Joined, Refused> {
        let (outbox, inbox) = outbox(64 * 1024, self.budget.clone());
        let (reply, answer) = async_channel::bounded(1);
        let identity = Identity {
            ip: format!("192.0.2.{}", id % 250).parse().unwrap(),
            account: operator.then(|| name.into()),
            operator,
            cli_operator: false,
            tls: false,
            realname: None,
            lobby: true,
        };
        let nick = Nick::parse(name).unwrap();
        self.hub.handle(Intent::Register {
            id,
            nick,
            outbox,
            identity,
            style,
            reply,
        });
        self.inboxes.insert(id, inbox);
        answer.try_recv().unwrap()
    }

    fn request(&mut self, id: MemberId, request: Request) {
        self.hub.handle(Intent::Request { id, request });
    }

    fn say(&mut self, id: MemberId, text: &str) {
        let request = Request::Say {
            room: None,
            kind: Kind::Message,
            text: text.into(),
            attached: None,
        };
        self.request(id, request);
    }

    /// The writer commits everything; the hub relays it.
    fn commit(&mut self) {
        self.writer.commit_all();
        self.hub.relay_committed();
        self.hub.core.pipeline.wake();
    }

    /// The value of one sample of the metrics, as a scrape shows it (`None` if absent).
    fn metric(&self, sample: &str) -> Option<f64> {
        let text = self.metrics.encode();
        let line = text.lines().find(|line| {
            line.strip_prefix(sample)
                .is_some_and(|rest| rest.starts_with(' '))
        })?;
        line.rsplit(' ').next()?.parse().ok()
    }

    /// Every line member `id` got since the last call.
    fn lines(&mut self, id: MemberId) -> Vec<String> {
        let inbox = &self.inboxes[&id];
        let mut lines = Vec::new();
        while let Some(taken) = inbox.try_recv() {
            let text = String::from_utf8(taken.bytes).unwrap();
            lines.extend(text.lines().map(str::to_owned));
            inbox.sent();
        }
        lines
    }
}

/// A public line is relayed to the others only once the writer has committed it, with its id;
/// its sender gets it back only if it asked (echo), in its own renderer's flavour.
#[test]
fn committed_lines_reach_the_others() {
    let mut f = Fixture::new();
    f.join(1, "alice").unwrap();
    f.join_with(
        2,
        "bob",
        false,
        Style {
            renderer: RendererId(1),
            echo: true,
        },
    )
    .unwrap();
    f.join(3, "carol").unwrap();
    for id in 1..=3 {
        f.lines(id);
    }
    f.say(2, "hi");
    assert!(f.lines(1).is_empty(), "relayed before it was stored");
    f.commit();
    assert_eq!(f.lines(1), ["said bob: hi"]);
    assert_eq!(f.lines(2), ["irc said bob: hi"], "echo, in its own flavour");
    f.say(1, "hello");
    f.commit();
    assert!(f.lines(1).is_empty(), "no echo unless asked");
    let stored = f.writer.queued.lock().unwrap();
    assert_eq!(stored.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
}

/// A registration whose session gave up before the reply (its name deadline passed) is undone,
/// so the name does not stay taken by nobody; the very name is refused as taken.
#[test]
fn abandoned_registration_frees_the_name() {
    let mut f = Fixture::new();
    let (outbox, _inbox) = outbox(1024, f.budget.clone());
    let (reply, answer) = async_channel::bounded(1);
    drop(answer);
    let identity = Identity {
        ip: "192.0.2.1".parse().unwrap(),
        account: None,
        operator: false,
        cli_operator: false,
        tls: false,
        realname: None,
        lobby: true,
    };
    let nick = Nick::parse("ghost").unwrap();
    let style = Style {
        renderer: RendererId(0),
        echo: false,
    };
    f.hub.handle(Intent::Register {
        id: 1,
        nick,
        outbox,
        identity,
        style,
        reply,
    });
    assert!(
        f.join(2, "ghost").is_ok(),
        "the abandoned name was still taken"
    );
    assert_eq!(f.join(3, "GHOST").err(), Some(Refused::Taken));
    assert_eq!(f.join(4, "gh0st").err(), Some(Refused::LooksLike));
}

/// Thousands of sessions gone at once (their outboxes closed before their quit arrived) are
/// cleaned up without recursion: on a small stack, a recursive cleanup would overflow.
#[test]
fn a_leave_storm_does_not_recurse() {
    let hub = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let mut f = Fixture::new();
            for id in 0..1500 {
                f.join(id, &format!("u{id}")).unwrap();
                // Read the join notices, as live clients would, so nobody is dropped as slow.
                let ids: Vec<MemberId> = f.inboxes.keys().copied().collect();
                for id in ids {
                    f.lines(id);
                }
            }
            f.inboxes.clear();
            f.hub.handle(Intent::Quit {
                id: 0,
                reason: None,
            });
            while f.hub.announce_departures(16) {}
            // The hub is consistent: the names are free again.
            assert!(f.join(9999, "u1499").is_ok());
        })
        .unwrap();
    hub.join().unwrap();
}

/// Over the server-wide budget, the member furthest behind is dropped first, and one that
/// reads is never dropped.
#[test]
fn the_furthest_behind_is_dropped_first() {
    let mut f = Fixture::with_budget(4000);
    f.join(1, "talker").unwrap();
    f.join(4, "reader").unwrap();
    // `far` is one join notice further behind than `near` from the start.
    f.join(2, "far").unwrap();
    f.join(3, "near").unwrap();
    f.lines(1);
    f.lines(4);
    let kicked = |f: &Fixture, id| f.inboxes[&id].was_kicked();
    let mut first_dropped = None;
    for n in 0..200 {
        f.say(1, &format!("line {n} {}", "x".repeat(40)));
        f.commit();
        assert!(f.lines(4).iter().any(|l| l.contains(&format!("line {n} "))));
        f.lines(1);
        assert!(!kicked(&f, 1) && !kicked(&f, 4));
        match (kicked(&f, 2), kicked(&f, 3)) {
            (false, false) => {}
            (true, false) => {
                first_dropped.get_or_insert(n);
            }
            (far, near) => {
                assert!(far && near, "near was dropped before far");
                break;
            }
        }
    }
    assert!(first_dropped.is_some(), "nobody was dropped");
    assert!(f.budget.used() <= 4000 + 64 * 1024);
}

/// A reader whose own outbox overflows in the turn that also takes all outboxes over the
/// budget is dropped once, and counted once: under the limit it passed first.
#[test]
fn a_slow_reader_over_both_limits_is_counted_once() {
    let mut f = Fixture::with_budget(4000);
    f.join(1, "talker").unwrap();
    f.join(2, "stalled").unwrap();
    f.lines(1);
    // One turn commits more than the stalled reader's outbox (64 KiB) holds.
    for n in 0..100 {
        f.say(1, &format!("line {n} {}", "x".repeat(1000)));
    }
    f.commit();
    assert!(f.inboxes[&2].was_kicked());
    let dropped = |f: &Fixture, limit| {
        let sample = format!("smolchat_slow_readers_dropped_total{{limit=\"{limit}\"}}");
        f.metric(&sample).unwrap_or_else(|| panic!("no {sample}"))
    };
    assert_eq!(dropped(&f, "outbox_bytes"), 1.0);
    assert_eq!(dropped(&f, "outbox_total_bytes"), 0.0);
}

/// A member may sit in several rooms; leaving the chat tells each room, and a member sharing
/// two of them is told once. The line door's move (`alone`) leaves every room first.
#[test]
fn several_rooms_and_one_notice_per_member() {
    let mut f = Fixture::new();
    f.join(1, "alice").unwrap();
    f.join(2, "bob").unwrap();
    let (tx, _rx) = async_channel::bounded(1);
    for (id, r) in [(1, "rust"), (2, "rust")] {
        let (room, reply) = (room(r), tx.clone());
        f.hub.handle(Intent::Join {
            id,
            room,
            alone: false,
            reply,
        });
    }
    f.lines(1);
    f.lines(2);
    f.request(
        1,
        Request::Who {
            room: None,
            page: 1,
        },
    );
    assert_eq!(f.lines(1), ["refused WhichRoom"]);
    f.hub.handle(Intent::Quit {
        id: 2,
        reason: Some("bye".into()),
    });
    let seen = f.lines(1);
    assert_eq!(seen.len(), 1, "told once: {seen:?}");
    assert!(seen[0].starts_with("left bob lobby Quit"), "{seen:?}");
    let (room, reply) = (room("go"), tx);
    f.hub.handle(Intent::Join {
        id: 1,
        room,
        alone: true,
        reply,
    });
    f.request(
        1,
        Request::Rooms {
            page: 0,
            only: vec![],
        },
    );
    let rooms = f.lines(1);
    assert!(
        rooms
            .iter()
            .any(|l| l.contains("\"go\"") && !l.contains("lobby")),
        "{rooms:?}"
    );
}

/// A member dropped as a slow reader has its name held for its address; on the clock the test
/// moves, the hold ends after a minute.
#[test]
fn a_dropped_members_name_is_held_a_minute() {
    let mut f = Fixture::new();
    f.join(1, "alice").unwrap();
    f.join(2, "victim").unwrap();
    f.lines(1);
    // The victim stops reading until its outbox overflows.
    while !f.inboxes[&2].was_kicked() {
        f.say(1, &"y".repeat(1000));
        f.commit();
        f.lines(1);
        while f.hub.announce_departures(16) {}
    }
    assert_eq!(f.join(3, "victim").err(), Some(Refused::Held(60)));
    f.clock.advance(NAME_HOLD);
    assert!(f.join(4, "victim").is_ok());
}

/// Joins in a big room past the first few in a window are held, and summed up once the window
/// ends, on the test's clock.
#[test]
fn a_join_storm_is_summed_up() {
    let mut f = Fixture::new();
    for id in 0..40 {
        f.join(id, &format!("u{id}")).unwrap();
    }
    f.lines(0);
    assert!(f.hub.core.pipeline.next_summary().is_some());
    f.hub.due_summaries();
    assert!(
        f.lines(0).iter().all(|l| !l.starts_with("summary")),
        "not due yet"
    );
    f.clock.advance(Duration::from_secs(1));
    f.hub.due_summaries();
    f.hub.core.pipeline.wake();
    let seen = f.lines(0);
    assert!(seen.iter().any(|l| l.starts_with("summary")), "{seen:?}");
}

/// A big room whose members' sessions all ended at once (a network cut) gets its leave storm
/// summed up like any other: the first notice finds them removed together, the room already
/// small, but the room was big when they left.
#[test]
fn a_leave_storm_of_sessions_gone_at_once_is_summed_up() {
    let mut f = Fixture::new();
    for id in 0..60 {
        f.join(id, &format!("u{id}")).unwrap();
        let ids: Vec<MemberId> = f.inboxes.keys().copied().collect();
        for id in ids {
            f.lines(id);
        }
    }
    // Well past the join storm and its summary.
    for _ in 0..3 {
        f.clock.advance(Duration::from_secs(5));
        f.hub.due_summaries();
    }
    f.lines(0);
    // Every session but the watcher's ends: their outboxes close, and the first quit's notice
    // finds all the others gone.
    f.inboxes.retain(|id, _| *id == 0);
    f.hub.handle(Intent::Quit {
        id: 1,
        reason: None,
    });
    while f.hub.announce_departures(16) {}
    f.hub.core.pipeline.wake();
    let at_once = f.lines(0);
    assert_eq!(at_once.len(), notices::FEW as usize, "{at_once:?}");
    f.clock.advance(notices::WINDOW);
    f.hub.due_summaries();
    f.hub.core.pipeline.wake();
    assert_eq!(f.lines(0), ["summary 55"]);
}

/// Operator commands are refused to members who are not operators, in one place, by kind; an
/// operator's ban removes the member it covers, with its last words.
#[test]
fn operators_only() {
    let mut f = Fixture::new();
    let plain = Style {
        renderer: RendererId(0),
        echo: false,
    };
    f.join_with(1, "boss", true, plain).unwrap();
    f.join(2, "bob").unwrap();
    f.request(2, Request::Operator(OpCommand::Bans));
    assert_eq!(f.lines(2).last().unwrap(), "refused OperatorsOnly(Bans)");
    let target = crate::moderation::ban::Target::parse("bob");
    let ban = OpCommand::Ban {
        target,
        duration: None,
        reason: None,
    };
    f.request(1, Request::Operator(ban));
    assert!(f.lines(2).iter().any(|l| l.contains("Removed(Banned")));
    let seen = f.lines(1);
    assert!(
        seen.iter().any(|l| l.contains("Removed(Banned")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|l| l.contains("BanSet")), "{seen:?}");
}

/// An action that would read like a notice in some door is refused, whichever door sent it.
#[test]
fn actions_that_mimic_notices_are_refused() {
    let mut f = Fixture::new();
    f.join(1, "mallory").unwrap();
    let say = Request::Say {
        room: None,
        kind: Kind::Action,
        text: "joined".into(),
        attached: None,
    };
    f.request(1, say);
    assert_eq!(f.lines(1).last().unwrap(), "refused LooksLikeNotice");
}

/// The answer to a lookup.
fn look(f: &mut Fixture, lookup: Lookup) -> Found {
    let (reply, answer) = async_channel::bounded(1);
    f.hub.handle(Intent::Lookup { lookup, reply });
    answer.try_recv().unwrap()
}

/// Lookups answer for any room (rooms are public), for names (with their rooms), for a
/// predicate and with counts; an away member's room-mates are told once each, listings show
/// its message, and a private line to it answers with it.
#[test]
fn lookups_and_away() {
    let mut f = Fixture::new();
    f.join(1, "alice").unwrap();
    let plain = Style {
        renderer: RendererId(0),
        echo: false,
    };
    f.join_with(2, "boss", true, plain).unwrap();
    let (tx, _rx) = async_channel::bounded(1);
    for id in [1, 2] {
        let (room, reply) = (room("rust"), tx.clone());
        f.hub.handle(Intent::Join {
            id,
            room,
            alone: false,
            reply,
        });
    }
    f.request(
        1,
        Request::Part {
            room: room("rust"),
            reason: None,
        },
    );
    let Found::Members(rust) = look(&mut f, Lookup::Room(room("rust"))) else {
        panic!("members")
    };
    assert_eq!(rust.len(), 1, "alice left #rust: {rust:?}");
    assert!(rust[0].operator && rust[0].nick.as_str() == "boss");
    let named = vec![Nick::parse("BOSS").unwrap(), Nick::parse("ghost").unwrap()];
    let Found::Seated(seated) = look(&mut f, Lookup::Named(named)) else {
        panic!("seated")
    };
    assert_eq!(seated.len(), 1);
    assert_eq!(seated[0].1, [room("lobby"), room("rust")]);
    let a = Box::new(|n: &Nick| n.as_str().starts_with('a'));
    let Found::Members(matching) = look(&mut f, Lookup::Matching(a)) else {
        panic!("members")
    };
    assert_eq!(matching.len(), 1);
    let Found::Counts(counts) = look(&mut f, Lookup::Counts) else {
        panic!("counts")
    };
    assert_eq!((counts.local, counts.users, counts.operators), (2, 2, 1));
    assert_eq!((counts.rooms, counts.peak_local, counts.nodes), (2, 2, 1));
    f.lines(1);
    f.lines(2);
    f.request(2, Request::Away(Some("lunch".into())));
    assert!(f.lines(2).is_empty(), "the member itself is not told");
    let told = f.lines(1);
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].starts_with("Away"), "{told:?}");
    f.request(2, Request::Away(Some("lunch".into())));
    assert!(f.lines(1).is_empty(), "no change, no notice");
    let Found::Members(lobby) = look(&mut f, Lookup::Room(room("lobby"))) else {
        panic!("members")
    };
    assert_eq!(lobby[1].away.as_deref(), Some("lunch"));
    let to = Nick::parse("boss").unwrap();
    f.request(
        1,
        Request::Private {
            to,
            text: "hi".into(),
            kind: PrivateKind::Line,
            attached: None,
        },
    );
    let sent = f.lines(1);
    assert!(sent[0].contains("away: Some(\"lunch\")"), "{sent:?}");
}

/// A page past a list's last is refused in one line, for `/who` and `/rooms` alike; page 1 of
/// a list and the whole list are answered.
#[test]
fn a_page_past_the_last_is_refused() {
    let mut f = Fixture::new();
    f.join(1, "alice").unwrap();
    f.lines(1);
    let who = |page| Request::Who { room: None, page };
    f.request(1, who(2));
    assert_eq!(f.lines(1), ["refused NoSuchPage { page: 2, pages: 1 }"]);
    f.request(
        1,
        Request::Rooms {
            page: 3,
            only: Vec::new(),
        },
    );
    assert_eq!(f.lines(1), ["refused NoSuchPage { page: 3, pages: 1 }"]);
    for request in [
        who(1),
        who(0),
        Request::Rooms {
            page: 1,
            only: Vec::new(),
        },
    ] {
        f.request(1, request);
        let lines = f.lines(1);
        assert!(
            lines.len() == 1 && !lines[0].starts_with("refused"),
            "{lines:?}"
        );
    }
}

/// RFC 2812 3.3.2: nothing answers a notice. A private line to nobody, or past the recipient's
/// allowance, is refused; a notice in the same case goes nowhere without a word.
#[test]
fn a_notice_is_never_refused() {
    let mut f = Fixture::new();
    f.join(1, "alice").unwrap();
    f.join(2, "bob").unwrap();
    let private = |to: &str, kind| Request::Private {
        to: nick(to),
        text: "hi".into(),
        kind,
        attached: None,
    };
    f.lines(1);
    f.request(1, private("nobody", PrivateKind::Notice));
    f.request(1, private("nobody", PrivateKind::CtcpReply));
    assert_eq!(f.lines(1), Vec::<String>::new());
    f.request(1, private("nobody", PrivateKind::Line));
    let seen = f.lines(1);
    assert!(
        seen.len() == 1 && seen[0].starts_with("refused NoSuchUser"),
        "{seen:?}"
    );
    for _ in 0..100 {
        f.request(1, private("bob", PrivateKind::Notice));
    }
    let seen = f.lines(1);
    assert!(seen.iter().all(|l| !l.starts_with("refused")), "{seen:?}");
    f.request(1, private("bob", PrivateKind::Line));
    let seen = f.lines(1);
    assert!(seen[0].starts_with("refused PrivateFlood"), "{seen:?}");
}

/// A signal alone (IRC's `TAGMSG` to a nick: a private line without text) is refused when its
/// nick is nobody's, but past the recipient's allowance it goes nowhere without a word, as a
/// signal to a room does.
#[test]
fn a_signal_to_a_nick_is_quiet_past_the_allowance() {
    let mut f = Fixture::new();
    f.join(1, "alice").unwrap();
    f.join(2, "bob").unwrap();
    let signal = |to: &str| Request::Private {
        to: nick(to),
        text: String::new(),
        kind: PrivateKind::Line,
        attached: Some("+typing=active".into()),
    };
    f.lines(1);
    f.request(1, signal("nobody"));
    let seen = f.lines(1);
    assert!(
        seen.len() == 1 && seen[0].starts_with("refused NoSuchUser"),
        "{seen:?}"
    );
    for _ in 0..100 {
        f.request(1, signal("bob"));
    }
    let seen = f.lines(1);
    assert!(seen.iter().all(|l| !l.starts_with("refused")), "{seen:?}");
}
