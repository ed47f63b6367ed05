//! The load generator is built and smoke-run on a tiny load, so it cannot rot. This checks that
//! it works and that every line was delivered, never how fast: timing belongs to the benchmark.
mod common;

use std::process::Command;

use common::Server;

fn bench(server: &Server, args: &[&str]) -> String {
    let pid = server.child.id().to_string();
    let addr = server.addr.to_string();
    let mut all = vec![
        "--addr",
        &addr,
        "--server-pid",
        &pid,
        "--timeout-secs",
        "60",
    ];
    all.extend_from_slice(args);
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args(&all)
        .output()
        .expect("run smolchat-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "smolchat-bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"))
        .to_owned()
}

/// The fanout (closed and open loop), stalled-reader, idle and replay scenarios all run, and
/// every line is delivered to every reading client.
#[test]
fn bench_scenarios_run_on_a_tiny_load() {
    let server = Server::start(&["--rate-per-sec", "0"]);
    // Closed loop, open loop (--rate), and with a stalled reader: every reading client gets
    // every line.
    for args in [
        "fanout --clients 12 --senders 2 --lines 30",
        "fanout --clients 6 --senders 2 --lines 20 --rate 200",
        "fanout --clients 6 --senders 2 --lines 20 --stall 1",
    ] {
        let args: Vec<&str> = args.split_whitespace().collect();
        let result = bench(&server, &args);
        assert!(result.contains(" ratio=1.0000 "), "{args:?}: {result}");
    }
    let idle = bench(&server, &["idle", "--clients", "20", "--hold-secs", "0"]);
    assert!(idle.contains("scenario=idle"), "{idle}");
    let replay = bench(&server, &["replay", "--repeat", "3"]);
    assert!(replay.contains("scenario=replay"), "{replay}");
}

/// fill-db builds a history database that the server then replays from.
#[test]
fn bench_fill_db_feeds_the_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("chat.db");
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args([
            "fill-db",
            "--db",
            db.to_str().expect("path"),
            "--rows",
            "500",
        ])
        .output()
        .expect("run fill-db");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = Server::start_in(dir, &["--history", "50"]);
    let replay = bench(&server, &["replay", "--repeat", "2"]);
    assert!(replay.contains("history_lines_min=50 "), "{replay}");
}

/// The writer scenario drives the production history writer and stores every line.
#[test]
fn bench_writer_stores_every_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("chat.db");
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat-bench"))
        .args([
            "writer",
            "--db",
            db.to_str().expect("path"),
            "--records",
            "2000",
        ])
        .output()
        .expect("run writer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: i64 = common::open_db(&db)
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 2000);
}
