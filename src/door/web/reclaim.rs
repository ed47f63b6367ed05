//! Reclaiming one's own name after a blip: a page whose WebSocket dropped reconnects within
//! seconds, while the server may still hold its old session (a connection that vanished without
//! a close is found dead only by the pings, up to a minute later). Without this, the page would
//! be told its own name is taken until then.
//!
//! Every registered web session is issued a secret token, random and unguessable (128 bits from
//! the operating system), handed to its page in the `welcome` and never shown to anyone else. A
//! page that comes back with its name and the token of the session holding that name ends that
//! stale session and takes the name again; a stranger has no token, and a token names one
//! session, so it takes no other name. Tokens live in memory only: a restarted server knows
//! none, and none is needed then since every old session is gone.
//!
//! This module keeps the tokens and asks the hub; it knows nothing of JSON or the socket.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use log::info;

use crate::hub::Intent;
use crate::names::Nick;
use crate::session::Services;
use crate::vocab::MemberId;

/// Bytes of randomness in a token.
const TOKEN_BYTES: usize = 16;

/// The tokens of the web sessions registered now, to the member each names.
#[derive(Default)]
pub struct Tokens {
    owners: Mutex<HashMap<[u8; TOKEN_BYTES], MemberId>>,
}

/// One session's token; forgotten when dropped (the session ended).
pub struct Issued {
    tokens: Arc<Tokens>,
    token: [u8; TOKEN_BYTES],
}

impl Tokens {
    /// A new token for member `id`, or `None` if the system's randomness failed (the page then
    /// cannot reclaim its name and waits for the stale session to end, as before).
    pub fn issue(self: &Arc<Self>, id: MemberId) -> Option<Issued> {
        let mut token = [0; TOKEN_BYTES];
        OsRng.try_fill_bytes(&mut token).ok()?;
        self.lock().insert(token, id);
        Some(Issued {
            tokens: self.clone(),
            token,
        })
    }

    /// The member whose session was issued `text`, if any.
    fn owner(&self, text: &str) -> Option<MemberId> {
        let token = parse(text)?;
        self.lock().get(&token).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; TOKEN_BYTES], MemberId>> {
        // A panic while holding the lock leaves a plain map behind, still consistent.
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the stale session that was issued `token`, if it holds `nick` now; true if it did,
    /// and the hub has removed it (and released its name cluster-wide) by the time this
    /// returns, so the caller may ask for the name again.
    pub async fn evict_stale(
        &self,
        services: &Services,
        (token, nick): (&str, &Nick),
        peer: SocketAddr,
    ) -> bool {
        let Some(stale) = self.owner(token) else {
            return false;
        };
        let holds = whoami(services, stale).await;
        if holds.is_none_or(|held| held.key() != nick.key()) {
            return false;
        }
        info!("{peer}: {nick} is back; its stale web session ends");
        let quit = Intent::Quit {
            id: stale,
            reason: None,
        };
        if services.hub.send(quit).await.is_err() {
            return false;
        }
        // A round trip: the hub handles intents in order, so the quit is done once this answers.
        whoami(services, stale).await;
        true
    }
}

impl Issued {
    /// The token as the page holds it: 32 lower-case hex digits.
    pub fn text(&self) -> String {
        self.token
            .iter()
            .fold(String::with_capacity(2 * TOKEN_BYTES), |mut text, byte| {
                let _ = write!(text, "{byte:02x}");
                text
            })
    }
}

impl Drop for Issued {
    fn drop(&mut self) {
        self.tokens.lock().remove(&self.token);
    }
}

/// Member `id`'s name now, or `None` once the hub no longer has it.
async fn whoami(services: &Services, id: MemberId) -> Option<Nick> {
    let (reply, answer) = async_channel::bounded(1);
    services.hub.send(Intent::Whoami { id, reply }).await.ok()?;
    answer.recv().await.ok()
}

/// A token from its text (hex digits, either case).
fn parse(text: &str) -> Option<[u8; TOKEN_BYTES]> {
    if text.len() != 2 * TOKEN_BYTES || !text.is_ascii() {
        return None;
    }
    let mut token = [0; TOKEN_BYTES];
    for (byte, pair) in token.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token names its member while its session lives, round-trips through its text, and is
    /// forgotten when the session ends; anything else names nobody.
    #[test]
    fn a_token_names_its_session_while_it_lives() {
        let tokens = Arc::new(Tokens::default());
        let issued = tokens.issue(7).expect("randomness");
        let other = tokens.issue(8).expect("randomness");
        let text = issued.text();
        assert_eq!(text.len(), 32);
        assert_ne!(text, other.text());
        assert_eq!(tokens.owner(&text), Some(7));
        assert_eq!(tokens.owner(&text.to_uppercase()), Some(7));
        for wrong in ["", "00", &"0".repeat(32), &format!("{}x", &text[..31]), "é"] {
            assert_eq!(tokens.owner(wrong), None, "{wrong:?}");
        }
        drop(issued);
        assert_eq!(tokens.owner(&text), None);
        assert_eq!(tokens.owner(&other.text()), Some(8));
    }
}
