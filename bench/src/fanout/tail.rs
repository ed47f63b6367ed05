//! After the send phase: reading on to an end marker, so a line delivered twice after a reader's
//! last expected line is counted too, and reading the stalled clients' backlogs, to see whether
//! the server dropped them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::ReadError;
use crate::door::{Heard, Member};
use crate::fanout::traffic::parse_token;
use crate::Env;

/// How long stalled clients are read at the end to find out whether the server closed them.
const STALL_CHECK: Duration = Duration::from_secs(2);

/// The line the probe sends after the run, up to which every other reader keeps checking for
/// duplicates.
const END_MARKER: &[u8] = b"end";

/// What reading on to the end marker found.
pub struct TailReport {
    /// Bench lines that arrived after the reader had seen every line: each one a repeat.
    pub duplicates: u64,
    /// Readers that did not see the end marker by the deadline.
    pub missed: usize,
}

/// Has the last client (the probe) send [`END_MARKER`] and every other client read up to it,
/// counting bench lines of other senders on the way (client `i < senders` is sender `i`, whose
/// own lines coming back are echoes). The members are handed back so that none leaves (and
/// causes leave notices) before the others are done.
pub async fn check_tail(
    env: &Env,
    mut members: Vec<Member>,
    senders: usize,
    until: Instant,
) -> (TailReport, Vec<Member>) {
    let mut report = TailReport {
        duplicates: 0,
        missed: members.len().saturating_sub(1),
    };
    let Some(mut probe) = members.pop() else {
        return (report, members);
    };
    let marker_from: Arc<[u8]> = Arc::from(probe.name.as_bytes());
    if probe.writer.say(END_MARKER, until).await.is_err() {
        members.push(probe);
        return (report, members);
    }
    let tasks: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(index, mut member)| {
            let marker_from = marker_from.clone();
            let own = (index < senders).then_some(index as u64);
            env.ex.spawn(async move {
                let mut repeats = 0u64;
                let seen_marker = loop {
                    match member.reader.next(until).await {
                        Ok(Some(Heard::Chat { from, text })) => {
                            if *from == *marker_from && *text == *END_MARKER {
                                break true;
                            }
                            let token = parse_token(&text);
                            repeats += u64::from(token.is_some_and(|(s, _, _)| Some(s) != own));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break false,
                    }
                };
                (member, repeats, seen_marker)
            })
        })
        .collect();
    let mut members = Vec::with_capacity(tasks.len() + 1);
    for task in tasks {
        let (member, repeats, seen_marker) = task.await;
        report.duplicates += repeats;
        report.missed -= usize::from(seen_marker);
        members.push(member);
    }
    members.push(probe);
    (report, members)
}

/// What the stalled clients found when finally read.
#[derive(Default)]
pub struct StallReport {
    /// Connections the server closed or reset.
    pub disconnected: usize,
    /// Of those, how many were told first (the line door's "not reading fast enough", IRC
    /// `ERROR`, the web door's `bye`).
    pub told: usize,
    /// Connections still open after [`STALL_CHECK`].
    pub open: usize,
}

/// Reads each stalled client's backlog for up to [`STALL_CHECK`] to see whether the server
/// closed it.
pub async fn check_stalled(env: &Env, stalled: Vec<Member>) -> StallReport {
    let until = Instant::now() + STALL_CHECK;
    let tasks: Vec<_> = stalled
        .into_iter()
        .map(|mut member| {
            env.ex.spawn(async move {
                let mut told = false;
                loop {
                    match member.reader.next(until).await {
                        Ok(Some(heard)) => told |= heard == Heard::Dropped,
                        Ok(None) => return (true, told),
                        Err(ReadError::Timeout) => return (false, told),
                        Err(_) => return (true, told),
                    }
                }
            })
        })
        .collect();
    let mut report = StallReport::default();
    for task in tasks {
        let (closed, told) = task.await;
        if closed {
            report.disconnected += 1;
            report.told += usize::from(told);
        } else {
            report.open += 1;
        }
    }
    report
}
