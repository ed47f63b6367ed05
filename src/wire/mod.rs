//! The wire: bytes off the socket into clean lines.
pub mod codec;
pub mod reader;
pub mod sanitize;
