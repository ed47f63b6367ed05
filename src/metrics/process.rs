//! The process's own gauges, the ones every Prometheus client exports under `process_`: start
//! time, CPU time, resident memory, open descriptors and their limit. Read from `/proc` at each
//! scrape (Linux); where `/proc` cannot be read they are left out of the scrape.

use std::time::{SystemTime, UNIX_EPOCH};

use super::table::Id;
use super::watched::Watched;

/// Watches the process gauges; the start time is the time of this call (the server makes its
/// metrics first thing).
pub(super) fn watch(watched: &Watched) {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    watched.set(Id::StartTime, move || Some(started));
    watched.set(Id::CpuSeconds, cpu_seconds);
    watched.set(Id::ResidentMemory, resident_bytes);
    watched.set(Id::OpenFds, open_fds);
    watched.set(Id::MaxFds, max_fds);
}

/// User plus system CPU time, from fields 14 and 15 of `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after its last `)`.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then(|| (utime + stime) as f64 / ticks as f64)
}

/// Resident pages (field 2 of `/proc/self/statm`) times the page size.
fn resident_bytes() -> Option<f64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (page > 0).then(|| (pages * page as u64) as f64)
}

/// Entries of `/proc/self/fd` (one readdir pass: about a millisecond at ten thousand
/// connections, once per scrape).
fn open_fds() -> Option<f64> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as f64)
}

/// The soft open-file limit (which the server raised to the hard one at start).
fn max_fds() -> Option<f64> {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    Some(soft as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On Linux every process gauge reads a plausible value.
    #[test]
    fn process_gauges_read() {
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
        assert!(resident_bytes().is_some_and(|b| b > 1024.0 * 1024.0));
        assert!(open_fds().is_some_and(|n| n >= 3.0));
        assert!(max_fds().is_some_and(|n| n >= 3.0));
    }
}
