//! `cargo xtask bench`: the same load through Envoy without the plugin, with it (singleton and
//! fallback), and optionally with any other plugin, alternating configs within each round, on
//! this machine, in one run. Medians of the rounds go to target/bench/report.{md,json}.

use e2e::envoy::{self, Mode, Options};
use e2e::services::{start_collector_with, start_upstream, Collector};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Args {
    duration_s: u32,
    /// Load before each measured run, not measured, so that a run measures the steady state:
    /// connections and pools are up, the plugin's buffers have grown, its first config fetch
    /// is done. (Not JIT warm-up: Envoy's V8 compiles the whole module with TurboFan at load.)
    warmup_s: u32,
    rounds: usize,
    connections: u32,
    /// Envoy's worker threads (`--concurrency`).
    workers: u32,
    micro: bool,
    compare: Option<(PathBuf, String, String)>,
    /// Only workloads named exactly so, and configs whose name contains one of these (all
    /// when empty).
    only: Vec<String>,
}

impl Args {
    pub fn parse(args: &[String]) -> Args {
        let mut a = Args {
            duration_s: 10,
            warmup_s: 2,
            rounds: 3,
            connections: 32,
            workers: 2,
            micro: true,
            compare: None,
            only: vec![],
        };
        let (mut wasm, mut config, mut root_id) = (None, None, None);
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--duration" => {
                    a.duration_s = value().parse().unwrap_or_else(|_| usage("--duration N"))
                }
                "--warmup" => a.warmup_s = value().parse().unwrap_or_else(|_| usage("--warmup S")),
                "--rounds" => a.rounds = value().parse().unwrap_or_else(|_| usage("--rounds N")),
                "--connections" => {
                    a.connections = value().parse().unwrap_or_else(|_| usage("--connections N"))
                }
                "--workers" => a.workers = value().parse().unwrap_or_else(|_| usage("--workers N")),
                "--skip-micro" => a.micro = false,
                "--only" => a.only.push(value()),
                "--compare-wasm" => wasm = Some(PathBuf::from(value())),
                "--compare-config" => config = Some(value()),
                "--compare-root-id" => root_id = Some(value()),
                other => usage(&format!("unknown flag {other}")),
            }
        }
        if let Some(wasm) = wasm {
            let config = config.unwrap_or_else(|| usage("--compare-wasm needs --compare-config"));
            a.compare = Some((wasm, config, root_id.unwrap_or_default()));
        }
        a
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "{msg}\nusage: cargo xtask bench [--duration S] [--warmup S] [--rounds N] [--connections C] [--workers W] [--skip-micro] [--only NAME]...\n       [--compare-wasm PATH --compare-config JSON [--compare-root-id ID]]"
    );
    std::process::exit(2)
}

/// One load shape.
struct Workload {
    name: &'static str,
    path: &'static str,
    /// Lua lines that set up the request (method, body, headers).
    setup: String,
    /// Per-connection pause between requests: fixes the offered load (None: as fast as possible).
    pace_ms: Option<u32>,
}

fn workloads() -> Vec<Workload> {
    let item = r#"{\"id\":12345,\"name\":\"widget\",\"price\":9.5}"#;
    let body_1k = format!(r#"{{\"items\":[{}]}}"#, vec![item; 24].join(","));
    vec![
        Workload { name: "GET small", path: "/items", setup: String::new(), pace_ms: None },
        Workload { name: "GET 1 KB JSON", path: "/items/1024", setup: String::new(), pace_ms: None },
        Workload {
            name: "POST 1 KB JSON",
            path: "/echo",
            setup: format!(
                "wrk.method = \"POST\"\nwrk.body = \"{body_1k}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
            ),
            pace_ms: None,
        },
        Workload { name: "GET 64 KB", path: "/bytes/65536", setup: String::new(), pace_ms: None },
        Workload { name: "GET direct_response", path: "/direct", setup: String::new(), pace_ms: None },
        Workload { name: "GET small, fixed load", path: "/items", setup: String::new(), pace_ms: Some(10) },
        // What (f)'s identity and masks cost: a signed-in client's call.
        Workload {
            name: "POST 1 KB JSON + JWT",
            path: "/echo",
            setup: format!(
                "wrk.method = \"POST\"\nwrk.body = \"{body_1k}\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer {BENCH_JWT}\"\n"
            ),
            pace_ms: None,
        },
        // (f) skips this path: what a skipped call costs, next to the empty filter's floor.
        Workload { name: "GET direct_response, skip rule", path: "/direct/health", setup: String::new(), pace_ms: None },
    ]
}

/// A JWT whose payload is `{"sub":"user-1234","org":"acme-corp","iat":1700000000}`.
const BENCH_JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEyMzQiLCJvcmciOiJhY21lLWNvcnAiLCJpYXQiOjE3MDAwMDAwMDB9.c2lnbmF0dXJl";

/// (f): every privacy and identity feature on, as a security-minded user would run it.
const FEATURES_CONFIG: &str = r#"{"moesif_application_id": "local-demo-app-id",
    "request_header_masks": ["x-request-id"], "response_header_masks": ["x-upstream"],
    "request_body_masks": ["price", "name"], "response_body_masks": ["price", "name"],
    "request_query_masks": ["page"], "authorization_company_id_field": "org",
    "skip": [{"path": "/direct/health|/metrics/.*"}]}"#;

#[derive(Clone)]
struct Config {
    name: String,
    opts: Options,
    /// Whether Envoy's own plugin stats are ours (wire bytes come from the collector anyway).
    ours: bool,
    /// Whether it ships events (the delivery and wire columns apply).
    captures: bool,
    /// The app config and governance rules the collector serves during its runs (Moesif's
    /// defaults when `None`: sample everything, no rules).
    remote: Option<(Value, Value)>,
    /// The workloads it runs on (all when `None`), to keep a full run under an hour.
    only_on: Option<&'static [&'static str]>,
}

/// The workloads with a cost target, where the stage breakdown runs.
const TARGETS: &[&str] = &[
    "GET small",
    "GET 1 KB JSON",
    "POST 1 KB JSON",
    "GET direct_response",
];

fn configs(args: &Args) -> Vec<Config> {
    let mut v = vec![
        Config {
            name: "(a) no plugin".into(),
            opts: Options::new(Mode::Baseline),
            ours: false,
            captures: false,
            remote: None,
            only_on: None,
        },
        Config {
            name: "(b) this plugin, singleton".into(),
            opts: Options::new(Mode::Singleton),
            ours: true,
            captures: true,
            remote: None,
            only_on: None,
        },
        Config {
            name: "(c) this plugin, fallback".into(),
            opts: Options::new(Mode::Fallback),
            ours: true,
            captures: true,
            remote: None,
            only_on: None,
        },
    ];
    if let Some((wasm, config, root_id)) = &args.compare {
        let name = wasm
            .file_name()
            .map_or("other".into(), |n| n.to_string_lossy().into_owned());
        v.push(Config {
            name: format!("(d) {name}"),
            opts: Options::new(Mode::Fallback)
                .filter(config)
                .filter_plugin(wasm.clone(), root_id),
            ours: false,
            captures: true,
            remote: None,
            only_on: None,
        });
    }
    v.push(Config {
        name: "(f) this plugin, singleton, masks + JWT identity + skip rules".into(),
        opts: Options::new(Mode::Singleton).filter(FEATURES_CONFIG),
        ours: true,
        captures: true,
        remote: None,
        only_on: Some(&[
            "GET small",
            "POST 1 KB JSON + JWT",
            "GET direct_response, skip rule",
        ]),
    });
    v.push(Config {
        name: "(g) this plugin, singleton, Moesif sample_rate 10".into(),
        opts: Options::new(Mode::Singleton),
        ours: true,
        captures: true,
        remote: Some((json!({"sample_rate": 10}), json!([]))),
        only_on: Some(&["GET small"]),
    });
    v.push(Config {
        name: "(h) this plugin, singleton, governance on, 100 rules".into(),
        opts: Options::new(Mode::Singleton).filter(GOVERNANCE_CONFIG),
        ours: true,
        captures: true,
        remote: Some(governance_documents()),
        only_on: Some(&["GET small"]),
    });
    for (stage, what) in STAGES.iter().zip(STAGE_NAMES) {
        let wasm = e2e::stage_wasm_path(stage);
        // Only the codec build ships; the stage builds stop before that.
        let ships = !stage.contains("stage-");
        v.push(Config {
            name: what.into(),
            opts: Options::new(Mode::Singleton)
                .filter_plugin(wasm.clone(), "moesif_api_root_id")
                .shipper_wasm(wasm),
            ours: ships,
            captures: ships,
            remote: None,
            only_on: Some(TARGETS),
        });
    }
    let ship = e2e::empty_filter_ship_wasm_path();
    v.push(Config {
        name: SHIP_FLOOR.into(),
        opts: Options::new(Mode::Singleton)
            .filter("{}")
            .filter_plugin(ship.clone(), "")
            .shipper_wasm(ship),
        ours: false,
        captures: false,
        remote: None,
        only_on: Some(TARGETS),
    });
    v.push(Config {
        name: "(e2) empty filter + a capture's host calls (floor of any capturing plugin)".into(),
        opts: Options::new(Mode::Fallback)
            .filter("{}")
            .filter_plugin(e2e::empty_filter_calls_wasm_path(), ""),
        ours: false,
        captures: false,
        remote: None,
        only_on: Some(TARGETS),
    });
    v.push(Config {
        name: FLOOR.into(),
        opts: Options::new(Mode::Fallback)
            .filter("{}")
            .filter_plugin(e2e::empty_filter_wasm_path(), ""),
        ours: false,
        captures: false,
        remote: None,
        only_on: None,
    });
    v
}

/// The glue crate's benchmark-only features: builds that stop after one stage, and one with
/// the crates' reader and event writer in place of the hand-written ones.
pub const STAGES: [&str; 3] = ["stage-capture", "stage-enqueue", "codec-crates"];
const STAGE_NAMES: [&str; 3] = [
    "(s1) stage: capture only (host calls, record built, then dropped)",
    "(s2) stage: + record encode and enqueue (the singleton discards)",
    "(b-crates) as (b), records read by rmp-serde, events by serde_json",
];

/// The config every other one's cost is measured from.
const FLOOR: &str = "(e) empty wasm filter (floor)";

/// What capturing and shipping cost with none of a plugin's own work: what is left above it
/// is the plugin's own work.
const SHIP_FLOOR: &str =
    "(e3) (e2) + shipped through a queue and a singleton (floor of a capturing, shipping plugin)";

/// (h): governance on, identity from a header.
const GOVERNANCE_CONFIG: &str = r#"{"moesif_application_id": "local-demo-app-id",
    "user_id_header": "X-User-Id", "enable_governance": true}"#;

/// 100 rules that the bench's calls must all be checked against without matching: 60 regex
/// rules on other routes, 20 user and 20 company rules for cohorts the calls are not in.
fn governance_documents() -> (Value, Value) {
    let mut rules = Vec::new();
    for i in 0..60 {
        rules.push(json!({"_id": format!("regex-{i}"), "type": "regex", "block": i % 2 == 0,
            "regex_config": [{"conditions": [{"path": "request.route", "value": format!("^/never/{i}")}]}],
            "response": {"status": 429, "headers": {"x-rule": format!("{i}")}, "body": {"rule": i}}}));
    }
    for kind in ["user", "company"] {
        for i in 0..20 {
            rules.push(
                json!({"_id": format!("{kind}-{i}"), "type": kind, "block": true,
                "applied_to": "matching",
                "response": {"status": 402, "headers": {}, "body": {"plan": "{{plan}}"}}}),
            );
        }
    }
    let cohort = |kind: &str| {
        (0..20)
            .map(|i| {
                (
                    format!("{kind}-member-{i}"),
                    json!([{"rules": format!("{kind}-{i}"), "values": {"plan": "free"}}]),
                )
            })
            .collect::<serde_json::Map<String, Value>>()
    };
    let config = json!({"sample_rate": 100, "user_rules": cohort("user"), "company_rules": cohort("company")});
    (config, Value::Array(rules))
}

/// The measurements of one (config, workload, round).
#[derive(Clone, Default)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    errors: u64,
    /// Envoy's CPU time per completed request, all threads (the singleton's included).
    cpu_us: f64,
    /// Share of the run that Envoy's main thread (where the singleton ships) was on a CPU.
    main_busy: f64,
    /// Envoy's main thread CPU time per completed request: the singleton's shipping.
    main_us: f64,
    collector_cpu_us: f64,
    peak_rss_mib: f64,
    completed: u64,
    /// Distinct events the collector received (duplicates of a transaction id not counted).
    delivered: u64,
    /// Events received more than once (a retried batch that had arrived after all).
    duplicates: u64,
    wire_per_event: f64,
    raw_per_event: f64,
    /// Drops the plugin counted, by reason (ours only).
    dropped: Vec<(String, u64)>,
    /// Events workers shipped themselves because the singleton's queue was full (ours only).
    queue_full: u64,
}

pub fn run(args: &[String]) {
    let args = Args::parse(args);
    if args.micro {
        crate::run(Command::new("cargo").args([
            "bench",
            "--package",
            "moesif-core",
            "--bench",
            "core",
            "--",
            "--warm-up-time",
            "1",
            "--measurement-time",
            "3",
        ]));
        wasm_micro();
    }
    let dir = e2e::scratch("bench");
    let upstream = start_upstream(&dir);
    // Count-only: the collector shares these 2 cores with Envoy, so it must cost little.
    let collector = start_collector_with(&dir, &["--count-only"]);
    let keep =
        |name: &str| args.only.is_empty() || args.only.iter().any(|o| name.contains(o.as_str()));
    let configs: Vec<Config> = configs(&args)
        .into_iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || keep(&c.name))
        .map(|(_, c)| c)
        .collect();
    let all = workloads();
    // Workloads by exact name ("GET small" is not "GET small, fixed load").
    let named = |w: &Workload| args.only.iter().any(|o| o == w.name);
    let any_workload = all.iter().any(named);
    let workloads: Vec<Workload> = all
        .into_iter()
        .filter(|w| !any_workload || named(w))
        .collect();
    // results[config][workload] = runs
    let mut results = vec![vec![Vec::<Run>::new(); workloads.len()]; configs.len()];
    for round in 0..args.rounds {
        for (wi, w) in workloads.iter().enumerate() {
            for (ci, c) in configs.iter().enumerate() {
                if c.only_on.is_some_and(|on| !on.contains(&w.name)) {
                    continue;
                }
                let run_dir = dir.join(format!("r{round}-w{wi}-c{ci}"));
                std::fs::create_dir_all(&run_dir).unwrap();
                let r = measure(&args, &run_dir, c, w, upstream.port, &collector);
                eprintln!(
                    "round {} | {:<24} | {:<28} | {:>8.0} req/s p99 {:.2} ms | delivered {}/{}",
                    round + 1,
                    w.name,
                    c.name,
                    r.rps,
                    r.p99_ms,
                    r.delivered,
                    r.completed
                );
                results[ci][wi].push(r);
            }
        }
    }
    let report = report(&args, &configs, &workloads, &results);
    let out = e2e::root().join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("report.md"), &report.0).unwrap();
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&report.1).unwrap(),
    )
    .unwrap();
    println!("{}", report.0);
    println!("written: target/bench/report.md, target/bench/report.json");
}

/// The per-event work timed in V8 (node runs the wasm32-wasip1 build, as Envoy's V8 runs the
/// plugin) beside the same program built natively: target/bench/wasm-micro.md.
pub fn wasm_micro() {
    crate::run(&mut crate::wasm_release("wasm-micro"));
    crate::run(Command::new("cargo").args(["build", "--release", "--package", "wasm-micro"]));
    let root = e2e::root();
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let runner = out.join("wasi-run.mjs");
    std::fs::write(&runner, WASI_RUNNER).unwrap();
    let lines = |cmd: &mut Command| -> Vec<(String, String)> {
        let output = cmd.output().expect("wasm-micro did not start");
        assert!(output.status.success(), "wasm-micro failed: {output:?}");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let native = lines(&mut Command::new(root.join("target/release/wasm-micro")));
    let v8 = lines(
        Command::new("node")
            // As Envoy runs V8 (proxy-wasm-cpp-host): optimizing compiler only, no baseline tier.
            .args(["--no-warnings", "--no-liftoff"])
            .arg(&runner)
            .arg(root.join("target/wasm32-wasip1/release/wasm-micro.wasm")),
    );
    let mut md = String::from(
        "| per-event work (crates/wasm-micro) | natively, µs | in V8 (wasm), µs |\n|---|---:|---:|\n",
    );
    for (name, us) in &v8 {
        let native_us = native
            .iter()
            .find(|(n, _)| n == name)
            .map_or("-", |(_, v)| v);
        md.push_str(&format!("| {name} | {native_us} | {us} |\n"));
    }
    std::fs::write(out.join("wasm-micro.md"), &md).unwrap();
    println!("{md}");
}

/// Runs a wasm32-wasip1 program in node's WASI (V8).
const WASI_RUNNER: &str = r#"import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
const wasi = new WASI({ version: 'preview1', args: [], env: {} });
const module = await WebAssembly.compile(await readFile(process.argv[2]));
wasi.start(await WebAssembly.instantiate(module, wasi.getImportObject()));
"#;

fn measure(
    args: &Args,
    dir: &Path,
    c: &Config,
    w: &Workload,
    upstream: u16,
    collector: &Collector,
) -> Run {
    collector.clear_events();
    let (app_config, rules) = c
        .remote
        .clone()
        .unwrap_or_else(|| (json!({"sample_rate": 100}), json!([])));
    collector.set_app_config(&app_config);
    collector.set_rules(&rules);
    let envoy = envoy::start_with_workers(
        dir,
        &envoy::render_with(&c.opts, upstream, collector.port),
        args.workers,
    );
    let pid = envoy.proc.pid();
    let script = dir.join("wrk.lua");
    let out = dir.join("wrk.json");
    if args.warmup_s > 0 {
        std::fs::write(&script, lua(w, &dir.join("warmup.json"))).unwrap();
        wrk(args, args.warmup_s, &script, &envoy.url(w.path));
        if c.captures {
            wait_delivered(collector, || envoy.completed());
        }
    }
    let completed_before = envoy.completed();
    let cpu_before = cpu_seconds(pid);
    let main_before = main_thread_cpu_seconds(pid);
    let window = Instant::now();
    let collector_cpu_before = cpu_seconds(collector.proc.pid());
    std::fs::write(&script, lua(w, &out)).unwrap();
    wrk(args, args.duration_s, &script, &envoy.url(w.path));
    let wrk: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let delivered = if c.captures {
        wait_delivered(collector, || envoy.completed())
    } else {
        0
    };
    // After delivery: the shipping of the run's last events is part of its cost.
    let cpu = cpu_seconds(pid) - cpu_before;
    let main_cpu = main_thread_cpu_seconds(pid) - main_before;
    let main_busy = main_cpu / window.elapsed().as_secs_f64();
    // A request wrk sent just before it stopped may be counted by a busy worker only now.
    let completed = envoy.completed();
    let measured = completed.saturating_sub(completed_before).max(1) as f64;
    if c.name == SHIP_FLOOR {
        check_floor_shipped(collector, completed, args.workers);
    }
    let stats = collector.stats();
    let events = stats["events"].as_f64().unwrap_or(0.0).max(1.0);
    let requests = wrk["requests"].as_f64().unwrap_or(0.0);
    let secs = wrk["duration_us"].as_f64().unwrap_or(1.0) / 1e6;
    let us = |k: &str| wrk[k].as_f64().unwrap_or(0.0) / 1000.0;
    let mut run = Run {
        rps: requests / secs,
        p50_ms: us("p50"),
        p99_ms: us("p99"),
        p999_ms: us("p999"),
        errors: wrk["errors"].as_u64().unwrap_or(0),
        cpu_us: cpu / measured * 1e6,
        main_busy,
        main_us: main_cpu / measured * 1e6,
        collector_cpu_us: (cpu_seconds(collector.proc.pid()) - collector_cpu_before) / measured
            * 1e6,
        peak_rss_mib: peak_rss(&envoy) as f64 / (1 << 20) as f64,
        completed,
        delivered,
        duplicates: stats["duplicate_events"].as_u64().unwrap_or(0),
        wire_per_event: stats["bytes_wire"].as_f64().unwrap_or(0.0) / events,
        raw_per_event: stats["bytes_raw"].as_f64().unwrap_or(0.0) / events,
        dropped: vec![],
        queue_full: 0,
    };
    // Our plugin counts what it drops, and why; another plugin's losses show as the gap.
    if c.ours {
        let s = envoy.plugin_stats();
        run.queue_full = s.get("moesif_events_queue_full").copied().unwrap_or(0);
        for (k, v) in s.iter().filter(|(k, v)| k.contains("dropped") && **v > 0) {
            run.dropped.push((
                k.trim_start_matches("moesif_events_dropped_").to_string(),
                *v,
            ));
        }
    }
    drop(envoy);
    quiesce(collector);
    run
}

/// Runs wrk for `secs` against `url` with the request script `script`.
fn wrk(args: &Args, secs: u32, script: &Path, url: &str) {
    let status = Command::new("wrk")
        .args(["-t", "2", "-c", &args.connections.to_string()])
        .args(["-d", &format!("{secs}s")])
        .arg("-s")
        .arg(script)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("wrk not found: run `cargo xtask setup`");
    assert!(status.success(), "wrk failed");
}

/// Waits until the collector's event count has not moved for 500 ms (at most 5 s), so a batch
/// the stopped Envoy sent last (e.g. a retry) is not counted in the next config's run.
fn quiesce(collector: &Collector) {
    let start = Instant::now();
    let mut last = (collector.event_count(), Instant::now());
    while last.1.elapsed() < Duration::from_millis(500) && start.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(100));
        let n = collector.event_count();
        if n != last.0 {
            last = (n, Instant::now());
        }
    }
}

/// Waits until the collector has every completed call (distinct events), or its count stops
/// moving for 3 s.
fn wait_delivered(collector: &Collector, completed: impl Fn() -> u64) -> u64 {
    let mut last = (u64::MAX, Instant::now());
    loop {
        let n = distinct_events(&collector.stats());
        if n >= completed() || last.1.elapsed() > Duration::from_secs(3) {
            return n;
        }
        if n != last.0 {
            last = (n, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Events received, less repeats of a transaction id already seen (events without an id, as
/// other plugins send, count once each).
fn distinct_events(stats: &Value) -> u64 {
    let n = |k: &str| stats[k].as_u64().unwrap_or(0);
    n("events").saturating_sub(n("duplicate_events"))
}

fn lua(w: &Workload, out: &Path) -> String {
    let pace = w
        .pace_ms
        .map(|ms| format!("function delay() return {ms} end\n"))
        .unwrap_or_default();
    format!(
        r#"{setup}{pace}
function done(summary, latency, requests)
  local e = summary.errors
  local f = io.open("{out}", "w")
  f:write(string.format('{{"requests":%d,"duration_us":%d,"errors":%d,"p50":%d,"p99":%d,"p999":%d}}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
  f:close()
end
"#,
        setup = w.setup,
        out = out.display()
    )
}

/// User + system CPU seconds of a process so far.
fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// (e3) measures a floor only if it shipped: one accepted batch per 100 calls, all but those
/// still in the workers' open blocks (under 64 each) and the singleton's last partial batch,
/// once the batches in flight have arrived (after the CPU time is taken).
fn check_floor_shipped(collector: &Collector, completed: u64, workers: u32) {
    let shipped = |stats: &Value| {
        let batches = stats["batches"].as_u64().unwrap_or(0);
        batches * 100 <= completed && completed - batches * 100 < 100 + 64 * u64::from(workers)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stats = collector.stats();
    while !shipped(&stats) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        stats = collector.stats();
    }
    assert!(
        shipped(&stats),
        "(e3) did not ship one batch per 100 of {completed} calls: {stats}"
    );
    let rejected = stats["rejected"]
        .as_object()
        .map_or(0, |r| r.values().filter_map(Value::as_u64).sum::<u64>());
    assert_eq!(rejected, 0, "the collector refused (e3)'s batches: {stats}");
}

/// Those of a process's main thread (its thread id is the process id).
fn main_thread_cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/task/{pid}/stat"))
}

fn stat_cpu_seconds(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn peak_rss(envoy: &e2e::envoy::Envoy) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", envoy.proc.pid())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// "delivered / completed", with duplicates and the drops the plugin counted, summed by reason.
fn delivery(delivered: u64, completed: u64, runs: &[Run]) -> String {
    let duplicates: u64 = runs.iter().map(|r| r.duplicates).sum();
    let dup = if duplicates > 0 {
        format!(" (+{duplicates} duplicates)")
    } else {
        String::new()
    };
    let mut by_reason: Vec<(&str, u64)> = vec![];
    for (reason, n) in runs.iter().flat_map(|r| r.dropped.iter()) {
        match by_reason.iter_mut().find(|(r, _)| r == reason) {
            Some((_, total)) => *total += n,
            None => by_reason.push((reason, *n)),
        }
    }
    let drops: Vec<String> = by_reason.iter().map(|(r, n)| format!("{n} {r}")).collect();
    let overflow: u64 = runs.iter().map(|r| r.queue_full).sum();
    let dup = if overflow > 0 {
        format!("{dup} ({overflow} shipped by workers: queue full)")
    } else {
        dup
    };
    if drops.is_empty() {
        format!("{delivered} / {completed}{dup}")
    } else {
        format!(
            "{delivered} / {completed}{dup} (dropped, counted: {})",
            drops.join(", ")
        )
    }
}

/// The median of a round's difference to the floor, in bold, with their range.
fn beyond_cell(differences: &[f64]) -> String {
    let (lo, hi) = range(differences);
    format!("**{:.1}** ({lo:.1}–{hi:.1})", median(differences.to_vec()))
}

/// Each shipping config less (e3) in the same round: the plugin's own work, which moves far
/// less between rounds than either config's difference to (e).
fn own_work(
    configs: &[Config],
    workloads: &[Workload],
    results: &[Vec<Vec<Run>>],
    ship: usize,
) -> String {
    let mut md = String::from("\n| workload | config | **µs/req beyond (e3)**, paired by round (range): the plugin's own work | main thread CPU µs/req beyond (e3) |\n|---|---|---:|---:|\n");
    let main = |runs: &[Run]| median(runs.iter().map(|r| r.main_us).collect());
    for (wi, w) in workloads.iter().enumerate() {
        let floor = &results[ship][wi];
        if floor.is_empty() {
            continue;
        }
        for (ci, c) in configs.iter().enumerate() {
            let runs = &results[ci][wi];
            if !c.captures || runs.is_empty() {
                continue;
            }
            let own: Vec<f64> = runs
                .iter()
                .zip(floor)
                .map(|(r, f)| r.cpu_us - f.cpu_us)
                .collect();
            md.push_str(&format!(
                "| {} | {} | {} | {:.1} |\n",
                w.name,
                c.name,
                beyond_cell(&own),
                main(runs) - main(floor)
            ));
        }
    }
    md
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

fn report(
    args: &Args,
    configs: &[Config],
    workloads: &[Workload],
    results: &[Vec<Vec<Run>>],
) -> (String, Value) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mut md = format!(
        "## Benchmark report\n\nEnvoy 1.40.0 `--concurrency {}`, wrk `-t2 -c{}` for {} s per run after {} s of warm-up, {} rounds (medians), configs alternated within each round; sample upstream and local collector (`--count-only`) on the same machine ({}, {} cores). Fixed-load rows pace each connection to 1 request per 10 ms + latency.\n\n",
        args.workers, args.connections, args.duration_s, args.warmup_s, args.rounds, cpu, std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    md.push_str("| workload | config | **Envoy CPU µs/req beyond (e)** (rounds' range) | Envoy CPU µs/req (rounds' range) | req/s | vs (a) | p50 ms | p99 ms | p99.9 ms | collector CPU µs/req | main thread busy | main thread CPU µs/req | Envoy peak RSS MiB | delivered / completed | wire B/event (gzip) | raw JSON B/event |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let floor = configs.iter().position(|c| c.name == FLOOR);
    let mut json_rows = vec![];
    for (wi, w) in workloads.iter().enumerate() {
        let base = median(results[0][wi].iter().map(|r| r.rps).collect());
        let floor_runs = floor.map(|f| &results[f][wi]);
        for (ci, c) in configs.iter().enumerate() {
            let runs = &results[ci][wi];
            if runs.is_empty() {
                continue;
            }
            let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
            let (completed, delivered): (u64, u64) = runs
                .iter()
                .fold((0, 0), |a, r| (a.0 + r.completed, a.1 + r.delivered));
            let errors: u64 = runs.iter().map(|r| r.errors).sum();
            let rps = m(|r| r.rps);
            // Paired by round: a config and the floor ran minutes apart in the same round, so
            // a slow drift of the machine (it is shared) cancels out of each difference.
            let differences: Option<Vec<f64>> = floor_runs
                .filter(|_| ci > 0 && c.name != FLOOR)
                .map(|floor| {
                    runs.iter()
                        .zip(floor)
                        .map(|(r, f)| r.cpu_us - f.cpu_us)
                        .collect()
                });
            let beyond = differences.clone().map(median);
            let plugin = c.captures;
            let dash = |v: f64, p: usize| {
                if plugin {
                    format!("{v:.p$}")
                } else {
                    "-".into()
                }
            };
            let (lo, hi) = range(&runs.iter().map(|r| r.cpu_us).collect::<Vec<_>>());
            md.push_str(&format!(
                "| {} | {} | {} | {:.1} ({lo:.1}–{hi:.1}) | {:.0} | {:.0}% | {:.2} | {:.2} | {:.2} | {} | {:.0}% | {:.1} | {:.0} | {} | {} | {} |\n",
                w.name, c.name, differences.as_deref().map_or("-".into(), beyond_cell), m(|r| r.cpu_us),
                rps, rps / base * 100.0, m(|r| r.p50_ms), m(|r| r.p99_ms), m(|r| r.p999_ms),
                dash(m(|r| r.collector_cpu_us), 1), m(|r| r.main_busy) * 100.0, m(|r| r.main_us), m(|r| r.peak_rss_mib),
                if plugin { delivery(delivered, completed, runs) } else { "-".into() },
                dash(m(|r| r.wire_per_event), 0), dash(m(|r| r.raw_per_event), 0),
            ));
            json_rows.push(json!({
                "workload": w.name, "config": c.name, "rps": rps, "ratio_to_baseline": rps / base,
                "p50_ms": m(|r| r.p50_ms), "p99_ms": m(|r| r.p99_ms), "p999_ms": m(|r| r.p999_ms),
                "cpu_us_per_request": m(|r| r.cpu_us), "cpu_us_beyond_floor": beyond, "cpu_us_beyond_floor_by_round": differences, "collector_cpu_us_per_request": m(|r| r.collector_cpu_us), "main_thread_busy": m(|r| r.main_busy), "main_thread_cpu_us_per_request": m(|r| r.main_us), "peak_rss_mib": m(|r| r.peak_rss_mib),
                "completed": completed, "delivered": delivered, "duplicates": runs.iter().map(|r| r.duplicates).sum::<u64>(), "load_errors": errors,
                "wire_bytes_per_event": m(|r| r.wire_per_event), "raw_bytes_per_event": m(|r| r.raw_per_event),
                "rounds": runs.iter().map(|r| json!({"rps": r.rps, "cpu_us": r.cpu_us, "p99_ms": r.p99_ms, "completed": r.completed, "delivered": r.delivered})).collect::<Vec<_>>(),
            }));
        }
    }
    if let Some(ship) = configs.iter().position(|c| c.name == SHIP_FLOOR) {
        md.push_str(&own_work(configs, workloads, results, ship));
    }
    (
        md,
        json!({"workers": args.workers, "duration_s": args.duration_s, "rounds": args.rounds, "connections": args.connections, "cpu": cpu, "results": json_rows}),
    )
}
