//! Sockets: listening, accepting, admission, TLS; each listener opens a door (`src/door/`).
pub mod admission;
pub mod server;
pub mod socket;
pub mod tls;
