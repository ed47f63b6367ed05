//! `/register`, `/password` and `/unregister` on the page: the line door's dialogues (one
//! place for their rules), asking through the page's password prompt.
//!
//! The page shows a `prompt` with `field: password` as its password box and answers with a
//! `password` message; anything else the page sends meanwhile cancels the dialogue.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

use smol::future;

use super::protocol::{self, ClientMsg, PromptField, ServerMsg};
use super::session::WebConn;
use crate::door::line::account::Talk;
use crate::hub::outbox::{Inbox, Taken};
use crate::session::pump::Broken;
use crate::session::Output;
use crate::wire::conn::Stream;

pub(super) use crate::door::line::account::{dialogue_run, Dialogue};

/// The web door's side of a dialogue.
pub(super) struct WebTalk<'a, S> {
    pub conn: &'a mut WebConn<S>,
    pub inbox: &'a Inbox,
    pub max_line: usize,
}

/// What woke a dialogue.
enum Wake {
    Input(Option<String>),
    Outbox(Option<Taken>),
}

impl<S: Stream> Talk for WebTalk<'_, S> {
    fn tell(&mut self, text: &str) {
        self.conn.info(text);
    }

    fn ask_password(&mut self, prompt: &str) {
        self.conn.queue(&ServerMsg::Prompt {
            field: PromptField::Password,
            text: prompt,
        });
    }

    async fn answer(&mut self) -> Result<Option<String>, Broken> {
        loop {
            self.conn.flush().await.map_err(|_| Broken::Gone)?;
            self.inbox.sent();
            let wake = {
                let socket = &mut self.conn.socket;
                let (inbox, peer) = (self.inbox, self.conn.peer);
                let read = async {
                    match socket.recv().await {
                        Ok(frame) => frame,
                        Err(e) => {
                            e.log(peer);
                            None
                        }
                    }
                };
                future::race(async { Wake::Input(read.await) }, async {
                    Wake::Outbox(inbox.recv().await)
                })
                .await
            };
            match wake {
                Wake::Outbox(Some(taken)) => self.conn.queue_owned(taken.bytes),
                Wake::Outbox(None) => return Err(Broken::Closed),
                Wake::Input(None) => return Err(Broken::Gone),
                Wake::Input(Some(frame)) => {
                    return Ok(match protocol::parse(&frame, self.max_line) {
                        Ok(ClientMsg::Password { password }) => Some(password.expose().to_owned()),
                        _ => None,
                    })
                }
            }
        }
    }

    fn flush(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        self.conn.flush()
    }

    fn ip(&self) -> IpAddr {
        self.conn.client
    }

    fn peer(&self) -> SocketAddr {
        self.conn.peer
    }
}
