//! Per-event cost of the core's hot paths: what the filter does per request (record encode)
//! and what the shipper does per event (decode + event JSON, body classification, gzip).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use moesif_core::batch::Batcher;
use moesif_core::body::{json_text, write_base64_str, Body};
use moesif_core::config::Config;
use moesif_core::event::{to_event_json, write_event_json};
use moesif_core::pairs::RawHeaders;
use moesif_core::policy::{Compiled, Policy};
use moesif_core::record::{Record, RecordRef, Response};
use uuid::Uuid;

fn headers(pairs: &[(&str, &str)]) -> RawHeaders {
    RawHeaders::from_pairs(pairs)
}

/// A POST with a 1 KB JSON body answered with 1 KB of JSON, as in the macro benchmark.
fn post_record() -> Record {
    let json = format!(
        r#"{{"items":[{}]}}"#,
        vec![r#"{"id":12345,"name":"widget"}"#; 35].join(",")
    );
    Record {
        start_ns: 1_730_263_542_914_000_000,
        duration_ns: 1_234_567,
        method: "POST".into(),
        scheme: "http".into(),
        authority: "api.example.com".into(),
        path: "/v1/orders?expand=items".into(),
        request_headers: headers(&[
            ("content-type", "application/json"),
            ("content-length", "1024"),
            ("user-agent", "wrk"),
            ("x-user-id", "user-1234"),
            ("x-forwarded-proto", "http"),
            ("x-request-id", "3b1f0a2e-8f7c-4c1e-9d7a-1f2e3d4c5b6a"),
        ]),
        request_body: Body::Captured(json.clone().into_bytes()),
        source_address: "10.1.2.3:45678".into(),
        response: Some(Response {
            status: 200,
            headers: headers(&[
                ("content-type", "application/json"),
                ("content-length", "1024"),
                ("x-envoy-upstream-service-time", "1"),
            ]),
            body: Body::Captured(json.into_bytes()),
            trailers: RawHeaders::default(),
        }),
        upstream_address: "10.1.2.4:8080".into(),
        route_name: "api".into(),
        cluster_name: "backend".into(),
        outbound: false,
        weight: 1,
        blocked_by: None,
    }
}

/// A GET answered with a small JSON document: the most common API call.
fn get_record() -> Record {
    Record {
        method: "GET".into(),
        path: "/items?page=2".into(),
        request_headers: headers(&[
            ("user-agent", "wrk"),
            ("accept", "*/*"),
            ("x-forwarded-proto", "http"),
            ("x-request-id", "3b1f0a2e-8f7c-4c1e-9d7a-1f2e3d4c5b6a"),
            ("x-envoy-expected-rq-timeout-ms", "15000"),
        ]),
        request_body: Body::Empty,
        response: Some(Response {
            status: 200,
            headers: headers(&[
                ("content-type", "application/json"),
                ("content-length", "88"),
                ("x-upstream", "sample"),
                ("date", "Wed, 25 Nov 2026 21:44:00 GMT"),
                ("x-envoy-upstream-service-time", "0"),
            ]),
            body: Body::Captured(
                br#"{"items":[{"id":1,"name":"widget"},{"id":2,"name":"gadget"}],"query":"page=2"}"#.to_vec(),
            ),
            trailers: RawHeaders::default(),
        }),
        ..post_record()
    }
}

/// What the shipper does with each record of a dequeued block: decode it (borrowing from the
/// block) and append its event JSON to the batch, under the default policy (credentials
/// masked, identity from the `authorization` header).
fn ship(encoded: &[u8]) -> Vec<u8> {
    thread_local! {
        static POLICY: Compiled = Compiled::new(Policy::from_config(&Config::default()));
    }
    let mut out = Vec::with_capacity(1024);
    POLICY.with(|policy| {
        write_event_json(
            &RecordRef::decode(encoded).unwrap(),
            Uuid::nil(),
            policy,
            &mut out,
        )
        .unwrap()
    });
    out
}

fn benches(c: &mut Criterion) {
    let get = get_record();
    let get_encoded = get.encode().unwrap();
    let rec = post_record();
    let encoded = rec.encode().unwrap();
    let event = to_event_json(&rec, Uuid::nil()).unwrap();
    let mut g = c.benchmark_group("per_event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("record_encode (filter)", |b| {
        b.iter(|| rec.encode().unwrap())
    });
    g.bench_function("get_small: record_encode (filter)", |b| {
        b.iter(|| get.encode().unwrap())
    });
    g.bench_function("get_small: decode + event JSON (shipper)", |b| {
        b.iter(|| ship(&get_encoded))
    });
    g.bench_function("post_1k_json: decode + event JSON (shipper)", |b| {
        b.iter(|| ship(&encoded))
    });
    g.bench_function("record_decode (shipper)", |b| {
        b.iter(|| RecordRef::decode(&encoded).unwrap())
    });
    g.bench_function("record_to_event_json (shipper)", |b| {
        b.iter(|| to_event_json(&rec, Uuid::nil()).unwrap())
    });
    let mut big = get_record();
    if let Some(r) = big.response.as_mut() {
        r.headers = headers(&[("content-type", "application/octet-stream")]);
        r.body = Body::Captured(vec![b'a'; 65_536]);
    }
    let big_encoded = big.encode().unwrap();
    g.bench_function("get_64k_binary: decode + event JSON (shipper)", |b| {
        b.iter(|| ship(&big_encoded))
    });
    let big_event = to_event_json(&big, Uuid::nil()).unwrap();
    g.bench_function("get_64k_binary: gzip one event (shipper)", |b| {
        b.iter_batched(
            || {
                let mut batcher = Batcher::new(100, usize::MAX, 1000);
                batcher.push(&big_event, 0);
                batcher
            },
            |mut batcher| batcher.take(),
            BatchSize::SmallInput,
        )
    });
    let Body::Captured(body) = &rec.request_body else {
        unreachable!()
    };
    g.bench_function("body_classify_json_1k", |b| {
        b.iter(|| json_text(body, Some("application/json"), None))
    });
    g.bench_function("body_classify_binary_1k", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(2048);
            if json_text(body, Some("application/octet-stream"), None).is_none() {
                write_base64_str(&mut out, body);
            }
            out
        })
    });
    g.finish();
    let mut g = c.benchmark_group("per_batch_of_100");
    g.throughput(Throughput::Elements(100));
    g.bench_function("batch_close_and_gzip", |b| {
        b.iter_batched(
            || {
                let mut batcher = Batcher::new(100, usize::MAX, 1000);
                for _ in 0..100 {
                    batcher.push(&event, 0);
                }
                batcher
            },
            |mut batcher| batcher.take(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
    gzip_levels(c);
    eprintln!(
        "sizes: record {} B msgpack, event {} B JSON",
        encoded.len(),
        event.len()
    );
}

/// The JSON array of a batch as the shipper builds it: 100 distinct calls (each its own
/// transaction id, request id, times and client), half GET small, half POST 1 KB.
fn real_batch() -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = b"[".to_vec();
    for i in 0..100u64 {
        let mut rec = if i % 2 == 0 {
            get_record()
        } else {
            post_record()
        };
        rec.start_ns += (i * 7_919_000) as i64;
        rec.duration_ns = rng.i64(100_000..5_000_000);
        let request_id = Uuid::from_u128(rng.u128(..)).to_string();
        let mut pairs = rec.request_headers.regular();
        pairs.retain(|(n, _)| *n != "x-request-id");
        pairs.push(("x-request-id", &request_id));
        rec.request_headers = headers(&pairs);
        rec.source_address = format!("10.1.{}.{}:{}", i % 7, i % 250, 40_000 + i);
        if i > 0 {
            out.push(b',');
        }
        out.extend(to_event_json(&rec, Uuid::from_u128(rng.u128(..))).unwrap());
    }
    out.push(b']');
    out
}

/// Time and size per gzip level on a real batch: the shipper's level is chosen from these.
fn gzip_levels(c: &mut Criterion) {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let json = real_batch();
    let gzip = |level: u32| {
        let mut enc = GzEncoder::new(Vec::new(), Compression::new(level));
        enc.write_all(&json).unwrap();
        enc.finish().unwrap()
    };
    let mut g = c.benchmark_group("gzip_real_batch_of_100");
    g.throughput(Throughput::Elements(100));
    for level in [1, 2, 3, 6] {
        eprintln!(
            "gzip level {level}: {} B JSON -> {} B ({:.1} B/event)",
            json.len(),
            gzip(level).len(),
            gzip(level).len() as f64 / 100.0
        );
        g.bench_function(format!("level {level}"), |b| b.iter(|| gzip(level)));
    }
    g.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
