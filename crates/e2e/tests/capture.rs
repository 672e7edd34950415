//! Capture fidelity end to end: real Envoy (--concurrency 2), real .wasm, sample upstream, local
//! collector. Every one of 1000 mixed requests must arrive as exactly one, exactly right event.

use e2e::accounting;
use e2e::client::{Client, Reply};
use e2e::envoy::{Envoy, Mode, Options, DEFAULT_FILTER_CONFIG};
use e2e::process::wait_for;
use e2e::stack::Stack;
use moesif_core::time::iso8601_ms;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const REQUESTS: usize = 1000;
const THREADS: usize = 8;

fn stack(name: &str, mode: Mode) -> Stack {
    Stack::start(name, &Options::new(mode))
}

/// The six kinds of call, chosen by request number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    GetQuery,
    PostJson,
    PostBinary,
    ChunkedUpload,
    NotFound,
    Direct,
}

const KINDS: [Kind; 6] = [
    Kind::GetQuery,
    Kind::PostJson,
    Kind::PostBinary,
    Kind::ChunkedUpload,
    Kind::NotFound,
    Kind::Direct,
];

fn kind_of(n: usize) -> Kind {
    KINDS[n % KINDS.len()]
}

fn binary_body(n: usize) -> Vec<u8> {
    (0..300).map(|i| ((i * 7 + n) % 256) as u8).collect()
}

fn upload_body(n: usize) -> Vec<u8> {
    format!("line {n}\n").repeat(500).into_bytes()
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Sends request `n`; returns the reply and the wall-clock window around it.
fn send(client: &Client, envoy: &Envoy, n: usize) -> (Reply, i64, i64) {
    let id = n.to_string();
    let before = now_ns();
    let reply = match kind_of(n) {
        Kind::GetQuery => {
            let ip = format!("203.0.113.{}", n % 250);
            client.get(
                &envoy.url(&format!("/items?page={n}&q=a%20b")),
                &[
                    ("x-test-id", &id),
                    ("x-user-id", &format!("user-{n}")),
                    ("x-company-id", "acme"),
                    ("x-forwarded-for", &ip),
                ],
            )
        }
        Kind::PostJson => client.send(
            "POST",
            &envoy.url("/echo"),
            &[
                ("x-test-id", &id),
                ("content-type", "application/json; charset=utf-8"),
            ],
            Some(format!(r#"{{"n":{n},"name":"widget \u00e9"}}"#).as_bytes()),
        ),
        Kind::PostBinary => client.send(
            "POST",
            &envoy.url("/echo"),
            &[
                ("x-test-id", &id),
                ("content-type", "application/octet-stream"),
            ],
            Some(&binary_body(n)),
        ),
        Kind::ChunkedUpload => client.send_chunked(
            "POST",
            &envoy.url("/upload"),
            &[("x-test-id", &id), ("content-type", "text/plain")],
            &upload_body(n),
        ),
        Kind::NotFound => client.get(&envoy.url("/missing/thing"), &[("x-test-id", &id)]),
        Kind::Direct => client.get(&envoy.url("/direct"), &[("x-test-id", &id)]),
    };
    (reply, before, now_ns())
}

/// Sends requests 0..REQUESTS from THREADS threads; returns each call's time window.
fn drive(envoy: &Envoy) -> HashMap<usize, (i64, i64)> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    let client = Client::new();
                    (t..REQUESTS)
                        .step_by(THREADS)
                        .map(|n| {
                            let (reply, before, after) = send(&client, envoy, n);
                            let want = if kind_of(n) == Kind::NotFound {
                                404
                            } else {
                                200
                            };
                            assert_eq!(reply.status, want, "request {n}: {}", reply.text());
                            (n, (before, after))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Asserts every field of the event for request `n`.
fn check_event(n: usize, e: &Value, window: (i64, i64), port: u16) {
    let req = &e["request"];
    let res = &e["response"];
    let host = format!("127.0.0.1:{port}");
    let ctx = format!("request {n} ({:?}): {e}", kind_of(n));
    assert_eq!(req["headers"]["x-test-id"], n.to_string(), "{ctx}");
    assert_eq!(
        req["headers"]["host"], host,
        "the host as the client sent it (Envoy's :authority): {ctx}"
    );
    assert!(
        req["headers"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with(':') && *k == k.to_lowercase()),
        "{ctx}"
    );
    assert_eq!(e["direction"], "Incoming", "{ctx}");
    assert_eq!(e["transaction_id"].as_str().unwrap().len(), 36, "{ctx}");
    // Times: inside the client's window (ms resolution), response after request.
    let (lo, hi) = (
        iso8601_ms(window.0 - 1_000_000),
        iso8601_ms(window.1 + 1_000_000),
    );
    let (rq, rs) = (req["time"].as_str().unwrap(), res["time"].as_str().unwrap());
    assert!(
        lo.as_str() <= rq && rq <= rs && rs <= hi.as_str(),
        "times {rq} {rs} not in [{lo}, {hi}]: {ctx}"
    );
    let meta = &e["metadata"]["envoy"];
    assert!(meta["duration_ms"].as_f64().unwrap() >= 0.0, "{ctx}");
    let expected_ip = if kind_of(n) == Kind::GetQuery {
        format!("203.0.113.{}", n % 250)
    } else {
        "127.0.0.1".into()
    };
    assert_eq!(req["ip_address"], expected_ip, "{ctx}");
    match kind_of(n) {
        Kind::GetQuery => {
            assert_eq!(req["verb"], "GET", "{ctx}");
            assert_eq!(
                req["uri"],
                format!("http://{host}/items?page={n}&q=a%20b"),
                "{ctx}"
            );
            assert_eq!(e["user_id"], format!("user-{n}"), "{ctx}");
            assert_eq!(e["company_id"], "acme", "{ctx}");
            assert!(
                req.get("body").is_none() && req.get("transfer_encoding").is_none(),
                "{ctx}"
            );
            assert_eq!(res["status"], 200, "{ctx}");
            assert_eq!(res["transfer_encoding"], "json", "{ctx}");
            assert_eq!(res["body"]["query"], format!("page={n}&q=a%20b"), "{ctx}");
            assert_eq!(
                res["body"]["items"][0],
                json!({"id": 1, "name": "widget"}),
                "{ctx}"
            );
            assert_eq!(res["headers"]["x-upstream"], "sample", "{ctx}");
            assert_eq!(res["ip_address"], "127.0.0.1", "{ctx}");
            assert_eq!(meta["route_name"], "api", "{ctx}");
            assert_eq!(meta["cluster_name"], "sample_upstream", "{ctx}");
        }
        Kind::PostJson => {
            let body = json!({"n": n, "name": "widget \u{e9}"});
            assert_eq!(req["verb"], "POST", "{ctx}");
            assert_eq!(req["uri"], format!("http://{host}/echo"), "{ctx}");
            assert_eq!(
                req["headers"]["content-type"], "application/json; charset=utf-8",
                "{ctx}"
            );
            assert_eq!(req["body"], body, "{ctx}");
            assert_eq!(req["transfer_encoding"], "json", "{ctx}");
            assert_eq!(res["status"], 200, "{ctx}");
            assert_eq!(res["body"], body, "{ctx}");
            assert_eq!(res["transfer_encoding"], "json", "{ctx}");
            assert!(
                e.get("user_id").is_none() && e.get("company_id").is_none(),
                "{ctx}"
            );
        }
        Kind::PostBinary => {
            let body = b64(&binary_body(n));
            assert_eq!(req["body"], body, "{ctx}");
            assert_eq!(req["transfer_encoding"], "base64", "{ctx}");
            assert_eq!(res["body"], body, "{ctx}");
            assert_eq!(res["transfer_encoding"], "base64", "{ctx}");
            assert_eq!(
                res["headers"]["content-type"], "application/octet-stream",
                "{ctx}"
            );
        }
        Kind::ChunkedUpload => {
            let body = upload_body(n);
            assert_eq!(req["uri"], format!("http://{host}/upload"), "{ctx}");
            // Envoy strips the hop-by-hop transfer-encoding; no content-length shows it was chunked.
            assert_eq!(req["headers"].get("content-length"), None, "{ctx}");
            assert_eq!(req["body"], b64(&body), "{ctx}");
            assert_eq!(req["transfer_encoding"], "base64", "{ctx}");
            assert_eq!(res["body"], json!({"received": body.len()}), "{ctx}");
        }
        Kind::NotFound => {
            assert_eq!(req["uri"], format!("http://{host}/missing/thing"), "{ctx}");
            assert_eq!(res["status"], 404, "{ctx}");
            assert_eq!(res["body"], json!({"error": "not found"}), "{ctx}");
        }
        Kind::Direct => {
            assert_eq!(req["uri"], format!("http://{host}/direct"), "{ctx}");
            assert_eq!(res["status"], 200, "{ctx}");
            assert_eq!(res["body"], json!({"direct": true}), "{ctx}");
            assert!(res.get("ip_address").is_none(), "{ctx}");
            assert_eq!(meta["route_name"], "direct", "{ctx}");
            assert_eq!(meta["cluster_name"], "", "{ctx}");
        }
    }
}

/// Waits for all events, checks each, and checks Envoy's counters.
/// Checks every event and the plugin's stats; returns the stats.
fn verify(stack: &Stack, windows: &HashMap<usize, (i64, i64)>, mode: Mode) -> accounting::Stats {
    let c = &stack.collector;
    wait_for(
        "1000 events at the collector",
        Duration::from_secs(30),
        || (c.event_count() >= REQUESTS as u64).then_some(()),
    );
    // A late duplicate would show up within a batch interval.
    std::thread::sleep(Duration::from_millis(1500));
    let events = c.events();
    assert_eq!(events.len(), REQUESTS, "exactly one event per request");
    let ids: HashSet<&str> = events
        .iter()
        .map(|e| e["transaction_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), REQUESTS, "distinct transaction ids");
    let mut seen = HashSet::new();
    for e in &events {
        let n: usize = e["request"]["headers"]["x-test-id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(seen.insert(n), "request {n} captured twice");
        check_event(n, e, windows[&n], stack.envoy.port);
    }
    let stats = accounting::settle(&stack.envoy, Duration::from_secs(10));
    let n = REQUESTS as u64;
    assert_eq!(stats["moesif_events_sent"], n, "{stats:?}");
    assert_eq!(stats["moesif_events_captured"], n, "{stats:?}");
    let enqueued = if mode == Mode::Singleton { n } else { 0 };
    // Fallback active: every filter root (one per worker, one on the main thread) ships itself.
    let local = stats["moesif_workers_shipping_locally"];
    match mode {
        Mode::Singleton => assert_eq!(local, 0, "{stats:?}"),
        _ => assert!(local >= 2, "{stats:?}"),
    }
    assert_eq!(stats["moesif_events_enqueued"], enqueued, "{stats:?}");
    assert_eq!(stats["moesif_events_dequeued"], enqueued, "{stats:?}");
    for drop in [
        "moesif_events_enqueue_failed",
        "moesif_events_dropped_buffer_full",
        "moesif_events_dropped_non_retryable",
        "moesif_events_dropped_encode_error",
        "moesif_events_retried",
        "moesif_batches_failed",
        "moesif_events_buffered",
        "moesif_events_in_flight",
        "moesif_batches_in_flight",
        "moesif_buffer_bytes",
    ] {
        assert_eq!(stats[drop], 0, "{drop}: {stats:?}");
    }
    assert_eq!(
        c.stats()["batches"].as_u64(),
        Some(stats["moesif_batches_sent"]),
        "{stats:?}"
    );
    stats
}

/// Every call's `on_log` properties came from one CEL evaluation (`one_by_one` 0), or each from
/// its own host call.
fn assert_properties_read(stats: &accounting::Stats, one_by_one: usize) {
    let read = stats["moesif_calls_properties_read_one_by_one"];
    assert_eq!(read, one_by_one as u64, "{stats:?}");
}

#[test]
fn singleton_captures_every_call_exactly() {
    let stack = stack("singleton", Mode::Singleton);
    let windows = drive(&stack.envoy);
    let stats = verify(&stack, &windows, Mode::Singleton);
    assert_properties_read(&stats, 0);
    let headers = &stack.collector.stats()["last_headers"];
    assert_eq!(headers["x-moesif-application-id"], "local-demo-app-id");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["user-agent"],
        format!("moesif-envoy-wasm/{}", env!("CARGO_PKG_VERSION"))
    );
}

/// Where Envoy evaluates no CEL, the plugin reads each `on_log` property with its own host
/// call: the same events, field for field (the test build's switch forces that path here).
#[test]
fn properties_read_one_by_one_capture_every_call_exactly() {
    let opts = Options::new(Mode::Singleton)
        .filter(&DEFAULT_FILTER_CONFIG.replacen('{', r#"{"test_properties_one_by_one": true, "#, 1))
        .filter_plugin(e2e::test_build_wasm_path(), "moesif_api_root_id")
        .shipper_wasm(e2e::test_build_wasm_path());
    let stack = Stack::start("one-by-one", &opts);
    let windows = drive(&stack.envoy);
    let stats = verify(&stack, &windows, Mode::Singleton);
    assert_properties_read(&stats, REQUESTS);
}

#[test]
fn fallback_without_singleton_captures_every_call_exactly() {
    let stack = stack("fallback", Mode::Fallback);
    let windows = drive(&stack.envoy);
    let stats = verify(&stack, &windows, Mode::Fallback);
    assert_properties_read(&stats, 0);
}
