//! `examples/observability/` against a real Prometheus (Debian's `prometheus` package, from
//! `cargo xtask setup`): promtool accepts the rules and the scrape config, and a Prometheus
//! scraping the e2e Envoy gets data for every dashboard query and every alert expression; the
//! dropped-events alert fires during a collector outage with a tiny buffer.

use e2e::accounting::{self, Expect};
use e2e::client::Client;
use e2e::envoy::{Mode, Options};
use e2e::process::{wait_for, Proc};
use e2e::stack::Stack;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn example(name: &str) -> PathBuf {
    e2e::root().join("examples/observability").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(example(name)).unwrap()
}

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} once in {text}");
    text.replace(from, to)
}

/// The shipped rules with every `for:` set to 0s and the buffer threshold scaled to the test's
/// `max_buffer_bytes` of 10000 (the documented 8e6 is 80% of the default 1e7).
fn test_rules() -> String {
    let text = replace_once(&read("alerts.yml"), "> 8e6", "> 8000");
    text.lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 0s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The shipped scrape config pointed at `admin` (host:port), scraping and evaluating every 1s.
fn test_config(admin: &str, rules: &Path) -> String {
    let text = read("prometheus.yml");
    let text = replace_once(&text, "envoy:9901", admin);
    let text = replace_once(&text, "scrape_interval: 15s", "scrape_interval: 1s");
    let text = replace_once(&text, "evaluation_interval: 15s", "evaluation_interval: 1s");
    replace_once(&text, "- alerts.yml", &format!("- {}", rules.display()))
}

fn promtool(args: &[&str], file: &Path) {
    let out = Command::new("promtool")
        .args(args)
        .arg(file)
        .output()
        .expect("promtool not found: run `cargo xtask setup`");
    assert!(
        out.status.success(),
        "promtool {args:?} {}: {}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every alert: (name, expression).
fn alert_exprs(rules: &str) -> Vec<(String, String)> {
    let v: serde_yaml::Value = serde_yaml::from_str(rules).unwrap();
    v["groups"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_sequence().unwrap().iter())
        .map(|r| {
            (
                r["alert"].as_str().unwrap().to_string(),
                r["expr"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every query of every dashboard panel.
fn dashboard_exprs() -> Vec<String> {
    let v: Value = serde_json::from_str(&read("grafana-dashboard.json")).unwrap();
    let exprs: Vec<String> = v["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    assert!(exprs.len() >= 8, "{exprs:?}");
    exprs
}

#[test]
fn promtool_accepts_the_rules_and_the_scrape_config() {
    promtool(&["check", "rules"], &example("alerts.yml"));
    let dir = e2e::scratch("promtool");
    let rules = dir.join("alerts.yml");
    std::fs::write(&rules, read("alerts.yml")).unwrap();
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, test_config("127.0.0.1:9901", &rules)).unwrap();
    promtool(&["check", "config"], &cfg);
    // The shipped file, as is, with its rules beside it.
    promtool(&["check", "config"], &example("prometheus.yml"));
    let test_rules_file = dir.join("test-alerts.yml");
    std::fs::write(&test_rules_file, test_rules()).unwrap();
    promtool(&["check", "rules"], &test_rules_file);
}

struct Prometheus {
    proc: Proc,
    url: String,
    client: Client,
}

impl Prometheus {
    fn start(dir: &Path, admin: &str) -> Prometheus {
        let rules = dir.join("alerts.yml");
        std::fs::write(&rules, test_rules()).unwrap();
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, test_config(admin, &rules)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let log = dir.join("prometheus.log");
        let mut proc = Proc::spawn("prometheus", cmd, &log);
        let url = format!("http://127.0.0.1:{port}");
        let client = Client::new();
        wait_for("prometheus ready", Duration::from_secs(30), || {
            if let Some(status) = proc.try_wait() {
                panic!("prometheus exited ({status}):\n{}", e2e::envoy::tail(&log));
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            (client.get(&format!("{url}/-/ready"), &[]).status == 200).then_some(())
        });
        Prometheus { proc, url, client }
    }

    fn api(&self, path: &str) -> Value {
        let r = self.client.get(&format!("{}{path}", self.url), &[]);
        let v: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| panic!("prometheus {path}: {} {}", r.status, r.text()));
        assert_eq!(v["status"], "success", "prometheus {path}: {v}");
        v
    }

    /// The result of an instant query (an error fails the test).
    fn query(&self, expr: &str) -> Vec<Value> {
        let mut path = String::from("/api/v1/query?query=");
        for b in expr.bytes() {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                path.push(b as char);
            } else {
                path.push_str(&format!("%{b:02X}"));
            }
        }
        self.api(&path)["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn firing(&self) -> BTreeSet<String> {
        self.api("/api/v1/alerts")["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .filter_map(|a| a["labels"]["alertname"].as_str().map(String::from))
            .collect()
    }
}

/// Drops from `pending` the expressions that return data now; adds the alerts firing now.
fn poll(prom: &Prometheus, pending: &mut BTreeSet<String>, fired: &mut BTreeSet<String>) {
    pending.retain(|e| prom.query(e).is_empty());
    fired.extend(prom.firing());
}

/// An alert expression without its threshold: what must return data even when it does not fire.
fn lhs(expr: &str) -> &str {
    expr.rsplit_once(" > ").map_or(expr, |(l, _)| l)
}

#[test]
fn prometheus_gets_data_for_every_panel_and_alert_and_the_drop_alert_fires_in_an_outage() {
    let opts = Options::new(Mode::Singleton).shipper(
        r#"{"moesif_application_id": "local-demo-app-id", "batch_max_wait": 1000, "max_buffer_bytes": 10000, "max_queue_bytes": 100000, "retry_backoff_initial_ms": 200, "retry_backoff_max_ms": 1000}"#,
    );
    let stack = Stack::start("observability", &opts);
    let admin = stack.envoy.admin.trim_start_matches("http://").to_string();
    let mut prom = Prometheus::start(&stack.dir, &admin);
    wait_for("envoy target up", Duration::from_secs(15), || {
        prom.query("up == 1").first().map(|_| ())
    });

    // Every expression that must return data at some point in the run.
    let alerts = alert_exprs(&test_rules());
    let mut pending: BTreeSet<String> = dashboard_exprs().into_iter().collect();
    for (_, expr) in &alerts {
        pending.insert(lhs(expr).to_string());
    }
    // These fire in this run, and drops are certain whichever way the outage goes: either the
    // singleton's 10 KB buffer overflows, or its batches wait and it leaves the backlog on the
    // shared queue, whose 100 KB fill within a second, and the workers ship the overflow into
    // their own 10 KB buffers. (With the default queue, 16 MB, the second way held every event
    // of the 10 s outage and nothing was dropped.)
    // The others need only their metric side: fallback does not happen here, and the buffer
    // sits at its bound only for moments between drops, which a 1 s scrape may or may not catch.
    for name in ["MoesifEventsDropped", "MoesifBatchesFailing"] {
        let (_, expr) = alerts.iter().find(|(n, _)| n == name).unwrap();
        pending.insert(expr.clone());
    }
    let mut fired = BTreeSet::new();

    // 5 s healthy, then 10 s of collector outage, under load all along.
    let wrk = e2e::load::start(&stack.dir, &stack.envoy.url("/items?src=wrk"), 15, 4, 5);
    let start = Instant::now();
    let mut outage = false;
    while start.elapsed() < Duration::from_secs(15) {
        if !outage && start.elapsed() >= Duration::from_secs(5) {
            outage = true;
            stack.collector.set_faults(&json!({"refuse_ms": 10_000}));
        }
        poll(&prom, &mut pending, &mut fired);
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("wrk: {}", wrk.finish());
    assert!(
        fired.contains("MoesifEventsDropped"),
        "the dropped-events alert fired during the outage: fired {fired:?}, {:?}",
        stack.envoy.plugin_stats()
    );

    // After the outage: the remaining (rates after recovery) come within a few scrapes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pending.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        poll(&prom, &mut pending, &mut fired);
    }
    assert!(
        pending.is_empty(),
        "no data from Prometheus for: {pending:#?}\n{:?}",
        stack.envoy.plugin_stats()
    );
    eprintln!("alerts fired: {fired:?}");
    assert!(
        fired.contains("MoesifBatchesFailing"),
        "MoesifBatchesFailing fired: {fired:?}"
    );
    prom.proc.stop(Duration::from_secs(5));

    let s = accounting::settle_until(
        &stack.envoy,
        Duration::from_secs(30),
        Expect::Completed,
        accounting::idle,
    );
    assert!(
        accounting::dropped(&s) > 0,
        "the tiny buffer dropped: {s:?}"
    );
}
