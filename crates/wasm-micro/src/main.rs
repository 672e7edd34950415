//! Times the plugin's per-event work as one program, built for wasm32-wasip1 and run in V8 by
//! node (the engine Envoy runs the plugin in), and built natively: the criterion benchmarks
//! only show the native figure, while the shipper pays the wasm one on Envoy's main thread.
//! Prints one `name<TAB>µs per event` line per measurement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moesif_core::batch::Batcher;
use moesif_core::body::{json_text, write_base64_str, Body, BodyCapture};
use moesif_core::config::Config;
use moesif_core::headers::forwarded_ip;
use moesif_core::pairs::{encode, RawHeaders};
use moesif_core::policy::{Compiled, Policy};
use moesif_core::record::{Record, RecordRef, Response};
use moesif_core::samples::{self, distinct_events, get_record, post_record, real_events};
use std::hint::black_box;
use std::time::Instant;

/// Best of 5 rounds of `n` calls, after as many calls of warm-up (node's V8 starts wasm in its
/// baseline compiler and tiers hot code up; Envoy's compiles it all optimized at load), in
/// µs per call divided by `events` (the events one call handles).
fn time<R>(name: &str, n: u32, events: u32, mut f: impl FnMut() -> R) {
    for _ in 0..n {
        black_box(f());
    }
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                black_box(f());
            }
            t.elapsed().as_secs_f64() / f64::from(n)
        })
        .fold(f64::MAX, f64::min);
    println!("{name}\t{:.3}", best * 1e6 / f64::from(events));
}

fn main() {
    let policy = Compiled::new(Policy::from_config(&Config::default()));
    let ship = |encoded: &[u8]| samples::ship(encoded, &policy).expect("sample record ships");
    let (get, post) = (get_record(), post_record());
    let (get_encoded, post_encoded) = (get.encode().unwrap(), post.encode().unwrap());
    let host = HostAnswers::get_small();
    time(
        "filter: GET small, capture (no host calls)",
        20_000,
        1,
        || capture_get_small(&host),
    );
    time("filter: GET small, record encode", 20_000, 1, || {
        get.encode()
    });
    time("filter: POST 1 KB JSON, record encode", 20_000, 1, || {
        post.encode()
    });
    time("shipper: GET small, decode + event JSON", 20_000, 1, || {
        ship(&get_encoded)
    });
    time(
        "shipper: POST 1 KB JSON, decode + event JSON",
        20_000,
        1,
        || ship(&post_encoded),
    );
    time("shipper: POST 1 KB JSON, decode alone", 20_000, 1, || {
        RecordRef::decode(&post_encoded).map(|r| r.path.len())
    });
    let Body::Captured(body) = &post.request_body else {
        return;
    };
    time("shipper: a 1 KB JSON body, validated", 20_000, 1, || {
        json_text(body, Some("application/json"), None).is_some()
    });
    time("shipper: a 1 KB body, in base64", 20_000, 1, || {
        let mut out = Vec::with_capacity(2048);
        write_base64_str(&mut out, body);
        out
    });
    // Half GET small, half POST 1 KB JSON, each a distinct call.
    let events = real_events();
    let mut batcher = Batcher::new(100, usize::MAX, 1000);
    time(
        "shipper: batch of real events gzipped, per event",
        100,
        100,
        || gzip(&mut batcher, &events),
    );
    let json = events.concat();
    time("shipper: their CRC-32 alone, per event", 100, 100, || {
        crc32fast::hash(&json)
    });
    // What shipping a POST 1 KB JSON event cannot do without: its two bodies validated (to
    // embed them as JSON) and its event gzipped; the shipper's floor for that workload.
    let posts = distinct_events(|_| post_record());
    time(
        "shipper: batch of POST 1 KB JSON events gzipped, per event",
        100,
        100,
        || gzip(&mut batcher, &posts),
    );
}

/// The events closed into one gzipped batch by the shipper's one batcher.
fn gzip(b: &mut Batcher, events: &[Vec<u8>]) -> Option<moesif_core::batch::Batch> {
    for e in events {
        b.push(e, 0);
    }
    b.take()
}

/// What the host hands the filter for a GET small call: the two header maps as it serializes
/// them (pseudo-headers included), the response body, and the `on_log` properties.
struct HostAnswers {
    request: Vec<u8>,
    response: Vec<u8>,
    body: Vec<u8>,
    properties: [&'static str; 4],
}

impl HostAnswers {
    fn get_small() -> Self {
        let pairs = |p: &[(&'static str, &'static str)]| {
            encode(
                &p.iter()
                    .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
                    .collect::<Vec<_>>(),
            )
        };
        let Body::Captured(body) = get_record().response.unwrap().body else {
            unreachable!("the GET small sample has a response body")
        };
        HostAnswers {
            request: pairs(&[
                (":authority", "127.0.0.1:10000"),
                (":path", "/items?page=2"),
                (":method", "GET"),
                (":scheme", "http"),
                ("user-agent", "wrk"),
                ("accept", "*/*"),
                ("x-forwarded-proto", "http"),
                ("x-request-id", "3b1f0a2e-8f7c-4c1e-9d7a-1f2e3d4c5b6a"),
                ("x-envoy-expected-rq-timeout-ms", "15000"),
            ]),
            response: pairs(&[
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-length", "88"),
                ("x-upstream", "sample"),
                ("date", "Wed, 25 Nov 2026 21:44:00 GMT"),
                ("x-envoy-upstream-service-time", "0"),
            ]),
            body,
            properties: ["127.0.0.1:45678", "route", "sample", "127.0.0.1:8080"],
        }
    }
}

/// The filter's wasm work for one GET small call, as `capture.rs` does it, with the host's
/// answers already at hand (a copy of each, as a host call hands over): the maps taken, the
/// request line read, the body kept, the peer looked up in the forwarding headers, the record
/// built and encoded.
fn capture_get_small(host: &HostAnswers) -> usize {
    let headers = RawHeaders::from_host(host.request.clone());
    let get = |name| headers.get(name).unwrap_or_default().to_owned();
    let mut rec = Record {
        method: get(":method"),
        scheme: get(":scheme"),
        authority: get(":authority"),
        path: get(":path"),
        weight: 1,
        ..Record::default()
    };
    rec.request_headers = headers;
    let response = RawHeaders::from_host(host.response.clone());
    let status = response.get(":status").and_then(|s| s.parse().ok());
    let mut body = BodyCapture::new(100_000);
    if body.offer(host.body.len()) {
        body.push(host.body.clone());
    }
    let [peer, route, cluster, upstream] = host.properties.map(String::from);
    if forwarded_ip(&rec.request_headers.regular()).is_none() {
        rec.source_address = peer;
    }
    (rec.route_name, rec.cluster_name, rec.upstream_address) = (route, cluster, upstream);
    rec.response = Some(Response {
        status: status.unwrap_or(0),
        headers: response,
        body: body.finish(),
        trailers: RawHeaders::default(),
    });
    rec.encode().map_or(0, |v| v.len())
}
