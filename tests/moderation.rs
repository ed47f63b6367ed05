//! Moderation end to end: operators from the command line, kick, ban (name, address, expiry,
//! restart), mute, topic, motd, ignore, the connect throttle, refusals for non-operators, and the
//! moderation_log rows.

mod common;

use common::accounts::{connect_from, op, op_output};
use common::{Client, Server};

/// Waits (polling, bounded by the harness timeout) until `name` may join again.
fn join_when_allowed(server: &Server, from: &str, name: &str) -> Client {
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never got back in"
        );
        let mut c = connect_from(from, server.addr);
        let first = c.line().unwrap_or_default();
        if first.contains("banned") {
            continue;
        }
        c.send(name);
        let reply = c.line().unwrap_or_default();
        if reply.contains(&format!("Welcome, {name}!")) {
            c.expect("--- end of history");
            return c;
        }
        assert!(reply.contains("is banned"), "{reply}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `smolchat op add|list|remove` work against a running server's database; the role applies at
/// the next login, and `/op` and `/deop` apply at once.
#[test]
fn op_subcommands_against_a_live_server() {
    let (server, mut boss, []) = with_boss([]);
    let db = server.db_path();
    let db = db.to_str().unwrap();
    assert_eq!(op(&["list", "--db", db]), "boss\n");
    let out = op_output(&["add", "nobody", "--db", db]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody is not registered"));

    let mut carol = server.register("carol", common::accounts::PASSWORD);
    boss.send("/op carol");
    carol.expect("carol is now an operator");
    boss.expect("carol is now an operator");
    carol.send("/bans");
    carol.expect("bans (0):");
    boss.send("/deop carol");
    carol.expect("carol is no longer an operator");
    carol.send("/bans");
    carol.expect("/bans is for operators only");
    boss.send("/op dave");
    boss.expect("dave is not registered");

    op(&["remove", "boss", "--db", db]);
    assert_eq!(op(&["list", "--db", db]), "");
}

/// Each operator command is refused, with a line saying so, for a user who is not an operator.
#[test]
fn non_operators_are_refused() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let _carol = server.join("carol");
    for (command, name) in [
        ("/kick carol", "/kick"),
        ("/ban carol", "/ban"),
        ("/unban carol", "/unban"),
        ("/bans", "/bans"),
        ("/mute carol", "/mute"),
        ("/unmute carol", "/unmute"),
        ("/op carol", "/op"),
        ("/deop carol", "/deop"),
        ("/topic new topic", "/topic TEXT"),
    ] {
        bob.send(command);
        bob.expect(&format!("{name} is for operators only"));
    }
    bob.send("/help");
    let help = bob.lines_until("/topic              the topic of your room");
    bob.sync();
    assert!(
        !bob.seen.iter().any(|l| l.contains("operator commands")),
        "{help:?}"
    );
}

/// A kick disconnects the user, tells the room why, and is logged.
#[test]
fn kick() {
    let (server, mut boss, [mut bob, mut carol]) = with_boss(["bob", "carol"]);
    boss.send("/help");
    boss.expect("operator commands:");
    boss.send("/kick bob spamming");
    carol.expect("* bob was kicked by boss (spamming)");
    bob.expect("you were kicked by boss (spamming)");
    bob.expect_eof();
    boss.expect("kicked bob");
    // bob may come back: a kick is not a ban.
    let _bob = server.join("bob");
    boss.send("/kick nobody");
    boss.expect("no such user: nobody");
    let (_dir, db) = server.stop_and_open_db();
    let row: (String, String, String, Option<String>) = db
        .query_row(
            "SELECT operator, action, target, reason FROM moderation_log WHERE action = 'kick'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        row,
        (
            "boss".into(),
            "kick".into(),
            "bob".into(),
            Some("spamming".into())
        )
    );
}

/// A name ban disconnects the user, is refused at the name prompt until it expires, and is
/// listed by /bans.
#[test]
fn ban_by_name_with_expiry() {
    let (server, mut boss, [mut bob, mut carol]) = with_boss(["bob", "carol"]);
    boss.send("/ban bob 3s flooding");
    carol.expect("* bob was banned by boss (flooding)");
    bob.expect("you are banned by boss until");
    bob.expect_eof();
    boss.expect("banned bob until");
    boss.send("/bans");
    boss.expect("bans (1):");
    boss.expect("  bob by boss until");
    let mut again = Client::connect(server.addr);
    again.expect("What is your name?");
    again.send("BOB");
    let line = again.expect("BOB is banned until");
    assert!(line.ends_with(": choose another name"), "{line}");
    // Once it expires the name works again.
    let _bob = join_when_allowed(&server, "127.0.0.1", "bob");
}

/// An address ban refuses at connect with one line, then closes; other addresses are not
/// affected; it expires; and /unban lifts a ban.
#[test]
fn ban_by_address_with_expiry_and_unban() {
    let (server, mut boss, []) = with_boss([]);
    let mut bob = server.join_from("127.0.0.2", "bob");
    // An operator cannot ban an address that covers their own.
    boss.send("/ban 127.0.0.0/8");
    boss.expect("that ban would cover you, not set");
    boss.send("/ban 127.0.0.2/31 3s bad bot");
    bob.expect("you are banned by boss");
    bob.expect_eof();
    boss.expect("banned 127.0.0.2/31 until");
    let mut refused = connect_from("127.0.0.2", server.addr);
    let lines = refused.expect_eof();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("your address is banned from this server until")
            && lines[0].ends_with("(bad bot)"),
        "{lines:?}"
    );
    let _other = server.join_from("127.0.0.5", "carol");
    let _bob = join_when_allowed(&server, "127.0.0.2", "bob");

    boss.send("/ban 127.0.0.4");
    boss.expect("banned 127.0.0.4 until lifted");
    boss.send("/unban 127.0.0.4");
    boss.expect("lifted the ban on 127.0.0.4");
    boss.send("/unban 127.0.0.4");
    boss.expect("no ban on 127.0.0.4");
    let _dave = server.join_from("127.0.0.4", "dave");
}

/// Bans survive a restart.
#[test]
fn a_ban_survives_a_restart() {
    let (server, mut boss, []) = with_boss([]);
    boss.send("/ban mallory trolling");
    boss.expect("banned mallory until lifted");
    boss.send("/ban 127.0.0.9 1d");
    boss.expect("banned 127.0.0.9 until");
    let dir = server.stop();
    let server = Server::start_in(dir, &[]);
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("mallory");
    c.expect("mallory is banned until lifted: choose another name");
    let mut refused = connect_from("127.0.0.9", server.addr);
    assert!(refused.expect_eof()[0].contains("your address is banned"));
    let (_dir, db) = server.stop_and_open_db();
    let bans: Vec<(String, String, Option<String>)> = db
        .prepare("SELECT kind, target, reason FROM bans ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        bans,
        [
            ("name".into(), "mallory".into(), Some("trolling".into())),
            ("address".into(), "127.0.0.9".into(), None),
        ]
    );
}

/// A muted user's public lines and actions are refused with a line saying so; private lines to
/// operators still go through; /unmute restores.
#[test]
fn mute_and_unmute() {
    let (_server, mut boss, [mut bob, mut carol]) = with_boss(["bob", "carol"]);
    boss.send("/mute bob 10m");
    boss.expect("muted bob for 10m");
    bob.expect("you were muted by boss for 10m");
    bob.send("hello?");
    bob.expect("you are muted: not sent");
    bob.send("/me waves");
    bob.expect("you are muted: not sent");
    bob.send("/msg carol psst");
    bob.expect("you are muted: not sent");
    bob.send("/msg boss sorry");
    boss.expect("[private] bob: sorry");
    boss.send("/unmute bob");
    boss.expect("bob is no longer muted");
    bob.expect("you are no longer muted");
    bob.send("back");
    carol.next_is_after_joins("bob: back");
}

/// The topic is shown after the history block on joining, announced when set, and stored.
#[test]
fn topic_is_shown_announced_and_stored() {
    let (server, mut boss, [mut bob]) = with_boss(["bob"]);
    bob.send("/topic");
    bob.expect("lobby has no topic");
    boss.send("/topic Rust talk only");
    bob.expect("* boss set the topic of lobby: Rust talk only");
    let (mut carol, _) = server.join_replay("carol");
    carol.next_is("topic of lobby: Rust talk only (set by boss)");
    let dir = server.stop();
    let server = Server::start_in(dir, &[]);
    let (mut dave, _) = server.join_replay("dave");
    dave.next_is("topic of lobby: Rust talk only (set by boss)");
}

/// --motd FILE is shown after the welcome line.
#[test]
fn motd_follows_the_welcome() {
    let dir = tempfile::tempdir().unwrap();
    let motd = dir.path().join("motd.txt");
    std::fs::write(&motd, "Be kind.\nNo spam.\n").unwrap();
    let server = Server::start_in(dir, &["--motd", motd.to_str().unwrap()]);
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("alice");
    c.expect("Welcome, alice!");
    c.next_is("Be kind.");
    c.next_is("No spam.");
    c.next_is("--- history of lobby ---");
}

/// /ignore hides a user's public lines, actions and private lines from the ignoring connection
/// only; /unignore restores them.
#[test]
fn ignore_hides_lines_for_this_connection() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    let mut carol = server.join("carol");
    let mut dave = server.join("dave");
    carol.send("/ignore bob");
    carol.expect("ignoring bob");
    carol.send("/ignore carol");
    carol.expect("you cannot ignore yourself");
    carol.send("/ignore");
    carol.expect("ignoring (1): bob");
    bob.send("hello all");
    bob.send("/me waves");
    bob.send("/msg carol psst");
    bob.expect("[private to carol] psst");
    dave.expect("bob: hello all");
    dave.send("marker");
    carol.next_is_after_joins("dave: marker");
    carol.send("/unignore bob");
    carol.expect("no longer ignoring bob");
    bob.send("again");
    carol.expect("bob: again");
}

/// More than --connects-per-minute connections from one address in a minute are refused.
#[test]
fn connect_throttle() {
    let server = Server::start(&["--connects-per-minute", "3", "--limit-loopback"]);
    for _ in 0..3 {
        let mut c = Client::connect(server.addr);
        c.expect("What is your name?");
        c.close();
    }
    let mut c = Client::connect(server.addr);
    let lines = c.expect_eof();
    assert_eq!(
        lines,
        ["too many connections from your address in the last minute (max 3), try again later"]
    );
    server.wait_log("refused: too many connections from your address in the last minute");
}

/// operator, action, target, reason, duration.
type LogRow = (String, String, String, Option<String>, Option<String>);

/// Every operator action leaves a moderation_log row.
#[test]
fn moderation_log_rows() {
    let (server, mut boss, [_bob]) = with_boss(["bob"]);
    boss.send("/mute bob 1h");
    boss.expect("muted bob");
    boss.send("/unmute bob");
    boss.expect("no longer muted");
    boss.send("/ban 192.0.2.0/24 7d spam");
    boss.expect("banned 192.0.2.0/24");
    boss.send("/unban 192.0.2.0/24");
    boss.expect("lifted");
    boss.send("/topic hi");
    boss.expect("set the topic");
    boss.send("/kick bob");
    boss.expect("kicked bob");
    let (_dir, db) = server.stop_and_open_db();
    let rows: Vec<LogRow> = db
        .prepare(
            "SELECT operator, action, target, reason, duration FROM moderation_log ORDER BY id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let s = |x: &str| x.to_owned();
    assert_eq!(
        rows,
        [
            (s("cli"), s("op"), s("boss"), None, None),
            (s("boss"), s("mute"), s("bob"), None, Some(s("1h"))),
            (s("boss"), s("unmute"), s("bob"), None, None),
            (
                s("boss"),
                s("ban"),
                s("192.0.2.0/24"),
                Some(s("spam")),
                Some(s("7d"))
            ),
            (s("boss"), s("unban"), s("192.0.2.0/24"), None, None),
            (s("boss"), s("topic"), s("lobby"), Some(s("hi")), None),
            (s("boss"), s("kick"), s("bob"), None, None),
        ]
    );
}

trait NextIs {
    fn next_is_after_joins(&mut self, expected: &str);
}

impl NextIs for Client {
    /// The next line that is not a join notice is `expected`: nothing hidden arrived before it.
    fn next_is_after_joins(&mut self, expected: &str) {
        loop {
            let line = self.line().expect("EOF");
            if line.ends_with(" joined") {
                continue;
            }
            assert_eq!(line, expected, "seen: {:?}", self.seen);
            return;
        }
    }
}

// Regressions from the review of main (findings 1, 2, 4 and 7).

/// `/kick NAME` finds a name whose confusable skeleton differs from its key (`alice` has an
/// `i`): the hub looks names up by skeleton, then checks the very name.
#[test]
fn an_operator_can_kick_a_name_whose_skeleton_differs() {
    let (_server, mut boss, mut alice) = boss_and_alice();
    boss.send("/kick alice flooding");
    let reply = boss.expect("alice");
    assert!(
        !reply.contains("no such user"),
        "alice is connected but /kick says: {reply}"
    );
    alice.expect("you were kicked by boss");
}

/// A look-alike is not the user: `/kick allce` (a look-alike of `alice`) kicks nobody.
#[test]
fn kick_by_a_look_alike_finds_nobody() {
    let (_server, mut boss, mut alice) = boss_and_alice();
    boss.send("/kick allce");
    boss.expect("no such user: allce is not connected");
    alice.send("/who");
    alice.expect("users in lobby");
}

/// The notice to a muted user whose skeleton differs from its key reaches it.
#[test]
fn a_muted_name_whose_skeleton_differs_is_told() {
    let (_server, mut boss, mut alice) = boss_and_alice();
    boss.send("/mute alice");
    boss.expect("muted alice");
    alice.expect("you were muted by boss");
}

/// A mute is carried by `/nick`: the muted user renamed is still refused, and nothing it says
/// reaches the room. (bob's own `/who` answer proves the hub handled bob's line before carol's
/// marker is sent, so the marker orders the check.)
#[test]
fn a_mute_survives_a_rename() {
    let (server, mut boss, [mut bob]) = with_boss(["bob"]);
    boss.expect("* bob joined");
    let mut carol = server.join("carol");
    boss.expect("* carol joined");
    boss.send("/mute bob");
    bob.expect("you were muted by boss");
    bob.send("/nick bob2");
    boss.expect("* bob is now known as bob2");
    bob.send("still here");
    bob.send("/who");
    let answered = bob.lines_until("users in lobby");
    assert!(
        answered.iter().any(|l| l.starts_with("you are muted")),
        "the renamed user was not refused: {answered:?}"
    );
    carol.send("marker");
    let seen = boss.lines_until("carol: marker");
    assert!(
        !seen.iter().any(|l| l == "bob2: still here"),
        "a muted user spoke after /nick: {seen:?}"
    );
    // Unmuting by the new name lifts it.
    boss.send("/unmute bob2");
    boss.expect("bob2 is no longer muted");
    bob.expect("you are no longer muted");
}

/// A mute covers the account: a muted user who logs in again under the same account, on a new
/// connection, is still muted.
#[test]
fn a_mute_follows_the_account_across_connections() {
    let (server, mut boss, []) = with_boss([]);
    let bob = server.register("bob", common::accounts::PASSWORD);
    boss.expect("* bob joined");
    boss.send("/mute bob");
    boss.expect("muted bob");
    bob.close();
    boss.expect("* bob left");
    let mut bob = server.login("bob", common::accounts::PASSWORD);
    bob.send("hello again");
    bob.expect("you are muted: not sent");
}

/// `/ignore` is capped, so its listing stays small and its owner is never dropped by it: over
/// the cap the user is told so.
#[test]
fn the_ignore_list_is_capped_and_listing_it_does_not_drop_its_owner() {
    let server = Server::start(&["--rate-per-sec", "0", "--outbox-bytes", "65536"]);
    let mut alice = server.join("alice");
    let names: Vec<String> = (0..150).map(|n| format!("x{n:0>22}")).collect();
    for chunk in names.chunks(50) {
        let mut batch = String::new();
        for name in chunk {
            batch.push_str(&format!("/ignore {name}\n"));
        }
        alice.send_raw(batch.as_bytes());
    }
    alice.send("/ignore");
    alice.send("/who");
    let mut dropped = false;
    let mut header = None;
    let mut refused = 0;
    while let Some(line) = alice.line() {
        dropped |= line.contains("not reading fast enough");
        if line.starts_with("you ignore 100 names already") {
            refused += 1;
        }
        if line.starts_with("ignoring (") {
            header = Some(line.clone());
        }
        if line.starts_with("users in lobby") {
            break;
        }
    }
    assert!(!dropped, "dropped by its own /ignore list");
    assert_eq!(refused, 50, "every name past the cap is refused");
    assert!(header.is_some_and(|h| h.starts_with("ignoring (100):")));
}

/// A rename replaces the old name in ignore lists (so they cannot grow by renaming) and the
/// ignored user stays ignored.
#[test]
fn an_ignored_rename_replaces_the_old_name() {
    let server = Server::start(&[]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send("/ignore bob");
    alice.expect("ignoring bob");
    bob.send("/nick bob2");
    alice.expect("* bob is now known as bob2");
    alice.send("/ignore");
    alice.next_is("ignoring (1): bob2");
}

/// `/op` waits for the database outside the hub: while another process holds the write lock,
/// the operator's `/op` is pending, yet another user's `/who` is answered (before the lock is
/// released: the lock is released only after the answer arrived), and the `/op` completes
/// once the lock is gone.
#[test]
fn op_under_a_held_write_lock_does_not_freeze_the_hub() {
    let (server, mut boss, []) = with_boss([]);
    server.register("bob", common::accounts::PASSWORD).close();
    let mut carol = server.join("carol");
    boss.expect("* carol joined");
    let db = server.open_db();
    db.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    boss.send("/op bob");
    // The /op is queued behind the lock; the hub carries on.
    carol.send("/who");
    carol.expect("users in lobby");
    db.execute_batch("COMMIT").expect("release the write lock");
    boss.expect("bob is now an operator");
    let role: String = db
        .query_row("SELECT role FROM accounts WHERE name = 'bob'", [], |r| {
            r.get(0)
        })
        .expect("bob's role");
    assert_eq!(role, "operator");
}

/// Runs `smolchat ban ARGS` and returns the whole output.
fn ban_output(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .arg("ban")
        .args(args)
        .output()
        .expect("run smolchat ban")
}

/// Runs `smolchat ban ARGS` and returns its stdout; panics if it fails.
fn ban(args: &[&str]) -> String {
    let out = ban_output(args);
    assert!(
        out.status.success(),
        "smolchat ban {args:?} failed: {out:?}"
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// An operator made with `smolchat op add` cannot be /deop'ed or banned by name in chat (not
/// even through the name it renamed to); chat operators can still /deop chat operators; only
/// `smolchat op remove` takes the command-line role.
#[test]
fn a_command_line_operator_cannot_be_deopped_or_banned_by_name_in_chat() {
    let (server, mut boss, []) = with_boss([]);
    let db = server.db_path();
    let db = db.to_str().unwrap();
    let mut carol = server.register("carol", common::accounts::PASSWORD);
    let mut dave = server.register("dave", common::accounts::PASSWORD);
    boss.send("/op carol");
    carol.expect("carol is now an operator");
    boss.send("/op dave");
    dave.expect("dave is now an operator");

    let refused = "boss was made an operator on the command line; only `smolchat op remove`";
    carol.send("/deop boss");
    carol.expect(refused);
    carol.send("/ban boss");
    carol.expect(refused);
    boss.send("/nick bossy");
    boss.expect("* boss is now known as bossy");
    carol.send("/ban bossy");
    carol.expect(refused);
    // /op of a command-line operator changes nothing: it stays protected.
    carol.send("/op boss");
    carol.expect("boss is now an operator");
    carol.send("/deop boss");
    carol.expect(refused);
    boss.send("/bans");
    boss.expect("bans (0):");

    carol.send("/deop dave");
    dave.expect("dave is no longer an operator");
    carol.expect("dave is no longer an operator");

    op(&["remove", "boss", "--db", db]);
    assert_eq!(op(&["list", "--db", db]), "carol\n");
    let (_dir, conn) = server.stop_and_open_db();
    let origins: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT name, role, role_origin FROM accounts ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        origins,
        [
            ("boss".into(), "user".into(), None),
            ("carol".into(), "operator".into(), Some("chat".into())),
            ("dave".into(), "user".into(), None),
        ]
    );
}

/// `/ban` refuses prefixes shorter than /8 (IPv4) or /32 (IPv6), however they are written, and
/// the refusal does not depend on the operator's own address family; the self-cover check stays.
#[test]
fn ban_refuses_prefixes_that_are_too_wide() {
    for extra in [
        &[][..],
        &["--test-loopback-as-ipv6", "--plaintext-passwords"][..],
    ] {
        let server = Server::start(extra);
        let mut boss = server.operator("boss");
        for (target, min) in [
            ("0.0.0.0/0", 8),
            ("64.0.0.0/2", 8),
            ("::ffff:0.0.0.0/96", 8),
            ("::/0", 32),
            ("2000::/3", 32),
            ("fd00::/16", 32),
        ] {
            boss.send(&format!("/ban {target}"));
            let line = boss.expect("is too wide to ban");
            assert!(line.contains(&format!("shorter than /{min}")), "{line}");
        }
        let own = if extra.is_empty() {
            "127.0.0.0/8"
        } else {
            "fd00::/32"
        };
        boss.send(&format!("/ban {own}"));
        boss.expect("that ban would cover you, not set");
        boss.send("/ban 2001:db8::/32");
        boss.expect("banned 2001:db8::/32 until lifted");
        boss.send("/bans");
        boss.expect("bans (1):");
    }
}

/// `smolchat ban add|list|remove` work against a live server's database, and SIGHUP (without
/// TLS) applies them: an added ban removes the user at once, a removed one lets the user in,
/// and a role removed with `smolchat op remove` is taken at once.
#[test]
fn ban_subcommands_against_a_live_server_apply_on_sighup() {
    let (server, mut boss, []) = with_boss([]);
    let db = server.db_path();
    let db = db.to_str().unwrap();
    let mut bob = server.join_from("127.0.0.2", "bob");

    let out = ban_output(&["add", "0.0.0.0/0", "--db", db]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = ban(&["add", "127.0.0.2", "--reason", "spam", "--db", db]);
    assert!(out.starts_with("banned 127.0.0.2 until lifted"), "{out}");
    server.signal("HUP");
    bob.expect("you are banned by cli until lifted (spam)");
    bob.expect_eof();
    server.wait_log("reloaded 1 bans and 1 operators (1 removed by a ban)");
    let refused = connect_from("127.0.0.2", server.addr).expect_eof();
    assert!(
        refused[0].starts_with("your address is banned"),
        "{refused:?}"
    );
    let list = ban(&["list", "--db", db]);
    assert!(
        list.contains("bans (1):\n  127.0.0.2 by cli until lifted (spam)"),
        "{list}"
    );

    // A ban set in chat, lifted from the command line.
    boss.send("/ban carol");
    boss.expect("banned carol until lifted");
    // The hub answers at once and the account thread stores the ban a moment later: wait for
    // the row before the command line looks for it.
    let deadline = std::time::Instant::now() + common::TIMEOUT;
    while !ban(&["list", "--db", db]).contains("carol") {
        assert!(
            std::time::Instant::now() < deadline,
            "the ban was never stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    ban(&["remove", "127.0.0.2", "--db", db]);
    let out = ban(&["remove", "carol", "--db", db]);
    assert!(out.starts_with("lifted the ban on carol"), "{out}");
    let out = ban_output(&["remove", "carol", "--db", db]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no ban on carol"));
    server.signal("HUP");
    server.wait_log("reloaded 0 bans");
    let _carol = server.join_from("127.0.0.2", "carol");

    op(&["remove", "boss", "--db", db]);
    server.signal("HUP");
    boss.expect("boss is no longer an operator");
    boss.send("/bans");
    boss.expect("/bans is for operators only");
}

/// A mute is stored: after a restart the muted name is still refused.
#[test]
fn a_mute_survives_a_restart() {
    let (server, mut boss, [mut bob]) = with_boss(["bob"]);
    boss.send("/mute bob 1d");
    bob.expect("you were muted by boss for 1d");
    boss.send("/mute carol");
    boss.expect("muted carol until unmuted");
    boss.send("/unmute carol");
    boss.expect("carol is no longer muted");
    drop(bob);
    let dir = server.stop();
    let server = Server::start_in(dir, &[]);
    let mut bob = server.join("bob");
    bob.send("hello again");
    bob.expect("you are muted: not sent");
    let mut carol = server.join("carol");
    let mut dave = server.join("dave");
    carol.send("hi");
    dave.expect("carol: hi");
    let (_dir, conn) = server.stop_and_open_db();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM mutes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names, ["bob"]);
}

/// A fresh server with the operator `boss` logged in, then the users `names` joined in that
/// order: the opening of most tests here.
fn with_boss<const N: usize>(names: [&str; N]) -> (Server, Client, [Client; N]) {
    let server = Server::start(&[]);
    let boss = server.operator("boss");
    let users = names.map(|name| server.join(name));
    (server, boss, users)
}

/// A server with the operator `boss` and the user `alice`, boss having seen alice join.
fn boss_and_alice() -> (Server, Client, Client) {
    let (server, mut boss, [alice]) = with_boss(["alice"]);
    boss.expect("* alice joined");
    (server, boss, alice)
}

/// A name ban covers the names a troll comes back as: look-alike letters (`1`, `I`, `rn`) with
/// a tail of digits or separators, at the name prompt and on `/nick`. It does not over-match:
/// `/ban al` leaves `alice` alone, and `mallory_fan` is another name.
#[test]
fn a_name_ban_covers_look_alikes_with_a_tail() {
    let (server, mut boss, []) = with_boss([]);
    boss.send("/ban mallory");
    boss.expect("banned mallory until lifted");
    boss.send("/ban al");
    boss.expect("banned al until lifted");
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    for name in [
        "ma1lory2",
        "maIlory2",
        "rnallory2",
        "Mallory_",
        "mallory.7",
        "a1",
    ] {
        c.send(name);
        c.expect(&format!(
            "{name} is banned until lifted: choose another name"
        ));
        c.expect("What is your name?");
    }
    c.send("mallory_fan");
    c.expect("Welcome, mallory_fan!");
    c.expect("--- end of history");
    for name in ["ma1lory2", "rnallory", "al_2"] {
        c.send(&format!("/nick {name}"));
        c.expect(&format!(
            "{name} is banned until lifted: choose another name"
        ));
    }
    c.send("/nick alice");
    boss.expect("* mallory_fan is now known as alice");
    // A ban that would keep its own operator out is refused, look-alikes included; nor can a
    // chat operator dodge the protection of an operator made on the command line that way.
    boss.send("/ban boss_2");
    boss.expect("that ban would cover you, not set");
    let mut carol = server.register("carol", common::accounts::PASSWORD);
    boss.send("/op carol");
    carol.expect("carol is now an operator");
    carol.send("/ban b0ss_2");
    carol.expect("boss was made an operator on the command line");
}

/// A ban on a look-alike does not lock the owner of a registered account out of it: `/ban bob`
/// refuses an unregistered `b0b3`, but `bob_2`, registered before by somebody else, still logs
/// in with its password and, logged in, takes its name back with `/nick`; a look-alike used
/// from before the ban cannot be registered now; a ban on the account's very name covers it.
#[test]
fn a_look_alike_ban_leaves_registered_accounts_to_their_owners() {
    use common::accounts::PASSWORD;
    let server = Server::start(&[]);
    let mut boss = server.operator("boss");
    server.register("bob_2", PASSWORD).close();
    let mut early = server.join("b0b7");
    boss.send("/ban bob");
    boss.expect("banned bob until lifted");
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("b0b3");
    c.expect("b0b3 is banned until lifted: choose another name");
    let mut owner = server.login("bob_2", PASSWORD);
    owner.send("/nick carol");
    owner.expect("is now known as carol");
    owner.send("/nick bob_2");
    owner.expect("is now known as bob_2");
    early.send("/register");
    early.expect("b0b7 is banned until lifted: choose another name");
    boss.send("/ban bob_2");
    boss.expect("banned bob_2 until lifted");
    owner.expect_eof();
    c.expect("What is your name?");
    c.send("bob_2");
    c.expect("bob_2 is banned until lifted: choose another name");
}

/// Runs `smolchat account ARGS` and returns the whole output.
fn account_output(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .arg("account")
        .args(args)
        .output()
        .expect("run smolchat account")
}

/// The moderation_log rows of `action`: (operator, target).
fn logged(server: &Server, action: &str) -> Vec<(String, String)> {
    logged_in(&server.open_db(), action)
}

/// The moderation_log rows of `action` in `db`.
fn logged_in(db: &rusqlite::Connection, action: &str) -> Vec<(String, String)> {
    db.prepare("SELECT operator, target FROM moderation_log WHERE action = ?1 ORDER BY id")
        .unwrap()
        .query_map([action], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Squatted names are cleaned up from the command line against a running server:
/// `smolchat account list` shows each account with the addresses it was used from (and
/// `--from` picks those of one address or prefix), `smolchat account remove` deletes them, the
/// names are free at once, and each removal is in moderation_log.
#[test]
fn account_list_and_remove_from_the_command_line() {
    let server = Server::start(&[]);
    let db = server.db_path();
    let db = db.to_str().unwrap();
    for (from, name) in [("127.0.0.5", "squat1"), ("127.0.0.5", "squat2")] {
        let mut c = server.join_from(from, name);
        c.send("/register");
        c.expect("choose a password");
        c.send(common::accounts::PASSWORD);
        c.expect("type the same password again");
        c.send(common::accounts::PASSWORD);
        c.expect("is now registered");
        // Gone from the hub once `bye` is read, so the name is free for the join below.
        c.send("/quit");
        c.expect("bye");
    }
    server.register("alice", common::accounts::PASSWORD).close();
    let out = account_output(&["list", "--db", db]);
    assert!(out.status.success(), "{out:?}");
    let list = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{list}");
    assert_eq!(lines.len(), 4, "{list}");
    assert!(
        lines[2].starts_with("squat1 ") && lines[2].ends_with(" 127.0.0.5"),
        "{list}"
    );
    assert!(
        lines[2].contains("  user  ") && lines[2].contains("never"),
        "{list}"
    );
    let out = account_output(&["list", "--from", "127.0.0.4/30", "--db", db]);
    let squatted: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(squatted, ["squat1", "squat2"]);

    let out = account_output(&["remove", "squat1", "squat2", "--db", db]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8(out.stdout).unwrap();
    assert!(said.contains("squat1 is no longer registered"), "{said}");
    let out = account_output(&["remove", "nobody", "--db", db]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not registered: nobody"));
    // Free at once on the running server: no password asked, no look-alike refusal.
    let _squat = server.join("squat1");
    let _look_alike = server.join("squat2_");
    assert_eq!(
        logged(&server, "unregister"),
        [
            ("cli".to_owned(), "squat1".to_owned()),
            ("cli".to_owned(), "squat2".to_owned())
        ]
    );
}

/// `/unregister NAME` lets an operator remove a squatted account: the user logged in to it is
/// told and keeps its connection without the account, the name is free, and it is logged.
/// Others are refused, and so is an operator made on the command line.
#[test]
fn an_operator_unregisters_a_squatted_name() {
    let (server, mut boss, []) = with_boss([]);
    let mut squatter = server.register("squatter", common::accounts::PASSWORD);
    boss.expect("* squatter joined");
    squatter.send("/unregister boss");
    squatter.expect("/unregister NAME is for operators only");
    boss.send("/unregister nobody");
    boss.expect("nobody is not registered");
    let mut carol = server.register("carol", common::accounts::PASSWORD);
    boss.send("/op carol");
    carol.expect("carol is now an operator");
    carol.send("/unregister boss");
    carol.expect("boss was made an operator on the command line");
    carol.send("/unregister squatter");
    carol.expect("squatter is no longer registered");
    squatter.expect("squatter is no longer registered: carol removed the account");
    // Still connected, no longer logged in.
    squatter.send("/password");
    squatter.expect("current password for squatter");
    squatter.send(common::accounts::PASSWORD);
    squatter.expect("you are not logged in to a registered name");
    squatter.send("/quit");
    squatter.expect("bye");
    let _again = server.join("squatter");
    // Stopped first: the hub queues the log row without waiting, and a stop writes what is queued.
    let (_dir, db) = server.stop_and_open_db();
    assert_eq!(
        logged_in(&db, "unregister"),
        [("carol".to_owned(), "squatter".to_owned())]
    );
}
