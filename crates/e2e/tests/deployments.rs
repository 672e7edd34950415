//! Deployments as users run them, reproduced at the Envoy level with the real Envoy: the
//! production config over TLS, Istio's shape (ECDS, vm_id "", root_id "", StringValue config,
//! `outbound|443||api.moesif.net`), Gloo's shape, hot reload through ECDS under load, and the
//! example manifests, which the Istio and Gloo configs here are built from.

use e2e::accounting;
use e2e::bootstrap::{ecds_filter, singleton, wasm_filter, write_ecds};
use e2e::client::Client;
use e2e::envoy::{self, Envoy};
use e2e::process::wait_for;
use e2e::services::{start_collector, start_upstream, Collector, Upstream};
use moesif_core::config::Config;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn example(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(e2e::root().join("examples").join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let v: serde_yaml::Value = serde::Deserialize::deserialize(doc).unwrap();
            serde_json::to_value(v).unwrap()
        })
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// The plugin configuration a manifest carries, checked with the plugin's own parser.
fn checked_plugin_config(json_text: &str) -> Value {
    Config::parse(json_text.as_bytes()).unwrap_or_else(|e| panic!("{e}: {json_text}"));
    serde_json::from_str(json_text).unwrap()
}

fn istio_plugin_config() -> Value {
    let docs = example("istio/wasmplugin.yaml");
    let spec = &kind(&docs, "WasmPlugin")["spec"];
    checked_plugin_config(&spec["pluginConfig"].to_string())
}

/// `bootstrap_extensions` of the Istio bootstrap override, pointed at the built .wasm.
fn istio_singleton() -> Value {
    istio_singleton_running(&e2e::wasm_path())
}

/// The same, running `wasm`.
fn istio_singleton_running(wasm: &Path) -> Value {
    let docs = example("istio/bootstrap-override.yaml");
    let text = kind(&docs, "ConfigMap")["data"]["custom_bootstrap.json"]
        .as_str()
        .unwrap()
        .to_string();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["bootstrap_extensions"][0]["typed_config"]["config"]["vm_config"]["code"]["local"]
        ["filename"] = json!(wasm);
    v["bootstrap_extensions"].clone()
}

#[test]
fn example_manifests_are_well_formed() {
    let wasm = example("istio/wasmplugin.yaml");
    let plugin = kind(&wasm, "WasmPlugin");
    assert_eq!(plugin["apiVersion"], "extensions.istio.io/v1alpha1");
    assert_eq!(plugin["spec"]["failStrategy"], "FAIL_OPEN");
    assert_eq!(
        plugin["spec"]["selector"]["matchLabels"]["istio"],
        "ingressgateway"
    );
    assert!(plugin["spec"]["url"].as_str().unwrap().ends_with(":0.5.0"));
    assert_eq!(
        istio_plugin_config()["upstream"],
        "outbound|443||api.moesif.net"
    );

    let api = example("istio/moesif-api.yaml");
    assert_eq!(
        kind(&api, "ServiceEntry")["spec"]["hosts"][0],
        "api.moesif.net"
    );
    assert_eq!(
        kind(&api, "ServiceEntry")["spec"]["ports"][0]["number"],
        443
    );
    let tls =
        &kind(&api, "DestinationRule")["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"];
    assert_eq!(
        (tls["mode"].as_str(), tls["sni"].as_str()),
        (Some("SIMPLE"), Some("api.moesif.net"))
    );

    let ext = &istio_singleton()[0]["typed_config"];
    assert_eq!(ext["singleton"], true);
    assert_eq!(ext["config"]["root_id"], "moesif_shipper");
    assert_eq!(ext["config"]["failure_policy"], "FAIL_OPEN");
    assert_eq!(
        ext["config"]["vm_config"]["vm_id"], "",
        "must equal Istio's filter vm_id"
    );
    let shipper = checked_plugin_config(ext["config"]["configuration"]["value"].as_str().unwrap());
    assert_eq!(shipper["upstream"], istio_plugin_config()["upstream"]);

    let gloo = example("gloo/gateway.yaml");
    let filter = &kind(&gloo, "Gateway")["spec"]["httpGateway"]["options"]["wasm"]["filters"][0];
    assert_eq!(filter["rootId"], "moesif_api_root_id");
    let cfg = checked_plugin_config(filter["config"]["value"].as_str().unwrap());
    let upstream = kind(&gloo, "Upstream");
    let cluster = format!(
        "{}_{}",
        upstream["metadata"]["name"].as_str().unwrap(),
        upstream["metadata"]["namespace"].as_str().unwrap()
    );
    assert_eq!(cfg["upstream"], cluster.as_str());

    let compose = &example("envoy/docker-compose.yaml")[0];
    let envoy_volumes = compose["services"]["envoy"]["volumes"].as_array().unwrap();
    assert!(envoy_volumes
        .iter()
        .any(|v| v.as_str().unwrap().starts_with("../../envoy/envoy.yaml:")));
    assert!(compose["services"]["rust-builder"]["command"]
        .as_str()
        .unwrap()
        .contains("wasm32-wasip1"));
    assert_eq!(
        compose["services"]["backend"]["networks"]["default"]["aliases"][0],
        "backend.internal"
    );
}

struct Base {
    dir: PathBuf,
    _upstream: Upstream,
    collector: Collector,
    upstream_port: u16,
}

fn base(name: &str) -> Base {
    let dir = e2e::scratch(name);
    let upstream = start_upstream(&dir);
    let collector = start_collector(&dir);
    Base {
        upstream_port: upstream.port,
        dir,
        _upstream: upstream,
        collector,
    }
}

/// The shared bootstrap builder, on this test's upstream and collector.
fn bootstrap(b: &Base, filter: Value, collector_cluster: &str, extensions: Option<Value>) -> Value {
    e2e::bootstrap::bootstrap(
        filter,
        b.upstream_port,
        collector_cluster,
        b.collector.port,
        extensions,
    )
}

/// The ECDS resource Istio sends for the WasmPlugin `istio-system/moesif`.
fn write_istio_ecds(path: &Path, version: u32, plugin_config: &Value) {
    write_ecds(path, version, &plugin_config.to_string(), &e2e::wasm_path());
}

fn start_istio_shape(
    b: &Base,
    sub: &str,
    singleton: bool,
    plugin_config: &Value,
) -> (Envoy, PathBuf) {
    let wasm = e2e::wasm_path();
    start_istio_shape_running(b, sub, singleton.then_some(&wasm), &wasm, plugin_config)
}

/// Istio's shape with the singleton running `singleton` (if any) and the filter `filter`.
fn start_istio_shape_running(
    b: &Base,
    sub: &str,
    singleton: Option<&PathBuf>,
    filter: &Path,
    plugin_config: &Value,
) -> (Envoy, PathBuf) {
    let dir = b.dir.join(sub);
    std::fs::create_dir_all(&dir).unwrap();
    let ecds = dir.join("ecds.json");
    write_ecds(&ecds, 1, &plugin_config.to_string(), filter);
    let upstream = plugin_config["upstream"].as_str().unwrap();
    let config = bootstrap(
        b,
        ecds_filter(&ecds),
        upstream,
        singleton.map(|w| istio_singleton_running(w)),
    );
    (envoy::start_json(&dir, &config), ecds)
}

/// Sends `n` calls and waits until the collector holds exactly `expected_total` events.
fn send_and_expect(b: &Base, envoy: &Envoy, n: usize, expected_total: u64) {
    let client = Client::new();
    for i in 0..n {
        let r = client.get(&envoy.url(&format!("/items?i={i}")), &[("x-user-id", "u1")]);
        assert_eq!(r.status, 200);
    }
    wait_for("all events", Duration::from_secs(15), || {
        (b.collector.event_count() >= expected_total).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(b.collector.event_count(), expected_total);
    let stats = b.collector.stats();
    assert_eq!(
        stats["unique_transaction_ids"].as_u64(),
        Some(expected_total)
    );
}

#[test]
fn istio_shape_delivers_every_event_with_and_without_the_singleton() {
    let b = base("istio");
    let plugin_config = istio_plugin_config();
    let (with, _) = start_istio_shape(&b, "with", true, &plugin_config);
    send_and_expect(&b, &with, 200, 200);
    let s = accounting::settle(&with, Duration::from_secs(5));
    assert_eq!(s["moesif_events_sent"], 200, "{s:?}");
    assert_eq!(
        s["moesif_events_enqueued"], 200,
        "through the singleton: {s:?}"
    );
    drop(with);
    let (without, _) = start_istio_shape(&b, "without", false, &plugin_config);
    send_and_expect(&b, &without, 200, 400);
    let s = accounting::settle(&without, Duration::from_secs(5));
    assert_eq!(s["moesif_events_sent"], 200, "{s:?}");
    assert_eq!(s["moesif_events_enqueued"], 0, "{s:?}");
    let events = b.collector.events();
    assert!(
        events.iter().all(|e| e["user_id"] == "u1"),
        "pluginConfig applied"
    );
}

fn gloo_filter(vm_id: &str) -> (Value, Value) {
    let docs = example("gloo/gateway.yaml");
    let f = &kind(&docs, "Gateway")["spec"]["httpGateway"]["options"]["wasm"]["filters"][0];
    let cfg = checked_plugin_config(f["config"]["value"].as_str().unwrap());
    let filter = wasm_filter(
        f["name"].as_str().unwrap(),
        f["rootId"].as_str().unwrap(),
        vm_id,
        &cfg.to_string(),
        &e2e::wasm_path(),
    );
    (filter, cfg)
}

#[test]
fn gloo_shape_delivers_every_event_with_and_without_the_singleton() {
    let b = base("gloo");
    let vm_id = "gloo-moesif";
    let (filter, cfg) = gloo_filter(vm_id);
    let upstream = cfg["upstream"].as_str().unwrap();
    let shipper = singleton(vm_id, &cfg.to_string(), &e2e::wasm_path());
    let with = envoy::start_json(
        &b.dir.join("with"),
        &bootstrap(&b, filter.clone(), upstream, Some(shipper)),
    );
    send_and_expect(&b, &with, 150, 150);
    let s = accounting::settle(&with, Duration::from_secs(5));
    assert_eq!(s["moesif_events_sent"], 150, "{s:?}");
    assert_eq!(s["moesif_events_enqueued"], 150, "{s:?}");
    drop(with);
    let without = envoy::start_json(
        &b.dir.join("without"),
        &bootstrap(&b, filter, upstream, None),
    );
    send_and_expect(&b, &without, 150, 300);
    let s = accounting::settle(&without, Duration::from_secs(5));
    assert_eq!(s["moesif_events_sent"], 150, "{s:?}");
}

#[test]
fn ecds_reload_under_load_loses_and_duplicates_nothing() {
    ecds_reload(true);
}

/// Without the singleton the retiring filter root holds batches of its own; it must deliver
/// them before it goes.
#[test]
fn ecds_reload_under_load_in_fallback_mode_loses_and_duplicates_nothing() {
    ecds_reload(false);
}

fn ecds_reload(singleton: bool) {
    let b = base(if singleton { "ecds" } else { "ecds-fallback" });
    let mut cfg = istio_plugin_config();
    let (envoy, ecds) = start_istio_shape(&b, "envoy", singleton, &cfg);
    let wrk = e2e::load::start_script(
        &b.dir,
        &envoy.url("/items?src=wrk"),
        8,
        4,
        "wrk.headers[\"X-Tenant\"] = \"t1\"\nfunction delay() return 5 end\n",
    );
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    cfg["company_id_header"] = json!("X-Tenant");
    // Five reloads, each retiring a root that holds records and counts.
    for version in 2..7 {
        if version > 2 {
            cfg["batch_max_wait"] = json!(900 + version);
        }
        write_istio_ecds(&ecds, version, &cfg);
        eprintln!("reloaded (v{version}) at {:?}", t0.elapsed());
        std::thread::sleep(Duration::from_millis(900));
    }
    wrk.finish();
    let completed = envoy.completed();
    wait_for("every event", Duration::from_secs(20), || {
        (b.collector.event_count() >= completed).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    // Re-read: a request sent just before wrk stopped may be counted only after it exited.
    let completed = envoy.completed();
    let stats = b.collector.stats();
    assert_eq!(stats["events"].as_u64(), Some(completed), "{stats}");
    assert_eq!(stats["unique_transaction_ids"].as_u64(), Some(completed));
    assert_eq!(stats["duplicate_events"].as_u64(), Some(0));
    let events = b.collector.events();
    let tenant = events.iter().filter(|e| e["company_id"] == "t1").count();
    assert!(
        tenant > 100,
        "new setting visible after the reload: {tenant}"
    );
    assert!(
        events.len() - tenant > 100,
        "old setting before it: {}",
        events.len() - tenant
    );
    assert_eq!(
        envoy.server_stat(
            "extension_config_discovery.http_filter.istio-system.moesif.config_reload"
        ),
        6,
        "the first load and five reloads"
    );
    // The retired roots' last counts reached Envoy's stats too: captured equals sent.
    let s = accounting::settle(&envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], completed, "{s:?}");
    assert_eq!(s["moesif_events_captured"], completed, "{s:?}");
}

/// Rolls the filter from the `from` build to the `to` build over ECDS in the middle of a wrk
/// run, next to a singleton running `singleton`; checks that every call arrives exactly once
/// and that the accounting is exact, and returns the plugin's stats.
fn rollout(name: &str, singleton: &Path, from: &Path, to: &Path) -> (accounting::Stats, String) {
    let b = base(name);
    let cfg = istio_plugin_config();
    let singleton = singleton.to_path_buf();
    let (envoy, ecds) = start_istio_shape_running(&b, "envoy", Some(&singleton), from, &cfg);
    let wrk = e2e::load::start_script(
        &b.dir,
        &envoy.url("/items?src=wrk"),
        8,
        4,
        "function delay() return 5 end\n",
    );
    std::thread::sleep(Duration::from_secs(3));
    write_ecds(&ecds, 2, &cfg.to_string(), to);
    wrk.finish();
    let s = accounting::settle(&envoy, Duration::from_secs(30));
    let completed = envoy.completed();
    let stats = b.collector.stats();
    assert_eq!(s["moesif_events_sent"], completed, "{s:?}");
    assert_eq!(stats["events"].as_u64(), Some(completed), "{stats}");
    assert_eq!(stats["unique_transaction_ids"].as_u64(), Some(completed));
    assert_eq!(stats["duplicate_events"].as_u64(), Some(0));
    assert_eq!(accounting::ended(&s), 0, "{s:?}");
    assert!(
        envoy.server_stat(
            "extension_config_discovery.http_filter.istio-system.moesif.config_reload"
        ) >= 1
    );
    (s, envoy.log_text())
}

/// A filter writing a newer queue format, rolled out next to a singleton that does not read
/// it: the new filter sees the formats the singleton publishes and ships by itself.
#[test]
fn rollout_of_a_newer_queue_format_next_to_an_older_singleton_loses_and_duplicates_nothing() {
    let (current, next) = (e2e::wasm_path(), e2e::test_build_wasm_path());
    let (s, log) = rollout("rollout-newer-filter", &current, &current, &next);
    assert!(s["moesif_events_format_unsupported"] > 100, "{s:?}");
    assert!(
        s["moesif_events_enqueued"] > 100,
        "before the rollout: {s:?}"
    );
    assert_eq!(
        s["moesif_events_captured"],
        s["moesif_events_enqueued"] + s["moesif_events_format_unsupported"],
        "{s:?}"
    );
    // The test build writes the format after this build's.
    let next = moesif_core::forward::FORMAT + 1;
    assert!(
        log.contains(&format!("does not read queue format {next}")),
        "logged: {log}"
    );
}

/// The reverse: a singleton that reads both formats, with filters of either build.
#[test]
fn rollout_next_to_a_newer_singleton_reading_both_formats_stays_on_the_queue() {
    let (current, next) = (e2e::wasm_path(), e2e::test_build_wasm_path());
    let (s, _) = rollout("rollout-newer-singleton", &next, &current, &next);
    assert_eq!(s["moesif_events_format_unsupported"], 0, "{s:?}");
    assert_eq!(
        s["moesif_events_enqueued"], s["moesif_events_captured"],
        "{s:?}"
    );
    assert_eq!(
        s["moesif_events_enqueued"], s["moesif_events_dequeued"],
        "{s:?}"
    );
}

/// `envoy/envoy.yaml` as shipped, with only paths, addresses and ports pointed at this test.
fn production_config(b: &Base, https_port: u16, ca: &Path) -> String {
    let text = std::fs::read_to_string(e2e::root().join("envoy/envoy.yaml")).unwrap();
    let swaps = [
        (
            "/etc/envoy/proxy-wasm-plugins/moesif_envoy_wasm_plugin.wasm",
            e2e::wasm_path().display().to_string(),
        ),
        (
            "address: 0.0.0.0, port_value: 10000",
            "address: 127.0.0.1, port_value: 0".into(),
        ),
        ("port_value: 9901", "port_value: 0".into()),
        (
            "address: backend.internal, port_value: 8080",
            format!("address: 127.0.0.1, port_value: {}", b.upstream_port),
        ),
        (
            "address: api.moesif.net, port_value: 443",
            format!("address: 127.0.0.1, port_value: {https_port}"),
        ),
        (
            "/etc/ssl/certs/ca-certificates.crt",
            ca.display().to_string(),
        ),
    ];
    swaps.iter().fold(text, |t, (from, to)| {
        assert!(
            t.contains(from),
            "envoy/envoy.yaml no longer contains {from:?}"
        );
        t.replace(from, to)
    })
}

#[test]
fn production_config_ships_over_tls_and_a_wrong_ca_is_counted_and_retried() {
    let b = base("tls");
    let certs = e2e::tls::generate(&b.dir);
    let front = e2e::tls::https_front(&b.dir.join("front"), &certs, b.collector.port);
    let good = envoy::start(
        &b.dir.join("good"),
        &production_config(&b, front.port, &certs.ca),
    );
    let client = Client::new();
    for _ in 0..50 {
        assert_eq!(
            client
                .get(&good.url("/items"), &[("x-user-id", "alice")])
                .status,
            200
        );
    }
    // Default batch_max_wait: 2 s.
    wait_for("50 events over TLS", Duration::from_secs(15), || {
        (b.collector.event_count() == 50).then_some(())
    });
    let handshakes: u64 = front
        .stats_matching("ssl.handshake")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert!(handshakes >= 1, "the plugin's batches came over TLS");
    assert_eq!(
        b.collector.stats()["last_headers"]["x-moesif-application-id"],
        "<YOUR APPLICATION ID HERE>"
    );
    let s = accounting::settle(&good, Duration::from_secs(10));
    assert_eq!(s["moesif_events_sent"], 50, "{s:?}");
    drop(good);

    let wrong = envoy::start(
        &b.dir.join("wrong"),
        &production_config(&b, front.port, &certs.other_ca),
    );
    for _ in 0..10 {
        assert_eq!(
            client.get(&wrong.url("/items"), &[]).status,
            200,
            "traffic unaffected"
        );
    }
    let s = wait_for(
        "failures counted and retried",
        Duration::from_secs(20),
        || {
            let s = wrong.plugin_stats();
            (s["moesif_batches_failed"] >= 2 && s["moesif_batches_retried"] >= 1).then_some(s)
        },
    );
    assert_eq!(s["moesif_events_sent"], 0, "{s:?}");
    assert_eq!(
        s["moesif_events_buffered"] + s["moesif_events_in_flight"],
        10,
        "kept for retry: {s:?}"
    );
    assert_eq!(
        b.collector.event_count(),
        50,
        "nothing reached the collector"
    );
    assert!(
        wrong.log_text().contains("failed: collector answered 503"),
        "{}",
        wrong.log_tail()
    );
    // Nothing delivered, nothing lost: all ten held for retry, the invariant exact.
    let s = accounting::settle_until(
        &wrong,
        Duration::from_secs(10),
        accounting::Expect::Completed,
        |_| true,
    );
    assert_eq!(accounting::ended(&s), 0, "{s:?}");
}
