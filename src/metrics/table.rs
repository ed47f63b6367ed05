//! The one table of every metric the server exports: name, type, labels with every value they
//! take, and help text.
//!
//! The registry registers exactly these (`Metrics::new` walks the table), the scrape endpoint
//! prints them, and docs/DEPLOY.md lists them (a test checks that every name and label value is
//! there), so a metric cannot be added in one place and forgotten in another.

/// What kind of metric a row is, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Type {
    /// The word Prometheus's `# TYPE` line uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        }
    }
}

/// Which metric a row describes. The discriminant is the row's index in [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Id {
    Connections,
    ConnectionsUnnamed,
    MaxClients,
    Users,
    Rooms,
    LinesStored,
    LinesRelayed,
    Deliveries,
    DeliveredBytes,
    SlowReadersDropped,
    Refusals,
    LoginFailures,
    CommitSeconds,
    CommitFailures,
    LinesLost,
    WriterQueue,
    OutboxBytes,
    OutboxBudget,
    ChatPaused,
    ClusterLinkUp,
    ClusterReaderLag,
    BuildInfo,
    StartTime,
    CpuSeconds,
    ResidentMemory,
    OpenFds,
    MaxFds,
}

/// One metric: what Prometheus shows and what docs/DEPLOY.md explains.
#[derive(Debug)]
pub struct Spec {
    pub id: Id,
    /// The name as scraped (counters end in `_total`).
    pub name: &'static str,
    pub kind: Type,
    /// Each label with every value it takes; every combination is exported from the start, so
    /// `rate()` and `increase()` see a counter's first increment.
    pub labels: &'static [(&'static str, &'static [&'static str])],
    pub help: &'static str,
    /// Exported only in cluster mode (`--cluster`).
    pub cluster_only: bool,
}

impl Spec {
    /// The name to register: prometheus-client adds `_total` to counters itself.
    pub fn base_name(&self) -> &'static str {
        match self.kind {
            Type::Counter => self.name.strip_suffix("_total").unwrap_or(self.name),
            _ => self.name,
        }
    }

    /// Every combination of this row's label values, in table order (one empty set when the
    /// metric has no labels).
    pub fn label_sets(&self) -> Vec<Vec<(&'static str, &'static str)>> {
        let mut sets = vec![Vec::new()];
        for (name, values) in self.labels {
            sets = sets
                .into_iter()
                .flat_map(|set| {
                    values.iter().map(move |value| {
                        let mut set = set.clone();
                        set.push((*name, *value));
                        set
                    })
                })
                .collect();
        }
        sets
    }
}

impl Id {
    /// This metric's row.
    pub fn spec(self) -> &'static Spec {
        &TABLE[self as usize]
    }
}

/// The door label's values: the line door (nc, telnet), IRC, the web page.
pub const DOORS: &[&str] = &["line", "irc", "web"];

/// A boolean label's values.
pub const BOOL: &[&str] = &["false", "true"];

/// The `kind` label of [`Id::Refusals`], in the order of `Refusal`'s variants.
pub const REFUSALS: &[&str] = &[
    "full",
    "per_address",
    "connect_rate",
    "banned_address",
    "eviction",
    "name_deadline",
    "banned_name",
    "line_rate",
    "line_too_long",
    "login_throttled",
    "private_flood",
    "chat_paused",
];

/// The `limit` label of [`Id::SlowReadersDropped`]: which flag's bound the reader passed.
pub const SLOW_LIMITS: &[&str] = &["outbox_bytes", "outbox_total_bytes"];

/// Upper bounds of the commit latency histogram, in seconds: 0.1 ms (a commit without fsync
/// on a fast disk) to 1 s (a disk in trouble); slower commits land in `+Inf`.
pub const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

const fn row(id: Id, name: &'static str, kind: Type, help: &'static str) -> Spec {
    Spec {
        id,
        name,
        kind,
        labels: &[],
        help,
        cluster_only: false,
    }
}

/// Every metric, in the order the endpoint prints them.
pub const TABLE: &[Spec] = &[
    Spec {
        labels: &[("door", DOORS), ("tls", BOOL)],
        ..row(
            Id::Connections,
            "smolchat_connections",
            Type::Gauge,
            "Open connections, with a name or not yet, by door and whether they came over TLS.",
        )
    },
    row(
        Id::ConnectionsUnnamed,
        "smolchat_connections_unnamed",
        Type::Gauge,
        "Connections still choosing a name or in their TLS handshake (at most --max-unregistered).",
    ),
    row(
        Id::MaxClients,
        "smolchat_max_clients",
        Type::Gauge,
        "The --max-clients setting: most connections at once, every door together.",
    ),
    row(
        Id::Users,
        "smolchat_users",
        Type::Gauge,
        "Users with a name on this node.",
    ),
    row(
        Id::Rooms,
        "smolchat_rooms",
        Type::Gauge,
        "Rooms with at least one user on this node.",
    ),
    row(
        Id::LinesStored,
        "smolchat_lines_stored_total",
        Type::Counter,
        "Public lines committed to the history by this node's writer.",
    ),
    row(
        Id::LinesRelayed,
        "smolchat_lines_relayed_total",
        Type::Counter,
        "Public lines relayed to their room, each once its commit was done.",
    ),
    row(
        Id::Deliveries,
        "smolchat_deliveries_total",
        Type::Counter,
        "Lines queued for users, one per recipient: relayed lines, notices, private lines, replies.",
    ),
    row(
        Id::DeliveredBytes,
        "smolchat_delivered_bytes_total",
        Type::Counter,
        "Bytes of those lines, which the sessions then write to their sockets.",
    ),
    Spec {
        labels: &[("limit", SLOW_LIMITS)],
        ..row(
            Id::SlowReadersDropped,
            "smolchat_slow_readers_dropped_total",
            Type::Counter,
            "Clients disconnected for not reading, by the bound they passed.",
        )
    },
    Spec {
        labels: &[("kind", REFUSALS)],
        ..row(
            Id::Refusals,
            "smolchat_refusals_total",
            Type::Counter,
            "Connections, names and lines refused by a limit or a ban, by kind.",
        )
    },
    row(
        Id::LoginFailures,
        "smolchat_login_failures_total",
        Type::Counter,
        "Wrong passwords given for registered names.",
    ),
    row(
        Id::CommitSeconds,
        "smolchat_history_commit_seconds",
        Type::Histogram,
        "Time to commit one batch of lines to the history and fsync it, retries included.",
    ),
    row(
        Id::CommitFailures,
        "smolchat_history_commit_failures_total",
        Type::Counter,
        "History commits that failed and were retried (or given up): a locked or full disk.",
    ),
    row(
        Id::LinesLost,
        "smolchat_history_lines_lost_total",
        Type::Counter,
        "Public lines the writer gave up on: rows SQLite refused, or a disk still failing at shutdown.",
    ),
    row(
        Id::WriterQueue,
        "smolchat_history_queue_depth",
        Type::Gauge,
        "Lines waiting for the history writer (at most 8192), as of its last commit or retry.",
    ),
    row(
        Id::OutboxBytes,
        "smolchat_outbox_bytes",
        Type::Gauge,
        "Bytes queued in all outboxes together, including what sessions are writing.",
    ),
    row(
        Id::OutboxBudget,
        "smolchat_outbox_budget_bytes",
        Type::Gauge,
        "The --outbox-total-bytes setting: past it the furthest-behind clients are dropped.",
    ),
    row(
        Id::ChatPaused,
        "smolchat_chat_paused",
        Type::Gauge,
        "1 while chat is paused because the history (or the cluster log) cannot be written.",
    ),
    Spec {
        cluster_only: true,
        ..row(
            Id::ClusterLinkUp,
            "smolchat_cluster_link_up",
            Type::Gauge,
            "1 while this node's link to the cluster's Redis is up, 0 during an outage.",
        )
    },
    Spec {
        cluster_only: true,
        ..row(
            Id::ClusterReaderLag,
            "smolchat_cluster_reader_lag_entries",
            Type::Gauge,
            "Entries in the cluster log this node had not read yet, as of its last read.",
        )
    },
    Spec {
        labels: &[("version", &[env!("CARGO_PKG_VERSION")])],
        ..row(
            Id::BuildInfo,
            "smolchat_build_info",
            Type::Gauge,
            "Always 1; the version label says which smolchat runs.",
        )
    },
    row(
        Id::StartTime,
        "process_start_time_seconds",
        Type::Gauge,
        "When the server started, in seconds since the Unix epoch.",
    ),
    row(
        Id::CpuSeconds,
        "process_cpu_seconds_total",
        Type::Counter,
        "CPU time the server used, user and system, in seconds.",
    ),
    row(
        Id::ResidentMemory,
        "process_resident_memory_bytes",
        Type::Gauge,
        "Resident memory of the server, in bytes.",
    ),
    row(
        Id::OpenFds,
        "process_open_fds",
        Type::Gauge,
        "Open file descriptors: one per connection, plus the database and listeners.",
    ),
    row(
        Id::MaxFds,
        "process_max_fds",
        Type::Gauge,
        "The open-file limit the server runs with.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row sits at its id's index, names are unique and follow Prometheus's conventions.
    #[test]
    fn table_is_consistent() {
        let mut names = std::collections::HashSet::new();
        for (i, spec) in TABLE.iter().enumerate() {
            assert_eq!(spec.id as usize, i, "{} is out of place", spec.name);
            assert!(names.insert(spec.name), "{} twice", spec.name);
            assert!(
                spec.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                spec.name
            );
            assert_eq!(
                spec.kind == Type::Counter,
                spec.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                spec.name
            );
            assert!(
                spec.help.ends_with('.'),
                "{}: help is a sentence",
                spec.name
            );
        }
    }

    /// Label sets are every combination of the label values.
    #[test]
    fn label_sets_are_the_product() {
        let sets = Id::Connections.spec().label_sets();
        assert_eq!(sets.len(), DOORS.len() * BOOL.len());
        assert_eq!(sets[0], [("door", "line"), ("tls", "false")]);
        assert_eq!(Id::Users.spec().label_sets(), [Vec::new()]);
        assert_eq!(Id::LinesStored.spec().base_name(), "smolchat_lines_stored");
    }
}
