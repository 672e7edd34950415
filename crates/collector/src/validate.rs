//! Event validation: the collector is a test oracle, so it rejects what Moesif would reject
//! and says exactly which event and field was wrong.

use serde_json::{Map, Value};

/// Parses a request body into its events: a JSON array for `/v1/events/batch` (`batch`),
/// one object for `/v1/events`.
///
/// Every event must carry `request.time` (ISO 8601), `request.uri` and `request.verb`; a
/// `response`, when present, needs `time` and an integer `status`. The error names the
/// event index and field, e.g. `event[2].request.time: missing`.
pub fn parse_events(body: &[u8], batch: bool) -> Result<Vec<Value>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("body is not valid JSON: {e}"))?;
    let events = match (batch, value) {
        (true, Value::Array(events)) => events,
        (true, _) => return Err("batch body must be a JSON array of events".to_owned()),
        (false, event @ Value::Object(_)) => vec![event],
        (false, _) => return Err("event body must be a JSON object".to_owned()),
    };
    for (index, event) in events.iter().enumerate() {
        check_event(event).map_err(|reason| format!("event[{index}]{reason}"))?;
    }
    Ok(events)
}

/// Returns the offending path suffix and reason, e.g. `.request.uri: missing`.
fn check_event(event: &Value) -> Result<(), String> {
    let event = event.as_object().ok_or(": must be a JSON object")?;
    let request = object_field(event, "request")?.ok_or(".request: missing")?;
    check_time(request, "request")?;
    string_field(request, "request", "uri")?;
    string_field(request, "request", "verb")?;
    if let Some(response) = object_field(event, "response")? {
        check_time(response, "response")?;
        match response.get("status") {
            None => return Err(".response.status: missing".to_owned()),
            Some(status) if status.is_i64() || status.is_u64() => {}
            Some(_) => return Err(".response.status: must be an integer".to_owned()),
        }
    }
    Ok(())
}

fn object_field<'a>(
    event: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match event.get(name) {
        None => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(_) => Err(format!(".{name}: must be a JSON object")),
    }
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    parent: &str,
    name: &str,
) -> Result<&'a str, String> {
    match object.get(name) {
        None => Err(format!(".{parent}.{name}: missing")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!(".{parent}.{name}: must be a string")),
    }
}

fn check_time(object: &Map<String, Value>, parent: &str) -> Result<(), String> {
    let time = string_field(object, parent, "time")?;
    if is_iso8601(time) {
        Ok(())
    } else {
        Err(format!(
            ".{parent}.time: not an ISO 8601 date-time: `{time}`"
        ))
    }
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
    use super::{is_iso8601, parse_events};

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
    fn names_event_index_and_field() {
        let good =
            r#"{"request":{"time":"2024-10-30T04:45:42.914Z","uri":"http://a/b","verb":"GET"}}"#;
        let no_verb = r#"{"request":{"time":"2024-10-30T04:45:42.914Z","uri":"http://a/b"}}"#;
        let bad_status = r#"{"request":{"time":"2024-10-30T04:45:42.914Z","uri":"u","verb":"GET"},
            "response":{"time":"2024-10-30T04:45:43Z","status":"200"}}"#;
        let batch = |events: &[&str]| format!("[{}]", events.join(","));
        assert_eq!(
            parse_events(batch(&[good, good]).as_bytes(), true).map(|e| e.len()),
            Ok(2)
        );
        assert_eq!(
            parse_events(batch(&[good, no_verb]).as_bytes(), true),
            Err("event[1].request.verb: missing".to_owned())
        );
        assert_eq!(
            parse_events(bad_status.as_bytes(), false),
            Err("event[0].response.status: must be an integer".to_owned())
        );
        assert!(parse_events(good.as_bytes(), true).is_err());
        assert!(parse_events(b"[1]", true).is_err_and(|e| e.starts_with("event[0]")));
    }
}
