//! The JSON protocol between the chat page and the server, owned by the web door and documented
//! in docs/WEB.md.
//!
//! The page sends one JSON object per WebSocket text frame ([`ClientMsg`]); the server sends one
//! or more JSON objects per text frame, each ended by `\n` ([`ServerMsg::write_to`]), so the hub
//! can append pre-rendered messages to an outbox and the session can send the whole outbox as one
//! frame. serde_json never writes a raw newline inside a value, so `\n` is a safe separator.
//!
//! This module knows JSON and the message shapes only: nothing about names, rooms, the hub or
//! the socket. Limits on what a client may send are checked here, at the edge (see [`parse`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A message id: the history's `messages.id`, increasing in relay order.
pub type MessageId = i64;

/// What the page may send. Unknown fields are ignored, so a newer page can talk to an older
/// server; an unknown `type` is an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    /// The first message: the name to register, and where a reconnecting page left off.
    Hello {
        name: String,
        /// Used only if the server asks for a password, and only where passwords may travel.
        #[serde(default)]
        password: Option<Password>,
        #[serde(default)]
        resume: Option<Resume>,
    },
    /// The answer to a password prompt.
    Password { password: Password },
    /// A line typed by the user: chat text, or any line-door `/command` as text.
    Say { text: String },
    /// An older page of a room's history: up to `limit` lines older than `before`.
    History {
        #[serde(default)]
        room: Option<String>,
        before: MessageId,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Who is in a room (the user's own room when `room` is absent).
    Who {
        #[serde(default)]
        room: Option<String>,
    },
    /// The rooms with people in them.
    Rooms {},
    /// Moves the user to `room`, as `/join` does.
    Join { room: String },
}

/// Where a reconnecting page left off: its room and the newest line id it showed, and the
/// token its last session was welcomed with (to take its name back from that session).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Resume {
    pub room: String,
    pub last_id: MessageId,
    #[serde(default)]
    pub token: Option<String>,
}

/// A password as received; `Debug` never shows it, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// The password's text, for the login check only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// Why a client message was refused. The connection stays open for every one of these: the
/// frame size limit (see `ws.rs`) is what protects memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, not an object, an unknown `type`, or a field of the wrong type.
    #[error("not a valid message: {0}")]
    Invalid(String),
    /// A text field longer than the line door's `--max-line`, in bytes.
    #[error("line too long (max {max} bytes), not sent")]
    TooLong { max: usize },
    /// A text field holding a line break: one message carries one line.
    #[error("one line per message: the text holds a line break")]
    Multiline,
}

impl ParseError {
    /// The [`ErrorCode`] the page is told.
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::Invalid(_) => ErrorCode::BadMessage,
            ParseError::TooLong { .. } => ErrorCode::TooLong,
            ParseError::Multiline => ErrorCode::BadMessage,
        }
    }
}

/// Parses one text frame from the page. Every text field (name, password, text, room) must be
/// at most `max_line` bytes (the line door's limit, so both doors accept the same lines) and
/// hold no line break.
pub fn parse(frame: &str, max_line: usize) -> Result<ClientMsg, ParseError> {
    let msg: ClientMsg =
        serde_json::from_str(frame).map_err(|e| ParseError::Invalid(e.to_string()))?;
    let fields: Vec<&str> = match &msg {
        ClientMsg::Hello {
            name,
            password,
            resume,
        } => [Some(name.as_str()), password.as_ref().map(Password::expose)]
            .into_iter()
            .chain(
                resume
                    .iter()
                    .flat_map(|r| [Some(r.room.as_str()), r.token.as_deref()]),
            )
            .flatten()
            .collect(),
        ClientMsg::Password { password } => vec![password.expose()],
        ClientMsg::Say { text } => vec![text],
        ClientMsg::History { room, .. } | ClientMsg::Who { room } => {
            room.iter().map(|r| r.as_str()).collect()
        }
        ClientMsg::Rooms {} => vec![],
        ClientMsg::Join { room } => vec![room],
    };
    for field in fields {
        if field.len() > max_line {
            return Err(ParseError::TooLong { max: max_line });
        }
        if field.contains(['\n', '\r']) {
            return Err(ParseError::Multiline);
        }
    }
    Ok(msg)
}

/// What the server sends. Borrowed fields, so rendering a line costs no copies before the JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<'a> {
    /// Asks for the name or the password; `text` says why (for example, why a name was refused).
    Prompt { field: PromptField, text: &'a str },
    /// Registered: the user's name and room, and the token a reconnecting page sends back in
    /// its `resume` to take the name back from this session if it is still held.
    Welcome {
        name: &'a str,
        room: &'a str,
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
    },
    /// The user is now in `room` (after `/join`): the page clears its view and expects history.
    Room {
        room: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        topic: Option<&'a str>,
    },
    /// A public line, live or echoed back to its sender (with its id).
    Line(Line<'a>),
    /// A chunk of history, oldest first. A page of history is one or more chunks; the last has
    /// `done: true` and says what lies before it.
    History {
        room: &'a str,
        /// Which request this page answers.
        page: HistoryPage,
        lines: &'a [Line<'a>],
        done: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        older: Option<Older>,
        /// On a resume: lines were missed between the page's last line and this replay.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        gap: bool,
    },
    /// Something that happened (a join, a topic) or a reply to the user (`/help`, `/topic`).
    Notice(Notice<'a>),
    /// A private line, to the user (`to` is the user) or echoed to its sender.
    Private {
        time: i64,
        sender: &'a str,
        to: &'a str,
        text: &'a str,
        /// A `/me` said privately (from an IRC user's CTCP `ACTION` to a nick).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        action: bool,
    },
    /// Who is in a room, in the order they arrived; `more` when the list goes on.
    Who {
        room: &'a str,
        names: &'a [&'a str],
        more: bool,
    },
    /// The rooms with people in them.
    Rooms { rooms: &'a [RoomCount<'a>] },
    /// A request was refused; the connection stays.
    Error { code: ErrorCode, text: &'a str },
    /// The server is closing this connection; `reconnect` says whether trying again makes sense.
    Bye {
        reason: ByeReason,
        text: &'a str,
        reconnect: bool,
    },
}

impl ServerMsg<'_> {
    /// Appends the message as one JSON line (ending in `\n`) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Serializing these types into a Vec cannot fail: every map key is a string and every
        // value is a plain string, number or bool. Should it ever, the message is left out (and
        // any half-written bytes removed) rather than sending broken JSON.
        let len = out.len();
        match serde_json::to_writer(&mut *out, self) {
            Ok(()) => out.push(b'\n'),
            Err(e) => {
                out.truncate(len);
                log::error!("web door: could not render a message: {e}");
            }
        }
    }

    /// The message as one JSON line (ending in `\n`).
    pub fn to_line(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        // serde_json writes UTF-8 only.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// One public line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line<'a> {
    pub id: MessageId,
    /// When it was relayed, in milliseconds since the Unix epoch (UTC).
    pub time: i64,
    pub room: &'a str,
    pub sender: &'a str,
    pub kind: LineKind,
    pub text: &'a str,
}

/// A line said, or a `/me` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Say,
    Action,
}

/// A notice: `text` is the sentence to show; the other fields let the page act on it (update
/// the list of who is in the room) without reading the sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice<'a> {
    pub kind: NoticeKind,
    /// The room it happened in; absent for replies to the user alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<&'a str>,
    /// Who it is about (who joined, left, was renamed, was kicked, set the topic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// A rename's new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<&'a str>,
    /// A topic notice's new topic (empty when cleared).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<&'a str>,
    pub text: &'a str,
}

/// The kinds of notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Joined,
    Left,
    Renamed,
    Kicked,
    Topic,
    /// From the server to everyone (shutting down, chat paused and resumed).
    Server,
    /// A reply to the user's own command (`/help`, `/topic`, `/ignore`, ...).
    Info,
}

/// Which request a history page answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryPage {
    /// The replay on entering a room (after `hello` or a move): the room's recent lines.
    Join,
    /// The replay after `hello` with `resume`: the lines after `last_id`.
    Resume,
    /// The answer to a `history` request.
    Older,
}

/// What lies before a history page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Older {
    /// More lines: ask with `history` before the first id shown.
    More,
    /// This is the beginning of the room's history.
    None,
    /// Older lines were removed by the server's retention policy.
    Removed,
}

/// What the page is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptField {
    Name,
    Password,
}

/// A room and its number of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomCount<'a> {
    pub room: &'a str,
    pub users: u32,
}

/// Why a request was refused, for the page to branch on; the `text` is for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a valid message (see [`ParseError`]).
    BadMessage,
    /// A text field over `--max-line`.
    TooLong,
    /// A name refused (invalid, taken, held, reserved, banned); a `prompt` follows.
    Name,
    /// A wrong password, or a password refused on this connection; a `prompt` follows.
    Password,
    /// A command refused: unknown, bad arguments, operators only.
    Command,
    /// Muted, or over a limit (private messages, ignore list).
    Refused,
    /// Sent before `hello` was accepted, or `hello` sent twice.
    State,
}

/// Why the server closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeReason {
    Quit,
    Kicked,
    Banned,
    /// A limit (not reading fast enough, too many wrong passwords, no name in time).
    Limit,
    Shutdown,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::*;

    fn line<'a>(text: &'a str, sender: &'a str) -> Line<'a> {
        Line {
            id: 7,
            time: 1_700_000_000_123,
            room: "lobby",
            sender,
            kind: LineKind::Action,
            text,
        }
    }

    /// A line renders as the documented object, on one line ending in `\n`.
    #[test]
    fn a_line_renders_as_documented() {
        let out = ServerMsg::Line(line("waves", "bob")).to_line();
        assert_eq!(
            out,
            "{\"type\":\"line\",\"id\":7,\"time\":1700000000123,\"room\":\"lobby\",\
             \"sender\":\"bob\",\"kind\":\"action\",\"text\":\"waves\"}\n"
        );
    }

    /// Optional fields are left out rather than sent as null, and a history chunk carries its
    /// lines and, when done, what lies before it.
    #[test]
    fn optional_fields_are_left_out() {
        let lines = [line("hi", "bob")];
        let msg = ServerMsg::History {
            room: "lobby",
            page: HistoryPage::Older,
            lines: &lines,
            done: true,
            older: Some(Older::Removed),
            gap: false,
        };
        let value: Value = serde_json::from_str(&msg.to_line()).expect("json");
        assert_eq!(value["older"], "removed");
        assert_eq!(value["lines"][0]["text"], "hi");
        assert!(value.get("gap").is_none());
        let notice = ServerMsg::Notice(Notice {
            kind: NoticeKind::Info,
            room: None,
            name: None,
            to: None,
            topic: None,
            text: "help",
        });
        assert_eq!(
            notice.to_line(),
            "{\"type\":\"notice\",\"kind\":\"info\",\"text\":\"help\"}\n"
        );
    }

    /// Every kind of client message parses from its documented shape; unknown fields are
    /// ignored.
    #[test]
    fn client_messages_parse() {
        let hello =
            r#"{"type":"hello","name":"alice","resume":{"room":"rust","last_id":42},"v":2}"#;
        assert_eq!(
            parse(hello, 1024),
            Ok(ClientMsg::Hello {
                name: "alice".into(),
                password: None,
                resume: Some(Resume {
                    room: "rust".into(),
                    last_id: 42,
                    token: None,
                }),
            })
        );
        let token = format!(
            r#"{{"type":"hello","name":"a","resume":{{"room":"r","last_id":1,"token":"{}"}}}}"#,
            "f".repeat(40)
        );
        assert_eq!(parse(&token, 32), Err(ParseError::TooLong { max: 32 }));
        let cases = [
            (
                r#"{"type":"say","text":"/me waves"}"#,
                ClientMsg::Say {
                    text: "/me waves".into(),
                },
            ),
            (
                r#"{"type":"history","before":10}"#,
                ClientMsg::History {
                    room: None,
                    before: 10,
                    limit: None,
                },
            ),
            (r#"{"type":"who"}"#, ClientMsg::Who { room: None }),
            (r#"{"type":"rooms"}"#, ClientMsg::Rooms {}),
            (
                r#"{"type":"join","room":"rust"}"#,
                ClientMsg::Join {
                    room: "rust".into(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text, 1024), Ok(expected), "{text}");
        }
        let password = parse(r#"{"type":"password","password":"hunter22"}"#, 1024);
        assert_eq!(
            format!("{password:?}"),
            "Ok(Password { password: Password(..) })"
        );
    }

    /// Bad messages are refused with a reason, never a panic: not JSON, wrong types, unknown
    /// types, text over the limit (counted in bytes) and line breaks.
    #[test]
    fn bad_messages_are_refused() {
        for bad in [
            "",
            "null",
            "[]",
            "{}",
            r#"{"type":"sing"}"#,
            r#"{"type":"say","text":5}"#,
        ] {
            assert!(
                matches!(parse(bad, 1024), Err(ParseError::Invalid(_))),
                "{bad}"
            );
        }
        let long = json!({"type": "say", "text": "é".repeat(9)}).to_string();
        assert_eq!(parse(&long, 17), Err(ParseError::TooLong { max: 17 }));
        assert!(parse(&long, 18).is_ok());
        let two = json!({"type": "hello", "name": "a\nb"}).to_string();
        assert_eq!(parse(&two, 1024), Err(ParseError::Multiline));
        let deep = "[".repeat(10_000);
        assert!(matches!(parse(&deep, 1024), Err(ParseError::Invalid(_))));
    }

    proptest! {
        /// Any text, whatever its characters (controls, quotes, U+2028/2029, astral planes),
        /// renders as one line of strict JSON that a JSON parser reads back unchanged.
        #[test]
        fn any_text_round_trips_through_json(text in any::<String>(), sender in "\\PC{0,8}") {
            let out = ServerMsg::Line(line(&text, &sender)).to_line();
            prop_assert_eq!(out.find('\n'), Some(out.len() - 1));
            prop_assert!(!out.contains('\r'));
            let value: Value = serde_json::from_str(&out).expect("valid json");
            prop_assert_eq!(value["text"].as_str(), Some(text.as_str()));
            prop_assert_eq!(value["sender"].as_str(), Some(sender.as_str()));
        }

        /// Any one-line text a page sends in `say` arrives unchanged.
        #[test]
        fn any_said_text_parses_back(text in "[^\r\n]{0,64}") {
            let frame = json!({"type": "say", "text": text}).to_string();
            prop_assert_eq!(parse(&frame, 1024), Ok(ClientMsg::Say { text }));
        }
    }
}
