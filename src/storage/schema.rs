//! The schema and opening a database: WAL, durability settings, migrations, the one-server lock.
//!
//! Migrations are plain SQL files in `migrations/`, applied in order and counted in
//! `PRAGMA user_version`. (rusqlite_migration would do the same but pins an older rusqlite.) A
//! migration SQL cannot express (a name's skeleton is computed in Rust) adds a step to
//! [`RUST_STEPS`], run in the same transaction right after its SQL.

use std::path::Path;
use std::time::Duration;

use log::info;
use rusqlite::Connection;

use super::{accounts, LogPos, StorageError};

/// The schema, in order. `PRAGMA user_version` holds how many have been applied.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_messages",
        include_str!("../../migrations/0001_messages.sql"),
    ),
    (
        "0002_rooms",
        include_str!("../../migrations/0002_rooms.sql"),
    ),
    (
        "0003_accounts",
        include_str!("../../migrations/0003_accounts.sql"),
    ),
    (
        "0004_cluster",
        include_str!("../../migrations/0004_cluster.sql"),
    ),
    (
        "0005_account_skeletons",
        include_str!("../../migrations/0005_account_skeletons.sql"),
    ),
    (
        "0006_operator_origin_and_mutes",
        include_str!("../../migrations/0006_operator_origin_and_mutes.sql"),
    ),
    (
        "0007_cluster_changes",
        include_str!("../../migrations/0007_cluster_changes.sql"),
    ),
    (
        "0008_unicode_names",
        include_str!("../../migrations/0008_unicode_names.sql"),
    ),
    (
        "0009_search_and_retention",
        include_str!("../../migrations/0009_search_and_retention.sql"),
    ),
    (
        "0010_account_addresses",
        include_str!("../../migrations/0010_account_addresses.sql"),
    ),
    (
        "0011_search_index_mark",
        include_str!("../../migrations/0011_search_index_mark.sql"),
    ),
    (
        "0012_formatted_bodies",
        include_str!("../../migrations/0012_formatted_bodies.sql"),
    ),
];

/// An upgrade step written in Rust.
type RustStep = fn(&Connection) -> rusqlite::Result<()>;

/// The Rust part of a migration, by the migration's name: run after its SQL, in its transaction,
/// so the upgrade is all or nothing.
const RUST_STEPS: &[(&str, RustStep)] = &[("0008_unicode_names", accounts::recompute_skeletons)];

/// Opens (creating if needed) the database at `path`, switches it to WAL and applies every
/// pending migration. Used by the writer, and by tools that fill a database offline.
pub fn open_connection(path: &Path) -> Result<Connection, StorageError> {
    let mut conn = Connection::open(path)?;
    // A new file gets incremental auto-vacuum, so that what retention deletes can be given back
    // to the file system a step at a time. It only takes effect before the first table exists;
    // an older file keeps its mode until `smolchat compact` rebuilds it (docs/DEPLOY.md), since
    // switching means a full VACUUM, which the server never runs on its own.
    let pages: i64 = conn.pragma_query_value(None, "page_count", |row| row.get(0))?;
    if pages == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    // Short: a commit that finds the database locked is retried by the writer with back-off,
    // and logged, rather than waiting silently inside SQLite.
    conn.busy_timeout(Duration::from_secs(1))?;
    // WAL cannot be switched on inside a transaction, so it is set first, on its own.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::NoWal(mode));
    }
    // FULL makes each commit durable against power loss. The history writer switches its own
    // connection to NORMAL and makes its commits durable itself, off its thread (`sync`).
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Takes an exclusive advisory lock (`flock`) on the database file. SQLite's own locks use
/// `fcntl`, which `flock` does not interfere with on Linux, and the descriptor stays open for the
/// server's life, so SQLite's locks are never released early by closing it.
pub(super) fn lock_database(path: &Path) -> Result<std::fs::File, StorageError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(StorageError::OpenFile)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::InUse),
        Err(std::fs::TryLockError::Error(e)) => Err(StorageError::Lock(e)),
    }
}

/// Applies the migrations the database has not seen yet, each in its own transaction.
fn migrate(conn: &mut Connection) -> Result<(), StorageError> {
    let applied: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if applied > known {
        return Err(StorageError::TooNew { applied, known });
    }
    for (n, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        // An upgrade can take a while on a big history (building the search index): say so
        // before, not only after.
        if applied > 0 {
            info!("applying migration {name}");
        }
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        for (_, step) in RUST_STEPS.iter().filter(|(step, _)| step == name) {
            step(&tx)?;
        }
        tx.pragma_update(None, "user_version", n as i64 + 1)?;
        tx.commit()?;
        info!("applied migration {name}");
    }
    Ok(())
}

/// The highest message id stored, removed by retention, or passed by the search index's mark
/// (which moves past the ids of a batch the writer gave up on): ids are never reused, even after
/// retention emptied the table, since a reused id below the mark would never be indexed.
pub(super) fn last_id(conn: &Connection) -> Result<i64, StorageError> {
    Ok(conn.query_row(
        "SELECT max(coalesce((SELECT max(id) FROM messages), 0),
                    coalesce((SELECT max(through_id) FROM history_removed), 0),
                    coalesce((SELECT through_id FROM search_indexed), 0))",
        [],
        |r| r.get(0),
    )?)
}

/// Where the newest stored row sits in the cluster log: its stream id and log position, also
/// when retention has removed it since (`history_removed` keeps the position). `None` when no
/// row came from a cluster log (a new file, or one only a single node wrote).
pub(super) fn log_position(conn: &Connection) -> Result<Option<LogPos>, StorageError> {
    let mut stmt = conn.prepare(
        "SELECT stream_id, log_seq FROM (
             SELECT * FROM (SELECT id, stream_id, log_seq FROM messages
                            WHERE stream_id IS NOT NULL ORDER BY id DESC LIMIT 1)
             UNION ALL
             SELECT through_id, stream_id, log_seq FROM history_removed
             WHERE stream_id IS NOT NULL
         ) ORDER BY id DESC LIMIT 1",
    )?;
    let mut rows = stmt.query([])?;
    match rows.next()? {
        Some(row) => Ok(Some(LogPos {
            stream_id: row.get::<_, String>(0)?.into(),
            seq: row.get::<_, Option<i64>>(1)?.unwrap_or(0),
        })),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh file gets every migration; opening it again applies none and keeps the version.
    #[test]
    fn migrations_apply_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let conn = open_connection(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        drop(conn);
        let conn = open_connection(&path).unwrap();
        assert_eq!(last_id(&conn).unwrap(), 0);
    }

    /// `user_version` counts migrations, so the N-th migration must be numbered N: a gap (a number
    /// kept for another branch) lets that branch's migration slot in before a later one that
    /// databases may already have applied, and `user_version` would then skip it. Two branches
    /// that each add migration N meet here and one takes N+1.
    #[test]
    fn migrations_are_numbered_in_order_without_gaps() {
        for (n, (name, _)) in MIGRATIONS.iter().enumerate() {
            let number = format!("{:04}_", n + 1);
            assert!(
                name.starts_with(&number),
                "migration {name} is number {}",
                n + 1
            );
        }
        for (step, _) in RUST_STEPS {
            assert!(
                MIGRATIONS.iter().any(|(name, _)| name == step),
                "a Rust step for no migration: {step}"
            );
        }
    }

    /// The list holds every file of `migrations/`, in file order: migrations merged from
    /// several branches must still run in the order of their numbers.
    #[test]
    fn migrations_are_every_file_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".sql").map(str::to_owned))
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(listed, files);
    }

    /// A database from a newer smolchat is refused rather than misread.
    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let conn = open_connection(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(
            open_connection(&path),
            Err(StorageError::TooNew { applied: 99, .. })
        ));
    }
}
