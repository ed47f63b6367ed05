//! Accounts as operators see them: the list (`smolchat account list`) and removal by an operator
//! (`smolchat account remove`, `/unregister NAME`), the way to clean up squatted names.
//!
//! Removing an account deletes its row; its known addresses go with it (a trigger, migration
//! 0009). It must not know about sessions or the hub: the callers log the removal in
//! `moderation_log` and tell whoever is logged in to it.

use rusqlite::{params, Connection};

use super::{self as accounts, RoleChange};

/// One account, for `smolchat account list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The name as registered.
    pub display: String,
    /// `user` or `operator`.
    pub role: String,
    pub created_at: String,
    pub last_login_at: Option<String>,
    /// Every address it was registered or logged in from (newest first), as stored.
    pub addresses: Vec<String>,
}

/// Every account, by name.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Listed>> {
    let mut stmt = conn.prepare(
        "SELECT a.display, a.role, a.created_at, a.last_login_at,
                (SELECT group_concat(address, ' ') FROM
                    (SELECT address FROM account_addresses WHERE account = a.name
                     ORDER BY last_seen DESC))
         FROM accounts a ORDER BY a.name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Listed {
            display: r.get(0)?,
            role: r.get(1)?,
            created_at: r.get(2)?,
            last_login_at: r.get(3)?,
            addresses: r
                .get::<_, Option<String>>(4)?
                .map(|a| a.split(' ').map(str::to_owned).collect())
                .unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// Removes the account `name` for an operator in chat (`/unregister NAME`). An operator made on
/// the command line (`role_origin` 'cli' or NULL) is refused: a chat operator must not be able
/// to take the owners' accounts away, as it cannot `/deop` them.
pub fn remove_in_chat(conn: &Connection, name: &str) -> rusqlite::Result<RoleChange> {
    let name = crate::names::fold(name);
    match accounts::made_on_command_line(conn, &name)? {
        None => Ok(RoleChange::NotRegistered),
        Some(true) => Ok(RoleChange::MadeOnCommandLine),
        Some(false) => {
            // The condition again, in case `smolchat op add` ran in between.
            let n = conn.execute(
                "DELETE FROM accounts WHERE name = ?1
                 AND NOT (role = 'operator' AND COALESCE(role_origin, 'cli') = 'cli')",
                params![name],
            )?;
            Ok(if n == 1 {
                RoleChange::Done
            } else {
                RoleChange::MadeOnCommandLine
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::accounts::addresses;

    #[test]
    fn listed_with_addresses_and_removed_unless_made_on_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let conn = accounts::open(&dir.path().join("chat.db")).unwrap();
        assert!(accounts::create(&conn, "Squat1", "$argon2id$x", 0).unwrap());
        assert!(accounts::create(&conn, "boss", "$argon2id$y", 0).unwrap());
        assert!(accounts::set_operator(&conn, "boss", true).unwrap());
        let ip = |s: &str| s.parse().unwrap();
        addresses::remember(&conn, "squat1", ip("192.0.2.7"), "2026-01-01 00:00:00.000").unwrap();
        addresses::remember(&conn, "squat1", ip("2001:db8::"), "2026-01-02 00:00:00.000").unwrap();
        let listed = list(&conn).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].display, "boss");
        assert_eq!(listed[0].role, "operator");
        assert!(listed[0].addresses.is_empty());
        assert_eq!(listed[1].display, "Squat1");
        assert_eq!(listed[1].addresses, ["2001:db8::", "192.0.2.7"]);
        assert_eq!(
            remove_in_chat(&conn, "boss").unwrap(),
            RoleChange::MadeOnCommandLine
        );
        assert_eq!(remove_in_chat(&conn, "SQUAT1").unwrap(), RoleChange::Done);
        assert_eq!(
            remove_in_chat(&conn, "squat1").unwrap(),
            RoleChange::NotRegistered
        );
        assert_eq!(list(&conn).unwrap().len(), 1);
    }
}
