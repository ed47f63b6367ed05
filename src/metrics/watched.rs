//! Gauges read only when scraped: a closure per metric, called by the encoder.
//!
//! For values some other part already keeps (the bytes queued in outboxes, the connections
//! waiting for a name, the process's memory): mirroring them into a gauge on every change would
//! cost those parts an atomic per change, for a value read every fifteen seconds at most.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::table::{Id, Spec, Type};

/// A watched value; `None` when it cannot be read right now (it is then left out).
type Source = Box<dyn Fn() -> Option<f64> + Send + Sync>;

/// The watched metrics, in table order.
#[derive(Default)]
pub(super) struct Watched {
    sources: Mutex<BTreeMap<Id, Source>>,
}

impl std::fmt::Debug for Watched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched").finish_non_exhaustive()
    }
}

impl Watched {
    /// Reads `id` from `source` at each scrape, replacing an earlier source.
    pub(super) fn set(&self, id: Id, source: impl Fn() -> Option<f64> + Send + Sync + 'static) {
        let spec = id.spec();
        debug_assert!(spec.labels.is_empty(), "watched metrics have no labels");
        debug_assert!(
            spec.kind != Type::Histogram,
            "a histogram cannot be watched"
        );
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.insert(id, Box::new(source));
    }
}

impl Collector for Watched {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        for (id, source) in sources.iter() {
            let Some(value) = source() else { continue };
            let spec = id.spec();
            match spec.kind {
                Type::Counter => encode(&mut encoder, spec, ConstCounter::new(value))?,
                // (Never a histogram: `set` refuses them.)
                Type::Gauge | Type::Histogram => {
                    encode(&mut encoder, spec, ConstGauge::new(value))?;
                }
            }
        }
        Ok(())
    }
}

/// Writes one watched metric with its row's name and help.
fn encode(
    encoder: &mut DescriptorEncoder,
    spec: &Spec,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    let kind = metric.metric_type();
    metric.encode(encoder.encode_descriptor(spec.base_name(), spec.help, None, kind)?)
}
