//! Adding up what every client saw, overall and per door, and printing it: human lines, then the
//! one `RESULT` line scripts read.

use std::fmt::Write;
use std::time::Instant;

use crate::door::{Door, Member};
use crate::fanout::traffic::{ClientStats, End};
use crate::stats::Histogram;

/// What the readers of one door saw.
pub struct DoorTotals {
    pub door: Door,
    pub readers: usize,
    pub expected: u64,
    pub seen: u64,
    pub incomplete: usize,
    pub latency: Histogram,
}

/// What every client saw, added up.
#[derive(Default)]
pub struct Totals {
    pub latency: Histogram,
    pub cross: Histogram,
    pub send_lag: Histogram,
    pub seen: u64,
    pub duplicates: u64,
    pub reordered: u64,
    pub echoes: u64,
    pub sent: u64,
    pub last_arrival: Option<Instant>,
    /// How many readers ended each way, in order of first appearance.
    pub ends: Vec<(&'static str, usize)>,
    /// The first few errors, with the client's name.
    pub errors: Vec<String>,
    /// Per door, in [`Door::ALL`] order, only doors with readers.
    pub doors: Vec<DoorTotals>,
}

impl Totals {
    /// Adds up every client's figures.
    pub fn of(results: &[(Member, ClientStats)]) -> Totals {
        let mut totals = Totals {
            doors: Door::ALL
                .into_iter()
                .map(|door| DoorTotals {
                    door,
                    readers: 0,
                    expected: 0,
                    seen: 0,
                    incomplete: 0,
                    latency: Histogram::default(),
                })
                .collect(),
            ..Totals::default()
        };
        for (member, stats) in results {
            totals.latency.merge(&stats.latency);
            totals.cross.merge(&stats.cross);
            totals.send_lag.merge(&stats.send_lag);
            totals.seen += stats.seen;
            totals.duplicates += stats.duplicates;
            totals.reordered += stats.reordered;
            totals.echoes += stats.echoes;
            totals.sent += stats.sent;
            totals.last_arrival = totals.last_arrival.max(stats.last_arrival);
            let label = stats.end.label();
            match totals.ends.iter_mut().find(|(name, _)| *name == label) {
                Some((_, count)) => *count += 1,
                None => totals.ends.push((label, 1)),
            }
            let errors = [
                match &stats.end {
                    End::Error(error) => Some(error),
                    _ => None,
                },
                stats.send_error.as_ref(),
            ];
            for error in errors.into_iter().flatten() {
                if totals.errors.len() < 3 {
                    totals.errors.push(format!("{}: {error}", member.name));
                }
            }
            let Some(door) = totals.doors.iter_mut().find(|d| d.door == member.door) else {
                continue;
            };
            door.readers += 1;
            door.expected += stats.expected;
            door.seen += stats.seen;
            door.incomplete += usize::from(stats.end != End::Complete);
            door.latency.merge(&stats.latency);
        }
        totals.doors.retain(|d| d.readers > 0);
        totals
    }

    /// Readers that did not see every line.
    pub fn incomplete(&self) -> usize {
        self.doors.iter().map(|d| d.incomplete).sum()
    }

    /// The readers' ends as `complete 999, gave_up 1`.
    pub fn ends_text(&self) -> String {
        let ends: Vec<String> = self.ends.iter().map(|(l, c)| format!("{l} {c}")).collect();
        ends.join(", ")
    }

    /// One human line per door, when the room has clients of more than one door.
    pub fn print_doors(&self) {
        if self.doors.len() < 2 {
            return;
        }
        for d in &self.doors {
            println!(
                "  {} readers ({}): delivered {} of {} (ratio {:.4}), incomplete {}; latency ms p50 {:.3}  p99 {:.3}  max {:.3}",
                d.door,
                d.readers,
                d.seen,
                d.expected,
                ratio(d.seen, d.expected),
                d.incomplete,
                d.latency.quantile_ms(0.5),
                d.latency.quantile_ms(0.99),
                d.latency.max_ms()
            );
        }
    }

    /// The per-door keys of the `RESULT` line: `nc_readers=... nc_p99_ms=...` for each door with
    /// readers, and `mix=nc:500,irc:500`.
    pub fn result_keys(&self) -> String {
        let mix: Vec<String> = self
            .doors
            .iter()
            .map(|d| format!("{}:{}", d.door, d.readers))
            .collect();
        let mut keys = format!("mix={}", mix.join(","));
        for d in &self.doors {
            let door = d.door;
            // Writing into a String cannot fail.
            let _ = write!(
                keys,
                " {door}_readers={} {door}_expected={} {door}_delivered={} {door}_ratio={:.4} \
                 {door}_incomplete={} {door}_p50_ms={:.3} {door}_p99_ms={:.3} {door}_max_ms={:.3}",
                d.readers,
                d.expected,
                d.seen,
                ratio(d.seen, d.expected),
                d.incomplete,
                d.latency.quantile_ms(0.5),
                d.latency.quantile_ms(0.99),
                d.latency.max_ms()
            );
        }
        keys
    }
}

/// `seen / expected`, 1 when nothing was expected.
pub fn ratio(seen: u64, expected: u64) -> f64 {
    if expected == 0 {
        1.0
    } else {
        seen as f64 / expected as f64
    }
}
