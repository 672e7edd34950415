//! Turns a [`Record`] into one Moesif event (JSON), as the Collector API expects it.
//!
//! The JSON is written by hand, straight into the batch buffer: the shipper does this for every
//! captured call on Envoy's main thread, and building serde structs (with a `String` for each
//! timestamp, the URI, the id and each IP) cost about as much again as the output itself. The
//! output is byte for byte what serde_json made of the former `#[derive(Serialize)]` structs
//! (field order, optional fields left out, escaping); the tests check exactly that.

use crate::body::{json_text, write_base64_str, BodyRef};
use crate::headers::{client_ip_addr, find, parse_address, HeaderMap};
use crate::identity::identify;
use crate::json::{write_str, write_str_contents};
use crate::mask;
use crate::policy::{Compiled, Direction};
#[cfg(any(test, feature = "testing"))]
use crate::record::Record;
use crate::record::RecordRef;
use crate::time::write_iso8601_ms;
use std::borrow::Cow;
use std::io::Write;
use std::net::IpAddr;
use uuid::Uuid;

/// Serializes `rec` as a Moesif event JSON object with no masks and no identity rules (tests
/// and benchmarks; the shipper writes straight into the batch with [`write_event_json`]).
#[cfg(any(test, feature = "testing"))]
pub fn to_event_json(rec: &Record, transaction_id: Uuid) -> Result<Vec<u8>, serde_json::Error> {
    to_event_json_with(rec, transaction_id, &Compiled::default())
}

/// [`to_event_json`] under `policy`.
#[cfg(any(test, feature = "testing"))]
pub fn to_event_json_with(
    rec: &Record,
    transaction_id: Uuid,
    policy: &Compiled,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    write_event_json(&rec.view(), transaction_id, policy, &mut out)?;
    Ok(out)
}

/// Appends `rec` as a Moesif event JSON object to `out` (the open batch, without a copy),
/// applying the filter's `policy`: masks, identity, extra fields.
///
/// On error (only numbers go through serde_json, which cannot fail on a `Vec`) `out` may hold
/// part of the event; the batcher truncates it.
pub fn write_event_json(
    rec: &RecordRef<'_>,
    transaction_id: Uuid,
    compiled: &Compiled,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    let p = &compiled.policy;
    let request_headers = &rec.request_headers;
    out.extend_from_slice(br#"{"request":{"time":"#);
    write_time(out, rec.start_ns);
    out.extend_from_slice(br#","uri":"#);
    write_uri(out, rec, &p.request_query_masks);
    out.extend_from_slice(br#","verb":"#);
    write_str(out, rec.method);
    out.extend_from_slice(br#","headers":"#);
    HeaderMap(request_headers).write_json_masked(
        out,
        &p.request_header_masks,
        &[("host", rec.authority)],
    );
    if let Some(version) = header_value(request_headers, &p.api_version_header) {
        out.extend_from_slice(br#","api_version":"#);
        write_str(out, version);
    }
    write_ip(out, client_ip_addr(request_headers, rec.source_address));
    write_body(
        out,
        rec.request_body,
        request_headers,
        &p.request_body_masks,
    );
    out.push(b'}');

    if let Some(r) = &rec.response {
        out.extend_from_slice(br#","response":{"time":"#);
        write_time(out, rec.start_ns.saturating_add(rec.duration_ns));
        out.extend_from_slice(br#","status":"#);
        serde_json::to_writer(&mut *out, &r.status)?;
        out.extend_from_slice(br#","headers":"#);
        HeaderMap(&r.headers).write_json_masked(out, &p.response_header_masks, &r.trailers);
        write_ip(out, parse_address(rec.upstream_address));
        write_body(out, r.body, &r.headers, &p.response_body_masks);
        out.push(b'}');
    }

    out.extend_from_slice(br#","transaction_id":""#);
    out.extend_from_slice(
        transaction_id
            .hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
    out.push(b'"');
    let who = identify(request_headers, &compiled.identity);
    let session = header_value(request_headers, &p.session_token_header);
    let fields: [(&[u8], _); 3] = [
        (br#","user_id":"#, who.user_id.as_deref()),
        (br#","company_id":"#, who.company_id.as_deref()),
        (br#","session_token":"#, session),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            out.extend_from_slice(key);
            write_str(out, value);
        }
    }
    if rec.weight > 1 {
        out.extend_from_slice(br#","weight":"#);
        serde_json::to_writer(&mut *out, &rec.weight)?;
    }
    if let Some(rule) = rec.blocked_by {
        out.extend_from_slice(br#","blocked_by":"#);
        write_str(out, rule);
    }
    let direction = p.direction.unwrap_or(if rec.outbound {
        Direction::Outgoing
    } else {
        Direction::Incoming
    });
    out.extend_from_slice(br#","direction":"#);
    write_str(out, direction.as_str());
    out.push(b',');
    write_metadata(out, rec, &p.metadata_members)?;
    out.push(b'}');
    Ok(())
}

/// The trimmed, non-empty value of the request header `name`, if one is configured.
fn header_value<'a>(headers: &'a [(&'a str, &'a str)], name: &Option<String>) -> Option<&'a str> {
    find(headers, name.as_deref()?)
}

fn write_time(out: &mut Vec<u8>, unix_ns: i64) {
    out.push(b'"');
    write_iso8601_ms(out, unix_ns);
    out.push(b'"');
}

/// `scheme://authority/path?query`, the values of `query_masks` masked; a path that is already
/// absolute is kept as is.
fn write_uri(out: &mut Vec<u8>, rec: &RecordRef<'_>, query_masks: &[String]) {
    out.push(b'"');
    let path = if query_masks.is_empty() {
        Cow::Borrowed(rec.path)
    } else {
        mask::query(rec.path, query_masks)
    };
    if path.starts_with("http://") || path.starts_with("https://") {
        write_str_contents(out, &path);
    } else {
        let scheme = if rec.scheme.is_empty() {
            "http"
        } else {
            rec.scheme
        };
        write_str_contents(out, scheme);
        out.extend_from_slice(b"://");
        write_str_contents(out, rec.authority);
        write_str_contents(out, &path);
    }
    out.push(b'"');
}

/// `,"ip_address":"..."` if there is one. An IP's text never needs escaping.
fn write_ip(out: &mut Vec<u8>, ip: Option<IpAddr>) {
    let Some(ip) = ip else {
        return;
    };
    out.extend_from_slice(br#","ip_address":""#);
    match ip {
        // The common case, without the formatting machinery: `a.b.c.d`, as `Display` writes it.
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
            }
        }
        // Writing to a Vec cannot fail.
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
    out.push(b'"');
}

/// `,"body":...,"transfer_encoding":"..."` for a captured body: its JSON embedded as written
/// (the values of the `masks` fields masked) when the content type says JSON and it parses,
/// else base64.
fn write_body(out: &mut Vec<u8>, body: BodyRef<'_>, headers: &[(&str, &str)], masks: &[String]) {
    let BodyRef::Captured(bytes) = body else {
        return;
    };
    out.extend_from_slice(br#","body":"#);
    let json = json_text(
        bytes,
        find(headers, "content-type"),
        find(headers, "content-encoding"),
    );
    let encoding = match json {
        Some(text) if masks.is_empty() => {
            out.extend_from_slice(text.as_bytes());
            "json"
        }
        Some(text) => {
            mask::json_body(&text, masks, out);
            "json"
        }
        None => {
            write_base64_str(out, bytes);
            "base64"
        }
    };
    out.extend_from_slice(br#","transfer_encoding":"#);
    write_str(out, encoding);
}

/// `"metadata":{...}`: the configured members, the Envoy facts, a gRPC call's status, and why
/// a body is missing.
fn write_metadata(
    out: &mut Vec<u8>,
    rec: &RecordRef<'_>,
    members: &str,
) -> Result<(), serde_json::Error> {
    out.extend_from_slice(br#""metadata":{"#);
    if !members.is_empty() {
        out.extend_from_slice(members.as_bytes());
        out.push(b',');
    }
    out.extend_from_slice(br#""envoy":{"route_name":"#);
    write_str(out, rec.route_name);
    out.extend_from_slice(br#","cluster_name":"#);
    write_str(out, rec.cluster_name);
    out.extend_from_slice(br#","duration_ms":"#);
    let duration_ms = (rec.duration_ns as f64 / 1e3).round() / 1e3;
    serde_json::to_writer(&mut *out, &duration_ms)?;
    out.push(b'}');
    write_grpc(out, rec)?;
    let response_body = rec.response.as_ref().map(|r| r.body);
    let bodies: [(&[u8], _); 2] = [
        (
            br#","request_body_omitted":{"size":"#,
            Some(rec.request_body),
        ),
        (br#","response_body_omitted":{"size":"#, response_body),
    ];
    for (key, body) in bodies {
        // Why a body is missing from the event, and how big it was.
        if let Some(BodyRef::Omitted(size)) = body {
            out.extend_from_slice(key);
            serde_json::to_writer(&mut *out, &size)?;
            out.extend_from_slice(br#","reason":"larger than max_body_size"}"#);
        }
    }
    out.push(b'}');
    Ok(())
}

/// `,"grpc":{"status":N,"message":"..."}` for a gRPC call: the status from the trailers (or
/// the headers of a trailers-only answer), as the client saw it.
fn write_grpc(out: &mut Vec<u8>, rec: &RecordRef<'_>) -> Result<(), serde_json::Error> {
    let Some(r) = &rec.response else {
        return Ok(());
    };
    let lookup = |name| find(&r.trailers, name).or_else(|| find(&r.headers, name));
    let Some(status) = lookup("grpc-status").and_then(|s| s.parse::<u32>().ok()) else {
        return Ok(());
    };
    out.extend_from_slice(br#","grpc":{"status":"#);
    serde_json::to_writer(&mut *out, &status)?;
    if let Some(message) = lookup("grpc-message") {
        out.extend_from_slice(br#","message":"#);
        write_str(out, &percent_decode(message));
    }
    out.push(b'}');
    Ok(())
}

/// gRPC percent-encodes `grpc-message`; the event shows it as the client reads it.
pub(crate) fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Body;
    use crate::pairs::RawHeaders;
    use crate::policy::Policy;
    use crate::record::Response as RecResponse;
    use serde_json::{json, Value};

    fn h(pairs: &[(&str, &str)]) -> RawHeaders {
        RawHeaders::from_pairs(pairs)
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
                trailers: RawHeaders::default(),
            }),
            upstream_address: "127.0.0.1:8080".into(),
            route_name: "items".into(),
            cluster_name: "backend".into(),
            outbound: false,
            weight: 1,
            blocked_by: None,
        }
    }

    /// Identity from the `x-user` header and a company header that `sample` lacks.
    fn with_ids() -> Compiled {
        Compiled::new(Policy {
            user_id_header: Some("x-user".into()),
            company_id_header: Some("x-company".into()),
            ..Policy::default()
        })
    }

    fn event(rec: &Record) -> Value {
        event_with(rec, &Compiled::default())
    }

    fn event_with(rec: &Record, policy: &Compiled) -> Value {
        let id = Uuid::from_u128(0x1234);
        serde_json::from_slice(&to_event_json_with(rec, id, policy).unwrap()).unwrap()
    }

    #[test]
    fn full_event_has_every_field() {
        let mut rec = sample();
        let mut headers: Vec<(&str, &str)> = rec.request_headers.regular();
        headers.push(("x-company", "acme"));
        rec.request_headers = h(&headers);
        let e = event_with(&rec, &with_ids());
        let expected = json!({
            "request": {
                "time": "2024-10-30T04:45:42.914Z",
                "uri": "https://api.acme.com/items?page=2",
                "verb": "POST",
                "headers": {
                    "content-type": "application/json; charset=utf-8",
                    "x-user": "u-42",
                    "x-forwarded-for": "203.0.113.9",
                    "x-company": "acme",
                    "host": "api.acme.com"
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
    fn grpc_status_comes_from_trailers_and_its_message_is_decoded() {
        let mut rec = sample();
        if let Some(r) = rec.response.as_mut() {
            r.trailers = h(&[
                ("grpc-status", "9"),
                ("grpc-message", "quota%20exceeded%E2%9C%93%zz"),
            ]);
        }
        let e = event(&rec);
        assert_eq!(e["response"]["headers"]["grpc-status"], "9");
        assert_eq!(
            e["response"]["headers"]["grpc-message"],
            "quota%20exceeded%E2%9C%93%zz"
        );
        assert_eq!(
            e["metadata"]["grpc"],
            json!({"status": 9, "message": "quota exceeded\u{2713}%zz"})
        );
        assert!(event(&sample())["metadata"].get("grpc").is_none());
    }

    #[test]
    fn invalid_utf8_headers_bodies_still_serialize() {
        let mut rec = sample();
        rec.request_body = Body::Captured(vec![0xc3, 0x28]);
        let e = event(&rec);
        assert_eq!(e["request"]["transfer_encoding"], "base64");
        assert_eq!(e["request"]["body"], "wyg=");
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn output_is_byte_for_byte_the_serde_output() {
        let mut cases = vec![sample()];
        let mut rec = sample();
        rec.request_body = Body::Omitted(150_000);
        rec.response = None;
        rec.outbound = true;
        rec.scheme = String::new();
        cases.push(rec);
        let mut rec = sample();
        rec.path = "https://other.example/x?q=\"\\\n\u{1}é".into();
        rec.request_headers = h(&[
            ("Content-Type", "application/json"),
            ("content-encoding", "gzip"),
            ("X-Forwarded-For", "[2001:db8::1]:80"),
            ("x-a", "tab\there"),
            ("X-A", "\"q\""),
        ]);
        rec.request_body = Body::Captured(gzip(br#" {"zipped": [1, 2.5e3, "\u00e9"]} "#));
        rec.upstream_address = "[::1]:9000".into();
        rec.duration_ns = i64::MAX;
        rec.start_ns = i64::MIN;
        if let Some(r) = rec.response.as_mut() {
            r.body = Body::Omitted(u64::MAX);
        }
        cases.push(rec);
        for rec in &cases {
            let id = Uuid::from_u128(0xfeed_beef);
            let ours = to_event_json(rec, id).unwrap();
            let theirs = crate::serde_event::to_event_json(rec, id);
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs)
            );
        }
    }

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just(String::new()),
            Just("application/json".to_string()),
            Just("gzip".to_string()),
            Just("10.0.0.7, 203.0.113.9".to_string()),
            Just("[2001:db8::2]:443".to_string()),
            Just("::ffff:10.1.2.3".to_string()),
            "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(:[0-9]{1,5})?",
            "[ -~]{0,12}",
            ".{0,12}",
            "[\\x00-\\x20\"\\\\a-z]{0,12}",
        ]
    }

    fn headers() -> impl proptest::strategy::Strategy<Value = RawHeaders> {
        use proptest::prelude::*;
        let name = prop_oneof![
            Just("content-type".to_string()),
            Just("Content-Encoding".to_string()),
            Just("x-forwarded-for".to_string()),
            Just("X-Real-IP".to_string()),
            Just("forwarded".to_string()),
            "[A-Za-z-]{1,6}",
        ];
        proptest::collection::vec((name, text()), 0..6)
            .prop_map(|pairs| RawHeaders::from_pairs(&pairs))
    }

    fn body() -> impl proptest::strategy::Strategy<Value = Body> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Body::Empty),
            any::<u64>().prop_map(Body::Omitted),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Body::Captured),
            Just(Body::Captured(br#"{"a":[1,"x\ny",null]}"#.to_vec())),
            Just(Body::Captured(gzip(b"[true]"))),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_record_gives_the_serde_output(
            (start_ns, duration_ns) in proptest::prelude::any::<(i64, i64)>(),
            (method, scheme, authority, path) in (text(), text(), text(), text()),
            (request_headers, request_body, source_address) in (headers(), body(), text()),
            response in proptest::option::of((proptest::prelude::any::<u16>(), headers(), body(), headers())),
            (upstream_address, route_name, cluster_name) in (text(), text(), text()),
            (outbound, weight) in proptest::prelude::any::<(bool, u32)>(),
            blocked_by in proptest::option::of(text()),
        ) {
            let rec = Record {
                start_ns,
                duration_ns,
                method,
                scheme,
                authority,
                path,
                request_headers,
                request_body,
                source_address,
                response: response.map(|(status, headers, body, trailers)| RecResponse { status, headers, body, trailers }),
                upstream_address,
                route_name,
                cluster_name,
                outbound,
                weight,
                blocked_by,
            };
            let id = Uuid::from_u128(u128::from(start_ns as u64));
            proptest::prop_assert_eq!(
                String::from_utf8(to_event_json(&rec, id).unwrap()).unwrap(),
                String::from_utf8(crate::serde_event::to_event_json(&rec, id)).unwrap()
            );
        }
    }
}
