//! Hostile or broken input never breaks traffic or the VM, and is captured as well as it can
//! be: header values that are not UTF-8, huge headers, malformed JSON, aborted streams.

use e2e::accounting;
use e2e::client::Client;
use e2e::envoy::{Mode, Options};
use e2e::process::wait_for;
use e2e::stack::Stack;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends raw bytes on a fresh connection; returns what came back before the server closed or
/// `read_for` elapsed.
fn raw(port: u16, bytes: &[u8], read_for: Duration) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(read_for)).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn broken_and_hostile_input_is_captured_without_harm() {
    let stack = Stack::start("hostile", &Options::new(Mode::Singleton));
    let port = stack.envoy.port;

    // A header value that is not UTF-8 (obs-text, legal in HTTP/1).
    let mut req = b"GET /items?case=latin1 HTTP/1.1\r\nHost: api.test\r\nX-Name: caf".to_vec();
    req.extend_from_slice(&[0xe9, 0xff]);
    req.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let reply = raw(port, &req, Duration::from_secs(5));
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // Headers of 50 KB in total.
    let client = Client::new();
    let big = "v".repeat(10_000);
    let headers: Vec<(String, String)> = (0..5)
        .map(|i| (format!("x-big-{i}"), big.clone()))
        .collect();
    let hv: Vec<(&str, &str)> = headers
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let mut hv = hv;
    hv.push(("x-case", "huge"));
    assert_eq!(
        client.get(&stack.envoy.url("/items?case=huge"), &hv).status,
        200
    );

    // JSON content type, body that is not JSON.
    let r = client.send(
        "POST",
        &stack.envoy.url("/echo?case=badjson"),
        &[("content-type", "application/json")],
        Some(b"{\"unterminated\": [1, 2"),
    );
    assert_eq!(r.status, 200);

    // The client sends half a body and goes away.
    let aborted = b"POST /upload?case=aborted HTTP/1.1\r\nHost: api.test\r\nContent-Length: 1000\r\n\r\nonly-part";
    raw(port, aborted, Duration::from_millis(300));

    wait_for("4 events", Duration::from_secs(15), || {
        (stack.collector.event_count() >= 4).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1200));
    let events = stack.collector.events();
    assert_eq!(events.len(), 4, "{events:?}");
    let by_case = |case: &str| {
        events
            .iter()
            .find(|e| {
                e["request"]["uri"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("case={case}"))
            })
            .unwrap_or_else(|| panic!("no event for {case}"))
    };
    assert_eq!(
        by_case("latin1")["request"]["headers"]["x-name"],
        "caf\u{fffd}\u{fffd}"
    );
    let huge = by_case("huge");
    for i in 0..5 {
        assert_eq!(
            huge["request"]["headers"][format!("x-big-{i}")]
                .as_str()
                .unwrap()
                .len(),
            10_000
        );
    }
    let bad = by_case("badjson");
    assert_eq!(bad["request"]["transfer_encoding"], "base64");
    assert_eq!(bad["request"]["body"], "eyJ1bnRlcm1pbmF0ZWQiOiBbMSwgMg==");
    let cut = by_case("aborted");
    assert_eq!(cut["request"]["verb"], "POST");
    assert_eq!(
        cut["request"]["body"], "b25seS1wYXJ0",
        "the part that arrived"
    );
    assert!(
        cut.get("response").is_none() || cut["response"]["status"].as_u64().unwrap() >= 400,
        "{cut}"
    );

    // The VM is alive and still capturing.
    assert_eq!(
        client
            .get(&stack.envoy.url("/items?case=after"), &[])
            .status,
        200
    );
    wait_for("the event after", Duration::from_secs(10), || {
        (stack.collector.event_count() == 5).then_some(())
    });
    let s = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(s["moesif_events_captured"], 5, "{s:?}");
    assert_eq!(s["moesif_events_sent"], 5, "{s:?}");
    assert!(
        !stack.envoy.log_text().contains("panicked"),
        "{}",
        stack.envoy.log_tail()
    );
}

/// Requests Envoy's codec rejects before routing still reach the plugin's on_log, with no
/// request headers: no verb, no host. Moesif refuses such an event (and with it the whole
/// batch), so the plugin skips them, counted; the valid calls between them all arrive.
#[test]
fn codec_rejected_requests_are_skipped_counted_and_never_spoil_a_batch() {
    let stack = Stack::start("codec-rejected", &Options::new(Mode::Singleton));
    let port = stack.envoy.port;
    let client = Client::new();
    let mut huge = b"GET /items?case=431 HTTP/1.1\r\nHost: api.test\r\n".to_vec();
    for i in 0..7 {
        huge.extend_from_slice(format!("x-big-{i}: {}\r\n", "h".repeat(10_000)).as_bytes());
    }
    huge.extend_from_slice(b"\r\n");
    let rejected: [(&[u8], &[u8]); 3] = [
        (b"NOT A REQUEST LINE\r\n\r\n", b"HTTP/1.1 400"),
        (&huge, b"HTTP/1.1 431"),
        (
            b"POST /items?case=cl HTTP/1.1\r\nHost: api.test\r\nContent-Length: 12abc\r\n\r\nbody",
            b"HTTP/1.1 400",
        ),
    ];
    let mut valid = 0;
    let mut call = || {
        let r = client.get(&stack.envoy.url("/items?case=valid"), &[]);
        assert_eq!(r.status, 200);
        valid += 1;
    };
    for (bytes, status) in rejected {
        (0..3).for_each(|_| call());
        let reply = raw(port, bytes, Duration::from_secs(5));
        assert!(
            reply.starts_with(status),
            "{}",
            String::from_utf8_lossy(&reply)
        );
    }
    call();

    let s = accounting::settle_until(
        &stack.envoy,
        Duration::from_secs(15),
        accounting::Expect::Captured(valid + 3),
        accounting::idle,
    );
    assert_eq!(s["moesif_events_skipped_invalid"], 3, "{s:?}");
    assert_eq!(s["moesif_events_sent"], valid, "{s:?}");
    assert_eq!(accounting::dropped(&s), 0, "{s:?}");
    let c = stack.collector.stats();
    assert_eq!(c["events"].as_u64(), Some(valid), "{c}");
    assert_eq!(
        c["rejected"]["400"], 0,
        "the collector refused no batch: {c}"
    );
    assert!(stack.collector.events().iter().all(|e| e["request"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:")));
    assert!(
        stack
            .envoy
            .log_text()
            .contains("counted in moesif_events_skipped_invalid"),
        "{}",
        stack.envoy.log_tail()
    );
}
