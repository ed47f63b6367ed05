//! Metrics for operators: what the server is doing, in the Prometheus text format, served at
//! `/metrics` by `--metrics-listen` ([`endpoint`]).
//!
//! Every metric is a row of [`table::TABLE`]; [`Metrics::new`] registers exactly those rows with
//! a `prometheus-client` registry. Counting must cost the chat nothing measurable, so the parts
//! count where it is cheap:
//! - the hub counts its turn in a plain [`TurnCounts`] (no atomics) and adds it to the shared
//!   counters once per turn with [`HubStats::flush`]: a handful of relaxed atomic adds per turn,
//!   never one per delivery;
//! - the history writer updates [`WriterStats`] once per commit (and per failed attempt);
//! - accept-time events (a connection opened or refused) touch one atomic each, since they are
//!   rare next to deliveries;
//! - gauges that mirror state kept elsewhere (bytes queued in outboxes, connections waiting for
//!   a name, the process's memory) are read only when scraped, through [`Metrics::watch`].
//!
//! This module must not know the hub, sessions, storage or the cluster: they hold its handles
//! and call it; it never calls them, and a watched gauge is a closure they hand over.

mod cluster;
pub mod endpoint;
mod history;
mod process;
pub mod refusal;
pub mod table;
mod turn;
mod watched;

use std::sync::Arc;

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Metric, Registry};

pub use cluster::ClusterStats;
pub use history::WriterStats;
pub use refusal::Refusal;
pub use table::Id;
pub use turn::{HubStats, SlowLimit, TurnCounts};

use watched::Watched;

/// The `Content-Type` of what [`Metrics::encode`] writes: the Prometheus text format 0.0.4,
/// which every Prometheus version and `promtool check metrics` read.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The way in: a connection's door, for the `door` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// nc, telnet and other line clients, plaintext or TLS.
    Line,
    Irc,
    Web,
}

/// The server's metrics: a cheap handle to clone into every part that counts.
#[derive(Clone, Debug)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    watched: Arc<Watched>,
    /// By door, then TLS: index `door * 2 + tls`.
    connections: Vec<Gauge>,
    refusals: Vec<Counter>,
    login_failures: Counter,
    max_clients: Gauge,
    outbox_budget: Gauge,
    hub: HubStats,
    writer: WriterStats,
    cluster: Option<ClusterStats>,
}

/// Holds one open connection in the `smolchat_connections` gauge; dropping it counts it closed.
#[derive(Debug)]
pub struct Connected(Gauge);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Registers every metric of the table (the cluster ones only when `cluster` is true), with
    /// the process's own gauges and the build info already set.
    pub fn new(cluster: bool) -> Metrics {
        let mut builder = Builder {
            registry: Registry::default(),
            cluster,
        };
        let counters = |b: &mut Builder, id| b.add(id, Counter::default);
        let gauges = |b: &mut Builder, id| b.add(id, Gauge::default);
        let connections = gauges(&mut builder, Id::Connections);
        let refusals = counters(&mut builder, Id::Refusals);
        let login_failures = one(counters(&mut builder, Id::LoginFailures));
        let max_clients = one(gauges(&mut builder, Id::MaxClients));
        let outbox_budget = one(gauges(&mut builder, Id::OutboxBudget));
        let hub = HubStats::new(
            [Id::LinesRelayed, Id::Deliveries, Id::DeliveredBytes]
                .map(|id| one(counters(&mut builder, id))),
            counters(&mut builder, Id::SlowReadersDropped),
            refusals.clone(),
            [Id::Users, Id::Rooms, Id::ChatPaused].map(|id| one(gauges(&mut builder, id))),
        );
        let writer = WriterStats::new(
            one(builder.add(Id::CommitSeconds, history::commit_histogram)),
            [Id::CommitFailures, Id::LinesStored, Id::LinesLost]
                .map(|id| one(counters(&mut builder, id))),
            one(gauges(&mut builder, Id::WriterQueue)),
        );
        let cluster = cluster.then(|| {
            ClusterStats::new(
                one(gauges(&mut builder, Id::ClusterLinkUp)),
                one(gauges(&mut builder, Id::ClusterReaderLag)),
            )
        });
        one(gauges(&mut builder, Id::BuildInfo)).set(1);
        let watched = Arc::new(Watched::default());
        builder
            .registry
            .register_collector(Box::new(watched.clone()));
        process::watch(&watched);
        Metrics {
            inner: Arc::new(Inner {
                registry: builder.registry,
                watched,
                connections,
                refusals,
                login_failures,
                max_clients,
                outbox_budget,
                hub,
                writer,
                cluster,
            }),
        }
    }

    /// Everything, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail; a metric's encoder could, and would leave the scrape
        // incomplete, which Prometheus reports as a failed scrape.
        if prometheus_client::encoding::prometheus_text::encode(&mut text, &self.inner.registry)
            .is_err()
        {
            log::error!("metrics: encoding failed");
        }
        text
    }

    /// Counts a connection open until the returned guard is dropped.
    pub fn connected(&self, door: Door, tls: bool) -> Connected {
        let gauge = self.inner.connections[door as usize * 2 + usize::from(tls)].clone();
        gauge.inc();
        Connected(gauge)
    }

    /// Counts one refusal. For events outside the hub's turn (accept, sessions); the hub counts
    /// its own in its [`TurnCounts`].
    pub fn refused(&self, kind: Refusal) {
        self.inner.refusals[kind as usize].inc();
    }

    /// Counts one wrong password.
    pub fn login_failed(&self) {
        self.inner.login_failures.inc();
    }

    /// Publishes the limits the server runs with, so alerts can compare against them.
    pub fn set_limits(&self, max_clients: usize, outbox_total_bytes: usize) {
        self.inner.max_clients.set(gauge_value(max_clients));
        self.inner
            .outbox_budget
            .set(gauge_value(outbox_total_bytes));
    }

    /// Reads gauge (or counter) `id` from `source` whenever the metrics are scraped, and only
    /// then; a second call for the same id replaces the first. `id` must be one of the watched
    /// rows (a table row registered with no instrument of its own).
    pub fn watch(&self, id: Id, source: impl Fn() -> f64 + Send + Sync + 'static) {
        self.inner.watched.set(id, move || Some(source()));
    }

    /// The hub's counters and gauges.
    pub fn hub(&self) -> HubStats {
        self.inner.hub.clone()
    }

    /// The history writer's.
    pub fn writer(&self) -> WriterStats {
        self.inner.writer.clone()
    }

    /// The cluster link's, in cluster mode.
    pub fn cluster(&self) -> Option<ClusterStats> {
        self.inner.cluster.clone()
    }
}

/// A count as a gauge's value (saturating: no count here comes near `i64::MAX`).
fn gauge_value(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The only instrument of a metric without labels.
fn one<M>(mut instruments: Vec<M>) -> M {
    instruments.swap_remove(0)
}

/// Registers table rows.
struct Builder {
    registry: Registry,
    cluster: bool,
}

impl Builder {
    /// Registers row `id` and returns one instrument per label set, in [`table::Spec::label_sets`]
    /// order: a family for a labelled row, the instrument itself otherwise.
    fn add<M>(&mut self, id: Id, make: fn() -> M) -> Vec<M>
    where
        M: Metric + TypedMetric + Clone,
    {
        let spec = id.spec();
        debug_assert!(self.cluster || !spec.cluster_only);
        let name = spec.base_name();
        // The registry adds the final full stop itself.
        let help = spec.help.strip_suffix('.').unwrap_or(spec.help);
        let sets = spec.label_sets();
        if spec.labels.is_empty() {
            let instrument = make();
            self.registry.register(name, help, instrument.clone());
            return vec![instrument];
        }
        let series: Vec<_> = sets.into_iter().map(|set| (set, make())).collect();
        let instruments = series.iter().map(|(_, m)| m.clone()).collect();
        self.registry.register(name, help, Series(series));
        instruments
    }
}

/// A labelled metric: its series in table order. (prometheus-client's `Family` creates series
/// on demand behind a lock and prints them in hash order; these are all made at start.)
#[derive(Debug)]
struct Series<M>(Vec<(Vec<(&'static str, &'static str)>, M)>);

impl<M: EncodeMetric + TypedMetric> EncodeMetric for Series<M> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in &self.0 {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }
}

#[cfg(test)]
mod tests;
