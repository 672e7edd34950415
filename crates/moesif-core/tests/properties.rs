//! Whatever a request carries (any bytes, any headers, any status), the core never panics,
//! records survive the queue unchanged, and what reaches the collector is valid JSON.

use moesif_core::batch::Batcher;
use moesif_core::body::{Body, BodyCapture};
use moesif_core::event::to_event_json;
use moesif_core::forward::{self, Forwarder};
use moesif_core::headers::client_ip;
use moesif_core::pairs::RawHeaders;
use moesif_core::record::{Record, Response};
use proptest::prelude::*;
use std::io::Read;
use uuid::Uuid;

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        Just(Body::Empty),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Body::Captured),
        any::<u64>().prop_map(Body::Omitted),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        Just("content-type".to_string()),
        Just("content-encoding".to_string()),
        Just("x-forwarded-for".to_string()),
        Just("forwarded".to_string()),
        "[A-Za-z-]{1,12}",
    ];
    let value = prop_oneof![
        Just("application/json".to_string()),
        Just("gzip".to_string()),
        ".{0,40}",
    ];
    proptest::collection::vec((name, value), 0..8)
}

fn record() -> impl Strategy<Value = Record> {
    (
        (
            any::<i64>(),
            any::<i64>(),
            ".{0,8}",
            ".{0,10}",
            ".{0,30}",
            ".{0,60}",
        ),
        (headers(), body(), ".{0,30}"),
        proptest::option::of((any::<u16>(), headers(), body())),
        (".{0,20}", ".{0,20}", proptest::option::of(".{0,20}")),
    )
        .prop_map(
            |(
                (start, dur, method, scheme, authority, path),
                (rh, rb, src),
                resp,
                (route, up, user),
            )| Record {
                start_ns: start,
                duration_ns: dur,
                method,
                scheme,
                authority,
                path,
                request_headers: RawHeaders::from_pairs(&rh),
                request_body: rb,
                source_address: src,
                response: resp.map(|(status, headers, body)| Response {
                    status,
                    headers: RawHeaders::from_pairs(&headers),
                    body,
                    trailers: RawHeaders::default(),
                }),
                upstream_address: up,
                route_name: route,
                cluster_name: String::new(),
                outbound: user.is_some(),
                weight: 1,
                blocked_by: None,
            },
        )
}

proptest! {
    #[test]
    fn records_survive_the_queue(recs in proptest::collection::vec(record(), 1..4)) {
        let mut forwarder = Forwarder::new(16_000_000, Vec::new());
        for r in &recs {
            prop_assert_eq!(forwarder.push(r).unwrap(), None);
        }
        let block = forwarder.take().unwrap();
        let opened = forward::open(&block.bytes).unwrap();
        prop_assert_eq!(opened.declared, recs.len() as u64);
        let back: Vec<Record> = opened.records().map(|r| r.unwrap().to_record()).collect();
        prop_assert_eq!(back, recs);
    }

    #[test]
    fn every_record_becomes_a_valid_event(rec in record()) {
        let json = to_event_json(&rec, Uuid::from_u128(7)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        prop_assert!(v["request"]["uri"].is_string());
        prop_assert_eq!(v.get("response").is_some(), rec.response.is_some());
        for side in ["request", "response"] {
            let part = &v[side];
            if part.get("body").is_some() {
                prop_assert!(part["transfer_encoding"] == "json" || part["transfer_encoding"] == "base64");
            }
        }
    }

    #[test]
    fn batches_are_valid_json_arrays(recs in proptest::collection::vec(record(), 1..6)) {
        let mut b = Batcher::new(100, usize::MAX, 0);
        for r in &recs {
            b.push(&to_event_json(r, Uuid::nil()).unwrap(), 0);
        }
        let batch = b.take().unwrap();
        let mut raw = String::new();
        flate2::read::GzDecoder::new(&batch.gzip[..]).read_to_string(&mut raw).unwrap();
        let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
        prop_assert_eq!(v.as_array().unwrap().len(), recs.len());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Record::decode_all(&bytes).count();
        if let Ok(opened) = forward::open(&bytes) {
            prop_assert!(opened.records().count() as u64 <= opened.declared);
        }
        let _ = moesif_core::config::Config::parse(&bytes);
    }

    #[test]
    fn client_ip_is_an_ip_or_nothing(hs in headers(), peer in ".{0,30}") {
        if let Some(ip) = client_ip(&hs, &peer) {
            prop_assert!(ip.parse::<std::net::IpAddr>().is_ok());
        }
    }

    #[test]
    fn body_capture_never_holds_more_than_its_cap(
        cap in 0usize..100,
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..6),
    ) {
        let mut c = BodyCapture::new(cap);
        let total: usize = chunks.iter().map(Vec::len).sum();
        for chunk in &chunks {
            if c.offer(chunk.len()) {
                c.push(chunk.clone());
            }
        }
        match c.finish() {
            Body::Empty => prop_assert_eq!(total, 0),
            Body::Captured(b) => {
                prop_assert!(b.len() <= cap);
                prop_assert_eq!(b, chunks.concat());
            }
            Body::Omitted(n) => {
                prop_assert!(n as usize > cap);
                prop_assert_eq!(n as usize, total);
            }
        }
    }
}
