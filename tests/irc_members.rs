//! The IRC door's listings of members over real TCP: `NAMES` and `WHO` (server operators shown
//! `@`, rooms the asker is not in, nicks and masks), `WHOIS`, `USERHOST`, `ISON`, `LUSERS`.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;

use common::accounts::PASSWORD;
use common::cert::{tls_stream, Cert};
use common::irc::{start_irc, IrcClient, Msg, SERVER_NAME};
use common::Server;

/// An IRC client that logged in to the account `nick` with `PASS`, registered.
fn logged_in(addr: SocketAddr, nick: &str) -> IrcClient {
    let mut c = IrcClient::connect(addr);
    c.send(&format!("PASS :{PASSWORD}"));
    c.send(&format!("NICK {nick}"));
    c.send(&format!("USER {nick} 0 * :The {nick}"));
    c.expect_command("001");
    c.expect("the end of the MOTD", |m| m.command == "422");
    c
}

/// The replies up to (and with) the first `end` numeric.
fn until(c: &mut IrcClient, end: &str) -> Vec<Msg> {
    let mut got = Vec::new();
    loop {
        let m = c.expect("a reply", |_| true);
        let done = m.command == end;
        got.push(m);
        if done {
            return got;
        }
    }
}

/// Seconds since the epoch, as `317` counts them.
fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn codes(msgs: &[Msg]) -> Vec<&str> {
    msgs.iter().map(|m| m.command.as_str()).collect()
}

/// Server operators are `@` in `NAMES` (also on joining) and `H*@` in `WHO`; others are plain
/// (`H`), whichever door they came through; the real name given with `USER` is shown.
#[test]
fn operators_are_shown_at_in_names_and_who() {
    let (server, addr) = start_irc(&[]);
    server.operator("boss").close();
    let _nc = server.join("alice");
    let mut op = logged_in(addr, "boss");
    op.send("JOIN #lobby");
    let names = op.expect_command("353");
    let listed: Vec<&str> = names.params[3].split(' ').collect();
    assert!(
        listed.contains(&"@boss") && listed.contains(&"alice"),
        "{names:?}"
    );
    op.expect_command("366");
    let mut bob = IrcClient::connect(addr).register("bob");
    bob.send("CAP REQ :multi-prefix");
    bob.expect_command("CAP");
    bob.send("JOIN #lobby");
    bob.expect_command("366");
    bob.send("NAMES #lobby");
    let names = until(&mut bob, "366");
    assert_eq!(codes(&names), ["353", "366"]);
    assert_eq!(names[0].params[..3], ["bob", "=", "#lobby"]);
    let mut listed: Vec<&str> = names[0].params[3].split(' ').collect();
    listed.sort_unstable();
    assert_eq!(listed, ["@boss", "alice", "bob"]);
    bob.send("WHO #lobby");
    let who = until(&mut bob, "315");
    assert_eq!(codes(&who), ["352", "352", "352", "315"]);
    let line = |nick: &str| {
        who.iter()
            .find(|m| m.params.get(5).map(String::as_str) == Some(nick))
            .unwrap_or_else(|| panic!("{nick} not in {who:?}"))
            .params
            .clone()
    };
    let boss = line("boss");
    assert_eq!(
        boss[1..7],
        ["#lobby", "~boss", SERVER_NAME, SERVER_NAME, "boss", "H*@"]
    );
    assert_eq!(boss[7], "0 The boss");
    assert_eq!(line("alice")[6], "H");
    assert_eq!(line("bob")[7], "0 bob (raw)");
    assert_eq!(who[3].params[1], "#lobby");
}

/// Rooms are public: `NAMES` and `WHO` of a room the asker is not in list its members; of an
/// empty room, only the end (`366`, `315`, naming the channel as sent).
#[test]
fn names_and_who_of_a_room_not_joined() {
    let (server, addr) = start_irc(&[]);
    let _nc = server.join("alice");
    let mut bob = IrcClient::connect(addr).register("bob");
    bob.send("NAMES #lobby");
    let names = until(&mut bob, "366");
    assert_eq!(codes(&names), ["353", "366"]);
    assert_eq!(names[0].params[2..], ["#lobby", "alice"]);
    bob.send("WHO #Lobby");
    let who = until(&mut bob, "315");
    assert_eq!(codes(&who), ["352", "315"]);
    assert_eq!(who[0].params[5..], ["alice", "H", "0 "]);
    assert_eq!(who[1].params[1], "#Lobby", "315 names the mask as sent");
    bob.send("NAMES #empty");
    let names = until(&mut bob, "366");
    assert_eq!(codes(&names), ["366"]);
    assert_eq!(names[0].params[1], "#empty");
    bob.send("WHO #empty");
    assert_eq!(codes(&until(&mut bob, "315")), ["315"]);
}

/// `WHO nick` and `WHO mask` (ignoring case, `*` and `?`, also as `nick!user@host`) answer a
/// `352` per matching user with `*` for the channel; `WHO` of nobody is `315` alone; WHOX
/// (`%fields,token`) answers `354` with the fields asked for.
#[test]
fn who_of_a_nick_or_a_mask() {
    let (server, addr) = start_irc(&[]);
    let _alice = server.join("alice");
    let _alfred = server.join("alfred");
    let mut bob = IrcClient::connect(addr).register("bob");
    bob.send("WHO ALICE");
    let who = until(&mut bob, "315");
    assert_eq!(codes(&who), ["352", "315"]);
    assert_eq!(
        who[0].params[1..7],
        ["*", "~u", SERVER_NAME, SERVER_NAME, "alice", "H"]
    );
    assert_eq!(who[1].params[1], "ALICE");
    bob.send("WHO al*");
    let who = until(&mut bob, "315");
    let nicks: Vec<&str> = who[..2].iter().map(|m| m.params[5].as_str()).collect();
    assert_eq!(
        (codes(&who), nicks),
        (vec!["352", "352", "315"], vec!["alfred", "alice"])
    );
    bob.send(&format!("WHO al?ce!*@{SERVER_NAME}"));
    let who = until(&mut bob, "315");
    assert_eq!(codes(&who), ["352", "315"]);
    bob.send("WHO nobody*");
    assert_eq!(codes(&until(&mut bob, "315")), ["315"]);
    bob.send("WHO alice %tna,42");
    let who = until(&mut bob, "315");
    assert_eq!(who[0].command, "354");
    assert_eq!(who[0].params, ["bob", "42", "alice", "0"]);
}

/// `WHOIS nick`: `311` (user, host, real name), `319` (channels, `@` for an operator), `312`,
/// `317` (seconds idle, sign-on time),
/// `313` for an operator, `330` for a logged-in account, `318`; an unknown nick is `401` then
/// `318`.
#[test]
fn whois_of_users_and_operators() {
    let since = unix_seconds();
    let (server, addr) = start_irc(&[]);
    server.operator("boss").close();
    server.register("carol", PASSWORD).close();
    let mut op = logged_in(addr, "boss");
    op.send("JOIN #lobby,#ops");
    op.expect("the second join", |m| {
        m.command == "366" && m.params[1] == "#ops"
    });
    let mut carol = logged_in(addr, "carol");
    carol.send("WHOIS boss");
    let whois = until(&mut carol, "318");
    assert_eq!(
        codes(&whois),
        ["311", "319", "312", "313", "317", "330", "318"]
    );
    assert_eq!(
        whois[0].params,
        ["carol", "boss", "~boss", SERVER_NAME, "*", "The boss"]
    );
    assert_eq!(whois[1].params[2], "@#lobby @#ops");
    assert_eq!(whois[2].params[..3], ["carol", "boss", SERVER_NAME]);
    // `317 carol boss <idle> <signon> :seconds idle, signon time`: signed on during this test,
    // idle no longer than since then.
    let idle = &whois[4].params;
    assert_eq!(idle[..2], ["carol", "boss"]);
    let seconds: u64 = idle[2].parse().expect("idle seconds");
    let signon: u64 = idle[3].parse().expect("signon time");
    let now = unix_seconds();
    assert!((since..=now).contains(&signon), "{idle:?}");
    assert!(seconds <= now - signon, "{idle:?}");
    assert_eq!(whois[5].params[..3], ["carol", "boss", "boss"]);
    let _nc = server.join("dave");
    carol.send("WHOIS dave");
    let whois = until(&mut carol, "318");
    assert_eq!(codes(&whois), ["311", "319", "312", "317", "318"]);
    assert_eq!(whois[1].params[2], "#lobby");
    carol.send("WHOIS ghost");
    let whois = until(&mut carol, "318");
    assert_eq!(codes(&whois), ["401", "318"]);
    assert_eq!(whois[0].params[1], "ghost");
}

/// A user connected over TLS is `671` in `WHOIS`.
#[test]
fn whois_shows_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = Cert::new();
    cert.write_to(dir.path());
    let path = |name: &str| dir.path().join(name).to_str().expect("path").to_owned();
    let (cert_path, key_path) = (path("cert.pem"), path("key.pem"));
    let args = [
        "--irc-tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        &cert_path,
        "--tls-key",
        &key_path,
        "--server-name",
        SERVER_NAME,
    ];
    let (_server, rest) = Server::start_until(&args, "listening for IRC over TLS on ");
    let mut tls = tls_stream(rest.parse().expect("address"), &cert);
    tls.write_all(b"NICK sec\r\nUSER sec 0 * :S\r\nWHOIS sec\r\n")
        .expect("send");
    let mut seen = Vec::new();
    for line in BufReader::new(tls).lines() {
        let line = line.expect("read");
        let code = line.split(' ').nth(1).unwrap_or("").to_owned();
        seen.push(code.clone());
        if code == "318" {
            break;
        }
    }
    assert!(seen.contains(&"671".to_owned()), "{seen:?}");
}

/// `USERHOST` answers `nick=+~username@host` (`~u` for other doors' users) for users who are on (`*` after an operator's nick),
/// `ISON` the nicks that are on; `LUSERS` counts users, operators and rooms.
#[test]
fn userhost_ison_and_lusers() {
    let (server, addr) = start_irc(&[]);
    server.operator("boss").close();
    let _nc = server.join("alice");
    let mut op = logged_in(addr, "boss");
    op.send("JOIN #ops");
    op.expect_command("366");
    let mut bob = IrcClient::connect(addr).register("bob");
    bob.send("USERHOST alice boss ghost");
    let reply = bob.expect_command("302");
    assert_eq!(
        reply.params[1],
        format!("alice=+~u@{SERVER_NAME} boss*=+~boss@{SERVER_NAME}")
    );
    bob.send("ISON ghost Alice bob");
    let reply = bob.expect_command("303");
    assert_eq!(reply.params[1], "alice bob");
    bob.send("LUSERS");
    let lusers = until(&mut bob, "266");
    let get = |code: &str| {
        lusers
            .iter()
            .find(|m| m.command == code)
            .unwrap_or_else(|| panic!("no {code} in {lusers:?}"))
            .params
            .clone()
    };
    assert!(get("251")[1].starts_with("There are 3 users"), "{lusers:?}");
    assert_eq!(get("252")[1], "1");
    assert_eq!(get("254")[1], "2", "the lobby and #ops");
    assert_eq!(get("265")[1..3], ["3", "3"]);
    assert_eq!(get("266")[1..3], ["3", "3"]);
}

/// A client registered as `nick` that asked for `caps` after registering, synchronised so the
/// hub renders for it with them.
fn with_caps(addr: SocketAddr, nick: &str, caps: &str) -> IrcClient {
    let mut c = IrcClient::connect(addr).register(nick);
    c.send(&format!("CAP REQ :{caps}"));
    let ack = c.expect_command("CAP");
    assert_eq!(ack.params[1..], ["ACK", caps]);
    c.sync("caps");
    c
}

/// `AWAY :text` is `306` and `AWAY` `305`; meanwhile the user is `G` in `WHO`, `301` in `WHOIS`
/// and to whoever sends it a private line, `=-` in `USERHOST`. Room-mates with `away-notify`
/// get `AWAY` lines (also when an away user joins); those without get none.
#[test]
fn away_and_away_notify() {
    let (server, addr) = start_irc(&[]);
    let mut nc = server.join("nora");
    let mut bob = with_caps(addr, "bob", "away-notify");
    bob.send("JOIN #lobby,#tea");
    bob.expect("the second join", |m| {
        m.command == "366" && m.params[1] == "#tea"
    });
    let mut carol = IrcClient::connect(addr).register("carol");
    carol.send("JOIN #lobby");
    carol.expect_command("366");
    let mut alice = IrcClient::connect(addr).register("alice");
    alice.send("JOIN #lobby");
    alice.expect_command("366");
    alice.send("AWAY :gone for lunch");
    alice.expect_command("306");
    let away = bob.expect_command("AWAY");
    assert_eq!(away.nick(), Some("alice"));
    assert_eq!(away.params, ["gone for lunch"]);
    bob.send("WHO #lobby");
    let who = until(&mut bob, "315");
    let flags = |who: &[Msg], nick: &str| {
        who.iter()
            .find(|m| m.command == "352" && m.params[5] == nick)
            .map(|m| m.params[6].clone())
    };
    assert_eq!(flags(&who, "alice").as_deref(), Some("G"));
    assert_eq!(flags(&who, "bob").as_deref(), Some("H"));
    bob.send("WHOIS alice");
    let whois = until(&mut bob, "318");
    let gone = whois.iter().find(|m| m.command == "301").expect("301");
    assert_eq!(gone.params, ["bob", "alice", "gone for lunch"]);
    bob.send("PRIVMSG alice :are you there?");
    let gone = bob.expect_command("301");
    assert_eq!(gone.params, ["bob", "alice", "gone for lunch"]);
    bob.send("USERHOST alice");
    let userhost = bob.expect_command("302");
    assert_eq!(userhost.params[1], format!("alice=-~alice@{SERVER_NAME}"));
    // Joining another room while away: the JOIN, then the AWAY.
    alice.send("JOIN #tea");
    let join = bob.expect_command("JOIN");
    assert_eq!(
        (join.nick(), join.params[0].as_str()),
        (Some("alice"), "#tea")
    );
    let next = bob.expect("the next line", |_| true);
    assert_eq!(
        (next.command.as_str(), next.params.as_slice()),
        ("AWAY", &["gone for lunch".to_owned()][..])
    );
    alice.send("AWAY");
    alice.expect_command("305");
    let back = bob.expect_command("AWAY");
    assert_eq!((back.nick(), back.params.len()), (Some("alice"), 0));
    bob.send("WHOIS alice");
    assert!(!codes(&until(&mut bob, "318")).contains(&"301"));
    // Once each, though bob shares two rooms with alice; carol never asked.
    let aways: Vec<&String> = (bob.seen.iter())
        .filter(|l| l.contains("@irc.test AWAY"))
        .collect();
    assert_eq!(aways.len(), 3, "{aways:#?}");
    let seen = carol.sync("end");
    assert!(!commands_of(&seen).contains(&"AWAY".to_owned()), "{seen:?}");
    // The line door shows nothing of it, and its /who is names as before.
    nc.send("/who");
    let lines = nc.lines_until("users in ");
    assert!(
        nc.seen.iter().all(|l| !l.contains("lunch")),
        "{:?}",
        nc.seen
    );
    assert!(lines.iter().any(|l| l.contains("alice")), "{lines:?}");
}

fn commands_of(msgs: &[Msg]) -> Vec<String> {
    msgs.iter().map(|m| m.command.clone()).collect()
}

/// `extended-join` shows the joiner's account (`*` for none) and real name, in its own JOIN
/// too; `account-tag` tags the lines of logged-in users, public and private, with `account=`.
#[test]
fn extended_join_and_account_tag() {
    let (server, addr) = start_irc(&[]);
    server.register("carol", PASSWORD).close();
    let mut bob = with_caps(addr, "bob", "extended-join account-tag");
    bob.send("JOIN #lobby");
    let own = bob.expect_command("JOIN");
    assert_eq!(own.params, ["#lobby", "*", "bob (raw)"]);
    bob.expect_command("366");
    let mut carol = logged_in(addr, "carol");
    carol.send("JOIN #lobby");
    carol.expect_command("366");
    let join = bob.expect_command("JOIN");
    assert_eq!(join.nick(), Some("carol"));
    assert_eq!(join.params, ["#lobby", "carol", "The carol"]);
    let mut dave = IrcClient::connect(addr).register("dave");
    dave.send("JOIN #lobby");
    let join = bob.expect("dave's join", |m| {
        m.command == "JOIN" && m.nick() == Some("dave")
    });
    assert_eq!(join.params, ["#lobby", "*", "dave (raw)"]);
    carol.send("PRIVMSG #lobby :hello all");
    let said = bob.expect_command("PRIVMSG");
    assert_eq!(said.tag("account").as_deref(), Some("carol"));
    carol.send("PRIVMSG bob :psst");
    let private = bob.expect_command("PRIVMSG");
    assert_eq!(private.params, ["bob", "psst"]);
    assert_eq!(private.tag("account").as_deref(), Some("carol"));
    dave.send("PRIVMSG #lobby :me too");
    let said = bob.expect_command("PRIVMSG");
    assert_eq!(
        (said.tag("account"), said.params[1].as_str()),
        (None, "me too")
    );
    // A client without the capabilities gets neither.
    let seen = dave.sync("end");
    assert!(seen.iter().all(|m| !m.line.starts_with('@')), "{seen:?}");
}

/// Attack note N3: joining shows `JOIN`, the names (`353`, `366`), then the room's recent
/// history, in that order (the replay used to come before the names).
#[test]
fn names_come_before_the_replay() {
    let (_server, addr) = start_irc(&[]);
    let mut carol = IrcClient::connect(addr).register("carol");
    carol.send("JOIN #tea");
    carol.expect_command("366");
    let mut dave = IrcClient::connect(addr).register("dave");
    dave.send("JOIN #tea");
    dave.expect_command("366");
    carol.send("PRIVMSG #tea :said before");
    // Relayed, so stored: the newcomer's replay has it.
    dave.expect_command("PRIVMSG");
    let mut late = IrcClient::connect(addr).register("late");
    late.send("JOIN #tea");
    let got = late.sync("joined");
    let order: Vec<&str> = codes(&got)
        .into_iter()
        .filter(|c| ["JOIN", "353", "366", "PRIVMSG"].contains(c))
        .collect();
    assert_eq!(order, ["JOIN", "353", "366", "PRIVMSG"], "{got:#?}");
    let replayed = got.iter().find(|m| m.command == "PRIVMSG").unwrap();
    assert_eq!(replayed.params, ["#tea", "said before"]);
}

/// Masks carry the user name given in `USER` (`~`, at most `USERLEN` in all, as advertised):
/// in relayed lines, `JOIN`, `PART`, `NICK`, `QUIT`, `352`, `311` and `USERHOST`; users of
/// other doors show `~u`.
#[test]
fn masks_carry_the_user_name() {
    let (server, addr) = start_irc(&[]);
    let mut cool = IrcClient::connect(addr);
    cool.send("NICK coolNick");
    cool.send("USER myusernameislong 0 * :Cool");
    cool.expect_command("001");
    let userlen: usize = cool
        .expect("USERLEN in 005", |m| m.line.contains(" USERLEN="))
        .line
        .split(" USERLEN=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("USERLEN=N");
    let user = "~myusername";
    assert_eq!(user.len(), userlen);
    let mask = format!("coolNick!{user}@{SERVER_NAME}");
    let mut other = IrcClient::connect(addr).register("other");
    other.send("JOIN #m");
    other.expect_command("366");
    cool.send("JOIN #m");
    let join = other.expect_command("JOIN");
    assert_eq!(join.source.as_deref(), Some(mask.as_str()));
    let _nc = server.join("ncuser");
    cool.send("PRIVMSG #m :hello");
    let said = other.expect_command("PRIVMSG");
    assert_eq!(said.source.as_deref(), Some(mask.as_str()));
    other.send("WHO #m");
    let who = other.expect("coolNick's 352", |m| {
        m.command == "352" && m.params[5] == "coolNick"
    });
    assert_eq!(who.params[2], user);
    other.send("WHOIS coolNick");
    let whois = other.expect_command("311");
    assert_eq!(whois.params[1..3], ["coolNick", user]);
    other.send("USERHOST coolNick ncuser");
    let userhost = other.expect_command("302");
    assert_eq!(
        userhost.params[1],
        format!("coolNick=+{user}@{SERVER_NAME} ncuser=+~u@{SERVER_NAME}")
    );
    cool.send("NICK coolNick2");
    let nick = other.expect_command("NICK");
    assert_eq!(nick.source.as_deref(), Some(mask.as_str()));
    let mask = format!("coolNick2!{user}@{SERVER_NAME}");
    cool.send("PART #m :bye");
    let part = other.expect_command("PART");
    assert_eq!(part.source.as_deref(), Some(mask.as_str()));
    cool.send("JOIN #m");
    other.expect_command("JOIN");
    cool.send("QUIT :done");
    let quit = other.expect_command("QUIT");
    assert_eq!(quit.source.as_deref(), Some(mask.as_str()));
}
