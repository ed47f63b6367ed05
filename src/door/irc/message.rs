//! One IRC message: parsing what a client sends, writing what the server says.
//!
//! The grammar is the modern IRC client protocol's (RFC 1459/2812 as clarified by
//! modern.ircdocs.horse) plus IRCv3 message tags:
//! `[@tags SPACE] [:source SPACE] command *(SPACE param) [SPACE :trailing]`. Parameters are
//! separated by one or more spaces; the last may start with `:` and then holds spaces, or be
//! empty. After fourteen middle parameters the rest of the line is the fifteenth, colon or not
//! (RFC 2812). Commands are matched without regard to case.
//!
//! Two limits apply to what a client sends, each answered with `417 ERR_INPUTTOOLONG` rather
//! than a disconnect: [`MAX_BODY`] bytes for everything after the tags, and
//! [`MAX_CLIENT_TAG_DATA`] bytes of tag data. Lines must be UTF-8 (the door advertises
//! `UTF8ONLY`) and hold no NUL. Parsing borrows from the line and never allocates.
//!
//! [`Writer`] builds outgoing lines straight into an output buffer. It never lets a parameter
//! end the line early or split into two: CR, LF and NUL become spaces, and a middle parameter
//! that could not be read back as one parameter is repaired.

use crate::door::irc::tags::{Tags, MAX_CLIENT_TAG_DATA};

/// The most bytes of a message after its tags, CR LF excluded (512 with them). Not
/// configurable: fixed by the IRC protocol, and clients size their lines by it.
pub const MAX_BODY: usize = 510;

/// The most parameters a message has (RFC 2812); the fifteenth takes the rest of the line.
pub const MAX_PARAMS: usize = 15;

/// Why a received line is not a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// Nothing but spaces: ignored silently, as the protocol says of empty messages.
    Empty,
    /// More than [`MAX_CLIENT_TAG_DATA`] bytes of tags: answer `417`.
    TagsTooLong,
    /// More than [`MAX_BODY`] bytes after the tags: answer `417`.
    TooLong,
    /// Tags or a source, but no command.
    NoCommand,
    /// A NUL byte, which no IRC message may contain.
    Nul,
    /// Not UTF-8. `command` is the command word, when it is readable, for
    /// `FAIL <command> INVALID_UTF8`.
    InvalidUtf8 { command: Option<&'a str> },
}

/// A parsed message, borrowing from the received line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The tags, still escaped.
    pub tags: Tags<'a>,
    /// The source (`:nick!user@host`) clients may send and servers ignore.
    pub source: Option<&'a str>,
    /// The command as sent; compare with [`Message::is`].
    pub command: &'a str,
    params: [&'a str; MAX_PARAMS],
    n_params: usize,
}

impl<'a> Message<'a> {
    /// The parameters, the trailing one included (without its colon).
    pub fn params(&self) -> &[&'a str] {
        &self.params[..self.n_params]
    }

    /// Parameter `i`, if sent.
    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params().get(i).copied()
    }

    /// Whether the command is `name`, ignoring case.
    pub fn is(&self, name: &str) -> bool {
        self.command.eq_ignore_ascii_case(name)
    }
}

/// Parses one line as a client sent it, without its line ending.
pub fn parse(line: &[u8]) -> Result<Message<'_>, ParseError<'_>> {
    if line.contains(&0) {
        return Err(ParseError::Nul);
    }
    let (tags, body) = match line.strip_prefix(b"@") {
        Some(after) => {
            let end = after.iter().position(|&b| b == b' ');
            let data = &after[..end.unwrap_or(after.len())];
            if data.len() > MAX_CLIENT_TAG_DATA {
                return Err(ParseError::TagsTooLong);
            }
            let Some(end) = end else {
                return Err(ParseError::NoCommand);
            };
            (Some(data), trim_start(&after[end..]))
        }
        None => (None, trim_start(line)),
    };
    if body.len() > MAX_BODY {
        return Err(ParseError::TooLong);
    }
    let Ok(body) = std::str::from_utf8(body) else {
        return Err(ParseError::InvalidUtf8 {
            command: command_word(body),
        });
    };
    let tags = match tags.map(std::str::from_utf8) {
        None => Tags::default(),
        Some(Ok(raw)) => Tags::new(raw),
        Some(Err(_)) => {
            return Err(ParseError::InvalidUtf8 {
                command: command_word(body.as_bytes()),
            })
        }
    };
    parse_body(tags, body)
}

fn parse_body<'a>(tags: Tags<'a>, body: &'a str) -> Result<Message<'a>, ParseError<'a>> {
    let mut rest = body;
    let mut source = None;
    if let Some(after) = rest.strip_prefix(':') {
        let (src, tail) = after.split_once(' ').unwrap_or((after, ""));
        source = Some(src);
        rest = tail.trim_start_matches(' ');
    }
    let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if command.is_empty() {
        return Err(if tags.is_empty() && source.is_none() {
            ParseError::Empty
        } else {
            ParseError::NoCommand
        });
    }
    let mut message = Message {
        tags,
        source,
        command,
        params: [""; MAX_PARAMS],
        n_params: 0,
    };
    loop {
        rest = rest.trim_start_matches(' ');
        if rest.is_empty() {
            break;
        }
        if let Some(trailing) = rest.strip_prefix(':') {
            message.push(trailing);
            break;
        }
        if message.n_params == MAX_PARAMS - 1 {
            message.push(rest);
            break;
        }
        let (param, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        message.push(param);
        rest = tail;
    }
    // `PRIVMSG #a :` has an empty trailing parameter; the loop above only sees it when the
    // colon is there, so nothing else to do.
    Ok(message)
}

impl<'a> Message<'a> {
    fn push(&mut self, param: &'a str) {
        self.params[self.n_params] = param;
        self.n_params += 1;
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

/// The command word of an undecodable body, when it is itself readable.
fn command_word(body: &[u8]) -> Option<&str> {
    let mut rest = body;
    if rest.first() == Some(&b':') {
        let space = rest.iter().position(|&b| b == b' ')?;
        rest = trim_start(&rest[space..]);
    }
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end])
        .ok()
        .filter(|w| !w.is_empty())
}

/// Writes one outgoing message into a buffer: `Writer::new(out, tags, source, "PRIVMSG")
/// .param("#room").trailing("hello")`. Dropping the writer without `trailing`, `last` or `end`
/// leaves the line unfinished, so every path ends with one of them.
#[must_use = "finish the line with trailing, last or end"]
pub struct Writer<'b> {
    buf: &'b mut Vec<u8>,
}

impl<'b> Writer<'b> {
    /// Starts a message. `tags` is escaped tag data without the `@` (empty for none); `source`
    /// is written after a `:`.
    pub fn new(buf: &'b mut Vec<u8>, tags: &str, source: Option<&str>, command: &str) -> Self {
        if !tags.is_empty() {
            buf.push(b'@');
            push_clean(buf, tags);
            buf.push(b' ');
        }
        if let Some(source) = source {
            buf.push(b':');
            push_clean(buf, source);
            buf.push(b' ');
        }
        push_clean(buf, command);
        Writer { buf }
    }

    /// Adds a middle parameter. One that could not be read back as one parameter is repaired
    /// rather than refused, since client text reaches some (a bad channel name echoed in an
    /// error): empty becomes `*`, spaces become `_`, a leading `:` gets a `_` before it.
    pub fn param(self, param: &str) -> Self {
        self.buf.push(b' ');
        if param.is_empty() {
            self.buf.push(b'*');
        } else {
            if param.starts_with(':') {
                self.buf.push(b'_');
            }
            let start = self.buf.len();
            push_clean(self.buf, param);
            for b in &mut self.buf[start..] {
                if *b == b' ' {
                    *b = b'_';
                }
            }
        }
        self
    }

    /// Adds each of `params` as a middle parameter.
    pub fn params(mut self, params: &[&str]) -> Self {
        for p in params {
            self = self.param(p);
        }
        self
    }

    /// Ends the line with a trailing parameter, always written with its colon.
    pub fn trailing(self, param: &str) {
        self.buf.extend_from_slice(b" :");
        push_clean(self.buf, param);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// Ends the line with a last parameter, with a colon only where one is needed.
    pub fn last(self, param: &str) {
        if is_middle(param) {
            self.param(param).end();
        } else {
            self.trailing(param);
        }
    }

    /// Ends the line.
    pub fn end(self) {
        self.buf.extend_from_slice(b"\r\n");
    }
}

/// Whether `param` can be sent as a middle parameter.
pub fn is_middle(param: &str) -> bool {
    !param.is_empty() && !param.starts_with(':') && !param.contains(' ')
}

/// Appends `s` with CR, LF and NUL turned into spaces, so no text can end a line early.
fn push_clean(buf: &mut Vec<u8>, s: &str) {
    let start = buf.len();
    buf.extend_from_slice(s.as_bytes());
    if s.contains(['\r', '\n', '\0']) {
        for b in &mut buf[start..] {
            if matches!(*b, b'\r' | b'\n' | 0) {
                *b = b' ';
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(line: &str) -> Vec<&str> {
        parse(line.as_bytes()).expect("parses").params().to_vec()
    }

    #[test]
    fn parses_the_parts_of_a_message() {
        let m = parse(b"@a=1;+b :nick!u@h PRIVMSG #chan :hello there").unwrap();
        assert_eq!(m.tags.raw(), "a=1;+b");
        assert_eq!(m.source, Some("nick!u@h"));
        assert!(m.is("privmsg"));
        assert_eq!(m.params(), ["#chan", "hello there"]);
    }

    #[test]
    fn trailing_and_empty_parameters() {
        assert_eq!(params("PRIVMSG #chan :"), ["#chan", ""]);
        assert_eq!(params("TOPIC #test :"), ["#test", ""]);
        assert_eq!(params("PING :"), [""]);
        assert_eq!(params("USER u s e r"), ["u", "s", "e", "r"]);
        assert_eq!(params("USER u s e r   "), ["u", "s", "e", "r"]);
        assert_eq!(
            params("USER  u  0 *  :Real  Name "),
            ["u", "0", "*", "Real  Name "]
        );
        assert_eq!(params("PRIVMSG #a ::-)"), ["#a", ":-)"]);
        assert!(params("QUIT").is_empty());
    }

    #[test]
    fn the_fifteenth_parameter_takes_the_rest_of_the_line() {
        let line = format!(
            "CMD {} x y :z",
            (1..=14)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let p = params(&line);
        assert_eq!(p.len(), 15);
        assert_eq!(p[14], "x y :z");
    }

    #[test]
    fn refuses_what_is_not_a_message() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"   "), Err(ParseError::Empty));
        assert_eq!(parse(b"@a=b"), Err(ParseError::NoCommand));
        assert_eq!(parse(b":src"), Err(ParseError::NoCommand));
        assert_eq!(parse(b"PRIVMSG a :b\0c"), Err(ParseError::Nul));
        assert_eq!(
            parse(b"PRIVMSG bar hi\xaa"),
            Err(ParseError::InvalidUtf8 {
                command: Some("PRIVMSG")
            })
        );
        assert_eq!(
            parse(b"@label=xyz PRIVMSG #qux hi\xaa"),
            Err(ParseError::InvalidUtf8 {
                command: Some("PRIVMSG")
            })
        );
    }

    /// irctest LengthLimitTestCase: a 510-byte line (512 with CR LF) is accepted, 511 is
    /// `417`.
    #[test]
    fn body_limit_is_510_bytes_without_the_line_end() {
        let at_limit = format!("PING {}", "x".repeat(505));
        assert_eq!(at_limit.len(), 510);
        assert!(parse(at_limit.as_bytes()).is_ok());
        let over = format!("PING {}", "x".repeat(506));
        assert_eq!(parse(over.as_bytes()), Err(ParseError::TooLong));
    }

    /// irctest testLengthLimits: 4094 bytes of tag data (4096 with `@` and the space) pass,
    /// 4095 are `417`; the body limit counts separately.
    #[test]
    fn tag_limit_is_4094_bytes_of_data() {
        let max = format!("@foo=bar;+baz={} TAGMSG #test", "a".repeat(4081));
        assert_eq!(max.find("TAGMSG"), Some(4096));
        let m = parse(max.as_bytes()).unwrap();
        assert_eq!(m.tags.get("+baz").map(|v| v.len()), Some(4081));
        let excess = format!("@foo=bar;+baz={} TAGMSG #test", "a".repeat(4082));
        assert_eq!(parse(excess.as_bytes()), Err(ParseError::TagsTooLong));
        let max_privmsg = format!(
            "@foo=bar;+baz={} PRIVMSG #test {}",
            "a".repeat(4081),
            "b".repeat(496)
        );
        assert_eq!(max_privmsg.len(), 4096 + 510);
        assert!(parse(max_privmsg.as_bytes()).is_ok());
    }

    #[test]
    fn writer_puts_a_colon_only_where_needed_with_last() {
        let mut out = Vec::new();
        Writer::new(&mut out, "", Some("srv"), "PONG")
            .param("srv")
            .last("abc");
        Writer::new(&mut out, "", Some("srv"), "PONG")
            .param("srv")
            .last("");
        Writer::new(&mut out, "time=x", None, "PRIVMSG")
            .param("#a")
            .last("a b");
        Writer::new(&mut out, "", None, "PRIVMSG")
            .param("#a")
            .last(":)");
        Writer::new(&mut out, "", None, "CAP")
            .params(&["*", "LIST"])
            .trailing("");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            ":srv PONG srv abc\r\n:srv PONG srv :\r\n@time=x PRIVMSG #a :a b\r\n\
             PRIVMSG #a ::)\r\nCAP * LIST :\r\n"
        );
    }

    #[test]
    fn writer_repairs_what_cannot_be_a_middle_parameter() {
        let mut out = Vec::new();
        Writer::new(&mut out, "", None, "X")
            .param("")
            .param("a b")
            .param(":c")
            .end();
        assert_eq!(out, b"X * a_b _:c\r\n");
    }

    #[test]
    fn writer_never_lets_text_end_the_line() {
        let mut out = Vec::new();
        Writer::new(&mut out, "", None, "PRIVMSG")
            .param("#a")
            .trailing("evil\r\nQUIT :x\0");
        assert_eq!(out, b"PRIVMSG #a :evil  QUIT :x \r\n");
    }

    proptest! {
        /// What the writer writes, the parser reads back as the same parameters.
        #[test]
        fn written_messages_parse_back(
            middles in proptest::collection::vec("[!-9;-~][!-~]{0,10}", 0..14),
            last in "[^\r\n\0]{0,40}",
        ) {
            let mut out = Vec::new();
            let mut w = Writer::new(&mut out, "", Some("srv"), "CMD");
            for m in &middles {
                w = w.param(m);
            }
            w.last(&last);
            prop_assert!(out.ends_with(b"\r\n"));
            let line = &out[..out.len() - 2];
            prop_assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
            let msg = parse(line).unwrap();
            let mut expected: Vec<&str> = middles.iter().map(String::as_str).collect();
            expected.push(&last);
            prop_assert_eq!(msg.params(), &expected[..]);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = parse(&bytes);
        }
    }
}
