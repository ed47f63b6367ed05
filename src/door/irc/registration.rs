//! Connection registration: from the first byte to "ready to register".
//!
//! `NICK` and `USER` may come in either order; `PASS` before them gives an account password for
//! clients without SASL; `CAP LS`/`CAP REQ` hold registration until `CAP END`; a SASL exchange
//! holds it until it ends. When everything is there, [`Registration::handle`] returns
//! [`Step::Ready`] with what the hub needs (nick, user name, real name, capabilities, the
//! account SASL proved, a `PASS` password) and the wiring asks the hub, which either accepts
//! ([`Registration::finish`], then the welcome burst) or refuses the nick
//! ([`Registration::refused`]: `433`, and the client picks another).
//!
//! The wiring feeds no more lines between [`Step::Verify`] or [`Step::Ready`] and its answer,
//! so this part never sees a line while a check is out.
//!
//! Commands that need registration were already refused with `451` by
//! [`crate::door::irc::commands::check`]; so were unknown ones.

use crate::accounts::password::Secret;
use crate::door::irc::caps::{Cap, CapOutcome, CapSet, Caps};
use crate::door::irc::commands::Verb;
use crate::door::irc::message::{Message, Writer, MAX_BODY};
use crate::door::irc::names::{self, NickRefusal};
use crate::door::irc::numerics::{
    ERR_ERRONEUSNICKNAME, ERR_NEEDMOREPARAMS, ERR_NICKNAMEINUSE, ERR_NONICKNAMEGIVEN,
    ERR_NOTREGISTERED, ERR_SASLFAIL,
};
use crate::door::irc::sasl::{Credentials, Sasl, SaslStep};
use crate::names::Nick;

/// The longest user name kept from `USER` (advertised as `USERLEN`), `~` included. Not
/// configurable: it only appears in `nick!user@host`, and ten characters is the tradition.
pub const USERLEN: usize = 11;

/// The longest real name kept from `USER`, in bytes. Not configurable: it is shown in `WHO`,
/// `WHOIS` and `extended-join`, which must fit in a line.
pub const REALNAME_LEN: usize = 128;

/// Everything the hub needs to register an IRC client.
#[derive(Debug, Clone, PartialEq)]
pub struct Ready {
    pub nick: Nick,
    /// The user name shown in `nick!user@host`, with a `~` (no ident check is made).
    pub username: String,
    pub realname: String,
    pub caps: CapSet,
    /// The account SASL proved, if any.
    pub account: Option<String>,
    /// A `PASS` password, to be checked as the password of the nick's account.
    pub password: Option<Secret>,
}

/// What the wiring does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Replies, if any, were written.
    Continue,
    /// SASL credentials to check; answer with [`Registration::sasl_result`].
    Verify(Credentials),
    /// Register with the hub; answer with [`Registration::finish`] or
    /// [`Registration::refused`].
    Ready(Ready),
    /// `QUIT` before registration: send `ERROR` and close.
    Quit(Option<String>),
}

/// Why the hub refused a nick at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Someone connected has it (or its case fold).
    InUse,
    /// It looks like a connected user's or a registered name (same confusable skeleton).
    LookAlike,
    /// It is a registered name and no right password (SASL or `PASS`) came with it.
    Registered,
}

/// Where registration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// SASL credentials are being checked.
    Verifying,
    /// [`Step::Ready`] was returned; the hub decides.
    Deciding,
}

/// One connection's registration.
#[derive(Debug)]
pub struct Registration {
    caps: Caps,
    sasl: Sasl,
    nick: Option<Nick>,
    user: Option<(String, String)>,
    password: Option<Secret>,
    account: Option<String>,
    phase: Phase,
}

impl Registration {
    /// A new connection, offered the capabilities `offer`.
    pub fn new(offer: CapSet) -> Registration {
        Registration {
            caps: Caps::new(offer),
            sasl: Sasl::new(),
            nick: None,
            user: None,
            password: None,
            account: None,
            phase: Phase::Open,
        }
    }

    /// The name to address the client by in replies: its nick, or `*` before one is valid.
    pub fn client(&self) -> &str {
        self.nick.as_ref().map_or("*", Nick::as_str)
    }

    /// The capability negotiation so far.
    pub fn caps(&self) -> &Caps {
        &self.caps
    }

    /// Handles one command that passed the generic checks.
    pub fn handle(
        &mut self,
        verb: Verb,
        msg: &Message<'_>,
        server: &str,
        out: &mut Vec<u8>,
    ) -> Step {
        debug_assert_eq!(self.phase, Phase::Open, "no lines while a check is out");
        let client = self.client().to_owned();
        match verb {
            Verb::Cap => {
                if self.caps.handle(msg.params(), false, server, &client, out) == CapOutcome::End {
                    return self.ready_if_complete();
                }
                Step::Continue
            }
            Verb::Authenticate => {
                if !self.caps.has(Cap::Sasl) {
                    ERR_SASLFAIL.write(out, server, &client, &[], &[]);
                    return Step::Continue;
                }
                let arg = msg.param(0).unwrap_or("");
                match self.sasl.authenticate(arg, server, &client, out) {
                    SaslStep::Replied => Step::Continue,
                    SaslStep::Verify(credentials) => {
                        self.phase = Phase::Verifying;
                        Step::Verify(credentials)
                    }
                }
            }
            Verb::Pass => {
                self.password = msg.param(0).map(|p| Secret::new(p.to_owned()));
                Step::Continue
            }
            Verb::Nick => {
                match names::nick(msg.param(0).unwrap_or("")) {
                    Ok(nick) => {
                        self.nick = Some(nick);
                        return self.ready_if_complete();
                    }
                    Err(NickRefusal::Missing) => {
                        ERR_NONICKNAMEGIVEN.write(out, server, &client, &[], &[]);
                    }
                    Err(refusal) => {
                        let raw = crate::door::irc::caps::truncate(msg.param(0).unwrap_or(""), 64);
                        let shown = if names::irc_safe(raw) { raw } else { "*" };
                        ERR_ERRONEUSNICKNAME.write(
                            out,
                            server,
                            &client,
                            &[shown],
                            &[("reason", &refusal.reason())],
                        );
                    }
                }
                Step::Continue
            }
            Verb::User => {
                let params = msg.params();
                let (username, realname) = (params[0], params[3]);
                if username.is_empty() || realname.trim().is_empty() {
                    ERR_NEEDMOREPARAMS.write(out, server, &client, &["USER"], &[]);
                    return Step::Continue;
                }
                self.user = Some((user_name(username), real_name(realname)));
                self.ready_if_complete()
            }
            Verb::Ping => {
                pong(out, server, msg.param(0).unwrap_or(""));
                Step::Continue
            }
            Verb::Pong => Step::Continue,
            Verb::Quit => Step::Quit(msg.param(0).map(str::to_owned)),
            _ => {
                ERR_NOTREGISTERED.write(out, server, &client, &[], &[]);
                Step::Continue
            }
        }
    }

    /// The answer to [`Step::Verify`]: `Some(account)` (its canonical spelling) when the
    /// credentials were right. `host` completes the `nick!user@host` of `900`.
    pub fn sasl_result(
        &mut self,
        account: Option<&str>,
        host: &str,
        server: &str,
        out: &mut Vec<u8>,
    ) -> Step {
        self.phase = Phase::Open;
        let client = self.client().to_owned();
        match account {
            Some(account) => {
                let user = self.user.as_ref().map_or("*", |(u, _)| u.as_str());
                let mask = format!("{client}!{user}@{host}");
                self.sasl.succeeded(account, server, &client, &mask, out);
                self.account = Some(account.to_owned());
                self.ready_if_complete()
            }
            None => {
                self.sasl.failed(server, &client, out);
                Step::Continue
            }
        }
    }

    /// Failed SASL attempts, for the wiring's limit (the line door closes after three).
    pub fn sasl_failures(&self) -> u32 {
        self.sasl.failures()
    }

    /// The hub refused the nick of [`Step::Ready`]: writes `433`; the client sends another
    /// `NICK`.
    pub fn refused(&mut self, taken: Taken, server: &str, out: &mut Vec<u8>) {
        self.phase = Phase::Open;
        if let Some(nick) = self.nick.take() {
            let text = match taken {
                Taken::InUse => ERR_NICKNAMEINUSE.text,
                Taken::LookAlike => "Nickname looks too much like one in use or registered",
                Taken::Registered => "Nickname is registered: log in with SASL (or PASS) to use it",
            };
            ERR_NICKNAMEINUSE.write_text(out, server, "*", &[nick.as_str()], text);
        }
    }

    /// The wiring declined the nick of [`Step::Ready`] with a reply of its own (a banned
    /// nick's `432`, a wrong password's `464`): registration is open again, and the client
    /// sends another `NICK` (and `PASS`), as after [`Registration::refused`].
    pub fn declined(&mut self) {
        self.phase = Phase::Open;
        self.nick = None;
    }

    /// The hub accepted [`Step::Ready`]: the negotiated capabilities and the SASL state go on
    /// with the registered connection.
    pub fn finish(self) -> (Caps, Sasl) {
        (self.caps, self.sasl)
    }

    fn ready_if_complete(&mut self) -> Step {
        let complete = self.phase == Phase::Open
            && !self.caps.holds_registration()
            && !self.sasl.in_progress();
        match (&self.nick, &self.user) {
            (Some(nick), Some((username, realname))) if complete => {
                self.phase = Phase::Deciding;
                Step::Ready(Ready {
                    nick: nick.clone(),
                    username: username.clone(),
                    realname: realname.clone(),
                    caps: self.caps.enabled(),
                    account: self.account.clone(),
                    password: self.password.clone(),
                })
            }
            _ => Step::Continue,
        }
    }
}

/// Writes `PONG server token`: the answer to `PING token`. A token too long to come back in
/// a 512-byte line (a 510-byte `PING` is valid) is cut to fit, on a character boundary.
pub fn pong(out: &mut Vec<u8>, server: &str, token: &str) {
    // `:server PONG server :token` and CR LF.
    let room = MAX_BODY.saturating_sub(2 * server.len() + ":  PONG :".len());
    let token = crate::door::irc::caps::truncate(token, room);
    Writer::new(out, "", Some(server), "PONG")
        .param(server)
        .last(token);
}

/// The user name shown in masks: `~` and the letters, digits, `.`, `_` and `-` of what the
/// client sent, at most [`USERLEN`] in all.
fn user_name(raw: &str) -> String {
    let kept: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(USERLEN - 1)
        .collect();
    format!("~{}", if kept.is_empty() { "user" } else { &kept })
}

/// The real name as kept: sanitized like any text and at most [`REALNAME_LEN`] bytes.
fn real_name(raw: &str) -> String {
    let clean = crate::door::irc::format::from_irc(raw);
    crate::door::irc::caps::truncate(clean.trim(), REALNAME_LEN).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::caps::default_offer;
    use crate::door::irc::commands::check;
    use crate::door::irc::message::parse;
    use crate::door::irc::sasl::plain_chunks;
    use crate::door::irc::testing::commands;

    /// Feeds `lines` through the generic checks and the registration; returns the reply
    /// commands and the last step.
    fn feed(reg: &mut Registration, lines: &[&str]) -> (Vec<String>, Step) {
        let mut out = Vec::new();
        let mut step = Step::Continue;
        for line in lines {
            let msg = parse(line.as_bytes()).unwrap();
            step = match check(&msg, false, false) {
                Ok(verb) => reg.handle(verb, &msg, "srv", &mut out),
                Err(refusal) => {
                    refusal.write(&mut out, "srv", reg.client(), msg.command);
                    Step::Continue
                }
            };
        }
        (commands(&out), step)
    }

    fn ready(step: Step) -> Ready {
        match step {
            Step::Ready(ready) => ready,
            other => panic!("not ready: {other:?}"),
        }
    }

    #[test]
    fn nick_and_user_in_either_order() {
        for lines in [
            ["NICK foo", "USER u s e :Real Name"],
            ["USER u s e :Real Name", "NICK foo"],
        ] {
            let mut reg = Registration::new(default_offer());
            let (replies, step) = feed(&mut reg, &lines);
            assert!(replies.is_empty());
            let r = ready(step);
            assert_eq!(
                (r.nick.as_str(), r.username.as_str(), r.realname.as_str()),
                ("foo", "~u", "Real Name")
            );
        }
    }

    /// irctest cap testNoReq and testReqUnavailable: `CAP LS 302` holds registration until
    /// `CAP END`, whatever was requested.
    #[test]
    fn cap_holds_registration_until_end() {
        let mut reg = Registration::new(default_offer());
        let (_, step) = feed(
            &mut reg,
            &[
                "CAP LS 302",
                "USER foo foo foo :foo",
                "NICK foo",
                "CAP REQ :foo",
            ],
        );
        assert_eq!(step, Step::Continue);
        let (_, step) = feed(&mut reg, &["CAP END"]);
        assert!(ready(step).caps.contains(Cap::CapNotify));
    }

    /// irctest testEmptyRealname, testStarNick, testEmptyNick.
    #[test]
    fn refusals_before_registration() {
        let mut reg = Registration::new(default_offer());
        assert_eq!(
            feed(&mut reg, &["NICK foo", "USER username * * :"]).0,
            ["461"]
        );
        assert_eq!(feed(&mut reg, &["NICK *"]).0, ["432"]);
        assert_eq!(feed(&mut reg, &["NICK :"]).0, ["431"]);
        assert_eq!(
            feed(&mut reg, &["JOIN #a", "FOO", "PRIVMSG a :b"]).0,
            ["451", "451", "451"]
        );
        assert_eq!(feed(&mut reg, &["PING x"]).0, ["PONG"]);
        assert_eq!(
            feed(&mut reg, &["QUIT :bye"]).1,
            Step::Quit(Some("bye".into()))
        );
        let (_, step) = feed(&mut reg, &["NICK valid", "USER u s e r"]);
        assert_eq!(ready(step).nick.as_str(), "valid");
    }

    /// A nick the wiring declined (a wrong `PASS`, a banned nick) leaves registration open:
    /// the next `NICK` is ready again.
    #[test]
    fn a_declined_nick_lets_the_client_try_again() {
        let mut reg = Registration::new(default_offer());
        ready(feed(&mut reg, &["PASS wrong", "NICK foo", "USER u s e r"]).1);
        reg.declined();
        assert_eq!(reg.client(), "*");
        let r = ready(feed(&mut reg, &["PASS right", "NICK foo"]).1);
        assert_eq!(
            r.password.map(|p| p.expose().to_owned()).as_deref(),
            Some("right")
        );
    }

    #[test]
    fn a_taken_nick_is_answered_433_and_another_tried() {
        let mut reg = Registration::new(default_offer());
        ready(feed(&mut reg, &["NICK foo", "USER u s e r"]).1);
        let mut out = Vec::new();
        reg.refused(Taken::InUse, "srv", &mut out);
        assert_eq!(out, b":srv 433 * foo :Nickname is already in use\r\n");
        assert_eq!(reg.client(), "*");
        assert_eq!(
            ready(feed(&mut reg, &["NICK foo2"]).1).nick.as_str(),
            "foo2"
        );
    }

    /// irctest sasl and connectClient: SASL before NICK and USER, inside CAP.
    #[test]
    fn sasl_inside_cap_negotiation() {
        let mut reg = Registration::new(default_offer());
        let (replies, _) = feed(
            &mut reg,
            &["CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE PLAIN"],
        );
        assert_eq!(replies, ["CAP", "CAP", "AUTHENTICATE"]);
        let blob = format!("AUTHENTICATE {}", plain_chunks("jilles", "sesame")[0]);
        let Step::Verify(c) = feed(&mut reg, &[&blob]).1 else {
            panic!()
        };
        assert_eq!(c.account, "jilles");
        let mut out = Vec::new();
        assert_eq!(
            reg.sasl_result(Some("jilles"), "host", "srv", &mut out),
            Step::Continue
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .starts_with(":srv 900 * *!*@host jilles :"));
        let (_, step) = feed(&mut reg, &["NICK bar", "USER f * * :Realname", "CAP END"]);
        let r = ready(step);
        assert_eq!(
            (r.nick.as_str(), r.account.as_deref()),
            ("bar", Some("jilles"))
        );
    }

    #[test]
    fn authenticate_without_the_cap_fails_and_pass_is_carried() {
        let mut reg = Registration::new(default_offer());
        assert_eq!(feed(&mut reg, &["AUTHENTICATE PLAIN"]).0, ["904"]);
        let r = ready(feed(&mut reg, &["PASS hunter22", "NICK a", "USER u 0 * :x"]).1);
        assert_eq!(
            r.password.map(|p| p.expose().to_owned()).as_deref(),
            Some("hunter22")
        );
    }

    /// irctest pingpong: `PONG <server> <token>`, an empty token kept as an empty parameter.
    #[test]
    fn pong_echoes_the_token() {
        let mut out = Vec::new();
        pong(&mut out, "My.Little.Server", "abcdef");
        pong(&mut out, "My.Little.Server", "");
        pong(&mut out, "My.Little.Server", "two words");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ":My.Little.Server PONG My.Little.Server abcdef\r\n\
             :My.Little.Server PONG My.Little.Server :\r\n\
             :My.Little.Server PONG My.Little.Server :two words\r\n"
        );
        // irctest testLineAtLimit: a 510-byte PING's PONG still fits in 512 bytes.
        for token in ["x".repeat(505), "é".repeat(252)] {
            let mut out = Vec::new();
            pong(&mut out, "My.Little.Server", &token);
            assert!(out.len() <= 512, "{} bytes", out.len());
            let line = String::from_utf8(out).unwrap();
            assert!(line.contains(&token[..400]), "{line}");
        }
    }

    #[test]
    fn user_and_real_names_are_tidied() {
        assert_eq!(user_name("my user name is long"), "~myusername");
        assert_eq!(user_name("!!!"), "~user");
        assert_eq!(real_name("  \u{1b}[31mRed\u{2} bold "), "Red\u{2} bold");
        assert_eq!(real_name(&"é".repeat(100)).len(), REALNAME_LEN);
    }
}
