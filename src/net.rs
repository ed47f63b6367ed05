//! Operating-system knobs for sockets and file descriptors.
//!
//! Each connection costs a file descriptor, and the default soft limit (often 1024) would cap the
//! server far below `--max-clients`; keepalive is what eventually notices a peer that vanished
//! without closing (a laptop lid, a dropped NAT entry).

use std::io;
use std::net::TcpStream;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// Idle time before the first keepalive probe. Not configurable: it only bounds how long a dead
/// peer's name stays taken, and 60 s is well under any NAT timeout.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Interval between probes, and how many go unanswered before the kernel drops the connection:
/// together with the idle time, a vanished peer is gone after about two minutes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 6;

/// Raises the soft open-file limit to the hard limit and returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Sets TCP_NODELAY (lines are written in batches already, so Nagle only adds latency) and
/// keepalive on an accepted socket.
pub fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    SockRef::from(stream).set_tcp_keepalive(&keepalive)
}

/// True for accept errors that mean "out of descriptors or memory": the listener is fine, and
/// accepting again after a pause will work once some connections close.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    matches!(e.raw_os_error(), Some(EMFILE | ENFILE | ENOBUFS | ENOMEM))
}
