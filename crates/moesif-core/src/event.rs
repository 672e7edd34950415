//! Turns a [`Record`] into one Moesif event (JSON), as the Collector API expects it.

use crate::body::{to_event_body, Body, EventBody};
use crate::headers::{client_ip, find, parse_ip, HeaderMap};
use crate::record::Record;
use crate::time::iso8601_ms;
use serde::Serialize;
use uuid::Uuid;

#[derive(Serialize)]
struct Event<'a> {
    request: Request<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Response<'a>>,
    transaction_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    company_id: Option<&'a str>,
    direction: &'static str,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    envoy: EnvoyMetadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_body_omitted: Option<Omitted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_body_omitted: Option<Omitted>,
}

#[derive(Serialize)]
struct EnvoyMetadata<'a> {
    route_name: &'a str,
    cluster_name: &'a str,
    duration_ms: f64,
}

/// Why a body is missing from the event, and how big it was.
#[derive(Serialize)]
struct Omitted {
    size: u64,
    reason: &'static str,
}

#[derive(Serialize)]
struct Request<'a> {
    time: String,
    uri: String,
    verb: &'a str,
    headers: HeaderMap<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<EventBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_encoding: Option<&'static str>,
}

#[derive(Serialize)]
struct Response<'a> {
    time: String,
    status: u16,
    headers: HeaderMap<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<EventBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transfer_encoding: Option<&'static str>,
}

/// A body ready for the event, and its transfer encoding.
fn present<'a>(
    body: &'a Body,
    headers: &[(String, String)],
) -> (Option<EventBody<'a>>, Option<&'static str>) {
    let Body::Captured(bytes) = body else {
        return (None, None);
    };
    let eb = to_event_body(
        bytes,
        find(headers, "content-type"),
        find(headers, "content-encoding"),
    );
    let te = eb.transfer_encoding();
    (Some(eb), Some(te))
}

/// `scheme://authority/path?query`; a path that is already absolute is kept as is.
fn full_uri(rec: &Record) -> String {
    if rec.path.starts_with("http://") || rec.path.starts_with("https://") {
        return rec.path.clone();
    }
    let scheme = if rec.scheme.is_empty() {
        "http"
    } else {
        &rec.scheme
    };
    format!("{scheme}://{}{}", rec.authority, rec.path)
}

fn metadata(rec: &Record) -> Metadata<'_> {
    let omitted = |body: &Body| match body {
        Body::Omitted(size) => Some(Omitted {
            size: *size,
            reason: "larger than max_body_size",
        }),
        _ => None,
    };
    Metadata {
        envoy: EnvoyMetadata {
            route_name: &rec.route_name,
            cluster_name: &rec.cluster_name,
            duration_ms: (rec.duration_ns as f64 / 1e3).round() / 1e3,
        },
        request_body_omitted: omitted(&rec.request_body),
        response_body_omitted: rec.response.as_ref().and_then(|r| omitted(&r.body)),
    }
}

/// Serializes `rec` as a Moesif event JSON object.
pub fn to_event_json(rec: &Record, transaction_id: Uuid) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    write_event_json(rec, transaction_id, &mut out)?;
    Ok(out)
}

/// Appends `rec` as a Moesif event JSON object to `out` (the open batch, without a copy).
pub fn write_event_json(
    rec: &Record,
    transaction_id: Uuid,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let (body, transfer_encoding) = present(&rec.request_body, &rec.request_headers);
    let request = Request {
        time: iso8601_ms(rec.start_ns),
        uri: full_uri(rec),
        verb: &rec.method,
        headers: HeaderMap(&rec.request_headers),
        ip_address: client_ip(&rec.request_headers, &rec.source_address),
        body,
        transfer_encoding,
    };
    let response = rec.response.as_ref().map(|r| {
        let (body, transfer_encoding) = present(&r.body, &r.headers);
        Response {
            time: iso8601_ms(rec.start_ns.saturating_add(rec.duration_ns)),
            status: r.status,
            headers: HeaderMap(&r.headers),
            ip_address: parse_ip(&rec.upstream_address).map(|ip| ip.to_string()),
            body,
            transfer_encoding,
        }
    });
    let event = Event {
        request,
        response,
        transaction_id: transaction_id.hyphenated().to_string(),
        user_id: rec.user_id.as_deref(),
        company_id: rec.company_id.as_deref(),
        direction: "Incoming",
        metadata: metadata(rec),
    };
    serde_json::to_writer(out, &event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Response as RecResponse;
    use serde_json::{json, Value};

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn sample() -> Record {
        Record {
            start_ns: 1_730_263_542_914_000_000,
            duration_ns: 12_345_678,
            method: "POST".into(),
            scheme: "https".into(),
            authority: "api.acme.com".into(),
            path: "/items?page=2".into(),
            request_headers: h(&[
                ("content-type", "application/json; charset=utf-8"),
                ("x-user", "u-42"),
                ("x-forwarded-for", "203.0.113.9"),
            ]),
            request_body: Body::Captured(br#"{"name":"widget"}"#.to_vec()),
            source_address: "127.0.0.1:50000".into(),
            response: Some(RecResponse {
                status: 201,
                headers: h(&[
                    ("content-type", "application/octet-stream"),
                    ("x-a", "1"),
                    ("x-a", "2"),
                ]),
                body: Body::Captured(vec![0, 1, 2, 255]),
            }),
            upstream_address: "127.0.0.1:8080".into(),
            route_name: "items".into(),
            cluster_name: "backend".into(),
            user_id: Some("u-42".into()),
            company_id: Some("acme".into()),
        }
    }

    fn event(rec: &Record) -> Value {
        let id = Uuid::from_u128(0x1234);
        serde_json::from_slice(&to_event_json(rec, id).unwrap()).unwrap()
    }

    #[test]
    fn full_event_has_every_field() {
        let e = event(&sample());
        let expected = json!({
            "request": {
                "time": "2024-10-30T04:45:42.914Z",
                "uri": "https://api.acme.com/items?page=2",
                "verb": "POST",
                "headers": {
                    "content-type": "application/json; charset=utf-8",
                    "x-user": "u-42",
                    "x-forwarded-for": "203.0.113.9"
                },
                "ip_address": "203.0.113.9",
                "body": {"name": "widget"},
                "transfer_encoding": "json"
            },
            "response": {
                "time": "2024-10-30T04:45:42.926Z",
                "status": 201,
                "headers": {"content-type": "application/octet-stream", "x-a": "1, 2"},
                "ip_address": "127.0.0.1",
                "body": "AAEC/w==",
                "transfer_encoding": "base64"
            },
            "transaction_id": "00000000-0000-0000-0000-000000001234",
            "user_id": "u-42",
            "company_id": "acme",
            "direction": "Incoming",
            "metadata": {"envoy": {"route_name": "items", "cluster_name": "backend", "duration_ms": 12.346}}
        });
        assert_eq!(e, expected);
    }

    #[test]
    fn no_body_no_response_no_ids() {
        let rec = Record {
            request_body: Body::Empty,
            response: None,
            user_id: None,
            company_id: None,
            scheme: String::new(),
            ..sample()
        };
        let e = event(&rec);
        assert_eq!(e["request"]["uri"], "http://api.acme.com/items?page=2");
        assert!(e["request"].get("body").is_none());
        assert!(e["request"].get("transfer_encoding").is_none());
        assert!(e.get("response").is_none());
        assert!(e.get("user_id").is_none());
        assert!(e.get("company_id").is_none());
    }

    #[test]
    fn omitted_bodies_are_reported_in_metadata() {
        let mut rec = sample();
        rec.request_body = Body::Omitted(150_000);
        if let Some(r) = rec.response.as_mut() {
            r.body = Body::Omitted(7);
        }
        let e = event(&rec);
        assert!(e["request"].get("body").is_none());
        assert!(e["response"].get("body").is_none());
        assert_eq!(e["metadata"]["request_body_omitted"]["size"], 150_000);
        assert_eq!(e["metadata"]["response_body_omitted"]["size"], 7);
    }

    #[test]
    fn invalid_utf8_headers_bodies_still_serialize() {
        let mut rec = sample();
        rec.request_body = Body::Captured(vec![0xc3, 0x28]);
        let e = event(&rec);
        assert_eq!(e["request"]["transfer_encoding"], "base64");
        assert_eq!(e["request"]["body"], "wyg=");
    }
}
