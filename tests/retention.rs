//! `--retention` over the real binary: messages older than the policy are removed (rows dated in
//! the past stand in for waiting), replays, `/history` and `/search` say so, accounts and the
//! moderation tables are untouched, and the file shrinks.
mod common;
use std::process::Command;

use common::history::{database_with, days_ago, Msg};
use common::{message_rows, open_db, Server};

fn msg(days: i64, room: &'static str, body: &str) -> Msg<'static> {
    Msg {
        at: days_ago(days),
        sender: "oldie",
        room,
        body: body.to_owned(),
    }
}

fn smolchat(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .args(args)
        .output()
        .expect("run smolchat")
}

/// Messages older than `--retention` are removed at start (and on the writer's schedule after);
/// the join replay and `/history` say older messages were removed rather than "nothing older";
/// searches no longer find them; accounts, bans and the moderation log stay.
#[test]
fn old_messages_are_removed_and_replays_say_so() {
    let mut rows: Vec<Msg> = (1..=5)
        .map(|n| msg(40, "lobby", &format!("ancient {n}")))
        .collect();
    rows.push(msg(35, "rust", "ancient rust"));
    rows.push(msg(31, "rust", "ancient rust again"));
    rows.extend((1..=3).map(|n| msg(10, "lobby", &format!("recent {n}"))));
    let dir = database_with(rows);
    let db = dir.path().join("chat.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "INSERT INTO accounts (name, display, password_hash, created_at)
                 VALUES ('oldie', 'oldie', 'x', '2020-01-01 00:00:00.000');
             INSERT INTO bans (kind, target, banned_by, created_at)
                 VALUES ('name', 'mallory', 'cli', '2020-01-01 00:00:00.000');
             INSERT INTO moderation_log (at, operator, action, target)
                 VALUES ('2020-01-01 00:00:00.000', 'cli', 'ban', 'mallory');",
        )
        .unwrap();

    let server = Server::start_in(dir, &["--retention", "30d"]);
    server.wait_log("retention: removed 7 messages older than 30d");
    // At once, not after a retry: the step takes the write lock before it reads.
    assert!(
        !server.log().contains("removing old messages failed"),
        "{}",
        server.log()
    );

    let (mut alice, replay) = server.join_replay("alice");
    let texts: Vec<&str> = replay[1..].iter().map(String::as_str).collect();
    assert_eq!(
        texts[..2],
        [
            "--- history of lobby ---",
            "--- older messages were removed after 30d ---"
        ]
    );
    assert_eq!(texts.len(), 6, "{replay:?}");
    assert!(texts[2].ends_with("oldie: recent 1"), "{replay:?}");
    assert_eq!(texts[5], "--- end of history (3 messages) ---");

    alice.send("/history");
    alice.next_is("--- earlier history of lobby ---");
    alice.next_is("--- beginning of lobby history: older messages were removed after 30d ---");
    alice.next_is("--- end of earlier history (0 messages) ---");

    alice.send("/search ancient");
    alice.next_is("--- search of lobby for ancient, newest first ---");
    alice.next_is("--- older messages were removed after 30d ---");
    alice.next_is("--- end of search (no matches) ---");

    alice.send("/join rust");
    alice.expect("--- history of rust ---");
    alice.next_is("--- older messages were removed after 30d ---");
    alice.next_is("--- end of history (0 messages) ---");
    // A room retention never touched has nothing to say about it.
    alice.send("/join fresh");
    alice.expect("--- history of fresh ---");
    alice.next_is("--- end of history (0 messages) ---");

    let (_dir, db) = server.stop_and_open_db();
    let bodies: Vec<String> = message_rows(&db).into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["recent 1", "recent 2", "recent 3"]);
    let kept: (i64, i64, i64) = db
        .query_row(
            "SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM bans),
                    (SELECT count(*) FROM moderation_log)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(kept, (1, 1, 1));
    let removed: i64 = db
        .query_row("SELECT sum(removed) FROM history_removed", [], |r| r.get(0))
        .unwrap();
    assert_eq!(removed, 7);
}

/// Without `--retention` nothing is removed, however old.
#[test]
fn without_retention_everything_stays() {
    let dir = database_with([msg(4000, "lobby", "from long ago")]);
    let server = Server::start_in(dir, &[]);
    let (_alice, replay) = server.join_replay("alice");
    assert!(replay[2].ends_with("oldie: from long ago"), "{replay:?}");
    assert_eq!(replay[3], "--- end of history (1 message) ---");
}

/// A new database gives the pages of removed messages back: the file shrinks.
#[test]
fn the_file_shrinks() {
    let body = "x".repeat(1000);
    let mut rows: Vec<Msg> = (0..3000).map(|_| msg(100, "lobby", &body)).collect();
    rows.push(msg(1, "lobby", "keep me"));
    let dir = database_with(rows);
    let db = dir.path().join("chat.db");
    let before = std::fs::metadata(&db).unwrap().len();

    let server = Server::start_in(dir, &["--retention", "30d"]);
    server.wait_log("retention: removed 3000 messages older than 30d");
    let dir = server.stop();
    let after = std::fs::metadata(dir.path().join("chat.db")).unwrap().len();
    assert!(
        after * 4 < before,
        "the file went from {before} to {after} bytes"
    );
    let bodies: Vec<String> = message_rows(&open_db(&dir.path().join("chat.db")))
        .into_iter()
        .map(|r| r.body)
        .collect();
    assert_eq!(bodies, ["keep me"]);
}

/// A database made before incremental auto-vacuum still has its old messages removed, and the
/// log says how to let it shrink: `smolchat compact`, which refuses while the server runs and
/// afterwards switches the file over.
#[test]
fn an_older_file_is_compacted_offline() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    {
        // An old smolchat's file: tables made before auto-vacuum was asked for.
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_messages.sql"))
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    common::history::insert(&db, (0..200).map(|n| msg(60, "lobby", &format!("old {n}"))));
    let db_arg = db.to_str().unwrap().to_owned();

    let server = Server::start_in(dir, &["--retention", "30d"]);
    server.wait_log("retention: removed 200 messages older than 30d");
    assert!(
        server.log().contains("smolchat compact"),
        "{}",
        server.log()
    );
    let busy = smolchat(&["compact", "--db", &db_arg]);
    assert!(!busy.status.success());
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(
        stderr.contains("a smolchat server is running on this database: stop it first"),
        "{stderr}"
    );

    let _dir = server.stop();
    let done = smolchat(&["compact", "--db", &db_arg]);
    assert!(done.status.success(), "{done:?}");
    assert!(String::from_utf8_lossy(&done.stdout).starts_with("compacted "));
    let check = smolchat(&["check", "--db", &db_arg]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("incremental auto-vacuum"), "{report}");
    assert!(report.contains("removed by --retention: 200"), "{report}");
}

/// A retention that is not a duration is refused at start with a one-line error.
#[test]
fn a_bad_retention_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("chat.db");
    let out = smolchat(&[
        "--listen",
        "127.0.0.1:0",
        "--retention",
        "30",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--retention 30: expected a duration such as 30d"),
        "{stderr}"
    );
}
