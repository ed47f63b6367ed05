//! The metrics endpoint (`--metrics-listen`) of the real binary, checked by `promtool` (Debian
//! package `prometheus`), and docs/DEPLOY.md's metrics: its table against the code's, its scrape
//! configuration and alert rules as written there, through `promtool check` and `promtool test`.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{require, scrape, Client, Server, TIMEOUT};
use smolchat::metrics::table::{Spec, TABLE};

const DEPLOY_MD: &str = include_str!("../docs/DEPLOY.md");

/// Starts a server with `--metrics-listen 127.0.0.1:0` and `extra`; returns it and the
/// endpoint's address, as printed on stdout.
fn start(extra: &[&str]) -> (Server, SocketAddr) {
    let args = [&["--metrics-listen", "127.0.0.1:0"], extra].concat();
    let (server, addr) = Server::start_until(&args, "metrics on ");
    (server, addr.parse().expect("metrics address"))
}

/// One HTTP response: the status code, the headers (names in lower case) and the body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` and reads one response (its body by `content-length`, or none for HEAD).
fn exchange(reader: &mut BufReader<TcpStream>, request: &str, head: bool) -> Response {
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .expect("send");
    let mut line = String::new();
    reader.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        let Some((name, value)) = line.trim_end().split_once(": ") else {
            break;
        };
        headers.push((name.to_ascii_lowercase(), value.to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: String::new(),
    };
    let length: usize = response
        .header("content-length")
        .and_then(|n| n.parse().ok())
        .expect("content-length");
    if !head {
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        response.body = String::from_utf8(body).expect("utf-8 body");
    }
    response
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).expect("timeout");
    BufReader::new(stream)
}

/// The value of the sample written exactly as `sample` (name and labels).
fn value(text: &str, sample: &str) -> f64 {
    common::sample(text, sample).unwrap_or_else(|| panic!("no sample {sample} in:\n{text}"))
}

/// Runs `promtool` with `args` in `dir`, `stdin` on its standard input; fails with its output
/// unless it succeeds.
fn promtool(promtool: &Path, dir: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(promtool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

/// A scrape of a server with users, a stored line and a refusal has every metric of the table
/// (but the cluster's), counts what happened, and passes `promtool check metrics`.
#[test]
fn a_scrape_counts_what_happened_and_passes_promtool() {
    let Some(promtool_path) = require("promtool") else {
        return;
    };
    let (server, addr) = start(&["--max-clients", "2"]);
    let [mut alice, mut bob] = server.join_all(["alice", "bob"]);
    alice.send("hello");
    bob.expect("alice: hello");
    // Both places are taken by named users: a third connection is refused as server full.
    let mut carol = Client::connect(server.addr);
    carol.expect("server full");
    alice.sync();

    let request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let response = exchange(&mut connect(addr), request, false);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = response.body;
    for spec in TABLE.iter().filter(|s| !s.cluster_only) {
        let kind = spec.kind.as_str();
        let declared = format!("# TYPE {} {kind}\n", spec.name);
        assert!(text.contains(&declared), "{} missing:\n{text}", spec.name);
    }
    assert!(
        !text.contains("smolchat_cluster_"),
        "cluster metrics on a single node"
    );
    let line = "smolchat_connections{door=\"line\",tls=\"false\"}";
    assert_eq!(value(&text, line), 2.0);
    assert_eq!(value(&text, "smolchat_connections_unnamed"), 0.0);
    assert_eq!(value(&text, "smolchat_max_clients"), 2.0);
    assert_eq!(value(&text, "smolchat_refusals_total{kind=\"full\"}"), 1.0);
    assert_eq!(
        value(&text, "smolchat_refusals_total{kind=\"eviction\"}"),
        0.0
    );
    // The hub's own figures: two users in one room, alice's line relayed to bob (and the join
    // notices delivered), each counted once per turn.
    assert_eq!(value(&text, "smolchat_users"), 2.0);
    assert_eq!(value(&text, "smolchat_rooms"), 1.0);
    assert_eq!(value(&text, "smolchat_lines_relayed_total"), 1.0);
    assert!(value(&text, "smolchat_deliveries_total") >= 2.0);
    assert!(value(&text, "smolchat_delivered_bytes_total") >= "alice: hello\n".len() as f64);
    assert_eq!(value(&text, "smolchat_chat_paused"), 0.0);
    // The writer counts a line before its commit is published, so before bob could see it.
    assert_eq!(value(&text, "smolchat_lines_stored_total"), 1.0);
    assert!(value(&text, "smolchat_history_commit_seconds_count") >= 1.0);
    assert_eq!(value(&text, "smolchat_outbox_budget_bytes"), 134_217_728.0);
    let version = format!(
        "smolchat_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&text, &version), 1.0);
    assert!(value(&text, "process_open_fds") >= 4.0);

    let dir = tempfile::tempdir().expect("tempdir");
    let said = promtool(&promtool_path, dir.path(), &["check", "metrics"], &text);
    assert!(said.trim().is_empty(), "promtool found problems:\n{said}");
}

/// Refusals a door makes are counted by kind: a line over `--max-line`, the rate limit (once
/// per burst, as the user is told), and a connection that chose no name in time.
#[test]
fn session_refusals_are_counted_by_kind() {
    let flags = [
        ["--max-line", "64"],
        ["--rate-burst", "3"],
        ["--rate-per-sec", "1"],
        ["--register-timeout", "1"],
    ];
    let (server, addr) = start(&flags.concat());
    let mut alice = server.join("alice");
    alice.send(&"x".repeat(100));
    alice.expect("line too long");
    for n in 0..4 {
        alice.send(&format!("line {n}"));
    }
    alice.expect("slow down");
    let mut silent = Client::connect(server.addr);
    silent.expect("no name");
    alice.sync();
    let text = scrape(addr);
    let kind = |k: &str| value(&text, &format!("smolchat_refusals_total{{kind=\"{k}\"}}"));
    assert_eq!(kind("line_too_long"), 1.0);
    assert_eq!(kind("line_rate"), 1.0);
    assert_eq!(kind("name_deadline"), 1.0);
    assert_eq!(kind("banned_name"), 0.0);
    assert_eq!(value(&text, "smolchat_users"), 1.0);
}

/// Refusals at accept are counted by kind: an unnamed connection evicted by a newcomer, one
/// address over `--max-per-ip`, and over `--connects-per-minute`. (The first connection is told
/// only when it is the one evicted.)
#[test]
fn accept_refusals_are_counted_by_kind() {
    for (flags, kind, first_sees, second_sees) in [
        (
            &["--max-unregistered", "1"][..],
            "eviction",
            Some("too many connections waiting for a name"),
            "What is your name?",
        ),
        (
            &["--max-per-ip", "1", "--limit-loopback"],
            "per_address",
            None,
            "too many connections from your address",
        ),
        (
            &["--connects-per-minute", "1", "--limit-loopback"],
            "connect_rate",
            None,
            "too many connections from your address in the last minute",
        ),
    ] {
        let (server, addr) = start(flags);
        let mut first = Client::connect(server.addr);
        first.expect("What is your name?");
        let mut second = Client::connect(server.addr);
        second.expect(second_sees);
        if let Some(evicted) = first_sees {
            first.expect(evicted);
        }
        let text = scrape(addr);
        let refused = |kind: &str| {
            value(
                &text,
                &format!("smolchat_refusals_total{{kind=\"{kind}\"}}"),
            )
        };
        assert_eq!(refused(kind), 1.0, "{flags:?}");
        assert_eq!(refused("full"), 0.0, "{flags:?}");
        assert_eq!(
            value(&text, "smolchat_connections_unnamed"),
            1.0,
            "{flags:?}"
        );
    }
}

/// Other paths get 404 and other methods 405; HEAD gets the headers alone; a scraper's
/// connection stays open for its next scrape.
#[test]
fn the_endpoint_serves_only_metrics_and_keeps_scrapers_connected() {
    let (_server, addr) = start(&[]);
    let mut conn = connect(addr);
    let get = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let first = exchange(&mut conn, get, false);
    let second = exchange(&mut conn, get, false);
    assert_eq!((first.status, second.status), (200, 200));
    assert!(second.body.contains("# TYPE smolchat_connections gauge"));
    let head = exchange(
        &mut conn,
        "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
        true,
    );
    assert_eq!(head.status, 200);
    assert!(head.header("content-length").is_some_and(|n| n != "0"));
    let not_found = exchange(
        &mut connect(addr),
        "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        false,
    );
    assert_eq!(not_found.status, 404);
    assert_eq!(not_found.header("connection"), Some("close"));
    let post = "POST /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let not_allowed = exchange(&mut connect(addr), post, false);
    assert_eq!(not_allowed.status, 405);
    assert_eq!(not_allowed.header("allow"), Some("GET, HEAD"));
}

/// docs/DEPLOY.md's metric table has a row for every metric the code exports, naming every
/// label and label value.
#[test]
fn deploy_md_lists_every_metric() {
    for spec in TABLE {
        let row = DEPLOY_MD
            .lines()
            .find(|l| l.starts_with(&format!("| `{}`", spec.name)))
            .unwrap_or_else(|| panic!("docs/DEPLOY.md has no row for {}", spec.name));
        assert!(
            row.contains(&format!("| {} |", spec.kind.as_str())),
            "{row}"
        );
        for (label, values) in spec.labels {
            assert!(row.contains(&format!("`{label}`")), "{row}");
            if *label == "version" {
                continue;
            }
            for v in *values {
                assert!(row.contains(&format!("`{v}`")), "{} lacks `{v}`", spec.name);
            }
        }
    }
}

/// The fenced block of docs/DEPLOY.md whose first line is the comment `# NAME`.
fn block(name: &str) -> String {
    let start = format!("```yaml\n# {name}\n");
    let at = DEPLOY_MD
        .find(&start)
        .unwrap_or_else(|| panic!("docs/DEPLOY.md has no yaml block for {name}"));
    let body = &DEPLOY_MD[at + "```yaml\n".len()..];
    body[..body.find("```").expect("closed block")].to_owned()
}

/// The metric names an expression or rule file uses.
fn metric_names(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("smolchat_"))
        .collect()
}

/// One alert of the rules block: its name and its annotations (templates left as written).
struct Alert {
    name: String,
    annotations: Vec<(String, String)>,
}

/// Reads the alerts of the rules block line by line (it is written in this one layout).
fn alerts(rules: &str) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = Vec::new();
    for line in rules.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            alerts.push(Alert {
                name: name.to_owned(),
                annotations: Vec::new(),
            });
        }
        for key in ["summary", "description"] {
            if let Some(text) = line.strip_prefix(&format!("{key}: ")) {
                let text = text.trim_matches('"').to_owned();
                let alert = alerts.last_mut().expect("an alert first");
                alert.annotations.push((key.to_owned(), text));
            }
        }
    }
    alerts
}

/// The `exp_alerts` entry for `alert` firing on `instance`, its annotations rendered.
fn expected(alert: &Alert, severity: &str, instance: &str) -> String {
    let mut out = format!(
        "          - exp_labels: {{severity: {severity}, instance: \"{instance}\", job: smolchat}}\n            exp_annotations:\n"
    );
    for (key, text) in &alert.annotations {
        let text = text.replace("{{ $labels.instance }}", instance);
        out += &format!("              {key}: \"{text}\"\n");
    }
    out
}

/// docs/DEPLOY.md's scrape configuration and alert rules, as written there, pass `promtool
/// check config` and `promtool check rules`, use only metrics the server exports, and fire
/// when they should (and not when they should not) on made-up series, by `promtool test rules`.
#[test]
fn deploy_md_scrape_config_and_alerts_pass_promtool() {
    let Some(promtool_path) = require("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = block("prometheus.yml");
    let rules = block("smolchat.rules.yml");
    std::fs::write(dir.path().join("prometheus.yml"), &config).expect("write");
    std::fs::write(dir.path().join("smolchat.rules.yml"), &rules).expect("write");
    let run = |args: &[&str]| promtool(&promtool_path, dir.path(), args, "");
    run(&["check", "config", "prometheus.yml"]);
    run(&["check", "rules", "smolchat.rules.yml"]);
    let known: Vec<&str> = TABLE.iter().map(|s: &Spec| s.name).collect();
    for name in metric_names(&rules) {
        assert!(
            known.contains(&name),
            "the rules use {name}, which is not exported"
        );
    }

    let alerts = alerts(&rules);
    let names: Vec<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "SmolchatChatPaused",
            "SmolchatHistoryCommitsFailing",
            "SmolchatNearConnectionCap"
        ]
    );
    let [paused, failing, near_cap] = [&alerts[0], &alerts[1], &alerts[2]];
    // Node a is in trouble, node b is fine (or only briefly so); samples every 15 s.
    let series = |name: &str, labels: &str, values: &str| {
        format!("      - series: '{name}{{instance=\"{labels}\", job=\"smolchat\"}}'\n        values: '{values}'\n")
    };
    let mut tests = String::from(
        "rule_files:\n  - smolchat.rules.yml\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n    input_series:\n",
    );
    // Paused from 30 s on; b only from 15 s to 30 s.
    tests += &series("smolchat_chat_paused", "a", "0 0 1x40");
    tests += &series("smolchat_chat_paused", "b", "0 1 1 0x40");
    // Failing from 75 s on; b never.
    tests += &series("smolchat_history_commit_failures_total", "a", "0x4 1+1x40");
    tests += &series("smolchat_history_commit_failures_total", "b", "0x45");
    // a: 95 connections over three series against 100; b: 50.
    for (door, tls, n) in [
        ("line", "false", 60),
        ("line", "true", 20),
        ("web", "false", 15),
    ] {
        let labels = format!("a\", door=\"{door}\", tls=\"{tls}");
        tests += &series("smolchat_connections", &labels, &format!("{n}x45"));
    }
    tests += &series(
        "smolchat_connections",
        "b\", door=\"line\", tls=\"false",
        "50x45",
    );
    tests += &series("smolchat_max_clients", "a", "100x45");
    tests += &series("smolchat_max_clients", "b", "100x45");
    tests += "    alert_rule_test:\n";
    let mut check = |at: &str, alert: &Alert, firing: Option<&str>| {
        tests += &format!(
            "      - eval_time: {at}\n        alertname: {}\n        exp_alerts:\n",
            alert.name
        );
        match firing {
            Some(severity) => tests += &expected(alert, severity, "a"),
            None => tests += "          []\n",
        }
    };
    // Paused 30 s at 1 m: pending, not yet firing; paused 90 s at 2 m: firing, for a only.
    check("1m", paused, None);
    check("2m", paused, Some("page"));
    check("2m", failing, None);
    check("3m", failing, Some("warning"));
    check("4m", near_cap, None);
    check("6m", near_cap, Some("warning"));
    std::fs::write(dir.path().join("tests.yml"), &tests).expect("write");
    run(&["test", "rules", "tests.yml"]);
}
