//! The bench's IRC and web clients against small fake doors (tests/fake), so their registration
//! and parsing are pinned before the server's doors are wired: every line once and in order,
//! rooms mixing doors reported per door, pings answered, the web upgrade's origin accepted.
//! Like the smoke tests, nothing here is timed.

mod common;
mod fake;

use std::collections::HashMap;

use common::{assert_every_line_once, result_of, run_bench, start_floor};
use fake::FakeDoors;

/// The bench with every door of `fake` given, and `extra` global options.
fn bench(fake: &FakeDoors, extra: &[&str], args: &str) -> HashMap<String, String> {
    let (line, irc, web) = (
        fake.line.to_string(),
        fake.irc.to_string(),
        fake.web.to_string(),
    );
    let mut global = vec!["--addr", &line, "--irc-addr", &irc, "--web-addr", &web];
    global.extend_from_slice(extra);
    result_of(&run_bench(&global, args).unwrap_or_else(|failure| panic!("{failure}")))
}

fn get<'a>(result: &'a HashMap<String, String>, key: &str) -> &'a str {
    result
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {result:?}"))
}

/// A room of IRC clients: registration with and without CAP, every line once and in order,
/// the server's pings answered, replays of earlier runs' lines not counted.
#[test]
fn irc_clients_get_every_line_once() {
    let fake = FakeDoors::start();
    for caps in ["server-time,message-tags,echo-message", "none"] {
        let args = "fanout --clients 8 --senders 3 --lines 30 --mix irc";
        let result = bench(&fake, &["--irc-caps", caps], args);
        assert_every_line_once(&format!("irc, caps {caps}"), &result);
        assert_eq!(get(&result, "mix"), "irc:8");
        assert_eq!(get(&result, "irc_ratio"), "1.0000");
        assert_eq!(get(&result, "irc_caps"), caps);
    }
    assert!(fake.pings_sent() > 0);
    assert!(
        fake.pongs() > 0,
        "{} pings sent, none answered",
        fake.pings_sent()
    );
}

/// A room of web clients: the upgrade passes the origin check, every JSON line is parsed, every
/// line arrives once and in order, and senders' own lines coming back are not deliveries.
#[test]
fn web_clients_get_every_line_once() {
    let fake = FakeDoors::start();
    for _ in 0..2 {
        let result = bench(
            &fake,
            &[],
            "fanout --clients 8 --senders 3 --lines 30 --mix web",
        );
        assert_every_line_once("web", &result);
        assert_eq!(get(&result, "web_readers"), "8");
    }
    assert_eq!(fake.origins_refused(), 0);
}

/// A room mixing all three doors: the clients are shared as asked, each door's readers are
/// reported apart, and every reader of every door gets every line once.
#[test]
fn mixed_rooms_report_each_door() {
    let fake = FakeDoors::start();
    let args = "fanout --clients 12 --senders 4 --lines 25 --mix nc=1,irc=1,web=1";
    let result = bench(&fake, &[], args);
    assert_every_line_once("mixed", &result);
    assert_eq!(get(&result, "mix"), "nc:4,irc:4,web:4");
    for door in ["nc", "irc", "web"] {
        assert_eq!(get(&result, &format!("{door}_readers")), "4");
        assert_eq!(get(&result, &format!("{door}_ratio")), "1.0000");
        assert_eq!(get(&result, &format!("{door}_incomplete")), "0");
    }
    // Half nc, half IRC, paced: the big room's mode on a small room.
    let args = "fanout --clients 6 --senders 2 --rate 100 --duration-secs 0.2 --mix nc=50,irc=50";
    let result = bench(&fake, &[], args);
    assert_every_line_once("paced mixed", &result);
    assert_eq!(get(&result, "lines"), "20");
    assert_eq!(get(&result, "duration_s"), "0.200");
    assert_eq!(get(&result, "mix"), "nc:3,irc:3");
}

/// `idle --transport irc|web` registers every client through that door.
#[test]
fn idle_through_each_door() {
    let fake = FakeDoors::start();
    for door in ["irc", "web", "nc"] {
        let result = bench(
            &fake,
            &[],
            &format!("idle --clients 5 --hold-secs 0 --transport {door}"),
        );
        assert_eq!(get(&result, "scenario"), "idle");
        assert_eq!(get(&result, "door"), door);
        assert_eq!(get(&result, "clients"), "5");
    }
}

/// Clients of a door whose address is missing, or that the floor does not have, are refused
/// before anything connects, with the flag to give; a capability the IRC door refuses fails
/// the run with the server's answer.
#[test]
fn missing_doors_are_refused_clearly() {
    let fake = FakeDoors::start();
    let line = fake.line.to_string();
    let failure = run_bench(
        &["--addr", &line],
        "fanout --clients 4 --senders 1 --mix irc",
    )
    .expect_err("IRC clients without --irc-addr");
    assert!(failure.contains("--irc-addr"), "{failure}");
    let web = fake.web.to_string();
    let failure = run_bench(
        &["--addr", &line, "--web-addr", &web, "--target", "floor"],
        "idle --clients 2 --transport web",
    )
    .expect_err("web clients of the floor");
    assert!(failure.contains("floor relay has no web door"), "{failure}");
    let irc = fake.irc.to_string();
    let failure = run_bench(
        &[
            "--addr",
            &line,
            "--irc-addr",
            &irc,
            "--irc-caps",
            "draft/unknown",
        ],
        "idle --clients 2 --transport irc",
    )
    .expect_err("a capability the server does not offer");
    assert!(
        failure.contains("refused CAP REQ :draft/unknown"),
        "{failure}"
    );
}

/// The big room's paced mode runs against the floor relay too, when it was built.
#[test]
fn paced_fanout_drives_the_floor() {
    let Some(binary) = common::floor_binary() else {
        eprintln!("SKIPPED paced_fanout_drives_the_floor: target/floor/release/floor is not built");
        return;
    };
    let floor = start_floor(&binary);
    let args = "fanout --clients 8 --senders 2 --rate 50 --duration-secs 0.4";
    let result = common::bench(&floor, "floor", args);
    assert_every_line_once("floor, paced", &result);
    assert_eq!(get(&result, "lines"), "20");
}
