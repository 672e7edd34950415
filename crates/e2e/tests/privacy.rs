//! What a security team and an API product team need before they deploy: credentials and
//! configured secrets never leave the gateway in clear, identity comes from where APIs keep it
//! (headers, JWTs, Basic auth), skipped calls cost no event, bodies are captured per direction
//! as configured, and the event carries the configured context. All through the real Envoy.

use base64::Engine;
use e2e::accounting::{self, Expect};
use e2e::client::Client;
use e2e::envoy::{Mode, Options};
use e2e::process::wait_for;
use e2e::stack::Stack;
use serde_json::{json, Value};
use std::time::Duration;

const SHIPPER: &str = r#"{"moesif_application_id": "local-demo-app-id", "batch_max_wait": 200}"#;

fn filter(extra: Value) -> String {
    let mut config = json!({"moesif_application_id": "local-demo-app-id", "batch_max_wait": 200});
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config.to_string()
}

fn start(name: &str, mode: Mode, filter_config: &str) -> Stack {
    let opts = Options::new(mode).filter(filter_config).shipper(SHIPPER);
    Stack::start(name, &opts)
}

/// Waits for `n` events (and a batch interval for any extra one) and returns them.
fn events(stack: &Stack, n: u64) -> Vec<Value> {
    wait_for(&format!("{n} events"), Duration::from_secs(15), || {
        (stack.collector.event_count() >= n).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let events = stack.collector.events();
    assert_eq!(events.len() as u64, n, "{events:#?}");
    events
}

/// The path and query of an event's URI.
fn target(e: &Value) -> &str {
    let uri = e["request"]["uri"].as_str().unwrap();
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.find('/').map_or("", |i| &rest[i..])
}

/// The event whose path and query is `path_and_query`.
fn by_path<'a>(events: &'a [Value], path_and_query: &str) -> &'a Value {
    events
        .iter()
        .find(|e| target(e) == path_and_query)
        .unwrap_or_else(|| panic!("no event for {path_and_query}: {events:#?}"))
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An unsigned-looking JWT with `claims` as its payload (the plugin never checks signatures).
fn jwt(claims: Value) -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    )
}

const SECRETS: [&str; 9] = [
    "SECRET-BEARER",
    "SECRET-COOKIE",
    "SECRET-APIKEY",
    "SECRET-CUSTOM",
    "SECRET-PASSWORD",
    "SECRET-CARD-1",
    "SECRET-CARD-2",
    "SECRET-QUERY",
    "SECRET-SETCOOKIE",
];

/// Masks in the filter's config, applied whether the singleton or the worker ships the event.
fn masks(mode: Mode) {
    let config = filter(json!({
        "request_header_masks": ["X-Custom-Secret"],
        "request_body_masks": ["password", "number"],
        "response_body_masks": ["password", "number"],
        "request_query_masks": ["api_key"],
    }));
    let stack = start(&format!("masks-{mode:?}"), mode, &config);
    let client = Client::new();
    let body = json!({
        "user": {"name": "ann", "password": "SECRET-PASSWORD"},
        "cards": [{"number": "SECRET-CARD-1", "exp": "12/30"}, {"number": "SECRET-CARD-2"}],
        "note": "kept"
    })
    .to_string();
    let r = client.send(
        "POST",
        &stack
            .envoy
            .url("/echo?api_key=SECRET-QUERY&page=2&apiKey=visible"),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer SECRET-BEARER.{}", "x")),
            ("cookie", "session=SECRET-COOKIE"),
            ("x-api-key", "SECRET-APIKEY"),
            ("x-custom-secret", "SECRET-CUSTOM"),
            ("x-plain", "visible"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body.as_bytes(), "the client's answer is untouched");
    let e = &events(&stack, 1)[0];

    // Nothing secret anywhere the collector received, nor in Envoy's log.
    let stored = std::fs::read_to_string(stack.dir.join("events.jsonl")).unwrap();
    let log = stack.envoy.log_text();
    for secret in SECRETS.iter().filter(|s| **s != "SECRET-SETCOOKIE") {
        assert!(
            !stored.contains(secret),
            "{secret} reached the collector: {stored}"
        );
        assert!(!log.contains(secret), "{secret} in Envoy's log");
    }
    let req = &e["request"];
    for h in ["authorization", "cookie", "x-api-key", "x-custom-secret"] {
        assert_eq!(req["headers"][h], "*****", "{h}: {e}");
    }
    assert_eq!(req["headers"]["x-plain"], "visible");
    assert!(
        req["uri"]
            .as_str()
            .unwrap()
            .ends_with("/echo?api_key=*****&page=2&apiKey=visible"),
        "{e}"
    );
    for side in ["request", "response"] {
        let b = &e[side]["body"];
        assert_eq!(
            b["user"],
            json!({"name": "ann", "password": "*****"}),
            "{side}: {e}"
        );
        assert_eq!(
            b["cards"],
            json!([{"number": "*****", "exp": "12/30"}, {"number": "*****"}]),
            "{side}: {e}"
        );
        assert_eq!(b["note"], "kept");
    }
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], 1, "{s:?}");
}

#[test]
fn secrets_never_leave_the_gateway_with_the_singleton() {
    masks(Mode::Singleton);
}

#[test]
fn secrets_never_leave_the_gateway_when_workers_ship() {
    masks(Mode::Fallback);
}

/// `mask_credentials: false` is the one switch that ships the credentials in clear.
#[test]
fn the_credentials_switch_ships_them_in_clear() {
    let stack = start(
        "no-credential-masks",
        Mode::Singleton,
        &filter(json!({"mask_credentials": false})),
    );
    let r = Client::new().get(
        &stack.envoy.url("/items"),
        &[("authorization", "Bearer abc"), ("x-api-key", "k1")],
    );
    assert_eq!(r.status, 200);
    let e = &events(&stack, 1)[0];
    assert_eq!(e["request"]["headers"]["authorization"], "Bearer abc");
    assert_eq!(e["request"]["headers"]["x-api-key"], "k1");
    accounting::settle(&stack.envoy, Duration::from_secs(10));
}

#[test]
fn identity_comes_from_headers_jwt_claims_and_basic_auth() {
    let config = filter(json!({
        "user_id_header": "X-User-Id",
        "authorization_header_name": "authorization, x-token",
        "authorization_user_id_field": "user.id",
        "authorization_company_id_field": "org",
        "session_token_header": "x-session",
        "api_version_header": "x-api-version",
        "metadata": {"team": "payments", "tier": 2},
        "direction": "Outgoing",
    }));
    let stack = start("identity", Mode::Singleton, &config);
    let client = Client::new();
    let nested = jwt(json!({"user": {"id": "u-nested"}, "org": "acme", "sub": "not-this"}));
    let numeric = jwt(json!({"user": {"id": 42}, "org": 7}));
    let big = "a".repeat(20_000);
    let calls: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "/items?case=header-over-token",
            vec![
                ("x-user-id", "u-header".into()),
                ("authorization", format!("Bearer {nested}")),
            ],
        ),
        (
            "/items?case=bearer",
            vec![("authorization", format!("bEaReR   {nested}"))],
        ),
        (
            "/items?case=bare-second-header",
            vec![("x-token", numeric.clone())],
        ),
        (
            "/items?case=basic",
            vec![(
                "authorization",
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode("alice:pw")
                ),
            )],
        ),
        (
            "/items?case=bad-base64",
            vec![("authorization", "Bearer a.!!!.c".into())],
        ),
        (
            "/items?case=not-json",
            vec![("authorization", format!("Bearer a.{}.c", b64url(b"nope")))],
        ),
        (
            "/items?case=oversized",
            vec![("authorization", format!("Bearer a.{big}.c"))],
        ),
        (
            "/items?case=context",
            vec![
                ("x-session", "sess-1".into()),
                ("x-api-version", "2024-10-01".into()),
            ],
        ),
    ];
    for (path, headers) in &calls {
        let hv: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        client.get(&stack.envoy.url(path), &hv);
    }
    let events = events(&stack, calls.len() as u64);
    let who = |path: &str| {
        let e = by_path(&events, path);
        (e.get("user_id").cloned(), e.get("company_id").cloned())
    };
    let some = |s: &str| Some(json!(s));
    assert_eq!(
        who("/items?case=header-over-token"),
        (some("u-header"), some("acme"))
    );
    assert_eq!(who("/items?case=bearer"), (some("u-nested"), some("acme")));
    assert_eq!(
        who("/items?case=bare-second-header"),
        (some("42"), some("7"))
    );
    assert_eq!(who("/items?case=basic"), (some("alice"), None));
    for malformed in [
        "/items?case=bad-base64",
        "/items?case=not-json",
        "/items?case=oversized",
    ] {
        assert_eq!(who(malformed), (None, None), "{malformed}");
    }
    let context = by_path(&events, "/items?case=context");
    assert_eq!(context["session_token"], "sess-1");
    assert_eq!(context["request"]["api_version"], "2024-10-01");
    for e in &events {
        assert_eq!(e["direction"], "Outgoing", "{e}");
        assert_eq!(e["metadata"]["team"], "payments", "{e}");
        assert_eq!(e["metadata"]["tier"], 2, "{e}");
        assert!(e["metadata"]["envoy"].is_object(), "{e}");
    }
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], calls.len() as u64, "{s:?}");
}

/// With the defaults, the user is the JWT's `sub`, and the direction `Incoming`.
#[test]
fn default_identity_is_the_jwt_sub() {
    let stack = start("identity-default", Mode::Fallback, &filter(json!({})));
    let token = jwt(json!({"sub": "u-sub", "org": "ignored"}));
    let r = Client::new().get(
        &stack.envoy.url("/items"),
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(r.status, 200);
    let e = &events(&stack, 1)[0];
    assert_eq!(e["user_id"], "u-sub");
    assert!(e.get("company_id").is_none(), "{e}");
    assert_eq!(e["direction"], "Incoming");
    assert_eq!(e["request"]["headers"]["authorization"], "*****");
    accounting::settle(&stack.envoy, Duration::from_secs(10));
}

/// On an outbound listener (an Istio sidecar's calls to other services) the events say
/// `Outgoing`, read from Envoy's `listener_direction`.
#[test]
fn events_of_an_outbound_listener_are_outgoing() {
    let dir = e2e::scratch("outbound");
    let upstream = e2e::services::start_upstream(&dir);
    let collector = e2e::services::start_collector(&dir);
    let config = filter(json!({}));
    let wasm = e2e::wasm_path();
    let filter = e2e::bootstrap::wasm_filter("moesif", "", "outbound-vm", &config, &wasm);
    let mut bootstrap =
        e2e::bootstrap::bootstrap(filter, upstream.port, "moesif_api", collector.port, None);
    bootstrap["static_resources"]["listeners"][0]["traffic_direction"] = json!("OUTBOUND");
    let envoy = e2e::envoy::start_json(&dir, &bootstrap);
    assert_eq!(Client::new().get(&envoy.url("/items"), &[]).status, 200);
    wait_for("the event", Duration::from_secs(15), || {
        (collector.event_count() == 1).then_some(())
    });
    assert_eq!(collector.events()[0]["direction"], "Outgoing");
    accounting::settle(&envoy, Duration::from_secs(10));
}

#[test]
fn skipped_calls_make_no_event_and_are_counted() {
    let config = filter(json!({
        "skip": [{"path": "/health|/metrics/.*"}, {"method": "OPTIONS"}],
    }));
    let stack = start("skip", Mode::Singleton, &config);
    let client = Client::new();
    let mut kept = 0;
    let mut skipped = 0;
    for i in 0..3 {
        for path in ["/health", "/health?probe=1", "/metrics/prometheus"] {
            client.get(&stack.envoy.url(path), &[]);
            skipped += 1;
        }
        client.send("OPTIONS", &stack.envoy.url("/items"), &[], None);
        skipped += 1;
        for path in ["/items", "/healthz", "/v1/health"] {
            assert_eq!(
                client
                    .get(&stack.envoy.url(&format!("{path}?i={i}")), &[])
                    .status,
                if path == "/items" { 200 } else { 404 },
                "{path}"
            );
            kept += 1;
        }
    }
    let events = events(&stack, kept);
    for e in &events {
        let path = target(e).split('?').next().unwrap();
        assert_eq!(e["request"]["verb"], "GET", "{e}");
        assert!(path != "/health" && !path.starts_with("/metrics/"), "{e}");
    }
    let s = accounting::settle_until(
        &stack.envoy,
        Duration::from_secs(10),
        Expect::Captured(kept),
        accounting::idle,
    );
    assert_eq!(s["moesif_calls_skipped"], skipped, "{s:?}");
    assert_eq!(s["moesif_events_sent"], kept, "{s:?}");
}

#[test]
fn bodies_are_captured_per_direction_as_configured() {
    let config = filter(json!({
        "disable_capture_request_body": true,
        "response_max_body_size": 20,
    }));
    let stack = start("bodies", Mode::Singleton, &config);
    let client = Client::new();
    let small = br#"{"a":1}"#;
    let large = br#"{"a":"0123456789012345678901234567890123456789"}"#;
    for (i, body) in [&small[..], &large[..]].iter().enumerate() {
        let r = client.send(
            "POST",
            &stack.envoy.url(&format!("/echo?i={i}")),
            &[("content-type", "application/json")],
            Some(body),
        );
        assert_eq!(r.body, *body);
    }
    let events = events(&stack, 2);
    let small_event = by_path(&events, "/echo?i=0");
    let large_event = by_path(&events, "/echo?i=1");
    for e in [small_event, large_event] {
        assert!(
            e["request"].get("body").is_none(),
            "request bodies off: {e}"
        );
        assert!(e["metadata"].get("request_body_omitted").is_none(), "{e}");
    }
    assert_eq!(small_event["response"]["body"], json!({"a": 1}));
    assert!(
        large_event["response"].get("body").is_none(),
        "{large_event}"
    );
    assert_eq!(
        large_event["metadata"]["response_body_omitted"]["size"],
        large.len()
    );
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], 2, "{s:?}");
}
