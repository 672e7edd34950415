//! Body capture (bounded) and how a captured body is presented to Moesif.

use crate::json;
use base64::Engine;
use std::borrow::Cow;
use std::io::Read;

/// What was kept of one request or response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "codec-crates", derive(serde::Deserialize))]
pub enum Body {
    /// No body bytes were seen.
    #[default]
    Empty,
    /// The whole body, at most `max_body_size` bytes.
    Captured(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The body was larger than `max_body_size`; only its size is known.
    Omitted(u64),
}

impl Body {
    /// The same body, borrowed.
    pub fn view(&self) -> BodyRef<'_> {
        match self {
            Body::Empty => BodyRef::Empty,
            Body::Captured(bytes) => BodyRef::Captured(bytes),
            Body::Omitted(size) => BodyRef::Omitted(*size),
        }
    }
}

/// A [`Body`] borrowing its bytes, e.g. from the MessagePack a record was decoded from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BodyRef<'a> {
    #[default]
    Empty,
    Captured(&'a [u8]),
    Omitted(u64),
}

#[cfg(any(test, feature = "testing"))]
impl BodyRef<'_> {
    pub fn to_body(self) -> Body {
        match self {
            BodyRef::Empty => Body::Empty,
            BodyRef::Captured(bytes) => Body::Captured(bytes.to_vec()),
            BodyRef::Omitted(size) => Body::Omitted(size),
        }
    }
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

    /// Appends a chunk that [`BodyCapture::offer`] accepted. The first is kept as it is, not
    /// copied: most bodies come in one chunk.
    pub fn push(&mut self, mut chunk: Vec<u8>) {
        let room = self.cap.saturating_sub(self.buf.len());
        chunk.truncate(room);
        if self.buf.is_empty() {
            self.buf = chunk;
        } else {
            self.buf.extend_from_slice(&chunk);
        }
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

/// Decompressed bodies are bounded too: a small gzip bomb must not balloon the shipper.
const MAX_INFLATED: u64 = 1_000_000;

/// The JSON to embed for a captured body, as text: when the content type says JSON and the
/// bytes (after undoing a gzip/deflate `content-encoding`) are one valid JSON value, embedded
/// as written, not re-serialized. `None` means the event carries the bytes as received, in
/// base64. Validity is [`json::is_valid`]: what a serde_json `Value` parse of the batch accepts,
/// nested at most 64 levels, at a fraction of the cost (every captured JSON body goes through
/// it): a body Moesif's parser would refuse goes out as base64 rather than spoil its batch.
pub fn json_text<'a>(
    bytes: &'a [u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Option<Cow<'a, str>> {
    let valid = |text: &str| json::is_valid(text.as_bytes());
    match json_candidate(bytes, content_type, content_encoding)? {
        Cow::Borrowed(bytes) => trimmed_text(bytes).filter(|t| valid(t)).map(Cow::Borrowed),
        Cow::Owned(inflated) => trimmed_text(&inflated)
            .filter(|t| valid(t))
            .map(|t| Cow::Owned(t.to_owned())),
    }
}

/// The bytes to embed as JSON if the content type says JSON: inflated when the
/// `content-encoding` is gzip or deflate and they inflate, else as captured.
pub(crate) fn json_candidate<'a>(
    bytes: &'a [u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Option<Cow<'a, [u8]>> {
    let is_json = content_type.is_some_and(|ct| {
        ct.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"json"))
    });
    if !is_json {
        return None;
    }
    Some(match content_encoding.and_then(|ce| inflate(bytes, ce)) {
        Some(inflated) => Cow::Owned(inflated),
        None => Cow::Borrowed(bytes),
    })
}

/// Appends the base64 of `bytes` as a JSON string, encoded in place: the base64 alphabet needs
/// no escaping, so there is no intermediate `String` and no escaping pass over it.
pub fn write_base64_str(out: &mut Vec<u8>, bytes: &[u8]) {
    let engine = &base64::engine::general_purpose::STANDARD;
    out.push(b'"');
    let start = out.len();
    let written = base64::encoded_len(bytes.len(), true).and_then(|len| {
        out.resize(start.checked_add(len)?, 0);
        engine.encode_slice(bytes, out.get_mut(start..)?).ok()
    });
    match written {
        Some(n) => out.truncate(start + n),
        // Only if the length overflowed, which no body held in memory can make it.
        None => {
            out.truncate(start);
            out.extend_from_slice(engine.encode(bytes).as_bytes());
        }
    }
    out.push(b'"');
}

pub(crate) fn trimmed_text(bytes: &[u8]) -> Option<&str> {
    Some(std::str::from_utf8(bytes).ok()?.trim())
}

/// The body undone from its `content-encoding`, if the whole body is one such encoding: every
/// member of a gzip body (RFC 1952 allows several, back to back), and nothing after a zlib
/// stream. Otherwise the JSON would show only part of the body as if it were all of it.
fn inflate(bytes: &[u8], encoding: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = MAX_INFLATED + 1;
    let read = match encoding.trim().to_ascii_lowercase().as_str() {
        // Reads members until the input ends; anything else after a member is an error.
        "gzip" | "x-gzip" => flate2::bufread::MultiGzDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => {
            let mut stream = flate2::bufread::ZlibDecoder::new(bytes);
            let read = (&mut stream).take(limit).read_to_end(&mut out);
            if !stream.get_ref().is_empty() {
                return None;
            }
            read
        }
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
                c.push(chunk.to_vec());
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

    fn base64(bytes: &[u8]) -> String {
        let mut out = Vec::new();
        write_base64_str(&mut out, bytes);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_content_types_parse() {
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
        ] {
            let b = json_text(br#" {"a": [1, 2]} "#, Some(ct), None);
            assert_eq!(b, Some(Cow::Borrowed(r#"{"a": [1, 2]}"#)));
        }
    }

    #[test]
    fn invalid_json_and_binary_go_base64() {
        assert_eq!(
            json_text(b"{not json", Some("application/json"), None),
            None
        );
        assert_eq!(base64(b"{not json"), r#""e25vdCBqc29u""#);
        assert_eq!(
            json_text(&[0xff, 0xfe, 0x00], Some("application/json"), None),
            None
        );
        assert_eq!(json_text(br#"{"a":1}"#, Some("text/plain"), None), None);
        assert_eq!(json_text(br#"{"a":1}"#, None, None), None);
    }

    #[test]
    fn gzip_json_is_inflated() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(br#"{"zipped":true}"#).unwrap();
        let gz = enc.finish().unwrap();
        let inflated = json_text(&gz, Some("application/json"), Some("gzip"));
        assert!(matches!(inflated, Some(Cow::Owned(_))));
        assert_eq!(inflated.as_deref(), Some(r#"{"zipped":true}"#));
        assert_eq!(
            json_text(b"not gzip", Some("application/json"), Some("gzip")),
            None
        );
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// Found by tests/fuzz.rs (corpus body/gen-gzip-members.bin, gen-gzip-trailing.bin,
    /// gen-deflate-trailing.bin): only the first gzip member was read, and bytes after it or
    /// after a zlib stream were dropped, so `gzip({"a":1})garbage` was shipped as `{"a":1}`.
    #[test]
    fn the_whole_body_is_inflated_or_none_of_it() {
        let ct = Some("application/json");
        let members = [gzip(b"[1,"), gzip(b"2]")].concat();
        assert_eq!(
            json_text(&members, ct, Some("gzip")).as_deref(),
            Some("[1,2]")
        );
        let trailing = [gzip(br#"{"a":1}"#), b"garbage".to_vec()].concat();
        assert_eq!(json_text(&trailing, ct, Some("gzip")), None);
        let trailing = [zlib(br#"{"a":1}"#), b"{}".to_vec()].concat();
        assert_eq!(json_text(&trailing, ct, Some("deflate")), None);
        assert_eq!(
            json_text(&zlib(br#"{"a":1}"#), ct, Some("deflate")).as_deref(),
            Some(r#"{"a":1}"#)
        );
        // The cap holds across members: 10 x 200 KB of spaces, valid JSON if read unbounded.
        let mut bomb = gzip(b"[");
        for _ in 0..10 {
            bomb.extend(gzip(&vec![b' '; 200_000]));
        }
        bomb.extend(gzip(b"]"));
        assert_eq!(json_text(&bomb, ct, Some("gzip")), None);
    }

    #[test]
    fn gzip_bomb_is_not_inflated() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(b"[").unwrap();
        enc.write_all(&vec![b' '; 2_000_000]).unwrap();
        enc.write_all(b"]").unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(json_text(&gz, Some("application/json"), Some("gzip")), None);
    }
}
