//! The registry against the table: what is scraped is what the table says.

use std::time::Duration;

use super::table::{Type, TABLE};
use super::*;

/// The value of the sample written exactly as `sample` (name and labels), if present.
fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

/// A sample's name and labels as the text format writes them.
fn sample(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// Every row of the table is exported once, with its type and help, and every label
/// combination from the start; the cluster rows only in cluster mode. Nothing else is.
#[test]
fn the_scrape_is_the_table() {
    for cluster in [false, true] {
        let metrics = Metrics::new(cluster);
        // The watched rows the server sets up itself.
        metrics.watch(Id::OutboxBytes, || 0.0);
        metrics.watch(Id::ConnectionsUnnamed, || 0.0);
        let text = metrics.encode();
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let expected: Vec<_> = TABLE
            .iter()
            .filter(|s| cluster || !s.cluster_only)
            .collect();
        assert_eq!(types.len(), expected.len(), "{text}");
        for spec in expected {
            let kind = spec.kind.as_str();
            assert!(
                types.contains(&format!("# TYPE {} {kind}", spec.name).as_str()),
                "{} missing:\n{text}",
                spec.name
            );
            assert!(
                text.contains(&format!("# HELP {} {}\n", spec.name, spec.help)),
                "{}'s help:\n{text}",
                spec.name
            );
            if spec.kind == Type::Histogram {
                continue;
            }
            for set in spec.label_sets() {
                let sample = sample(spec.name, &set);
                assert!(value(&text, &sample).is_some(), "{sample} missing:\n{text}");
            }
        }
    }
}

/// Connections count up while their guard lives; refusals, login failures and limits show.
#[test]
fn counts_show_in_the_scrape() {
    let metrics = Metrics::new(false);
    let tls = metrics.connected(Door::Line, true);
    let _plain = metrics.connected(Door::Line, false);
    let _web = metrics.connected(Door::Web, false);
    metrics.refused(Refusal::Full);
    metrics.refused(Refusal::Full);
    metrics.login_failed();
    metrics.set_limits(10_000, 128 << 20);
    let text = metrics.encode();
    let conn = |door, tls| {
        let sample = sample("smolchat_connections", &[("door", door), ("tls", tls)]);
        value(&metrics.encode(), &sample)
    };
    assert_eq!(conn("line", "true"), Some(1.0));
    assert_eq!(conn("web", "false"), Some(1.0));
    assert_eq!(conn("irc", "false"), Some(0.0));
    drop(tls);
    assert_eq!(conn("line", "true"), Some(0.0));
    let refused = |kind| value(&text, &sample("smolchat_refusals_total", &[("kind", kind)]));
    assert_eq!(refused("full"), Some(2.0));
    assert_eq!(refused("eviction"), Some(0.0));
    assert_eq!(value(&text, "smolchat_login_failures_total"), Some(1.0));
    assert_eq!(value(&text, "smolchat_max_clients"), Some(10_000.0));
    assert_eq!(
        value(&text, "smolchat_outbox_budget_bytes"),
        Some(134_217_728.0)
    );
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(
        value(&text, &sample("smolchat_build_info", &version)),
        Some(1.0)
    );
}

/// The hub's turn, the writer and the cluster link reach the scrape through their handles.
#[test]
fn handles_feed_the_registry() {
    let metrics = Metrics::new(true);
    let hub = metrics.hub();
    let mut turn = TurnCounts::default();
    turn.delivered(3, 30);
    turn.refused(Refusal::ChatPaused);
    hub.flush(&mut turn);
    hub.set_sizes(4, 2);
    hub.set_paused(true);
    let writer = metrics.writer();
    writer.committed(5, Duration::from_micros(700));
    writer.failed();
    writer.queued(9);
    let cluster = metrics.cluster().expect("cluster mode");
    cluster.set_link_up(true);
    cluster.set_reader_lag(12);
    let text = metrics.encode();
    for (sample, expected) in [
        ("smolchat_deliveries_total", 3.0),
        ("smolchat_delivered_bytes_total", 30.0),
        ("smolchat_refusals_total{kind=\"chat_paused\"}", 1.0),
        ("smolchat_users", 4.0),
        ("smolchat_rooms", 2.0),
        ("smolchat_chat_paused", 1.0),
        ("smolchat_lines_stored_total", 5.0),
        ("smolchat_history_commit_failures_total", 1.0),
        ("smolchat_history_queue_depth", 9.0),
        ("smolchat_history_commit_seconds_bucket{le=\"0.0005\"}", 0.0),
        ("smolchat_history_commit_seconds_bucket{le=\"0.001\"}", 1.0),
        ("smolchat_history_commit_seconds_count", 1.0),
        ("smolchat_cluster_link_up", 1.0),
        ("smolchat_cluster_reader_lag_entries", 12.0),
    ] {
        assert_eq!(value(&text, sample), Some(expected), "{sample}:\n{text}");
    }
    assert!(Metrics::new(false).cluster().is_none());
}

/// A watched gauge is read at each scrape, and a second watch replaces the first.
#[test]
fn watched_gauges_are_read_when_scraped() {
    let metrics = Metrics::new(false);
    let queued = Arc::new(std::sync::atomic::AtomicUsize::new(5));
    let seen = queued.clone();
    metrics.watch(Id::OutboxBytes, move || {
        seen.load(std::sync::atomic::Ordering::Relaxed) as f64
    });
    assert_eq!(value(&metrics.encode(), "smolchat_outbox_bytes"), Some(5.0));
    queued.store(7, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(value(&metrics.encode(), "smolchat_outbox_bytes"), Some(7.0));
    metrics.watch(Id::OutboxBytes, || 1.0);
    let text = metrics.encode();
    assert_eq!(value(&text, "smolchat_outbox_bytes"), Some(1.0));
    assert_eq!(text.matches("# TYPE smolchat_outbox_bytes ").count(), 1);
    assert!(value(&text, "process_resident_memory_bytes").is_some_and(|b| b > 0.0));
}
