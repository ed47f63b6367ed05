//! Telnet option negotiation (RFC 854, 855, 856 and 860), answered by the rules of RFC 1143.
//!
//! We support one option, TRANSMIT-BINARY, in both directions: without it a telnet client strips
//! the eighth bit of what the user types, turning UTF-8 bytes such as 0x83 into Ctrl-C, so `у`,
//! `本` or `🚀` never arrive. Every other option is refused, and `DO TIMING-MARK` is answered at
//! once, because a client that sent it discards all output until the answer comes.
//!
//! The rules that keep two parties from looping: a refusal (`WONT`, `DONT`) is never answered,
//! and a request for the state an option is already in is never answered either. This is pure
//! logic: it appends the bytes to send back to a buffer and never touches a socket.

/// The answer to telnet's Are You There (`IAC AYT`, the `send ayt` command): short and visible.
pub const ARE_YOU_THERE: &str = "[smolchat is here]";

/// Interpret As Command: starts every telnet command; doubled, it is a literal 0xFF byte.
pub const IAC: u8 = 255;
/// Refuse, or ask the other side to stop, performing an option.
pub const DONT: u8 = 254;
/// Ask the other side to perform an option, or agree that it does.
pub const DO: u8 = 253;
/// Refuse, or announce that we stop, performing an option.
pub const WONT: u8 = 252;
/// Offer to perform an option, or agree to perform it.
pub const WILL: u8 = 251;
/// Subnegotiation begin.
pub const SB: u8 = 250;
/// Erase Line: erase the line being typed.
pub const EL: u8 = 248;
/// Erase Character: erase the last character typed.
pub const EC: u8 = 247;
/// Are You There: asks for a visible sign that the server is alive.
pub const AYT: u8 = 246;
/// Abort Output: the user wants the current output stopped.
pub const AO: u8 = 245;
/// Interrupt Process: what telnet sends for Ctrl-C.
pub const IP: u8 = 244;
/// Break: what telnet sends for Ctrl-\ (its quit character).
pub const BRK: u8 = 243;
/// Suspend (RFC 1184): what telnet sends for Ctrl-Z.
pub const SUSP: u8 = 237;
/// Subnegotiation end.
pub const SE: u8 = 240;

/// TRANSMIT-BINARY (RFC 856): 8-bit data, so UTF-8 passes unchanged.
pub const BINARY: u8 = 0;
/// TIMING-MARK (RFC 860): "answer when you have handled everything I sent before this".
pub const TIMING_MARK: u8 = 6;
/// ECHO (RFC 857): offered only while a password is typed, so the client stops echoing it.
pub const ECHO: u8 = 1;

/// One side of one option, as in RFC 1143 without the queue bit: we never change our mind
/// about BINARY once we asked for it, so there is never a second request to queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    No,
    /// We asked and wait for the answer, which must not be answered again.
    WantYes,
    Yes,
}

/// The negotiated state of a telnet connection.
#[derive(Debug, Clone)]
pub struct Options {
    /// Whether we send binary (`WILL BINARY` agreed).
    us_binary: Side,
    /// Whether the client sends binary (`DO BINARY` agreed).
    him_binary: Side,
    /// Whether we echo (`WILL ECHO`), i.e. the client does not: only while a password is typed.
    us_echo: Echo,
}

/// Our side of ECHO, by RFC 1143 with its queue: ECHO, unlike BINARY, is switched on and off,
/// and a new request may come before the client acknowledged the last one (a password prompt
/// right after another). The acknowledgment of "echo on" must then not be read as a refusal of
/// "echo off", or the client would echo the next password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    No,
    Yes,
    /// We sent `WONT ECHO` and wait for `DONT`; then send `WILL ECHO` again if `then_yes`.
    WantNo {
        then_yes: bool,
    },
    /// We sent `WILL ECHO` and wait for `DO`; then send `WONT ECHO` if `then_no`.
    WantYes {
        then_no: bool,
    },
}

impl Default for Options {
    fn default() -> Self {
        Options {
            us_binary: Side::No,
            him_binary: Side::No,
            us_echo: Echo::No,
        }
    }
}

impl Options {
    /// Asks for BINARY both ways (`IAC DO BINARY IAC WILL BINARY`), unless already asked or
    /// agreed.
    pub fn offer_binary(&mut self, replies: &mut Vec<u8>) {
        if self.him_binary == Side::No {
            self.him_binary = Side::WantYes;
            replies.extend_from_slice(&[IAC, DO, BINARY]);
        }
        if self.us_binary == Side::No {
            self.us_binary = Side::WantYes;
            replies.extend_from_slice(&[IAC, WILL, BINARY]);
        }
    }

    /// Hides what the user types (`IAC WILL ECHO`: we claim the echo, and echo nothing), for a
    /// password. Undone by [`Options::show_input`].
    pub fn hide_input(&mut self, replies: &mut Vec<u8>) {
        self.us_echo = match self.us_echo {
            Echo::No => {
                replies.extend_from_slice(&[IAC, WILL, ECHO]);
                Echo::WantYes { then_no: false }
            }
            Echo::Yes => Echo::Yes,
            Echo::WantNo { .. } => Echo::WantNo { then_yes: true },
            Echo::WantYes { .. } => Echo::WantYes { then_no: false },
        };
    }

    /// Gives the echo back to the client (`IAC WONT ECHO`).
    pub fn show_input(&mut self, replies: &mut Vec<u8>) {
        self.us_echo = match self.us_echo {
            Echo::Yes => {
                replies.extend_from_slice(&[IAC, WONT, ECHO]);
                Echo::WantNo { then_yes: false }
            }
            Echo::No => Echo::No,
            Echo::WantNo { .. } => Echo::WantNo { then_yes: false },
            Echo::WantYes { .. } => Echo::WantYes { then_no: true },
        };
    }

    /// Handles `IAC verb option` from the client, appending any answer to `replies`.
    pub fn receive(&mut self, verb: u8, option: u8, replies: &mut Vec<u8>) {
        match (verb, option) {
            // A timing mark is not a state: every request gets its answer (RFC 860). The caller
            // has handled all input before it, since the decoder stops after each line.
            (DO, TIMING_MARK) => replies.extend_from_slice(&[IAC, WILL, TIMING_MARK]),
            (DO, BINARY) => agree(&mut self.us_binary, [IAC, WILL, BINARY], replies),
            (DONT, BINARY) => disable(&mut self.us_binary, [IAC, WONT, BINARY], replies),
            (WILL, BINARY) => agree(&mut self.him_binary, [IAC, DO, BINARY], replies),
            (WONT, BINARY) => disable(&mut self.him_binary, [IAC, DONT, BINARY], replies),
            // ECHO is ours only while we asked for it: an unasked DO ECHO is refused.
            (DO, ECHO) => {
                self.us_echo = match self.us_echo {
                    Echo::No => {
                        replies.extend_from_slice(&[IAC, WONT, ECHO]);
                        Echo::No
                    }
                    Echo::WantYes { then_no: true } => {
                        replies.extend_from_slice(&[IAC, WONT, ECHO]);
                        Echo::WantNo { then_yes: false }
                    }
                    Echo::Yes | Echo::WantYes { then_no: false } => Echo::Yes,
                    // DONT answered by DO (RFC 1143 calls it an error): take the client's word.
                    Echo::WantNo { then_yes } => {
                        if then_yes {
                            Echo::Yes
                        } else {
                            Echo::No
                        }
                    }
                }
            }
            (DONT, ECHO) => {
                self.us_echo = match self.us_echo {
                    Echo::Yes => {
                        replies.extend_from_slice(&[IAC, WONT, ECHO]);
                        Echo::No
                    }
                    Echo::WantNo { then_yes: true } => {
                        replies.extend_from_slice(&[IAC, WILL, ECHO]);
                        Echo::WantYes { then_no: false }
                    }
                    // Acknowledged, or our request refused: a refusal is never answered.
                    Echo::No | Echo::WantNo { then_yes: false } | Echo::WantYes { .. } => Echo::No,
                }
            }
            // Options we do not support are always off, so a request is refused and a
            // refusal (DONT, WONT) needs no answer.
            (DO, option) => replies.extend_from_slice(&[IAC, WONT, option]),
            (WILL, option) => replies.extend_from_slice(&[IAC, DONT, option]),
            _ => {}
        }
    }

    /// Whether the client has agreed to send binary.
    pub fn binary_in(&self) -> bool {
        self.him_binary == Side::Yes
    }

    /// Whether the client has agreed that we send binary.
    pub fn binary_out(&self) -> bool {
        self.us_binary == Side::Yes
    }
}

/// The other side asks to enable an option we want: agree once, and answer only a request we
/// did not make ourselves.
fn agree(side: &mut Side, answer: [u8; 3], replies: &mut Vec<u8>) {
    match side {
        Side::No => {
            *side = Side::Yes;
            replies.extend_from_slice(&answer);
        }
        // Our own request, answered: nothing to say.
        Side::WantYes => *side = Side::Yes,
        Side::Yes => {}
    }
}

/// The other side refuses or disables an option: acknowledge only a change from enabled.
fn disable(side: &mut Side, answer: [u8; 3], replies: &mut Vec<u8>) {
    match side {
        Side::Yes => {
            *side = Side::No;
            replies.extend_from_slice(&answer);
        }
        // Our request was refused: a refusal is never answered.
        Side::WantYes => *side = Side::No,
        Side::No => {}
    }
}

/// Appends `text` to `out` in the telnet network form: each LF becomes CR LF (with BINARY on,
/// the client's terminal no longer adds the CR itself) and each 0xFF byte is doubled so it is
/// not read as a command. Our output is UTF-8, which never contains 0xFF, so the doubling is a
/// guarantee rather than something that happens.
pub fn encode_into(out: &mut Vec<u8>, text: &[u8]) {
    out.reserve(text.len() + text.len() / 32);
    for &byte in text {
        match byte {
            b'\n' => out.extend_from_slice(b"\r\n"),
            IAC => out.extend_from_slice(&[IAC, IAC]),
            _ => out.push(byte),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds one command and returns the answer.
    fn answer(options: &mut Options, verb: u8, option: u8) -> Vec<u8> {
        let mut replies = Vec::new();
        options.receive(verb, option, &mut replies);
        replies
    }

    /// Our BINARY offer, accepted both ways, is not answered again; nor is a repeat.
    #[test]
    fn binary_offer_accepted() {
        let mut options = Options::default();
        let mut replies = Vec::new();
        options.offer_binary(&mut replies);
        assert_eq!(replies, [IAC, DO, BINARY, IAC, WILL, BINARY]);
        replies.clear();
        options.offer_binary(&mut replies);
        assert!(replies.is_empty(), "offered twice");
        assert!(answer(&mut options, WILL, BINARY).is_empty());
        assert!(answer(&mut options, DO, BINARY).is_empty());
        assert!(options.binary_in() && options.binary_out());
        assert!(answer(&mut options, WILL, BINARY).is_empty());
        assert!(answer(&mut options, DO, BINARY).is_empty());
    }

    /// A refused offer is not answered, and a later disable of an agreed option is.
    #[test]
    fn binary_refused_or_disabled() {
        let mut options = Options::default();
        options.offer_binary(&mut Vec::new());
        assert!(answer(&mut options, WONT, BINARY).is_empty());
        assert!(answer(&mut options, DONT, BINARY).is_empty());
        assert!(!options.binary_in() && !options.binary_out());
        // The client changes its mind and asks itself: agreed, with an answer this time.
        assert_eq!(answer(&mut options, WILL, BINARY), [IAC, DO, BINARY]);
        assert_eq!(answer(&mut options, DO, BINARY), [IAC, WILL, BINARY]);
        assert_eq!(answer(&mut options, WONT, BINARY), [IAC, DONT, BINARY]);
        assert_eq!(answer(&mut options, DONT, BINARY), [IAC, WONT, BINARY]);
        assert!(answer(&mut options, WONT, BINARY).is_empty());
        assert!(answer(&mut options, DONT, BINARY).is_empty());
    }

    /// Each `DO TIMING-MARK` is answered; other options are refused; refusals are not answered.
    #[test]
    fn timing_mark_and_refusals() {
        let mut options = Options::default();
        for _ in 0..2 {
            assert_eq!(
                answer(&mut options, DO, TIMING_MARK),
                [IAC, WILL, TIMING_MARK]
            );
        }
        assert!(answer(&mut options, DONT, TIMING_MARK).is_empty());
        assert_eq!(
            answer(&mut options, WILL, TIMING_MARK),
            [IAC, DONT, TIMING_MARK]
        );
        for option in [1, 3, 24, 31, 34, 255] {
            assert_eq!(answer(&mut options, DO, option), [IAC, WONT, option]);
            assert_eq!(answer(&mut options, WILL, option), [IAC, DONT, option]);
            assert!(answer(&mut options, WONT, option).is_empty());
            assert!(answer(&mut options, DONT, option).is_empty());
        }
    }

    /// Two servers of ours talking to each other settle after one exchange: no loop.
    #[test]
    fn two_of_us_settle() {
        let (mut a, mut b) = (Options::default(), Options::default());
        let mut to_b = Vec::new();
        a.offer_binary(&mut to_b);
        b.receive(DO, 1, &mut Vec::new());
        let mut rounds = 0;
        while !to_b.is_empty() {
            rounds += 1;
            assert!(rounds < 5, "negotiation loops");
            let mut to_a = Vec::new();
            for command in to_b.chunks(3) {
                b.receive(command[1], command[2], &mut to_a);
            }
            to_b.clear();
            for command in to_a.chunks(3) {
                a.receive(command[1], command[2], &mut to_b);
            }
        }
        assert!(a.binary_in() && a.binary_out() && b.binary_in() && b.binary_out());
    }

    /// LF becomes CR LF and 0xFF is doubled; nothing else changes.
    #[test]
    fn encoding() {
        let mut out = b"x".to_vec();
        encode_into(&mut out, &[b"a\n", "б".as_bytes(), b"\xff\n"].concat());
        assert_eq!(out, b"xa\r\n\xd0\xb1\xff\xff\r\n");
    }

    /// Two password prompts in a row: "echo off" asked again before the client acknowledged
    /// "echo on" waits for that acknowledgment, which is not taken for a refusal, and then goes
    /// out; the client ends with its echo off.
    #[test]
    fn echo_off_again_before_the_acknowledgment() {
        let mut options = Options::default();
        let mut out = Vec::new();
        options.hide_input(&mut out);
        options.receive(DO, ECHO, &mut out);
        assert_eq!(out, [IAC, WILL, ECHO]);
        out.clear();
        options.show_input(&mut out);
        options.hide_input(&mut out);
        assert_eq!(out, [IAC, WONT, ECHO]);
        out.clear();
        options.receive(DONT, ECHO, &mut out);
        assert_eq!(out, [IAC, WILL, ECHO]);
        out.clear();
        options.receive(DO, ECHO, &mut out);
        assert!(out.is_empty());
        assert_eq!(options.us_echo, Echo::Yes);
        // And the other way: "echo on" asked before "echo off" was acknowledged.
        options.show_input(&mut out);
        options.receive(DONT, ECHO, &mut out);
        options.hide_input(&mut out);
        options.show_input(&mut out);
        options.receive(DO, ECHO, &mut out);
        assert_eq!(out, [IAC, WONT, ECHO, IAC, WILL, ECHO, IAC, WONT, ECHO]);
        out.clear();
        options.receive(DONT, ECHO, &mut out);
        assert!(out.is_empty());
        assert_eq!(options.us_echo, Echo::No);
    }

    /// A password prompt hides the typing and gives it back, without loops: the client's
    /// answers to our own requests are not answered, and an unasked DO ECHO is refused.
    #[test]
    fn echo_is_claimed_only_while_asked() {
        let mut options = Options::default();
        let mut out = Vec::new();
        options.receive(DO, ECHO, &mut out);
        assert_eq!(out, [IAC, WONT, ECHO]);
        out.clear();
        options.hide_input(&mut out);
        assert_eq!(out, [IAC, WILL, ECHO]);
        out.clear();
        options.receive(DO, ECHO, &mut out);
        assert!(out.is_empty());
        options.show_input(&mut out);
        assert_eq!(out, [IAC, WONT, ECHO]);
        out.clear();
        options.receive(DONT, ECHO, &mut out);
        assert!(out.is_empty());
    }
}
