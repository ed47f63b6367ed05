//! Hostile and odd input over real TCP: line endings, telnet negotiation, invalid UTF-8, editing
//! keys, terminal escapes and bidi overrides. Whatever a client sends, peers and the history see
//! only clean text.
mod common;
use common::{message_rows, start_alice_and_bob, Client, Server};

/// Registers `name` by writing `raw` (the name plus its line end) on a fresh connection. A CR LF
/// or CR NUL line end or an IAC shows a telnet client, which gets telnet commands from then on.
fn join_raw(server: &Server, raw: &[u8], name: &str) -> Client {
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.telnet = raw.contains(&0xff) || raw.windows(2).any(|w| w == b"\r\n" || w == b"\r\0");
    c.send_raw(raw);
    let welcome = c.expect("Welcome, ");
    assert!(
        welcome.starts_with(&format!("Welcome, {name}! ")),
        "registered under the wrong name: {welcome:?}"
    );
    c.expect("--- end of history");
    c
}

/// The bodies `sender` has in the history, oldest first.
fn stored_bodies(server: Server, sender: &str) -> Vec<String> {
    let (_dir, db) = server.stop_and_open_db();
    message_rows(&db)
        .into_iter()
        .filter(|row| row.sender == sender)
        .map(|row| row.body)
        .collect()
}

/// CR LF, CR NUL and LF each end a line, for the name and for messages.
#[test]
fn crlf_crnul_and_lf_line_endings_all_work() {
    let server = Server::start(&[]);
    let mut bob = join_raw(&server, b"bob\r\0", "bob");
    let mut alice = join_raw(&server, b"alice\r\n", "alice");
    bob.expect("* alice joined");
    alice.send_raw(b"one\r\ntwo\r\0three\nfour\r\n");
    bob.next_is("alice: one");
    bob.next_is("alice: two");
    bob.next_is("alice: three");
    bob.next_is("alice: four");
}

/// Telnet negotiation before the name and inside a message is consumed and never relayed.
#[test]
fn telnet_negotiation_is_consumed_and_never_relayed() {
    const NEGOTIATION: &[u8] = b"\xff\xfd\x03\xff\xfb\x18\xff\xfa\x18\x00AB\xff\xf0";
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut raw = NEGOTIATION.to_vec();
    raw.extend_from_slice(b"carol\r\n");
    let mut carol = join_raw(&server, &raw, "carol");
    bob.next_is("* carol joined");
    let mut line = b"hel".to_vec();
    line.extend_from_slice(NEGOTIATION);
    line.extend_from_slice(b"lo\xff\xf1 there\r\n");
    carol.send_raw(&line);
    bob.next_is("carol: hello there");
}

/// `IAC IAC` is a literal 0xFF byte, which is not UTF-8 and becomes U+FFFD.
#[test]
fn iac_iac_becomes_replacement_character() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send_raw(b"a\xff\xffb\n");
    bob.next_is("alice: a\u{fffd}b");
}

/// Invalid UTF-8 is replaced by U+FFFD and the connection stays usable.
#[test]
fn invalid_utf8_is_replaced_without_disconnecting() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send_raw(b"bad \xc3\x28 \xe2\x82 \xfe end \xc3\xa9\n");
    bob.next_is("alice: bad \u{fffd}( \u{fffd} \u{fffd} end \u{e9}");
    alice.send("still here");
    bob.next_is("alice: still here");
}

/// Backspace and DEL erase the previous character, a whole UTF-8 character at a time.
#[test]
fn backspace_and_del_erase_the_previous_character() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send_raw(b"abd\x08c\n");
    bob.next_is("alice: abc");
    alice.send_raw(b"xyy\x7f\x7fz\n");
    bob.next_is("alice: xz");
    alice.send_raw("caf\u{e9}\x7fe \u{1f600}\x08ok\n".as_bytes());
    bob.next_is("alice: cafe ok");
}

/// Terminal escapes, C0 and C1 controls and bidi overrides are stripped before the line is relayed
/// and before it is stored.
#[test]
fn escapes_controls_and_bidi_are_stripped_before_relay_and_storage() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    let hostile = concat!(
        "\x1b[31mred\x1b[0m ",                       // CSI colours
        "\x1b[2J\x1b[1;1H",                          // clear screen, move cursor
        "\x1b]0;evil title\x07ok ",                  // OSC window title, BEL-terminated
        "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ ", // OSC 8 hyperlink, ST-terminated
        "\x07bell\x01\x00\x1f ",                     // C0 controls
        "\u{85}c1\u{9b}31m \u{9d}0;t\u{9c}",         // C1 controls, 8-bit CSI and OSC
        "\u{202e}rtl\u{2066}x\u{2069}",              // bidi override and isolate
        "\n",
    );
    let clean = "red ok link bell c1 rtlx";
    alice.send_raw(hostile.as_bytes());
    bob.next_is(&format!("alice: {clean}"));
    drop((alice, bob));
    assert_eq!(stored_bodies(server, "alice"), vec![clean.to_owned()]);
}

/// A tab becomes a space.
#[test]
fn tab_becomes_space() {
    let (_server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send("col1\tcol2\t\tend");
    bob.next_is("alice: col1 col2  end");
}

/// A line that is empty or blank once sanitized is neither relayed nor stored.
#[test]
fn line_empty_after_sanitizing_is_not_sent() {
    let (server, mut alice, mut bob) = start_alice_and_bob(&[]);
    alice.send_raw(b"\x1b[2J\x1b[H\n\x07\x07\x00\n\t \t\n\xe2\x80\xae\n\xff\xfb\x01\n");
    // Lines are handled in order, so anything relayed for the lines above would come first.
    alice.send("marker");
    bob.next_is("alice: marker");
    drop((alice, bob));
    assert_eq!(stored_bodies(server, "alice"), vec!["marker".to_owned()]);
}
