//! Names in every script (issue #19), over real TCP against the real binary: user and room
//! names in the user's own script, stored as typed, unique ignoring case in every script, and no
//! look-alike of a connected or registered name, by mixing scripts or by a whole other script.
mod common;

use common::accounts::PASSWORD;
use common::{Client, Server};

/// The rule in short, after every reason a user name is refused for.
const NAME_RULE: &str =
    "use 1-24 letters or digits of one script, '_', '-' or '.', starting with a letter or digit";

/// The refusal of `оlena` with a Cyrillic `о`, whatever else is connected or registered.
const MIXED: &str = "invalid name (it mixes Cyrillic and Latin letters, which can look alike)";

/// Connects and answers the name question with `name`; returns the client and the reply line.
fn try_name(server: &Server, name: &str) -> (Client, String) {
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send(name);
    let reply = c.line().expect("a reply to the name");
    (c, reply)
}

/// A Cyrillic name chats like any other: shown and stored as typed (NFC, even when typed as a
/// letter and a combining mark), found by `/msg` in any case, and taken in any case.
#[test]
fn a_cyrillic_name_chats_and_is_stored_as_typed() {
    let server = Server::start(&[]);
    let mut bob = server.join("bob");
    // `Й` typed as `И` and a combining breve.
    let mut olena = Client::connect(server.addr).register("Олена");
    bob.expect("* Олена joined");
    let mut josyp = Client::connect(server.addr);
    josyp.expect("What is your name?");
    josyp.send("И\u{306}осип");
    josyp.expect("Welcome, Йосип!");
    bob.expect("* Йосип joined");

    olena.send("привіт, як справи?");
    bob.next_is("Олена: привіт, як справи?");
    bob.send("/msg олена добре");
    olena.expect("[private] bob: добре");
    bob.expect("[private to Олена] добре");
    bob.send("/who");
    bob.expect("users in lobby (3): bob, Олена, Йосип");

    let (mut twin, reply) = try_name(&server, "ОЛЕНА");
    assert_eq!(reply, "name taken: ОЛЕНА is already in use");
    twin.expect("What is your name?");
    drop(twin);

    josyp.send("/nick олена");
    josyp.expect("name taken: олена is already in use");
    josyp.send("/nick Ёсип");
    bob.expect("* Йосип is now known as Ёсип");

    drop((olena, josyp));
    let (_dir, db) = server.stop_and_open_db();
    let senders: Vec<String> = db
        .prepare("SELECT sender FROM messages WHERE sender = 'Олена'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(senders, ["Олена"]);
}

/// Names in many scripts are accepted; names that would not fit a terminal's row are refused in
/// columns as well as characters.
#[test]
fn names_in_many_scripts_and_their_width() {
    let server = Server::start(&[]);
    for name in [
        "王小明",
        "さくら",
        "김민준",
        "σοφία",
        "Jürgen",
        "दीपक",
        "علي",
        "דוד",
    ] {
        let mut c = Client::connect(server.addr).register(name);
        c.send("/quit");
        c.expect("bye");
    }
    let (mut c, reply) = try_name(&server, &"本".repeat(13));
    assert_eq!(
        reply,
        format!("invalid name (it is wider than 24 columns; CJK characters take two): {NAME_RULE}")
    );
    c.expect("What is your name?");
    for (name, why) in [
        ("olena🚀", "'🚀' (U+1F680) is not allowed"),
        (
            "ol\u{200d}ena",
            "the invisible character U+200D is not allowed",
        ),
        ("a@b", "'@' (U+0040) is not allowed"),
    ] {
        c.send(name);
        c.next_is(&format!("invalid name ({why}): {NAME_RULE}"));
        c.expect("What is your name?");
    }
}

/// `оlena` (Cyrillic `о`) is refused outright, while `olena` is connected and while `olena` is
/// a registered name with its owner away; a look-alike in a whole other script (`рор` in
/// Cyrillic, `ΡΟΡ` in Greek, beside `pop`) is refused as taken in both cases.
#[test]
fn look_alikes_of_olena_are_refused_connected_and_registered() {
    let server = Server::start(&[]);
    let mut olena = server.join("olena");
    let mut pop = server.join("pop");
    let (mut mallory, reply) = try_name(&server, "оlena");
    assert_eq!(reply, format!("{MIXED}: {NAME_RULE}"));
    mallory.expect("What is your name?");
    mallory.send("рор");
    mallory.next_is("name taken: рор looks too much like a name already in use");
    mallory.expect("What is your name?");
    mallory.send("mallory");
    mallory.expect("--- end of history");
    mallory.send("/nick оlena");
    mallory.next_is(&format!("{MIXED}: {NAME_RULE} (see /help)"));
    olena.send("/who");
    olena.expect("users in lobby (3): olena, pop, mallory");

    // Registered, with the owners away.
    olena.send("/register");
    olena.expect("choose a password for");
    olena.send(PASSWORD);
    olena.expect("type the same password again");
    olena.send(PASSWORD);
    olena.expect("olena is now registered");
    olena.send("/quit");
    olena.expect("bye");
    pop.send("/register");
    pop.expect("choose a password for");
    pop.send(PASSWORD);
    pop.expect("type the same password again");
    pop.send(PASSWORD);
    pop.expect("pop is now registered");
    pop.send("/quit");
    pop.expect("bye");
    let (mut mallory2, reply) = try_name(&server, "оlena");
    assert_eq!(reply, format!("{MIXED}: {NAME_RULE}"));
    mallory2.expect("What is your name?");
    mallory2.send("ΡΟΡ");
    mallory2.next_is("name taken: ΡΟΡ looks too much like a registered name");
    mallory.send("/nick OLENA");
    mallory.expect(
        "OLENA is registered to someone else: to use it, log in with it at the name prompt \
         (see /help)",
    );
}

/// Rooms in any script: `#Кухня`, `кухня` and `КУХНЯ` are one room, listed and stored by its
/// case fold (the README's `sqlite3` queries find it), and a mixed-script room is refused.
#[test]
fn unicode_room_names() {
    let server = Server::start(&[]);
    let [mut olena, mut taras] = server.join_all(["olena", "taras"]);
    olena.send("/join #Кухня");
    olena.expect("* you joined кухня (you are alone here)");
    taras.send("/join КУХНЯ");
    taras.expect("* you joined кухня (2 users here)");
    olena.expect("* taras joined");
    taras.send("борщ готовий");
    olena.next_is("taras: борщ готовий");
    olena.send("/rooms");
    olena.next_is("rooms (1): кухня (2 users)");
    taras.send("/join 本屋");
    taras.expect("* you joined 本屋 (you are alone here)");
    olena.send("/join #kухня");
    olena.expect(
        "invalid room name (it mixes Latin and Cyrillic letters, which can look alike): use \
         1-32 letters or digits of one script, '_', '-' or '.', optionally after '#' (see /help)",
    );

    drop((olena, taras));
    let (_dir, db) = server.stop_and_open_db();
    let body: String = db
        .query_row(
            "SELECT body FROM messages WHERE room = 'кухня' ORDER BY id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(body, "борщ готовий");
}

/// No two occupied rooms look alike: while `#pop` has people, `#рор` (Cyrillic) and `#ΡΟΡ`
/// (Greek) are refused with the room they look like; once `#pop` is empty they may be opened.
#[test]
fn look_alike_rooms_are_refused_while_occupied() {
    let server = Server::start(&[]);
    let [mut pavlo, mut olena] = server.join_all(["pavlo", "olena"]);
    pavlo.send("/join #pop");
    pavlo.expect("* you joined pop (you are alone here)");
    olena.expect("* pavlo left for pop");
    for look_alike in ["рор", "ΡΟΡ"] {
        olena.send(&format!("/join #{look_alike}"));
        olena.next_is(&format!(
            "{} looks too much like the room pop: join pop, or choose another name",
            look_alike.to_lowercase()
        ));
    }
    olena.send("/rooms");
    olena.next_is("rooms (2): lobby (1 user), pop (1 user)");
    pavlo.send("/join lobby");
    pavlo.expect("* you joined lobby (2 users here)");
    olena.send("/join #рор");
    olena.expect("* you joined рор (you are alone here)");
}

/// `/who` wraps its list by terminal columns, CJK characters counting two: each line fits an
/// 80-column terminal, and no name is split.
#[test]
fn who_wraps_wide_names_by_columns() {
    let server = Server::start(&[]);
    let names: Vec<String> = ["一", "二", "三", "四", "五", "六"]
        .iter()
        .map(|last| format!("{}{last}", "本".repeat(11)))
        .collect();
    let mut clients: Vec<Client> = names.iter().map(|n| server.join(n)).collect();
    let first = &mut clients[0];
    first.expect(&format!("* {} joined", names[5]));
    first.send("/who");
    let mut lines = vec![first.expect("users in lobby (6):")];
    while lines.iter().map(|l| l.matches('本').count()).sum::<usize>() < 66 {
        lines.push(first.line().expect("continuation"));
    }
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let columns: usize = line
            .chars()
            .map(|c| if c == '本' || c > '\u{2e80}' { 2 } else { 1 })
            .sum();
        assert!(columns <= 79, "{columns} columns: {line}");
    }
    for name in &names {
        assert!(lines.iter().any(|l| l.contains(name.as_str())), "{name}");
    }
}
