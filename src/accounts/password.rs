//! A password in memory: it cannot be printed by accident.

use std::fmt;

/// Shortest password accepted. Not configurable: with the login delay, 8 characters is out of
/// reach of online guessing, and shorter ones are too easy to shoulder-surf.
pub const MIN_LEN: usize = 8;

/// A password as typed. `Debug` and `Display` print `(hidden)`, so it never reaches a log line.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: String) -> Secret {
        Secret(text)
    }

    /// The text, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is long enough to register.
    pub fn long_enough(&self) -> bool {
        self.0.chars().count() >= MIN_LEN
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(hidden)")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.0 == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("hunter22".into());
        assert_eq!(format!("{s:?}"), "(hidden)");
        assert!(s.long_enough());
        assert!(!Secret::new("short".into()).long_enough());
    }
}
