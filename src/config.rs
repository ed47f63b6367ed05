//! Command line and the limits it sets.
//!
//! Every limit a user can run into is a flag here, with its default and the reason for it in the
//! flag's doc, because operators tune them and users read them in `--help` when they hit one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

/// Default line length limit in bytes: long enough for any chat line or a URL, short enough that a
/// client cannot make the server buffer much per connection.
pub const DEFAULT_MAX_LINE: usize = 1024;

/// smolchat: a chat server you join with `nc HOST PORT` or `telnet HOST PORT`.
#[derive(FromArgs, Debug, Clone)]
pub struct Args {
    /// address to listen on (default 127.0.0.1:7878; port 0 picks a free port, printed on stdout)
    #[argh(option, default = "default_listen()")]
    pub listen: SocketAddr,

    /// SQLite database file holding the chat history (default smolchat.db; created if missing)
    #[argh(option, default = "PathBuf::from(\"smolchat.db\")")]
    pub db: PathBuf,

    /// messages of history replayed to a user joining a room (default 50, at most 1000)
    #[argh(option, default = "50")]
    pub history: u32,

    /// log level: error, warn, info, debug or trace (default info; logs go to stderr)
    #[argh(option, default = "log::LevelFilter::Info")]
    pub log_level: log::LevelFilter,

    /// print `smolchat VERSION` and exit
    #[argh(switch)]
    pub version: bool,

    /// executor threads (default: the number of CPU cores)
    #[argh(option)]
    pub threads: Option<usize>,

    /// longest line a user may send, in bytes (default 1024)
    #[argh(option, default = "DEFAULT_MAX_LINE")]
    pub max_line: usize,

    /// seconds a newcomer has to choose a name before being disconnected (default 60)
    #[argh(option, default = "60")]
    pub register_timeout: u64,

    /// lines a user may send in a burst before the rate limit applies (default 10)
    #[argh(option, default = "10")]
    pub rate_burst: u32,

    /// sustained lines per second per user; lines above it are delayed, never dropped (default 2;
    /// 0 turns the limit off)
    #[argh(option, default = "2")]
    pub rate_per_sec: u32,

    /// bytes that may wait in one user's outbox before that user is disconnected as too slow a
    /// reader (default 262144)
    #[argh(option, default = "256 * 1024")]
    pub outbox_bytes: usize,

    /// most simultaneous connections; more are told `server full` (default 10000)
    #[argh(option, default = "10_000")]
    pub max_clients: usize,

    /// most simultaneous connections from one IP address (default 20; loopback is exempt unless
    /// --limit-loopback is given)
    #[argh(option, default = "20")]
    pub max_per_ip: usize,

    /// apply --max-per-ip to loopback addresses too
    #[argh(switch)]
    pub limit_loopback: bool,

    /// the history commit window in milliseconds: a crash or power cut loses at most the messages
    /// of the last window (default 20)
    #[argh(option, default = "20")]
    pub commit_ms: u64,

    /// seconds to flush outboxes on shutdown before closing connections anyway (default 5)
    #[argh(option, default = "5")]
    pub shutdown_grace: u64,

    // Cluster mode (docs/CLUSTER.md). Without --cluster nothing about Redis is loaded or needed.
    /// join a cluster through Redis at this URL (redis://HOST:PORT); default: run alone
    #[argh(option)]
    pub cluster: Option<String>,

    /// this node's name in the cluster, unique among live nodes (default: host name and listen
    /// port, e.g. box1:7878)
    #[argh(option)]
    pub node: Option<String>,

    /// entries the cluster log keeps (approximately) before trimming the oldest; a node away for
    /// longer cannot recover what was trimmed (default 1000000)
    #[argh(option, default = "crate::cluster::DEFAULT_STREAM_MAX")]
    pub cluster_stream_max: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7878))
}

/// Longest allowed `--max-line`: a chat line, not a file transfer.
pub const MAX_MAX_LINE: usize = 64 * 1024;

/// Longest allowed commit window: past this the crash guarantee means little.
pub const MAX_COMMIT_MS: u64 = 10_000;

/// Most history lines replayed on joining: more would be a database dump, not a chat
/// scrollback (the sqlite3 shell is there for that).
pub const MAX_HISTORY_PAGE: u32 = 1000;

/// The validated settings the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub history: u32,
    pub max_line: usize,
    pub register_timeout: Duration,
    pub rate: Option<RateConfig>,
    pub outbox_bytes: usize,
    pub max_clients: usize,
    pub max_per_ip: usize,
    pub limit_loopback: bool,
    pub shutdown_grace: Duration,
}

/// The per-user rate limit: a token bucket.
#[derive(Debug, Clone, Copy)]
pub struct RateConfig {
    pub burst: u32,
    pub per_sec: u32,
}

impl Args {
    /// Checks the values argh cannot check by type and builds the server's [`Config`].
    pub fn config(&self) -> Result<Config, String> {
        if self.max_line < 16 {
            return Err(format!(
                "--max-line {} is too small (at least 16)",
                self.max_line
            ));
        }
        if self.history > MAX_HISTORY_PAGE {
            return Err(format!(
                "--history {} is too large (at most {MAX_HISTORY_PAGE})",
                self.history
            ));
        }
        if self.max_clients == 0 || self.max_per_ip == 0 {
            return Err("--max-clients and --max-per-ip must be at least 1".into());
        }
        if self.max_line > MAX_MAX_LINE {
            return Err(format!(
                "--max-line {} is too large (at most {MAX_MAX_LINE})",
                self.max_line
            ));
        }
        // A relayed line can be three times the bytes received (invalid UTF-8 becomes U+FFFD)
        // plus the sender's name; the outbox must hold several such lines, or one line from a
        // user could get an innocent reader disconnected.
        let min_outbox = 8 * (3 * self.max_line + 64);
        if self.outbox_bytes < min_outbox {
            return Err(format!(
                "--outbox-bytes {} is too small for --max-line {} (at least {min_outbox})",
                self.outbox_bytes, self.max_line
            ));
        }
        if self.commit_ms > MAX_COMMIT_MS {
            return Err(format!(
                "--commit-ms {} is too large (at most {MAX_COMMIT_MS})",
                self.commit_ms
            ));
        }
        if self.register_timeout == 0 {
            return Err("--register-timeout must be at least 1 second".into());
        }
        if self.cluster.is_none() && self.node.is_some() {
            return Err("--node needs --cluster".into());
        }
        if self.cluster_stream_max < 1000 {
            return Err(format!(
                "--cluster-stream-max {} is too small (at least 1000)",
                self.cluster_stream_max
            ));
        }
        if self.threads == Some(0) {
            return Err("--threads must be at least 1".into());
        }
        let rate = (self.rate_per_sec > 0).then_some(RateConfig {
            burst: self.rate_burst.max(1),
            per_sec: self.rate_per_sec,
        });
        Ok(Config {
            history: self.history,
            max_line: self.max_line,
            register_timeout: Duration::from_secs(self.register_timeout),
            rate,
            outbox_bytes: self.outbox_bytes,
            max_clients: self.max_clients,
            max_per_ip: self.max_per_ip,
            limit_loopback: self.limit_loopback,
            shutdown_grace: Duration::from_secs(self.shutdown_grace),
        })
    }

    /// The commit window of the history writer.
    pub fn commit_window(&self) -> Duration {
        Duration::from_millis(self.commit_ms.max(1))
    }

    /// Executor threads to run.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}
