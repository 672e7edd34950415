//! A collector, or whatever answers in its place (a proxy, a captive portal, a broken load
//! balancer), answers badly: non-UTF-8 `Retry-After` and other header values, a connection
//! reset mid-answer, a 200 with a garbage body, answers slower than `connection_timeout`.
//! The shipper survives all of it, every event arrives (Moesif de-duplicates on
//! `transaction_id`), and the accounting stays exact.

use e2e::accounting;
use e2e::client::Client;
use e2e::envoy::{Mode, Options};
use e2e::process::wait_for;
use e2e::stack::Stack;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SHIPPER: &str = r#"{"moesif_application_id": "local-demo-app-id", "batch_max_wait": 200,
    "connection_timeout": 500, "retry_backoff_initial_ms": 100, "retry_backoff_max_ms": 1000}"#;

/// Sends calls until the collector has consumed the fault (its `count` ran out).
fn until_consumed(stack: &Stack, client: &Client, fault: Value, sent: &mut u64) {
    stack.collector.set_faults(&fault);
    let deadline = Instant::now() + Duration::from_secs(30);
    let in_force = |f: Value| {
        ["status", "reset", "header_bytes"]
            .iter()
            .any(|k| f.get(k).is_some())
    };
    while in_force(stack.collector.faults()) {
        assert!(Instant::now() < deadline, "fault {fault} never consumed");
        let r = client.get(&stack.envoy.url(&format!("/items?n={sent}")), &[]);
        assert_eq!(r.status, 200, "traffic unaffected");
        *sent += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hostile(mode: Mode) {
    let opts = Options::new(mode).shipper(SHIPPER).filter(SHIPPER);
    let stack = Stack::start("hostile-collector", &opts);
    let client = Client::new();
    let mut sent = 0;
    let faults = [
        // The answer that killed the singleton in proxy-wasm 0.2.5's get_map_value.
        json!({"status": 503, "retry_after_bytes": "fffe31", "count": 2}),
        json!({"header_bytes": "80fe41ff", "count": 2}),
        json!({"status": 502, "retry_after_s": 1, "header_bytes": "c0ffee", "count": 1}),
        json!({"reset": true, "header_bytes": "ff", "count": 2}),
        json!({"status": 200, "garbage_body": true, "count": 1}),
        json!({"status": 503, "garbage_body": true, "count": 1}),
    ];
    for fault in faults {
        until_consumed(&stack, &client, fault, &mut sent);
    }
    // Slower than connection_timeout (500 ms): the plugin times out and retries; the collector
    // still stores the slow copies, as Moesif would (and de-duplicates them).
    let retried_before = stack.envoy.stat("moesif_batches_retried");
    stack.collector.set_faults(&json!({"latency_ms": 900}));
    for _ in 0..20 {
        let r = client.get(&stack.envoy.url(&format!("/items?n={sent}")), &[]);
        assert_eq!(r.status, 200);
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_for("a timed-out batch", Duration::from_secs(10), || {
        (stack.envoy.stat("moesif_batches_retried") > retried_before).then_some(())
    });
    stack.collector.clear_faults();
    for _ in 0..20 {
        assert_eq!(
            client.get(&stack.envoy.url("/items?after"), &[]).status,
            200
        );
        sent += 1;
    }

    let s = accounting::settle(&stack.envoy, Duration::from_secs(30));
    let c = stack.collector.stats();
    assert_eq!(s["moesif_events_captured"], sent, "{s:?}");
    assert_eq!(s["moesif_events_sent"], sent, "{s:?}");
    assert_eq!(accounting::ended(&s), 0, "nothing dropped: {s:?}");
    assert_eq!(c["unique_transaction_ids"].as_u64(), Some(sent), "{c}");
    let dups = c["duplicate_events"].as_u64().unwrap();
    assert_eq!(c["events"].as_u64(), Some(sent + dups), "{c}");
    assert!(
        s["moesif_batches_failed"] >= 7,
        "every bad answer was a failure: {s:?}"
    );
    let log = stack.envoy.log_text();
    assert!(!log.contains("panicked"), "{}", stack.envoy.log_tail());
    assert!(
        !log.contains("ships its own events") || mode == Mode::Fallback,
        "the singleton never looked dead: {}",
        stack.envoy.log_tail()
    );
    assert_eq!(s["moesif_events_enqueue_failed"], 0, "{s:?}");
}

#[test]
fn hostile_collector_answers_kill_nothing_and_lose_nothing() {
    hostile(Mode::Singleton);
}

#[test]
fn hostile_collector_answers_in_fallback_mode_kill_nothing_and_lose_nothing() {
    hostile(Mode::Fallback);
}
