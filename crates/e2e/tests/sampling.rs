//! Moesif's remote control of sampling: the app config (`GET /v1/config`) the shipper fetches
//! at start and whenever a batch answer carries a new ETag, published to every filter, decided
//! at request headers. Through the real Envoy, with the collector serving the config.

use e2e::accounting::{self, Expect};
use e2e::client::Client;
use e2e::envoy::{Mode, Options};
use e2e::process::wait_for;
use e2e::stack::Stack;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"{"moesif_application_id": "local-demo-app-id", "batch_max_wait": 100,
    "user_id_header": "X-User-Id", "company_id_header": "X-Company-Id"}"#;

fn start(name: &str, mode: Mode) -> Stack {
    Stack::start(name, &Options::new(mode).filter(CONFIG).shipper(CONFIG))
}

/// Serves `config` and sends calls until the plugin shows it applies it: `probe` returns
/// whether the last call's outcome proves it. Returns the calls sent meanwhile.
fn apply(stack: &Stack, config: Value, probe: impl Fn(&Stack) -> bool) -> u64 {
    stack.collector.set_app_config(&config);
    let client = Client::new();
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !probe(stack) {
        assert!(Instant::now() < deadline, "config {config} never applied");
        client.get(&stack.envoy.url("/items?warmup"), &[]);
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    // The warm-up calls' events delivered, so that what follows is counted alone.
    accounting::settle_until(
        &stack.envoy,
        Duration::from_secs(10),
        Expect::Any,
        accounting::idle,
    );
    sent
}

fn sampled_out(stack: &Stack) -> u64 {
    stack.envoy.stat("moesif_calls_sampled_out")
}

#[test]
fn half_of_the_calls_are_kept_with_weight_2_and_a_route_rule_drops_health() {
    let stack = start("sample-50", Mode::Singleton);
    let config = json!({"sample_rate": 50, "regex_config": [
        {"conditions": [{"path": "request.route", "value": "^/health"}], "sample_rate": 0}
    ]});
    apply(&stack, config, |s| sampled_out(s) > 0);
    stack.collector.clear_events();
    let before = stack.envoy.plugin_stats();
    let client = Client::new();
    let n = 4000;
    for i in 0..n {
        client.get(&stack.envoy.url(&format!("/items?i={i}")), &[]);
    }
    for i in 0..200 {
        client.get(&stack.envoy.url(&format!("/health?i={i}")), &[]);
    }
    let after = accounting::settle_until(
        &stack.envoy,
        Duration::from_secs(20),
        Expect::Any,
        accounting::idle,
    );
    let kept = after["moesif_events_captured"] - before["moesif_events_captured"];
    let dropped = after["moesif_calls_sampled_out"] - before["moesif_calls_sampled_out"];
    assert_eq!(
        kept + dropped,
        n + 200,
        "every call decided once: {after:?}"
    );
    // Binomial(4000, 0.5): mean 2000, sd 31.6; 99.9% two-sided is within 3.29 sd (+-104).
    assert!((1896..=2104).contains(&kept), "kept {kept} of {n}");
    let events = stack.collector.events();
    assert_eq!(events.len() as u64, kept, "every kept call delivered");
    for e in &events {
        assert_eq!(e["weight"], 2, "{e}");
        // The peer's address, read once at request headers for the decision, is the event's.
        assert_eq!(e["request"]["ip_address"], "127.0.0.1", "{e}");
        assert!(
            !e["request"]["uri"].as_str().unwrap().contains("/health"),
            "{e}"
        );
    }
}

#[test]
fn regex_then_user_then_company_then_default_rate() {
    let stack = start("sample-precedence", Mode::Singleton);
    let config = json!({
        "sample_rate": 0,
        "user_sample_rate": {"u-all": 100},
        "company_sample_rate": {"c-all": 100, "c-none": 0},
        "regex_config": [{"conditions": [{"path": "request.route", "value": "^/always"}], "sample_rate": 100}]
    });
    apply(&stack, config, |s| sampled_out(s) > 0);
    stack.collector.clear_events();
    let client = Client::new();
    // (path and query, headers, kept)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 6] = [
        ("/items?case=user", &[("x-user-id", "u-all")], true),
        ("/items?case=company", &[("x-company-id", "c-all")], true),
        (
            "/items?case=user-over-company",
            &[("x-user-id", "u-all"), ("x-company-id", "c-none")],
            true,
        ),
        (
            "/items?case=company-none",
            &[("x-user-id", "u-x"), ("x-company-id", "c-none")],
            false,
        ),
        (
            "/always?case=regex-over-user",
            &[("x-user-id", "u-x")],
            true,
        ),
        ("/items?case=nobody", &[], false),
    ];
    for (path, headers, _) in &cases {
        for _ in 0..20 {
            client.get(&stack.envoy.url(path), headers);
        }
    }
    let kept: u64 = cases.iter().filter(|c| c.2).count() as u64 * 20;
    wait_for("the kept calls", Duration::from_secs(15), || {
        (stack.collector.event_count() >= kept).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let events = stack.collector.events();
    for (path, _, keep) in &cases {
        let n = events
            .iter()
            .filter(|e| e["request"]["uri"].as_str().unwrap().ends_with(path))
            .count();
        assert_eq!(n, if *keep { 20 } else { 0 }, "{path}");
    }
    assert_eq!(events.len() as u64, kept);
}

/// A new config in the middle of a run is in force within a batch round trip and a tick,
/// without restarting Envoy.
fn changed_mid_run(mode: Mode) {
    let stack = start(&format!("sample-change-{mode:?}"), mode);
    let client = Client::new();
    for _ in 0..50 {
        client.get(&stack.envoy.url("/items?phase=before"), &[]);
    }
    stack.collector.set_app_config(&json!({"sample_rate": 0}));
    let changed = Instant::now();
    let mut in_force = None;
    while changed.elapsed() < Duration::from_secs(10) {
        let before = sampled_out(&stack);
        client.get(&stack.envoy.url("/items?phase=after"), &[]);
        std::thread::sleep(Duration::from_millis(20));
        if in_force.is_none() && sampled_out(&stack) > before {
            in_force = Some(changed.elapsed());
            break;
        }
    }
    let in_force = in_force.expect("the new rate never took effect");
    eprintln!("{mode:?}: new sample rate in force after {in_force:?}");
    // batch_max_wait (100 ms) + a round trip + the tick (100 ms) + the stats' own tick, with
    // slack for a loaded machine; the point is seconds, not the 5-minute refresh.
    assert!(in_force < Duration::from_secs(3), "{in_force:?}");
    let fetches = stack.collector.stats()["config_fetches"].as_u64().unwrap();
    let most = if mode == Mode::Singleton { 2 } else { 2 * 2 };
    assert!(
        fetches <= most,
        "one fetch at start, one after the change, per shipper: {fetches}"
    );
    for _ in 0..50 {
        client.get(&stack.envoy.url("/items?phase=zero"), &[]);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !stack.collector.events().iter().any(|e| e["request"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("phase=zero")),
        "rate 0 keeps nothing"
    );
}

#[test]
fn a_new_config_takes_effect_mid_run_with_the_singleton() {
    changed_mid_run(Mode::Singleton);
}

#[test]
fn a_new_config_takes_effect_mid_run_in_fallback_mode() {
    changed_mid_run(Mode::Fallback);
}

#[test]
fn config_endpoint_down_or_garbage_at_start_samples_everything() {
    let stack = start("sample-config-down", Mode::Singleton);
    stack
        .collector
        .set_faults(&json!({"target": "config", "status": 503}));
    let client = Client::new();
    let calls = |range: std::ops::Range<u32>| {
        for i in range {
            let r = client.get(&stack.envoy.url(&format!("/items?i={i}")), &[]);
            assert_eq!(r.status, 200);
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    calls(0..40);
    stack
        .collector
        .set_faults(&json!({"target": "config", "status": 200, "garbage_body": true}));
    calls(40..80);
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(
        s["moesif_events_sent"], 80,
        "everything sampled at 100%: {s:?}"
    );
    assert_eq!(s.get("moesif_calls_sampled_out").copied().unwrap_or(0), 0);
    let log = stack.envoy.log_text();
    let lines = log.matches("cannot fetch the app config").count();
    assert_eq!(lines, 1, "logged once (rate-limited): {log}");
    let fetches = stack.collector.stats()["config_fetches"].as_u64().unwrap();
    assert!(
        (2..=6).contains(&fetches),
        "retried with backoff, no storm: {fetches}"
    );
}
