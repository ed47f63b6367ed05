//! IRCv3 `labeled-response`: the replies to a command that carried `@label=...` come back
//! marked with it, so the client can pair them up.
//!
//! [`wrap`] marks a finished response: no lines become `ACK` with the label, one line gets the
//! label tag, several go inside a `labeled-response` batch whose opening line carries the
//! label. Lines already inside a batch of their own (a `chathistory` batch) keep it: only that
//! batch's opening and closing lines join the outer one, as nested batches work.
//!
//! The capability is offered only once the wiring gathers every reply to a command (including
//! the echo of a message) before writing it; until then [`crate::door::irc::caps::default_offer`]
//! leaves it out, because a half-labeled response is worse than none.

use crate::door::irc::message::Writer;
use crate::door::irc::tags::escape;

/// Writes `response` (complete lines) as the reply to a command labeled `label`.
pub fn wrap(label: &str, server: &str, response: &[u8], batch_id: &str, out: &mut Vec<u8>) {
    let label_tag = format!("label={}", escape(label));
    let lines: Vec<&[u8]> = response.split_inclusive(|&b| b == b'\n').collect();
    match lines.as_slice() {
        [] => Writer::new(out, &label_tag, Some(server), "ACK").end(),
        [line] => add_tag(line, &label_tag, out),
        _ => {
            Writer::new(out, &label_tag, Some(server), "BATCH")
                .param(&format!("+{batch_id}"))
                .last("labeled-response");
            let batch_tag = format!("batch={batch_id}");
            for line in lines {
                if has_batch_tag(line) {
                    out.extend_from_slice(line);
                } else {
                    add_tag(line, &batch_tag, out);
                }
            }
            Writer::new(out, "", Some(server), "BATCH").last(&format!("-{batch_id}"));
        }
    }
}

/// Appends `line` with `tag` added to its tags.
fn add_tag(line: &[u8], tag: &str, out: &mut Vec<u8>) {
    out.push(b'@');
    out.extend_from_slice(tag.as_bytes());
    match line.strip_prefix(b"@") {
        Some(rest) => {
            out.push(b';');
            out.extend_from_slice(rest);
        }
        None => {
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
}

/// Whether `line` already belongs to a batch.
fn has_batch_tag(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"@") else {
        return false;
    };
    let tags = &rest[..rest.iter().position(|&b| b == b' ').unwrap_or(rest.len())];
    tags.split(|&b| b == b';').any(|t| t.starts_with(b"batch="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(response: &str) -> String {
        let mut out = Vec::new();
        wrap("xyz", "srv", response.as_bytes(), "7", &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn no_reply_is_an_ack() {
        assert_eq!(wrapped(""), "@label=xyz :srv ACK\r\n");
    }

    /// irctest testDirectMessageEcho: the echo carries the label with its other tags.
    #[test]
    fn one_line_gets_the_label() {
        assert_eq!(
            wrapped(":srv PONG srv x\r\n"),
            "@label=xyz :srv PONG srv x\r\n"
        );
        assert_eq!(
            wrapped("@+example-client-tag=example-value :a!b@c PRIVMSG bob :hi\r\n"),
            "@label=xyz;+example-client-tag=example-value :a!b@c PRIVMSG bob :hi\r\n"
        );
    }

    #[test]
    fn several_lines_go_in_a_batch_and_nested_batches_stay_nested() {
        let response =
            ":srv BATCH +1 chathistory #c\r\n@batch=1 :a!b@c PRIVMSG #c :x\r\n:srv BATCH -1\r\n";
        assert_eq!(
            wrapped(response),
            "@label=xyz :srv BATCH +7 labeled-response\r\n\
             @batch=7 :srv BATCH +1 chathistory #c\r\n\
             @batch=1 :a!b@c PRIVMSG #c :x\r\n\
             @batch=7 :srv BATCH -1\r\n\
             :srv BATCH -7\r\n"
        );
    }

    #[test]
    fn labels_are_escaped() {
        let mut out = Vec::new();
        wrap("a b;c", "srv", b"", "1", &mut out);
        assert_eq!(out, b"@label=a\\sb\\:c :srv ACK\r\n");
    }
}
