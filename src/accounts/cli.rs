//! `smolchat op add|remove|list NAME --db FILE`: the operator role from the command line.
//!
//! It works whether or not a server is running on the same file: it does not take the server's
//! lock, and WAL with a busy timeout lets it write beside the server. A running server sees the
//! change at the user's next login (or at once with `/op` and `/deop` in chat).

use std::io::Write as _;
use std::path::PathBuf;

use argh::FromArgs;

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
        target: name.to_ascii_lowercase(),
        reason: None,
        duration: None,
    };
    accounts::log_action(&conn, &entry).map_err(|e| format!("database: {e}"))?;
    let _ = if operator {
        writeln!(out, "{name} is now an operator")
    } else {
        writeln!(out, "{name} is no longer an operator")
    };
    Ok(())
}

fn open(db: &std::path::Path) -> Result<rusqlite::Connection, String> {
    if !db.exists() {
        return Err(format!("database {}: no such file", db.display()));
    }
    accounts::open(db).map_err(|e| format!("database {}: {e}", db.display()))
}
