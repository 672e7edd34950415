//! What Envoy does when the plugin panics, per `failure_policy`, with the test build's panic
//! switches (`test_panic_header` in the filter, `test_crash_after_ms` in the shipper). The
//! shipped configs use `FAIL_OPEN` for both roots; README "Failure policy" says why.
//!
//! Every test runs Envoy with `--concurrency 2` and sends each panicking request on a new
//! connection, so that both workers' filter VMs die (30 tries: all on one worker has odds
//! 2^-29).

use e2e::accounting::{self, dropped, Expect, Stats};
use e2e::client::Client;
use e2e::envoy::{self, Envoy, Mode, Options};
use e2e::process::wait_for;
use e2e::services::{start_collector, start_upstream};
use e2e::stack::Stack;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const PANIC_HEADER: &str = "x-moesif-test-panic";
const PANIC_TRIES: usize = 30;
/// Filter VMs that serve traffic: one per worker.
const WORKERS: usize = 2;

fn filter_config() -> String {
    format!(
        r#"{{"moesif_application_id": "local-demo-app-id", "batch_max_wait": 1000, "test_panic_header": "{PANIC_HEADER}"}}"#
    )
}

fn test_build() -> Options {
    let wasm = e2e::test_build_wasm_path();
    Options::new(Mode::Singleton)
        .filter_plugin(wasm.clone(), "moesif_api_root_id")
        .shipper_wasm(wasm)
}

/// `envoy/local.yaml` for `opts` with the filter's and the shipper's `failure_policy: FAIL_OPEN`
/// lines replaced (the shipper's block comes first in the file).
fn start(name: &str, opts: &Options, shipper_policy: &str, filter_policy: &str) -> Stack {
    let dir = e2e::scratch(name);
    let upstream = start_upstream(&dir);
    let collector = start_collector(&dir);
    let mut config = envoy::render_with(opts, upstream.port, collector.port);
    const SHIPPED: &str = "failure_policy: FAIL_OPEN";
    assert_eq!(config.matches(SHIPPED).count(), 2, "{config}");
    let filter_at = config.rfind(SHIPPED).unwrap();
    config.replace_range(filter_at..filter_at + SHIPPED.len(), filter_policy);
    let shipper_at = config.find(SHIPPED).unwrap();
    config.replace_range(shipper_at..shipper_at + SHIPPED.len(), shipper_policy);
    let envoy = envoy::start(&dir, &config);
    Stack {
        dir,
        upstream,
        collector,
        envoy,
    }
}

/// Status, `x-upstream` header and body of a GET through Envoy on a new connection.
fn get_fresh(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> (u16, bool, Vec<u8>) {
    let r = Client::new().get(&stack.envoy.url(path), headers);
    let from_upstream = r.headers.iter().any(|(k, _)| k == "x-upstream");
    (r.status, from_upstream, r.body)
}

/// What the upstream itself answers to `path`.
fn upstream_body(stack: &Stack, path: &str) -> Vec<u8> {
    let r = Client::new().get(
        &format!("http://127.0.0.1:{}{path}", stack.upstream.port),
        &[],
    );
    assert_eq!(r.status, 200);
    r.body
}

/// Sends `n` plain requests; each must return 200 with the upstream's exact body.
fn expect_untouched(stack: &Stack, tag: &str, n: usize) {
    for i in 0..n {
        let path = format!("/items?{tag}={i}");
        let (status, _, body) = get_fresh(stack, &path, &[]);
        assert_eq!(
            (status, body),
            (200, upstream_body(stack, &path)),
            "{path}\n{}",
            stack.envoy.log_tail()
        );
    }
}

/// A chunked upload whose headers (and first chunk) the filter has seen, left in flight.
struct Upload(TcpStream);

impl Upload {
    fn start(envoy: &Envoy) -> Upload {
        let mut s = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
              Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n",
        )
        .unwrap();
        wait_for("the upload to reach Envoy", Duration::from_secs(5), || {
            (envoy.server_stat("http.ingress_http.downstream_rq_active") >= 1).then_some(())
        });
        Upload(s)
    }

    /// Sends the rest of the body; returns the status and the body of the answer.
    fn finish(mut self) -> (u16, Vec<u8>) {
        // Envoy may have answered already; the answer is what counts.
        let _ = self.0.write_all(b"6\r\n world\r\n0\r\n\r\n");
        let mut raw = Vec::new();
        let _ = self.0.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP answer to the upload: {text:?}"));
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.as_bytes().to_vec()
        };
        (status, body)
    }
}

fn dechunk(mut s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.extend_from_slice(&rest.as_bytes()[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn panics_logged(envoy: &Envoy) -> usize {
    envoy.log_text().matches("moesif: panicked").count()
}

/// What one run of [`panic_both_workers`] saw.
struct Run {
    /// Statuses of the requests carrying the panic header, and whether each was the upstream's
    /// exact answer.
    panic_requests: Vec<(u16, bool)>,
    /// The upload that was in flight on a worker when its VM died.
    upload: (u16, Vec<u8>),
    /// Plugin stats once the 20 calls before the panics were delivered.
    before: Stats,
    after: Stats,
}

/// 20 calls, delivered; an upload left in flight; requests carrying the panic header until
/// both workers' filter VMs have died; the upload finished; 20 more calls.
fn panic_both_workers(stack: &Stack) -> Run {
    expect_untouched(stack, "before", 20);
    let before = accounting::settle(&stack.envoy, Duration::from_secs(15));
    assert_eq!(before["moesif_events_sent"], 20, "{before:?}");

    let upload = Upload::start(&stack.envoy);
    let mut panic_requests = Vec::new();
    for i in 0..PANIC_TRIES {
        let path = format!("/items?panic={i}");
        let (status, from_upstream, body) = get_fresh(stack, &path, &[(PANIC_HEADER, "1")]);
        let exact = status == 200 && from_upstream && body == upstream_body(stack, &path);
        panic_requests.push((status, exact));
    }
    wait_for(
        "both workers' filter VMs to panic",
        Duration::from_secs(10),
        || (panics_logged(&stack.envoy) == WORKERS).then_some(()),
    );
    let upload = upload.finish();

    expect_untouched(stack, "after", 20);
    let log = stack.envoy.log_text();
    assert!(
        log.contains("moesif: panicked") && log.contains("test_panic_header"),
        "the panic hook named the panic: {}",
        stack.envoy.log_tail()
    );
    assert!(
        log.contains("proxy_on_request_headers failed"),
        "Envoy logged the VM failure: {}",
        stack.envoy.log_tail()
    );
    // Nothing more is captured: the dead VMs publish nothing, and Envoy runs no filter where
    // they were. Wait past a batch and a tick for anything that would still come.
    std::thread::sleep(Duration::from_millis(1500));
    Run {
        panic_requests,
        upload,
        before,
        after: stack.envoy.plugin_stats(),
    }
}

/// What a filter VM crash loses, with either policy that keeps traffic flowing: the calls it
/// was handling (the panicking one never reaches `on_log`, those in flight end in a dead VM)
/// and every later call on that worker (Envoy skips the filter). They are Envoy's requests
/// that `moesif_events_captured` lacks; everything captured is accounted for exactly.
fn assert_capture_stopped_and_accounting_exact(stack: &Stack, run: &Run) {
    let s = &run.after;
    assert_eq!(s, &run.before, "no VM captured anything after the panics");
    assert!(accounting::holds(s), "{s:?}");
    assert!(accounting::idle(s), "{s:?}");
    assert_eq!(dropped(s), 0, "{s:?}");
    let completed = stack.envoy.completed();
    // 20 before, the panic requests, the upload, 20 after.
    assert_eq!(completed, 20 + PANIC_TRIES as u64 + 1 + 20);
    assert_eq!(s["moesif_events_captured"], 20, "{s:?}");
    let unique = stack.collector.stats()["unique_transaction_ids"].as_u64();
    assert_eq!(unique, Some(20));
}

/// The shipped filter policy. Requests that arrive after a filter VM died pass untouched
/// (Envoy leaves the filter out), so traffic goes on; but Envoy answers 503 to the requests
/// that VM was handling when it died: the panicking one and any in flight on that worker.
/// Envoy reads only the deprecated `fail_open` flag, not `failure_policy`, for streams already
/// inside the VM (1.36.2 and 1.40.0 alike).
#[test]
fn fail_open_filter_panic_fails_only_the_requests_inside_the_dying_vm() {
    let stack = start(
        "fail-open",
        &test_build().filter(&filter_config()),
        "failure_policy: FAIL_OPEN",
        "failure_policy: FAIL_OPEN",
    );
    let run = panic_both_workers(&stack);
    let failed: Vec<_> = run
        .panic_requests
        .iter()
        .filter(|(s, _)| *s != 200)
        .collect();
    assert_eq!(
        failed,
        vec![&(503, false); WORKERS],
        "one 503 per VM that died: {:?}",
        run.panic_requests
    );
    assert!(
        run.panic_requests
            .iter()
            .all(|&(status, exact)| status != 200 || exact),
        "the rest went through untouched: {:?}",
        run.panic_requests
    );
    assert_eq!(run.upload.0, 503, "the upload in flight when its VM died");
    assert_capture_stopped_and_accounting_exact(&stack, &run);
}

/// The deprecated `fail_open: true` (not shipped: see README): the same crash, and Envoy lets
/// even the requests inside the dying VM through. Measured to show what the shipped policy
/// costs; if Envoy changes either behaviour, this test and the one above say so.
#[test]
fn legacy_fail_open_flag_passes_even_the_requests_inside_the_dying_vm() {
    let stack = start(
        "legacy-fail-open",
        &test_build().filter(&filter_config()),
        "failure_policy: FAIL_OPEN",
        "fail_open: true",
    );
    let run = panic_both_workers(&stack);
    assert!(
        run.panic_requests
            .iter()
            .all(|&(s, exact)| s == 200 && exact),
        "{:?}",
        run.panic_requests
    );
    assert_eq!(run.upload, (200, b"hello world".to_vec()));
    assert_capture_stopped_and_accounting_exact(&stack, &run);
}

/// FAIL_RELOAD is no remedy for a crashed singleton: Envoy reloads a failed VM only when a
/// request asks its plugin config for it, which never happens to a bootstrap extension. The
/// heartbeat never comes back; the filters ship by themselves, and the loss is what the dead
/// VM held (as with FAIL_OPEN in `delivery.rs`).
#[test]
fn fail_reload_never_brings_back_a_crashed_singleton() {
    let shipper = r#"{"moesif_application_id": "local-demo-app-id", "batch_max_wait": 1000, "test_crash_after_ms": 2000}"#;
    let stack = start(
        "singleton-reload",
        &test_build().shipper(shipper),
        "failure_policy: FAIL_RELOAD",
        "failure_policy: FAIL_OPEN",
    );
    let t0 = Instant::now();
    let mut i = 0;
    while t0.elapsed() < Duration::from_secs(9) {
        expect_untouched(&stack, "steady", 1);
        i += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(i > 100, "too few requests: {i}");
    let s = accounting::settle_until(
        &stack.envoy,
        Duration::from_secs(30),
        Expect::Completed,
        accounting::sent_quiet_for(Duration::from_secs(2)),
    );
    let log = stack.envoy.log_text();
    let crash = log
        .find("moesif: panicked")
        .unwrap_or_else(|| panic!("the shipper panicked: {}", stack.envoy.log_tail()));
    assert!(log[crash..].contains("test_crash_after_ms elapsed"));
    assert!(
        log[crash..].contains("singleton shipper not alive"),
        "{}",
        stack.envoy.log_tail()
    );
    assert!(
        !log[crash..].contains("singleton shipper alive;"),
        "the heartbeat came back: {}",
        stack.envoy.log_tail()
    );
    let reloads = stack.envoy.stats_matching("vm_reload");
    assert!(reloads.iter().all(|(_, v)| *v == 0), "{reloads:?}");
    // Every event is sent or stranded with the dead shipper; nothing is dropped.
    let stranded =
        accounting::queued(&s) + s["moesif_events_buffered"] + s["moesif_events_in_flight"];
    assert_eq!(
        s["moesif_events_sent"] + stranded,
        stack.envoy.completed(),
        "{s:?}"
    );
    assert_eq!(dropped(&s), 0, "{s:?}");
    assert!(
        s["moesif_events_sent"] > s["moesif_events_dequeued"],
        "the workers shipped by themselves: {s:?}"
    );
}
