//! Load generator for smolchat. It plays many `nc`-style clients against a server on loopback
//! and prints what the server delivered, how fast, and at what cost in server CPU and memory,
//! so that changes to the server can be compared with numbers rather than impressions.
//!
//! Clients come through any of the server's doors (see `door`): the line door (`--addr`, nc's
//! way), the IRC door (`--irc-addr`) and the web door (`--web-addr`, WebSocket and JSON).
//! `fanout --mix nc=50,irc=50` fills one room from several doors; `idle --transport irc` measures
//! one door's memory per user.
//!
//! With `--target floor` the same `fanout` and `idle` scenarios drive the floor relay in
//! `../shared/floor` instead, a minimal epoll relay that shows what moving the bytes costs on
//! this machine. Absolute figures move between machines and sittings, so smolchat is judged
//! as a ratio to the floor measured in the same sitting.
//!
//! Scenarios (subcommands; `fanout` when none is given):
//! - `fanout`: N readers, S senders; deliveries per second and send-to-receive latency, with an
//!   optional set of stalled readers the server is expected to drop. Closed loop (a window of
//!   lines in flight per sender) or paced (`--rate` lines/s per sender for `--duration-secs`:
//!   the big room).
//! - `idle`: N quiet clients of one door; server memory per connection.
//! - `replay`: fresh clients one at a time; time to receive the history replay.
//! - `fill-db`: an offline bulk insert into a history database; raw SQLite throughput.
//! - `writer`: the server's own history writer driven offline; sustained lines stored per second.
//! - `search`: one client's `/search` queries one at a time; time to receive a page of matches.
//!
//! Every scenario prints human-readable lines and ends with one `RESULT key=value ...` line for
//! scripts. Every wait is bounded by `--timeout-secs`, so the bench always stops by itself; a
//! server that loses lines yields a delivery ratio below 1, not a hang or a crash.
//!
//! The bench only talks to loopback addresses: it opens thousands of connections and must never
//! be pointed at someone else's machine by a typo.

mod client;
mod door;
mod fanout;
mod fill_db;
mod mix;
mod scenarios;
mod search;
mod stats;
mod swarm;
mod tls;
mod writer;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use argh::FromArgs;
use smol::Executor;

use crate::client::{Target, Transport};
use crate::door::{Doors, IrcCaps};
use crate::fanout::FanoutArgs;
use crate::fill_db::FillDbArgs;
use crate::scenarios::{IdleArgs, ReplayArgs};
use crate::search::SearchArgs;
use crate::stats::Probe;
use crate::writer::WriterArgs;

/// An error with the context needed to act on it.
#[derive(Debug)]
pub struct BenchError(String);

impl BenchError {
    pub fn new(message: impl Into<String>) -> BenchError {
        BenchError(message.into())
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

pub type Result<T> = std::result::Result<T, BenchError>;

/// Attaches a description of what was being done to an error.
pub trait Context<T> {
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn context<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|error| BenchError(format!("{}: {error}", what().into())))
    }
}

#[derive(FromArgs)]
/// Load generator for a smolchat server on loopback. Options before the scenario name apply to
/// every scenario, e.g. `smolchat-bench --addr 127.0.0.1:7878 fanout --clients 100`.
struct Cli {
    /// server address; only 127.0.0.0/8 and ::1 are accepted (default 127.0.0.1:7878). Several,
    /// comma-separated (the nodes of a cluster), spread the clients round-robin over them:
    /// client i connects to address i mod N, so senders and readers are on every node
    #[argh(option, default = "String::from(\"127.0.0.1:7878\")")]
    addr: String,
    /// the server's dialogue: smolchat (welcome, history, notices) or floor (the floor relay:
    /// `name?`, then only relayed lines); replay needs smolchat (default smolchat)
    #[argh(option, default = "Target::Smolchat")]
    target: Target,
    /// server process id, to report its CPU time and resident memory from /proc
    #[argh(option)]
    server_pid: Option<u32>,
    /// upper bound on the whole run in seconds (default 120)
    #[argh(option, default = "120")]
    timeout_secs: u64,
    /// executor threads for the clients (default 1, leaving the other core to the server)
    #[argh(option, default = "1")]
    threads: usize,
    /// clients per source address 127.0.0.x, to stay under the server's per-address cap;
    /// 0 connects every client from the default address (default 16)
    #[argh(option, default = "16")]
    per_source: usize,
    /// connect with TLS (to smolchat's --tls-listen port), trusting any certificate: the bench
    /// only talks to loopback
    #[argh(switch)]
    tls: bool,
    /// the server's IRC door (its --irc-listen), for IRC clients; with several --addr, one per
    /// node in the same order, comma-separated
    #[argh(option)]
    irc_addr: Option<String>,
    /// the server's web door (its --web-listen), for WebSocket clients; with several --addr, one
    /// per node in the same order, comma-separated
    #[argh(option)]
    web_addr: Option<String>,
    /// the IRC capabilities IRC clients request, comma-separated, or none for no CAP negotiation
    /// (default server-time,message-tags,echo-message)
    #[argh(option, default = "IrcCaps::default()")]
    irc_caps: IrcCaps,
    #[argh(subcommand)]
    scenario: Option<Scenario>,
}

#[derive(FromArgs)]
#[argh(subcommand)]
enum Scenario {
    Fanout(FanoutArgs),
    Idle(IdleArgs),
    Replay(ReplayArgs),
    Search(SearchArgs),
    FillDb(FillDbArgs),
    Writer(WriterArgs),
}

/// What every networked scenario needs.
pub struct Env {
    /// The first (or only) address.
    pub addr: SocketAddr,
    /// Every address given; clients are spread round-robin over them.
    pub addrs: Vec<SocketAddr>,
    /// Which server's dialogue the clients speak.
    pub target: Target,
    /// Clients per source address; 0 or an IPv6 server means no spreading.
    per_source: usize,
    /// Plaintext or TLS.
    pub transport: Transport,
    /// Every door's addresses and client settings.
    pub doors: Doors,
    /// Every wait in the run ends by this instant.
    pub deadline: Instant,
    pub probe: Probe,
    pub ex: Arc<Executor<'static>>,
}

impl Env {
    /// The address client number `index` connects to.
    pub fn addr_for(&self, index: usize) -> SocketAddr {
        self.addrs[index % self.addrs.len()]
    }

    /// Which of the addresses (cluster nodes) client number `index` is on.
    pub fn node_of(&self, index: usize) -> usize {
        index % self.addrs.len()
    }

    /// The source address client number `index` binds to, if sources are spread.
    pub fn source_for(&self, index: usize) -> Option<Ipv4Addr> {
        match self.addr {
            SocketAddr::V4(_) => client::source_address(index, self.per_source),
            SocketAddr::V6(_) => None,
        }
    }
}

fn main() -> ExitCode {
    let cli: Cli = argh::from_env();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("smolchat-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let scenario = match cli.scenario {
        Some(scenario) => scenario,
        None => Scenario::Fanout(FanoutArgs::defaults()?),
    };
    let deadline = Instant::now() + Duration::from_secs(cli.timeout_secs);
    if let Scenario::FillDb(args) = &scenario {
        return fill_db::run(args, deadline);
    }
    if let Scenario::Writer(args) = &scenario {
        return writer::run(args, deadline);
    }

    let addrs = parse_list(&cli.addr)?;
    let addr = addrs[0];
    let irc_addrs = cli.irc_addr.as_deref().map_or(Ok(Vec::new()), parse_list)?;
    let web_addrs = cli.web_addr.as_deref().map_or(Ok(Vec::new()), parse_list)?;
    if cli.threads == 0 {
        return Err(BenchError::new("--threads must be at least 1"));
    }
    // Each client is a file descriptor; the default soft limit (often 1024) is far too low.
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context(|| "raising RLIMIT_NOFILE")?;
    eprintln!("open file limit: {nofile}");
    let probe = Probe::new(cli.server_pid)?;
    let transport = if cli.tls {
        Transport::tls().map_err(BenchError::new)?
    } else {
        Transport::Plain
    };

    let doors = Doors {
        transport: transport.clone(),
        target: cli.target,
        line: addrs.clone(),
        irc: irc_addrs,
        web: web_addrs,
        irc_caps: cli.irc_caps,
    };

    on_executor(cli.threads, |ex| async move {
        let env = Env {
            addr,
            addrs,
            target: cli.target,
            per_source: cli.per_source,
            transport,
            doors,
            deadline,
            probe,
            ex,
        };
        match &scenario {
            Scenario::Fanout(args) => fanout::run(&env, args).await,
            Scenario::Idle(args) => scenarios::run_idle(&env, args).await,
            Scenario::Replay(args) => scenarios::run_replay(&env, args).await,
            Scenario::Search(args) => search::run(&env, args).await,
            Scenario::FillDb(_) | Scenario::Writer(_) => Ok(()),
        }
    })
}

/// Parses a comma-separated list of loopback addresses.
fn parse_list(addrs: &str) -> Result<Vec<SocketAddr>> {
    addrs.split(',').map(|a| parse_loopback(a.trim())).collect()
}

/// Parses `addr` and refuses anything but a loopback address.
fn parse_loopback(addr: &str) -> Result<SocketAddr> {
    let parsed: SocketAddr = addr
        .parse()
        .context(|| format!("--addr {addr}: expected IP:PORT such as 127.0.0.1:7878"))?;
    let loopback = match parsed.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback(),
    };
    if !loopback {
        return Err(BenchError::new(format!(
            "--addr {addr}: refusing a non-loopback address (use 127.0.0.0/8 or ::1)"
        )));
    }
    Ok(parsed)
}

/// Runs `main` on an executor served by `threads` threads (the calling one included) and
/// returns its output. The extra threads stop when the returned future completes.
fn on_executor<F, T>(threads: usize, main: impl FnOnce(Arc<Executor<'static>>) -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let ex = Arc::new(Executor::new());
    // Dropping the sender closes the channel, which ends every helper thread's `run`.
    let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
    let mut helpers = Vec::with_capacity(threads - 1);
    for index in 1..threads {
        let (ex, stop_rx) = (ex.clone(), stop_rx.clone());
        let helper = thread::Builder::new()
            .name(format!("bench-{index}"))
            .spawn(move || smol::block_on(ex.run(stop_rx.recv())))
            .context(|| "starting an executor thread")?;
        helpers.push(helper);
    }
    let output = smol::block_on(ex.run(main(ex.clone())));
    drop(stop_tx);
    for helper in helpers {
        // The helpers only run client tasks, which report through their own results.
        let _ = helper.join();
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only loopback addresses pass.
    #[test]
    fn loopback_only() {
        assert!(parse_loopback("127.0.0.1:7878").is_ok());
        assert!(parse_loopback("127.3.2.1:1").is_ok());
        assert!(parse_loopback("[::1]:7878").is_ok());
        assert!(parse_loopback("10.0.0.1:7878").is_err());
        assert!(parse_loopback("[::ffff:127.0.0.1]:7878").is_err());
        assert!(parse_loopback("localhost:7878").is_err());
    }

    /// Source addresses stay in 127/8 and skip .0 and .255.
    #[test]
    fn source_addresses() {
        assert_eq!(
            client::source_address(0, 16),
            Some(Ipv4Addr::new(127, 0, 0, 1))
        );
        assert_eq!(
            client::source_address(16, 16),
            Some(Ipv4Addr::new(127, 0, 0, 2))
        );
        assert_eq!(
            client::source_address(254 * 16, 16),
            Some(Ipv4Addr::new(127, 0, 1, 1))
        );
        assert_eq!(client::source_address(5, 0), None);
    }
}
