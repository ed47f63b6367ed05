//! Real IRC clients against the IRC door: irssi and WeeChat (`weechat-curses`) driven through
//! a pseudo-terminal (tests/common/irc.rs), in `#lobby` with an nc user, over plaintext and
//! over TLS with SASL PLAIN logging in to an account registered at the line door.
//!
//! A missing client skips its test loudly outside CI and fails it under CI (`common::require`).
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::accounts::PASSWORD;
use common::irc::{Connect, IrcPty};
use common::{Client, Server};

/// Shown in the MOTD: the clients have registered once it is on their screen.
const MOTD: &str = "the smolchat IRC door test server";

/// A server with an IRC listener (over TLS with `tls`), a MOTD, and an nc user `nora` in the
/// lobby. Returns the server, the IRC address, nora, and the directory with the certificate.
fn start(tls: bool) -> (Server, SocketAddr, Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let motd = dir.path().join("motd.txt");
    std::fs::write(&motd, MOTD).expect("motd");
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("key");
    let path = |p: &PathBuf| p.to_str().expect("utf-8 path").to_owned();
    let (motd, cert, key) = (path(&motd), path(&cert), path(&key));
    let mut args = vec!["--motd", &motd, "--server-name", "irc.test"];
    let prefix = if tls {
        args.extend(["--irc-tls-listen", "127.0.0.1:0", "--tls-cert", &cert]);
        args.extend(["--tls-key", &key]);
        "listening for IRC over TLS on "
    } else {
        args.extend(["--irc-listen", "127.0.0.1:0"]);
        "listening for IRC on "
    };
    let (server, rest) = Server::start_until(&args, prefix);
    let addr = rest.parse().expect("IRC address");
    let nora = server.join("nora");
    (server, addr, nora, dir)
}

/// Both clients, or a loud skip.
fn clients() -> Option<(PathBuf, PathBuf)> {
    Some((
        common::require("irssi")?,
        common::require("weechat-curses")?,
    ))
}

/// Waits for `client` (as `nick`) to register, has it join `#lobby`, and waits until the nc
/// user saw it arrive.
fn into_lobby(client: &mut IrcPty, nora: &mut Client, nick: &str) {
    client.expect(MOTD);
    client.join("#lobby");
    nora.expect(&format!("* {nick} joined"));
}

/// irssi and WeeChat over plaintext: both join `#lobby` and chat with each other and with an
/// nc user, `/me` and private lines included.
#[test]
fn irssi_and_weechat_chat_with_an_nc_user() {
    let Some((irssi, weechat)) = clients() else {
        return;
    };
    let (_server, addr, mut nora, _dir) = start(false);
    let mut ivy = IrcPty::irssi(&irssi, addr, "ivy", &Connect::default());
    into_lobby(&mut ivy, &mut nora, "ivy");
    let mut wendy = IrcPty::weechat(&weechat, addr, "wendy", &Connect::default());
    into_lobby(&mut wendy, &mut nora, "wendy");

    ivy.type_line("hello from irssi");
    nora.expect("ivy: hello from irssi");
    wendy.expect("hello from irssi");

    wendy.type_line("hello from weechat");
    nora.expect("wendy: hello from weechat");
    ivy.expect("hello from weechat");

    nora.send("hello from nc");
    ivy.expect("hello from nc");
    wendy.expect("hello from nc");

    ivy.type_line("/me waves from irssi");
    nora.expect("* ivy waves from irssi");
    wendy.expect("waves from irssi");
    nora.send("/me waves from nc");
    ivy.expect("nora waves from nc");
    wendy.expect("waves from nc");

    ivy.type_line("/msg nora a word in private");
    nora.expect("[private] ivy: a word in private");
    nora.send("/msg wendy psst");
    // WeeChat opens a buffer for the conversation, shown once switched to.
    wendy.expect("nora");
    wendy.type_line("/buffer nora");
    wendy.expect("psst");

    wendy.type_line("/quit");
    nora.expect("* wendy left");
}

/// A big room's join storm reaches irssi and WeeChat as one summary `NOTICE` instead of a
/// `JOIN` per newcomer; a line from someone summed up (not in their nick lists) is shown, and
/// both clients carry on chatting.
#[test]
fn irssi_and_weechat_take_a_big_rooms_summary() {
    let Some((irssi, weechat)) = clients() else {
        return;
    };
    let (server, addr, mut nora, _dir) = start(false);
    let mut ivy = IrcPty::irssi(&irssi, addr, "ivy", &Connect::default());
    into_lobby(&mut ivy, &mut nora, "ivy");
    let mut wendy = IrcPty::weechat(&weechat, addr, "wendy", &Connect::default());
    into_lobby(&mut wendy, &mut nora, "wendy");
    // More than a small room, joining faster than four a second: most are summed up.
    let mut crowd: Vec<Client> = (0..40).map(|n| server.join(&format!("crowd{n}"))).collect();
    ivy.expect("joined: crowd");
    wendy.expect("joined: crowd");
    crowd[39].send("hello from the crowd");
    ivy.expect("hello from the crowd");
    wendy.expect("hello from the crowd");
    ivy.type_line("still chatting");
    nora.expect("ivy: still chatting");
    wendy.expect("still chatting");
}

/// Over TLS (a self-signed certificate) with SASL PLAIN: both clients log in to an account
/// registered at the line door, taking its name; a wrong password is refused.
#[test]
fn irssi_and_weechat_log_in_with_sasl_over_tls() {
    let Some((irssi, weechat)) = clients() else {
        return;
    };
    let (server, addr, mut nora, _dir) = start(true);
    server.register("ivy", PASSWORD).close();
    server.register("wendy", PASSWORD).close();
    let sasl = |account: &str| Connect {
        tls: true,
        sasl: Some((account.to_owned(), PASSWORD.to_owned())),
    };
    let mut ivy = IrcPty::irssi(&irssi, addr, "ivy", &sasl("ivy"));
    ivy.expect("You are now logged in as ivy");
    into_lobby(&mut ivy, &mut nora, "ivy");
    let mut wendy = IrcPty::weechat(&weechat, addr, "wendy", &sasl("wendy"));
    wendy.expect("You are now logged in as wendy");
    into_lobby(&mut wendy, &mut nora, "wendy");

    ivy.type_line("over tls");
    wendy.expect("over tls");
    nora.expect("ivy: over tls");

    let wrong = Connect {
        tls: true,
        sasl: Some(("ivy".to_owned(), "not-the-password".to_owned())),
    };
    let mut eve = IrcPty::irssi(&irssi, addr, "eve", &wrong);
    eve.expect("SASL authentication failed");
}
