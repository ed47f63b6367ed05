//! Big rooms and long replies: join storms are summed up, lists are paged, and a reply to a
//! user's own command never gets that user dropped.

mod common;

use common::{Client, Server};

/// Parses a join notice, single (`* NAME joined`) or summed up (`* N people joined: ...`), into
/// how many joins it stands for.
fn joins_in(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("* ")?;
    if let Some((count, _)) = rest.split_once(" people joined: ") {
        return count.parse().ok();
    }
    let (name, verb) = rest.split_once(' ')?;
    (verb == "joined" && !name.is_empty()).then_some(1)
}

/// In a room bigger than a few people, a burst of joins reaches the others as single notices or
/// as `* N people joined: ...` summaries that together account for every join exactly once.
#[test]
fn a_join_storm_in_a_big_room_accounts_for_everybody() {
    const OTHERS: usize = 60;
    let server = Server::start(&[]);
    let mut watcher = server.join("watcher");
    let mut clients: Vec<Client> = (0..OTHERS).map(|n| server.join(&format!("u{n}"))).collect();
    let mut counted = 0;
    while counted < OTHERS {
        let line = watcher.line().expect("the watcher was disconnected");
        if let Some(n) = joins_in(&line) {
            counted += n;
        }
    }
    assert_eq!(counted, OTHERS, "seen: {:?}", watcher.seen);
    // The summaries are sent before any later message, so this arrives after all of them.
    clients[0].send("after the storm");
    let rest = watcher.lines_until("u0: after the storm");
    assert!(
        rest.iter().all(|l| joins_in(l).is_none()),
        "a join notice after the count was complete: {rest:?}"
    );
    watcher.sync();
    assert!(watcher
        .seen
        .iter()
        .any(|l| l.starts_with(&format!("users in lobby ({}):", OTHERS + 1))));
}

/// `/rooms` with more rooms than a page lists one page and says how to see the next; the asker
/// stays connected even though the whole list is far bigger than its outbox.
#[test]
fn rooms_are_paged_and_the_asker_stays() {
    const ROOMS: usize = 230;
    // The smallest outbox the server accepts: the whole list (some 4 KB) would not fit in it.
    let server = Server::start(&["--max-line", "16", "--outbox-bytes", "1024"]);
    let mut members = Vec::new();
    for n in 0..ROOMS {
        let mut c = server.join(&format!("m{n}"));
        c.send(&format!("/join r{n:03}"));
        c.expect("--- end of history");
        members.push(c);
    }
    let mut asker = server.join("asker");
    asker.send("/rooms");
    asker.expect(&format!("rooms ({}):", ROOMS + 1));
    let more = asker.expect("... and ");
    assert_eq!(
        more.trim(),
        format!(
            "... and {} more: type /rooms 2 for the next page",
            ROOMS + 1 - 200
        )
    );
    asker.send("/rooms 2");
    let page = asker.lines_until("r229 (1 user)");
    assert!(
        page.iter()
            .any(|l| l.starts_with("rooms (231): (page 2 of 2) r199 (1 user)")),
        "{page:?}"
    );
    // Still connected and answering.
    asker.sync();
}
