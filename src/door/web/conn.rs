//! A web session's connection: the WebSocket, the JSON objects queued for it (sent as one
//! frame on flush), and who is at the other end.

use std::io;
use std::net::{IpAddr, SocketAddr};

use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::protocol::{self, ByeReason, ErrorCode, ServerMsg};
use super::WebSocket;
use crate::session::Output;
use crate::wire::conn::Stream;

/// A WebSocket and the JSON objects queued for it: everything queued goes out as one frame.
pub(super) struct WebConn<S> {
    pub socket: WebSocket<S>,
    queued: Vec<u8>,
    /// The client's address (a trusted proxy's forwarded one, else the peer's).
    pub client: IpAddr,
    pub peer: SocketAddr,
}

impl<S: Stream> WebConn<S> {
    /// Queues one message.
    pub fn queue(&mut self, msg: &ServerMsg<'_>) {
        msg.write_to(&mut self.queued);
    }

    /// Queues an `error` and, at the name prompt, the prompt again.
    pub fn refuse(&mut self, code: ErrorCode, text: &str) {
        self.queue(&ServerMsg::Error { code, text });
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
        if self.flush().await.is_ok() {
            self.socket.close(code, "").await;
        }
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
        let bytes = std::mem::take(&mut self.queued);
        self.socket.send_utf8(bytes).await
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
        }
    }
}
