//! Measurement helpers: a compact latency histogram and samples of a process's CPU time and
//! resident memory from `/proc`. The histogram is fixed-size so that recording millions of
//! deliveries costs a few kilobytes per client instead of a growing vector of samples.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::{BenchError, Context, Result};

/// Values below `2 * SUB` microseconds get one bucket each; above that every power of two is
/// split into `SUB` buckets, which bounds the relative error of a reported value to 1/32 (~3%).
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;

/// Values are clamped to 2^31 µs (about 36 minutes), far beyond any `--timeout-secs` in use.
const MAX_MICROS: u64 = (1 << 31) - 1;

/// Number of buckets needed to cover `0..=MAX_MICROS`.
const BUCKETS: usize = bucket_index(MAX_MICROS) + 1;

/// Maps a value in microseconds to its bucket.
const fn bucket_index(micros: u64) -> usize {
    if micros < 2 * SUB {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros();
    let shift = msb - SUB_BITS;
    ((shift as u64 + 1) * SUB + ((micros >> shift) - SUB)) as usize
}

/// The largest value (in microseconds) that falls into bucket `index`.
fn bucket_high(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * SUB {
        return index;
    }
    let shift = index / SUB - 1;
    let mantissa = index % SUB + SUB;
    ((mantissa + 1) << shift) - 1
}

/// A log-linear histogram of durations with microsecond resolution.
#[derive(Clone, Default)]
pub struct Histogram {
    /// Bucket counts, allocated on the first sample so idle clients cost nothing.
    counts: Vec<u32>,
    total: u64,
    max_nanos: u64,
    sum_nanos: u128,
}

impl Histogram {
    /// Records one duration given in nanoseconds.
    pub fn record_nanos(&mut self, nanos: u64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let micros = (nanos / 1_000).min(MAX_MICROS);
        let slot = &mut self.counts[bucket_index(micros)];
        *slot = slot.saturating_add(1);
        self.total += 1;
        self.max_nanos = self.max_nanos.max(nanos);
        self.sum_nanos += u128::from(nanos);
    }

    /// Records one duration.
    pub fn record(&mut self, duration: Duration) {
        self.record_nanos(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every sample of `other` to this histogram.
    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
        self.total += other.total;
        self.max_nanos = self.max_nanos.max(other.max_nanos);
        self.sum_nanos += other.sum_nanos;
    }

    /// The value at quantile `q` (0..=1) in milliseconds, as the upper edge of its bucket but never
    /// above the exact maximum; 0 when the histogram is empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (index, count) in self.counts.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                let micros = bucket_high(index).min(self.max_nanos / 1_000);
                return micros as f64 / 1_000.0;
            }
        }
        self.max_ms()
    }

    /// The exact largest sample in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.max_nanos as f64 / 1e6
    }

    /// The mean of all samples in milliseconds.
    pub fn mean_ms(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        (self.sum_nanos / u128::from(self.total)) as f64 / 1e6
    }
}

/// CPU time and resident memory of one process at one moment.
#[derive(Clone, Copy, Debug)]
pub struct ProcSample {
    /// User plus system CPU time, in clock ticks.
    pub cpu_ticks: u64,
    /// `VmRSS` in KiB.
    pub rss_kib: u64,
}

/// Reads CPU time and RSS of `pid` ("self" for this process) from `/proc`.
pub fn sample_proc(pid: &str) -> Result<ProcSample> {
    let stat_path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&stat_path).context(|| format!("reading {stat_path}"))?;
    // The command name (field 2) may contain spaces and parentheses, so the numeric fields are
    // located after its last closing parenthesis; there field 3 (state) has index 0, which puts
    // utime (field 14) at index 11 and stime (field 15) at index 12.
    let after_name = stat
        .rfind(')')
        .map(|at| &stat[at + 1..])
        .ok_or_else(|| BenchError::new(format!("{stat_path}: no ')' in {stat:?}")))?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick_field = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .and_then(|field| field.parse::<u64>().ok())
            .ok_or_else(|| BenchError::new(format!("{stat_path}: bad field {}", index + 3)))
    };
    let cpu_ticks = tick_field(11)? + tick_field(12)?;

    let status_path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&status_path).context(|| format!("reading {status_path}"))?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse::<u64>().ok())
        .ok_or_else(|| BenchError::new(format!("{status_path}: no VmRSS line")))?;
    Ok(ProcSample { cpu_ticks, rss_kib })
}

/// Clock ticks per second for `/proc/*/stat` times, from `getconf CLK_TCK`, or 100 (the value on
/// every common Linux configuration) when getconf is unavailable.
pub fn clock_ticks_per_sec() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// Samples of the server (when `--server-pid` was given) and of the bench itself.
pub struct Probe {
    server_pid: Option<String>,
    ticks_per_sec: u64,
}

/// One snapshot taken by [`Probe::snapshot`].
#[derive(Clone, Copy)]
pub struct Snapshot {
    pub server: Option<ProcSample>,
    pub bench: Option<ProcSample>,
}

impl Probe {
    /// A probe for the given server pid; checks once that the pid can be read.
    pub fn new(server_pid: Option<u32>) -> Result<Probe> {
        let probe = Probe {
            server_pid: server_pid.map(|pid| pid.to_string()),
            ticks_per_sec: clock_ticks_per_sec(),
        };
        if let Some(pid) = &probe.server_pid {
            sample_proc(pid).context(|| format!("--server-pid {pid}"))?;
        }
        Ok(probe)
    }

    /// Takes a snapshot. A server that exited in the meantime gives `None` rather than an error,
    /// because a crash under load is a result to report.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            server: self
                .server_pid
                .as_deref()
                .and_then(|pid| sample_proc(pid).ok()),
            bench: sample_proc("self").ok(),
        }
    }

    /// Whether a server pid is being watched.
    pub fn watches_server(&self) -> bool {
        self.server_pid.is_some()
    }

    /// Server CPU seconds between two snapshots.
    pub fn server_cpu_secs(&self, before: &Snapshot, after: &Snapshot) -> Option<f64> {
        let (before, after) = (before.server?, after.server?);
        Some(after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / self.ticks_per_sec as f64)
    }

    /// Bench CPU seconds between two snapshots.
    pub fn bench_cpu_secs(&self, before: &Snapshot, after: &Snapshot) -> Option<f64> {
        let (before, after) = (before.bench?, after.bench?);
        Some(after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64 / self.ticks_per_sec as f64)
    }
}

/// Formats an optional number for a `RESULT` line, `na` when absent.
pub fn opt(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(value) => format!("{value:.decimals$}"),
        None => "na".to_string(),
    }
}

/// Formats an optional server RSS for a `RESULT` line, `na` when absent.
pub fn rss(snapshot: &Snapshot) -> String {
    match snapshot.server {
        Some(sample) => sample.rss_kib.to_string(),
        None => "na".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bucket edges are contiguous and every value lands in the bucket whose range holds it.
    #[test]
    fn buckets_cover_values() {
        for micros in (0..100_000u64).chain([MAX_MICROS - 1, MAX_MICROS]) {
            let index = bucket_index(micros);
            assert!(micros <= bucket_high(index));
            if index > 0 {
                assert!(micros > bucket_high(index - 1));
            }
        }
    }

    /// Quantiles of a uniform spread come out within the histogram's 3% error.
    #[test]
    fn quantiles_are_close() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000u64 {
            histogram.record_nanos(micros * 1_000);
        }
        let p50 = histogram.quantile_ms(0.5);
        assert!((p50 - 5.0).abs() < 0.2, "{p50}");
        assert_eq!(histogram.max_ms(), 10.0);
    }
}
