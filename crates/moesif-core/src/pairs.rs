//! Decoding of the proxy-wasm ABI's serialized map of pairs (how the host hands over a header
//! map): `count: u32`, then `count` pairs of `(name_len: u32, value_len: u32)`, then every name
//! and value, each followed by a NUL byte; all integers little-endian.
//!
//! The SDK's own decoder indexes without checks and unwraps `String::from_utf8`, so one header
//! name or value that is not UTF-8 (from a client, an upstream, or a collector's answer) kills
//! the VM. This one never panics: bytes are decoded lossily, and a map that is cut short or
//! inconsistent yields the pairs that were whole.

use std::ops::Range;
use std::str::Utf8Error;

/// The pairs in `bytes`, names and values decoded lossily (invalid UTF-8 becomes U+FFFD).
pub fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    iter(bytes).map(|(n, v)| (lossy(n), lossy(v))).collect()
}

/// The pairs in `bytes` as raw bytes, borrowed; stops at the first pair that is not whole.
pub fn iter(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
    let field = |r: Range<usize>| bytes.get(r).unwrap_or_default();
    spans(bytes).map(move |(n, v)| (field(n), field(v)))
}

/// How many pairs the map declares (some may be cut off: [`iter`] yields the whole ones).
pub fn count(bytes: &[u8]) -> Option<usize> {
    u32_at(bytes, 0).map(|c| c as usize)
}

/// Where the name and the value of each whole pair sit in `bytes`.
fn spans(bytes: &[u8]) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
    let count = u32_at(bytes, 0).unwrap_or(0) as usize;
    let mut data = data_start(count);
    (0..count).map_while(move |i| {
        let at = 4 + i * 8;
        let (name_len, value_len) = (u32_at(bytes, at)?, u32_at(bytes, at + 4)?);
        let name = span(bytes, data?, name_len as usize)?;
        let value = span(bytes, name.end.saturating_add(1), value_len as usize)?;
        data = Some(value.end.saturating_add(1));
        Some((name, value))
    })
}

/// Where the names and values of a map of `count` pairs start: after the lengths.
fn data_start(count: usize) -> Option<usize> {
    count.checked_mul(8)?.checked_add(4)
}

/// A header map kept as the host serialized it, pseudo-headers included: one buffer instead
/// of a `String` per name and value, so a filter copies it into its record as is. Every name
/// and value is valid UTF-8 (a map that was not is re-encoded lossily when made).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawHeaders(Vec<u8>);

impl RawHeaders {
    /// The host's bytes, kept when they are valid UTF-8 (the usual case).
    pub fn from_host(bytes: Vec<u8>) -> Self {
        if text_pairs(&bytes).all(|pair| pair.is_ok()) {
            return RawHeaders(bytes);
        }
        let pairs = decode(&bytes);
        Self::from_pairs(&pairs)
    }

    /// No pairs make no bytes, as [`RawHeaders::default`].
    pub fn from_pairs<S: AsRef<str>>(pairs: &[(S, S)]) -> Self {
        if pairs.is_empty() {
            return RawHeaders::default();
        }
        let pairs: Vec<(&[u8], &[u8])> = pairs
            .iter()
            .map(|(n, v)| (n.as_ref().as_bytes(), v.as_ref().as_bytes()))
            .collect();
        RawHeaders(encode(&pairs))
    }

    /// The serialized map (what a record carries).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        text_pairs(&self.0).map_while(Result::ok)
    }

    /// The value of the first header named exactly `name` (pseudo-headers are lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        // Names compared as bytes: only the value found is checked as text.
        iter(&self.0)
            .find(|(n, _)| *n == name.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The regular headers (pseudo-headers left out), borrowed.
    pub fn regular(&self) -> Vec<(&str, &str)> {
        self.pairs().filter(|(n, _)| !n.starts_with(':')).collect()
    }
}

/// As bin: one MessagePack string of bytes.
impl serde::Serialize for RawHeaders {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

#[cfg(feature = "codec-crates")]
impl<'de> serde::Deserialize<'de> for RawHeaders {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_bytes::ByteBuf::deserialize(deserializer).map(|b| RawHeaders(b.into_vec()))
    }
}

/// The pairs of a serialized map as text: `Err` at the first name or value that is not UTF-8.
/// All names and values are checked in one pass when they are all text (the usual case), not
/// one call per field.
pub fn text_pairs(bytes: &[u8]) -> impl Iterator<Item = Result<(&str, &str), Utf8Error>> {
    let start = u32_at(bytes, 0)
        .and_then(|count| data_start(count as usize))
        .unwrap_or(0);
    let all = bytes
        .get(start..)
        .and_then(|data| std::str::from_utf8(data).ok());
    let field = move |r: Range<usize>| {
        // A field that cuts through a character is not text on its own: checked alone.
        let within = r.start.checked_sub(start).zip(r.end.checked_sub(start));
        match all.zip(within).and_then(|(all, (a, b))| all.get(a..b)) {
            Some(text) => Ok(text),
            None => std::str::from_utf8(bytes.get(r).unwrap_or_default()),
        }
    };
    spans(bytes).map(move |(n, v)| Ok((field(n)?, field(v)?)))
}

/// The `len` bytes at `at`, if there are that many (a NUL byte follows each field).
fn span(bytes: &[u8], at: usize, len: usize) -> Option<Range<usize>> {
    let end = at.checked_add(len)?;
    bytes.get(at..end)?;
    Some(at..end)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Invalid UTF-8 is replaced character by character.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// [`lossy`] for bytes the caller owns: valid UTF-8 (the usual case) is moved, not copied.
pub fn lossy_owned(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| lossy(e.as_bytes()))
}

/// The encoding of `pairs`, as the host reads and writes it (a local reply's headers).
pub fn encode(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (n, v) in pairs {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (n, v) in pairs {
        out.extend_from_slice(n);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_decodes_non_utf8_lossily() {
        let bytes = encode(&[
            (b":status", b"503"),
            (b"retry-after", b"\xff\xfe1"),
            (b"x-\xc3", b""),
        ]);
        assert_eq!(
            decode(&bytes),
            vec![
                (":status".to_string(), "503".to_string()),
                ("retry-after".to_string(), "\u{fffd}\u{fffd}1".to_string()),
                ("x-\u{fffd}".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn raw_headers_keep_text_and_re_encode_the_rest() {
        let text = encode(&[(b":method", b"GET"), (b"accept", b"*/*")]);
        let raw = RawHeaders::from_host(text.clone());
        assert_eq!(raw.as_bytes(), &text[..]);
        assert_eq!(raw.get(":method"), Some("GET"));
        assert_eq!(raw.get("Accept"), None);
        assert_eq!(raw.regular(), vec![("accept", "*/*")]);
        let raw = RawHeaders::from_host(encode(&[(b"x-\xc3", b"\xff1")]));
        assert_eq!(raw.regular(), vec![("x-\u{fffd}", "\u{fffd}1")]);
        assert_eq!(raw, RawHeaders::from_pairs(&[("x-\u{fffd}", "\u{fffd}1")]));
    }

    #[test]
    fn short_or_inconsistent_maps_yield_the_whole_pairs() {
        let bytes = encode(&[(b"a", b"1"), (b"b", b"2")]);
        for cut in 0..bytes.len() {
            let pairs = decode(&bytes[..cut]);
            assert!(pairs.len() <= 2, "{cut}");
        }
        assert_eq!(decode(&bytes[..bytes.len() - 3]).len(), 1);
        assert!(decode(&[]).is_empty());
        assert!(decode(&u32::MAX.to_le_bytes()).is_empty());
        let mut lying = bytes.clone();
        lying[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&lying).is_empty());
    }

    proptest::proptest! {
        /// The one-pass check answers as a check of each field would, also for fields that
        /// cut through a character and for maps cut short.
        #[test]
        fn text_pairs_agree_with_a_check_per_field(
            pairs in proptest::collection::vec(
                (proptest::collection::vec(proptest::sample::select(b"a\xc3\xa9\xff:".to_vec()), 0..6),
                 proptest::collection::vec(proptest::sample::select(b"1\xe2\x82\xac\x80 ".to_vec()), 0..6)),
                0..5),
            cut in 0usize..80,
        ) {
            let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (&n[..], &v[..])).collect();
            let bytes = encode(&pairs);
            let bytes = &bytes[..bytes.len().saturating_sub(cut % 4)];
            let per_field: Vec<_> = iter(bytes)
                .map(|(n, v)| Ok((std::str::from_utf8(n)?, std::str::from_utf8(v)?)))
                .collect();
            let one_pass: Vec<Result<(&str, &str), Utf8Error>> = text_pairs(bytes).collect();
            proptest::prop_assert_eq!(one_pass, per_field);
        }
    }
}
