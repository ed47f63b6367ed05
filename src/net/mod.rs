//! Sockets: listening, accepting, admission.
pub mod server;
pub mod socket;
pub mod tls;
