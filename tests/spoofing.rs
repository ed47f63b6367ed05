//! Spoofed notices and stolen names (issue #11, item 2), over real TCP against the real process.
mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

use common::{Client, Server};
use socket2::{Domain, Socket, Type};

/// `/me` text that would read as a notice once Unicode spaces and invisible characters are seen
/// for what they look like is refused, and nothing of it reaches the room.
#[test]
fn notice_lookalikes_with_invisible_characters_are_refused() {
    let server = Server::start(&["--rate-per-sec", "0"]);
    let mut bob = server.join("bob");
    let mut mallory = server.join("mallory");
    bob.expect("* mallory joined");
    for spoof in [
        "/me left\u{a0}(not reading fast enough)",
        "/me is\u{a0}now known as bob",
        "/me joined\u{200b}",
        "/me jo\u{2060}ined",
        "/me \u{feff}left",
    ] {
        mallory.send(spoof);
        mallory.expect("would look like a server notice, not sent");
    }
    mallory.send("marker");
    bob.next_is("mallory: marker");
}

/// The `/me` guard compares text with homoglyphs, blank look-alikes and leading invisible marks
/// left in place, so these read exactly like server notices on a terminal.
#[test]
fn actions_that_look_like_notices_beyond_plain_unicode_spaces_are_refused() {
    let server = Server::start(&[]);
    let [mut mallory, mut bob] = server.join_all(["mallory", "bob"]);
    let mut relayed = Vec::new();
    for spoof in [
        // U+2800 BRAILLE PATTERN BLANK: a blank cell, not a Unicode space.
        "is\u{2800}now known as alice",
        // Cyrillic е (U+0435) for the Latin e.
        "l\u{435}ft (not reading fast enough)",
        // A variation selector (U+E0100), invisible, in front of the verb.
        "\u{E0100}joined",
        // A tag character (U+E0020), invisible, in front of the verb.
        "\u{E0020}left",
    ] {
        mallory.send(&format!("/me {spoof}"));
        mallory.send("marker");
        let line = bob.line().expect("EOF");
        if line != "mallory: marker" {
            relayed.push(line);
            bob.next_is("mallory: marker");
        }
    }
    assert!(relayed.is_empty(), "relayed as notices: {relayed:?}");
}

/// A user's quit reason is marked as theirs, so `/quit not reading fast enough` does not produce
/// the server's drop notice.
#[test]
fn quit_reason_cannot_pass_for_a_server_reason() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut mallory = server.join("mallory");
    bob.expect("* mallory joined");
    mallory.send("/quit not reading fast enough");
    bob.next_is("* mallory left (quit: not reading fast enough)");
}

/// Padding cannot push a fake notice onto a terminal row of its own: runs of spaces arrive (and
/// are stored) as at most three.
#[test]
fn runs_of_spaces_are_collapsed() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut mallory = server.join("mallory");
    bob.expect("* mallory joined");
    mallory.send(&format!(
        "hi{}* bob left\u{a0}\u{a0}\u{a0}\u{a0}x",
        " ".repeat(71)
    ));
    bob.next_is("mallory: hi   * bob left   x");
    // Blank cells that are not spaces (the braille blank) are capped the same way.
    mallory.send(&format!("hi{}* bob left", "\u{2800}".repeat(71)));
    bob.next_is("mallory: hi   * bob left");
}

/// A name that looks like a connected user's (`aIice`, `rnallory`), or like a reserved name with
/// punctuation (`server_`, `You.`), is refused, at registration and on `/nick`.
#[test]
fn lookalike_and_decorated_reserved_names_are_refused() {
    let server = Server::start(&[]);
    let _alice = server.join("alice");
    let _mallory = server.join("mallory");
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    for name in ["aIice", "a1ice", "rnallory", "ALICE"] {
        c.send(name);
        c.expect("name taken");
        c.expect("What is your name?");
    }
    for name in ["server_", "server.", "You.", "y0u"] {
        c.send(name);
        c.expect("reserved");
        c.expect("What is your name?");
    }
    c.send("eve");
    c.expect("Welcome, eve!");
    c.send("/nick aIice");
    c.expect("name taken: aIice looks too much like a name already in use");
    c.send("/nick A1ICE");
    c.expect("looks too much like");
}

/// A `/msg` flood at one recipient is capped per recipient: the flooders are told their lines
/// were not delivered, and the recipient, who reads normally, stays connected.
#[test]
fn private_flood_is_capped_per_recipient() {
    let server = Server::start(&["--rate-per-sec", "0"]);
    let mut victim = server.join("victim");
    let mut floods = Vec::new();
    for k in 0..3 {
        let mut f = server.join(&format!("f{k}"));
        let lines: String = (0..100)
            .map(|n| format!("/msg victim spam {n}\n"))
            .collect();
        f.send_raw(lines.as_bytes());
        floods.push(f);
    }
    for f in &mut floods {
        f.expect("not delivered: victim is getting too many private messages");
    }
    let mut other = server.join("other");
    other.send("/msg victim still here?");
    // The victim got at most the allowance of the flood, then the marker or its refusal.
    let got = victim.lines_until("f2 joined");
    assert!(got.len() < 300, "{got:?}");
    other.sync();
    floods[0].send("/msg other hello");
    other.expect("[private] f0: hello");
    victim.send("/who");
    victim.expect("users in lobby");
}

/// Connects from `local` (any 127.0.0.0/8 address works on Linux) with a small receive buffer.
fn connect_from(server: &Server, local: &str, rcvbuf: usize) -> Client {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    if rcvbuf > 0 {
        socket.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
    }
    let local: SocketAddr = format!("{local}:0").parse().expect("address");
    socket.bind(&local.into()).expect("bind");
    socket.connect(&server.addr.into()).expect("connect");
    Client::from_stream(socket.into())
}

/// A name freed because its owner was dropped as a slow reader is held for the owner's address:
/// the flooder who caused the drop cannot take it, the owner can.
#[test]
fn name_of_a_dropped_user_is_held_for_its_address() {
    let server = Server::start(&["--rate-per-sec", "0"]);
    let mut victim = connect_from(&server, "127.0.0.2", 4096);
    victim.expect("What is your name?");
    victim.send("victim");
    victim.expect("--- end of history");
    let mut watcher = server.join("watcher");
    let mut mallory = server.join("mallory");
    watcher.expect("* mallory joined");

    // The flood is paced by what the watcher has read, so only the victim falls behind.
    let (acked_tx, acked_rx) = mpsc::channel::<usize>();
    let stop = Arc::new(AtomicBool::new(false));
    let mut out = mallory.stream.try_clone().expect("clone");
    let flood = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let pad = "p".repeat(900);
            let (mut sent, mut acked) = (0, 0);
            while sent < 50_000 && !stop.load(Ordering::Relaxed) {
                while sent - acked >= 64 {
                    match acked_rx.recv_timeout(common::TIMEOUT) {
                        Ok(n) => acked = n,
                        Err(_) => return,
                    }
                }
                let batch: String = (sent..sent + 16).map(|n| format!("{n} {pad}\n")).collect();
                if out.write_all(batch.as_bytes()).is_err() {
                    return;
                }
                sent += 16;
            }
        })
    };
    let mut read = 0;
    loop {
        let line = watcher.line().unwrap_or_else(|| {
            panic!(
                "watcher lost its connection: {:?}\n{}",
                watcher.seen,
                server.log()
            )
        });
        if line == "* victim left (not reading fast enough)" {
            break;
        }
        read += 1;
        if read % 16 == 0 {
            let _ = acked_tx.send(read);
            watcher.seen.clear();
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(acked_tx);
    flood.join().expect("flood thread");
    mallory.send("/nick victim");
    mallory.expect("name taken: victim is held for its owner");
    let mut back = connect_from(&server, "127.0.0.2", 0);
    back.expect("What is your name?");
    back.send("victim");
    back.expect("Welcome, victim!");
}
