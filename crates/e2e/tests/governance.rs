//! Moesif's governance rules, opt-in with `enable_governance`: a blocking rule answers the
//! call from Envoy with the rule's status, headers and templated body, the upstream never sees
//! it, and its event carries `blocked_by`; a non-blocking rule adds its headers. Rules and
//! cohorts come from the collector (`/v1/rules`, `/v1/config`), decided from the cached
//! copies, never a call per request.

use e2e::accounting;
use e2e::client::Client;
use e2e::envoy::{Mode, Options};
use e2e::process::wait_for;
use e2e::stack::Stack;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn config(governance: bool) -> String {
    json!({
        "moesif_application_id": "local-demo-app-id", "batch_max_wait": 100,
        "user_id_header": "X-User-Id", "enable_governance": governance
    })
    .to_string()
}

fn rules() -> Value {
    json!([
        {"_id": "rule-over-quota", "name": "over quota", "type": "user", "block": true,
         "applied_to": "matching", "applied_to_unidentified": false,
         "response": {"status": 429,
                      "headers": {"x-blocked-plan": "{{plan}}"},
                      "body": {"error": "quota exceeded on plan {{plan}}", "contact": "{{owner}}"}}},
        {"_id": "rule-items-banner", "name": "banner", "type": "regex", "block": false,
         "regex_config": [{"conditions": [{"path": "request.route", "value": "^/items"}]}],
         "response": {"headers": {"x-governed": "yes"}}}
    ])
}

fn cohorts() -> Value {
    json!({"sample_rate": 100, "user_rules": {
        "u-blocked": [{"rules": "rule-over-quota", "values": {"plan": "free"}}]
    }})
}

fn upstream_requests(stack: &Stack) -> u64 {
    stack
        .envoy
        .server_stat("cluster.sample_upstream.upstream_rq_total")
}

fn start(name: &str, governance: bool) -> Stack {
    let stack = Stack::start(
        name,
        &Options::new(Mode::Singleton)
            .filter(&config(governance))
            .shipper(&config(false)),
    );
    stack.collector.set_app_config(&cohorts());
    stack.collector.set_rules(&rules());
    stack
}

#[test]
fn a_blocked_user_is_answered_by_envoy_and_others_pass_with_the_rule_headers() {
    let stack = start("governance-on", true);
    let client = Client::new();
    // The plugin fetched the documents at start, perhaps before they were set: a batch answer's
    // new tags make it fetch them again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = client.get(
            &stack.envoy.url("/items?warmup"),
            &[("x-user-id", "u-blocked")],
        );
        if r.status == 429 {
            break;
        }
        assert!(Instant::now() < deadline, "the rules never took effect");
        std::thread::sleep(Duration::from_millis(50));
    }
    accounting::settle(&stack.envoy, Duration::from_secs(10));
    stack.collector.clear_events();

    let before = upstream_requests(&stack);
    for _ in 0..5 {
        let r = client.get(
            &stack.envoy.url("/items?who=blocked"),
            &[("x-user-id", "u-blocked")],
        );
        assert_eq!(r.status, 429);
        let header = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-blocked-plan"), Some("free"));
        assert_eq!(
            header("x-governed"),
            None,
            "only the blocking rule's headers"
        );
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"error": "quota exceeded on plan free", "contact": "UNKNOWN"})
        );
    }
    assert_eq!(
        upstream_requests(&stack),
        before,
        "the upstream never saw them"
    );
    for _ in 0..5 {
        let r = client.get(
            &stack.envoy.url("/items?who=other"),
            &[("x-user-id", "u-other")],
        );
        assert_eq!(r.status, 200);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "x-governed" && v == "yes"));
        let r = client.get(&stack.envoy.url("/other?who=anon"), &[]);
        assert!(
            !r.headers.iter().any(|(k, _)| k == "x-governed"),
            "route rule only on /items"
        );
    }
    assert_eq!(upstream_requests(&stack), before + 10);

    wait_for("15 events", Duration::from_secs(15), || {
        (stack.collector.event_count() >= 15).then_some(())
    });
    let events = stack.collector.events();
    assert_eq!(events.len(), 15);
    for e in &events {
        let uri = e["request"]["uri"].as_str().unwrap();
        if uri.ends_with("who=blocked") {
            assert_eq!(e["blocked_by"], "rule-over-quota", "{e}");
            assert_eq!(e["response"]["status"], 429, "{e}");
            assert_eq!(e["user_id"], "u-blocked");
        } else {
            assert!(e.get("blocked_by").is_none(), "{e}");
        }
    }
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert!(s["moesif_events_sent"] >= 15, "{s:?}");
}

#[test]
fn governance_off_the_same_rules_change_nothing() {
    let stack = start("governance-off", false);
    let client = Client::new();
    // Long enough for the documents to arrive and be published.
    for _ in 0..20 {
        let r = client.get(
            &stack.envoy.url("/items?who=blocked"),
            &[("x-user-id", "u-blocked")],
        );
        assert_eq!(r.status, 200);
        assert!(!r
            .headers
            .iter()
            .any(|(k, _)| k == "x-governed" || k == "x-blocked-plan"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], 20, "{s:?}");
    assert!(stack
        .collector
        .events()
        .iter()
        .all(|e| e.get("blocked_by").is_none()));
}

#[test]
fn rules_endpoint_down_at_start_blocks_nothing() {
    // Down from the very start: the plugin's first fetch already fails.
    let stack = Stack::start_with_collector(
        "governance-rules-down",
        &Options::new(Mode::Singleton)
            .filter(&config(true))
            .shipper(&config(false)),
        &["--faults", r#"{"target": "rules", "status": 503}"#],
    );
    stack.collector.set_app_config(&cohorts());
    let client = Client::new();
    for _ in 0..30 {
        let r = client.get(&stack.envoy.url("/items"), &[("x-user-id", "u-blocked")]);
        assert_eq!(r.status, 200, "nothing blocked without rules");
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], 30, "{s:?}");
    let log = stack.envoy.log_text();
    assert_eq!(
        log.matches("cannot fetch the governance rules").count(),
        1,
        "logged once: {log}"
    );
    let fetches = stack.collector.stats()["rules_fetches"].as_u64().unwrap();
    assert!(
        (2..=6).contains(&fetches),
        "retried with backoff, no storm: {fetches}"
    );
}
