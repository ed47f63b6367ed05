//! Why something was refused, as the `kind` label of `smolchat_refusals_total`.
//!
//! One variant per limit or ban a user can run into; the label values are the table's
//! ([`super::table::REFUSALS`], in the same order), so docs/DEPLOY.md and the code cannot differ.

use super::table::REFUSALS;

/// Kinds of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// At accept: `--max-clients` reached and every connection has a name.
    Full,
    /// At accept: `--max-per-ip` connections from the address already.
    PerAddress,
    /// At accept: `--connects-per-minute` from the address.
    ConnectRate,
    /// At accept: the address is banned.
    BannedAddress,
    /// A connection still choosing a name, evicted by a newcomer (`--max-unregistered`).
    Eviction,
    /// No name within `--register-timeout`.
    NameDeadline,
    /// A banned name at the name prompt or on `/nick`.
    BannedName,
    /// A user over `--rate-burst`/`--rate-per-sec` (counted once per burst, as it is told).
    LineRate,
    /// A line over `--max-line`.
    LineTooLong,
    /// A login refused at once because attempts on the account are queued too long.
    LoginThrottled,
    /// A private line not delivered: its recipient gets too many.
    PrivateFlood,
    /// A public line refused because chat is paused.
    ChatPaused,
}

/// How many kinds there are.
pub const KINDS: usize = 12;

impl Refusal {
    /// Every kind, in label order.
    pub const ALL: [Refusal; KINDS] = [
        Refusal::Full,
        Refusal::PerAddress,
        Refusal::ConnectRate,
        Refusal::BannedAddress,
        Refusal::Eviction,
        Refusal::NameDeadline,
        Refusal::BannedName,
        Refusal::LineRate,
        Refusal::LineTooLong,
        Refusal::LoginThrottled,
        Refusal::PrivateFlood,
        Refusal::ChatPaused,
    ];

    /// The `kind` label's value.
    pub fn label(self) -> &'static str {
        REFUSALS[self as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind has its own label value, in the table's order.
    #[test]
    fn kinds_match_the_table() {
        assert_eq!(REFUSALS.len(), KINDS);
        for (i, kind) in Refusal::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
        assert_eq!(Refusal::Full.label(), "full");
        assert_eq!(Refusal::ChatPaused.label(), "chat_paused");
    }
}
