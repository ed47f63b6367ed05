//! TLS: the certificate and key, the handshake, and reloading both on SIGHUP.
//!
//! A TLS connection is an ordinary session over a `TlsStream` (the session is generic over its
//! byte stream), so every limit applies to TLS users exactly as to plaintext ones. What is
//! particular to TLS lives here:
//!
//! - The configuration sits behind a lock as an `Arc<ServerConfig>`: a reload swaps in a new
//!   one, new handshakes use it, and connections already up keep the one they started with, so
//!   a certificate renewal disconnects nobody. A bad new pair is refused and the old one kept.
//! - The handshake runs in the connection's own task, under the registration deadline set at
//!   accept, so a client that never finishes it holds its place no longer than one that never
//!   chooses a name.
//! - Failed handshakes (plaintext on this port, scanners, timeouts) are a fact of life on the
//!   internet: each one is a `debug` line, and a `warn` line sums them up at most once a minute.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_rustls::rustls::crypto::ring;
use futures_rustls::rustls::pki_types::pem::{self, PemObject};
use futures_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use futures_rustls::rustls::{self, ServerConfig};
use futures_rustls::server::TlsStream;
use futures_rustls::TlsAcceptor;
use log::{debug, info, warn};
use smol::future;
use smol::{Async, Timer};

/// A TLS connection as the session sees it. Boxed: the session keeps the stream it is given
/// as well as the connection built from it for its whole life (an `async fn` holds its
/// arguments), so inline the rustls connection state would be stored twice in every task.
pub type Stream = Box<TlsStream<Async<TcpStream>>>;

/// Most encrypted output rustls may hold for a client whose socket is full: one full-size
/// record. Past it, writes wait for the socket, so output queues in the session's outbox,
/// which `--outbox-bytes` and `--outbox-total-bytes` bound, not unaccounted inside rustls
/// (whose default is 64 KiB per connection).
const SEND_BUFFER_LIMIT: usize = 16 * 1024;

/// The first byte of every TLS connection: a handshake record. Anything else is a client that
/// does not speak TLS, which gets one plaintext line saying so rather than silence.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The one plaintext line a client gets for speaking plaintext to a TLS port (before closing).
pub const TLS_ONLY: &str =
    "this port speaks TLS: connect with e.g. `openssl s_client -quiet -connect HOST:PORT`";

/// Shortest interval between two `warn` lines about failed handshakes.
const FAILURE_REPORT_EVERY: Duration = Duration::from_secs(60);

/// The TLS side of the server: where the certificate and key come from and the configuration
/// built from them.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
    failures: Failures,
}

impl Tls {
    /// Loads the certificate chain and key. The error is one line naming the file at fault.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, String> {
        let config = server_config(cert, key)?;
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            config: RwLock::new(Arc::new(config)),
            failures: Failures::default(),
        })
    }

    /// Re-reads the certificate and key. On success new handshakes use them; on failure nothing
    /// changes. Connections already established are never touched. Blocking file I/O: call it
    /// off the executor.
    pub fn reload(&self) -> Result<(), String> {
        let config = Arc::new(server_config(&self.cert, &self.key)?);
        match self.config.write() {
            Ok(mut current) => *current = config,
            // A panic while holding this lock can only have been in a plain assignment, so the
            // value is whole: replace it anyway.
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        info!(
            "reloaded TLS certificate {} and key {}",
            self.cert.display(),
            self.key.display()
        );
        Ok(())
    }

    fn current(&self) -> Arc<ServerConfig> {
        match self.config.read() {
            Ok(config) => config.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Runs the server side of the handshake on a fresh connection, until `deadline` or until
    /// `stopping` closes. `None` means the connection is done with: the failure has been
    /// recorded and the socket is closed when dropped.
    pub async fn handshake(
        &self,
        stream: Async<TcpStream>,
        peer: SocketAddr,
        deadline: Instant,
        stopping: &async_channel::Receiver<()>,
    ) -> Option<Stream> {
        let acceptor = TlsAcceptor::from(self.current());
        let attempt = async {
            // Peek rather than read, so that a TLS client's bytes stay for the handshake.
            let mut first = [0u8; 1];
            match stream.peek(&mut first).await {
                Ok(0) => return Err("closed before the handshake".to_owned()),
                Ok(_) if first[0] != TLS_HANDSHAKE_RECORD => {
                    say_tls_only(stream);
                    return Err("plaintext on the TLS port".to_owned());
                }
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
            acceptor
                .accept_with(stream, |conn| {
                    conn.set_buffer_limit(Some(SEND_BUFFER_LIMIT));
                })
                .await
                .map_err(|e| e.to_string())
        };
        let outcome = future::or(
            attempt,
            future::or(
                async {
                    Timer::at(deadline).await;
                    Err("no handshake in time".to_owned())
                },
                async {
                    let _ = stopping.recv().await;
                    Err("server shutting down".to_owned())
                },
            ),
        )
        .await;
        match outcome {
            Ok(stream) => Some(Box::new(stream)),
            Err(why) => {
                self.failures.record(peer, &why);
                None
            }
        }
    }
}

/// Builds the server configuration from PEM files: TLS 1.3 and 1.2 with the ring provider.
fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_error("certificate", cert, "CERTIFICATE", e))?;
    if chain.is_empty() {
        let e = pem::Error::NoItemsFound;
        return Err(pem_error("certificate", cert, "CERTIFICATE", e));
    }
    // PKCS#8, PKCS#1 (RSA) and SEC1 (EC) keys, whichever the file holds first.
    let private_key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error("key", key, "PRIVATE KEY", e))?;
    let provider = Arc::new(ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "TLS key {} does not belong to the certificate in {}",
                key.display(),
                cert.display()
            ),
            e => format!(
                "TLS certificate {} with key {}: {e}",
                cert.display(),
                key.display()
            ),
        })?;
    // Session tickets only speed up reconnecting, which a chat client does rarely; each one
    // sent costs a round of writes right after the handshake and a cache entry server-side.
    config.send_tls13_tickets = 0;
    // Connections live long: resuming saves little, and the session cache would be memory held
    // for clients that have left.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// One line about a PEM file that could not be used.
fn pem_error(what: &str, path: &Path, label: &str, e: pem::Error) -> String {
    let path = path.display();
    match e {
        pem::Error::Io(e) => format!("cannot read TLS {what} {path}: {e}"),
        pem::Error::NoItemsFound => format!("TLS {what} {path}: no {label} in the file (PEM)"),
        e => format!("TLS {what} {path}: not valid PEM: {e}"),
    }
}

/// Tells a client that spoke plaintext to the TLS port what to do instead, if the socket takes
/// the line at once, and closes the connection.
fn say_tls_only(stream: Async<TcpStream>) {
    if let Ok(stream) = stream.into_inner() {
        crate::net::socket::refuse(stream, TLS_ONLY);
    }
}

/// Counts failed handshakes between two `warn` lines.
#[derive(Default)]
struct Failures {
    since_report: AtomicU64,
    last_report: Mutex<Option<Instant>>,
}

impl Failures {
    fn record(&self, peer: SocketAddr, why: &str) {
        debug!("{peer}: TLS handshake failed: {why}");
        self.since_report.fetch_add(1, Ordering::Relaxed);
        // try_lock: a concurrent failure being reported covers this one too.
        let Ok(mut last) = self.last_report.try_lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < FAILURE_REPORT_EVERY) {
            return;
        }
        let n = self.since_report.swap(0, Ordering::Relaxed);
        match *last {
            None => warn!(
                "{peer}: TLS handshake failed: {why} (further failures: one line a minute, \
                 each at debug)"
            ),
            Some(t) => warn!(
                "{n} TLS handshakes failed in the last {} s (latest: {peer}: {why})",
                t.elapsed().as_secs()
            ),
        }
        *last = Some(Instant::now());
    }
}
