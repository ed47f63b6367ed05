//! The web door's JSON protocol against the real server, over real TCP: a WebSocket client
//! that speaks as the page does beside nc users. Chat both ways, `/commands`, history and the
//! resume after a reconnect, passwords, and every limit of the line door answered in one clear
//! message. (The page itself, in Chromium, is tests/web_page.rs.)
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::accounts::PASSWORD;
use common::web::{next_of, next_where, send, ws_connect, ws_join, WebServer};
use common::TIMEOUT;
use serde_json::{json, Value};

/// The `line` objects of a history page until its last chunk.
fn history_lines(ws: &mut common::web::Ws) -> (Vec<Value>, Value) {
    let mut lines = Vec::new();
    loop {
        let chunk = next_of(ws, "history");
        lines.extend(chunk["lines"].as_array().cloned().unwrap_or_default());
        if chunk["done"] == true {
            return (lines, chunk);
        }
    }
}

/// A web user and nc users talk in one room both ways; the web user gets its own line back
/// with its id, `/me` as an action, `/commands` answered, `who` and `rooms` as lists, and a
/// room switch brings the `room` object and its history.
#[test]
fn web_and_nc_users_talk() {
    let web = WebServer::start(&["--rate-per-sec", "0"]);
    let mut dave = web.server.join("dave");
    let mut witness = web.server.join("witness");
    dave.send("before you came");
    // Relayed means stored: the replay below holds it.
    witness.expect("dave: before you came");
    witness.close();
    dave.expect("witness left");
    let mut ws = common::web::ws_connect(web.addr);
    send(&mut ws, json!({"type": "hello", "name": "alice"}));
    let welcome = next_of(&mut ws, "welcome");
    assert_eq!(welcome["room"], "lobby");
    let (lines, last) = history_lines(&mut ws);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["text"], "before you came");
    assert_eq!(lines[0]["sender"], "dave");
    assert!(lines[0]["time"].as_i64().unwrap_or(0) > 1_700_000_000_000);
    assert_eq!(last["older"], "none");
    dave.expect("alice joined");

    send(&mut ws, json!({"type": "say", "text": "hi <b>dave</b>"}));
    dave.expect("alice: hi <b>dave</b>");
    let own = next_of(&mut ws, "line");
    assert_eq!(own["sender"], "alice");
    assert!(own["id"].as_i64().unwrap_or(0) > lines[0]["id"].as_i64().unwrap_or(0));
    dave.send("hello from nc");
    let line = next_where(&mut ws, "line", |l| l["sender"] == "dave");
    assert_eq!(line["text"], "hello from nc");
    assert_eq!(line["kind"], "say");
    send(&mut ws, json!({"type": "say", "text": "/me waves"}));
    dave.expect("* alice waves");
    let action = next_of(&mut ws, "line");
    assert_eq!(action["kind"], "action");

    send(&mut ws, json!({"type": "who"}));
    let who = next_of(&mut ws, "who");
    assert_eq!(who["names"], json!(["dave", "alice"]));
    send(&mut ws, json!({"type": "rooms"}));
    let rooms = next_of(&mut ws, "rooms");
    assert_eq!(rooms["rooms"], json!([{"room": "lobby", "users": 2}]));
    send(&mut ws, json!({"type": "say", "text": "/nope"}));
    let error = next_of(&mut ws, "error");
    assert_eq!(error["code"], "command");
    assert!(
        error["text"].as_str().unwrap_or("").contains("/nope"),
        "{error}"
    );
    send(&mut ws, json!({"type": "say", "text": "/help"}));
    next_where(&mut ws, "notice", |n| {
        n["text"].as_str().unwrap_or("").contains("/join")
    });
    send(&mut ws, json!({"type": "say", "text": "/msg dave psst"}));
    dave.expect("psst");
    let private = next_of(&mut ws, "private");
    assert_eq!(
        (&private["sender"], &private["to"]),
        (&json!("alice"), &json!("dave"))
    );
    dave.send("/msg alice back");
    let private = next_where(&mut ws, "private", |p| p["sender"] == "dave");
    assert_eq!(private["text"], "back");

    send(&mut ws, json!({"type": "join", "room": "rust"}));
    let room = next_of(&mut ws, "room");
    assert_eq!(room["room"], "rust");
    let (lines, _) = history_lines(&mut ws);
    assert!(lines.is_empty());
    dave.expect("alice left for rust");
    send(&mut ws, json!({"type": "say", "text": "/nick alicia"}));
    let renamed = next_of(&mut ws, "notice");
    assert_eq!(renamed["kind"], "renamed", "{renamed}");
    send(&mut ws, json!({"type": "say", "text": "/quit"}));
    let bye = next_of(&mut ws, "bye");
    assert_eq!(
        (&bye["reason"], &bye["reconnect"]),
        (&json!("quit"), &json!(false))
    );
}

/// A page that reconnects with `resume` gets exactly the lines after the last one it showed,
/// in its room; scrolling up asks for older pages until the room's beginning.
#[test]
fn resume_and_older_pages() {
    let web = WebServer::start(&["--rate-per-sec", "0"]);
    let mut dave = web.server.join("dave");
    for n in 1..=30 {
        dave.send(&format!("line {n}"));
    }
    dave.sync();
    // Relayed means stored: once alice has seen line 30 (replayed or live), all are.
    let mut ws = ws_connect(web.addr);
    send(&mut ws, json!({"type": "hello", "name": "alice"}));
    let (replayed, _) = history_lines(&mut ws);
    if replayed.last().is_none_or(|l| l["text"] != "line 30") {
        next_where(&mut ws, "line", |l| l["text"] == "line 30");
    }
    send(
        &mut ws,
        json!({"type": "history", "before": 1_000_000, "limit": 10}),
    );
    let (older, last) = history_lines(&mut ws);
    assert_eq!(older.len(), 10);
    assert_eq!(older[9]["text"], "line 30");
    assert_eq!(last["older"], "more");
    let first = older[0]["id"].as_i64().expect("id");
    send(
        &mut ws,
        json!({"type": "history", "before": first, "limit": 50}),
    );
    let (older, last) = history_lines(&mut ws);
    assert_eq!(older.len(), 20);
    assert_eq!(older[0]["text"], "line 1");
    assert_eq!(last["older"], "none");
    send(&mut ws, json!({"type": "say", "text": "/search line"}));
    let ends = |n: &Value, end: &str| n["text"].as_str().unwrap_or("").ends_with(end);
    next_where(&mut ws, "notice", |n| ends(n, "dave: line 30"));
    send(&mut ws, json!({"type": "say", "text": "/search"}));
    next_where(&mut ws, "notice", |n| ends(n, "dave: line 1"));
    let last_seen = first + 9;
    drop(ws);
    dave.expect("alice left");
    dave.send("missed one");
    dave.send("missed two");
    dave.sync();
    let mut ws = ws_connect(web.addr);
    let resume = json!({"room": "lobby", "last_id": last_seen});
    send(
        &mut ws,
        json!({"type": "hello", "name": "alice", "resume": resume}),
    );
    next_of(&mut ws, "welcome");
    let (mut lines, last) = history_lines(&mut ws);
    assert_eq!(last["page"], "resume");
    // What the history had not stored when the page came back follows live, once.
    dave.send("live again");
    loop {
        let line = next_of(&mut ws, "line");
        lines.push(line.clone());
        if line["text"] == "live again" {
            break;
        }
    }
    let texts: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    assert_eq!(texts, ["missed one", "missed two", "live again"]);
}

/// A page that says it showed lines newer than any stored (a history restored from a backup,
/// or a made-up id, up to `i64::MAX`) starts afresh: the room's last lines, marked `gap`, not
/// nothing. Its ids are not this history's, and lines it dropped as already shown would be lost.
#[test]
fn a_resume_from_beyond_the_history_starts_afresh() {
    let web = WebServer::start(&["--rate-per-sec", "0"]);
    let mut dave = web.server.join("dave");
    let mut eve = web.server.join("eve");
    for n in 1..=3 {
        dave.send(&format!("line {n}"));
    }
    // Relayed only once stored: when eve has the last line, all three are in the history a
    // page is sent (the hub having handled them is not enough).
    eve.expect("line 3");
    for (n, last_id) in [i64::MAX, 1_000_000].into_iter().enumerate() {
        let mut ws = ws_connect(web.addr);
        let resume = json!({"room": "lobby", "last_id": last_id});
        let name = format!("alice{n}");
        send(
            &mut ws,
            json!({"type": "hello", "name": name, "resume": resume}),
        );
        next_of(&mut ws, "welcome");
        let (lines, last) = history_lines(&mut ws);
        let texts: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
        assert_eq!(texts, ["line 1", "line 2", "line 3"], "{last_id}");
        assert_eq!(last["page"], "resume");
        assert_eq!(last["gap"], true, "{last_id}: {last}");
    }
}

/// Registered names ask for their password (loopback is a safe place for it); a wrong one is
/// refused and the name prompt comes back.
#[test]
fn registered_names_log_in() {
    let web = WebServer::start(&[]);
    web.server.register("carol", PASSWORD).close();
    let mut ws = ws_connect(web.addr);
    send(&mut ws, json!({"type": "hello", "name": "carol"}));
    let prompt = next_of(&mut ws, "prompt");
    assert_eq!(prompt["field"], "password");
    send(&mut ws, json!({"type": "password", "password": "wrong"}));
    let error = next_of(&mut ws, "error");
    assert_eq!(error["code"], "password");
    next_where(&mut ws, "prompt", |p| p["field"] == "name");
    send(
        &mut ws,
        json!({"type": "hello", "name": "carol", "password": PASSWORD}),
    );
    next_where(&mut ws, "notice", |n| {
        n["text"]
            .as_str()
            .unwrap_or("")
            .contains("logged in as carol")
    });
    next_of(&mut ws, "welcome");
}

/// Passwords never cross plaintext from a remote address: the page is told to use HTTPS.
#[test]
fn passwords_need_https() {
    let addr = format!("127.0.0.1:{}", common::web::free_port())
        .parse()
        .expect("addr");
    let web = WebServer::start_in(tempfile::tempdir().expect("dir"), addr, &[]);
    web.server.register("carol", PASSWORD).close();
    let dir = web.server.stop();
    let no = ["--trust-loopback-for-passwords", "false"];
    let web = WebServer::start_in(dir, addr, &no);
    let mut ws = ws_connect(web.addr);
    send(
        &mut ws,
        json!({"type": "hello", "name": "carol", "password": PASSWORD}),
    );
    let error = next_of(&mut ws, "error");
    assert_eq!(error["code"], "password", "{error}");
}

/// The line door's limits, each answered in one clear message: line length, line rate,
/// mutes, kicks and bans by an operator.
#[test]
fn limits_and_moderation() {
    let web = WebServer::start(&[
        "--max-line",
        "64",
        "--rate-burst",
        "3",
        "--rate-per-sec",
        "1",
    ]);
    let mut ws = ws_join(web.addr, "alice");
    let long = "x".repeat(65);
    send(&mut ws, json!({"type": "say", "text": long}));
    let error = next_of(&mut ws, "error");
    assert_eq!(error["code"], "too_long", "{error}");
    for n in 0..4 {
        send(&mut ws, json!({"type": "say", "text": format!("fast {n}")}));
    }
    next_where(&mut ws, "notice", |n| {
        n["text"].as_str().unwrap_or("").starts_with("slow down")
    });
    next_where(&mut ws, "line", |l| l["text"] == "fast 3");

    let mut op = web.server.operator("oper");
    op.send("/mute alice");
    op.expect("muted alice");
    next_where(&mut ws, "notice", |n| {
        n["text"]
            .as_str()
            .unwrap_or("")
            .contains("you were muted by oper")
    });
    send(&mut ws, json!({"type": "say", "text": "can you hear me"}));
    let refused = next_of(&mut ws, "error");
    assert_eq!(refused["code"], "refused");
    assert!(refused["text"]
        .as_str()
        .unwrap_or("")
        .contains("you are muted"));
    op.send("/kick alice");
    let bye = next_of(&mut ws, "bye");
    assert_eq!(
        (&bye["reason"], &bye["reconnect"]),
        (&json!("kicked"), &json!(false))
    );
    let mut ws = ws_join(web.addr, "alice");
    op.send("/ban alice");
    let bye = next_of(&mut ws, "bye");
    assert_eq!(bye["reason"], "banned", "{bye}");
    let mut ws = ws_connect(web.addr);
    send(&mut ws, json!({"type": "hello", "name": "alice"}));
    let error = next_of(&mut ws, "error");
    assert_eq!(error["code"], "name");
    assert!(
        error["text"].as_str().unwrap_or("").contains("banned"),
        "{error}"
    );
}

/// A connection that gives no name in time is told so; a connection over the per-address cap
/// gets an HTTP answer saying why.
#[test]
fn name_deadline_and_connection_cap() {
    let web = WebServer::start(&["--register-timeout", "1"]);
    let mut ws = ws_connect(web.addr);
    let bye = next_of(&mut ws, "bye");
    assert_eq!(bye["reason"], "limit");
    assert!(bye["text"]
        .as_str()
        .unwrap_or("")
        .contains("no name given in 1 s"));
    let web = WebServer::start(&["--max-per-ip", "1", "--limit-loopback"]);
    let _held = ws_join(web.addr, "alice");
    let mut answer = String::new();
    let mut extra = TcpStream::connect(web.addr).expect("connect");
    extra.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    let _ = extra.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("too many connections from your address (max 1)"),
        "{answer}"
    );
}

/// A page that stops reading is dropped as a slow reader, like an nc user: the room is told,
/// its connection ends, and the others stay.
#[test]
fn a_page_that_stops_reading_is_dropped() {
    let flags = [
        "--rate-per-sec",
        "0",
        "--max-line",
        "128",
        "--outbox-bytes",
        "8192",
    ];
    let web = WebServer::start(&flags);
    let mut dave = web.server.join("dave");
    let mut staller = common::web::ws_join_small_window(web.addr, "staller");
    dave.expect("staller joined");
    let pad = "p".repeat(100);
    let mut dropped = false;
    for batch in 0..400 {
        for n in 0..50 {
            dave.send(&format!("{batch} {n} {pad}"));
        }
        dave.sync();
        if dave
            .seen
            .iter()
            .any(|l| l.contains("staller left (not reading fast enough)"))
        {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the page that stopped reading was not dropped");
    // Its connection ends: what was sent before the drop reads out, then the close.
    while common::web::next(&mut staller).is_some() {}
    dave.sync();
}

/// The account commands run their dialogues through the page's password prompt: register,
/// change the password, unregister; any other message cancels.
#[test]
fn account_commands_on_the_page() {
    let web = WebServer::start(&[]);
    let mut ws = ws_join(web.addr, "alice");
    let say = |ws: &mut common::web::Ws, text: &str| send(ws, json!({"type": "say", "text": text}));
    let answer =
        |ws: &mut common::web::Ws, p: &str| send(ws, json!({"type": "password", "password": p}));
    let notice = |ws: &mut common::web::Ws, needle: &str| {
        next_where(ws, "notice", |n| {
            n["text"].as_str().unwrap_or("").contains(needle)
        })
    };
    say(&mut ws, "/register");
    let prompt = next_of(&mut ws, "prompt");
    assert_eq!(prompt["field"], "password");
    answer(&mut ws, PASSWORD);
    next_of(&mut ws, "prompt");
    answer(&mut ws, PASSWORD);
    notice(&mut ws, "alice is now registered");
    say(&mut ws, "/password");
    next_of(&mut ws, "prompt");
    say(&mut ws, "not a password");
    notice(&mut ws, "cancelled");
    say(&mut ws, "/password");
    next_of(&mut ws, "prompt");
    answer(&mut ws, PASSWORD);
    for _ in 0..2 {
        next_of(&mut ws, "prompt");
        answer(&mut ws, "a brand new password");
    }
    notice(&mut ws, "password changed");
    say(&mut ws, "/unregister");
    next_of(&mut ws, "prompt");
    answer(&mut ws, "a brand new password");
    notice(&mut ws, "alice is no longer registered");
}

/// `--web-tls-listen` serves the page over HTTPS with the TLS certificate (re-read on SIGHUP
/// without dropping anybody), and a password travels over it even where plaintext ones are
/// refused (see `passwords_need_https`).
#[test]
fn https_carries_passwords() {
    let cert = common::cert::Cert::new();
    let files = tempfile::tempdir().expect("dir");
    cert.write_to(files.path());
    let path = |name: &str| files.path().join(name).to_str().expect("utf-8").to_owned();
    let (cert_file, key_file) = (path("cert.pem"), path("key.pem"));
    let flags = [
        "--web-listen",
        "127.0.0.1:0",
        "--web-tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert_file,
        "--tls-key",
        &key_file,
        "--trust-loopback-for-passwords",
        "false",
    ];
    let (server, tls) = common::Server::start_until(&flags, "listening for web TLS on ");
    let tls: std::net::SocketAddr = tls.parse().expect("address");
    let mut page = common::cert::tls_stream(tls, &cert);
    page.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    let _ = page.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("content-security-policy: default-src 'self'"));

    let mut ws = common::web::wss_connect(tls, &cert);
    ws.send(json!({"type": "hello", "name": "carol"}));
    ws.expect("\"type\":\"welcome\"");
    ws.send(json!({"type": "say", "text": "/register"}));
    for _ in 0..2 {
        ws.expect("\"field\":\"password\"");
        ws.send(json!({"type": "password", "password": PASSWORD}));
    }
    ws.expect("carol is now registered");
    ws.send(json!({"type": "say", "text": "/quit"}));
    ws.expect("\"type\":\"bye\"");

    let mut again = common::web::wss_connect(tls, &cert);
    again.send(json!({"type": "hello", "name": "carol", "password": PASSWORD}));
    again.expect("logged in as carol");

    // SIGHUP re-reads the certificate for the web door's HTTPS too.
    let renewed = common::cert::Cert::new();
    renewed.write_to(files.path());
    server.signal("HUP");
    server.wait_log("reloaded TLS certificate");
    let mut after = common::web::wss_connect(tls, &renewed);
    after.send(json!({"type": "hello", "name": "dora"}));
    after.expect("\"type\":\"welcome\"");
    again.send(json!({"type": "say", "text": "still on the old certificate"}));
    again.expect("still on the old certificate");
}

/// Upgrades to the WebSocket by hand with `extra` header lines (`X-Forwarded-For: ...`), from
/// the page's own origin; returns the first object the server sends.
fn first_object_with(addr: std::net::SocketAddr, extra: &str) -> Value {
    let mut ws = upgrade_with(addr, extra).unwrap_or_else(|answer| panic!("{answer}"));
    first_object(&mut ws)
}

/// The first object the server sends on a WebSocket.
fn first_object(ws: &mut RawWs) -> Value {
    let text = ws.read().expect("frame").into_text().expect("text");
    serde_json::from_str(text.as_str().lines().next().unwrap_or("")).expect("json")
}

type RawWs = async_tungstenite::tungstenite::protocol::WebSocket<TcpStream>;

/// Upgrades to the WebSocket by hand with `extra` header lines, from the page's own origin: the
/// WebSocket, or the whole answer when the server does not switch protocols.
fn upgrade_with(addr: std::net::SocketAddr, extra: &str) -> Result<RawWs, String> {
    upgrade_from("127.0.0.1", addr, extra)
}

/// [`upgrade_with`] from the loopback address `from` (`127.0.0.3`).
fn upgrade_from(from: &str, addr: std::net::SocketAddr, extra: &str) -> Result<RawWs, String> {
    use async_tungstenite::tungstenite::protocol::Role;
    let mut stream = common::accounts::connect_from(from, addr).stream;
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nOrigin: http://{addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101 ") {
        let _ = stream.read_to_end(&mut head);
        return Err(String::from_utf8_lossy(&head).into_owned());
    }
    Ok(RawWs::from_raw_socket(stream, Role::Client, None))
}

/// Address bans: at accept the web port answers 403 with the reason; behind a proxy named by
/// `--trust-proxy`, the forwarded address is the one banned (its upgrade answered 403 the same
/// way), and without the flag a client's own `X-Forwarded-For` is ignored.
#[test]
fn address_bans_and_trusted_proxies() {
    let web = WebServer::start(&["--trust-proxy", "127.0.0.1"]);
    let mut op = web.server.operator("oper");
    op.send("/ban 127.0.0.2");
    op.expect("banned 127.0.0.2");
    op.send("/ban 203.0.113.7");
    op.expect("banned 203.0.113.7");
    let mut banned = common::accounts::connect_from("127.0.0.2", web.addr);
    banned
        .stream
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("request");
    let mut answer = String::new();
    let _ = banned.stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{answer}");
    assert!(answer.contains("banned"), "{answer}");

    let Err(forwarded) = upgrade_with(web.addr, "X-Forwarded-For: 203.0.113.7\r\n") else {
        panic!("a banned forwarded address got the WebSocket");
    };
    assert!(
        forwarded.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{forwarded}"
    );
    assert!(forwarded.contains("banned"), "{forwarded}");
    let other = first_object_with(web.addr, "X-Forwarded-For: 198.51.100.1\r\n");
    assert_eq!(other["type"], "prompt", "{other}");

    let untrusting = WebServer::start(&[]);
    let mut op = untrusting.server.operator("oper");
    op.send("/ban 203.0.113.7");
    op.expect("banned 203.0.113.7");
    let ignored = first_object_with(untrusting.addr, "X-Forwarded-For: 203.0.113.7\r\n");
    assert_eq!(ignored["type"], "prompt", "{ignored}");
}

/// Behind a trusted proxy, the per-address cap counts the forwarded address: its third page
/// gets the answer a connection over the cap gets at accept, counted as a `per_address`
/// refusal, while another forwarded address still gets in, and a page that leaves gives its
/// place back.
#[test]
fn the_cap_counts_forwarded_addresses() {
    let web = format!("127.0.0.1:{}", common::web::free_port());
    let flags = [
        "--web-listen",
        &web,
        "--metrics-listen",
        "127.0.0.1:0",
        "--trust-proxy",
        "127.0.0.1",
        "--max-per-ip",
        "2",
    ];
    let (_server, metrics) = common::Server::start_until(&flags, "metrics on ");
    let (web, metrics): (std::net::SocketAddr, std::net::SocketAddr) = (
        web.parse().expect("address"),
        metrics.parse().expect("address"),
    );
    let client = "X-Forwarded-For: 203.0.113.7\r\n";
    let mut pages = Vec::new();
    for _ in 0..2 {
        let mut ws = upgrade_with(web, client).unwrap_or_else(|answer| panic!("{answer}"));
        assert_eq!(first_object(&mut ws)["type"], "prompt");
        pages.push(ws);
    }
    let Err(answer) = upgrade_with(web, client) else {
        panic!("a third page from 203.0.113.7 was let in over --max-per-ip 2");
    };
    assert!(
        answer.starts_with("HTTP/1.1 429 Too Many Requests\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("too many connections from your address (max 2)"),
        "{answer}"
    );
    common::wait_sample(
        metrics,
        "smolchat_refusals_total{kind=\"per_address\"}",
        1.0,
    );
    let mut other = upgrade_with(web, "X-Forwarded-For: 198.51.100.1\r\n")
        .unwrap_or_else(|answer| panic!("another address refused: {answer}"));
    assert_eq!(first_object(&mut other)["type"], "prompt");

    drop(pages.pop());
    common::wait_sample(
        metrics,
        "smolchat_connections{door=\"web\",tls=\"false\"}",
        2.0,
    );
    let mut again = upgrade_with(web, client).unwrap_or_else(|answer| panic!("{answer}"));
    assert_eq!(first_object(&mut again)["type"], "prompt");
}

/// A proxy named by `--trust-proxy` that is not exempt as loopback (here `--limit-loopback`)
/// carries more clients than `--max-per-ip`: at accept its connections are not counted under its
/// own address, each forwarded address is, and the proxy's own direct connections still are.
#[test]
fn a_trusted_proxys_clients_do_not_share_its_cap() {
    let web = WebServer::start(&[
        "--trust-proxy",
        "127.0.0.3",
        "--limit-loopback",
        "--max-per-ip",
        "2",
    ]);
    let mut pages = Vec::new();
    for n in 1..=4 {
        let client = format!("X-Forwarded-For: 198.51.100.{n}\r\n");
        let mut ws = upgrade_from("127.0.0.3", web.addr, &client)
            .unwrap_or_else(|answer| panic!("client {n} behind the proxy refused: {answer}"));
        assert_eq!(first_object(&mut ws)["type"], "prompt");
        pages.push(ws);
    }
    let same = "X-Forwarded-For: 198.51.100.1\r\n";
    let mut second = upgrade_from("127.0.0.3", web.addr, same).expect("a second page");
    assert_eq!(first_object(&mut second)["type"], "prompt");
    let Err(answer) = upgrade_from("127.0.0.3", web.addr, same) else {
        panic!("a third page from 198.51.100.1 was let in over --max-per-ip 2");
    };
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    let mut direct = Vec::new();
    for _ in 0..2 {
        let mut client = common::accounts::connect_from("127.0.0.3", web.server.addr);
        client.expect("What is your name?");
        direct.push(client);
    }
    let mut third = common::accounts::connect_from("127.0.0.3", web.server.addr);
    third.expect("too many connections from your address (max 2)");
}

/// Web connections are counted under `door="web"`, and the web door's refusals beside the line
/// door's.
#[test]
fn web_connections_and_refusals_are_counted() {
    let web: std::net::SocketAddr = format!("127.0.0.1:{}", common::web::free_port())
        .parse()
        .expect("address");
    let web_flag = web.to_string();
    let flags = [
        "--web-listen",
        &web_flag,
        "--metrics-listen",
        "127.0.0.1:0",
        "--max-line",
        "64",
    ];
    let (_server, metrics) = common::Server::start_until(&flags, "metrics on ");
    let metrics: std::net::SocketAddr = metrics.parse().expect("address");
    let mut ws = ws_join(web, "alice");
    common::wait_sample(
        metrics,
        "smolchat_connections{door=\"web\",tls=\"false\"}",
        1.0,
    );
    send(&mut ws, json!({"type": "say", "text": "x".repeat(65)}));
    next_of(&mut ws, "error");
    common::wait_sample(
        metrics,
        "smolchat_refusals_total{kind=\"line_too_long\"}",
        1.0,
    );
    drop(ws);
    common::wait_sample(
        metrics,
        "smolchat_connections{door=\"web\",tls=\"false\"}",
        0.0,
    );
}

/// A page whose connection dropped without a close (the server still holds its session) takes
/// its name back at once with its last session's token, and gets the lines it missed; the stale
/// session is closed. Without the token, with another session's token, or with the token for
/// another name, the name stays taken.
#[test]
fn a_page_takes_its_name_back_from_its_stale_session() {
    let web = WebServer::start(&["--rate-per-sec", "0"]);
    let mut dave = web.server.join("dave");
    let mut stale = ws_connect(web.addr);
    send(&mut stale, json!({"type": "hello", "name": "alice"}));
    let token = next_of(&mut stale, "welcome")["token"]
        .as_str()
        .expect("a token in the welcome")
        .to_owned();
    assert_eq!(token.len(), 32, "{token}");
    next_where(&mut stale, "history", |h| h["done"] == true);
    dave.expect("alice joined");
    dave.send("seen before the blip");
    let last_id = next_where(&mut stale, "line", |l| l["sender"] == "dave")["id"].clone();
    // The blip: `stale` is neither read nor closed from here on, as a vanished connection.
    dave.send("said during the blip");
    let mut bob = ws_join(web.addr, "bob");
    dave.expect("bob joined");
    let mut carol = ws_connect(web.addr);
    send(&mut carol, json!({"type": "hello", "name": "carol"}));
    let carols = next_of(&mut carol, "welcome")["token"]
        .as_str()
        .map(str::to_owned);
    let carols = carols.expect("a token");

    let resume = |token: Option<&str>| {
        let mut resume = json!({"room": "lobby", "last_id": last_id});
        if let Some(token) = token {
            resume["token"] = json!(token);
        }
        resume
    };
    for (name, token) in [
        ("alice", None),
        ("alice", Some("0123456789abcdef0123456789abcdef")),
        ("alice", Some(carols.as_str())),
        ("bob", Some(token.as_str())),
    ] {
        let mut stranger = ws_connect(web.addr);
        let hello = json!({"type": "hello", "name": name, "resume": resume(token)});
        send(&mut stranger, hello);
        let error = next_of(&mut stranger, "error");
        assert_eq!(error["code"], "name", "{name} with {token:?}: {error}");
        assert!(
            error["text"].as_str().unwrap_or("").contains("taken"),
            "{error}"
        );
    }

    let mut page = ws_connect(web.addr);
    let hello = json!({"type": "hello", "name": "alice", "resume": resume(Some(&token))});
    send(&mut page, hello);
    let welcome = next_of(&mut page, "welcome");
    assert_eq!(welcome["name"], "alice", "{welcome}");
    assert_ne!(welcome["token"], json!(token), "a new session, a new token");
    let (lines, _) = history_lines(&mut page);
    let texts: Vec<&str> = lines.iter().filter_map(|l| l["text"].as_str()).collect();
    assert_eq!(texts, ["said during the blip"]);
    dave.expect("alice left");
    dave.expect("alice joined");
    next_where(&mut bob, "notice", |n| {
        n["kind"] == "joined" && n["name"] == "alice"
    });
    // The stale session was let go: its socket ends.
    while common::web::next(&mut stale).is_some() {}
    send(&mut page, json!({"type": "say", "text": "back again"}));
    dave.expect("alice: back again");
    send(
        &mut carol,
        json!({"type": "say", "text": "carol still here"}),
    );
    dave.expect("carol: carol still here");
}
