//! IRCv3 capability negotiation (`CAP`): which protocol extensions a connection has turned on.
//!
//! The one table [`CAPS`] names every capability the door knows, with the value it advertises
//! to `CAP LS 302` clients. A connection's [`Caps`] runs the negotiation: `LS` (one line for
//! 3.1 clients, values and `*` continuation lines for 302), `REQ` accepted or refused as a
//! whole (`ACK` echoes the request, `NAK` too, so the client knows which request it was),
//! `LIST`, `END`. `LS` or `REQ` before registration holds registration until `END`.
//!
//! `cap-notify` is on for every 302 client, as the specification requires, and cannot be
//! turned off by them. The set of capabilities never changes while the server runs, so there
//! is never a `CAP NEW` or `CAP DEL` to send.
//!
//! What is offered is a parameter ([`Caps::new`]): the wiring leaves `sasl` out where a
//! password may not be sent (plaintext from afar, without `--plaintext-passwords`), and
//! `labeled-response` out until every command's replies are gathered for its label.

use crate::door::irc::message::{Writer, MAX_BODY};
use crate::door::irc::numerics::{ERR_INVALIDCAPCMD, ERR_NEEDMOREPARAMS};

/// A capability the door knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    AccountTag,
    AwayNotify,
    Batch,
    CapNotify,
    ChatHistory,
    EchoMessage,
    ExtendedJoin,
    LabeledResponse,
    MessageTags,
    MultiPrefix,
    Sasl,
    ServerTime,
}

/// One row of the capability table.
#[derive(Debug, Clone, Copy)]
pub struct CapInfo {
    pub cap: Cap,
    /// The name on the wire.
    pub name: &'static str,
    /// The value advertised to `CAP LS 302` clients.
    pub value: Option<&'static str>,
}

/// Every capability, in the order `CAP LS` lists them.
pub const CAPS: &[CapInfo] = &[
    CapInfo {
        cap: Cap::AccountTag,
        name: "account-tag",
        value: None,
    },
    CapInfo {
        cap: Cap::AwayNotify,
        name: "away-notify",
        value: None,
    },
    CapInfo {
        cap: Cap::Batch,
        name: "batch",
        value: None,
    },
    CapInfo {
        cap: Cap::CapNotify,
        name: "cap-notify",
        value: None,
    },
    CapInfo {
        cap: Cap::ChatHistory,
        name: "draft/chathistory",
        value: None,
    },
    CapInfo {
        cap: Cap::EchoMessage,
        name: "echo-message",
        value: None,
    },
    CapInfo {
        cap: Cap::ExtendedJoin,
        name: "extended-join",
        value: None,
    },
    CapInfo {
        cap: Cap::LabeledResponse,
        name: "labeled-response",
        value: None,
    },
    CapInfo {
        cap: Cap::MessageTags,
        name: "message-tags",
        value: None,
    },
    CapInfo {
        cap: Cap::MultiPrefix,
        name: "multi-prefix",
        value: None,
    },
    CapInfo {
        cap: Cap::Sasl,
        name: "sasl",
        value: Some("PLAIN"),
    },
    CapInfo {
        cap: Cap::ServerTime,
        name: "server-time",
        value: None,
    },
];

impl Cap {
    /// The capability named `name` on the wire.
    pub fn by_name(name: &str) -> Option<Cap> {
        CAPS.iter().find(|c| c.name == name).map(|c| c.cap)
    }

    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        CAPS.iter().find(|c| c.cap == self).map_or("", |c| c.name)
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(u32);

impl CapSet {
    /// Every capability in the table.
    pub fn all() -> CapSet {
        CapSet::of(&CAPS.iter().map(|c| c.cap).collect::<Vec<_>>())
    }

    /// The set holding `caps`.
    pub fn of(caps: &[Cap]) -> CapSet {
        CapSet(caps.iter().fold(0, |bits, c| bits | c.bit()))
    }

    pub fn contains(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    pub fn with(self, cap: Cap) -> CapSet {
        CapSet(self.0 | cap.bit())
    }

    pub fn without(self, cap: Cap) -> CapSet {
        CapSet(self.0 & !cap.bit())
    }

    /// The members, in table order.
    pub fn iter(self) -> impl Iterator<Item = &'static CapInfo> {
        CAPS.iter().filter(move |c| self.contains(c.cap))
    }
}

/// What the door offers until the wiring gathers replies per command: everything but
/// `labeled-response`.
pub fn default_offer() -> CapSet {
    CapSet::all().without(Cap::LabeledResponse)
}

/// What a `CAP` command did, beyond the replies it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapOutcome {
    /// Nothing for registration to do.
    Done,
    /// `CAP END`: registration may go on.
    End,
}

/// One connection's negotiation.
#[derive(Debug, Clone)]
pub struct Caps {
    offered: CapSet,
    enabled: CapSet,
    /// The client sent `CAP LS 302` (or higher).
    v302: bool,
    /// Negotiation began before registration and `CAP END` has not come yet.
    holding: bool,
}

impl Caps {
    /// A connection offered `offered`, with nothing enabled.
    pub fn new(offered: CapSet) -> Caps {
        Caps {
            offered,
            enabled: CapSet::default(),
            v302: false,
            holding: false,
        }
    }

    /// The capabilities turned on.
    pub fn enabled(&self) -> CapSet {
        self.enabled
    }

    /// Whether `cap` is on.
    pub fn has(&self, cap: Cap) -> bool {
        self.enabled.contains(cap)
    }

    /// Whether registration must wait for `CAP END`.
    pub fn holds_registration(&self) -> bool {
        self.holding
    }

    /// Handles `CAP params...` from a client named `client` (`*` before registration), writing
    /// the replies into `out`.
    pub fn handle(
        &mut self,
        params: &[&str],
        registered: bool,
        server: &str,
        client: &str,
        out: &mut Vec<u8>,
    ) -> CapOutcome {
        let Some(sub) = params.first() else {
            ERR_NEEDMOREPARAMS.write(out, server, client, &["CAP"], &[]);
            return CapOutcome::Done;
        };
        let sub = sub.to_ascii_uppercase();
        match sub.as_str() {
            "LS" => {
                let version = params.get(1).and_then(|v| v.parse::<u32>().ok());
                if version.is_some_and(|v| v >= 302) {
                    self.v302 = true;
                    self.enabled = self.enabled.with(Cap::CapNotify);
                }
                self.holding |= !registered;
                let words: Vec<String> = self
                    .offered
                    .iter()
                    .map(|c| match (self.v302, c.value) {
                        (true, Some(value)) => format!("{}={value}", c.name),
                        _ => c.name.to_owned(),
                    })
                    .collect();
                self.list(out, server, client, "LS", &words);
                CapOutcome::Done
            }
            "LIST" => {
                let words: Vec<String> = self.enabled.iter().map(|c| c.name.to_owned()).collect();
                self.list(out, server, client, "LIST", &words);
                CapOutcome::Done
            }
            "REQ" => {
                self.holding |= !registered;
                let request = params.get(1).copied().unwrap_or("").trim_matches(' ');
                let verdict = match self.apply(request) {
                    Some(enabled) => {
                        self.enabled = enabled;
                        "ACK"
                    }
                    None => "NAK",
                };
                Writer::new(out, "", Some(server), "CAP")
                    .params(&[client, verdict])
                    .trailing(truncate(request, 400));
                CapOutcome::Done
            }
            "END" => {
                let was_holding = std::mem::take(&mut self.holding);
                if was_holding || !registered {
                    CapOutcome::End
                } else {
                    CapOutcome::Done
                }
            }
            _ => {
                ERR_INVALIDCAPCMD.write(out, server, client, &[truncate(&sub, 32)], &[]);
                CapOutcome::Done
            }
        }
    }

    /// The enabled set after `request`, or `None` if any part of it is refused (then nothing
    /// changes: a request is accepted or refused as a whole).
    fn apply(&self, request: &str) -> Option<CapSet> {
        let mut enabled = self.enabled;
        let mut any = false;
        for word in request.split(' ').filter(|w| !w.is_empty()) {
            any = true;
            let (remove, name) = match word.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, word),
            };
            let cap = Cap::by_name(name).filter(|c| self.offered.contains(*c))?;
            if remove {
                if cap == Cap::CapNotify && self.v302 {
                    return None;
                }
                enabled = enabled.without(cap);
            } else {
                enabled = enabled.with(cap);
            }
        }
        any.then_some(enabled)
    }

    /// Writes `CAP client SUB :words`, over several lines marked `*` for 302 clients when the
    /// words do not fit in one.
    fn list(&self, out: &mut Vec<u8>, server: &str, client: &str, sub: &str, words: &[String]) {
        // What fits: the body limit less the prefix, the command, the client, the
        // subcommand, the continuation mark and separators.
        let room = MAX_BODY - server.len() - client.len() - sub.len() - 16;
        let mut lines: Vec<String> = vec![String::new()];
        for word in words {
            let line = lines.last_mut().expect("never empty");
            if !line.is_empty() && line.len() + 1 + word.len() > room && self.v302 {
                lines.push(word.clone());
            } else {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
        }
        let n = lines.len();
        for (i, line) in lines.iter().enumerate() {
            let w = Writer::new(out, "", Some(server), "CAP").params(&[client, sub]);
            let w = if i + 1 < n { w.param("*") } else { w };
            w.trailing(line);
        }
    }
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::irc::message::parse;
    use crate::door::irc::testing::replies;

    /// Runs `CAP ...` lines and returns the reply lines' parameters.
    fn run(caps: &mut Caps, line: &str, registered: bool) -> (Vec<Vec<String>>, CapOutcome) {
        let msg = parse(line.as_bytes()).unwrap();
        let mut out = Vec::new();
        let outcome = caps.handle(msg.params(), registered, "srv", "*", &mut out);
        let replies = replies(&out)
            .into_iter()
            .map(|(command, params)| std::iter::once(command).chain(params).collect())
            .collect();
        (replies, outcome)
    }

    #[test]
    fn ls_302_lists_values_and_holds_registration() {
        let mut caps = Caps::new(default_offer());
        let (replies, _) = run(&mut caps, "CAP LS 302", false);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0][..3], ["CAP", "*", "LS"]);
        let words: Vec<&str> = replies[0][3].split(' ').collect();
        assert!(words.contains(&"sasl=PLAIN"));
        assert!(words.contains(&"multi-prefix"));
        assert!(!words.contains(&"labeled-response"));
        assert!(caps.holds_registration());
        assert!(caps.has(Cap::CapNotify));
    }

    /// irctest testIrc301CapLs: a bare `CAP LS` gets one line, no `*`, no values.
    #[test]
    fn ls_301_is_one_line_without_values() {
        let mut caps = Caps::new(default_offer());
        let (replies, _) = run(&mut caps, "CAP LS", false);
        assert_eq!(replies.len(), 1);
        assert_ne!(replies[0][3], "*");
        assert!(!replies[0][3].contains('='));
        assert!(!caps.has(Cap::CapNotify));
    }

    #[test]
    fn long_lists_continue_with_a_star_for_302_only() {
        let mut caps = Caps::new(default_offer());
        caps.v302 = true;
        let words: Vec<String> = (0..60).map(|i| format!("capability-{i}")).collect();
        let mut out = Vec::new();
        caps.list(&mut out, "srv", "*", "LS", &words);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert!(lines.len() > 1);
        for line in &lines[..lines.len() - 1] {
            assert!(line.starts_with(":srv CAP * LS * :"), "{line}");
            assert!(line.len() <= MAX_BODY);
        }
        let joined: Vec<String> = lines
            .iter()
            .flat_map(|l| {
                parse(l.as_bytes())
                    .unwrap()
                    .params()
                    .last()
                    .unwrap()
                    .split(' ')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(joined, words);
    }

    /// irctest testNakWhole and testNakExactString: a request with any unknown capability is
    /// refused whole, echoing the request exactly; a good one is acknowledged.
    #[test]
    fn req_is_all_or_nothing() {
        let mut caps = Caps::new(default_offer());
        let (r, _) = run(&mut caps, "CAP REQ :foo qux bar baz qux quux", false);
        assert_eq!(r[0], ["CAP", "*", "NAK", "foo qux bar baz qux quux"]);
        let (r, _) = run(&mut caps, "CAP REQ :foo multi-prefix bar", false);
        assert_eq!(r[0][2..], ["NAK", "foo multi-prefix bar"]);
        assert!(!caps.has(Cap::MultiPrefix));
        let (r, _) = run(&mut caps, "CAP REQ :multi-prefix", false);
        assert_eq!(r[0][2..], ["ACK", "multi-prefix"]);
        assert!(caps.has(Cap::MultiPrefix));
        let (r, _) = run(&mut caps, "CAP REQ labeled-response", false);
        assert_eq!(r[0][2], "NAK", "not offered");
    }

    /// irctest testCapRemovalByClient: `-cap` turns a capability off; LIST shows what is on.
    #[test]
    fn req_minus_removes_and_list_shows_the_rest() {
        let mut caps = Caps::new(default_offer());
        run(&mut caps, "CAP REQ :echo-message server-time", false);
        let (r, _) = run(&mut caps, "CAP LIST", true);
        assert_eq!(r[0][2..], ["LIST", "echo-message server-time"]);
        let (r, _) = run(&mut caps, "CAP REQ :-server-time", true);
        assert_eq!(r[0][2..], ["ACK", "-server-time"]);
        assert!(!caps.has(Cap::ServerTime));
        assert!(caps.has(Cap::EchoMessage));
    }

    /// irctest testEmptyCapList: `CAP LIST` with nothing on is `CAP * LIST :`.
    #[test]
    fn empty_list_has_an_empty_parameter() {
        let mut caps = Caps::new(default_offer());
        let (r, _) = run(&mut caps, "CAP LIST", false);
        assert_eq!(r[0], ["CAP", "*", "LIST", ""]);
    }

    #[test]
    fn end_releases_registration_and_302_keeps_cap_notify() {
        let mut caps = Caps::new(default_offer());
        run(&mut caps, "CAP LS 302", false);
        let (r, _) = run(&mut caps, "CAP REQ -cap-notify", false);
        assert_eq!(r[0][2], "NAK");
        let (r, outcome) = run(&mut caps, "CAP END", false);
        assert!(r.is_empty());
        assert_eq!(outcome, CapOutcome::End);
        assert!(!caps.holds_registration());
        let (_, outcome) = run(&mut caps, "CAP END", true);
        assert_eq!(outcome, CapOutcome::Done);
    }

    #[test]
    fn bad_subcommands_are_answered() {
        let mut caps = Caps::new(default_offer());
        let (r, _) = run(&mut caps, "CAP", false);
        assert_eq!(r[0][0], "461");
        let (r, _) = run(&mut caps, "CAP FOO", false);
        assert_eq!(r[0][..3], ["410", "*", "FOO"]);
        let (r, _) = run(&mut caps, "CAP REQ :", false);
        assert_eq!(r[0][2], "NAK");
    }

    #[test]
    fn names_round_trip_through_the_table() {
        for info in CAPS {
            assert_eq!(Cap::by_name(info.name), Some(info.cap));
            assert_eq!(info.cap.name(), info.name);
        }
        assert_eq!(CapSet::all().iter().count(), CAPS.len());
    }
}
