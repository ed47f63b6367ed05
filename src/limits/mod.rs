//! Limiters: small types with no sockets, testable in microseconds.
//!
//! [`ratelimit`]: a user's lines per second; [`connects`]: new connections per address per
//! minute; [`registrations`]: new accounts per address per hour; [`login`]: the growing delay
//! after failed logins; [`throttle`]: aggregated logging of
//! repeated refusals, so no client behaviour can flood the log; [`waiting`]: the connections
//! still choosing a name, capped so that silent ones cannot hold a full server.
//!
//! Every per-address limit counts [`address::group`]s: IPv4 addresses, IPv6 /64s.
pub mod address;
pub mod connects;
pub mod login;
pub mod ratelimit;
pub mod registrations;
pub mod throttle;
pub mod waiting;
