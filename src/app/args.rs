//! The command line: flags, subcommands, and the checks that turn them into a [`Config`].
//!
//! Every limit a user can run into is a flag here, with its default and the reason for it in the
//! flag's doc, because operators tune them and users read them in `--help` when they hit one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use argh::FromArgs;

use crate::config::Config;
use crate::limits::ratelimit::RateConfig;
use crate::storage::{RetentionPolicy, Settings};

/// Default line length limit in bytes: long enough for any chat line or a URL, short enough that a
/// client cannot make the server buffer much per connection.
pub const DEFAULT_MAX_LINE: usize = 1024;

/// smolchat: a chat server you join with `nc HOST PORT`, `telnet HOST PORT` or a browser
/// (--web-listen).
#[derive(FromArgs, Debug, Clone)]
pub struct Args {
    /// address for plaintext connections (default 127.0.0.1:7878; port 0 picks a free port,
    /// printed on stdout; `none` serves TLS only, see --tls-listen)
    #[argh(option, default = "Listen(Some(default_listen()))")]
    pub listen: Listen,

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

    /// extra time the history writer waits after a line for more before it commits them (one
    /// fsync), in milliseconds; 0 commits as soon as the previous commit is on disk, gathering
    /// only what arrived meanwhile (default 0: the lowest latency; a delay means fewer fsyncs
    /// for that much more latency per line)
    #[argh(option, default = "0")]
    pub commit_ms: u64,

    /// remove messages older than this (`30d`, `52w`, `12h`; units s m h d w), a small batch
    /// at a time, and shrink the file; replays then say older messages were removed (default:
    /// keep everything)
    #[argh(option)]
    pub retention: Option<String>,

    /// seconds to flush outboxes on shutdown before closing connections anyway (default 5)
    #[argh(option, default = "5")]
    pub shutdown_grace: u64,

    // TLS: a second listener beside --listen, feeding the same hub under the same limits.
    /// address for TLS connections (off unless given; needs --tls-cert and --tls-key; port 0 picks
    /// a free port, printed on stdout)
    #[argh(option)]
    pub tls_listen: Option<SocketAddr>,

    /// PEM file with the TLS certificate chain, the server's certificate first (certbot's
    /// fullchain.pem); re-read on SIGHUP
    #[argh(option)]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the TLS private key (PKCS#8, RSA or EC); re-read on SIGHUP
    #[argh(option)]
    pub tls_key: Option<PathBuf>,

    // --- Hardening (issue #11) ---
    /// testing only: caps the database at this many pages (PRAGMA max_page_count on the writer's
    /// connection), so a test can fill the "disk" without root
    #[argh(option, hidden_help)]
    pub test_max_db_pages: Option<i64>,

    /// testing only: retention's clock runs this far ahead of the real one (a duration such as
    /// 2h), so a test can age messages without waiting
    #[argh(option, hidden_help)]
    pub test_retention_ahead: Option<String>,

    /// testing only: each fsync of the history waits while this file exists, so a test can hold
    /// a commit between its COMMIT and its fsync (and kill the server there)
    #[argh(option, hidden_help)]
    pub test_hold_fsync: Option<PathBuf>,

    // --- Hardening round 3 (review of main) ---
    /// testing only: treat a client from 127.0.A.B as coming from fd00:0:0:A::B, so tests can
    /// connect from several addresses of one IPv6 /64 (loopback has only ::1)
    #[argh(switch, hidden_help)]
    pub test_loopback_as_ipv6: bool,

    // --- Accounts and moderation (issue #13) ---
    /// accept passwords over plaintext connections from any address: anyone on the network path
    /// can read them, so only for a trusted LAN (default: only over TLS or from loopback)
    #[argh(switch)]
    pub plaintext_passwords: bool,

    /// FOR TESTS: whether loopback counts as a safe place to send passwords (default true;
    /// the test suite passes false to play a remote plaintext client)
    #[argh(option, default = "true", hidden_help)]
    pub trust_loopback_for_passwords: bool,

    /// a text file shown to every user after the welcome line (at most 4096 bytes)
    #[argh(option)]
    pub motd: Option<PathBuf>,

    /// new connections allowed per address per minute; more are refused (default 20; 0 turns
    /// it off; loopback is exempt unless --limit-loopback is given)
    #[argh(option, default = "20")]
    pub connects_per_minute: u32,

    /// new accounts allowed per address per hour (an IPv6 /64 counts as one address); more
    /// are refused (default 3; 0 turns it off; loopback is exempt unless --limit-loopback is
    /// given)
    #[argh(option, default = "crate::limits::registrations::DEFAULT_PER_HOUR")]
    pub registrations_per_hour: u32,

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

    /// testing only: the cluster heartbeat's expiry in milliseconds (default 15000), renewed
    /// every third of it, so a test can cut a node off past the expiry without waiting 15 s
    #[argh(option, hidden_help)]
    pub test_cluster_ttl_ms: Option<u64>,

    // --- Slots for connections without a name (issue #11) ---
    /// most connections still choosing a name (or in their TLS handshake); past it, a newcomer
    /// evicts the oldest of them, so silent connections cannot hold a full server (default half
    /// of --max-clients; at most --max-clients)
    #[argh(option)]
    pub max_unregistered: Option<usize>,

    // --- Output memory (issue #11: floods bounded) ---
    /// bytes that may wait in all outboxes together; past it the clients furthest behind are
    /// disconnected first (default 134217728, 128 MiB)
    #[argh(option, default = "128 * 1024 * 1024")]
    pub outbox_total_bytes: usize,

    // --- Metrics (issue #22) ---
    /// address to serve Prometheus metrics on, at /metrics (off unless given; keep it on
    /// loopback or a private network, e.g. 127.0.0.1:9878: there is no authentication; port 0
    /// picks a free port, printed on stdout as `metrics on ADDR`)
    #[argh(option)]
    pub metrics_listen: Option<SocketAddr>,

    // --- The IRC door (issue #20, docs/IRC.md) ---
    /// address for IRC clients (irssi, WeeChat, HexChat), conventionally port 6667 (off unless
    /// given; port 0 picks a free port, printed on stdout as `listening for IRC on ADDR`)
    #[argh(option)]
    pub irc_listen: Option<SocketAddr>,

    /// address for IRC clients over TLS, conventionally port 6697 (off unless given; uses
    /// --tls-cert and --tls-key, re-read on SIGHUP; printed as `listening for IRC over TLS on ADDR`)
    #[argh(option)]
    pub irc_tls_listen: Option<SocketAddr>,

    /// the name IRC clients see as the server's, in prefixes and numerics, and the network's
    /// name; give every node of a cluster the same (default: the host name)
    #[argh(option)]
    pub server_name: Option<String>,

    /// seconds an IRC client may be silent before the server sends it a PING; silent as long
    /// again, it is disconnected (default 120: clients ping every minute or two themselves, so
    /// only dead connections meet it; 1 to 3600)
    #[argh(option, default = "120")]
    pub irc_ping: u64,
    // --- The web door (issue 21, docs/WEB.md) ---
    /// address for the chat page and its WebSocket over HTTP (off unless given; port 0 picks a
    /// free port, printed on stdout as `listening for web on ADDR`)
    #[argh(option)]
    pub web_listen: Option<SocketAddr>,

    /// address for the chat page over HTTPS, with the --tls-cert and --tls-key certificate
    /// (re-read on SIGHUP); off unless given
    #[argh(option)]
    pub web_tls_listen: Option<SocketAddr>,

    /// comma-separated addresses or prefixes of reverse proxies whose X-Forwarded-For and
    /// X-Forwarded-Proto the web door believes (default: none, the headers are ignored)
    #[argh(option)]
    pub trust_proxy: Option<String>,

    #[argh(subcommand)]
    pub command: Option<Subcommand>,
}

/// The value of `--listen`: an address, or `none` for no plaintext listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(text: &str) -> Result<Listen, String> {
        if text == "none" {
            return Ok(Listen(None));
        }
        text.parse()
            .map(|addr| Listen(Some(addr)))
            .map_err(|_| format!("expected IP:PORT or `none`, got {text:?}"))
    }
}

/// What the server listens on, checked: at least one listener, and TLS with both its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    pub plain: Option<SocketAddr>,
    pub tls: Option<TlsListener>,
    /// The IRC door's listeners (`--irc-listen`, `--irc-tls-listen`).
    pub irc: Option<SocketAddr>,
    pub irc_tls: Option<SocketAddr>,
    /// The web door's listeners (`--web-listen`, `--web-tls-listen`).
    pub web: Option<SocketAddr>,
    pub web_tls: Option<SocketAddr>,
    /// The certificate and key, when any TLS listener is on.
    pub certificate: Option<(PathBuf, PathBuf)>,
}

/// The TLS listener and the files it serves (re-read on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListener {
    pub addr: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Commands other than running the server.
#[derive(FromArgs, Debug, Clone, PartialEq)]
#[argh(subcommand)]
pub enum Subcommand {
    Op(super::cli::OpArgs),
    Ban(super::cli::BanArgs),
    Backup(super::maintenance::BackupArgs),
    Check(super::maintenance::CheckArgs),
    Compact(super::maintenance::CompactArgs),
    Account(super::cli::AccountArgs),
}

/// Longest `--motd` file: a welcome, not a manual.
pub const MAX_MOTD_BYTES: usize = 4096;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7878))
}

/// Longest allowed `--max-line`: a chat line, not a file transfer.
pub const MAX_MAX_LINE: usize = 64 * 1024;

/// Longest allowed `--commit-ms`: every line waits that long before it is stored and relayed.
pub const MAX_COMMIT_MS: u64 = 10_000;

/// Most history lines replayed on joining: more would be a database dump, not a chat
/// scrollback (the sqlite3 shell is there for that).
pub const MAX_HISTORY_PAGE: u32 = 1000;

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
        let max_unregistered = self.max_unregistered()?;
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
        if self.outbox_total_bytes < self.outbox_bytes {
            return Err(format!(
                "--outbox-total-bytes {} is smaller than --outbox-bytes {}",
                self.outbox_total_bytes, self.outbox_bytes
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
            plaintext_passwords: self.plaintext_passwords,
            trust_loopback_for_passwords: self.trust_loopback_for_passwords,
            motd: self.read_motd()?,
            connects_per_minute: (self.connects_per_minute > 0).then_some(self.connects_per_minute),
            registrations_per_hour: (self.registrations_per_hour > 0)
                .then_some(self.registrations_per_hour),
            test_loopback_as_ipv6: self.test_loopback_as_ipv6,
            max_unregistered,
            outbox_total_bytes: self.outbox_total_bytes,
            server_name: self.server_name()?,
            irc_ping: match self.irc_ping {
                1..=3600 => Duration::from_secs(self.irc_ping),
                other => return Err(format!("--irc-ping {other}: give 1 to 3600 seconds")),
            },
            trusted_proxies: self.trusted_proxies()?,
        })
    }

    /// Checks the listener flags together: TLS needs its address, certificate and key, and
    /// something must be listening.
    pub fn listeners(&self) -> Result<Listeners, String> {
        let (irc, irc_tls) = (self.irc_listen, self.irc_tls_listen);
        let (web, web_tls) = (self.web_listen, self.web_tls_listen);
        let wants_tls = self.tls_listen.is_some() || irc_tls.is_some() || web_tls.is_some();
        let certificate = match (wants_tls, &self.tls_cert, &self.tls_key) {
            (true, Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (false, None, None) => None,
            (true, _, _) => {
                return Err("--tls-listen, --irc-tls-listen and --web-tls-listen need \
                            --tls-cert and --tls-key"
                    .into())
            }
            (false, _, _) => {
                return Err(
                    "--tls-cert and --tls-key need --tls-listen, --irc-tls-listen or \
                            --web-tls-listen"
                        .into(),
                )
            }
        };
        let tls = match (self.tls_listen, &certificate) {
            (Some(addr), Some((cert, key))) => Some(TlsListener {
                addr,
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        let plain = self.listen.0;
        let doors = [irc, irc_tls, web, web_tls];
        if plain.is_none() && tls.is_none() && doors.iter().all(Option::is_none) {
            return Err("--listen none needs --tls-listen (nothing would listen)".into());
        }
        let mut fixed: Vec<SocketAddr> = [plain, self.tls_listen]
            .into_iter()
            .chain(doors)
            .flatten()
            .filter(|addr| addr.port() != 0)
            .collect();
        fixed.sort();
        if let Some(pair) = fixed.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(format!(
                "two listeners on {}: give each its own port",
                pair[0]
            ));
        }
        Ok(Listeners {
            plain,
            tls,
            irc,
            irc_tls,
            web,
            web_tls,
            certificate,
        })
    }

    /// `--server-name`, or the host name: one word IRC can carry in a prefix.
    fn server_name(&self) -> Result<String, String> {
        let name = match &self.server_name {
            Some(name) => name.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "smolchat".to_owned()),
        };
        let ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if ok {
            Ok(name)
        } else {
            Err(format!(
                "--server-name {name:?}: letters, digits, '.', '-' and '_' only, at most 63"
            ))
        }
    }

    /// `--trust-proxy`, checked: the proxies whose forwarding headers the web door believes.
    pub fn trusted_proxies(&self) -> Result<Vec<crate::moderation::ban::Net>, String> {
        let Some(list) = &self.trust_proxy else {
            return Ok(Vec::new());
        };
        let proxies = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                crate::moderation::ban::Net::parse(item)
                    .ok_or_else(|| format!("--trust-proxy: not an address or prefix: {item}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if proxies.is_empty() {
            return Err("--trust-proxy needs at least one address".into());
        }
        Ok(proxies)
    }

    /// `--max-unregistered`, or half of `--max-clients`: at least 1, at most `--max-clients`.
    fn max_unregistered(&self) -> Result<usize, String> {
        match self.max_unregistered {
            None => Ok((self.max_clients / 2).max(1)),
            Some(0) => Err("--max-unregistered must be at least 1".into()),
            Some(n) if n > self.max_clients => Err(format!(
                "--max-unregistered {n} is more than --max-clients {}",
                self.max_clients
            )),
            Some(n) => Ok(n),
        }
    }

    /// Reads `--motd`: each line sanitized like a user's, so the file cannot act on terminals.
    fn read_motd(&self) -> Result<Vec<String>, String> {
        let Some(path) = &self.motd else {
            return Ok(Vec::new());
        };
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read --motd {}: {e}", path.display()))?;
        if bytes.len() > MAX_MOTD_BYTES {
            return Err(format!(
                "--motd {} is too large ({} bytes, at most {MAX_MOTD_BYTES})",
                path.display(),
                bytes.len()
            ));
        }
        Ok(String::from_utf8_lossy(&bytes)
            .lines()
            .map(crate::wire::sanitize::sanitize)
            .collect())
    }

    /// How often a cluster node renews its heartbeat, and how long it outlives the node.
    pub fn timing(&self) -> crate::cluster::Timing {
        self.test_cluster_ttl_ms
            .map(|ms| crate::cluster::Timing::with_ttl(Duration::from_millis(ms)))
            .unwrap_or_default()
    }

    /// The history writer's extra gathering delay (`--commit-ms`).
    pub fn commit_window(&self) -> Duration {
        Duration::from_millis(self.commit_ms)
    }

    /// How the history is kept: the gathering delay, `--retention`, the test page cap; the writer
    /// reports its commits to `stats`.
    pub fn history_settings(&self, stats: crate::metrics::WriterStats) -> Result<Settings, String> {
        let retention = match &self.retention {
            None => None,
            Some(text) => Some(RetentionPolicy::parse(text).ok_or_else(|| {
                format!("--retention {text}: expected a duration such as 30d, 52w or 12h")
            })?),
        };
        let retention_ahead = match &self.test_retention_ahead {
            None => Duration::ZERO,
            Some(text) => crate::moderation::duration::parse(text)
                .ok_or_else(|| format!("--test-retention-ahead {text}: expected a duration"))?,
        };
        Ok(Settings {
            commit_window: self.commit_window(),
            max_pages: self.test_max_db_pages,
            retention,
            retention_ahead,
            stats,
            hold_fsync: self.test_hold_fsync.clone(),
        })
    }

    /// Executor threads to run.
    pub fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}
