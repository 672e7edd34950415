//! Shipped configs: every Envoy config validates, a bad plugin config is refused at load with
//! the key named, and the plugin never changes what the client receives.

use e2e::accounting;
use e2e::client::{Call, Client};
use e2e::envoy::{self, Mode, DEFAULT_FILTER_CONFIG};
use e2e::process::{wait_for, Proc};
use e2e::services::{start_collector, start_upstream};
use std::process::Command;
use std::time::Duration;

#[test]
fn every_shipped_envoy_config_validates_and_fails_open() {
    let dir = e2e::scratch("validate");
    let wasm = e2e::wasm_path().display().to_string();
    let mut configs = vec![];
    for mode in [Mode::Singleton, Mode::Fallback, Mode::Baseline] {
        configs.push((
            format!("local.yaml ({mode:?})"),
            envoy::render(mode, DEFAULT_FILTER_CONFIG, 1, 2),
        ));
    }
    let prod = std::fs::read_to_string(e2e::root().join("envoy/envoy.yaml")).unwrap();
    configs.push((
        "envoy.yaml".into(),
        prod.replace(
            "/etc/envoy/proxy-wasm-plugins/moesif_envoy_wasm_plugin.wasm",
            &wasm,
        ),
    ));
    for (name, text) in configs {
        let wasm_blocks = text
            .matches("envoy.extensions.filters.http.wasm.v3.Wasm")
            .count()
            + text.matches("envoy.extensions.wasm.v3.WasmService").count();
        assert_eq!(
            text.matches("failure_policy: FAIL_OPEN").count(),
            wasm_blocks,
            "{name}"
        );
        let path = dir.join(format!("{}.yaml", name.replace([' ', '(', ')', '.'], "_")));
        std::fs::write(&path, text).unwrap();
        let (ok, out) = envoy::validate(&path);
        assert!(ok, "{name} does not validate:\n{out}");
    }
}

/// Starts Envoy on a config whose filter lacks the app id and returns its log once it exits.
fn rejected_log(filter_config: &str) -> String {
    let dir = e2e::scratch("reject");
    let cfg = envoy::render(Mode::Fallback, filter_config, 1, 2);
    std::fs::write(dir.join("envoy.yaml"), cfg).unwrap();
    let log = dir.join("envoy.log");
    let mut cmd = Command::new(e2e::envoy_bin());
    cmd.arg("-c")
        .arg(dir.join("envoy.yaml"))
        .args(["--concurrency", "1", "--use-dynamic-base-id"]);
    let mut proc = Proc::spawn("envoy", cmd, &log);
    let status = wait_for(
        "envoy to refuse the config",
        Duration::from_secs(30),
        || proc.try_wait(),
    );
    assert!(!status.success());
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn missing_application_id_is_refused_naming_the_key() {
    let log = rejected_log(r#"{"user_id_header": "X-User-Id"}"#);
    assert!(
        log.contains("invalid plugin config: key `moesif_application_id`: is required"),
        "{log}"
    );
    assert!(
        log.contains("Unable to create Wasm plugin moesif_api"),
        "{log}"
    );
}

#[test]
fn a_skip_regex_that_does_not_compile_is_refused_naming_the_key() {
    let log = rejected_log(r#"{"moesif_application_id": "x", "skip": [{"path": "/health("}]}"#);
    assert!(
        log.contains("invalid plugin config: key `skip[0].path`: not a valid regex"),
        "{log}"
    );
}

#[test]
fn wrong_type_is_refused_naming_the_key() {
    let log = rejected_log(r#"{"moesif_application_id": "x", "batch_max_size": "ten"}"#);
    assert!(
        log.contains("key `batch_max_size`: invalid type: string"),
        "{log}"
    );
}

#[test]
fn responses_are_byte_identical_with_and_without_the_plugin() {
    let dir = e2e::scratch("identical");
    let upstream = start_upstream(&dir);
    let collector = start_collector(&dir);
    let with = envoy::start(
        &e2e::scratch("identical-with"),
        &envoy::render(
            Mode::Singleton,
            DEFAULT_FILTER_CONFIG,
            upstream.port,
            collector.port,
        ),
    );
    let without = envoy::start(
        &e2e::scratch("identical-without"),
        &envoy::render(
            Mode::Baseline,
            DEFAULT_FILTER_CONFIG,
            upstream.port,
            collector.port,
        ),
    );
    let client = Client::new();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let json = br#"{"a":[1,2,3],"b":"\u00e9"}"#;
    let calls: Vec<Call> = vec![
        ("GET", "/items?x=1", vec![("x-user-id", "u1")], None),
        (
            "POST",
            "/echo",
            vec![("content-type", "application/json")],
            Some(json),
        ),
        (
            "POST",
            "/echo",
            vec![("content-type", "application/octet-stream")],
            Some(&big),
        ),
        ("GET", "/binary", vec![], None),
        ("GET", "/bytes/150000", vec![], None),
        ("GET", "/nope", vec![], None),
        ("GET", "/direct", vec![], None),
        ("DELETE", "/items", vec![], None),
    ];
    // Headers that legitimately differ between two calls.
    let volatile = ["date", "x-envoy-upstream-service-time"];
    for (method, path, headers, body) in &calls {
        let a = client.send(method, &with.url(path), headers, *body);
        let b = client.send(method, &without.url(path), headers, *body);
        let ctx = format!("{method} {path}");
        assert_eq!(a.status, b.status, "{ctx}");
        assert!(
            a.body == b.body,
            "{ctx}: bodies differ ({} vs {} bytes)",
            a.body.len(),
            b.body.len()
        );
        let strip = |h: &Vec<(String, String)>| -> Vec<(String, String)> {
            h.iter()
                .filter(|(n, _)| !volatile.contains(&n.as_str()))
                .cloned()
                .collect()
        };
        assert_eq!(strip(&a.headers), strip(&b.headers), "{ctx}");
    }
    wait_for(
        "events for the calls made with the plugin",
        Duration::from_secs(10),
        || (collector.event_count() == calls.len() as u64).then_some(()),
    );
    // Bodies over max_body_size (100000) are not shipped; the event gives their size.
    let events = collector.events();
    let find = |verb: &str, path: &str| {
        events
            .iter()
            .find(|e| {
                e["request"]["verb"] == verb
                    && e["request"]["uri"].as_str().unwrap().ends_with(path)
            })
            .unwrap_or_else(|| panic!("no event for {verb} {path}"))
    };
    let big_post = events
        .iter()
        .find(|e| e["request"]["headers"]["content-type"] == "application/octet-stream")
        .unwrap();
    assert!(big_post["request"].get("body").is_none(), "{big_post}");
    assert!(big_post["response"].get("body").is_none(), "{big_post}");
    assert_eq!(
        big_post["metadata"]["request_body_omitted"]["size"],
        200_000
    );
    assert_eq!(
        big_post["metadata"]["response_body_omitted"]["size"],
        200_000
    );
    let bytes = find("GET", "/bytes/150000");
    assert_eq!(bytes["metadata"]["response_body_omitted"]["size"], 150_000);
    assert!(bytes["metadata"].get("request_body_omitted").is_none());
    let json_post = events
        .iter()
        .find(|e| e["request"]["headers"]["content-type"] == "application/json")
        .unwrap();
    assert_eq!(
        json_post["request"]["body"],
        serde_json::json!({"a": [1, 2, 3], "b": "\u{e9}"})
    );
    assert_eq!(json_post["response"]["body"], json_post["request"]["body"]);
    let binary = find("GET", "/binary");
    assert_eq!(binary["response"]["transfer_encoding"], "base64");
    assert_eq!(
        binary["response"]["body"].as_str().unwrap().len(),
        344,
        "256 bytes in base64"
    );
    let s = accounting::settle(&with, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], calls.len() as u64, "{s:?}");
}

#[test]
fn v040_readme_config_works_unchanged() {
    // The configuration block of the v0.4.0 README, verbatim but for the application id.
    let v040 = r#"{
            "moesif_application_id":"v040-app-id",
            "user_id_header":"X-User-Example-Header",
            "company_id_header":"X-Company-Example-Header",
            "upstream": "moesif_api"
          }"#;
    let dir = e2e::scratch("v040");
    let upstream = start_upstream(&dir);
    let collector = start_collector(&dir);
    let envoy = envoy::start(
        &dir,
        &envoy::render(Mode::Fallback, v040, upstream.port, collector.port),
    );
    let client = Client::new();
    for i in 0..20 {
        let user = format!("u{i}");
        let r = client.get(
            &envoy.url("/items"),
            &[
                ("X-User-Example-Header", &user),
                ("X-Company-Example-Header", "c1"),
            ],
        );
        assert_eq!(r.status, 200);
    }
    // Default batch_max_wait is 2 s.
    wait_for("20 events", Duration::from_secs(15), || {
        (collector.event_count() == 20).then_some(())
    });
    let events = collector.events();
    let mut users: Vec<String> = events
        .iter()
        .map(|e| e["user_id"].as_str().unwrap().to_string())
        .collect();
    users.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    want.sort();
    assert_eq!(users, want);
    assert!(events.iter().all(|e| e["company_id"] == "c1"));
    assert_eq!(
        collector.stats()["last_headers"]["x-moesif-application-id"],
        "v040-app-id"
    );
    let s = accounting::settle(&envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], 20, "{s:?}");
}
