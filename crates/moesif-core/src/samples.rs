//! Sample calls for the benchmarks (criterion natively, `wasm-micro` in V8): the records of
//! the macro benchmark's workloads, and a batch as the shipper builds it.

use crate::body::Body;
use crate::event::{to_event_json, write_event_json};
use crate::pairs::RawHeaders;
use crate::policy::Compiled;
use crate::record::{Record, RecordRef, Response};
use uuid::Uuid;

fn headers(pairs: &[(&str, &str)]) -> RawHeaders {
    RawHeaders::from_pairs(pairs)
}

/// A POST with a 1 KB JSON body answered with 1 KB of JSON, as in the macro benchmark.
pub fn post_record() -> Record {
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
pub fn get_record() -> Record {
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

/// The events of a batch as the shipper builds it: 100 distinct calls (each its own transaction
/// id, request id, times and client), half GET small, half POST 1 KB.
pub fn real_events() -> Vec<Vec<u8>> {
    distinct_events(|i| {
        if i % 2 == 0 {
            get_record()
        } else {
            post_record()
        }
    })
}

/// 100 events of the calls `call(i)` made distinct: each its own transaction id, request id,
/// times and client, as in real traffic (identical events would gzip unrealistically well).
pub fn distinct_events(call: impl Fn(u64) -> Record) -> Vec<Vec<u8>> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..100u64)
        .map(|i| {
            let mut rec = call(i);
            rec.start_ns += (i * 7_919_000) as i64;
            rec.duration_ns = rng.i64(100_000..5_000_000);
            let request_id = Uuid::from_u128(rng.u128(..)).to_string();
            let mut pairs = rec.request_headers.regular();
            pairs.retain(|(n, _)| *n != "x-request-id");
            pairs.push(("x-request-id", &request_id));
            rec.request_headers = headers(&pairs);
            rec.source_address = format!("10.1.{}.{}:{}", i % 7, i % 250, 40_000 + i);
            to_event_json(&rec, Uuid::from_u128(rng.u128(..))).unwrap_or_default()
        })
        .collect()
}

/// [`real_events`] as the JSON array the shipper gzips.
pub fn real_batch() -> Vec<u8> {
    let mut out = b"[".to_vec();
    out.extend(real_events().join(&b","[..]));
    out.push(b']');
    out
}

/// What the shipper does with each record of a dequeued block: decode it (borrowing from the
/// block) and write its event JSON under `policy`. `None` if it does not decode.
pub fn ship(encoded: &[u8], policy: &Compiled) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    write_event_json(
        &RecordRef::decode(encoded).ok()?,
        Uuid::nil(),
        policy,
        &mut out,
    )
    .ok()?;
    Some(out)
}
