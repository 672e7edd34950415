//! Event validation: the collector is a test oracle, so it rejects what Moesif would reject
//! (see `MOESIF_API.md`) and says exactly which event and field was wrong. One bad event
//! refuses the whole batch, as Moesif does.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Moesif's limit on one event, serialized.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Top-level fields that, when present, must be strings.
const TOP_LEVEL_STRINGS: [&str; 7] = [
    "transaction_id",
    "user_id",
    "company_id",
    "session_token",
    "subscription_id",
    "api_version",
    "blocked_by",
];

/// The values Moesif knows for `direction`.
const DIRECTIONS: [&str; 3] = ["Incoming", "Outgoing", "Internal"];

/// Parses a request body into its events: a JSON array for `/v1/events/batch` (`batch`),
/// one object for `/v1/events`.
///
/// Every event must pass every check below; the error names the event index and field,
/// e.g. `event[2].request.time: missing`, and no event of the body is kept.
pub fn parse_events(body: &[u8], batch: bool) -> Result<Vec<Value>, String> {
    let not_json = |e: serde_json::Error| format!("body is not valid JSON: {e}");
    // Events as the raw text they arrived as: their size is what Moesif limits, measured
    // without serializing them again (batches of large bodies are the collector's hot path).
    let raw: Vec<&RawValue> = if batch {
        match serde_json::from_slice(body) {
            Ok(events) => events,
            Err(e) => {
                return Err(match serde_json::from_slice::<&RawValue>(body) {
                    Ok(_) => "batch body must be a JSON array of events".to_owned(),
                    Err(_) => not_json(e),
                })
            }
        }
    } else {
        vec![serde_json::from_slice(body).map_err(not_json)?]
    };
    raw.iter()
        .enumerate()
        .map(|(index, raw)| {
            let event: Value = serde_json::from_str(raw.get()).map_err(not_json)?;
            if !batch && !event.is_object() {
                return Err("event body must be a JSON object".to_owned());
            }
            check_size(raw.get().len())
                .and_then(|()| check_event(&event))
                .map_err(|reason| format!("event[{index}]{reason}"))?;
            Ok(event)
        })
        .collect()
}

/// Returns the offending path suffix and reason, e.g. `.request.uri: missing`.
fn check_event(value: &Value) -> Result<(), String> {
    let event = value.as_object().ok_or(": must be a JSON object")?;
    let request = object_field(event, "", "request")?.ok_or(".request: missing")?;
    check_request(request)?;
    if let Some(response) = object_field(event, "", "response")? {
        check_response(response)?;
    }
    check_top_level(event)
}

/// `request` is required and describes the call as the client made it.
fn check_request(request: &Map<String, Value>) -> Result<(), String> {
    let path = ".request";
    check_time(request, path)?;
    check_uri(request)?;
    check_verb(request)?;
    check_headers(request, path)?;
    optional_string(request, path, "ip_address")?;
    check_body_encoding(request, path)
}

/// `response` is optional (absent when the client aborted), but when present it is complete.
fn check_response(response: &Map<String, Value>) -> Result<(), String> {
    let path = ".response";
    check_time(response, path)?;
    check_status(response)?;
    check_headers(response, path)?;
    optional_string(response, path, "ip_address")?;
    check_body_encoding(response, path)
}

/// The optional top-level fields, each typed as Moesif's event model says.
fn check_top_level(event: &Map<String, Value>) -> Result<(), String> {
    for name in TOP_LEVEL_STRINGS {
        optional_string(event, "", name)?;
    }
    object_field(event, "", "metadata")?;
    check_direction(event)?;
    check_weight(event)
}

/// `time` is required on both sides and must be ISO 8601.
fn check_time(object: &Map<String, Value>, path: &str) -> Result<(), String> {
    let time = string_field(object, path, "time")?;
    if is_iso8601(time) {
        Ok(())
    } else {
        Err(format!("{path}.time: not an ISO 8601 date-time: `{time}`"))
    }
}

/// Moesif wants the full URL (scheme, host, path, query), not just the path: without a host
/// it cannot tell which API was called.
fn check_uri(request: &Map<String, Value>) -> Result<(), String> {
    let uri = string_field(request, ".request", "uri")?;
    if is_full_http_url(uri) {
        Ok(())
    } else {
        Err(format!(
            ".request.uri: not a full URL (http or https, ://, host): `{uri}`"
        ))
    }
}

/// The method must be a non-empty HTTP token (RFC 9110 `tchar`s), as on the wire.
fn check_verb(request: &Map<String, Value>) -> Result<(), String> {
    let verb = string_field(request, ".request", "verb")?;
    if verb.is_empty() {
        Err(".request.verb: must not be empty".to_owned())
    } else if !verb.bytes().all(is_tchar) {
        Err(format!(".request.verb: not an HTTP token: `{verb}`"))
    } else {
        Ok(())
    }
}

/// `headers`, when present, maps names to strings: repeated headers are joined with ", ",
/// never sent as arrays.
fn check_headers(object: &Map<String, Value>, path: &str) -> Result<(), String> {
    let Some(headers) = object_field(object, path, "headers")? else {
        return Ok(());
    };
    match headers.iter().find(|(_, value)| !value.is_string()) {
        Some((name, _)) => Err(format!("{path}.headers.{name}: must be a string")),
        None => Ok(()),
    }
}

/// `transfer_encoding` says how to read `body`: a JSON value ("json", the default) or a
/// base64 string of the raw bytes ("base64"), which then must decode.
fn check_body_encoding(object: &Map<String, Value>, path: &str) -> Result<(), String> {
    match object.get("transfer_encoding") {
        None => return Ok(()),
        Some(Value::String(s)) if s == "json" => return Ok(()),
        Some(Value::String(s)) if s == "base64" => {}
        Some(other) => {
            return Err(format!(
                "{path}.transfer_encoding: must be \"json\" or \"base64\", not {other}"
            ))
        }
    }
    match object.get("body") {
        None => Ok(()),
        Some(Value::String(body)) if is_base64(body) => Ok(()),
        Some(Value::String(_)) => Err(format!("{path}.body: not valid base64")),
        Some(_) => Err(format!(
            "{path}.body: must be a base64 string (transfer_encoding is \"base64\")"
        )),
    }
}

/// `status` is required in a response and must be an HTTP status code.
fn check_status(response: &Map<String, Value>) -> Result<(), String> {
    match response.get("status") {
        None => Err(".response.status: missing".to_owned()),
        Some(status) if !(status.is_i64() || status.is_u64()) => {
            Err(".response.status: must be an integer".to_owned())
        }
        Some(status) if status.as_u64().is_some_and(|s| (100..=599).contains(&s)) => Ok(()),
        Some(status) => Err(format!(
            ".response.status: must be in 100..=599, not {status}"
        )),
    }
}

/// `direction` is an enum in Moesif's model; any other value is refused.
fn check_direction(event: &Map<String, Value>) -> Result<(), String> {
    match event.get("direction") {
        None => Ok(()),
        Some(Value::String(d)) if DIRECTIONS.contains(&d.as_str()) => Ok(()),
        Some(other) => Err(format!(
            ".direction: must be \"Incoming\", \"Outgoing\" or \"Internal\", not {other}"
        )),
    }
}

/// `weight` is 1 / sampling rate, so a whole number of at least 1.
fn check_weight(event: &Map<String, Value>) -> Result<(), String> {
    match event.get("weight") {
        None => Ok(()),
        Some(weight) if weight.as_u64().is_some_and(|w| w >= 1) => Ok(()),
        Some(other) => Err(format!(".weight: must be a positive integer, not {other}")),
    }
}

/// Moesif refuses any single event over 1 MB serialized.
fn check_size(bytes: usize) -> Result<(), String> {
    if bytes > MAX_EVENT_BYTES {
        Err(format!(
            ": {bytes} bytes serialized, over Moesif's 1 MB event limit"
        ))
    } else {
        Ok(())
    }
}

/// `Ok(None)` when absent; an error when present but not an object.
fn object_field<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::Object(inner)) => Ok(Some(inner)),
        Some(_) => Err(format!("{path}.{name}: must be a JSON object")),
    }
}

/// A required string field.
fn string_field<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<&'a str, String> {
    optional_string(object, path, name)?.ok_or_else(|| format!("{path}.{name}: missing"))
}

/// `Ok(None)` when absent; an error when present but not a string (`null` included).
fn optional_string<'a>(
    object: &'a Map<String, Value>,
    path: &str,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{path}.{name}: must be a string")),
    }
}

/// `http://` or `https://` (any case), then an authority whose host, once any `user@` and
/// `:port` are taken off, is not empty.
fn is_full_http_url(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return false;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = if host_port.starts_with('[') {
        // An IPv6 literal: `[::1]:8080`.
        host_port
            .split(']')
            .next()
            .unwrap_or_default()
            .trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    !host.is_empty()
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Standard, padded base64 (what every Moesif SDK sends); the empty string is valid.
fn is_base64(text: &str) -> bool {
    let bytes = text.as_bytes();
    let padding = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let data = bytes.get(..bytes.len() - padding).unwrap_or_default();
    bytes.len().is_multiple_of(4)
        && padding <= 2
        && data
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Accepts `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM|±HHMM]`, the forms the SDKs send (the Python
/// SDK omits the zone, meaning UTC).
fn is_iso8601(text: &str) -> bool {
    let mut rest = text.as_bytes();
    let mut field = |digits: usize, max: u32, then: Option<u8>| -> bool {
        let Some((head, tail)) = rest.split_at_checked(digits) else {
            return false;
        };
        let Some(value) = parse_digits(head) else {
            return false;
        };
        rest = tail;
        if let Some(separator) = then {
            let Some((first, tail)) = rest.split_first() else {
                return false;
            };
            if *first != separator {
                return false;
            }
            rest = tail;
        }
        value <= max
    };
    let date_time = field(4, 9999, Some(b'-'))
        && field(2, 12, Some(b'-'))
        && field(2, 31, Some(b'T'))
        && field(2, 23, Some(b':'))
        && field(2, 59, Some(b':'))
        && field(2, 60, None);
    if !date_time {
        return false;
    }
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        rest = fraction.get(digits..).unwrap_or_default();
    }
    match rest {
        [] | [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] | [b'+' | b'-', h1, h2, m1, m2] => {
            parse_digits(&[*h1, *h2]).is_some_and(|h| h <= 23)
                && parse_digits(&[*m1, *m2]).is_some_and(|m| m <= 59)
        }
        _ => false,
    }
}

fn parse_digits(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::{is_iso8601, parse_events, MAX_EVENT_BYTES};
    use serde_json::{json, Value};

    /// An event with every optional field, all valid.
    fn good() -> Value {
        json!({
            "request": {
                "time": "2024-10-30T04:45:42.914Z",
                "uri": "https://api.acme.com/items?page=2",
                "verb": "GET",
                "headers": {"accept": "application/json"},
                "ip_address": "10.0.0.1",
                "body": "aGVsbG8=",
                "transfer_encoding": "base64"
            },
            "response": {
                "time": "2024-10-30T04:45:42.950Z",
                "status": 200,
                "headers": {"content-type": "application/json"},
                "ip_address": "10.0.0.2",
                "body": {"ok": [1, null]},
                "transfer_encoding": "json"
            },
            "transaction_id": "0b6e5c3a-1f2d-4e8a-9c7b-3d2e1f0a9b8c",
            "user_id": "u",
            "company_id": "c",
            "session_token": "s",
            "subscription_id": "sub",
            "api_version": "1.0",
            "blocked_by": "rule",
            "metadata": {"a": 1},
            "direction": "Incoming",
            "weight": 2
        })
    }

    /// The reason `event` is refused, or "" if it is accepted.
    fn reason(event: &Value) -> String {
        let body = serde_json::to_vec(event).unwrap_or_default();
        parse_events(&body, false).err().unwrap_or_default()
    }

    /// `good()` with the field at `pointer` set to `value` (or removed when `None`).
    fn with(pointer: &str, value: Option<Value>) -> Value {
        let mut event = good();
        let (parent, name) = pointer.rsplit_once('/').unwrap_or_default();
        if let Some(Value::Object(parent)) = event.pointer_mut(parent) {
            match value {
                Some(value) => parent.insert(name.to_owned(), value),
                None => parent.remove(name),
            };
        }
        event
    }

    fn reason_with(pointer: &str, value: Value) -> String {
        reason(&with(pointer, Some(value)))
    }

    #[test]
    fn a_complete_event_is_accepted() {
        assert_eq!(reason(&good()), "");
        let minimal = json!({"request": {
            "time": "2024-10-30T04:45:42Z", "uri": "http://a", "verb": "GET"}});
        assert_eq!(reason(&minimal), "");
    }

    #[test]
    fn event_must_be_an_object() {
        assert_eq!(
            parse_events(b"[1]", true),
            Err("event[0]: must be a JSON object".to_owned())
        );
    }

    #[test]
    fn request_is_a_required_object() {
        assert_eq!(reason(&with("/request", None)), "event[0].request: missing");
        assert_eq!(
            reason_with("/request", json!("GET /")),
            "event[0].request: must be a JSON object"
        );
    }

    #[test]
    fn iso8601_forms() {
        for ok in [
            "2024-10-30T04:45:42.914Z",
            "2024-10-30T04:45:42Z",
            "2024-10-30T04:45:42.914",
            "2024-10-30T04:45:42+02:00",
            "2024-10-30T04:45:42.1-0530",
        ] {
            assert!(is_iso8601(ok), "{ok}");
        }
        for bad in [
            "",
            "2024-10-30",
            "2024-13-30T04:45:42Z",
            "2024-10-30 04:45:42Z",
            "2024-10-30T04:45:42.Z",
            "2024-10-30T04:45:42ZZ",
            "yesterday",
        ] {
            assert!(!is_iso8601(bad), "{bad}");
        }
    }

    #[test]
    fn times_are_required_iso8601_strings() {
        assert_eq!(
            reason(&with("/request/time", None)),
            "event[0].request.time: missing"
        );
        assert_eq!(
            reason_with("/request/time", json!(1_730_263_542)),
            "event[0].request.time: must be a string"
        );
        assert_eq!(
            reason_with("/request/time", json!("yesterday")),
            "event[0].request.time: not an ISO 8601 date-time: `yesterday`"
        );
        assert_eq!(
            reason_with("/response/time", json!("2024-10-30")),
            "event[0].response.time: not an ISO 8601 date-time: `2024-10-30`"
        );
    }

    #[test]
    fn uri_is_a_full_http_url() {
        assert_eq!(
            reason(&with("/request/uri", None)),
            "event[0].request.uri: missing"
        );
        for bad in [
            "/x",
            "http://",
            "http:///x",
            "http://?q",
            "http://:8080/x",
            "http://user@/x",
            "ftp://h/x",
            "api.acme.com/x",
            "",
        ] {
            assert_eq!(
                reason_with("/request/uri", json!(bad)),
                format!("event[0].request.uri: not a full URL (http or https, ://, host): `{bad}`")
            );
        }
        for ok in [
            "http://a",
            "HTTPS://api.acme.com:8443/x?y#z",
            "http://[::1]:8080/",
            "http://user:pw@h/x",
        ] {
            assert_eq!(reason_with("/request/uri", json!(ok)), "", "{ok}");
        }
    }

    #[test]
    fn verb_is_a_non_empty_http_token() {
        assert_eq!(
            reason(&with("/request/verb", None)),
            "event[0].request.verb: missing"
        );
        assert_eq!(
            reason_with("/request/verb", json!("")),
            "event[0].request.verb: must not be empty"
        );
        assert_eq!(
            reason_with("/request/verb", json!("G T")),
            "event[0].request.verb: not an HTTP token: `G T`"
        );
        assert_eq!(reason_with("/request/verb", json!("M-SEARCH")), "");
    }

    #[test]
    fn headers_are_an_object_of_strings() {
        assert_eq!(
            reason_with("/request/headers", json!([["accept", "*/*"]])),
            "event[0].request.headers: must be a JSON object"
        );
        assert_eq!(
            reason_with("/request/headers/set-cookie", json!(["a=1", "b=2"])),
            "event[0].request.headers.set-cookie: must be a string"
        );
        assert_eq!(
            reason_with("/response/headers/content-length", json!(12)),
            "event[0].response.headers.content-length: must be a string"
        );
    }

    #[test]
    fn ip_addresses_are_strings() {
        assert_eq!(
            reason_with("/request/ip_address", json!([10, 0, 0, 1])),
            "event[0].request.ip_address: must be a string"
        );
        assert_eq!(
            reason_with("/response/ip_address", Value::Null),
            "event[0].response.ip_address: must be a string"
        );
    }

    #[test]
    fn transfer_encoding_is_json_or_base64() {
        assert_eq!(
            reason_with("/request/transfer_encoding", json!("gzip")),
            r#"event[0].request.transfer_encoding: must be "json" or "base64", not "gzip""#
        );
        assert_eq!(
            reason_with("/response/transfer_encoding", json!(true)),
            r#"event[0].response.transfer_encoding: must be "json" or "base64", not true"#
        );
    }

    #[test]
    fn base64_body_is_a_valid_base64_string() {
        for bad in [
            "aGVsbG8",
            "aGVs bG8=",
            "aGVsbG8h=",
            "a===",
            "aG=s",
            "aGVsbG8_",
        ] {
            assert_eq!(
                reason_with("/request/body", json!(bad)),
                "event[0].request.body: not valid base64",
                "{bad}"
            );
        }
        assert_eq!(
            reason_with("/request/body", json!({"a": 1})),
            r#"event[0].request.body: must be a base64 string (transfer_encoding is "base64")"#
        );
        for ok in ["", "aA==", "aGk=", "aGVsbG8hIQ+/"] {
            assert_eq!(reason_with("/request/body", json!(ok)), "", "{ok}");
        }
        // Without transfer_encoding (json) any JSON value is a body.
        let mut json_body = with("/request/transfer_encoding", None);
        json_body["request"]["body"] = json!("not base64!");
        assert_eq!(reason(&json_body), "");
    }

    #[test]
    fn response_is_an_object_when_present() {
        assert_eq!(reason(&with("/response", None)), "");
        assert_eq!(
            reason_with("/response", json!(200)),
            "event[0].response: must be a JSON object"
        );
    }

    #[test]
    fn response_status_is_an_integer_http_status() {
        assert_eq!(
            reason(&with("/response/status", None)),
            "event[0].response.status: missing"
        );
        assert_eq!(
            reason_with("/response/status", json!("200")),
            "event[0].response.status: must be an integer"
        );
        assert_eq!(
            reason_with("/response/status", json!(200.5)),
            "event[0].response.status: must be an integer"
        );
        for bad in [json!(99), json!(600), json!(-1)] {
            assert_eq!(
                reason_with("/response/status", bad.clone()),
                format!("event[0].response.status: must be in 100..=599, not {bad}")
            );
        }
    }

    #[test]
    fn top_level_ids_are_strings() {
        for name in [
            "transaction_id",
            "user_id",
            "company_id",
            "session_token",
            "subscription_id",
            "api_version",
            "blocked_by",
        ] {
            assert_eq!(
                reason_with(&format!("/{name}"), json!(42)),
                format!("event[0].{name}: must be a string")
            );
        }
    }

    #[test]
    fn metadata_is_an_object() {
        assert_eq!(
            reason_with("/metadata", json!("a=1")),
            "event[0].metadata: must be a JSON object"
        );
    }

    #[test]
    fn direction_is_incoming_outgoing_or_internal() {
        assert_eq!(
            reason_with("/direction", json!("incoming")),
            r#"event[0].direction: must be "Incoming", "Outgoing" or "Internal", not "incoming""#
        );
        for ok in ["Outgoing", "Internal"] {
            assert_eq!(reason_with("/direction", json!(ok)), "");
        }
    }

    #[test]
    fn weight_is_a_positive_integer() {
        for bad in [json!(0), json!(-2), json!(1.5), json!("2")] {
            assert_eq!(
                reason_with("/weight", bad.clone()),
                format!("event[0].weight: must be a positive integer, not {bad}")
            );
        }
        assert_eq!(reason_with("/weight", json!(1)), "");
    }

    #[test]
    fn an_event_is_at_most_1_mb_serialized() {
        let base = serde_json::to_vec(&good())
            .map(|v| v.len())
            .unwrap_or_default();
        // `"pad":"..."` adds 9 bytes of key, quotes, colon and comma around the padding.
        let at_limit = MAX_EVENT_BYTES - base - 9;
        let event = with("/pad", Some(json!("x".repeat(at_limit))));
        assert_eq!(reason(&event), "");
        let event = with("/pad", Some(json!("x".repeat(at_limit + 1))));
        assert_eq!(
            reason(&event),
            "event[0]: 1048577 bytes serialized, over Moesif's 1 MB event limit"
        );
    }

    #[test]
    fn one_bad_event_refuses_the_whole_batch() {
        let bad = with("/request/uri", Some(json!("/items")));
        let batch = json!([good(), good(), bad, good()]);
        let body = serde_json::to_vec(&batch).unwrap_or_default();
        assert_eq!(
            parse_events(&body, true),
            Err(
                "event[2].request.uri: not a full URL (http or https, ://, host): `/items`"
                    .to_owned()
            )
        );
        let body = serde_json::to_vec(&json!([good(), good()])).unwrap_or_default();
        assert_eq!(parse_events(&body, true).map(|e| e.len()), Ok(2));
    }

    #[test]
    fn body_shape_follows_the_endpoint() {
        let one = serde_json::to_vec(&good()).unwrap_or_default();
        assert_eq!(
            parse_events(&one, true),
            Err("batch body must be a JSON array of events".to_owned())
        );
        assert_eq!(
            parse_events(b"[]", false),
            Err("event body must be a JSON object".to_owned())
        );
        assert!(parse_events(b"{", false).is_err_and(|e| e.starts_with("body is not valid JSON")));
    }
}
