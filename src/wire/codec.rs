//! Line framing for the bytes a client sends. It splits the stream into lines, handles telnet
//! commands, applies backspace, and refuses lines longer than the limit, because an unbounded
//! buffer lets one client exhaust the server's memory.
//!
//! Lines may end in LF, CR LF, CR NUL or a lone CR, so `nc`, `telnet` and raw terminals all work.
//! Telnet commands (`IAC ...`) never reach a line: they edit it (`EC`, `EL`, `IP`, `AO`) or are
//! answered (option negotiation, `AYT`). The decoder stays pure: answers pile up in a buffer that
//! the connection writes with its next flush ([`LineDecoder::take_replies`]), ahead of the output
//! of the line they came with, since they answer input that came before that line's end. When
//! the input runs out with answers pending and no line, decoding ends with [`Decoded::Reply`], so
//! they go out at once all the same.
//!
//! A client that shows it is telnet (it sends any `IAC`, or ends a line in CR LF or CR NUL; `nc`
//! sends a bare LF) is asked for TRANSMIT-BINARY both ways, once (see [`telnet`]). A client that
//! never does so is never sent a telnet byte.
//!
//! It also keeps a telnet user's cursor in column 0 after what they typed, so that every line
//! the server sends (and the next line they type) starts there. Telnet echoes the typed line and
//! its Enter itself, and once we send BINARY its terminal no longer turns that echoed newline
//! into CR LF, so the cursor stays in the column where the typed text ended: each line end gets
//! a CR back, at once, with the answers. Ctrl-C leaves the cursor after the `^C` the terminal
//! echoes: the answer to its timing mark is followed by CR LF (or, without a timing mark, the
//! next output is led by one: [`LineDecoder::take_return`]).
//!
//! Every emitted line has been decoded as lossy UTF-8 and passed through [`sanitize`], so nothing
//! past the codec needs to re-check raw client text.
//!
//! **Invariant:** a decoder never holds more than `max_line` bytes of pending line, and never
//! more bytes of answers than it consumed since they were last taken plus one `AYT` line and the
//! BINARY offer, whatever the client sends; and it never panics.

use crate::wire::sanitize::sanitize;
use crate::wire::telnet::{
    self, AO, AYT, BRK, DO, DONT, EC, EL, IAC, IP, SB, SE, SUSP, TIMING_MARK, WILL, WONT,
};
/// Carriage return.
const CR: u8 = b'\r';
/// Line feed.
const LF: u8 = b'\n';
/// NUL, which telnet sends after a CR that is not followed by LF.
const NUL: u8 = 0;
/// Backspace.
const BS: u8 = 0x08;
/// Delete, which many terminals send for the backspace key.
const DEL: u8 = 0x7f;

/// Above this capacity the pending buffer is freed, not just cleared, once a line completes. Idle
/// connections then hold no line buffer; ordinary short lines still reuse a small allocation.
const KEEP_CAPACITY: usize = 256;

/// The smallest allocation made when the pending buffer has to grow.
const MIN_GROWTH: usize = 64;

/// What the decoder produced from the bytes it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A complete, sanitized line without its line end. It may be empty or only whitespace.
    Line(String),
    /// The current line went over the limit; the rest of it, up to the next line end, is skipped.
    TooLong,
    /// All input is consumed and telnet commands in it need an answer: write
    /// [`LineDecoder::take_replies`] now, because a client waiting for a timing mark shows
    /// nothing until it arrives.
    Reply,
}

/// Where the decoder is within the telnet command layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Telnet {
    /// Ordinary data.
    Data,
    /// After IAC.
    Iac,
    /// After IAC and the verb (WILL, WONT, DO or DONT), waiting for the option byte.
    Option(u8),
    /// Inside IAC SB, waiting for IAC SE.
    Sub,
    /// After an IAC inside a subnegotiation.
    SubIac,
}

/// Splits a client's byte stream into lines, one event at a time.
#[derive(Debug, Clone)]
pub struct LineDecoder {
    /// Bytes of the line being received, after telnet and backspace processing. Never longer than
    /// `max_line`.
    pending: Vec<u8>,
    /// The largest number of bytes a line may hold.
    max_line: usize,
    /// Telnet command state, which carries over between calls to `decode`.
    telnet: Telnet,
    /// The last data byte was a CR that ended a line, so a following LF or NUL is swallowed.
    after_cr: bool,
    /// The current line was refused as too long; bytes are dropped until the next line end.
    skipping: bool,
    /// The client has shown it is telnet, so it may be sent telnet commands.
    is_telnet: bool,
    /// Negotiated telnet options.
    options: telnet::Options,
    /// Telnet answers not yet taken by the connection.
    replies: Vec<u8>,
    /// `replies` holds an answer to `AYT`: one answers any number asked at once.
    ayt_answered: bool,
    /// The user interrupted (Ctrl-C and the like) and the terminal's cursor is still right after
    /// the `^C` it echoed. (A line half typed is invisible here, since telnet sends nothing
    /// until Enter: a line from the server then follows it on its row, as with any line-mode
    /// telnet service.)
    interrupted: bool,
    /// The echo goes back to the client with the next answers ([`LineDecoder::show_input`]).
    show_pending: bool,
}

impl LineDecoder {
    /// Creates a decoder that refuses lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        LineDecoder {
            pending: Vec::new(),
            max_line,
            telnet: Telnet::Data,
            after_cr: false,
            skipping: false,
            is_telnet: false,
            options: telnet::Options::default(),
            replies: Vec::new(),
            ayt_answered: false,
            interrupted: false,
            show_pending: false,
        }
    }

    /// Whether the client has shown it is telnet: its output must then be telnet-encoded
    /// ([`telnet::encode_into`]).
    pub fn is_telnet(&self) -> bool {
        self.is_telnet
    }

    /// Hides what a telnet user types (for a password): a no-op for other clients.
    pub fn hide_input(&mut self) {
        if self.is_telnet {
            self.show_pending = false;
            self.options.hide_input(&mut self.replies);
        }
    }

    /// Gives the echo back after [`LineDecoder::hide_input`], with the next answers taken: a
    /// second password prompt queued before then keeps the echo off throughout, rather than
    /// switching it on and off again.
    pub fn show_input(&mut self) {
        if self.is_telnet {
            self.show_pending = true;
        }
    }

    /// What must lead the next output so that it starts in column 0 of a row of its own: CR LF
    /// after an interrupt that no timing mark answered, else nothing. Empty for other clients,
    /// which get exactly the lines.
    pub fn take_return(&mut self) -> &'static [u8] {
        if std::mem::take(&mut self.interrupted) && self.is_telnet {
            b"\r\n"
        } else {
            b""
        }
    }

    /// Whether telnet answers are waiting to be sent.
    pub fn has_replies(&self) -> bool {
        !self.replies.is_empty() || self.show_pending
    }

    /// Moves the telnet answers waiting to be sent to the end of `out`.
    pub fn take_replies(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.show_pending) {
            self.options.show_input(&mut self.replies);
        }
        if !self.replies.is_empty() {
            out.append(&mut self.replies);
            self.replies = Vec::new();
        }
        self.ayt_answered = false;
    }

    /// Consumes bytes from `input` until one event is produced or input is exhausted.
    ///
    /// Telnet answers may be pending after any event ([`LineDecoder::take_replies`]); they answer
    /// input before the event. [`Decoded::Reply`] says they are the only reason decoding stopped.
    ///
    /// Returns how many bytes were consumed and the event, if any. The caller keeps the
    /// unconsumed rest and calls again (so it can stop reading when it is rate limited). At least
    /// one byte is consumed whenever `input` is not empty.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Option<Decoded>) {
        for (i, &byte) in input.iter().enumerate() {
            if let Some(event) = self.telnet_byte(byte) {
                // A line ended by CR whose LF or NUL is already here: take that now, so that a
                // telnet client is known, and its BINARY offer queued, before its first line is
                // handled. The offer then reaches it before the answer to its name, and it sends
                // the next line in binary already.
                if let (true, Some(&(LF | NUL))) = (self.after_cr, input.get(i + 1)) {
                    self.after_cr = false;
                    self.identified();
                    return (i + 2, Some(event));
                }
                return (i + 1, Some(event));
            }
        }
        // Answers go out in one write per read, however many commands asked for them.
        let event = self.has_replies().then_some(Decoded::Reply);
        (input.len(), event)
    }

    /// Frees pending buffer capacity (called when the session goes idle).
    ///
    /// A partial line is kept, in an allocation of exactly its size; with no partial line the
    /// decoder holds no heap memory at all.
    pub fn shrink(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        } else {
            self.pending.shrink_to_fit();
        }
    }

    /// Drops the partial line typed so far (see [`crate::wire::conn::Conn::discard_typed_ahead`]).
    pub fn drop_partial(&mut self) {
        self.release_line();
    }

    /// Returns the largest number of bytes a line may hold.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Feeds one byte through the telnet layer, passing data bytes on.
    fn telnet_byte(&mut self, byte: u8) -> Option<Decoded> {
        match self.telnet {
            Telnet::Data => {
                if byte == IAC {
                    self.telnet = Telnet::Iac;
                    self.identified();
                    None
                } else {
                    self.data_byte(byte)
                }
            }
            Telnet::Iac => {
                self.telnet = match byte {
                    SB => Telnet::Sub,
                    WILL | WONT | DO | DONT => Telnet::Option(byte),
                    // Any other command is two bytes long and has now been consumed.
                    _ => Telnet::Data,
                };
                self.command(byte)
            }
            Telnet::Option(verb) => {
                self.telnet = Telnet::Data;
                self.options.receive(verb, byte, &mut self.replies);
                // Ctrl-C is IP then DO TIMING-MARK, and telnet shows nothing until the mark's
                // answer: the new row after the echoed `^C` goes right behind it, so the user
                // can type on a clean row at once.
                if (verb, byte) == (DO, TIMING_MARK) && self.interrupted {
                    self.interrupted = false;
                    self.replies.extend_from_slice(b"\r\n");
                }
                None
            }
            Telnet::Sub => {
                if byte == IAC {
                    self.telnet = Telnet::SubIac;
                }
                None
            }
            Telnet::SubIac => {
                // IAC SE ends the subnegotiation. IAC IAC is an escaped data byte within it, and
                // any other command there is malformed; both leave us inside it.
                self.telnet = if byte == SE {
                    Telnet::Data
                } else {
                    Telnet::Sub
                };
                None
            }
        }
    }

    /// Handles a two-byte command (`IAC x`); IAC IAC is a literal 0xFF data byte.
    fn command(&mut self, byte: u8) -> Option<Decoded> {
        if let Some(data) = self.mangled_letter(byte) {
            return self.data_byte(data);
        }
        match byte {
            IAC => self.data_byte(IAC),
            // Interrupt Process (Ctrl-C) and Abort Output: the user gave up on what they were
            // typing. Erase Line: the same, by its name. A line being skipped ends here too.
            IP | AO | EL => {
                self.interrupted |= byte != EL;
                self.skipping = false;
                self.release_line();
                None
            }
            // Break (telnet's Ctrl-\) and Suspend (its Ctrl-Z): the terminal echoed `^\` or `^Z`
            // too, and telnet asks for a timing mark as for Ctrl-C.
            BRK | SUSP => {
                self.interrupted = true;
                None
            }
            EC => {
                if !self.skipping {
                    self.erase_char();
                }
                None
            }
            AYT => {
                if !self.ayt_answered {
                    self.ayt_answered = true;
                    self.replies
                        .extend_from_slice(telnet::ARE_YOU_THERE.as_bytes());
                    self.replies.extend_from_slice(b"\r\n");
                }
                None
            }
            // NOP, Data Mark, Break, Go Ahead and the rest mean nothing to a line-based chat.
            _ => None,
        }
    }

    /// The byte a command stands for when telnet sent it in place of one byte of a letter.
    ///
    /// Until BINARY is on, telnet compares each typed byte with the high bit stripped against its
    /// control keys, so in the first line (the name, typed before our offer is answered) the
    /// second byte of `К` (D0 9A), `М` (D0 9C), `у` (D1 83) or `я` (D1 8F) reads as Ctrl-Z,
    /// Ctrl-\, Ctrl-C or Ctrl-O and goes out as `SUSP`, `BRK`, `IP` or `AO` (each with a timing
    /// mark). A command that comes where a UTF-8 character still lacks a byte cannot be the user's
    /// key (telnet sends a line only once it is typed, and Ctrl-C then discards it), so it is
    /// read back as the byte it replaced: 0x80 plus the key's control code (telnet's defaults,
    /// which a terminal almost never changes). `Н` (D0 9D, Ctrl-]) and `х` (D1 85, Ctrl-E) never
    /// arrive: telnet takes them for its escape and echo keys.
    fn mangled_letter(&self, command: u8) -> Option<u8> {
        if self.options.binary_in() || self.skipping || !self.inside_character() {
            return None;
        }
        let key = match command {
            IP => 0x03,   // Ctrl-C
            AO => 0x0f,   // Ctrl-O
            SUSP => 0x1a, // Ctrl-Z
            BRK => 0x1c,  // Ctrl-\
            _ => return None,
        };
        Some(0x80 | key)
    }

    /// Whether the pending line ends with the first bytes of a UTF-8 character, still lacking
    /// continuation bytes.
    fn inside_character(&self) -> bool {
        let tail = &self.pending[self.pending.len().saturating_sub(3)..];
        let continuations = tail.iter().rev().take_while(|&&b| b & 0xc0 == 0x80).count();
        let Some(&lead) = tail.iter().rev().nth(continuations) else {
            return false;
        };
        let needed = match lead {
            0xc2..=0xdf => 1,
            0xe0..=0xef => 2,
            0xf0..=0xf4 => 3,
            _ => return false,
        };
        continuations < needed
    }

    /// The client has shown it is telnet: offer BINARY, the first time only.
    fn identified(&mut self) {
        if !self.is_telnet {
            self.is_telnet = true;
            self.options.offer_binary(&mut self.replies);
        }
    }

    /// Handles one byte of line data, after telnet commands have been removed.
    fn data_byte(&mut self, byte: u8) -> Option<Decoded> {
        if self.after_cr {
            self.after_cr = false;
            if byte == LF || byte == NUL {
                // CR LF is telnet's line end (and CR NUL its carriage return); nc sends LF.
                self.identified();
                return None;
            }
        }
        match byte {
            CR => {
                self.after_cr = true;
                self.end_line()
            }
            LF => self.end_line(),
            BS | DEL => {
                if !self.skipping {
                    self.erase_char();
                }
                None
            }
            _ if self.skipping => None,
            _ if self.pending.len() >= self.max_line => {
                self.skipping = true;
                self.release_line();
                Some(Decoded::TooLong)
            }
            _ => {
                self.push(byte);
                None
            }
        }
    }

    /// Completes the current line: emits it, or ends the skip after a refused line.
    fn end_line(&mut self) -> Option<Decoded> {
        // The terminal echoed the Enter as a bare LF (binary output has no CR added): the CR.
        if self.is_telnet && self.options.binary_out() {
            self.replies.push(CR);
        }
        self.interrupted = false;
        if self.skipping {
            self.skipping = false;
            return None;
        }
        let line = sanitize(&String::from_utf8_lossy(&self.pending));
        self.release_line();
        Some(Decoded::Line(line))
    }

    /// Empties the pending line, freeing its buffer if it had grown past `KEEP_CAPACITY`.
    fn release_line(&mut self) {
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
    }

    /// Appends a byte, growing the buffer no further than `max_line` so a long line cannot make
    /// it double past the limit. The caller has checked that there is room.
    fn push(&mut self, byte: u8) {
        let len = self.pending.len();
        if len == self.pending.capacity() {
            let room = self.max_line.saturating_sub(len);
            self.pending
                .reserve_exact(self.pending.capacity().max(MIN_GROWTH).min(room));
        }
        self.pending.push(byte);
    }

    /// Removes the last character of the pending line.
    ///
    /// For valid UTF-8 that is the lead byte and its continuation bytes. Bytes that do not form a
    /// character are erased one at a time, since lossy decoding would show each as a U+FFFD.
    fn erase_char(&mut self) {
        let len = self.pending.len();
        let Some(&last) = self.pending.last() else {
            return;
        };
        let is_continuation = |b: u8| b & 0xc0 == 0x80;
        if !is_continuation(last) {
            self.pending.truncate(len - 1);
            return;
        }
        // Look back at most three continuation bytes for the lead byte of a multibyte character.
        let start = (1..=3)
            .filter_map(|back| len.checked_sub(back + 1))
            .find(|&i| !is_continuation(self.pending[i]));
        let lead_fits = |i: usize| {
            let lead = self.pending[i];
            let width = match lead {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                _ => 1,
            };
            len - i <= width
        };
        match start {
            Some(i) if lead_fits(i) => self.pending.truncate(i),
            _ => self.pending.truncate(len - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::sanitize::is_clean;

    /// Feeds `chunks` in order, calling `decode` until each is used up, and collects the events
    /// other than `Reply`; the replies themselves pile up in the decoder.
    fn run_chunks<'a>(
        decoder: &mut LineDecoder,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Vec<Decoded> {
        let mut events = Vec::new();
        for chunk in chunks {
            let mut rest = chunk;
            while !rest.is_empty() {
                let (used, event) = decoder.decode(rest);
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
                events.extend(event.filter(|event| *event != Decoded::Reply));
            }
        }
        events
    }

    /// Decodes `input` like a connection would: answers are taken after each event, and when
    /// decoding stops for no event none may be pending. Returns the events (without `Reply`) and
    /// everything sent back.
    fn converse(decoder: &mut LineDecoder, input: &[u8]) -> (Vec<Decoded>, Vec<u8>) {
        let (mut events, mut sent) = (Vec::new(), Vec::new());
        let mut rest = input;
        while !rest.is_empty() {
            let (used, event) = decoder.decode(rest);
            rest = &rest[used..];
            let before = sent.len();
            decoder.take_replies(&mut sent);
            let answer = sent.len() - before;
            assert!(
                answer <= used + MAX_EXTRA,
                "{answer} bytes of answer to {used}"
            );
            match event {
                Some(Decoded::Reply) => assert!(answer > 0, "Reply with nothing to send"),
                Some(event) => events.push(event),
                None => assert_eq!(answer, 0, "an answer was left without a Reply"),
            }
        }
        (events, sent)
    }

    /// The most answer bytes a decoder may hold beyond the number of bytes it consumed: the
    /// BINARY offer and one AYT line.
    const MAX_EXTRA: usize = 6 + telnet::ARE_YOU_THERE.len() + 2;

    /// The BINARY offer: `IAC DO BINARY IAC WILL BINARY`.
    const OFFER: [u8; 6] = [IAC, DO, 0, IAC, WILL, 0];

    /// Decodes `input` in one piece with a fresh decoder.
    fn run(max_line: usize, input: &[u8]) -> Vec<Decoded> {
        run_chunks(&mut LineDecoder::new(max_line), [input])
    }

    /// Builds the expected list of `Line` events.
    fn lines(lines: &[&str]) -> Vec<Decoded> {
        lines.iter().map(|l| Decoded::Line(l.to_string())).collect()
    }

    /// LF, CR LF, CR NUL and a lone CR each end exactly one line.
    #[test]
    fn line_ends() {
        assert_eq!(
            run(64, b"a\nb\r\nc\r\0d\re\n"),
            lines(&["a", "b", "c", "d", "e"])
        );
        assert_eq!(run(64, b"\n"), lines(&[""]));
        assert_eq!(run(64, b"\r\n\r\n"), lines(&["", ""]));
        assert_eq!(run(64, b"\r\r"), lines(&["", ""]));
        assert_eq!(run(64, b"\n\r"), lines(&["", ""]));
        assert_eq!(run(64, b"   \n"), lines(&["   "]));
    }

    /// A CR at the end of one read and the LF at the start of the next make one line end.
    #[test]
    fn cr_at_buffer_boundary() {
        let mut decoder = LineDecoder::new(64);
        assert_eq!(
            decoder.decode(b"hi\r"),
            (3, Some(Decoded::Line("hi".into())))
        );
        assert_eq!(
            decoder.decode(b"\nyo\n"),
            (4, Some(Decoded::Line("yo".into())))
        );
        // The CR LF showed a telnet client: the BINARY offer waits to go out with "yo".
        let mut sent = Vec::new();
        decoder.take_replies(&mut sent);
        assert_eq!(sent, OFFER);
        assert_eq!(decoder.decode(b""), (0, None));
    }

    /// Only the byte right after a CR is swallowed, and only if it is LF or NUL.
    #[test]
    fn cr_swallows_one_byte() {
        assert_eq!(run(64, b"a\r\n\nb\n"), lines(&["a", "", "b"]));
        assert_eq!(run(64, b"a\r\0\0b\n"), lines(&["a", "b"]));
    }

    /// `decode` stops after each event and reports how much it used.
    #[test]
    fn one_event_per_call() {
        let mut decoder = LineDecoder::new(64);
        assert_eq!(
            decoder.decode(b"a\nb\nc"),
            (2, Some(Decoded::Line("a".into())))
        );
        assert_eq!(
            decoder.decode(b"b\nc"),
            (2, Some(Decoded::Line("b".into())))
        );
        assert_eq!(decoder.decode(b"c"), (1, None));
        assert_eq!(decoder.decode(b"\n"), (1, Some(Decoded::Line("c".into()))));
    }

    /// The negotiation a real telnet client opens with never reaches a line.
    #[test]
    fn telnet_negotiation_is_removed() {
        let mut input = vec![
            0xff, 0xfd, 0x03, // DO SUPPRESS-GO-AHEAD
            0xff, 0xfb, 0x18, // WILL TERMINAL-TYPE
            0xff, 0xfb, 0x1f, // WILL NAWS
            0xff, 0xfa, 0x1f, 0x00, 0x50, 0x00, 0x18, 0xff, 0xf0, // SB NAWS 80x24 SE
            0xff, 0xfa, 0x18, 0x00, b'X', b'T', b'E', b'R', b'M', 0xff,
            0xf0, // SB TTYPE IS XTERM SE
            0xff, 0xf1, // NOP
        ];
        input.extend_from_slice(b"alice\r\n");
        input.extend_from_slice(&[0xff, 0xfe, 0x01]); // DONT ECHO
        input.extend_from_slice(b"hi");
        input.extend_from_slice(&[0xff, 0xf9]); // GA in the middle of a line
        input.extend_from_slice(b" there\r\0");
        assert_eq!(run(64, &input), lines(&["alice", "hi there"]));
    }

    /// IAC IAC is one literal 0xFF byte, which is invalid UTF-8 on its own.
    #[test]
    fn iac_iac_is_data() {
        assert_eq!(run(64, b"a\xff\xffb\n"), lines(&["a\u{fffd}b"]));
    }

    /// IAC IAC inside a subnegotiation does not end it; IAC SE does.
    #[test]
    fn iac_iac_inside_subnegotiation() {
        assert_eq!(
            run(64, b"\xff\xfa\x18\xff\xff\xf0x\xff\xf0ok\n"),
            lines(&["ok"])
        );
        assert_eq!(run(64, b"\xff\xfa\nnot a line\xff\xf0ok\n"), lines(&["ok"]));
    }

    /// A client that ends lines in a bare LF or lone CR, as nc does, is never sent a telnet byte.
    #[test]
    fn nc_gets_no_telnet() {
        let mut decoder = LineDecoder::new(64);
        let (events, sent) = converse(&mut decoder, "alice\nу本🚀\r\x08x\n\n".as_bytes());
        assert_eq!(events, lines(&["alice", "у本🚀", "x", ""]));
        assert!(sent.is_empty(), "{sent:?}");
        assert!(!decoder.is_telnet());
    }

    /// The first CR LF or CR NUL line end, or the first IAC, brings the BINARY offer, once.
    #[test]
    fn telnet_is_offered_binary_once() {
        for input in [
            &b"alice\r\nhi\r\n\xff\xf1"[..],
            b"alice\r\0hi\r\n",
            b"\xff\xf1alice\r\nhi\n",
            b"al\xff\xffice\n\r\n",
        ] {
            let mut decoder = LineDecoder::new(64);
            let (events, sent) = converse(&mut decoder, input);
            assert_eq!(sent, OFFER, "{input:?}");
            assert_eq!(events.len(), 2, "{input:?}");
            assert!(decoder.is_telnet());
        }
    }

    /// The offer accepted both ways (or refused) is not answered, nor are repeats: no loop.
    #[test]
    fn offer_answers_are_not_answered() {
        let mut decoder = LineDecoder::new(64);
        let (_, sent) = converse(&mut decoder, b"alice\r\n");
        assert_eq!(sent, OFFER);
        let accept = b"\xff\xfb\x00\xff\xfd\x00";
        let (events, sent) = converse(&mut decoder, &[&accept[..], accept, b"\xd1\x83\n"].concat());
        // Nothing but the CR that brings the cursor back after the echoed line (see below).
        assert_eq!((events, sent), (lines(&["у"]), vec![CR]));
        assert!(decoder.options.binary_in() && decoder.options.binary_out());

        let mut decoder = LineDecoder::new(64);
        let refuse = b"\xff\xfc\x00\xff\xfe\x00";
        let (_, sent) = converse(&mut decoder, &[&b"a\r\n"[..], refuse, refuse].concat());
        assert_eq!(sent, OFFER);
        assert!(!decoder.options.binary_in() && !decoder.options.binary_out());
    }

    /// Unsupported options are refused (`DO x` -> `WONT x`, `WILL x` -> `DONT x`); refusals are
    /// never answered.
    #[test]
    fn unsupported_options_are_refused() {
        let mut decoder = LineDecoder::new(64);
        converse(&mut decoder, b"a\r\n");
        let input = b"\xff\xfd\x01\xff\xfb\x1f\xff\xfc\x18\xff\xfe\x03\xff\xfd\x03hi\n";
        let (events, sent) = converse(&mut decoder, input);
        assert_eq!(events, lines(&["hi"]));
        assert_eq!(sent, b"\xff\xfc\x01\xff\xfe\x1f\xff\xfc\x03");
    }

    /// `DO TIMING-MARK` is answered with `WILL TIMING-MARK`: after the line before it has come
    /// out (and so has been handled and its output flushed), before the output of the line after
    /// it (flushes put answers first), and at once when nothing follows it.
    #[test]
    fn timing_mark_is_answered_in_order() {
        let mut decoder = LineDecoder::new(64);
        converse(&mut decoder, b"alice\r\n");
        let input = b"hi\r\n\xff\xf4\xff\xfd\x06after\r\n";
        assert_eq!(decoder.decode(input), (4, Some(Decoded::Line("hi".into()))));
        assert!(!decoder.has_replies());
        // IAC IP, IAC DO TM, then the next line: the answer waits with that line.
        assert_eq!(
            decoder.decode(&input[4..]),
            (12, Some(Decoded::Line("after".into())))
        );
        let mut sent = Vec::new();
        decoder.take_replies(&mut sent);
        // The answer to the interrupt's mark, then a new row after the `^C` the terminal echoed.
        assert_eq!(sent, [IAC, WILL, 6, CR, LF]);
        // Ctrl-C alone: the input ends with the mark, so decoding ends with a Reply.
        assert_eq!(
            decoder.decode(b"\xff\xf4\xff\xfd\x06"),
            (5, Some(Decoded::Reply))
        );
        // Every mark is answered, even one right after another, in one write.
        let (_, sent) = converse(&mut decoder, b"\xff\xfd\x06\xff\xfd\x06");
        assert_eq!(sent, [IAC, WILL, 6, CR, LF, IAC, WILL, 6, IAC, WILL, 6]);
    }

    /// The first line telnet sends (the name), before BINARY is on, with the letters whose
    /// second byte telnet takes for a control key with the high bit stripped (`К` D0 9A as Ctrl-Z,
    /// `М` D0 9C as Ctrl-\, `у` D1 83 as Ctrl-C, `я` D1 8F as Ctrl-O), each sent as that key's
    /// command and a timing mark: each is read back as its byte, and the line is neither dropped
    /// nor followed by a new row.
    #[test]
    fn first_line_letters_sent_as_commands_are_repaired() {
        let mut decoder = LineDecoder::new(64);
        let mark = [IAC, DO, TIMING_MARK];
        let mut input = Vec::new();
        for (lead, command) in [(0xd0, SUSP), (0xd0, BRK), (0xd1, IP), (0xd1, AO)] {
            input.extend_from_slice(&[b'x', lead, IAC, command]);
            input.extend_from_slice(&mark);
        }
        input.extend_from_slice(b"\r\n");
        let (events, sent) = converse(&mut decoder, &input);
        assert_eq!(events, lines(&["xКxМxуxя"]));
        let will_mark = [IAC, WILL, TIMING_MARK];
        assert_eq!(sent, [&OFFER[..], &will_mark.repeat(4)].concat());
        assert_eq!(decoder.take_return(), b"");

        // Once the client sends binary it sends those bytes as they are, and a command after a
        // lead byte is the user's (nothing to repair).
        let mut decoder = LineDecoder::new(64);
        converse(&mut decoder, b"a\r\n\xff\xfb\x00");
        let (events, _) = converse(&mut decoder, b"\xd1\xff\xf4\xff\xfd\x06\xd1\x83\r\n");
        assert_eq!(events, lines(&["у"]));
    }

    /// Ctrl-Z (`SUSP`) in telnet echoes `^Z` and asks for a timing mark, as Ctrl-C does: the
    /// answer is followed by a new row.
    #[test]
    fn ctrl_z_gets_a_new_row() {
        let mut decoder = LineDecoder::new(64);
        converse(&mut decoder, b"a\r\n");
        let (_, sent) = converse(&mut decoder, &[IAC, SUSP, IAC, DO, TIMING_MARK]);
        assert_eq!(sent, [IAC, WILL, TIMING_MARK, CR, LF]);
    }

    /// A telnet user's cursor goes back to column 0: a CR answers each line end once output is
    /// binary (the terminal then echoes Enter as a bare LF); an interrupt without a timing mark
    /// leads the next output with CR LF; an nc client never gets either.
    #[test]
    fn cursor_goes_back_to_column_0() {
        let mut decoder = LineDecoder::new(64);
        let (_, sent) = converse(&mut decoder, b"alice\r\n");
        assert_eq!(sent, OFFER);
        let (_, sent) = converse(&mut decoder, b"\xff\xfb\x00\xff\xfd\x00hi\r\n\r\n");
        assert_eq!(sent, [CR, CR]);
        assert_eq!(decoder.take_return(), b"");
        converse(&mut decoder, b"half\xff\xf4");
        assert_eq!(decoder.take_return(), b"\r\n");
        assert_eq!(decoder.take_return(), b"");
        // A line typed after the interrupt was echoed after the `^C`, and gets its CR.
        let (_, sent) = converse(&mut decoder, b"\xff\xf4next\r\n");
        assert_eq!((sent, decoder.take_return()), (vec![CR], &b""[..]));

        let mut nc = LineDecoder::new(64);
        let (_, sent) = converse(&mut nc, b"alice\nhi\n\x03\n");
        assert!(sent.is_empty());
        assert_eq!(nc.take_return(), b"");
    }

    /// A flood of `AYT` gets one answer per batch, not one per command.
    #[test]
    fn one_ayt_answer_per_batch() {
        let mut decoder = LineDecoder::new(64);
        let flood = b"\xff\xf6".repeat(1000);
        let (_, sent) = converse(&mut decoder, &flood);
        assert_eq!(sent.len(), 6 + telnet::ARE_YOU_THERE.len() + 2);
    }

    /// `AYT` gets a short visible line.
    #[test]
    fn are_you_there() {
        let mut decoder = LineDecoder::new(64);
        converse(&mut decoder, b"a\r\n");
        let (events, sent) = converse(&mut decoder, b"hal\xff\xf6f\r\n");
        assert_eq!(events, lines(&["half"]));
        assert_eq!(sent, format!("{}\r\n", telnet::ARE_YOU_THERE).as_bytes());
    }

    /// `IP` (Ctrl-C), `AO` and `EL` discard the line being typed; `EC` erases one character.
    #[test]
    fn editing_commands() {
        assert_eq!(run(64, b"abc\xff\xf4d\r\n"), lines(&["d"]));
        assert_eq!(run(64, b"abc\xff\xf5d\r\n"), lines(&["d"]));
        assert_eq!(run(64, b"abc\xff\xf8d\r\n"), lines(&["d"]));
        assert_eq!(run(64, b"abc\xff\xf7d\r\n"), lines(&["abd"]));
        assert_eq!(
            run(
                64,
                &["aб".as_bytes(), b"\xff\xf7\xff\xf7\xff\xf7x\n"].concat()
            ),
            lines(&["x"])
        );
        assert_eq!(
            run(64, &["aб".as_bytes(), b"\xff\xf7x\n"].concat()),
            lines(&["ax"])
        );
        // Ctrl-C in the middle of a refused line starts a new one.
        assert_eq!(
            run(2, b"abcd\xff\xf4ok\r\n"),
            vec![Decoded::TooLong, Decoded::Line("ok".into())]
        );
    }

    /// What telnet sends once BINARY is on both ways, Cyrillic, Greek, CJK and emoji, arrives
    /// intact; so does what it sends in line mode without BINARY, minus the commands.
    #[test]
    fn utf8_through_telnet() {
        let text = "у σ ă Ü Ú 本 🚀";
        let mut decoder = LineDecoder::new(64);
        converse(&mut decoder, b"alice\r\n\xff\xfb\x00\xff\xfd\x00");
        let (events, _) = converse(&mut decoder, format!("{text}\n").as_bytes());
        assert_eq!(events, lines(&[text]));
    }

    /// A CR, then a telnet command, then LF still counts as one line end.
    #[test]
    fn telnet_between_cr_and_lf() {
        assert_eq!(run(64, b"a\r\xff\xf1\nb\n"), lines(&["a", "b"]));
    }

    /// Backspace and DEL erase the last character, including a whole multibyte one.
    #[test]
    fn backspace() {
        assert_eq!(run(64, b"abc\x08\x08d\n"), lines(&["ad"]));
        assert_eq!(run(64, b"ab\x7fc\n"), lines(&["ac"]));
        assert_eq!(run(64, "aé\x08b\n".as_bytes()), lines(&["ab"]));
        assert_eq!(run(64, "a日\x7fb\n".as_bytes()), lines(&["ab"]));
        assert_eq!(run(64, "a🎉\x08b\n".as_bytes()), lines(&["ab"]));
        assert_eq!(run(64, b"\x08\x08\x7fa\n"), lines(&["a"]));
        assert_eq!(run(64, "é\x08\x08\x08\n".as_bytes()), lines(&[""]));
    }

    /// Backspace over bytes that are not a character erases one byte at a time.
    #[test]
    fn backspace_over_invalid_utf8() {
        assert_eq!(run(64, b"a\x80\x80\x08\n"), lines(&["a\u{fffd}"]));
        assert_eq!(
            run(64, b"a\x80\x80\x80\x80\x08\x08\x08\x08\n"),
            lines(&["a"])
        );
        // A lead byte followed by too many continuation bytes is not one character.
        assert_eq!(run(64, b"\xc3\xa9\xa9\x08\n"), lines(&["é"]));
    }

    /// Invalid UTF-8 becomes U+FFFD instead of an error.
    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            run(64, b"a\xc3(b\xf0\x9f\n"),
            lines(&["a\u{fffd}(b\u{fffd}"])
        );
    }

    /// Lines are sanitized before they are emitted.
    #[test]
    fn lines_are_sanitized() {
        assert_eq!(run(64, b"\x1b[31mred\x1b[0m\tx\0\n"), lines(&["red x"]));
        assert_eq!(run(64, "a\u{202e}b\n".as_bytes()), lines(&["ab"]));
    }

    /// A line of exactly `max_line` bytes is accepted; one byte more is refused.
    #[test]
    fn exact_limit() {
        assert_eq!(run(4, b"abcd\n"), lines(&["abcd"]));
        assert_eq!(run(4, b"abcde\n"), vec![Decoded::TooLong]);
        assert_eq!(run(4, "aé\x08bcd\n".as_bytes()), lines(&["abcd"]));
        assert_eq!(run(0, b"\n"), lines(&[""]));
        assert_eq!(
            run(0, b"a\n\n"),
            vec![Decoded::TooLong, Decoded::Line(String::new())]
        );
    }

    /// A long line is refused once, the moment it passes the limit, and its rest is skipped.
    #[test]
    fn too_long_with_newline() {
        let mut decoder = LineDecoder::new(4);
        assert_eq!(
            decoder.decode(b"abcdefgh\nok\n"),
            (5, Some(Decoded::TooLong))
        );
        assert_eq!(
            decoder.decode(b"fgh\nok\n"),
            (7, Some(Decoded::Line("ok".into())))
        );
        // Telnet is still parsed while skipping, so an escaped newline does not end the skip.
        assert_eq!(
            run(2, b"abc\xff\xfa\n\xff\xf0d\x08\r\nok\n"),
            vec![Decoded::TooLong, Decoded::Line("ok".into())]
        );
    }

    /// A long line that never ends is refused once and buffers nothing more.
    #[test]
    fn too_long_without_newline() {
        let mut decoder = LineDecoder::new(16);
        let flood = vec![b'x'; 100_000];
        assert_eq!(
            run_chunks(&mut decoder, flood.chunks(1000)),
            vec![Decoded::TooLong]
        );
        assert!(decoder.pending.capacity() <= 16);
        assert_eq!(run_chunks(&mut decoder, [&b"\nok\n"[..]]), lines(&["ok"]));
    }

    /// Buffers that grew large are freed after the line, and `shrink` frees the rest.
    #[test]
    fn memory_is_released() {
        let mut decoder = LineDecoder::new(4096);
        let long = [vec![b'x'; 3000], b"\n".to_vec()].concat();
        assert_eq!(run_chunks(&mut decoder, [&long[..]]).len(), 1);
        assert_eq!(decoder.pending.capacity(), 0);
        assert_eq!(run_chunks(&mut decoder, [&b"hi\npart"[..]]).len(), 1);
        assert!(decoder.pending.capacity() > 0);
        decoder.shrink();
        assert_eq!(decoder.pending.capacity(), 4);
        assert_eq!(run_chunks(&mut decoder, [&b"\n"[..]]), lines(&["part"]));
        decoder.shrink();
        assert_eq!(decoder.pending.capacity(), 0);
        assert_eq!(decoder.max_line(), 4096);
    }

    /// Splitting one input at every boundary, into two or single bytes, gives the same events.
    #[test]
    fn every_split_gives_same_events() {
        let mut input = b"\xff\xfd\x03\xff\xfa\x18\x00XT\xff\xff\xff\xf0".to_vec();
        input.extend_from_slice("héllo\r\nwo\x08rld\r\0".as_bytes());
        input.extend_from_slice(b"a\xff\xffb\rline\n");
        input.extend_from_slice(b"waytoolongforthelimit\r\n\x1b[1mbold\n\r");
        let whole = run(16, &input);
        assert_eq!(whole.len(), 7);
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(
                run_chunks(&mut LineDecoder::new(16), [a, b]),
                whole,
                "split at {at}"
            );
        }
        let bytes = run_chunks(&mut LineDecoder::new(16), input.chunks(1));
        assert_eq!(bytes, whole);
    }

    /// Bytes that exercise line ends, telnet, backspace, UTF-8 and escapes.
    fn biased_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => prop::sample::select(vec![
                b'\r', b'\n', 0, IAC, SB, SE, WILL, DONT, DO, 0xf1, IP, AYT, EC, EL, 6, BS, DEL, 0x1b,
                b'[', b'm', b'a',
                b' ', b'\t', 0xc3, 0xa9, 0xe6, 0x97, 0xa5, 0xf0, 0x9f, 0x80, 0xc2, 0x9b, 0xe2,
                0x80, 0xae,
            ]),
            1 => any::<u8>(),
        ]
    }

    /// Input bytes, either arbitrary or biased towards the interesting ones.
    fn input_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            prop::collection::vec(biased_byte(), 0..512),
        ]
    }

    /// Cuts `input` into pieces of the given sizes, cycling through them.
    fn chunk<'a>(input: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        let mut rest = input;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at((*size).min(rest.len()));
            pieces.push(piece);
            rest = tail;
        }
        pieces
    }

    proptest! {
        /// Any input in any chunking decodes without panicking, to clean and bounded lines, and
        /// to the same events as the whole input at once.
        #[test]
        fn chunked_decoding_is_safe_and_consistent(
            input in input_bytes(),
            sizes in prop::collection::vec(1usize..24, 1..8),
            max_line in 0usize..40,
        ) {
            let whole = run(max_line, &input);
            let mut decoder = LineDecoder::new(max_line);
            let chunked = run_chunks(&mut decoder, chunk(&input, &sizes));
            prop_assert!(decoder.pending.len() <= max_line);
            for event in &chunked {
                if let Decoded::Line(line) = event {
                    prop_assert!(is_clean(line));
                    prop_assert_eq!(&sanitize(line), line);
                    prop_assert!(line.len() <= 3 * max_line);
                }
            }
            prop_assert_eq!(chunked, whole);
        }
    }
}
