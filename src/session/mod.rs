//! Session services: what every door's dialogue with one user needs, whatever its bytes.
//!
//! A door (`src/door/`) owns its protocol: framing, prompts, escaping, its own words. What is the
//! same for every door lives here, so the line door, the IRC door and the web door call it
//! rather than copy it:
//!
//! - [`login`]: a name's account and ban, the login limiter, password checks (Argon2id off the
//!   executor), the rule that passwords cross only TLS or loopback, and new accounts (within
//!   `--registrations-per-hour`).
//! - [`enter`]: a name claimed cluster-wide and registered with the hub, or released; the checks
//!   a rename passes before the hub sees it.
//! - [`pump`]: outbox output written while the session waits for something else.
//! - [`history`]: history pages streamed chunk by chunk, in a door's own format.
//! - [`search`]: one page of a search and what a search alone continues, for each door to word.
//! - The line rate is `limits::ratelimit::Pace` (delayed, never dropped), kept from the name
//!   prompt to the last line.
//!
//! Admission (per-address caps, the waiting queue, bans at accept) and shutdown are `net/`'s,
//! before and around every door (a door reaches admission's counts only to count an address it
//! learns later: the web door's client behind a trusted proxy). This layer knows no door and no socket: it speaks to the hub,
//! the storage and the cluster link, and writes through [`Output`].

pub mod enter;
pub mod history;
pub mod login;
pub mod pump;
pub mod search;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use async_channel::{Receiver, Sender};

use crate::accounts::Accounts;
use crate::config::Config;
use crate::hub::outbox::Budget;
use crate::hub::Intent;
use crate::limits::waiting::Place;
use crate::storage::History;
use crate::vocab::MemberId;
use crate::wire::conn::{Conn, Stream};

/// What every session shares, whatever its door.
pub struct Services {
    pub config: Config,
    pub hub: Sender<Intent>,
    pub history: History,
    /// Closed when the server starts shutting down.
    pub stopping: Receiver<()>,
    /// In cluster mode, where names are claimed cluster-wide before the hub sees them.
    pub cluster: Option<crate::cluster::Link>,
    pub accounts: Accounts,
    /// What every outbox counts against (`--outbox-total-bytes`).
    pub output_budget: Arc<Budget>,
    /// The connection counts of `net/`'s admission: the web door counts a client a trusted proxy
    /// forwarded under that client's address too (`Admission::admit_forwarded`).
    pub admission: Arc<crate::net::admission::Admission>,
    /// Where doors count what they refuse (rate, length, name deadline) and the login
    /// services count bans by name, throttled logins and failures.
    pub metrics: crate::metrics::Metrics,
}

/// One admitted connection, as `net/` hands it to a door.
pub struct Accepted {
    /// The member id it registers under, unique for this run of the server.
    pub id: MemberId,
    pub peer: SocketAddr,
    /// When a name must have been chosen by (set at accept, so a TLS handshake counts).
    pub deadline: Instant,
    /// Whether passwords may cross this connection: TLS, or a loopback peer.
    pub secure: bool,
    /// Over TLS.
    pub tls: bool,
    /// Its place among the connections waiting for a name; dropped once registered.
    pub place: Place,
}

impl Accepted {
    /// The client's address as every per-address limit and ban sees it.
    pub fn ip(&self) -> IpAddr {
        self.peer.ip().to_canonical()
    }
}

/// Why a connection was refused at accept, for its door to say (or, on a TLS port, for nobody:
/// the connection is closed without a word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnedAway {
    /// The address is banned (until then, `None`: until lifted).
    Banned {
        expires_ms: Option<i64>,
        reason: Option<String>,
    },
    /// `--connects-per-minute` connections from this address in the last minute.
    TooManyConnects(u32),
    /// `--max-per-ip` connections from this address already.
    TooManyFromAddress(usize),
    /// `--max-clients`, every one with a name.
    Full,
}

/// Where a session's output goes: bytes queued, then written with one call. A door's
/// connection implements it; the services write through it.
pub trait Output {
    /// Adds bytes that are whole lines (or frames) in the door's own encoding.
    fn queue_owned(&mut self, bytes: Vec<u8>);
    /// Writes everything queued.
    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

impl<S: Stream> Output for Conn<S> {
    fn queue_owned(&mut self, bytes: Vec<u8>) {
        Conn::queue_owned(self, bytes);
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        Conn::flush(self)
    }
}
