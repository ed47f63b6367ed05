//! Doors: the ways into the chat, each a folder.
//!
//! A door owns its bytes: framing, escaping, its prompts and its protocol's errors. It turns its
//! input into the hub's intents and renders the hub's events with renderers it registers at
//! start-up (`hub/render.rs`); for what every door needs (logging in, taking a name, the line
//! rate, history pages, output while it waits) it calls the services in `src/session/`.
//!
//! - [`line`]: nc, telnet and TLS clients, one line of text per message, `/commands`.
//! - [`irc`]: IRC clients (irssi, WeeChat, HexChat): the protocol layer, and its session
//!   (`irc/session/`) wired to the hub.
//! - [`web`]: the chat page: HTTP, origin checks, WebSocket framing, JSON, and its session.
//!
//! This module is the one registration point: a listener in `net/` names a [`DoorKind`], and
//! [`Doors`] starts that door's session on each connection it accepts. A new door is a folder,
//! a variant of [`DoorKind`], and its arms in the three `match`es below.

pub mod irc;
pub mod line;
pub mod web;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Config;
use crate::hub::render::{RendererId, Renderers};
use crate::session::{Accepted, Services, TurnedAway};
use crate::wire::conn::Stream;

/// The kind of door a listener opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorKind {
    /// `--listen` and `--tls-listen`.
    Line,
    /// `--irc-listen` and `--irc-tls-listen`.
    Irc,
    /// `--web-listen` and `--web-tls-listen` (`tls`: HTTPS, so the page's origin is `https:`).
    Web { tls: bool },
}

impl DoorKind {
    /// The door's `door` label in the metrics.
    pub fn metrics_door(self) -> crate::metrics::Door {
        match self {
            DoorKind::Line => crate::metrics::Door::Line,
            DoorKind::Irc => crate::metrics::Door::Irc,
            DoorKind::Web { .. } => crate::metrics::Door::Web,
        }
    }
}

/// The doors as registered at start-up: what each needs to run its sessions.
#[derive(Clone)]
pub struct Doors {
    /// The line door's renderer.
    line: RendererId,
    /// The IRC door's renderers.
    irc: irc::session::Styles,
    /// The web door's renderer (JSON) and what its sessions share.
    web: web::Door,
}

/// A session, boxed: each door's task is sized by its own state, not the largest door's.
pub type Session = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Doors {
    /// Registers every door's renderers with the hub's registry.
    pub fn register(renderers: &mut Renderers, config: &Config) -> Doors {
        let line = renderers
            .register(Arc::new(line::render::Lines))
            .unwrap_or_default();
        let server = irc::session::start(&config.server_name);
        let irc = irc::session::Styles::register(renderers, &server);
        let web = renderers
            .register(Arc::new(web::render::Json))
            .unwrap_or_default();
        let web = web::Door::new(web);
        Doors { line, irc, web }
    }

    /// The session of a connection a listener of `kind` accepted (after its TLS handshake, if
    /// the listener is a TLS one).
    pub fn session<S: Stream>(
        &self,
        kind: DoorKind,
        stream: S,
        accepted: Accepted,
        services: Arc<Services>,
    ) -> Session {
        match kind {
            DoorKind::Line => Box::pin(line::run(stream, accepted, services, self.line)),
            DoorKind::Irc => Box::pin(irc::session::run(stream, accepted, services, self.irc)),
            DoorKind::Web { tls } => {
                Box::pin(web::run(stream, accepted, services, self.web.clone(), tls))
            }
        }
    }

    /// The one plaintext line a connection refused at accept gets, in its door's words. (A TLS
    /// listener closes without a word: see `net/server.rs`.)
    pub fn turned_away(&self, kind: DoorKind, why: &TurnedAway) -> String {
        match kind {
            DoorKind::Line => line::words::turned_away(why),
            DoorKind::Irc => irc::session::turned_away(why),
            DoorKind::Web { .. } => web::turned_away(why),
        }
    }
}
