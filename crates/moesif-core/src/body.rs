//! Body capture (bounded) and how a captured body is presented to Moesif.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::io::Read;

/// What was kept of one request or response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// No body bytes were seen.
    #[default]
    Empty,
    /// The whole body, at most `max_body_size` bytes.
    Captured(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The body was larger than `max_body_size`; only its size is known.
    Omitted(u64),
}

/// Accumulates body chunks without ever holding more than `cap` bytes.
#[derive(Debug)]
pub struct BodyCapture {
    buf: Vec<u8>,
    seen: u64,
    cap: usize,
}

impl BodyCapture {
    pub fn new(cap: usize) -> Self {
        BodyCapture {
            buf: Vec::new(),
            seen: 0,
            cap,
        }
    }

    /// Accounts for a chunk of `len` bytes; returns whether its bytes are wanted. When it returns
    /// false the caller need not even fetch the chunk from the host.
    pub fn offer(&mut self, len: usize) -> bool {
        self.seen = self.seen.saturating_add(len as u64);
        let keep = self.seen <= self.cap as u64;
        if !keep {
            self.buf = Vec::new();
        }
        keep && len > 0
    }

    /// Appends a chunk that [`BodyCapture::offer`] accepted.
    pub fn push(&mut self, chunk: &[u8]) {
        let room = self.cap.saturating_sub(self.buf.len());
        self.buf
            .extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
    }

    pub fn finish(self) -> Body {
        if self.seen == 0 {
            Body::Empty
        } else if self.seen > self.cap as u64 {
            Body::Omitted(self.seen)
        } else {
            Body::Captured(self.buf)
        }
    }
}

/// A body as the Moesif event carries it, with its `transfer_encoding`. JSON is embedded as
/// written (validated, not re-serialized), borrowed from the captured bytes when possible.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventBody<'a> {
    Json(&'a RawValue),
    /// JSON that had to be inflated first.
    InflatedJson(Box<RawValue>),
    Base64(String),
}

impl EventBody<'_> {
    pub fn transfer_encoding(&self) -> &'static str {
        match self {
            EventBody::Json(_) | EventBody::InflatedJson(_) => "json",
            EventBody::Base64(_) => "base64",
        }
    }
}

/// Decompressed bodies are bounded too: a small gzip bomb must not balloon the shipper.
const MAX_INFLATED: u64 = 1_000_000;

/// JSON when the content type says so and the bytes parse (after undoing a gzip/deflate
/// `content-encoding`), else base64 of the bytes as received.
pub fn to_event_body<'a>(
    bytes: &'a [u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> EventBody<'a> {
    let is_json = content_type.is_some_and(|ct| {
        ct.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"json"))
    });
    if is_json {
        match content_encoding.and_then(|ce| inflate(bytes, ce)) {
            Some(inflated) => {
                if let Some(raw) = as_json(&inflated) {
                    return EventBody::InflatedJson(raw.to_owned());
                }
            }
            None => {
                if let Some(raw) = as_json(bytes) {
                    return EventBody::Json(raw);
                }
            }
        }
    }
    EventBody::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn as_json(bytes: &[u8]) -> Option<&RawValue> {
    let text = std::str::from_utf8(bytes).ok()?;
    serde_json::from_str::<&RawValue>(text.trim()).ok()
}

fn inflate(bytes: &[u8], encoding: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = MAX_INFLATED + 1;
    let read = match encoding.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut out),
        _ => return None,
    };
    match read {
        Ok(n) if (n as u64) <= MAX_INFLATED => Some(out),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn capture(cap: usize, chunks: &[&[u8]]) -> Body {
        let mut c = BodyCapture::new(cap);
        for chunk in chunks {
            if c.offer(chunk.len()) {
                c.push(chunk);
            }
        }
        c.finish()
    }

    #[test]
    fn capture_within_cap_keeps_all_chunks() {
        assert_eq!(
            capture(10, &[b"abc", b"def"]),
            Body::Captured(b"abcdef".to_vec())
        );
        assert_eq!(
            capture(6, &[b"abc", b"def"]),
            Body::Captured(b"abcdef".to_vec())
        );
    }

    #[test]
    fn capture_over_cap_keeps_only_the_size() {
        assert_eq!(capture(5, &[b"abc", b"def"]), Body::Omitted(6));
        assert_eq!(capture(5, &[b"abcdefgh", b"ij"]), Body::Omitted(10));
    }

    #[test]
    fn capture_of_nothing_is_empty() {
        assert_eq!(capture(5, &[]), Body::Empty);
        assert_eq!(capture(5, &[b""]), Body::Empty);
        assert_eq!(capture(0, &[b"a"]), Body::Omitted(1));
    }

    #[test]
    fn json_content_types_parse() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
        ] {
            let b = to_event_body(br#" {"a": [1, 2]} "#, Some(ct), None);
            assert_eq!(b.transfer_encoding(), "json");
            let EventBody::Json(raw) = b else { panic!() };
            assert_eq!(raw.get(), r#"{"a": [1, 2]}"#);
        }
    }

    #[test]
    fn invalid_json_and_binary_go_base64() {
        let b = to_event_body(b"{not json", Some("application/json"), None);
        let EventBody::Base64(s) = b else { panic!() };
        assert_eq!(s, "e25vdCBqc29u");
        let b = to_event_body(&[0xff, 0xfe, 0x00], Some("application/json"), None);
        assert_eq!(b.transfer_encoding(), "base64");
        let b = to_event_body(br#"{"a":1}"#, Some("text/plain"), None);
        assert_eq!(b.transfer_encoding(), "base64");
        let b = to_event_body(br#"{"a":1}"#, None, None);
        assert_eq!(b.transfer_encoding(), "base64");
    }

    #[test]
    fn gzip_json_is_inflated() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(br#"{"zipped":true}"#).unwrap();
        let gz = enc.finish().unwrap();
        let EventBody::InflatedJson(raw) =
            to_event_body(&gz, Some("application/json"), Some("gzip"))
        else {
            panic!()
        };
        assert_eq!(raw.get(), r#"{"zipped":true}"#);
        let b = to_event_body(b"not gzip", Some("application/json"), Some("gzip"));
        assert_eq!(b.transfer_encoding(), "base64");
    }

    #[test]
    fn gzip_bomb_is_not_inflated() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(b"[").unwrap();
        enc.write_all(&vec![b' '; 2_000_000]).unwrap();
        enc.write_all(b"]").unwrap();
        let gz = enc.finish().unwrap();
        let b = to_event_body(&gz, Some("application/json"), Some("gzip"));
        assert_eq!(b.transfer_encoding(), "base64");
    }
}
