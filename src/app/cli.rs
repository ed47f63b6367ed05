//! `smolchat op add|remove|list`, `smolchat ban list|add|remove` and `smolchat account
//! list|remove`: the operator role, bans and accounts from the command line, the way back from a
//! rogue operator and from a flood of squatted names.
//!
//! They work whether or not a server is running on the same file: they do not take the server's
//! lock, and WAL with a busy timeout lets them write beside the server. A running server applies
//! the changes on SIGHUP (and a role at the user's next login anyway). An operator made here is
//! marked as such: chat operators can neither `/deop` it nor ban it by name.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use argh::FromArgs;

use crate::clock;
use crate::door::line::words;
use crate::limits::address::group;
use crate::moderation::ban::{Ban, Net, Target};
use crate::moderation::duration;
use crate::names::Nick;
use crate::storage::accounts::roster;
use crate::storage::accounts::{self, LogEntry};

/// manage operators (works while the server runs)
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "op")]
pub struct OpArgs {
    #[argh(subcommand)]
    pub action: OpAction,
}

#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand)]
pub enum OpAction {
    Add(OpAdd),
    Remove(OpRemove),
    List(OpList),
}

/// give a registered name the operator role
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "add")]
pub struct OpAdd {
    /// the registered name
    #[argh(positional)]
    pub name: String,
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// take the operator role from a name
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "remove")]
pub struct OpRemove {
    /// the registered name
    #[argh(positional)]
    pub name: String,
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// list the operators
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "list")]
pub struct OpList {
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// Runs an `op` subcommand; errors are one line for the command line.
pub fn run(args: OpArgs) -> Result<(), String> {
    let mut out = std::io::stdout();
    let (db, name, operator) = match &args.action {
        OpAction::List(list) => {
            let conn = open(&list.db)?;
            let names = accounts::operators(&conn).map_err(|e| format!("database: {e}"))?;
            for name in names {
                let _ = writeln!(out, "{name}");
            }
            return Ok(());
        }
        OpAction::Add(add) => (&add.db, &add.name, true),
        OpAction::Remove(remove) => (&remove.db, &remove.name, false),
    };
    let conn = open(db)?;
    let found =
        accounts::set_operator(&conn, name, operator).map_err(|e| format!("database: {e}"))?;
    if !found {
        return Err(format!(
            "{name} is not registered (register it first: connect, choose the name, type /register)"
        ));
    }
    let entry = LogEntry {
        operator: "cli".into(),
        action: if operator { "op" } else { "deop" },
        target: crate::names::fold(name),
        reason: None,
        duration: None,
    };
    accounts::log_action(&conn, &entry).map_err(|e| format!("database: {e}"))?;
    let _ = if operator {
        writeln!(out, "{name} is now an operator")
    } else {
        writeln!(out, "{name} is no longer an operator")
    };
    let _ = writeln!(out, "{SIGHUP_HINT}");
    Ok(())
}

/// What removing an account means for a running server.
const REMOVED_HINT: &str = "(the names are free at once, also on a running server; a user logged \
     in to one keeps its connection, and loses an operator role on SIGHUP: kill -HUP <pid>)";

/// What a change from the command line needs to reach a running server.
const SIGHUP_HINT: &str = "(a running server applies this on SIGHUP: kill -HUP <pid>)";

/// manage bans (works while the server runs; send it SIGHUP to apply)
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "ban")]
pub struct BanArgs {
    #[argh(subcommand)]
    pub action: BanAction,
}

#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand)]
pub enum BanAction {
    List(BanList),
    Add(BanAdd),
    Remove(BanRemove),
}

/// list the bans in force, with their expiry
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "list")]
pub struct BanList {
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// ban a name, an address or ADDRESS/PREFIX
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "add")]
pub struct BanAdd {
    /// a name, an address, or ADDRESS/PREFIX
    #[argh(positional)]
    pub target: String,
    /// how long (1h, 7d, 1h30m); default until lifted
    #[argh(option)]
    pub duration: Option<String>,
    /// the reason, shown to whoever is refused
    #[argh(option)]
    pub reason: Option<String>,
    /// allow a prefix shorter than /8 (IPv4) or /32 (IPv6)
    #[argh(switch)]
    pub force: bool,
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// lift a ban
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "remove")]
pub struct BanRemove {
    /// the name, address or ADDRESS/PREFIX banned
    #[argh(positional)]
    pub target: String,
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// A ban target from the command line: an address or prefix, or a valid name.
fn target(text: &str) -> Result<Target, String> {
    match Target::parse(text) {
        Target::Name(_) => Nick::parse(text)
            .map(|nick| Target::Name(nick.key().to_owned()))
            .map_err(|_| format!("{text}: not an address, a prefix or a valid name")),
        net => Ok(net),
    }
}

/// Runs a `ban` subcommand; errors are one line for the command line.
pub fn run_ban(args: BanArgs) -> Result<(), String> {
    let mut out = std::io::stdout();
    let db_err = |e: rusqlite::Error| format!("database: {e}");
    match args.action {
        BanAction::List(list) => {
            let conn = open(&list.db)?;
            let bans = accounts::load_bans(&conn).map_err(db_err)?;
            let _ = writeln!(out, "{}", words::bans_header(bans.len()));
            for b in bans {
                let line = words::ban_entry(
                    &b.target.to_string(),
                    &b.by,
                    b.expires_ms,
                    b.reason.as_deref(),
                );
                let _ = writeln!(out, "{line}");
            }
            Ok(())
        }
        BanAction::Add(add) => {
            let target = target(&add.target)?;
            if let Target::Net(net) = &target {
                if let (Some(min), false) = (net.too_wide(), add.force) {
                    return Err(format!(
                        "{target} is shorter than /{min} and would lock out a large part of the \
                         internet; add --force if you really mean it"
                    ));
                }
            }
            let length = match &add.duration {
                Some(text) => Some(duration::parse(text).ok_or_else(|| {
                    format!("{text}: not a duration (like 90s, 10m, 1h, 7d, 2w or 1h30m)")
                })?),
                None => None,
            };
            let conn = open(&add.db)?;
            let now = clock::now_ms();
            let expires_ms = length
                .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
            let ban = Ban {
                target: target.clone(),
                reason: add.reason.clone(),
                by: "cli".into(),
                created_ms: now,
                expires_ms,
            };
            accounts::insert_ban(&conn, &ban).map_err(db_err)?;
            let entry = LogEntry {
                operator: "cli".into(),
                action: "ban",
                target: target.to_string(),
                reason: add.reason,
                duration: add.duration,
            };
            accounts::log_action(&conn, &entry).map_err(db_err)?;
            let _ = writeln!(out, "banned {target} {}", words::until(expires_ms));
            let _ = writeln!(out, "{SIGHUP_HINT}");
            Ok(())
        }
        BanAction::Remove(remove) => {
            let target = target(&remove.target)?;
            let conn = open(&remove.db)?;
            if !accounts::delete_ban(&conn, &target).map_err(db_err)? {
                return Err(format!("there is no ban on {target}"));
            }
            let entry = LogEntry {
                operator: "cli".into(),
                action: "unban",
                target: target.to_string(),
                reason: None,
                duration: None,
            };
            accounts::log_action(&conn, &entry).map_err(db_err)?;
            let _ = writeln!(out, "{}", words::unbanned(&target.to_string()));
            let _ = writeln!(out, "{SIGHUP_HINT}");
            Ok(())
        }
    }
}

/// manage accounts (works while the server runs)
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "account")]
pub struct AccountArgs {
    #[argh(subcommand)]
    pub action: AccountAction,
}

#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand)]
pub enum AccountAction {
    List(AccountList),
    Remove(AccountRemove),
}

/// list the registered names, with their role, creation, last login and addresses
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "list")]
pub struct AccountList {
    /// only accounts registered or logged in from this address or ADDRESS/PREFIX
    #[argh(option)]
    pub from: Option<String>,
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// remove registered names (squatted ones): their accounts and passwords are deleted
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand, name = "remove")]
pub struct AccountRemove {
    /// the registered names
    #[argh(positional)]
    pub names: Vec<String>,
    /// the database file (default smolchat.db)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,
}

/// Runs an `account` subcommand; errors are one line for the command line.
pub fn run_account(args: AccountArgs) -> Result<(), String> {
    let mut out = std::io::stdout();
    let db_err = |e: rusqlite::Error| format!("database: {e}");
    match args.action {
        AccountAction::List(list) => {
            let from = match &list.from {
                Some(text) => Some(
                    Origin::parse(text)
                        .ok_or_else(|| format!("--from {text}: not an address or a prefix"))?,
                ),
                None => None,
            };
            let conn = open(&list.db)?;
            let accounts = roster::list(&conn).map_err(db_err)?;
            let _ = writeln!(
                out,
                "{:<24}  {:<8}  {:<19}  {:<19}  ADDRESSES",
                "NAME", "ROLE", "CREATED", "LAST LOGIN"
            );
            for a in accounts {
                let matches = from.is_none_or(|from| {
                    a.addresses
                        .iter()
                        .filter_map(|text| text.parse().ok())
                        .any(|ip| from.covers(ip))
                });
                if !matches {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{:<24}  {:<8}  {:<19}  {:<19}  {}",
                    a.display,
                    a.role,
                    seconds(&a.created_at),
                    a.last_login_at.as_deref().map_or("never", seconds),
                    a.addresses.join(" ")
                );
            }
            Ok(())
        }
        AccountAction::Remove(remove) => {
            if remove.names.is_empty() {
                return Err("name the accounts to remove".into());
            }
            let conn = open(&remove.db)?;
            let mut missing = Vec::new();
            for name in &remove.names {
                if !accounts::delete(&conn, name).map_err(db_err)? {
                    missing.push(name.as_str());
                    continue;
                }
                let entry = LogEntry {
                    operator: "cli".into(),
                    action: "unregister",
                    target: crate::names::fold(name),
                    reason: None,
                    duration: None,
                };
                accounts::log_action(&conn, &entry).map_err(db_err)?;
                let _ = writeln!(out, "{}", words::unregistered(name));
            }
            if !missing.is_empty() {
                return Err(format!("not registered: {}", missing.join(", ")));
            }
            let _ = writeln!(out, "{REMOVED_HINT}");
            Ok(())
        }
    }
}

/// `--from` of `smolchat account list`: an address or a prefix.
#[derive(Debug, Clone, Copy)]
struct Origin {
    net: Net,
    /// The address group of the address given (`limits/address.rs`: an IPv6 /64).
    group: Option<IpAddr>,
}

impl Origin {
    fn parse(text: &str) -> Option<Origin> {
        let net = Net::parse(text)?;
        let address = text.split('/').next().and_then(|a| a.parse().ok());
        Some(Origin {
            net,
            group: address.map(group),
        })
    }

    /// Whether a stored address is in it. The addresses are stored by group, an IPv6 /64 as its
    /// first address, so an IPv6 address from the log (or a prefix longer than /64) matches the
    /// group it is in.
    fn covers(&self, stored: IpAddr) -> bool {
        self.net.contains(stored) || self.group == Some(stored)
    }
}

/// A stored time (`YYYY-MM-DD HH:MM:SS.SSS`) to the second.
fn seconds(at: &str) -> &str {
    at.get(..19).unwrap_or(at)
}

fn open(db: &std::path::Path) -> Result<rusqlite::Connection, String> {
    if !db.exists() {
        return Err(format!("database {}: no such file", db.display()));
    }
    accounts::open(db).map_err(|e| format!("database {}: {e}", db.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--from` finds an account by an address from the log, though IPv6 ones are stored by /64.
    #[test]
    fn from_matches_addresses_as_they_are_stored() {
        let stored = |s: &str| s.parse::<IpAddr>().unwrap();
        let from = |s: &str| Origin::parse(s).unwrap();
        assert!(from("2001:db8:1:2::5").covers(stored("2001:db8:1:2::")));
        assert!(from("2001:db8:1:2:aa::/80").covers(stored("2001:db8:1:2::")));
        assert!(from("2001:db8:1::/48").covers(stored("2001:db8:1:2::")));
        assert!(!from("2001:db8:1:3::5").covers(stored("2001:db8:1:2::")));
        assert!(from("192.0.2.7").covers(stored("192.0.2.7")));
        assert!(from("::ffff:192.0.2.7").covers(stored("192.0.2.7")));
        assert!(from("192.0.2.0/24").covers(stored("192.0.2.7")));
        assert!(!from("192.0.2.8").covers(stored("192.0.2.7")));
        assert!(Origin::parse("nonsense").is_none());
    }
}
