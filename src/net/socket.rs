//! Operating-system knobs for sockets and file descriptors.
//!
//! Each connection costs a file descriptor, and the default soft limit (often 1024) would cap the
//! server far below `--max-clients`; keepalive is what eventually notices a peer that vanished
//! without closing (a laptop lid, a dropped NAT entry).

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};

/// Connections the kernel queues before we accept them. The standard library's 128 overflows
/// when hundreds of users connect at once (after a restart, say), and an overflow costs each
/// unlucky client a one-second SYN retry. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// Idle time before the first keepalive probe. Not configurable: it only bounds how long a dead
/// peer's name stays taken, and 60 s is well under any NAT timeout.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Interval between probes, and how many go unanswered before the kernel drops the connection:
/// together with the idle time, a vanished peer is gone after about two minutes.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 6;
/// How long sent data may stay unacknowledged before the kernel gives up on the peer. Keepalive
/// only probes idle connections; this covers a peer that vanished with data in flight. A client
/// that is alive but not reading still acknowledges, so this never drops a slow reader.
const USER_TIMEOUT: Duration = Duration::from_secs(120);

/// Binds a listening socket with a large accept backlog (and `SO_REUSEADDR`, so a restarted
/// server can bind while old connections linger in TIME_WAIT).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Raises the soft open-file limit to the hard limit and returns the new soft limit.
pub fn raise_fd_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Sets TCP_NODELAY (lines are written in batches already, so Nagle only adds latency),
/// keepalive and a user timeout on an accepted socket.
pub fn tune(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    let sock = SockRef::from(stream);
    sock.set_tcp_keepalive(&keepalive)?;
    sock.set_tcp_user_timeout(Some(USER_TIMEOUT))
}

/// True for accept errors that mean "out of descriptors or memory": the listener is fine, and
/// accepting again after a pause will work once some connections close.
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Writes a one-line reason to a refused connection and closes it. The socket is fresh, so the
/// line fits its send buffer and the write does not block.
pub fn refuse(mut stream: TcpStream, reason: &str) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.write_all(format!("{reason}\n").as_bytes());
    close_quietly(stream);
}

/// Closes a connection with a FIN, not a reset. Input that already arrived is read and dropped
/// first: closing with unread input would reset the connection and could discard what was
/// written before the client reads it.
pub fn close_quietly(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    for _ in 0..16 {
        match stream.read(&mut sink) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn tune_sets_nodelay_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        tune(&accepted).unwrap();
        let sock = SockRef::from(&accepted);
        assert!(accepted.nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE);
        assert_eq!(sock.tcp_keepalive_interval().unwrap(), KEEPALIVE_INTERVAL);
        assert_eq!(sock.tcp_keepalive_retries().unwrap(), KEEPALIVE_RETRIES);
        assert_eq!(sock.tcp_user_timeout().unwrap(), Some(USER_TIMEOUT));
    }

    /// The soft limit starts low (as under a default `ulimit -n`) and ends at the hard limit.
    #[test]
    fn fd_limit_is_raised_to_the_hard_limit() {
        const NOFILE: rlimit::Resource = rlimit::Resource::NOFILE;
        let (_, hard) = rlimit::getrlimit(NOFILE).unwrap();
        // Lower the soft limit first, or a process that already runs at its hard limit would pass
        // without anything being raised. Half of 1024 leaves the other tests of this process
        // plenty of descriptors for the moment it lasts.
        let low = hard.min(1024) / 2;
        rlimit::setrlimit(NOFILE, low, hard).unwrap();
        let raised = raise_fd_limit().unwrap();
        let (soft, _) = rlimit::getrlimit(NOFILE).unwrap();
        assert!(raised > low, "soft limit stayed at {raised}");
        assert_eq!(soft, raised, "the reported limit is not the one in force");
        if hard != rlimit::INFINITY {
            assert_eq!(soft, hard);
        }
    }

    #[test]
    fn emfile_counts_as_exhaustion() {
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(24)));
        assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(104)));
    }
}
