//! The compact record a filter hands to the shipper: everything seen of one API call, as
//! MessagePack. Kept raw (no JSON, no base64, no header merging) so the filter's per-request work
//! stays small; the shipper turns it into a Moesif event off the request path.

use crate::body::Body;
use serde::{Deserialize, Serialize};

/// One captured API call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Envoy's `request.time`, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    /// Envoy's `request.duration` in nanoseconds (0 when unknown).
    pub duration_ns: i64,
    pub method: String,
    pub scheme: String,
    pub authority: String,
    /// Path with its query string, as on the request line.
    pub path: String,
    /// Request headers without pseudo-headers, in arrival order.
    pub request_headers: Vec<(String, String)>,
    pub request_body: Body,
    /// Envoy's `source.address` (the downstream peer), `ip:port`.
    pub source_address: String,
    /// `None` when no response was sent, e.g. the client went away first.
    pub response: Option<Response>,
    /// Envoy's `upstream.address`, `ip:port`, empty when no upstream was used.
    pub upstream_address: String,
    pub route_name: String,
    pub cluster_name: String,
    pub user_id: Option<String>,
    pub company_id: Option<String>,
}

/// The response half of a [`Record`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    /// Response headers without pseudo-headers.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Record {
    /// MessagePack with struct fields as arrays: no field names on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, rmp_serde::encode::Error> {
        rmp_serde::to_vec(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Record, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }

    /// Appends the encoding to `out`: records are self-delimiting, so several can share one
    /// queue message.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), rmp_serde::encode::Error> {
        rmp_serde::encode::write(out, self)
    }

    /// Every record of a message made with [`Record::encode_into`]; stops at the first error.
    pub fn decode_all(
        bytes: &[u8],
    ) -> impl Iterator<Item = Result<Record, rmp_serde::decode::Error>> + '_ {
        let mut de = rmp_serde::Deserializer::new(bytes);
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed || de.get_ref().is_empty() {
                return None;
            }
            let rec = serde::Deserialize::deserialize(&mut de);
            failed = rec.is_err();
            Some(rec)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_compact() {
        let rec = Record {
            start_ns: 1_700_000_000_123_456_789,
            duration_ns: 2_500_000,
            method: "POST".into(),
            scheme: "http".into(),
            authority: "api.acme.com".into(),
            path: "/items?page=2".into(),
            request_headers: vec![("content-type".into(), "application/json".into())],
            request_body: Body::Captured(br#"{"a":1}"#.to_vec()),
            source_address: "10.0.0.1:5555".into(),
            response: Some(Response {
                status: 201,
                headers: vec![],
                body: Body::Omitted(200_000),
            }),
            upstream_address: "127.0.0.1:8080".into(),
            route_name: "r".into(),
            cluster_name: "c".into(),
            user_id: Some("u1".into()),
            company_id: None,
        };
        let bytes = rec.encode().unwrap();
        assert_eq!(Record::decode(&bytes).unwrap(), rec);
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(
            !has(b"start_ns") && !has(b"request_headers"),
            "field names on the wire"
        );
    }

    #[test]
    fn several_records_share_a_message() {
        let a = Record {
            path: "/a".into(),
            ..Record::default()
        };
        let b = Record {
            path: "/b".into(),
            request_body: Body::Captured(vec![1, 2]),
            ..Record::default()
        };
        let mut msg = Vec::new();
        a.encode_into(&mut msg).unwrap();
        b.encode_into(&mut msg).unwrap();
        let all: Vec<Record> = Record::decode_all(&msg).map(Result::unwrap).collect();
        assert_eq!(all, vec![a.clone(), b]);
        msg.push(0xc1);
        let results: Vec<_> = Record::decode_all(&msg).collect();
        assert_eq!(results.len(), 3);
        assert!(results[2].is_err());
        assert_eq!(Record::decode_all(b"").count(), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Record::decode(b"\xc1\xff\x00").is_err());
        assert!(Record::decode(b"").is_err());
    }
}
