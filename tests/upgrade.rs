//! Schema upgrades over the real binary: a database written before rooms existed keeps its rows,
//! gains the room and kind columns, the room index and the search index, and is replayed to
//! newcomers; a database from before names in every script gets its skeletons recomputed.
mod common;
use common::{latest_version, message_rows, open_db, unstamp, wait_for_exit, Client, Row, Server};

/// Rows of a version-1 database: (sent_at, sender, body).
const OLD_ROWS: [(&str, &str, &str); 3] = [
    ("2024-01-02 03:04:05.678", "alice", "hello from the past"),
    (
        "2024-01-02 03:04:06.000",
        "bob",
        "/me is not an action here",
    ),
    ("2024-01-02 03:05:00.001", "alice", "bye"),
];

/// Creates `chat.db` in a new directory as smolchat's first schema left it.
fn version_1_database() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = rusqlite::Connection::open(dir.path().join("chat.db")).expect("create db");
    db.execute_batch(include_str!("../migrations/0001_messages.sql"))
        .expect("migration 0001");
    db.pragma_update(None, "user_version", 1).expect("version");
    for (sent_at, sender, body) in OLD_ROWS {
        db.execute(
            "INSERT INTO messages (sent_at, sender, body) VALUES (?1, ?2, ?3)",
            [sent_at, sender, body],
        )
        .expect("insert");
    }
    dir
}

/// Upgrading a version-1 database keeps every row (in the lobby, as plain messages), sets
/// `user_version` to the latest (one per migration file), adds the room index, and new rows
/// follow the old ones.
#[test]
fn version_1_database_is_upgraded_in_place() {
    let server = Server::start_in(version_1_database(), &[]);
    let [mut carol, mut dave] = server.join_all(["carol", "dave"]);
    carol.send("new message");
    dave.next_is("carol: new message");
    let (dir, db) = server.stop_and_open_db();

    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, latest_version());
    let index_columns: Vec<String> = db
        .prepare("SELECT name FROM pragma_index_info('messages_room_id') ORDER BY seqno")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(index_columns, ["room", "id"]);

    let rows = message_rows(&db);
    let mut expected: Vec<Row> = OLD_ROWS
        .iter()
        .zip(1..)
        .map(|(&(sent_at, sender, body), id)| Row {
            id,
            sent_at: sent_at.into(),
            sender: sender.into(),
            body: body.into(),
            room: "lobby".into(),
            kind: "message".into(),
        })
        .collect();
    assert_eq!(rows[..3], expected[..]);
    assert_eq!(rows.len(), 4, "{rows:?}");
    expected.push(Row {
        id: 4,
        sent_at: rows[3].sent_at.clone(),
        sender: "carol".into(),
        body: "new message".into(),
        room: "lobby".into(),
        kind: "message".into(),
    });
    assert_eq!(rows, expected);

    // The kind column only takes the two documented values.
    drop(db);
    let writable = rusqlite::Connection::open(dir.path().join("chat.db")).unwrap();
    let bogus = writable.execute(
        "INSERT INTO messages (sent_at, sender, body, kind) \
         VALUES ('2024-01-01 00:00:00.000', 'x', 'y', 'shout')",
        [],
    );
    assert!(bogus.is_err(), "kind 'shout' was accepted");
}

/// A newcomer on an upgraded database gets the old rows replayed, oldest first.
#[test]
fn upgraded_rows_are_replayed_to_newcomers() {
    let server = Server::start_in(version_1_database(), &[]);
    let (_carol, replay) = server.join_replay("carol");
    assert_eq!(replay[1], "--- history of lobby ---");
    let texts: Vec<&str> = replay[2..5].iter().map(|l| unstamp(l)).collect();
    assert_eq!(
        texts,
        [
            "alice: hello from the past",
            "bob: /me is not an action here",
            "alice: bye"
        ]
    );
    assert_eq!(
        replay[2],
        "[2024-01-02 03:04:05] alice: hello from the past"
    );
    assert_eq!(replay[5], "--- end of history (3 messages) ---");
    assert_eq!(replay.len(), 6, "{replay:?}");
}

/// The upgrade builds the search index over the rows already there: `/search` finds them, and
/// lines said after the upgrade too.
#[test]
fn upgraded_rows_are_searchable() {
    let server = Server::start_in(version_1_database(), &[]);
    let [mut carol, mut dave] = server.join_all(["carol", "dave"]);
    dave.send("the past is not the present");
    carol.next_is("dave: the past is not the present");
    carol.send("/search past");
    carol.next_is("--- search of lobby for past, newest first ---");
    assert_eq!(
        unstamp(&carol.line().unwrap()),
        "dave: the past is not the present"
    );
    carol.next_is("[2024-01-02 03:04:05] alice: hello from the past");
    carol.next_is("--- end of search (2 matches, no older ones) ---");
    let (_dir, db) = server.stop_and_open_db();
    let indexed: i64 = db
        .query_row(
            "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'bye'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(indexed, 1);
}

/// A restart on an already upgraded database applies nothing again and loses nothing.
#[test]
fn second_start_on_an_upgraded_database_changes_nothing() {
    let server = Server::start_in(version_1_database(), &[]);
    let dir = server.stop();
    let before = message_rows(&open_db(&dir.path().join("chat.db")));
    let server = Server::start_in(dir, &[]);
    let (_dir, db) = server.stop_and_open_db();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, latest_version());
    assert_eq!(message_rows(&db), before);
    assert_eq!(before.len(), OLD_ROWS.len());
}

/// A database from a newer smolchat (unknown schema version) is refused: the server exits with
/// an error naming the problem instead of running on a schema it does not know.
#[test]
fn newer_schema_is_refused() {
    let dir = version_1_database();
    let path = dir.path().join("chat.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let stderr_path = dir.path().join("stderr");
    let stdout_path = dir.path().join("stdout");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_smolchat"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("run smolchat");
    // Wait with a deadline, so a server that wrongly keeps running fails the test instead of
    // hanging it.
    let status = wait_for_exit(&mut child);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    assert!(
        status.is_some_and(|s| !s.success()),
        "started anyway ({status:?}); stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("schema version 99 is newer"),
        "stderr:\n{stderr}"
    );
    assert!(!stdout.contains("listening on"), "it listened: {stdout}");
}

/// Creates `chat.db` in a new directory as smolchat left it before names in every script
/// (migrations 0001 to 0007), with the registered names `pop` and `olena` whose stored
/// skeletons an older rule computed (here: plainly wrong ones, which must not survive).
fn version_7_database() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = rusqlite::Connection::open(dir.path().join("chat.db")).expect("create db");
    for sql in [
        include_str!("../migrations/0001_messages.sql"),
        include_str!("../migrations/0002_rooms.sql"),
        include_str!("../migrations/0003_accounts.sql"),
        include_str!("../migrations/0004_cluster.sql"),
        include_str!("../migrations/0005_account_skeletons.sql"),
        include_str!("../migrations/0006_operator_origin_and_mutes.sql"),
        include_str!("../migrations/0007_cluster_changes.sql"),
    ] {
        db.execute_batch(sql).expect("migration");
    }
    db.pragma_update(None, "user_version", 7).expect("version");
    for (name, stale) in [("pop", "p0p-old-rule"), ("olena", "0lena-old-rule")] {
        db.execute(
            "INSERT INTO accounts (name, display, password_hash, created_at, skeleton)
             VALUES (?1, ?1, '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g',
                     '2025-01-01 00:00:00.000', ?2)",
            [name, stale],
        )
        .expect("insert account");
    }
    dir
}

/// Upgrading a version-7 database recomputes every stored skeleton by the new rule, so a
/// look-alike of a registered name in another script (`ΡΟΡ` in Greek for `pop`) is refused at
/// once, and names and keys stored before stay as they were.
#[test]
fn version_7_skeletons_are_recomputed() {
    let server = Server::start_in(version_7_database(), &[]);
    let mut c = Client::connect(server.addr);
    c.expect("What is your name?");
    c.send("ΡΟΡ");
    c.next_is("name taken: ΡΟΡ looks too much like a registered name");
    c.expect("What is your name?");
    c.send("pop");
    c.expect("pop is registered: type its password");
    drop(c);
    let (_dir, db) = server.stop_and_open_db();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, latest_version());
    let rows: Vec<(String, String, String)> = db
        .prepare("SELECT name, display, skeleton FROM accounts ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [("olena", "olena", "olena"), ("pop", "pop", "pop")]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(rows, expected);
}

/// A database at version 8 (0001 to 0008, names in every script, before the known addresses)
/// gets 0009: `account_addresses` and its trigger exist afterwards, and a registration is
/// remembered in it.
#[test]
fn a_version_8_database_gets_the_known_addresses() {
    let dir = version_7_database();
    let db = rusqlite::Connection::open(dir.path().join("chat.db")).expect("open");
    db.execute_batch(include_str!("../migrations/0008_unicode_names.sql"))
        .expect("0008");
    db.pragma_update(None, "user_version", 8).expect("version");
    drop(db);
    let server = Server::start_in(dir, &[]);
    server.register("carol", common::accounts::PASSWORD).close();
    let (_dir, db) = server.stop_and_open_db();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, latest_version());
    let remembered: i64 = db
        .query_row(
            "SELECT count(*) FROM account_addresses WHERE account = 'carol'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(remembered, 1);
}
