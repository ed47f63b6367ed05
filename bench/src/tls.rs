//! The bench's TLS mode: a client configuration that trusts any certificate, and the stream type
//! every client reads and writes whether it speaks TLS or not.
//!
//! Trusting any certificate is fine here and nowhere else: the bench only talks to loopback
//! (see `parse_loopback`), and what it measures is the server's cost per connection, not who
//! the server is.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_rustls::client::TlsStream;
use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::crypto::{self, ring, CryptoProvider};
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use futures_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, SignatureScheme};
use futures_rustls::TlsConnector;
use smol::io::{AsyncRead, AsyncWrite};
use smol::net::TcpStream;

/// How clients reach the server.
#[derive(Clone)]
pub enum Transport {
    Plain,
    /// TLS 1.3 or 1.2, any certificate accepted.
    Tls(TlsConnector),
}

impl Transport {
    /// The TLS transport, trusting any certificate.
    pub fn tls() -> Result<Transport, String> {
        let provider = Arc::new(ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS client setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth();
        Ok(Transport::Tls(TlsConnector::from(Arc::new(config))))
    }

    /// Wraps a connected socket: runs the TLS handshake in TLS mode.
    pub async fn wrap(&self, tcp: TcpStream) -> io::Result<Stream> {
        match self {
            Transport::Plain => Ok(Stream::Plain(tcp)),
            Transport::Tls(connector) => {
                let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
                let tls = connector.connect(name, tcp).await?;
                Ok(Stream::Tls(Arc::new(Mutex::new(tls))))
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Transport::Plain => "plaintext",
            Transport::Tls(_) => "TLS",
        }
    }
}

/// A client's connection, clonable so that its reading and writing halves can live in different
/// places. A TLS stream is shared behind a mutex held only for the length of one poll.
#[derive(Clone)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Arc<Mutex<TlsStream<TcpStream>>>),
}

impl Stream {
    /// Shuts down part of the underlying socket (TLS or not).
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.shutdown(how),
            Stream::Tls(tls) => lock(tls)?.get_ref().0.shutdown(how),
        }
    }
}

fn lock(
    tls: &Mutex<TlsStream<TcpStream>>,
) -> io::Result<std::sync::MutexGuard<'_, TlsStream<TcpStream>>> {
    tls.lock()
        .map_err(|_| io::Error::other("TLS stream lock poisoned"))
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => match lock(tls) {
                Ok(mut tls) => Pin::new(&mut *tls).poll_read(cx, buf),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => match lock(tls) {
                Ok(mut tls) => Pin::new(&mut *tls).poll_write(cx, buf),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => match lock(tls) {
                Ok(mut tls) => Pin::new(&mut *tls).poll_flush(cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_close(cx),
            Stream::Tls(tls) => match lock(tls) {
                Ok(mut tls) => Pin::new(&mut *tls).poll_close(cx),
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }
}

/// Accepts every certificate, but still checks the handshake signatures, so the server does the
/// same work as with a real client.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
