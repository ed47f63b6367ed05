//! The addresses each account has logged in from (`account_addresses`, migration 0010).
//!
//! The login limiter lets an address that has logged in to an account skip that account's queue
//! of attempts (`limits/login.rs`), so strangers guessing a password cannot lock its owner out.
//! That memory must outlive the process: after a restart the owner would otherwise queue behind
//! the guessers again. Kept small and fresh: at most [`PER_ACCOUNT`] rows per account, each
//! forgotten after [`FORGET_AFTER_DAYS`] days unused. The rows go with their account (a trigger).
//!
//! Addresses arrive already grouped (an IPv6 /64 as one, `limits/address.rs`): this module
//! stores and compares them, it does not know how they are counted.

use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension};

/// Addresses remembered per account. Not configurable: a home, a phone, a workplace and a few
/// travels; an owner seen from more places than this queues with strangers from the oldest ones
/// (which still get their own turn while they have not failed, see `limits/login.rs`).
pub const PER_ACCOUNT: usize = 16;

/// Days an unused address stays known. Not configurable: long enough for a holiday, short
/// enough that a dynamic address handed to somebody else stops counting as the owner's.
pub const FORGET_AFTER_DAYS: u32 = 90;

/// Notes a successful login to (or the registration of) `account` from `address` at `now`
/// (`YYYY-MM-DD HH:MM:SS.SSS`), dropping the account's rows past [`PER_ACCOUNT`] and those
/// unused for [`FORGET_AFTER_DAYS`].
pub fn remember(
    conn: &Connection,
    account: &str,
    address: IpAddr,
    now: &str,
) -> rusqlite::Result<()> {
    let account = crate::names::fold(account);
    conn.prepare_cached(
        "INSERT INTO account_addresses (account, address, last_seen) VALUES (?1, ?2, ?3)
         ON CONFLICT (account, address) DO UPDATE SET last_seen = ?3",
    )?
    .execute(params![account, address.to_string(), now])?;
    conn.prepare_cached(
        "DELETE FROM account_addresses WHERE account = ?1 AND (
             last_seen < strftime('%Y-%m-%d %H:%M:%f', ?2, ?3)
             OR address NOT IN (SELECT address FROM account_addresses WHERE account = ?1
                                ORDER BY last_seen DESC LIMIT ?4))",
    )?
    .execute(params![
        account,
        now,
        format!("-{FORGET_AFTER_DAYS} days"),
        PER_ACCOUNT as i64
    ])?;
    Ok(())
}

/// Whether `address` has logged in to `account` within [`FORGET_AFTER_DAYS`] of `now`.
pub fn knows(
    conn: &Connection,
    account: &str,
    address: IpAddr,
    now: &str,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM account_addresses WHERE account = ?1 AND address = ?2
         AND last_seen >= strftime('%Y-%m-%d %H:%M:%f', ?3, ?4)",
    )?
    .query_row(
        params![
            crate::names::fold(account),
            address.to_string(),
            now,
            format!("-{FORGET_AFTER_DAYS} days")
        ],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

/// The address `account` was last seen from, if any (for `smolchat account list`).
pub fn latest(conn: &Connection, account: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT address FROM account_addresses WHERE account = ?1
         ORDER BY last_seen DESC LIMIT 1",
    )?
    .query_row([crate::names::fold(account)], |r| r.get(0))
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn remembered_bounded_forgotten_and_gone_with_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::storage::accounts::open(&dir.path().join("chat.db")).unwrap();
        assert!(crate::storage::accounts::create(&conn, "Alice", "$argon2id$x", 0).unwrap());
        let day = |d: u32| format!("2026-01-{d:02} 12:00:00.000");
        remember(&conn, "alice", ip(1), &day(1)).unwrap();
        assert!(knows(&conn, "ALICE", ip(1), &day(2)).unwrap());
        assert!(!knows(&conn, "alice", ip(2), &day(2)).unwrap());
        assert!(!knows(&conn, "bob", ip(1), &day(2)).unwrap());
        // Forgotten once unused for too long.
        assert!(!knows(&conn, "alice", ip(1), "2026-06-01 12:00:00.000").unwrap());
        // At most PER_ACCOUNT: the least recently seen goes.
        for n in 2..=(PER_ACCOUNT as u8 + 1) {
            remember(&conn, "alice", ip(n), &day(u32::from(n))).unwrap();
        }
        assert!(!knows(&conn, "alice", ip(1), &day(20)).unwrap());
        assert!(knows(&conn, "alice", ip(2), &day(20)).unwrap());
        assert_eq!(latest(&conn, "alice").unwrap(), Some(ip(17).to_string()));
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM account_addresses", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, PER_ACCOUNT as i64);
        // Seeing a known address again refreshes it rather than adding a row.
        remember(&conn, "alice", ip(2), &day(21)).unwrap();
        assert_eq!(latest(&conn, "alice").unwrap(), Some(ip(2).to_string()));
        assert!(crate::storage::accounts::delete(&conn, "alice").unwrap());
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM account_addresses", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 0, "the rows went with the account");
    }
}
