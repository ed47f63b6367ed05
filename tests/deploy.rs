//! What deployers rely on: `--version`, and a systemd unit (`packaging/smolchat.service`) that
//! `systemd-analyze` accepts and scores as hardened.
//!
//! The unit tests need `systemd-analyze` (Debian/Ubuntu package `systemd`; no running systemd is
//! needed). Without it they are skipped with a notice, except under CI (`CI=true`), where a
//! missing tool must not pass silently.
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the unit runs the binary from; the tests point it at the binary under test instead,
/// because `systemd-analyze verify` checks that the executable exists.
const INSTALLED_BINARY: &str = "/usr/local/bin/smolchat";

/// Highest `systemd-analyze security` exposure accepted (0 is best, 10 worst). docs/DEPLOY.md
/// gives the score the unit gets; this bound only catches hardening lost by accident.
const MAX_EXPOSURE: f64 = 2.0;

/// `--version` prints `smolchat VERSION` on stdout, nothing else, and exits 0.
#[test]
fn version_prints_name_and_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .arg("--version")
        .output()
        .expect("run smolchat");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("smolchat {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert!(out.stderr.is_empty(), "{out:?}");
}

/// `systemd-analyze verify` accepts the unit, with the optional TLS lines commented out and
/// with them uncommented, without a single warning about it.
#[test]
fn systemd_unit_verifies() {
    if !have_systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for tls in [false, true] {
        let unit = unit_copy(dir.path(), tls);
        let out = systemd_analyze(&["verify".as_ref(), unit.as_os_str()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // verify exits 0 on unknown keys or unparsable values ("ignoring"), so its messages
        // about our file count as failures too; anything else (about the host) is only shown.
        let ours: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("smolchat.service"))
            .collect();
        assert!(
            out.status.success() && ours.is_empty(),
            "verify rejects the unit (TLS lines {}):\n{stderr}",
            if tls { "on" } else { "off" }
        );
        if !stderr.is_empty() {
            eprintln!("systemd-analyze verify said, about the host:\n{stderr}");
        }
    }
}

/// `systemd-analyze security` rates the unit's exposure at most [`MAX_EXPOSURE`].
#[test]
fn systemd_unit_is_hardened() {
    if !have_systemd_analyze() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_copy(dir.path(), false);
    let out = systemd_analyze(&[
        "security".as_ref(),
        "--offline=true".as_ref(),
        "--no-pager".as_ref(),
        unit.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("offline") {
        // `--offline` is systemd 250 or newer; older versions can only rate loaded units.
        skip_notice(&format!(
            "this systemd-analyze cannot rate a unit file offline: {}",
            stderr.trim()
        ));
        return;
    }
    assert!(out.status.success(), "security failed:\n{stdout}{stderr}");
    let score = stdout
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for smolchat.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no exposure score in:\n{stdout}{stderr}"));
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} is above {MAX_EXPOSURE}:\n{stdout}"
    );
}

/// True if `systemd-analyze` can be run. Missing, it is a loud skip, or a failure under CI.
fn have_systemd_analyze() -> bool {
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "systemd-analyze is missing under CI: install the systemd package"
            );
            skip_notice(
                "systemd-analyze not found, the systemd unit is NOT checked (apt-get install systemd)",
            );
            false
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

/// Prints a skip notice that shows even though the test passes: the test harness captures
/// `eprintln!`, but not writes to the stderr handle itself.
fn skip_notice(why: &str) {
    let _ = writeln!(std::io::stderr(), "\n*** SKIPPED: {why} ***\n");
}

fn systemd_analyze(args: &[&std::ffi::OsStr]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .expect("run systemd-analyze")
}

/// Writes `dir/smolchat.service`: the packaged unit with its binary path pointing at the binary
/// under test and, if `tls`, the commented TLS lines switched on.
fn unit_copy(dir: &Path, tls: bool) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/smolchat.service");
    let text = std::fs::read_to_string(&source).expect("read packaging/smolchat.service");
    let binary = env!("CARGO_BIN_EXE_smolchat");
    assert!(
        !binary.contains(char::is_whitespace),
        "the test cannot put {binary:?} in ExecStart="
    );
    // `%` starts a systemd specifier.
    let binary = binary.replace('%', "%%");
    assert!(
        text.contains(INSTALLED_BINARY),
        "the unit does not run {INSTALLED_BINARY}"
    );
    let mut text = text.replace(INSTALLED_BINARY, &binary);
    if tls {
        let tls_lines = ["#ExecStart="];
        let mut switched = 0;
        text = text
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if tls_lines.iter().any(|t| l.starts_with(t)) => {
                    switched += 1;
                    rest
                }
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(switched >= 2, "the unit's commented TLS lines are missing");
    }
    let unit = dir.join("smolchat.service");
    std::fs::write(&unit, text).expect("write the unit copy");
    unit
}
