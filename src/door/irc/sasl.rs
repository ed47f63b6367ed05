//! SASL PLAIN over `AUTHENTICATE` (IRCv3 `sasl` 3.1/3.2), the IRC door's password login.
//!
//! `AUTHENTICATE PLAIN` is answered `AUTHENTICATE +`; the client then sends its credentials in
//! base64, in chunks of 400 bytes (a chunk of exactly 400 means more follows, and `+` is an
//! empty last chunk). `AUTHENTICATE *` aborts (`906`). The decoded blob is
//! `authzid NUL authcid NUL password` (RFC 4616); an authorization identity other than the
//! authentication identity is refused, since nobody here may act as another account.
//!
//! This part only decodes: it hands [`Credentials`] to the wiring, which checks them against
//! the accounts (the same password check, transport rule and login spacing as the line door's
//! prompt) and then calls [`Sasl::succeeded`] or [`Sasl::failed`].

use base64ct::{Base64, Encoding};

use crate::accounts::password::Secret;
use crate::door::irc::message::Writer;
use crate::door::irc::numerics::{
    ERR_SASLABORTED, ERR_SASLALREADY, ERR_SASLFAIL, ERR_SASLTOOLONG, RPL_LOGGEDIN, RPL_SASLMECHS,
    RPL_SASLSUCCESS,
};

/// Bytes of base64 per `AUTHENTICATE` chunk (the specification's fixed size).
pub const CHUNK: usize = 400;

/// The most base64 a PLAIN exchange may send: eight chunks, far beyond any name and password
/// pair. Not configurable; more is answered `905` and the exchange ends.
pub const MAX_BLOB: usize = 8 * CHUNK;

/// Credentials a client sent, for the wiring to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    /// The account name (the authentication identity).
    pub account: String,
    pub password: Secret,
}

/// What an `AUTHENTICATE` line asks of the wiring.
#[derive(Debug, Clone, PartialEq)]
pub enum SaslStep {
    /// Replies were written; nothing else to do.
    Replied,
    /// Check these credentials, then call [`Sasl::succeeded`] or [`Sasl::failed`].
    Verify(Credentials),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Idle,
    /// After `AUTHENTICATE PLAIN`: the base64 received so far.
    Receiving(String),
    /// Credentials handed to the wiring, answer pending.
    Checking,
    /// Logged in.
    Done,
}

/// One connection's SASL exchange.
#[derive(Debug, Clone)]
pub struct Sasl {
    state: State,
    failures: u32,
}

impl Default for Sasl {
    fn default() -> Sasl {
        Sasl {
            state: State::Idle,
            failures: 0,
        }
    }
}

impl Sasl {
    pub fn new() -> Sasl {
        Sasl::default()
    }

    /// Whether an exchange is under way (registration waits for it).
    pub fn in_progress(&self) -> bool {
        matches!(self.state, State::Receiving(_) | State::Checking)
    }

    /// Whether the client logged in.
    pub fn logged_in(&self) -> bool {
        self.state == State::Done
    }

    /// Failed attempts on this connection, for the wiring's limit.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Handles `AUTHENTICATE arg` from `client` (`*` before a nick is known).
    pub fn authenticate(
        &mut self,
        arg: &str,
        server: &str,
        client: &str,
        out: &mut Vec<u8>,
    ) -> SaslStep {
        if arg == "*" {
            if self.state != State::Done {
                self.state = State::Idle;
            }
            ERR_SASLABORTED.write(out, server, client, &[], &[]);
            return SaslStep::Replied;
        }
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Done => {
                self.state = State::Done;
                ERR_SASLALREADY.write(out, server, client, &[], &[]);
                SaslStep::Replied
            }
            State::Checking => {
                // A line while the check runs is a client ahead of itself: the exchange is over.
                self.fail(server, client, out);
                SaslStep::Replied
            }
            State::Idle if arg.eq_ignore_ascii_case("PLAIN") => {
                self.state = State::Receiving(String::new());
                Writer::new(out, "", Some(server), "AUTHENTICATE")
                    .param("+")
                    .end();
                SaslStep::Replied
            }
            State::Idle => {
                RPL_SASLMECHS.write(out, server, client, &["PLAIN"], &[]);
                self.fail(server, client, out);
                SaslStep::Replied
            }
            State::Receiving(mut blob) => {
                if arg.len() > CHUNK || blob.len() + arg.len() > MAX_BLOB {
                    self.failures += 1;
                    ERR_SASLTOOLONG.write(out, server, client, &[], &[]);
                    return SaslStep::Replied;
                }
                if arg != "+" {
                    blob.push_str(arg);
                }
                if arg.len() == CHUNK {
                    self.state = State::Receiving(blob);
                    return SaslStep::Replied;
                }
                match decode_plain(&blob) {
                    Some(credentials) => {
                        self.state = State::Checking;
                        SaslStep::Verify(credentials)
                    }
                    None => {
                        self.fail(server, client, out);
                        SaslStep::Replied
                    }
                }
            }
        }
    }

    /// The credentials were right: writes `900` and `903`. `mask` is the client's
    /// `nick!user@host`, `*` while unknown.
    pub fn succeeded(
        &mut self,
        account: &str,
        server: &str,
        client: &str,
        mask: &str,
        out: &mut Vec<u8>,
    ) {
        self.state = State::Done;
        RPL_LOGGEDIN.write(
            out,
            server,
            client,
            &[mask, account],
            &[("account", account)],
        );
        RPL_SASLSUCCESS.write(out, server, client, &[], &[]);
    }

    /// The credentials were wrong (or refused by a rule): writes `904`.
    pub fn failed(&mut self, server: &str, client: &str, out: &mut Vec<u8>) {
        self.fail(server, client, out);
    }

    fn fail(&mut self, server: &str, client: &str, out: &mut Vec<u8>) {
        self.state = State::Idle;
        self.failures += 1;
        ERR_SASLFAIL.write(out, server, client, &[], &[]);
    }
}

/// Decodes a PLAIN blob: `authzid NUL authcid NUL password`, with an empty authzid or one
/// equal to the authcid.
fn decode_plain(blob: &str) -> Option<Credentials> {
    let mut buf = vec![0; blob.len() / 4 * 3 + 3];
    let bytes = Base64::decode(blob, &mut buf).ok()?;
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split('\0');
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authcid.is_empty() || password.is_empty() {
        return None;
    }
    if !authzid.is_empty() && authzid != authcid {
        return None;
    }
    Some(Credentials {
        account: authcid.to_owned(),
        password: Secret::new(password.to_owned()),
    })
}

/// `authzid NUL authcid NUL password` in base64, split in 400-byte `AUTHENTICATE` arguments
/// (with a final `+` when the last chunk is full): what a client sends. For tests and the
/// test harness.
pub fn plain_chunks(account: &str, password: &str) -> Vec<String> {
    let blob = Base64::encode_string(format!("{account}\0{account}\0{password}").as_bytes());
    let mut chunks: Vec<String> = blob
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if chunks.last().is_none_or(|c| c.len() == CHUNK) {
        chunks.push("+".into());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::testing::commands;

    fn send(sasl: &mut Sasl, arg: &str) -> (SaslStep, Vec<String>) {
        let mut out = Vec::new();
        let step = sasl.authenticate(arg, "srv", "*", &mut out);
        (step, commands(&out))
    }

    /// irctest testPlain: `AUTHENTICATE PLAIN`, `+`, then `jilles\0jilles\0sesame`.
    #[test]
    fn plain_in_one_chunk() {
        let mut sasl = Sasl::new();
        let mut out = Vec::new();
        sasl.authenticate("PLAIN", "srv", "*", &mut out);
        assert_eq!(out, b":srv AUTHENTICATE +\r\n");
        assert!(sasl.in_progress());
        let (step, _) = send(&mut sasl, "amlsbGVzAGppbGxlcwBzZXNhbWU=");
        let SaslStep::Verify(c) = step else {
            panic!("{step:?}")
        };
        assert_eq!(c.account, "jilles");
        assert_eq!(c.password.expose(), "sesame");
        let mut out = Vec::new();
        sasl.succeeded("jilles", "srv", "*", "*", &mut out);
        assert_eq!(commands(&out), ["900", "903"]);
        assert!(sasl.logged_in());
        assert_eq!(send(&mut sasl, "PLAIN").1, ["907"]);
    }

    /// irctest testPlainNoAuthzid: an empty authorization identity is fine.
    #[test]
    fn plain_without_authzid() {
        let mut sasl = Sasl::new();
        send(&mut sasl, "plain");
        let (step, _) = send(&mut sasl, "AGppbGxlcwBzZXNhbWU=");
        assert!(matches!(step, SaslStep::Verify(c) if c.account == "jilles"));
    }

    /// irctest testPlainLarge and testPlainLargeEquals400: 400-byte chunks continue, a short
    /// chunk or `+` ends.
    #[test]
    fn chunks_of_400_continue() {
        for password in ["bar".repeat(100), "bar".repeat(97), "é".repeat(100)] {
            let chunks = plain_chunks("foo", &password);
            let mut sasl = Sasl::new();
            send(&mut sasl, "PLAIN");
            for (i, chunk) in chunks.iter().enumerate() {
                let (step, replies) = send(&mut sasl, chunk);
                if i + 1 < chunks.len() {
                    assert_eq!((step, replies), (SaslStep::Replied, vec![]));
                } else {
                    let SaslStep::Verify(c) = step else {
                        panic!("{step:?}")
                    };
                    assert_eq!(c.password.expose(), password);
                }
            }
        }
        assert_eq!(plain_chunks("foo", &"bar".repeat(97)).last().unwrap(), "+");
    }

    #[test]
    fn refusals() {
        let mut sasl = Sasl::new();
        assert_eq!(send(&mut sasl, "SCRAM-SHA-256").1, ["908", "904"]);
        send(&mut sasl, "PLAIN");
        assert_eq!(send(&mut sasl, "*").1, ["906"]);
        assert!(!sasl.in_progress());
        send(&mut sasl, "PLAIN");
        assert_eq!(send(&mut sasl, &"A".repeat(401)).1, ["905"]);
        send(&mut sasl, "PLAIN");
        assert_eq!(send(&mut sasl, "not base64!").1, ["904"]);
        send(&mut sasl, "PLAIN");
        // Acting as another account is refused.
        let other = Base64::encode_string(b"admin\0jilles\0sesame");
        assert_eq!(send(&mut sasl, &other).1, ["904"]);
        send(&mut sasl, "PLAIN");
        for _ in 0..8 {
            send(&mut sasl, &"A".repeat(CHUNK));
        }
        assert_eq!(send(&mut sasl, "AAAA").1, ["905"]);
        assert!(sasl.failures() >= 4);
    }

    #[test]
    fn failed_check_answers_904_and_allows_a_retry() {
        let mut sasl = Sasl::new();
        send(&mut sasl, "PLAIN");
        send(&mut sasl, &plain_chunks("jilles", "millet")[0]);
        let mut out = Vec::new();
        sasl.failed("srv", "*", &mut out);
        assert_eq!(commands(&out), ["904"]);
        assert_eq!(send(&mut sasl, "PLAIN").1, ["AUTHENTICATE"]);
    }

    #[test]
    fn secrets_stay_hidden_in_debug_output() {
        let c = decode_plain(&Base64::encode_string(b"\0alice\0hunter22")).unwrap();
        assert!(!format!("{c:?}").contains("hunter22"));
    }
}
