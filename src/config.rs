//! The settings the server runs with, validated from the command line (`app/args.rs`).
//!
//! Every limit a user can run into is a field here, with its flag's doc saying its default and
//! why, because operators tune them and users read them in `--help` when they hit one.

use std::time::Duration;

use crate::limits::ratelimit::RateConfig;

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

    // Accounts and moderation.
    /// Passwords accepted over any plaintext connection.
    pub plaintext_passwords: bool,
    /// Loopback peers count as secure (false only in tests).
    pub trust_loopback_for_passwords: bool,
    /// The `--motd` lines, read and sanitized at start-up.
    pub motd: Vec<String>,
    /// Connections per address per minute; `None` when off.
    pub connects_per_minute: Option<u32>,
    /// New accounts per address per hour; `None` when off.
    pub registrations_per_hour: Option<u32>,

    // Hardening round 3.
    /// FOR TESTS: loopback IPv4 peers stand for IPv6 addresses (`limits::address`).
    pub test_loopback_as_ipv6: bool,

    // Slots for connections without a name.
    /// Most connections choosing a name at once; newcomers past it evict the oldest.
    pub max_unregistered: usize,
    // --- Output memory ---
    pub outbox_total_bytes: usize,
    // --- The IRC door ---
    /// `--server-name`: the source of IRC numerics and the network's name.
    pub server_name: String,
    /// `--irc-ping`: an IRC client silent this long is pinged; as long again, it is dropped.
    pub irc_ping: Duration,

    // --- The web door ---
    /// `--trust-proxy`: reverse proxies whose `X-Forwarded-For` is believed (empty: none).
    pub trusted_proxies: Vec<crate::moderation::ban::Net>,
}

impl Config {
    /// Whether `ip` is a reverse proxy named by `--trust-proxy`: the web door believes its
    /// `X-Forwarded-For`, and counts its clients under their forwarded addresses, not its own.
    pub fn trusts_proxy(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }
}
