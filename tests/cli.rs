//! The command line: `--help`, and one-line errors (never a panic) for bad flags, unusable
//! addresses and unusable database paths.
use std::process::{Command, Output};

fn smolchat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .args(args)
        .output()
        .expect("run smolchat")
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("smolchat: ") || l.contains("Unrecognized"))
        .unwrap_or_else(|| panic!("no one-line error in {stderr:?}"));
    assert!(
        line.contains(needle),
        "{line:?} does not mention {needle:?}"
    );
}

/// `--help` explains every flag and exits 0.
#[test]
fn help_lists_every_flag() {
    let out = smolchat(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--db",
        "--history",
        "--log-level",
        "--threads",
        "--max-line",
        "--register-timeout",
        "--rate-burst",
        "--rate-per-sec",
        "--outbox-bytes",
        "--max-clients",
        "--max-per-ip",
        "--max-unregistered",
        "--limit-loopback",
        "--commit-ms",
        "--shutdown-grace",
        "--retention",
        "--connects-per-minute",
        "--registrations-per-hour",
        "--irc-listen",
        "--irc-tls-listen",
        "--server-name",
        "--irc-ping",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

/// An unknown flag exits non-zero with a one-line error.
#[test]
fn unknown_flag_is_an_error() {
    let out = smolchat(&["--frobnicate"]);
    assert_one_line_error(&out, "--frobnicate");
}

/// A malformed address exits non-zero and says which flag is wrong.
#[test]
fn malformed_address_is_an_error() {
    let out = smolchat(&["--listen", "not-an-address"]);
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("--listen"), "{all}");
    assert!(!all.contains("panicked"), "{all}");
}

/// An address that cannot be bound (already in use) exits non-zero with a one-line error.
#[test]
fn address_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("chat.db");
    let out = smolchat(&["--listen", &addr, "--db", db.to_str().expect("path")]);
    assert_one_line_error(&out, &format!("cannot listen on {addr}"));
}

/// A database in a directory that does not exist exits non-zero with a one-line error.
#[test]
fn unusable_database_path_is_an_error() {
    let out = smolchat(&[
        "--listen",
        "127.0.0.1:0",
        "--db",
        "/nonexistent-dir/for/smolchat.db",
    ]);
    assert_one_line_error(&out, "/nonexistent-dir/for/smolchat.db");
}

/// A file that is not a SQLite database is refused, not overwritten.
#[test]
fn non_database_file_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("notes.txt");
    std::fs::write(&db, "these are my notes, not a database\n".repeat(100)).expect("write");
    let out = smolchat(&[
        "--listen",
        "127.0.0.1:0",
        "--db",
        db.to_str().expect("path"),
    ]);
    assert_one_line_error(&out, "notes.txt");
    let kept = std::fs::read_to_string(&db).expect("read");
    assert!(kept.starts_with("these are my notes"));
}

/// Values out of range are refused before anything starts.
#[test]
fn out_of_range_values_are_errors() {
    assert_one_line_error(&smolchat(&["--max-line", "3"]), "--max-line");
    assert_one_line_error(&smolchat(&["--history", "100000"]), "--history");
    assert_one_line_error(&smolchat(&["--max-clients", "0"]), "--max-clients");
    assert_one_line_error(&smolchat(&["--threads", "0"]), "--threads");
    assert_one_line_error(
        &smolchat(&["--max-unregistered", "0"]),
        "--max-unregistered",
    );
    let over = ["--max-clients", "10", "--max-unregistered", "11"];
    assert_one_line_error(&smolchat(&over), "--max-unregistered");
}

/// The web door's flags are in `--help`, and their mistakes are one-line errors.
#[test]
fn web_door_flags() {
    let help = String::from_utf8_lossy(&smolchat(&["--help"]).stdout).into_owned();
    for flag in ["--web-listen", "--web-tls-listen", "--trust-proxy"] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
    let tls = ["--web-tls-listen", "127.0.0.1:0"];
    assert_one_line_error(&smolchat(&tls), "--tls-cert");
    let proxy = ["--web-listen", "127.0.0.1:0", "--trust-proxy", "somewhere"];
    assert_one_line_error(&smolchat(&proxy), "--trust-proxy");
    let same = [
        "--listen",
        "127.0.0.1:7999",
        "--web-listen",
        "127.0.0.1:7999",
    ];
    assert_one_line_error(&smolchat(&same), "two listeners on 127.0.0.1:7999");
}
