//! `cargo xtask viewer-timing`: how the collector's event viewer holds up with 100,000 stored
//! events. It loads synthetic events through the collector's batch endpoint, times the list
//! API (first page, filtered pages, an old page, one event) and the page's first render in
//! headless Chromium, prints a Markdown table and writes it to `target/viewer/timing.md`.
//! A report, not a test: nothing is asserted about time.

use e2e::browser::Browser;
use e2e::client::Client;
use e2e::process::wait_for;
use e2e::services::start_collector;
use serde_json::{json, Value};
use std::fmt::Write;
use std::time::{Duration, Instant};

const EVENTS: usize = 100_000;
const BATCH: usize = 1_000;
/// Users `user-0` .. `user-999`, so a user filter matches 100 events of 100,000.
const USERS: usize = 1_000;
/// Timed runs of each request; the median and the slowest are reported.
const RUNS: usize = 7;
/// Page loads in Chromium, the first one with a cold browser.
const LOADS: usize = 5;

pub fn timing() {
    let dir = e2e::scratch("viewer-timing");
    let collector = start_collector(&dir);
    let base = format!("http://127.0.0.1:{}", collector.port);
    let client = Client::new();

    let started = Instant::now();
    let mut raw_bytes = 0;
    for first in (0..EVENTS).step_by(BATCH) {
        let batch: Vec<Value> = (first..first + BATCH).map(event).collect();
        let body = serde_json::to_vec(&batch).unwrap();
        raw_bytes += body.len();
        let headers = [
            ("content-type", "application/json"),
            ("x-moesif-application-id", "viewer-timing"),
        ];
        let r = client.send(
            "POST",
            &format!("{base}/v1/events/batch"),
            &headers,
            Some(&body),
        );
        assert_eq!(r.status, 201, "batch at {first}: {}", r.text());
    }
    let loaded = started.elapsed();
    assert_eq!(collector.event_count(), EVENTS as u64);

    let mut report = String::new();
    writeln!(
        report,
        "{EVENTS} events ({:.0} MiB of JSON) loaded in {:.1} s through `POST /v1/events/batch` \
         ({BATCH} per batch); collector RSS {} MiB. Median and slowest of {RUNS} runs, \
         wall time of the whole HTTP exchange on 127.0.0.1.\n",
        raw_bytes as f64 / 1048576.0,
        loaded.as_secs_f64(),
        rss_mib(collector.proc.pid()),
    )
    .unwrap();
    writeln!(
        report,
        "| request | median ms | slowest ms | answer bytes |"
    )
    .unwrap();
    writeln!(report, "|---|---:|---:|---:|").unwrap();
    let requests = [
        ("first page, no filter", "/_collector/page"),
        (
            "first page, user filter (100 matches)",
            "/_collector/page?user=user-7",
        ),
        (
            "first page, status 5xx (5,000 matches)",
            "/_collector/page?status=5xx",
        ),
        (
            "first page, path contains `/orders/` (33,334 matches)",
            "/_collector/page?path=/orders/",
        ),
        (
            "page 1,000 back (`before=50001`)",
            "/_collector/page?before=50001",
        ),
        ("one event (detail view)", "/_collector/event/50000"),
        ("stats", "/_collector/stats"),
    ];
    for (what, path) in requests {
        let url = format!("{base}{path}");
        let mut size = 0;
        let times = timed(RUNS, || {
            let r = client.get(&url, &[]);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            size = r.body.len();
        });
        writeln!(
            report,
            "| {what} | {:.1} | {:.1} | {size} |",
            median(&times),
            slowest(&times)
        )
        .unwrap();
    }

    let browser = Browser::start(&dir);
    let mut first_rows = Vec::new();
    let mut loaded_at = Vec::new();
    for _ in 0..LOADS {
        browser.goto(&format!("{base}/"));
        let marks = wait_for("the first 50 rows", Duration::from_secs(30), || {
            let marks = browser.eval(RENDER_TIMES, &[]);
            marks["first_rows"].as_f64().map(|_| marks)
        });
        let rows = browser.find_all("#rows tr").len();
        assert_eq!(rows, 50, "the first page holds 50 rows");
        first_rows.push(marks["first_rows"].as_f64().unwrap());
        loaded_at.push(marks["loaded"].as_f64().unwrap_or(f64::NAN));
    }
    writeln!(
        report,
        "\nIn headless Chromium, from navigation start, over {LOADS} loads (the first with a \
         cold browser): the page loaded (HTML, CSS, JS) in {:.0} ms (median; slowest {:.0}), \
         the first 50 rows were on screen in {:.0} ms (median; slowest {:.0}).",
        median(&loaded_at),
        slowest(&loaded_at),
        median(&first_rows),
        slowest(&first_rows),
    )
    .unwrap();

    print!("\n{report}");
    let out = e2e::root().join("target/viewer/timing.md");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &report).unwrap();
    println!("\nwritten to {}", out.display());
    drop(browser);
    drop(collector);
    // The events file is 100 MB of nothing anyone needs.
    let _ = std::fs::remove_dir_all(&dir);
}

/// The page's own marks: when it was loaded, and when its first rows were on screen
/// (`viewer:first-rows`, set by viewer.js); both in ms from navigation start.
const RENDER_TIMES: &str = r#"
    const [navigation] = performance.getEntriesByType("navigation");
    const [rows] = performance.getEntriesByName("viewer:first-rows");
    return { loaded: navigation && navigation.loadEventEnd, first_rows: rows && rows.startTime };
"#;

/// A synthetic event like the plugin's: 1,000 users, 50 companies, a third of the calls are
/// POSTs to `/orders/{n}`, 5% answer 500 and 5% 404, small JSON bodies, a masked header.
fn event(n: usize) -> Value {
    let ms = n % 1000;
    let seconds = n / 1000;
    let time = format!(
        "2024-10-30T04:{:02}:{:02}.{ms:03}Z",
        seconds / 60,
        seconds % 60
    );
    let status = match n % 20 {
        0 => 500,
        5 | 15 => 404,
        _ => 200,
    };
    let (verb, path, request_body) = if n.is_multiple_of(3) {
        (
            "POST",
            format!("/orders/{n}"),
            Some(json!({"sku": format!("sku-{}", n % 97), "qty": n % 5 + 1})),
        )
    } else {
        ("GET", format!("/items/{n}?page={}", n % 5), None)
    };
    let mut request = json!({
        "time": time,
        "uri": format!("https://api.example.test{path}"),
        "verb": verb,
        "headers": {
            "accept": "application/json",
            "authorization": "*****",
            "user-agent": "viewer-timing/1.0",
            "x-request-id": format!("req-{n}"),
        },
        "ip_address": "203.0.113.7",
    });
    if let Some(body) = request_body {
        request["body"] = body;
        request["transfer_encoding"] = json!("json");
    }
    json!({
        "transaction_id": format!("00000000-0000-4000-8000-{n:012x}"),
        "user_id": format!("user-{}", n % USERS),
        "company_id": format!("company-{}", n % 50),
        "direction": "Incoming",
        "request": request,
        "response": {
            "time": time,
            "status": status,
            "headers": {"content-type": "application/json", "x-upstream": "sample"},
            "body": {"id": n, "name": format!("widget-{n}"), "price": 9.5, "in_stock": true},
            "transfer_encoding": "json",
        },
        "metadata": {
            "envoy": {"route_name": "api", "cluster_name": "backend", "duration_ms": 1.25}
        },
    })
}

/// Wall times of `runs` calls of `f`, in ms.
fn timed(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn slowest(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}
