//! A web session's connection: the WebSocket, the JSON objects queued for it (sent as one
//! frame on flush), and who is at the other end.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use smol::{future, Timer};

use super::protocol::{self, ByeReason, ErrorCode, ServerMsg};
use super::WebSocket;
use crate::hub::outbox::Shared;
use crate::session::Output;
use crate::wire::conn::Stream;

/// A WebSocket and the JSON objects queued for it: everything queued goes out as one frame.
pub(super) struct WebConn<S> {
    pub socket: WebSocket<S>,
    queued: Vec<u8>,
    /// The client's address (a trusted proxy's forwarded one, else the peer's).
    pub client: IpAddr,
    pub peer: SocketAddr,
    /// Once registered: the outbox's state, so a blocked send gives up when the hub drops this
    /// user for not reading (as the line door's `Conn::watch`).
    watch: Option<Arc<Shared>>,
    /// A send was given up part-way: the WebSocket's framing is broken, nothing more is sent.
    torn: bool,
}

/// How often a blocked send checks whether the hub dropped the user.
const ABANDON_CHECK: Duration = Duration::from_millis(250);

/// The longest a goodbye (`bye` and the close handshake) may take.
const LINGER: Duration = Duration::from_secs(2);

impl<S: Stream> WebConn<S> {
    /// Queues one message.
    pub fn queue(&mut self, msg: &ServerMsg<'_>) {
        msg.write_to(&mut self.queued);
    }

    /// Queues an `error` and, at the name prompt, the prompt again.
    pub fn refuse(&mut self, code: ErrorCode, text: &str) {
        self.queue(&ServerMsg::Error { code, text });
    }

    /// Queues the `error` for a message that could not be taken, counting a text over the
    /// length limit as the line door does.
    pub fn refuse_message(&mut self, e: &protocol::ParseError, metrics: &crate::metrics::Metrics) {
        if let protocol::ParseError::TooLong { .. } = e {
            metrics.refused(crate::metrics::Refusal::LineTooLong);
        }
        self.refuse(e.code(), &e.to_string());
    }

    /// Queues a `notice` of `kind` for the user alone.
    pub fn info(&mut self, text: &str) {
        self.queue(&ServerMsg::Notice(protocol::Notice {
            kind: protocol::NoticeKind::Info,
            room: None,
            name: None,
            to: None,
            topic: None,
            text,
        }));
    }

    /// Sends `bye`, then closes the WebSocket with `code`.
    pub async fn bye(
        &mut self,
        (reason, text, reconnect): (ByeReason, &str, bool),
        code: CloseCode,
    ) {
        self.queue(&ServerMsg::Bye {
            reason,
            text,
            reconnect,
        });
        self.close(code).await;
    }

    /// Sends what is queued and closes the WebSocket with `code`, within a bounded time.
    pub async fn close(&mut self, code: CloseCode) {
        let goodbye = async {
            if self.flush().await.is_ok() {
                self.socket.close(code, "").await;
            }
        };
        future::or(goodbye, async {
            Timer::after(LINGER).await;
        })
        .await;
    }

    /// From now on a blocked send gives up once the hub has dropped the user.
    pub fn watch(&mut self, outbox: Arc<Shared>) {
        self.watch = Some(outbox);
    }
}

impl<S: Stream> Output for WebConn<S> {
    fn queue_owned(&mut self, bytes: Vec<u8>) {
        if self.queued.is_empty() {
            self.queued = bytes;
        } else {
            self.queued.extend_from_slice(&bytes);
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.queued.is_empty() {
            return Ok(());
        }
        if self.torn {
            return Err(io::Error::other("the connection was abandoned"));
        }
        let bytes = std::mem::take(&mut self.queued);
        let send = self.socket.send_utf8(bytes);
        let Some(watch) = &self.watch else {
            return send.await;
        };
        let torn = &mut self.torn;
        future::or(send, async {
            loop {
                Timer::after(ABANDON_CHECK).await;
                if watch.kicked() {
                    *torn = true;
                    return Err(io::Error::other("abandoned: not reading fast enough"));
                }
            }
        })
        .await
    }
}

impl<S: Stream> WebConn<S> {
    /// A connection with nothing queued yet.
    pub fn new(socket: WebSocket<S>, client: IpAddr, peer: SocketAddr) -> WebConn<S> {
        WebConn {
            socket,
            queued: Vec::new(),
            client,
            peer,
            watch: None,
            torn: false,
        }
    }
}
