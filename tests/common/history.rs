//! Databases prepared before a server starts: rows with chosen times, rooms and texts, for the
//! search, retention and backup tests. Times are what let retention be tested without waiting:
//! a row "sent 40 days ago" is already old.

use std::path::Path;

use smolchat::clock;

/// One row to put in `messages`.
pub struct Msg<'a> {
    /// `sent_at`, as the server writes it (see [`days_ago`]).
    pub at: String,
    pub sender: &'a str,
    pub room: &'a str,
    pub body: String,
}

/// `sent_at` for a moment `days` days before now.
pub fn days_ago(days: i64) -> String {
    clock::format_utc(clock::now_ms() - days * 86_400_000)
}

/// A new directory holding `chat.db` with the server's schema and `rows`, in order (ids from 1).
pub fn database_with<'a>(rows: impl IntoIterator<Item = Msg<'a>>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    insert(&dir.path().join("chat.db"), rows);
    dir
}

/// Appends `rows` to the database at `path` (created with the server's schema if missing), in
/// one transaction.
pub fn insert<'a>(path: &Path, rows: impl IntoIterator<Item = Msg<'a>>) {
    let mut conn = smolchat::storage::open_connection(path).expect("open db");
    let tx = conn.transaction().expect("transaction");
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO messages (sent_at, sender, body, room, kind)
                 VALUES (?1, ?2, ?3, ?4, 'message')",
            )
            .expect("prepare");
        for row in rows {
            stmt.execute((&row.at, row.sender, &row.body, row.room))
                .expect("insert");
        }
    }
    tx.commit().expect("commit");
}
