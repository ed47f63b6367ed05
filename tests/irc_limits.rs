//! The line door's limits hold at the IRC door too, each answered in IRC's words: the line
//! rate (delayed, never dropped), connection caps and address bans at accept (`ERROR`), the
//! registration deadline, name bans (`432`), mutes (`404`), operators' kicks, slow readers,
//! and passwords (SASL PLAIN) only where they may cross.
mod common;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};

use common::accounts::PASSWORD;
use common::irc::{start_irc, IrcClient};
use smolchat::door::irc::sasl::plain_chunks;

fn in_lobby(addr: SocketAddr, nick: &str) -> IrcClient {
    let mut c = IrcClient::connect(addr).register(nick);
    c.send("JOIN #lobby");
    c.expect_command("366");
    c
}

/// Connects from `local`, another loopback address.
fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{local}:0").parse().expect("address");
    socket.bind(&local.into()).expect("bind");
    socket.connect(&to.into()).expect("connect");
    socket.into()
}

/// Reads until the server closes, expecting its last words to be an `ERROR` saying `why`.
fn closed_with(c: &mut IrcClient, why: &str) {
    let error = c.expect_command("ERROR");
    assert!(error.params[0].contains(why), "{error:?}");
    assert!(c.next().is_none(), "still open after {error:?}");
}

/// Lines over the rate are delayed, never dropped: a paste arrives whole and in order.
#[test]
fn a_paste_over_the_rate_is_delayed_not_dropped() {
    let (server, addr) = start_irc(&["--rate-burst", "3", "--rate-per-sec", "50"]);
    let mut nc = server.join("alice");
    let mut irc = in_lobby(addr, "bob");
    nc.expect("* bob joined");
    for n in 0..40 {
        irc.send(&format!("PRIVMSG #lobby :line {n}"));
    }
    for n in 0..40 {
        nc.next_is(&format!("bob: line {n}"));
    }
}

/// `--max-per-ip` counts IRC connections with the others; the one over it gets one `ERROR`.
#[test]
fn connection_caps_answer_with_error() {
    let (server, addr) = start_irc(&["--max-per-ip", "2", "--limit-loopback"]);
    let _nc = server.join("alice");
    let _irc = in_lobby(addr, "bob");
    let mut third = IrcClient::connect(addr);
    closed_with(&mut third, "Too many connections from your address");
}

/// A client that does not complete registration by `--register-timeout` is closed with `ERROR`.
#[test]
fn registration_deadline() {
    let (_server, addr) = start_irc(&["--register-timeout", "1"]);
    let mut c = IrcClient::connect(addr);
    c.send("NICK slowpoke");
    closed_with(&mut c, "registration timed out");
}

/// Operators' bans and mutes reach IRC users: a muted user's line is `404`, a banned name is
/// `432` at registration, a banned user is closed with `ERROR`, an address ban turns the
/// connection away with `ERROR`; an operator's kick shows as `KICK`.
#[test]
fn bans_mutes_and_kicks() {
    let (server, addr) = start_irc(&[]);
    let mut boss = server.operator("boss");
    let mut bob = in_lobby(addr, "bob");
    let mut carol = in_lobby(addr, "carol");
    boss.send("/mute bob 10m");
    boss.expect("muted bob for 10m");
    // Nothing answers a notice (RFC 2812 3.3.2), not even the mute's `404`.
    bob.send("NOTICE #lobby :psst");
    let seen = bob.sync("quiet");
    assert!(seen.iter().all(|m| m.command != "404"), "{seen:?}");
    bob.send("PRIVMSG #lobby :hello?");
    bob.expect_command("404");
    boss.send("/kick carol enough");
    let kick = bob.expect_command("KICK");
    assert_eq!(kick.params[..2], ["#lobby", "carol"]);
    closed_with(&mut carol, "Kicked by boss");
    boss.send("/ban bob");
    closed_with(&mut bob, "Banned by boss");
    let mut again = IrcClient::connect(addr);
    again.send("NICK BOB");
    again.send("USER u 0 * :r");
    let refused = again.expect_command("432");
    assert!(refused.params[2].contains("banned"), "{refused:?}");
    // Another nick registers: the refusal left registration open.
    again.send("NICK robert");
    again.expect_command("001");

    boss.send("/ban 127.0.0.2");
    boss.expect("banned 127.0.0.2");
    let mut from = IrcClient::from_stream(connect_from("127.0.0.2", addr));
    closed_with(&mut from, "banned");
}

/// A client that stops reading is dropped once its outbox is full; the room carries on and is
/// told it left.
#[test]
fn a_slow_reader_is_dropped() {
    const LINE: usize = 1000;
    let (server, addr) = start_irc(&["--rate-per-sec", "0", "--outbox-bytes", "65536"]);
    let socket = {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket.connect(&addr.into()).expect("connect");
        socket
    };
    let mut staller = IrcClient::from_stream(socket.into()).register("staller");
    staller.send("JOIN #lobby");
    staller.expect_command("366");
    let mut sender = server.join("sender");
    let mut out = sender.stream.try_clone().expect("clone");
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        let pad = "p".repeat(LINE);
        for _ in 0..50_000 {
            if done_rx.try_recv().is_ok() {
                return;
            }
            if out.write_all(format!("{pad}\n").as_bytes()).is_err() {
                return;
            }
        }
    });
    sender.expect("* staller left (not reading fast enough)");
    let _ = done_tx.send(());
    writer.join().expect("writer");
}

/// SASL PLAIN from loopback logs in to an account registered at the line door, which makes
/// its name usable; a registered name without a password is `433`.
#[test]
fn sasl_from_loopback_logs_in() {
    let (server, addr) = start_irc(&[]);
    server.register("alice", PASSWORD).close();
    let mut c = IrcClient::connect(addr);
    c.send("CAP LS 302");
    let ls = c.expect_command("CAP");
    assert!(ls.params.last().unwrap().contains("sasl"), "{ls:?}");
    c.send("NICK alice");
    c.send("USER u 0 * :r");
    c.send("CAP REQ :sasl");
    c.expect_command("CAP");
    c.send("AUTHENTICATE PLAIN");
    c.expect_command("AUTHENTICATE");
    for chunk in plain_chunks("alice", PASSWORD) {
        c.send(&format!("AUTHENTICATE {chunk}"));
    }
    let logged_in = c.expect_command("900");
    assert_eq!(logged_in.params[2], "alice");
    c.expect_command("903");
    c.send("CAP END");
    c.expect_command("001");

    let mut other = IrcClient::connect(addr);
    other.send("NICK Alice2");
    other.send("NICK alice");
    other.send("USER u 0 * :r");
    other.expect_command("433");
}

/// Over plaintext from a remote address, `sasl` is not offered and an attempt fails, unless
/// `--plaintext-passwords`.
#[test]
fn sasl_refused_over_plaintext_from_afar() {
    let (_server, addr) = start_irc(&["--trust-loopback-for-passwords", "false"]);
    let mut c = IrcClient::connect(addr);
    c.send("CAP LS 302");
    let ls = c.expect_command("CAP");
    assert!(!ls.params.last().unwrap().contains("sasl"), "{ls:?}");
    c.send("AUTHENTICATE PLAIN");
    c.expect_command("904");

    let (_server, addr) = start_irc(&[
        "--trust-loopback-for-passwords",
        "false",
        "--plaintext-passwords",
    ]);
    let mut c = IrcClient::connect(addr);
    c.send("CAP LS 302");
    let ls = c.expect_command("CAP");
    assert!(ls.params.last().unwrap().contains("sasl"), "{ls:?}");
}

/// An operator account logged in over IRC (SASL) is an IRC operator: `TOPIC` sets the topic,
/// `KICK` removes a user (as `/kick`), `MODE #room +b nick` bans the name (as `/ban`); a user
/// without the role gets `482`.
#[test]
fn operators_over_irc() {
    let (server, addr) = start_irc(&[]);
    server.operator("boss").close();
    let mut nc = server.join("alice");
    let mut op = IrcClient::connect(addr);
    op.send("CAP LS 302");
    op.send("CAP REQ :sasl");
    op.send("AUTHENTICATE PLAIN");
    for chunk in plain_chunks("boss", PASSWORD) {
        op.send(&format!("AUTHENTICATE {chunk}"));
    }
    op.expect_command("903");
    op.send("NICK boss");
    op.send("USER u 0 * :r");
    op.send("CAP END");
    op.expect_command("001");
    op.send("JOIN #lobby");
    op.expect_command("366");
    let mut victim = in_lobby(addr, "victim");
    victim.send("TOPIC #lobby :mine now");
    victim.expect_command("482");
    op.send("TOPIC #lobby :welcome all");
    nc.expect("welcome all");
    let topic = victim.expect_command("TOPIC");
    assert_eq!(topic.params, ["#lobby", "welcome all"]);
    op.send("KICK #lobby victim :behave");
    closed_with(&mut victim, "Kicked by boss");
    nc.expect("* victim");
    let mut again = in_lobby(addr, "victim");
    op.send("MODE #lobby +b victim");
    closed_with(&mut again, "Banned by boss");

    // Rooms are public: anyone reads a topic and the ban list from outside the room.
    let mut outsider = IrcClient::connect(addr).register("outsider");
    outsider.send("TOPIC #lobby");
    let topic = outsider.expect_command("332");
    assert_eq!(topic.params[1..], ["#lobby", "welcome all"]);
    let set = outsider.expect_command("333");
    assert_eq!(set.params[1..3], ["#lobby", "boss"]);
    for ask in ["MODE #lobby +b", "MODE #lobby b"] {
        outsider.send(ask);
        let ban = outsider.expect_command("367");
        assert_eq!(ban.params[1..4], ["#lobby", "victim!*@*", "boss"], "{ask}");
        let end = outsider.expect_command("368");
        assert_eq!(end.params[1], "#lobby");
    }
    // Setting a topic still takes being in the room.
    op.send("TOPIC #elsewhere :mine");
    let refused = op.expect_command("442");
    assert_eq!(refused.params[1], "#elsewhere");
}

/// A client silent for `--irc-ping` seconds is pinged; one that answers stays, one that does
/// not is closed with `ERROR` and its rooms see it quit.
#[test]
fn quiet_clients_are_pinged_and_dead_ones_dropped() {
    let (server, addr) = start_irc(&["--irc-ping", "1"]);
    let mut nc = server.join("alice");
    let mut alive = in_lobby(addr, "alive");
    let mut dead = in_lobby(addr, "dead");
    let ping = alive.expect_command("PING");
    alive.send(&format!("PONG :{}", ping.params[0]));
    // Answered: still served.
    alive.sync("still-here");
    dead.expect_command("PING");
    closed_with(&mut dead, "Ping timeout");
    nc.expect("* dead left (quit: Ping timeout)");
}

/// A client without SASL may log in with `PASS` before registering; a wrong one is `464`,
/// and the same connection may try again, with the right password or another nick (it used
/// to be ignored until the registration deadline).
#[test]
fn pass_logs_in_to_a_registered_nick() {
    let (server, addr) = start_irc(&[]);
    server.register("alice", PASSWORD).close();
    let mut wrong = IrcClient::connect(addr);
    wrong.send("PASS not-it");
    wrong.send("NICK alice");
    wrong.send("USER u 0 * :r");
    wrong.expect_command("464");
    wrong.send("NICK bob");
    let welcome = wrong.expect_command("001");
    assert_eq!(welcome.params[0], "bob");

    let mut again = IrcClient::connect(addr);
    again.send("PASS not-it-either");
    again.send("NICK alice");
    again.send("USER u 0 * :r");
    again.expect_command("464");
    again.send(&format!("PASS :{PASSWORD}"));
    again.send("NICK alice");
    let welcome = again.expect_command("001");
    assert_eq!(welcome.params[0], "alice");
}

/// `JOIN` past the advertised `CHANLIMIT` is `405` for each room over it; the rooms already
/// joined still work.
#[test]
fn joining_past_chanlimit_is_405() {
    let (_server, addr) = start_irc(&["--rate-per-sec", "0"]);
    let mut c = IrcClient::connect(addr).register("roamer");
    let limit: usize = c
        .seen
        .iter()
        .find_map(|l| l.split(" CHANLIMIT=#:").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("CHANLIMIT=#:N in 005");
    let rooms: Vec<String> = (0..limit + 2).map(|n| format!("#r{n}")).collect();
    for chunk in rooms.chunks(20) {
        c.send(&format!("JOIN {}", chunk.join(",")));
    }
    let replies = c.sync("joined");
    let joins = replies.iter().filter(|m| m.command == "JOIN").count();
    let refused: Vec<&str> = replies
        .iter()
        .filter(|m| m.command == "405")
        .map(|m| m.params[1].as_str())
        .collect();
    assert_eq!(joins, limit);
    assert_eq!(refused, [&rooms[limit], &rooms[limit + 1]]);
    c.send("JOIN #r0");
    c.send("PART #r1");
    c.send(&format!("JOIN {}", rooms[limit]));
    c.expect("the JOIN after a PART", |m| {
        m.command == "JOIN" && m.params[0] == rooms[limit]
    });
}
