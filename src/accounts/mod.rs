//! Accounts: names people own, with a password, and the operator role.
//!
//! Registering stays optional; an unregistered name works as before. What lives here:
//! [`hasher`] (Argon2id off the executor), [`password`] (a secret that cannot be logged), and
//! `app/cli.rs` (`smolchat op`, `ban` and `account`). Logging in and new accounts are the
//! session services' (`session/login.rs`), which every door's dialogues call (the line door's
//! are `door/line/register.rs` and `door/line/account.rs`); the SQL is in `storage/accounts/`.
pub mod hasher;
pub mod password;
mod scratch;

use std::sync::{Arc, Mutex, RwLock};

use crate::limits::login::LoginDelays;
use crate::limits::registrations::{self, Registrations};
use crate::moderation::ban::{BanList, SharedBans};
use crate::storage::accounts::{self, Saved, Store, StoreThread};
use crate::storage::{OpenError, StorageError, WriteTurns};

/// What the sessions and the hub share for accounts and moderation.
#[derive(Clone)]
pub struct Accounts {
    pub store: Store,
    pub hasher: hasher::Hasher,
    /// Failed-login counts, per account and per address.
    pub delays: Arc<Mutex<LoginDelays>>,
    /// New accounts per address in the last hour (`--registrations-per-hour`).
    pub registrations: Arc<Mutex<Registrations>>,
    /// The bans in force, consulted at connect and at the name prompt.
    pub bans: SharedBans,
    /// SIGHUP's requests to re-read bans and operator roles.
    pub reload: Reload,
}

/// Requests to reload bans and operator roles from the database (SIGHUP), passed from the
/// signal handler to the accept side, which hands them to the hub. Requests made while one is
/// pending are one request.
#[derive(Clone)]
pub struct Reload {
    requests: async_channel::Sender<()>,
    pending: async_channel::Receiver<()>,
}

impl Reload {
    fn new() -> Reload {
        let (requests, pending) = async_channel::bounded(1);
        Reload { requests, pending }
    }

    /// Asks for a reload; never waits.
    pub fn request(&self) {
        // Full: one is pending already, which reads the database after this call anyway.
        let _ = self.requests.try_send(());
    }

    /// Waits for the next request.
    pub async fn requested(&self) {
        if self.pending.recv().await.is_err() {
            // Cannot happen while `self` holds a sender; wait forever rather than spin.
            std::future::pending::<()>().await;
        }
    }
}

/// Everything loaded at start-up: the shared parts, the moderation state stored, and the
/// thread to join.
pub struct Loaded {
    pub accounts: Accounts,
    /// The topics, mutes and operator roles stored, for the hub.
    pub saved: Saved,
    pub thread: StoreThread,
}

impl Accounts {
    /// Sets `--registrations-per-hour` (`None`: off, which the session checks before asking).
    pub fn limit_registrations(&mut self, per_hour: Option<u32>) {
        let max = per_hour.unwrap_or(registrations::DEFAULT_PER_HOUR);
        self.registrations = Arc::new(Mutex::new(Registrations::new(max)));
    }

    /// Opens the account store on `path`, loads bans, topics, mutes and operator roles, starts
    /// the hashers; the account thread writes in the history writer's `turns`. Runs before
    /// the executor starts, so the loading queries block nobody.
    pub fn load(path: &std::path::Path, turns: WriteTurns) -> Result<Loaded, OpenError> {
        let err = |source| OpenError {
            path: path.to_owned(),
            source,
        };
        let conn = accounts::open(path).map_err(err)?;
        let bans = accounts::load_bans(&conn).map_err(|e| err(e.into()))?;
        let saved = accounts::load_saved(&conn).map_err(|e| err(e.into()))?;
        drop(conn);
        let (store, thread) = Store::open(path, turns).map_err(err)?;
        let hasher = hasher::Hasher::start().map_err(|e| err(StorageError::Thread(e)))?;
        Ok(Loaded {
            accounts: Accounts {
                store,
                hasher,
                delays: Arc::new(Mutex::new(LoginDelays::default())),
                registrations: Arc::new(Mutex::new(Registrations::new(
                    registrations::DEFAULT_PER_HOUR,
                ))),
                bans: Arc::new(RwLock::new(BanList::new(bans))),
                reload: Reload::new(),
            },
            saved,
            thread,
        })
    }
}
