//! Per-event cost of the core's hot paths: what the filter does per request (record encode)
//! and what the shipper does per event (decode + event JSON, body classification, gzip).
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use moesif_core::batch::Batcher;
use moesif_core::body::{json_text, write_base64_str, Body};
use moesif_core::config::Config;
use moesif_core::event::to_event_json;
use moesif_core::pairs::RawHeaders;
use moesif_core::policy::{Compiled, Policy};
use moesif_core::record::RecordRef;
use moesif_core::samples::{self, get_record, post_record, real_batch};
use uuid::Uuid;

/// [`moesif_core::samples::ship`] under the default policy (credentials masked, identity from
/// the `authorization` header).
fn ship(encoded: &[u8]) -> Vec<u8> {
    thread_local! {
        static POLICY: Compiled = Compiled::new(Policy::from_config(&Config::default()));
    }
    POLICY.with(|policy| samples::ship(encoded, policy).unwrap())
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
        r.headers = RawHeaders::from_pairs(&[("content-type", "application/octet-stream")]);
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
