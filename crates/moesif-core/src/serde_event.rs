//! The serde-derived event writer that [`crate::event`]'s hand-written one replaced, kept as
//! the specification of its output (tests compare the two byte for byte) and as the crates'
//! side of the codec comparison (the `codec-crates` benchmark build ships through it). It
//! applies no policy: no masks, no identity.

use crate::body::{json_candidate, trimmed_text, Body};
use crate::headers::{client_ip, find, parse_ip, HeaderMap};
use crate::pairs::RawHeaders;
use crate::record::Record;
use crate::time::iso8601_ms;
use base64::Engine;
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use uuid::Uuid;

/// A body as the event carried it: JSON checked by serde_json and embedded as written,
/// or base64.
#[derive(Serialize)]
#[serde(untagged)]
enum EventBody<'a> {
    Json(&'a RawValue),
    InflatedJson(Box<RawValue>),
    Base64(String),
}

fn to_event_body<'a>(
    bytes: &'a [u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> EventBody<'a> {
    fn as_json(bytes: &[u8]) -> Option<&RawValue> {
        serde_json::from_str::<&RawValue>(trimmed_text(bytes)?).ok()
    }
    let json = match json_candidate(bytes, content_type, content_encoding) {
        Some(Cow::Borrowed(text)) => as_json(text).map(EventBody::Json),
        Some(Cow::Owned(inflated)) => {
            as_json(&inflated).map(|raw| EventBody::InflatedJson(raw.to_owned()))
        }
        None => None,
    };
    json.unwrap_or_else(|| {
        EventBody::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
    })
}

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
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_by: Option<&'a str>,
    direction: &'static str,
    metadata: Metadata<'a>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    envoy: EnvoyMetadata<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc: Option<Grpc<'a>>,
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

#[derive(Serialize)]
struct Grpc<'a> {
    status: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Cow<'a, str>>,
}

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
    let te = match eb {
        EventBody::Base64(_) => "base64",
        EventBody::Json(_) | EventBody::InflatedJson(_) => "json",
    };
    (Some(eb), Some(te))
}

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
        grpc: rec.response.as_ref().and_then(|r| {
            let lookup = |n| {
                r.trailers
                    .regular()
                    .into_iter()
                    .chain(r.headers.regular())
                    .find(|(m, _): &(&str, &str)| m.eq_ignore_ascii_case(n))
                    .map(|(_, v)| v.trim())
                    .filter(|v| !v.is_empty())
            };
            Some(Grpc {
                status: lookup("grpc-status")?.parse().ok()?,
                message: lookup("grpc-message").map(crate::event::percent_decode),
            })
        }),
        request_body_omitted: omitted(&rec.request_body),
        response_body_omitted: rec.response.as_ref().and_then(|r| omitted(&r.body)),
    }
}

/// `headers` with each of `extra` added whose name is not there yet.
fn with_extra(headers: &[(String, String)], extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut all = headers.to_vec();
    for (n, v) in extra {
        if !n.is_empty() && !all.iter().any(|(m, _)| m.eq_ignore_ascii_case(n)) {
            all.push((n.clone(), v.clone()));
        }
    }
    all
}

fn owned(raw: &RawHeaders) -> Vec<(String, String)> {
    raw.regular()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// [`write_event`] into a new buffer (empty if serde_json failed, which it cannot on a `Vec`).
#[cfg(test)]
pub fn to_event_json(rec: &Record, transaction_id: Uuid) -> Vec<u8> {
    let mut out = Vec::new();
    write_event(rec, transaction_id, &mut out).map_or_else(|_| Vec::new(), |()| out)
}

/// Appends `rec`'s event JSON to `out`.
pub fn write_event(
    rec: &Record,
    transaction_id: Uuid,
    out: &mut Vec<u8>,
) -> serde_json::Result<()> {
    let rec_request_headers = owned(&rec.request_headers);
    let (body, transfer_encoding) = present(&rec.request_body, &rec_request_headers);
    let host = [("host".to_string(), rec.authority.clone())];
    let request_headers = with_extra(&rec_request_headers, &host);
    let response_headers = rec
        .response
        .as_ref()
        .map(|r| with_extra(&owned(&r.headers), &owned(&r.trailers)))
        .unwrap_or_default();
    let request = Request {
        time: iso8601_ms(rec.start_ns),
        uri: full_uri(rec),
        verb: &rec.method,
        headers: HeaderMap(&request_headers),
        ip_address: client_ip(&rec_request_headers, &rec.source_address),
        body,
        transfer_encoding,
    };
    let response = rec.response.as_ref().map(|r| {
        let (body, transfer_encoding) = present(&r.body, &owned(&r.headers));
        Response {
            time: iso8601_ms(rec.start_ns.saturating_add(rec.duration_ns)),
            status: r.status,
            headers: HeaderMap(&response_headers),
            ip_address: parse_ip(&rec.upstream_address).map(|ip| ip.to_string()),
            body,
            transfer_encoding,
        }
    });
    let event = Event {
        request,
        response,
        transaction_id: transaction_id.hyphenated().to_string(),
        user_id: None,
        company_id: None,
        weight: (rec.weight > 1).then_some(rec.weight),
        blocked_by: rec.blocked_by.as_deref(),
        direction: if rec.outbound { "Outgoing" } else { "Incoming" },
        metadata: metadata(rec),
    };
    serde_json::to_writer(out, &event)
}
