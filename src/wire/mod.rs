//! The wire: bytes off the socket into clean lines, and batches of lines back out.
//!
//! [`reader`] reads with bounded memory, [`codec`] frames lines and handles telnet
//! commands, [`telnet`] negotiates options and encodes output for telnet clients, [`sanitize`]
//! strips anything that could act on another user's terminal ([`markup`]: except IRC's
//! formatting codes, kept for IRC users), and [`conn`] is a connection over
//! any byte stream (plaintext or TLS) that writes in batches. [`http`] reads HTTP/1.1 request
//! heads within bounds and writes responses, for the web door and the metrics endpoint.
//!
//! Nothing here knows about names, rooms, the hub or the database.
pub mod codec;
pub mod conn;
pub mod gate;
pub mod http;
pub mod markup;
pub mod reader;
pub mod sanitize;
pub mod telnet;
