//! Limiters: small types with no sockets, testable in microseconds.
pub mod ratelimit;
pub mod throttle;
