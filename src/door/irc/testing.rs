//! Test support: reading back what the door wrote, checking as it goes that every line parses
//! and fits in 512 bytes after its tags.

use crate::door::irc::message::{parse, MAX_BODY};

/// Each line of `out` as its command and parameters.
pub fn replies(out: &[u8]) -> Vec<(String, Vec<String>)> {
    String::from_utf8_lossy(out)
        .split_terminator("\r\n")
        .map(|line| {
            let body = match line.strip_prefix('@') {
                Some(tagged) => tagged.split_once(' ').map_or("", |(_, body)| body),
                None => line,
            };
            assert!(body.len() <= MAX_BODY, "{} bytes: {line}", body.len() + 2);
            let m = parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e:?}"));
            let params = m.params().iter().map(|p| p.to_string()).collect();
            (m.command.to_owned(), params)
        })
        .collect()
}

/// The command (or numeric) of each line of `out`.
pub fn commands(out: &[u8]) -> Vec<String> {
    replies(out)
        .into_iter()
        .map(|(command, _)| command)
        .collect()
}
