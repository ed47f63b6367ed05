//! The reading threads: the log reader (`XREAD BLOCK`, in log order, from where this run started)
//! and the subscriber for private lines. Each has a connection of its own, because a blocked read
//! holds its connection, and each reconnects with back-off on its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_channel::Sender;
use log::{info, warn};
use redis::{Client, Connection};

use super::keys::{channel, KEY_COUNTER, KEY_LOG};
use super::stream::parse_entry;
use super::{connect, Incoming, Whisper};
use crate::metrics::ClusterStats;

/// How long one `XREAD` blocks: also how long the thread takes to notice a shutdown.
const BLOCK: Duration = Duration::from_millis(500);

/// Most entries handed to the hub at once.
const READ_COUNT: usize = 1024;

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

pub(super) struct Reader {
    pub url: String,
    pub node: Arc<str>,
    pub client: Client,
    /// The id of the last entry read.
    pub after: Arc<str>,
    pub incoming: Sender<Incoming>,
    pub stop: Arc<AtomicBool>,
    /// Where the reader's lag behind the log is published.
    pub stats: ClusterStats,
}

impl Reader {
    pub fn run(mut self) {
        let mut conn: Option<Connection> = None;
        let mut delay = BACKOFF_MIN;
        let mut outage = false;
        let mut last_seq: Option<i64> = None;
        while !self.stop.load(Ordering::Acquire) {
            let Some(c) = conn.as_mut() else {
                match connect(&self.client) {
                    Ok(c) => {
                        if outage {
                            info!(
                                "node {}: log reader reconnected to Redis at {}; reading after {}",
                                self.node, self.url, self.after
                            );
                        }
                        conn = Some(c);
                        delay = BACKOFF_MIN;
                    }
                    Err(_) => {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(BACKOFF_MAX);
                    }
                }
                continue;
            };
            // The log's head (the counter behind `n`) comes in the same round trip, read just
            // before the XREAD: how far behind the reader is after this read.
            let reply: redis::RedisResult<(Option<i64>, Option<redis::streams::StreamReadReply>)> =
                redis::pipe()
                    .cmd("GET")
                    .arg(KEY_COUNTER)
                    .cmd("XREAD")
                    .arg("COUNT")
                    .arg(READ_COUNT)
                    .arg("BLOCK")
                    .arg(BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(KEY_LOG)
                    .arg(&*self.after)
                    .query(c);
            match reply {
                Ok((head, reply)) => {
                    outage = false;
                    let raw: Vec<_> = reply
                        .into_iter()
                        .flat_map(|r| r.keys)
                        .flat_map(|k| k.ids)
                        .collect();
                    let Some(last) = raw.last() else {
                        // Nothing after our position, even after blocking: caught up.
                        self.stats.set_reader_lag(0);
                        continue;
                    };
                    self.after = last.id.as_str().into();
                    let batch: Vec<_> = raw.iter().filter_map(parse_entry).collect();
                    if let (Some(prev), Some(first)) = (last_seq, batch.first()) {
                        if first.seq > prev + 1 {
                            warn!(
                                "node {}: {} log entries could not be recovered: trimmed from \
                                 {KEY_LOG} before this node read them",
                                self.node,
                                first.seq - prev - 1
                            );
                        }
                    }
                    if let Some(last) = batch.last() {
                        last_seq = Some(last.seq);
                        self.stats.set_reader_lag(lag(head, last.seq));
                    }
                    if self.incoming.send_blocking(Incoming::Log(batch)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    if !outage {
                        warn!(
                            "node {}: log reader lost Redis at {}: {e}; retrying",
                            self.node, self.url
                        );
                        outage = true;
                    }
                    conn = None;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

/// Entries in the log past `read`, the last sequence number read, given the log's `head` (its
/// counter) as read just before: never negative, since entries may arrive between the two.
fn lag(head: Option<i64>, read: i64) -> u64 {
    head.unwrap_or(0).saturating_sub(read).max(0).unsigned_abs()
}

pub(super) struct Subscriber {
    pub url: String,
    pub node: Arc<str>,
    pub client: Client,
    pub incoming: Sender<Incoming>,
    pub stop: Arc<AtomicBool>,
}

impl Subscriber {
    pub fn run(self) {
        let mut delay = BACKOFF_MIN;
        while !self.stop.load(Ordering::Acquire) {
            match self.listen() {
                Ok(()) => return,
                Err(e) => {
                    warn!(
                        "node {}: private-line subscriber lost Redis at {}: {e}; retrying",
                        self.node, self.url
                    );
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Listens until stopped (`Ok`) or the connection fails.
    fn listen(&self) -> redis::RedisResult<()> {
        let mut conn = connect(&self.client)?;
        let mut pubsub = conn.as_pubsub();
        pubsub.subscribe(channel(&self.node))?;
        pubsub.set_read_timeout(Some(BLOCK))?;
        while !self.stop.load(Ordering::Acquire) {
            let msg = match pubsub.get_message() {
                Ok(msg) => msg,
                Err(e) if e.is_timeout() => continue,
                Err(e) => return Err(e),
            };
            let Ok(payload) = msg.get_payload::<String>() else {
                continue;
            };
            match Whisper::decode(&payload) {
                Ok(whisper) => {
                    if self
                        .incoming
                        .send_blocking(Incoming::Whisper(whisper))
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Err(_) => warn!("node {}: skipped a malformed private line", self.node),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lag is what the head is past the last entry read, and never below zero.
    #[test]
    fn lag_is_the_head_past_the_last_read() {
        assert_eq!(lag(Some(10), 4), 6);
        assert_eq!(lag(Some(3), 5), 0);
        assert_eq!(lag(None, 5), 0);
    }
}
