//! The database file as a whole, for the command line: an online backup, an integrity check
//! with what the file holds, and compaction.
//!
//! Backup and check are readers: they work while a server runs on the file (they do not take
//! its lock, and WAL lets a reader and the writer work side by side). Compact rewrites the whole
//! file, so it takes the server's lock and refuses while a server runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::schema;
use super::StorageError;

/// Pages copied per backup step (4 MiB at the default page size).
const PAGES_PER_STEP: i32 = 1000;

/// The pause between backup steps: it leaves the disk to the server now and then on a large
/// copy, at a cost of about 2.5 s per GiB.
const STEP_PAUSE: Duration = Duration::from_millis(10);

/// How long a backup step may keep finding the source busy before the backup gives up.
const BUSY_FOR: Duration = Duration::from_secs(30);

/// What can stop a backup, check or compaction. Each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("no database at {}", .0.display())]
    NotFound(PathBuf),
    #[error("{} exists already: remove it or choose another name", .0.display())]
    Exists(PathBuf),
    #[error("a smolchat server is running on this database: stop it first")]
    InUse,
    #[error("the source stayed busy for {} s", BUSY_FOR.as_secs())]
    Busy,
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl From<StorageError> for FileError {
    fn from(e: StorageError) -> FileError {
        match e {
            StorageError::InUse => FileError::InUse,
            StorageError::Sqlite(e) => FileError::Sqlite(e),
            other => FileError::Io {
                what: "opening the database".into(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// What a database holds, in a few numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `PRAGMA user_version`: how many migrations have been applied.
    pub schema_version: i64,
    pub messages: i64,
    /// Rooms with at least one message.
    pub rooms: i64,
    pub accounts: i64,
    /// Messages removed by `--retention` so far.
    pub removed: i64,
    /// `sent_at` of the oldest and newest message.
    pub oldest: Option<String>,
    pub newest: Option<String>,
    pub pages: i64,
    pub page_size: i64,
    /// Whether freed pages can be given back (`auto_vacuum = INCREMENTAL`).
    pub shrinks: bool,
}

/// What a backup copied.
#[derive(Debug, Clone)]
pub struct Copied {
    pub pages: i64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// What the copy holds.
    pub facts: Facts,
}

/// What a check found.
#[derive(Debug, Clone)]
pub struct Checked {
    /// What `PRAGMA integrity_check` (or opening the file) reported; empty when all is well.
    pub problems: Vec<String>,
    /// What the file holds, if it could be read.
    pub facts: Option<Facts>,
    /// The database file and its `-wal` together.
    pub bytes: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy)]
pub struct Compacted {
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// Copies the database at `db` to a new file `dest` with SQLite's online backup API, a step of
/// [`PAGES_PER_STEP`] pages at a time, calling `progress(copied, total)` after each.
///
/// The copy reads one snapshot, held open from the first step to the last: a commit by the
/// server between steps then neither restarts the backup (under steady traffic a restarting
/// backup never ends) nor mixes two states. In WAL mode a reader never blocks the writer; while
/// the copy runs the server's checkpoints cannot pass the snapshot, so its `-wal` file grows by
/// what is written meanwhile, and shrinks back afterwards. The copy is written as `DEST.partial`
/// and renamed when complete, as one self-contained file (rollback journal, no `-wal`).
pub fn backup(
    db: &Path,
    dest: &Path,
    mut progress: impl FnMut(i64, i64),
) -> Result<Copied, FileError> {
    let started = Instant::now();
    if !db.exists() {
        return Err(FileError::NotFound(db.to_owned()));
    }
    if dest.exists() {
        return Err(FileError::Exists(dest.to_owned()));
    }
    let partial = partial_path(dest);
    // A leftover of an interrupted backup to the same name: ours to replace.
    let _ = std::fs::remove_file(&partial);
    let source = open_read_only(db)?;
    source.execute_batch("BEGIN")?;
    // The snapshot starts at the first read.
    source.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    let mut copy = Connection::open(&partial)?;
    let pages = {
        let backup = Backup::new(&source, &mut copy)?;
        let mut busy_since: Option<Instant> = None;
        loop {
            let result = backup.step(PAGES_PER_STEP)?;
            let p = backup.progress();
            let total = i64::from(p.pagecount);
            match result {
                StepResult::Done => {
                    progress(total, total);
                    break total;
                }
                StepResult::More => {
                    busy_since = None;
                    progress(total - i64::from(p.remaining), total);
                }
                _ => {
                    let since = *busy_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > BUSY_FOR {
                        return Err(FileError::Busy);
                    }
                }
            }
            std::thread::sleep(STEP_PAUSE);
        }
    };
    source.execute_batch("COMMIT")?;
    drop(source);
    // The pages carry the source's WAL flag; a backup is better as one file that needs nothing
    // beside it. The server turns WAL on again when it opens a restored copy.
    let _: String =
        copy.pragma_update_and_check(None, "journal_mode", "DELETE", |row| row.get(0))?;
    let facts = facts(&copy)?;
    drop(copy);
    sync(&partial)?;
    std::fs::rename(&partial, dest).map_err(|source| FileError::Io {
        what: format!("renaming {} to {}", partial.display(), dest.display()),
        source,
    })?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(Copied {
        pages,
        bytes: size(dest),
        elapsed: started.elapsed(),
        facts,
    })
}

/// Runs `PRAGMA integrity_check` on the database at `db` (which covers the search index too)
/// and reads what it holds. Works while a server runs on it.
pub fn check(db: &Path) -> Result<Checked, FileError> {
    if !db.exists() {
        return Err(FileError::NotFound(db.to_owned()));
    }
    let bytes = size(db) + size(&wal_path(db));
    let conn = open_read_only(db)?;
    let mut problems = Vec::new();
    match integrity(&conn) {
        Ok(found) => problems.extend(found),
        Err(e) => problems.push(e.to_string()),
    }
    let facts = match facts(&conn) {
        Ok(facts) => Some(facts),
        Err(e) => {
            problems.push(format!("cannot read what it holds: {e}"));
            None
        }
    };
    Ok(Checked {
        problems,
        facts,
        bytes,
    })
}

/// Rebuilds the database at `db`: the search index merged into one segment (which drops the
/// words of messages retention removed: the index keeps them until its segments merge), then
/// `VACUUM`, switching the file to incremental auto-vacuum so that what retention deletes
/// shrinks it from then on. Needs free disk space about the size of the database, and the
/// server stopped: it holds the server's lock throughout.
pub fn compact(db: &Path) -> Result<Compacted, FileError> {
    if !db.exists() {
        return Err(FileError::NotFound(db.to_owned()));
    }
    let _lock = schema::lock_database(db)?;
    let bytes_before = size(db) + size(&wal_path(db));
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let indexed: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE name = 'messages_fts'",
        [],
        |row| row.get(0),
    )?;
    if indexed > 0 {
        conn.execute(
            "INSERT INTO messages_fts (messages_fts) VALUES ('optimize')",
            [],
        )?;
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    conn.execute_batch("VACUUM")?;
    // Moves everything into the main file and empties the -wal, so the sizes say what changed.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    Ok(Compacted {
        bytes_before,
        bytes_after: size(db) + size(&wal_path(db)),
    })
}

fn open_read_only(db: &Path) -> Result<Connection, FileError> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Problems `PRAGMA integrity_check` reports (at most 100); none when it says `ok`.
fn integrity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(100)")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    let lines = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(lines.into_iter().filter(|line| line != "ok").collect())
}

/// Reads what a database holds. Tolerates files from before a table existed.
pub fn facts(conn: &Connection) -> rusqlite::Result<Facts> {
    let has = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |row| row.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    let count = |sql: &str| -> rusqlite::Result<i64> { conn.query_row(sql, [], |row| row.get(0)) };
    let pragma = |name: &str| -> rusqlite::Result<i64> {
        conn.pragma_query_value(None, name, |row| row.get(0))
    };
    let messages = has("messages")?;
    let (oldest, newest) = if messages {
        let at = |sql: &str| -> rusqlite::Result<Option<String>> {
            conn.query_row(sql, [], |row| row.get(0))
                .optional()
                .map(Option::flatten)
        };
        (
            at("SELECT sent_at FROM messages ORDER BY id LIMIT 1")?,
            at("SELECT sent_at FROM messages ORDER BY id DESC LIMIT 1")?,
        )
    } else {
        (None, None)
    };
    Ok(Facts {
        schema_version: pragma("user_version")?,
        messages: if messages {
            count("SELECT count(*) FROM messages")?
        } else {
            0
        },
        rooms: if messages && has_column(conn, "messages", "room")? {
            count("SELECT count(DISTINCT room) FROM messages")?
        } else {
            i64::from(messages)
        },
        accounts: if has("accounts")? {
            count("SELECT count(*) FROM accounts")?
        } else {
            0
        },
        removed: if has("history_removed")? {
            count("SELECT coalesce(sum(removed), 0) FROM history_removed")?
        } else {
            0
        },
        oldest,
        newest,
        pages: pragma("page_count")?,
        page_size: pragma("page_size")?,
        shrinks: pragma("auto_vacuum")? == 2,
    })
}

fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    dest.with_file_name(name)
}

fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn sync(path: &Path) -> Result<(), FileError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| FileError::Io {
            what: format!("syncing {}", path.display()),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::schema::open_connection;

    fn filled(dir: &Path, rows: i64) -> PathBuf {
        let path = dir.join("chat.db");
        let mut conn = open_connection(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for id in 1..=rows {
            tx.execute(
                "INSERT INTO messages (id, sent_at, sender, body, room, kind)
                 VALUES (?1, '2026-01-01 00:00:00.000', 'bob', 'hello there', ?2, 'message')",
                rusqlite::params![id, if id % 2 == 0 { "lobby" } else { "rust" }],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        path
    }

    /// A backup is one file with every row, and it refuses to overwrite.
    #[test]
    fn a_backup_copies_everything_into_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = filled(dir.path(), 5000);
        let dest = dir.path().join("copy.db");
        let mut calls = 0;
        let copied = backup(&db, &dest, |_, _| calls += 1).unwrap();
        assert!(calls >= 1);
        assert_eq!(copied.facts.messages, 5000);
        assert_eq!(copied.facts.rooms, 2);
        assert!(copied.facts.shrinks);
        assert!(!wal_path(&dest).exists());
        assert!(!partial_path(&dest).exists());
        let checked = check(&dest).unwrap();
        assert!(checked.problems.is_empty(), "{:?}", checked.problems);
        assert!(matches!(
            backup(&db, &dest, |_, _| {}),
            Err(FileError::Exists(_))
        ));
        assert!(matches!(
            backup(
                &dir.path().join("nothing.db"),
                &dir.path().join("x.db"),
                |_, _| {}
            ),
            Err(FileError::NotFound(_))
        ));
    }

    /// Compaction switches an old file to incremental auto-vacuum, and refuses while a server
    /// holds the file.
    #[test]
    fn compact_switches_to_incremental() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .unwrap();
        }
        let lock = schema::lock_database(&path).unwrap();
        assert!(matches!(compact(&path), Err(FileError::InUse)));
        drop(lock);
        compact(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let mode: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2);
    }
}
