//! The IRC test harness proven against real clients, before the IRC door is wired to the hub:
//! a throwaway IRC server made of the door's own protocol layer (`smolchat::door::irc`:
//! framing, registration with CAP and SASL, requests, renderers) and a few lines of room
//! keeping, with irssi and WeeChat connecting to it through a pseudo-terminal, over plaintext
//! and over TLS with SASL PLAIN. The real tests of the door replace the toy with the server
//! once the door is wired; the harness (tests/common/irc.rs) stays.
//!
//! A missing client skips its test loudly outside CI and fails it under CI (`common::require`).
mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::{Async, LocalExecutor};

use smolchat::door::irc::caps::{default_offer, Cap, CapSet};
use smolchat::door::irc::commands::check;
use smolchat::door::irc::event::{Change, Member as Listed, Origin, Said, Whispered};
use smolchat::door::irc::framing::{Framed, IrcReader};
use smolchat::door::irc::message::{self, ParseError};
use smolchat::door::irc::names::fold;
use smolchat::door::irc::numerics::{ERR_CANNOTSENDTOCHAN, ERR_INPUTTOOLONG, ERR_NOSUCHNICK};
use smolchat::door::irc::registration::{Registration, Step, Taken};
use smolchat::door::irc::render::relay::{change, said, whispered};
use smolchat::door::irc::render::welcome::{welcome, Lusers, ServerInfo};
use smolchat::door::irc::render::{replies, Ctx};
use smolchat::door::irc::request::{request, Me, Request, Target};
use smolchat::names::RoomName;

use common::irc::{Connect, IrcClient, IrcPty, Msg};

const SERVER: &str = "toy.smolchat.test";
const ACCOUNT: &str = "alice";
const PASSWORD: &str = "sesame-street";

/// One registered connection of the toy server.
struct Member {
    origin: Origin,
    realname: String,
    caps: CapSet,
    rooms: Vec<RoomName>,
    out: async_channel::Sender<Vec<u8>>,
}

type Members = Rc<RefCell<BTreeMap<u64, Member>>>;

/// The toy server: a plaintext and a TLS listener on loopback, run by a thread of its own for
/// the rest of the test process.
struct Toy {
    plain: SocketAddr,
    tls: SocketAddr,
}

impl Toy {
    fn start() -> Toy {
        let plain = TcpListener::bind("127.0.0.1:0").expect("bind");
        let tls = TcpListener::bind("127.0.0.1:0").expect("bind");
        let toy = Toy {
            plain: plain.local_addr().expect("addr"),
            tls: tls.local_addr().expect("addr"),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let made =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        std::fs::write(dir.path().join("cert.pem"), made.cert.pem()).expect("cert");
        std::fs::write(dir.path().join("key.pem"), made.signing_key.serialize_pem()).expect("key");
        let certs = smolchat::net::tls::Tls::load(
            &dir.path().join("cert.pem"),
            &dir.path().join("key.pem"),
        )
        .expect("tls");
        std::thread::spawn(move || {
            let _dir = dir;
            let ex = Rc::new(LocalExecutor::new());
            let members: Members = Rc::default();
            let certs = Arc::new(certs);
            let (_stop, stopping) = async_channel::bounded::<()>(1);
            let plain = Async::new(plain).expect("async");
            let tls = Async::new(tls).expect("async");
            let mut ids = 0u64;
            smol::block_on(ex.run(async {
                loop {
                    let (stream, peer, secure) = smol::future::or(
                        async { plain.accept().await.map(|(s, p)| (s, p, false)) },
                        async { tls.accept().await.map(|(s, p)| (s, p, true)) },
                    )
                    .await
                    .expect("accept");
                    ids += 1;
                    let (id, members, certs, stopping) =
                        (ids, members.clone(), certs.clone(), stopping.clone());
                    let ex2 = ex.clone();
                    ex.spawn(async move {
                        if secure {
                            let deadline = Instant::now() + Duration::from_secs(10);
                            if let Some(stream) =
                                certs.handshake(stream, peer, deadline, &stopping).await
                            {
                                serve(stream, id, members, ex2).await;
                            }
                        } else {
                            serve(stream, id, members, ex2).await;
                        }
                    })
                    .detach();
                }
            }));
        });
        toy
    }
}

/// One connection: registration through the door's [`Registration`], then requests.
async fn serve<S: AsyncRead + AsyncWrite + Unpin + 'static>(
    stream: S,
    id: u64,
    members: Members,
    ex: Rc<LocalExecutor<'static>>,
) {
    let (mut reading, mut writing) = smol::io::split(stream);
    let (tx, rx) = async_channel::unbounded::<Vec<u8>>();
    ex.spawn(async move {
        while let Ok(bytes) = rx.recv().await {
            if writing.write_all(&bytes).await.is_err() || writing.flush().await.is_err() {
                break;
            }
        }
    })
    .detach();
    let mut reader = IrcReader::new();
    let mut registration = Some(Registration::new(default_offer()));
    let mut caps = None;
    while let Ok(Some(framed)) = reader.next(&mut reading).await {
        let mut out = Vec::new();
        let client = match &registration {
            Some(r) => r.client().to_owned(),
            None => members
                .borrow()
                .get(&id)
                .map(|m| m.origin.nick.to_string())
                .unwrap_or_default(),
        };
        let parsed = match framed {
            Framed::TooLong => Err(ParseError::TooLong),
            Framed::Line => message::parse(reader.line()),
        };
        let msg = match parsed {
            Ok(msg) => msg,
            Err(ParseError::TooLong | ParseError::TagsTooLong) => {
                ERR_INPUTTOOLONG.write(&mut out, SERVER, &client, &[], &[]);
                let _ = tx.try_send(out);
                continue;
            }
            Err(_) => continue,
        };
        if let Some(reg) = registration.as_mut() {
            let verb = match check(&msg, false, false) {
                Ok(verb) => verb,
                Err(refusal) => {
                    refusal.write(&mut out, SERVER, &client, msg.command);
                    let _ = tx.try_send(out);
                    continue;
                }
            };
            let mut step = reg.handle(verb, &msg, SERVER, &mut out);
            if let Step::Verify(credentials) = &step {
                let ok =
                    credentials.account == ACCOUNT && credentials.password.expose() == PASSWORD;
                step = reg.sasl_result(ok.then_some(ACCOUNT), "toy.host", SERVER, &mut out);
            }
            match step {
                Step::Ready(ready) => {
                    let taken = members
                        .borrow()
                        .values()
                        .any(|m| fold(m.origin.nick.as_str()) == fold(ready.nick.as_str()));
                    if taken {
                        reg.refused(Taken::InUse, SERVER, &mut out);
                    } else {
                        let origin = Origin {
                            nick: ready.nick.clone(),
                            user: ready.username.clone().into(),
                            host: "toy.host".into(),
                            account: ready.account.clone().map(Into::into),
                        };
                        let ctx = Ctx {
                            server: SERVER,
                            client: ready.nick.as_str(),
                            caps: ready.caps,
                        };
                        let info = ServerInfo {
                            network: "toy",
                            version: "toy-1",
                            created: "today",
                            chathistory_max: 100,
                        };
                        let counts = Lusers {
                            users: members.borrow().len() + 1,
                            servers: 1,
                            ..Lusers::default()
                        };
                        welcome(
                            ctx,
                            &info,
                            &counts,
                            Some("a toy server for the IRC harness"),
                            &mut out,
                        );
                        members.borrow_mut().insert(
                            id,
                            Member {
                                origin,
                                realname: ready.realname.clone(),
                                caps: ready.caps,
                                rooms: Vec::new(),
                                out: tx.clone(),
                            },
                        );
                        caps = registration.take().map(|r| r.finish().0);
                    }
                }
                Step::Quit(_) => {
                    replies::error("Closing link", &mut out);
                    let _ = tx.try_send(out);
                    return;
                }
                _ => {}
            }
            let _ = tx.try_send(out);
            continue;
        }
        let Some(negotiation) = caps.as_mut() else {
            return;
        };
        let verb = match check(&msg, true, false) {
            Ok(verb) => verb,
            Err(refusal) => {
                refusal.write(&mut out, SERVER, &client, msg.command);
                let _ = tx.try_send(out);
                continue;
            }
        };
        let mask = members
            .borrow()
            .get(&id)
            .map(|m| replies::member_mask(&listed(m)))
            .unwrap_or_default();
        let me = Me {
            ctx: Ctx {
                server: SERVER,
                client: &client,
                caps: negotiation.enabled(),
            },
            mask: &mask,
            operator: false,
            invisible: false,
        };
        let req = request(verb, &msg, me, negotiation, 100, &mut out);
        if let Some(m) = members.borrow_mut().get_mut(&id) {
            m.caps = negotiation.enabled();
        }
        if let Some(req) = req {
            if !apply(req, id, &members, &mut out) {
                let _ = tx.try_send(out);
                break;
            }
        }
        let _ = tx.try_send(out);
    }
    let gone = members.borrow_mut().remove(&id);
    if let Some(gone) = gone {
        let quit = change(
            &Change::Quit {
                who: gone.origin.clone(),
                reason: None,
            },
            0,
        );
        for m in members
            .borrow()
            .values()
            .filter(|m| m.rooms.iter().any(|r| gone.rooms.contains(r)))
        {
            let mut bytes = Vec::new();
            quit.write(m.caps, &mut bytes);
            let _ = m.out.try_send(bytes);
        }
    }
}

/// The toy's whole "hub": joining, speaking in a room or privately, names. False to close.
fn apply(req: Request, id: u64, members: &Members, out: &mut Vec<u8>) -> bool {
    let mut all = members.borrow_mut();
    let (origin, realname, caps) = {
        let me = &all[&id];
        (me.origin.clone(), me.realname.clone(), me.caps)
    };
    let ctx_nick = origin.nick.to_string();
    let ctx = Ctx {
        server: SERVER,
        client: &ctx_nick,
        caps,
    };
    let send = |m: &Member, bytes: Vec<u8>| {
        let _ = m.out.try_send(bytes);
    };
    match req {
        Request::Join(rooms) => {
            for room in rooms {
                if let Some(me) = all.get_mut(&id) {
                    if me.rooms.contains(&room) {
                        continue;
                    }
                    me.rooms.push(room.clone());
                }
                let joined = change(
                    &Change::Joined {
                        room: room.clone(),
                        who: origin.clone(),
                        realname: realname.clone().into(),
                        away: None,
                    },
                    smolchat::clock::now_ms(),
                );
                for (other, m) in all.iter().filter(|(_, m)| m.rooms.contains(&room)) {
                    let mut bytes = Vec::new();
                    joined.write(m.caps, &mut bytes);
                    if *other == id {
                        out.extend_from_slice(&bytes);
                    } else {
                        send(m, bytes);
                    }
                }
                let in_room: Vec<Listed> = all
                    .values()
                    .filter(|m| m.rooms.contains(&room))
                    .map(listed)
                    .collect();
                replies::topic(ctx, &room, None, false, out);
                replies::names(ctx, &room, &in_room, out);
            }
        }
        Request::Say {
            target: Target::Room(room),
            kind,
            text,
            notice,
            client_tags,
        } => {
            if !all[&id].rooms.contains(&room) {
                ERR_CANNOTSENDTOCHAN.write(out, SERVER, &ctx_nick, &[&format!("#{room}")], &[]);
                return true;
            }
            let line = said(&Said {
                id: 1,
                at_ms: smolchat::clock::now_ms(),
                room: room.clone(),
                from: origin,
                kind,
                text: text.into(),
                notice,
                client_tags: client_tags.map(Into::into),
            });
            for (other, m) in all.iter().filter(|(_, m)| m.rooms.contains(&room)) {
                if *other == id {
                    if caps.contains(Cap::EchoMessage) {
                        line.write(caps, out);
                    }
                } else {
                    let mut bytes = Vec::new();
                    line.write(m.caps, &mut bytes);
                    send(m, bytes);
                }
            }
        }
        Request::Say {
            target: Target::Nick(nick),
            kind,
            text,
            notice,
            client_tags,
        } => {
            let Some(to) = all
                .values()
                .find(|m| fold(m.origin.nick.as_str()) == fold(&nick))
            else {
                ERR_NOSUCHNICK.write(out, SERVER, &ctx_nick, &[&nick], &[]);
                return true;
            };
            let line = whispered(&Whispered {
                at_ms: smolchat::clock::now_ms(),
                from: origin,
                to: to.origin.nick.clone(),
                kind,
                text: text.into(),
                notice,
                client_tags: client_tags.map(Into::into),
            });
            let mut bytes = Vec::new();
            line.write(to.caps, &mut bytes);
            send(to, bytes);
        }
        Request::Names(rooms) => {
            for room in rooms {
                let in_room: Vec<Listed> = all
                    .values()
                    .filter(|m| m.rooms.contains(&room))
                    .map(listed)
                    .collect();
                replies::names(ctx, &room, &in_room, out);
            }
        }
        Request::Quit(_) => {
            replies::error("Closing link", out);
            return false;
        }
        _ => {}
    }
    true
}

fn listed(m: &Member) -> Listed {
    Listed {
        origin: m.origin.clone(),
        realname: m.realname.clone().into(),
        operator: false,
        away: None,
        secure: false,
    }
}

/// A raw client in `#lobby` that asked for `extended-join`, to see who joins with which
/// account.
fn watcher(addr: SocketAddr) -> IrcClient {
    let mut raw = IrcClient::connect(addr);
    raw.send("CAP LS 302");
    raw.send("CAP REQ :extended-join server-time");
    raw.send("CAP END");
    let mut raw = raw.register("watcher");
    raw.send("JOIN #lobby");
    raw.expect_command("366");
    raw
}

/// The opening of the real-client tests: both clients (or a loud skip), a toy server, and a
/// watcher in `#lobby`.
fn opening() -> Option<(PathBuf, PathBuf, Toy, IrcClient)> {
    let irssi = common::require("irssi")?;
    let weechat = common::require("weechat-curses")?;
    let toy = Toy::start();
    let raw = watcher(toy.plain);
    Some((irssi, weechat, toy, raw))
}

/// Waits for `client` (as `nick`) to finish registering, has it join `#lobby`, and returns its
/// `JOIN` as the watcher saw it.
fn into_lobby(client: &mut IrcPty, watcher: &mut IrcClient, nick: &str) -> Msg {
    client.expect("a toy server for the IRC harness");
    client.join("#lobby");
    watcher.expect(&format!("{nick}'s JOIN"), |m| {
        m.command == "JOIN" && m.nick() == Some(nick)
    })
}

/// irssi and WeeChat over plaintext: both join `#lobby` and chat with each other and with a
/// raw client, `/me` included.
#[test]
fn irssi_and_weechat_chat_in_a_room() {
    let Some((irssi, weechat, toy, mut raw)) = opening() else {
        return;
    };
    let mut ivy = IrcPty::irssi(&irssi, toy.plain, "ivy", &Connect::default());
    into_lobby(&mut ivy, &mut raw, "ivy");
    let mut wendy = IrcPty::weechat(&weechat, toy.plain, "wendy", &Connect::default());
    into_lobby(&mut wendy, &mut raw, "wendy");

    ivy.type_line("hello from irssi");
    let m = raw.expect("ivy's line", |m| m.command == "PRIVMSG");
    assert_eq!(
        (m.nick(), m.params.as_slice()),
        (
            Some("ivy"),
            &["#lobby".to_owned(), "hello from irssi".to_owned()][..]
        )
    );
    wendy.expect("hello from irssi");

    wendy.type_line("hello from weechat");
    ivy.expect("hello from weechat");
    raw.expect("wendy's line", |m| {
        m.command == "PRIVMSG" && m.params[1] == "hello from weechat"
    });

    raw.send("PRIVMSG #lobby :hello from a raw client");
    ivy.expect("hello from a raw client");
    wendy.expect("hello from a raw client");

    ivy.type_line("/me waves from irssi");
    let m = raw.expect("ivy's action", |m| {
        m.command == "PRIVMSG" && m.params[1].starts_with('\u{1}')
    });
    assert_eq!(m.params[1], "\u{1}ACTION waves from irssi\u{1}");
    wendy.expect("waves from irssi");
    wendy.type_line("/me waves from weechat");
    ivy.expect("wendy waves from weechat");
}

/// Over TLS (a self-signed certificate) with SASL PLAIN: both clients log in to the account,
/// which the room sees in their `extended-join`.
#[test]
fn irssi_and_weechat_log_in_with_sasl_over_tls() {
    let Some((irssi, weechat, toy, mut raw)) = opening() else {
        return;
    };
    let sasl = Connect {
        tls: true,
        sasl: Some((ACCOUNT.to_owned(), PASSWORD.to_owned())),
    };

    let mut ivy = IrcPty::irssi(&irssi, toy.tls, "ivy", &sasl);
    let join = into_lobby(&mut ivy, &mut raw, "ivy");
    assert_eq!(join.params[..2], ["#lobby", ACCOUNT], "{join:?}");

    let mut wendy = IrcPty::weechat(&weechat, toy.tls, "wendy", &sasl);
    let join = into_lobby(&mut wendy, &mut raw, "wendy");
    assert_eq!(join.params[..2], ["#lobby", ACCOUNT], "{join:?}");

    ivy.type_line("over tls");
    wendy.expect("over tls");

    // A wrong password is refused, and the client says so.
    let wrong = Connect {
        tls: true,
        sasl: Some((ACCOUNT.to_owned(), "not-the-password".to_owned())),
    };
    let mut eve = IrcPty::irssi(&irssi, toy.tls, "eve", &wrong);
    eve.expect("SASL authentication failed");
}

/// The raw client: registration held by CAP, a PING answered after what came before it, an
/// over-long line answered `417` without a disconnect.
#[test]
fn raw_client_registers_and_syncs() {
    let toy = Toy::start();
    let mut a = IrcClient::connect(toy.plain);
    a.send("CAP LS 302");
    a.send("NICK first");
    a.send("USER first 0 * :First");
    let ls = a.expect_command("CAP");
    assert_eq!(ls.params[1], "LS");
    a.send("CAP REQ :message-tags echo-message");
    a.send("CAP END");
    a.expect_command("001");
    a.send("JOIN #lobby");
    a.send(&format!("PRIVMSG #lobby :{}", "x".repeat(600)));
    a.send("PRIVMSG #lobby :short");
    let replies = a.sync("t1");
    let codes: Vec<&str> = replies.iter().map(|m| m.command.as_str()).collect();
    assert!(codes.contains(&"417"), "{codes:?}");
    let echo = replies
        .iter()
        .find(|m| m.command == "PRIVMSG")
        .expect("echo-message");
    assert_eq!(echo.params[1], "short");
    assert!(echo.tag("msgid").is_some());
}
