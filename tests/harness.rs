//! The test harness itself: outside programs are looked up the way `common::require` promises,
//! and `.ci/run` installs every program a test may require, so CI never skips one.
mod common;

use std::os::unix::fs::PermissionsExt;

use common::{find_program, Found, PROGRAMS};

/// Every `program:package` pair of `common::PROGRAMS` is in `.ci/run`'s install list.
#[test]
fn ci_installs_every_program_a_test_may_require() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run");
    let script = std::fs::read_to_string(path).expect(".ci/run");
    for (program, package) in PROGRAMS {
        let pair = format!("{program}:{package}");
        assert!(
            script.split_whitespace().any(|word| word == pair),
            "{path} does not install {pair}"
        );
    }
}

/// A program counts as found only as an executable file in one of PATH's directories; a missing
/// one is reported with the package that provides it.
#[test]
fn programs_are_found_only_as_executables_on_the_path() {
    let empty = tempfile::tempdir().expect("tempdir");
    let bin = tempfile::tempdir().expect("tempdir");
    let nc = bin.path().join("nc");
    std::fs::write(&nc, "#!/bin/sh\n").expect("write");
    let path = std::env::join_paths([empty.path(), bin.path()]).expect("PATH");
    let missing = Found::No {
        package: "netcat-openbsd",
    };

    std::fs::set_permissions(&nc, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert_eq!(find_program("nc", &path), missing);
    std::fs::set_permissions(&nc, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(find_program("nc", &path), Found::Yes(nc));
    assert_eq!(find_program("nc", empty.path().as_os_str()), missing);
}

/// The IRC harness reads a terminal's screen as text: escape sequences go, and a sequence or a
/// character cut by a read waits for the next one.
#[test]
fn terminal_output_is_read_as_text() {
    let (text, rest) = common::irc::strip_terminal(
        b"\x1b[1;1H15:24 \x1b[30m\x1b[1m<\x1b(B\x1b[m bob> hi\x1b]0;title\x07!\x1b[",
    );
    assert_eq!(text, "15:24 < bob> hi!");
    assert_eq!(rest, b"\x1b[");
    let (text, rest) = common::irc::strip_terminal(&"é".as_bytes()[..1]);
    assert_eq!((text.as_str(), rest.len()), ("", 1));
}
