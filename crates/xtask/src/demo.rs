//! `cargo xtask demo`: Envoy with the plugin, the sample upstream and the local collector; a
//! handful of varied calls; the captured events, printed readably.

use e2e::client::{Call, Client};
use e2e::envoy::{self, Mode, DEFAULT_FILTER_CONFIG};
use e2e::process::wait_for;
use e2e::services::{start_collector, start_upstream};
use serde_json::Value;
use std::time::Duration;

pub fn run() {
    let dir = e2e::scratch("demo");
    let upstream = start_upstream(&dir);
    let collector = start_collector(&dir);
    let config = envoy::render(
        Mode::Singleton,
        DEFAULT_FILTER_CONFIG,
        upstream.port,
        collector.port,
    );
    let envoy = envoy::start(&dir, &config);
    println!(
        "Envoy  http://127.0.0.1:{}  (admin {})",
        envoy.port, envoy.admin
    );
    println!("files  {}\n", dir.display());

    let client = Client::new();
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
    ];
    for (method, path, headers, body) in &calls {
        let r = client.send(method, &envoy.url(path), headers, *body);
        println!(
            "-> {method} {path}  <- {} ({} bytes)",
            r.status,
            r.body.len()
        );
    }
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
