//! `cargo xtask demo`: Envoy with the plugin, the sample upstream and the local collector; a
//! handful of varied calls; the captured events, printed readably and shown in the
//! collector's event viewer. The collector plays Moesif's dashboard too: it samples `/health`
//! at 0% and a governance rule blocks the user `mallory`. With `--keep` everything stays up
//! for browsing until Ctrl-C.

use e2e::client::{Call, Client};
use e2e::envoy::{self, Mode};
use e2e::process::{wait_for, Proc};
use e2e::services::{start_collector, start_upstream};
use serde_json::{json, Value};
use std::time::Duration;

/// The tests' filter config, with governance on.
const DEMO_FILTER_CONFIG: &str = r#"{"moesif_application_id": "local-demo-app-id", "user_id_header": "X-User-Id", "company_id_header": "X-Company-Id", "batch_max_wait": 1000, "enable_governance": true}"#;

/// A JWT whose payload is `{"sub":"carol","iat":1700000000}` (identity, not authentication).
const DEMO_JWT: &str =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjYXJvbCIsImlhdCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJl";

pub fn run(keep: bool) {
    let dir = e2e::scratch("demo");
    let mut upstream = start_upstream(&dir);
    let mut collector = start_collector(&dir);
    collector.set_app_config(&json!({
        "sample_rate": 100,
        "regex_config": [{"conditions": [{"path": "request.route", "value": "^/health"}], "sample_rate": 0}],
        "user_rules": {"mallory": [{"rules": "demo-unpaid", "values": {"plan": "expired"}}]}
    }));
    collector.set_rules(
        &json!([{"_id": "demo-unpaid", "name": "unpaid", "type": "user",
        "block": true, "applied_to": "matching",
        "response": {"status": 402, "headers": {"x-moesif-demo": "blocked"},
                     "body": {"error": "your {{plan}} plan does not cover this call"}}}]),
    );
    let config = envoy::render(
        Mode::Singleton,
        DEMO_FILTER_CONFIG,
        upstream.port,
        collector.port,
    );
    let mut envoy = envoy::start(&dir, &config);
    // The shipper fetches the sample rates and rules at start; the filters read them on a tick.
    std::thread::sleep(Duration::from_secs(1));
    println!(
        "Envoy  http://127.0.0.1:{}  (admin {})",
        envoy.port, envoy.admin
    );
    println!(
        "viewer http://127.0.0.1:{}/  (the events, live)",
        collector.port
    );
    println!("files  {}\n", dir.display());

    let client = Client::new();
    let bearer = format!("Bearer {DEMO_JWT}");
    let binary: Vec<u8> = (0..=255).collect();
    let calls: Vec<Call> = vec![
        (
            "GET",
            "/items?page=2&sort=name",
            vec![("x-user-id", "alice"), ("x-company-id", "acme")],
            None,
        ),
        (
            "POST",
            "/echo",
            vec![
                ("content-type", "application/json; charset=utf-8"),
                ("x-user-id", "bob"),
            ],
            Some(br#"{"name":"widget","price":9.5}"#),
        ),
        (
            "POST",
            "/echo",
            vec![("content-type", "application/octet-stream")],
            Some(&binary),
        ),
        ("GET", "/does-not-exist", vec![], None),
        (
            "GET",
            "/direct",
            vec![("x-forwarded-for", "203.0.113.50")],
            None,
        ),
        ("GET", "/items", vec![("authorization", &bearer)], None),
        ("GET", "/items", vec![("x-user-id", "mallory")], None),
    ];
    let sampled_out: Vec<Call> = vec![("GET", "/health", vec![], None); 3];
    for (method, path, headers, body) in calls.iter().chain(&sampled_out) {
        let r = client.send(method, &envoy.url(path), headers, *body);
        println!(
            "-> {method} {path}  <- {} ({} bytes)",
            r.status,
            r.body.len()
        );
    }
    println!("\n(/health is sampled at 0%: its 3 calls make no event; mallory is blocked by rule demo-unpaid)");
    println!("\nwaiting for the plugin to ship the batch (batch_max_wait 1 s)...\n");
    wait_for("demo events", Duration::from_secs(20), || {
        (collector.event_count() >= calls.len() as u64).then_some(())
    });
    for e in collector.events() {
        print_event(&e);
    }
    let stats = wait_for("stats", Duration::from_secs(5), || {
        let s = envoy.plugin_stats();
        (s.get("moesif_events_sent").copied() == Some(calls.len() as u64)).then_some(s)
    });
    println!("Envoy stats (wasmcustom.*):");
    for (name, value) in stats {
        println!("  {name:<40} {value}");
    }
    println!("\nevent viewer: http://127.0.0.1:{}/", collector.port);
    if keep {
        println!(
            "Envoy http://127.0.0.1:{} and the viewer keep running; Ctrl-C stops them.",
            envoy.port
        );
        keep_running(&mut [&mut envoy.proc, &mut collector.proc, &mut upstream.proc]);
    }
}

/// Returns once one of `procs` has exited; dropping them then stops the others. Ctrl-C in
/// the terminal reaches every process of the foreground group, these included.
fn keep_running(procs: &mut [&mut Proc]) {
    loop {
        for proc in procs.iter_mut() {
            if let Some(status) = proc.try_wait() {
                println!("{} exited ({status}): stopping", proc.name);
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn print_event(e: &Value) {
    let req = &e["request"];
    let res = &e["response"];
    println!(
        "{} {}  -> {}   transaction_id {}",
        req["verb"].as_str().unwrap_or(""),
        req["uri"].as_str().unwrap_or(""),
        res["status"],
        e["transaction_id"].as_str().unwrap_or("")
    );
    println!(
        "   time {} .. {}   client ip {}   user {}   company {}",
        req["time"].as_str().unwrap_or(""),
        res["time"].as_str().unwrap_or(""),
        req["ip_address"],
        e["user_id"],
        e["company_id"]
    );
    println!(
        "   request  body ({}): {}",
        req["transfer_encoding"],
        short(&req["body"])
    );
    println!(
        "   response body ({}): {}",
        res["transfer_encoding"],
        short(&res["body"])
    );
    if let Some(rule) = e.get("blocked_by") {
        println!("   blocked_by {rule} (answered by Envoy; the upstream never saw it)");
    }
    let masked: Vec<&str> = req["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| *v == "*****")
        .map(|(k, _)| k.as_str())
        .collect();
    if !masked.is_empty() {
        println!("   masked headers {masked:?}");
    }
    println!("   metadata {}\n", e["metadata"]);
}

fn short(v: &Value) -> String {
    let s = if v.is_null() {
        "-".to_string()
    } else {
        v.to_string()
    };
    if s.chars().count() > 90 {
        format!("{}...", s.chars().take(90).collect::<String>())
    } else {
        s
    }
}
