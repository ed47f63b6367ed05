//! TLS beside plaintext: real TLS clients (rustls here, and `openssl s_client` as a child
//! process) against the real binary, with throwaway certificates made by rcgen in each test.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;

use futures_rustls::rustls::crypto::ring;
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName};
use futures_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use common::cert::Cert;
use common::{Client, Lines, Server, TIMEOUT};

/// A server with a TLS listener (and a plaintext one unless `--listen none` is among `extra`).
struct TlsServer {
    server: Server,
    tls: SocketAddr,
}

impl TlsServer {
    fn start(cert: &Cert, extra: &[&str]) -> TlsServer {
        let dir = tempfile::tempdir().expect("tempdir");
        cert.write_to(dir.path());
        let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
        let (db, cert_file, key_file) = (path("chat.db"), path("cert.pem"), path("key.pem"));
        let mut args = vec!["--db", &db, "--tls-listen", "127.0.0.1:0"];
        args.extend(["--tls-cert", &cert_file, "--tls-key", &key_file]);
        if !extra.contains(&"--listen") {
            args.extend(["--listen", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        let log = dir.path().join("server.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_smolchat"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start smolchat");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Every line goes to the test, which stops listening after the TLS line; the rest
            // is drained so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut plain = None;
        let tls = loop {
            let line = rx.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "server did not print its TLS address; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                )
            });
            if let Some(addr) = line.strip_prefix("listening for TLS on ") {
                break addr.parse::<SocketAddr>().expect("TLS address");
            }
            let addr = line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected stdout line {line:?}"));
            plain = Some(addr.parse::<SocketAddr>().expect("address"));
        };
        TlsServer {
            // With --listen none, the harness's `addr` is the TLS one, so it is never connected
            // to in plaintext by mistake without being noticed: the tests below do not use it.
            server: Server {
                child,
                addr: plain.unwrap_or(tls),
                dir,
                log,
            },
            tls,
        }
    }

    fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    /// A TLS client trusting `cert` that registers `name`.
    fn join(&self, cert: &Cert, name: &str) -> TlsClient {
        let mut c = TlsClient::connect(self.tls, &[cert], Versions::Any).expect("TLS handshake");
        c.register(name);
        c
    }
}

#[derive(Clone, Copy)]
enum Versions {
    Any,
    Tls12,
}

/// A line-based client over rustls (blocking).
struct TlsClient {
    reader: BufReader<StreamOwned<ClientConnection, TcpStream>>,
    seen: Vec<String>,
}

impl TlsClient {
    /// Connects and completes the handshake, trusting only `trusted`.
    fn connect(
        addr: SocketAddr,
        trusted: &[&Cert],
        versions: Versions,
    ) -> Result<TlsClient, String> {
        let mut roots = RootCertStore::empty();
        for cert in trusted {
            roots.add(cert.der.clone()).expect("trust anchor");
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()));
        let builder = match versions {
            Versions::Any => builder.with_safe_default_protocol_versions(),
            Versions::Tls12 => builder.with_protocol_versions(&[&rustls::version::TLS12]),
        }
        .expect("protocol versions");
        let config = builder.with_root_certificates(roots).with_no_client_auth();
        let name = ServerName::try_from("localhost").expect("server name");
        let mut conn = ClientConnection::new(Arc::new(config), name).expect("client connection");
        let mut sock = TcpStream::connect(addr).expect("connect");
        sock.set_read_timeout(Some(TIMEOUT)).expect("timeout");
        while conn.is_handshaking() {
            conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
        }
        Ok(TlsClient {
            reader: BufReader::new(StreamOwned::new(conn, sock)),
            seen: Vec::new(),
        })
    }

    /// The certificate the server presented.
    fn peer_cert(&self) -> CertificateDer<'static> {
        let conn = &self.reader.get_ref().conn;
        conn.peer_certificates().expect("peer certificates")[0].clone()
    }

    fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.reader.get_ref().conn.protocol_version()
    }

    fn register(&mut self, name: &str) {
        self.expect("What is your name?");
        self.send(name);
        self.expect(&format!("Welcome, {name}!"));
        self.expect("--- end of history");
    }

    fn send(&mut self, line: &str) {
        let stream = self.reader.get_mut();
        stream
            .write_all(format!("{line}\n").as_bytes())
            .expect("send");
        stream.flush().expect("flush");
    }

    fn sync(&mut self) {
        self.send("/who");
        self.expect("users in ");
    }
}

impl Lines for TlsClient {
    fn line(&mut self) -> Option<String> {
        let buf = common::read_raw_line(&mut self.reader, &self.seen)?;
        let line = String::from_utf8(buf).expect("UTF-8");
        self.seen.push(line.clone());
        Some(line)
    }

    fn seen(&self) -> &[String] {
        &self.seen
    }
}

/// A TLS user and a plaintext user share a room, both ways; TLS 1.2 works as well as 1.3.
#[test]
fn tls_and_plaintext_users_chat_in_one_room() {
    let cert = Cert::new();
    let s = TlsServer::start(&cert, &[]);
    let mut alice = s.join(&cert, "alice");
    assert_eq!(alice.version(), Some(rustls::ProtocolVersion::TLSv1_3));
    let mut bob = s.server.join("bob");
    alice.expect("* bob joined");
    bob.send("hello over plaintext");
    alice.expect("bob: hello over plaintext");
    alice.send("hello over TLS");
    bob.expect("alice: hello over TLS");

    let mut carol = TlsClient::connect(s.tls, &[&cert], Versions::Tls12).expect("TLS 1.2");
    assert_eq!(carol.version(), Some(rustls::ProtocolVersion::TLSv1_2));
    carol.register("carol");
    carol.send("hello over TLS 1.2");
    alice.expect("carol: hello over TLS 1.2");
    bob.expect("carol: hello over TLS 1.2");
    carol.send("/quit");
    carol.expect("bye");
    assert_eq!(carol.line(), None, "closed after bye");
}

/// `openssl s_client -quiet`, as a user would run it, joins and chats with a plaintext user.
#[test]
fn openssl_s_client_chats_with_a_plaintext_user() {
    let Some(openssl) = common::require("openssl") else {
        return;
    };
    let cert = Cert::new();
    let s = TlsServer::start(&cert, &[]);
    let mut bob = s.server.join("bob");
    let mut child = Command::new(openssl)
        .args(["s_client", "-quiet", "-connect", &s.tls.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut expect = |needle: &str| loop {
        let line = rx
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("s_client never printed {needle:?}; seen: {seen:?}"));
        seen.push(line.clone());
        if line.contains(needle) {
            break;
        }
    };
    expect("What is your name?");
    writeln!(stdin, "olga").expect("type");
    expect("--- end of history");
    writeln!(stdin, "hello from openssl").expect("type");
    bob.expect("olga: hello from openssl");
    bob.send("hi olga");
    expect("bob: hi olga");
    writeln!(stdin, "/quit").expect("type");
    expect("bye");
    drop(stdin);
    let _ = child.wait();
}

/// A bad certificate or key file at start is one line naming the file and a non-zero exit.
#[test]
fn bad_certificate_or_key_is_one_line_and_a_failed_start() {
    let cert = Cert::new();
    let dir = tempfile::tempdir().expect("tempdir");
    cert.write_to(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate\n").expect("write");
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&other_key, Cert::new().key_pem).expect("write");
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let (good_cert, good_key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let missing = dir.path().join("missing.pem");
    let cases = [
        (path(&garbage), path(&good_key), path(&garbage)),
        (path(&missing), path(&good_key), path(&missing)),
        (path(&good_cert), path(&garbage), path(&garbage)),
        (path(&good_cert), path(&other_key), path(&other_key)),
    ];
    for (cert_file, key_file, culprit) in cases {
        let db = path(&dir.path().join("chat.db"));
        let out = Command::new(env!("CARGO_BIN_EXE_smolchat"))
            .args([
                "--db",
                &db,
                "--listen",
                "127.0.0.1:0",
                "--tls-listen",
                "127.0.0.1:0",
            ])
            .args(["--tls-cert", &cert_file, "--tls-key", &key_file])
            .stdin(Stdio::null())
            .output()
            .expect("run smolchat");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {cert_file} {key_file}");
        assert!(out.stdout.is_empty(), "it listened: {:?}", out.stdout);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(lines[0].contains(&culprit), "names {culprit}: {stderr}");
    }
}

/// Plaintext to the TLS port gets one plaintext line and is closed; a client that never starts
/// the handshake is closed at the registration deadline; others chat on, and the log has one
/// warning for all of it.
#[test]
fn plaintext_and_silence_on_the_tls_port_are_closed_without_harm() {
    let cert = Cert::new();
    let s = TlsServer::start(&cert, &["--register-timeout", "3"]);
    let mut alice = s.join(&cert, "alice");
    let mut bob = s.server.join("bob");

    let silent = Client::connect(s.tls);
    for _ in 0..5 {
        let mut nc = Client::connect(s.tls);
        nc.send("alice");
        let lines = nc.expect_eof();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("this port speaks TLS"), "{lines:?}");
    }
    // Bytes that start like TLS but are not: the handshake fails, the connection closes.
    let mut junk = Client::connect(s.tls);
    junk.send_raw(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);
    let mut rest = Vec::new();
    let _ = junk.stream.read_to_end(&mut rest);

    let mut silent = silent;
    assert!(silent.expect_eof().is_empty(), "silence gets no reply");

    alice.send("still here");
    bob.expect("alice: still here");
    bob.send("me too");
    alice.expect("bob: me too");
    let log = s.server.log();
    let warnings = log.lines().filter(|l| l.contains("TLS handshake")).count();
    assert_eq!(warnings, 1, "one warning line for 7 failures:\n{log}");
}

/// SIGHUP loads a new certificate for new clients; a client connected before stays and chats;
/// a bad new pair is refused and the last good one kept.
#[test]
fn sighup_reloads_the_certificate_without_dropping_anybody() {
    let (old, new) = (Cert::new(), Cert::new());
    let s = TlsServer::start(&old, &[]);
    let mut before = s.join(&old, "before");
    assert_eq!(before.peer_cert(), old.der);

    new.write_to(s.dir());
    s.server.signal("HUP");
    s.server.wait_log("reloaded TLS certificate");
    let mut after = TlsClient::connect(s.tls, &[&old, &new], Versions::Any).expect("handshake");
    assert_eq!(
        after.peer_cert(),
        new.der,
        "a new client sees the new certificate"
    );
    after.register("after");
    after.send("new cert here");
    before.expect("after: new cert here");
    before.send("old connection here");
    after.expect("before: old connection here");

    std::fs::write(s.dir().join("cert.pem"), "garbage\n").expect("write");
    s.server.signal("HUP");
    s.server.wait_log("still using the previous certificate");
    let mut third = TlsClient::connect(s.tls, &[&new], Versions::Any).expect("handshake");
    assert_eq!(third.peer_cert(), new.der, "the last good pair stays");
    third.register("third");
    before.sync();
    after.sync();
    third.sync();
}

/// `--listen none` serves TLS only: only the TLS address is printed, and TLS users chat.
#[test]
fn listen_none_serves_tls_only() {
    let cert = Cert::new();
    let s = TlsServer::start(&cert, &["--listen", "none"]);
    assert_eq!(s.server.addr, s.tls, "no plaintext address was printed");
    let mut alice = s.join(&cert, "alice");
    let mut bob = s.join(&cert, "bob");
    alice.send("tls only");
    bob.expect("alice: tls only");
    assert!(
        s.server.log().contains("listening on TLS on"),
        "{}",
        s.server.log()
    );
}

/// Connections in their TLS handshake hold places among those waiting for a name: past
/// `--max-unregistered`, a newcomer evicts the oldest (closed without a word: there is no TLS
/// channel yet to say why on), and a TLS user still gets in.
#[test]
fn tls_handshakes_in_progress_count_as_waiting_for_a_name() {
    let cert = Cert::new();
    let s = TlsServer::start(&cert, &["--max-clients", "10", "--max-unregistered", "2"]);
    // Both on the TLS port, so they are accepted in order, before the newcomer.
    let mut first = Client::connect(s.tls);
    let _second = Client::connect(s.tls);
    let mut alice = s.join(&cert, "alice");
    assert!(first.expect_eof().is_empty(), "evicted silently");
    s.server.wait_log("evicted: --max-unregistered");
    let mut bob = s.server.join("bob");
    alice.expect("* bob joined");
    bob.send("hi");
    alice.expect("bob: hi");
}

/// A connection refused on the TLS port (here: over `--max-per-ip`) is closed without a byte:
/// a plaintext reason would reach the TLS client as a corrupt record. The log says why.
#[test]
fn refusals_on_the_tls_port_are_silent_closes() {
    let cert = Cert::new();
    let s = TlsServer::start(&cert, &["--max-per-ip", "1", "--limit-loopback"]);
    let mut alice = s.join(&cert, "alice");
    // A raw connection gets no bytes at all, only the end of the stream.
    let mut raw = TcpStream::connect(s.tls).expect("connect");
    raw.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    assert!(got.is_empty(), "plaintext on the TLS port: {got:?}");
    // A TLS client sees the connection closed, not a broken record.
    match TlsClient::connect(s.tls, &[&cert], Versions::Any) {
        Ok(_) => panic!("admitted over --max-per-ip"),
        Err(e) => assert!(!e.contains("corrupt"), "{e}"),
    }
    s.server
        .wait_log("refused: too many connections from your address");
    // The plaintext port still says why.
    let mut plain = Client::connect(s.server.addr);
    assert_eq!(
        plain.expect_eof(),
        vec!["too many connections from your address (max 1)".to_owned()]
    );
    alice.sync();
}
