//! Times the plugin's per-event work as one program, built for wasm32-wasip1 and run in V8 by
//! node (the engine Envoy runs the plugin in), and built natively: the criterion benchmarks
//! only show the native figure, while the shipper pays the wasm one on Envoy's main thread.
//! Prints one `name<TAB>µs per event` line per measurement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use moesif_core::batch::Batcher;
use moesif_core::body::{json_text, write_base64_str, Body};
use moesif_core::config::Config;
use moesif_core::policy::{Compiled, Policy};
use moesif_core::record::RecordRef;
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
    time(
        "shipper: batch of real events gzipped, per event",
        100,
        100,
        || gzip(&events),
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
        || gzip(&posts),
    );
}

/// The events closed into one gzipped batch, as the shipper does.
fn gzip(events: &[Vec<u8>]) -> Option<moesif_core::batch::Batch> {
    let mut b = Batcher::new(100, usize::MAX, 1000);
    for e in events {
        b.push(e, 0);
    }
    b.take()
}
