//! Bringing up many registered clients at once and settling the room. Clients keep reading while
//! the rest of the swarm joins, because every join is announced to everyone already in the room
//! and a client that sat on those notices could be dropped by the server as a slow reader.
//!
//! Settling is one sync line from client 0 that every other client waits for. smolchat registers
//! a client before it answers, so one sync suffices there. The floor answers nothing, so a sync
//! can overtake a name the floor has not read yet; there client 0 repeats the sync every
//! [`SYNC_REPEAT`] until every other client has seen one.
//!
//! The sync line carries a number of its own, so a sync from an earlier run on the same server,
//! replayed from the history (IRC and web clients may get the replay after they count as
//! joined), is never taken for this run's. Lines before the sync, the history among them, are
//! read and dropped. Clients of any door take part (see [`crate::door`]); one whose door echoes
//! its own lines (web, IRC with `echo-message`) waits for its sync's echo too, so client 0 has
//! also read everything before it.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use smol::channel::{self, Receiver, Sender};
use smol::future;
use smol::lock::Semaphore;
use smol::Timer;

use crate::client::Target;
use crate::door::{self, Door, Doors, Heard, Member};
use crate::{BenchError, Env, Result};

/// Connections in their handshake at the same time. A burst of thousands of simultaneous
/// connects overflows the server's accept backlog and turns into retransmission delays, which
/// would measure the kernel rather than the server.
const CONNECT_CONCURRENCY: usize = 200;

/// Receive buffer of stalled clients. A small one keeps the kernel from soaking up megabytes of
/// backlog (loopback buffers autotune to several MiB), so the server's outbox limit is what a
/// stalled reader runs into, even in short runs.
const STALL_RECV_BUFFER: usize = 4 * 1024;

/// The name of client 0, which sends the sync line.
const LEADER: &[u8] = b"b0";

/// How often client 0 repeats the sync line to the floor. Each repeat costs one delivery per
/// client, nothing next to a registration; the settle time it reports is only this fine.
const SYNC_REPEAT: Duration = Duration::from_millis(100);

/// Registered clients, ready for a measured phase.
pub struct Swarm {
    /// Clients `b0..bN`, in index order.
    pub clients: Vec<Member>,
    /// Clients `st0..stK`, which registered and then stopped reading.
    pub stalled: Vec<Member>,
    /// From the first connect to the last registration.
    pub joined_in: Duration,
    /// From client 0 sending the sync line to every client having seen it.
    pub settled_in: Duration,
    /// Registration handshake times (name sent to end of history), one per client.
    pub registrations: Vec<Duration>,
}

/// What a client does after registering.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// Client 0: keeps reading until told to send the sync line, then sends it.
    Leader { send_sync: bool },
    /// Reads until it sees the sync line.
    Follower,
    /// Stops reading right away.
    Stalled,
}

/// Connects and registers `n` reading clients named `b0..` plus `stall` stalled clients named
/// `st0..`, client `i` through `doors[i]`, then has client 0 send a sync line and waits until
/// every other reading client saw it. The room relays in order, so after the sync every earlier
/// join notice has been read.
pub async fn join_and_settle(env: &Env, doors: &[Door], n: usize, stall: usize) -> Result<Swarm> {
    let total = n + stall;
    if doors.len() != total {
        return Err(BenchError::new(format!(
            "{} doors given for {total} clients",
            doors.len()
        )));
    }
    for door in Door::ALL {
        if doors.contains(&door) {
            env.doors.check(door).map_err(BenchError::new)?;
        }
    }
    let sync: Arc<[u8]> = sync_line().into();
    let semaphore = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let (registered_tx, registered_rx) =
        channel::unbounded::<std::result::Result<Duration, String>>();
    let (go_tx, go_rx) = channel::bounded::<()>(1);
    // Dropped once every follower saw the sync, which stops the leader's repeats.
    let (settled_tx, settled_rx) = channel::bounded::<()>(1);

    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    let shared = Arc::new(env.doors.clone());
    for (index, &door) in doors.iter().enumerate() {
        let (name, role) = if index < n {
            let role = if index == 0 {
                Role::Leader { send_sync: n > 1 }
            } else {
                Role::Follower
            };
            (format!("b{index}"), role)
        } else {
            (format!("st{}", index - n), Role::Stalled)
        };
        tasks.push(env.ex.spawn(join_one(
            Place {
                doors: shared.clone(),
                door,
                index,
                source: env.source_for(index),
                name,
                role,
                sync: sync.clone(),
                deadline: env.deadline,
            },
            semaphore.clone(),
            registered_tx.clone(),
            (go_rx.clone(), settled_rx.clone()),
        )));
    }
    drop((registered_tx, settled_rx));

    let mut registrations = Vec::with_capacity(total);
    while registrations.len() < total {
        let next = future::or(async { registered_rx.recv().await.ok() }, async {
            Timer::at(env.deadline).await;
            None
        });
        match next.await {
            Some(Ok(elapsed)) => registrations.push(elapsed),
            Some(Err(error)) => {
                return Err(BenchError::new(format!(
                    "only {} of {total} clients registered; first failure: {error}",
                    registrations.len()
                )))
            }
            None => {
                return Err(BenchError::new(format!(
                    "timed out with {} of {total} clients registered",
                    registrations.len()
                )))
            }
        }
        if registrations.len() % 1000 == 0 {
            eprintln!("  {} of {total} clients registered", registrations.len());
        }
    }
    let joined_in = started.elapsed();

    let settle_started = Instant::now();
    // Every task holds a receiver, so this send only fails if the leader task is gone, which
    // the await on it below reports.
    let _ = go_tx.send(()).await;
    // The followers and stalled clients first, then the leader, which may still be repeating
    // its sync until `settled_tx` is dropped.
    let mut tasks = tasks.into_iter();
    let leader = tasks.next();
    let mut clients = Vec::with_capacity(n);
    let mut stalled = Vec::with_capacity(stall);
    for (index, task) in tasks.enumerate() {
        let client = task
            .await
            .map_err(|error| BenchError::new(format!("settling: {error}")))?;
        if index + 1 < n {
            clients.push(client);
        } else {
            stalled.push(client);
        }
    }
    drop(settled_tx);
    if let Some(leader) = leader {
        let client = leader
            .await
            .map_err(|error| BenchError::new(format!("settling: {error}")))?;
        clients.insert(0, client);
    }
    Ok(Swarm {
        clients,
        stalled,
        joined_in,
        settled_in: settle_started.elapsed(),
        registrations,
    })
}

/// A sync line unique to this run: `sync` and the nanoseconds since the Unix epoch.
fn sync_line() -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("sync {nanos}").into_bytes()
}

/// Who one client of the swarm is and where it goes.
struct Place {
    doors: Arc<Doors>,
    door: Door,
    index: usize,
    source: Option<Ipv4Addr>,
    name: String,
    role: Role,
    /// The run's sync line.
    sync: Arc<[u8]>,
    deadline: Instant,
}

/// Reads and drops lines until `member` hears `from` say `text`.
async fn wait_for(
    member: &mut Member,
    from: &[u8],
    text: &[u8],
    deadline: Instant,
) -> std::result::Result<(), String> {
    loop {
        match member.reader.next(deadline).await {
            Ok(Some(Heard::Chat { from: f, text: t })) if *f == *from && *t == *text => {
                return Ok(())
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err(format!("{}: server closed the connection", member.name)),
            Err(error) => return Err(format!("{}: waiting for sync: {error}", member.name)),
        }
    }
}

/// One client's part of [`join_and_settle`].
async fn join_one(
    place: Place,
    semaphore: Arc<Semaphore>,
    registered: Sender<std::result::Result<Duration, String>>,
    (go, settled): (Receiver<()>, Receiver<()>),
) -> std::result::Result<Member, String> {
    let Place {
        doors,
        door,
        index,
        source,
        name,
        role,
        sync,
        deadline,
    } = place;
    let joined = async {
        let _permit = semaphore.acquire_arc().await;
        let recv_buffer = (role == Role::Stalled).then_some(STALL_RECV_BUFFER);
        door::join(&doors, door, index, source, recv_buffer, &name, deadline).await
    }
    .await;
    let mut member = match joined {
        Ok(joined) => {
            let _ = registered.send(Ok(joined.elapsed)).await;
            joined.member
        }
        Err(error) => {
            let _ = registered.send(Err(error.clone())).await;
            return Err(error);
        }
    };
    drop(registered);

    match role {
        Role::Stalled => {}
        Role::Leader { send_sync } => {
            // Read (and drop) join notices until the go signal. A read cut short here keeps its
            // partial line in the reader, so nothing is lost for later phases.
            let drain = async {
                loop {
                    match member.reader.next(deadline).await {
                        Ok(Some(_)) => {}
                        Ok(None) => return Err(format!("{name}: server closed the connection")),
                        Err(error) => return Err(format!("{name}: waiting to sync: {error}")),
                    }
                }
            };
            future::or(drain, async {
                let _ = go.recv().await;
                Ok(())
            })
            .await?;
            if send_sync {
                loop {
                    member
                        .writer
                        .say(&sync, deadline)
                        .await
                        .map_err(|error| format!("{name}: sending sync: {error}"))?;
                    if doors.target == Target::Smolchat {
                        break;
                    }
                    // `recv` fails once the coordinator drops the sender: everyone saw a sync.
                    let repeat = future::or(async { settled.recv().await.is_ok() }, async {
                        Timer::after(SYNC_REPEAT).await;
                        Instant::now() < deadline
                    });
                    if !repeat.await {
                        break;
                    }
                }
                if member.echoes {
                    wait_for(&mut member, LEADER, &sync, deadline).await?;
                }
            }
        }
        Role::Follower => wait_for(&mut member, LEADER, &sync, deadline).await?,
    }
    Ok(member)
}

/// Keeps every member reading (and dropping) what it hears until `until`, as a connected client
/// does, answering the IRC door's `PING`s and the web door's pings on the way, then hands them
/// back.
pub async fn idle_until(env: &Env, members: Vec<Member>, until: Instant) -> Vec<Member> {
    let tasks: Vec<_> = members
        .into_iter()
        .map(|mut member| {
            env.ex.spawn(async move {
                // The deadline ends the loop; an error or a close ends it early, and the member
                // is handed back either way.
                while let Ok(Some(_)) = member.reader.next(until).await {}
                member
            })
        })
        .collect();
    let mut members = Vec::with_capacity(tasks.len());
    for task in tasks {
        members.push(task.await);
    }
    members
}
