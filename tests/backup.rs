//! `smolchat backup` and `smolchat check` over the real binary, as docs/DEPLOY.md uses them: a
//! backup taken while clients chat restores to a server that has every line any client had
//! received; check passes a good file (also while the server runs) and fails a damaged one.
mod common;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::history::{database_with, days_ago, Msg};
use common::{message_rows, open_db, Server, TIMEOUT};

fn smolchat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .args(args)
        .output()
        .expect("run smolchat")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// A history of `n` lines in the lobby, a day old.
fn history_of(n: usize) -> tempfile::TempDir {
    database_with((0..n).map(|i| Msg {
        at: days_ago(1),
        sender: "filler",
        room: "lobby",
        body: format!("filler {i} {}", "y".repeat(200)),
    }))
}

/// Three clients chat as fast as they can while a backup is taken; the lines any of them had
/// received when the backup started are all in the restored history, which is a consistent
/// prefix of the original (the same rows, no gaps). The restored file passes the check and a
/// server starts on it.
#[test]
fn a_backup_under_load_restores_every_line_seen() {
    let server = Server::start_in(history_of(20_000), &["--rate-per-sec", "0"]);
    let names = ["s1", "s2", "s3"];
    let clients = server.join_all(names);
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (mut client, name) in clients.into_iter().zip(names) {
        let mut writer = client.stream.try_clone().expect("clone");
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if writer
                    .write_all(format!("line {n} from {name}\n").as_bytes())
                    .is_err()
                {
                    break;
                }
                n += 1;
            }
        }));
        let received = received.clone();
        threads.push(std::thread::spawn(move || {
            while let Some(line) = client.line() {
                received.lock().unwrap().push(line);
            }
        }));
    }
    let count = || received.lock().unwrap().len();
    let deadline = Instant::now() + TIMEOUT;
    while count() < 300 {
        assert!(Instant::now() < deadline, "the chat never got going");
        std::thread::yield_now();
    }

    // Everything received so far is committed (lines are relayed only once stored), so it is in
    // any snapshot taken from now on.
    let seen: BTreeSet<String> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(": line "))
        .cloned()
        .collect();
    let backups = tempfile::tempdir().unwrap();
    let copy = backups.path().join("smolchat-backup.db");
    let out = smolchat(&[
        "backup",
        path_str(&copy),
        "--db",
        path_str(&server.db_path()),
    ]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.starts_with("backed up "), "{report}");
    assert!(report.contains(" pages, "), "{report}");
    assert!(report.contains("accounts: 0"), "{report}");

    stop.store(true, Ordering::Relaxed);
    let original = server.stop();
    for thread in threads {
        thread.join().unwrap();
    }

    // Restore as docs/DEPLOY.md says: the copy becomes chat.db in a new place.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join("chat.db")).unwrap();
    let check = smolchat(&["check", "--db", path_str(&restored.path().join("chat.db"))]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let server = Server::start_in(restored, &[]);
    let mut newcomer = server.join("newcomer");
    newcomer.send("after the restore");
    // Handled by the hub, so queued for the writer, which commits it before the server exits.
    newcomer.sync();
    let (_dir, db) = server.stop_and_open_db();
    let rows = message_rows(&db);
    let (last, before_restore) = rows.split_last().unwrap();
    assert_eq!(last.body, "after the restore");
    let stored: BTreeSet<String> = before_restore
        .iter()
        .map(|r| format!("{}: {}", r.sender, r.body))
        .collect();
    let missing: Vec<&String> = seen.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} lines seen but not restored: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    // One snapshot: the original's first rows, in order, without a gap.
    let originals = message_rows(&open_db(&original.path().join("chat.db")));
    assert!(before_restore.len() > 20_000 + seen.len() / 2);
    assert_eq!(before_restore, &originals[..before_restore.len()]);
    // The chat went on beside the backup: the server stored lines after its snapshot. (Counting
    // lines relayed while the backup ran was a race: a quick copy can end before the next relay.)
    assert!(
        originals.len() > before_restore.len(),
        "nothing was stored after the backup's snapshot"
    );
}

/// `check` says what a good file holds and exits 0, also while the server runs; a file with
/// damaged pages fails with the problems listed and exit status 1.
#[test]
fn check_passes_a_good_file_and_fails_a_damaged_one() {
    let server = Server::start_in(history_of(3000), &[]);
    let db = server.db_path();
    let out = smolchat(&["check", "--db", path_str(&db)]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("messages: 3000 in 1 rooms, from 20"),
        "{report}"
    );
    assert!(report.contains("integrity: ok"), "{report}");
    let dir = server.stop();

    let bad = dir.path().join("damaged.db");
    std::fs::copy(dir.path().join("chat.db"), &bad).unwrap();
    let mut bytes = std::fs::read(&bad).unwrap();
    // Pages in the middle of the file (the messages and their index), not the header.
    let page = 4096;
    let pages = bytes.len() / page;
    for byte in &mut bytes[page * (pages / 3)..page * (pages / 3 + 4)] {
        *byte = 0x5a;
    }
    std::fs::write(&bad, bytes).unwrap();
    let out = smolchat(&["check", "--db", path_str(&bad)]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("integrity: DAMAGED"), "{report}");
    assert!(
        report.contains("restore the latest good backup"),
        "{report}"
    );
}

/// Mistakes are one line and a non-zero exit: a missing database, a backup over an existing
/// file.
#[test]
fn mistakes_are_one_line() {
    let dir = history_of(10);
    let db = dir.path().join("chat.db");
    let out = smolchat(&["check", "--db", path_str(&dir.path().join("nope.db"))]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("smolchat check: "), "{stderr}");
    assert!(stderr.contains("no database at"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let out = smolchat(&["backup", path_str(&db), "--db", path_str(&db)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exists already"), "{stderr}");
    assert!(
        !dir.path().join("nope.db").exists(),
        "check created the file"
    );
}
