//! The compact record a filter hands to the shipper: everything seen of one API call, as
//! MessagePack. Kept raw (no JSON, no base64, no header merging) so the filter's per-request work
//! stays small; the shipper turns it into a Moesif event off the request path.
//!
//! The format is rmp-serde's for these types (structs as arrays of their fields, see
//! [`Reader`]). rmp-serde writes it: a hand-written writer saved less than the benchmark's
//! noise in Envoy (README, "Codecs"). [`Reader`] is hand-written: it decodes into a
//! [`RecordRef`] that borrows every string and body from the message, for the event writer
//! that works on it (together they save 2 to 12 µs per call in Envoy against rmp-serde and
//! serde_json). Tests check it against rmp-serde.

use crate::body::{Body, BodyRef};
use crate::pairs::{self, RawHeaders};
use rmp::Marker;
use rmp_serde::decode::Error;
use rmp_serde::encode::Error as EncodeError;

/// One captured API call.
///
/// The field order is the wire format: [`Reader::record`] follows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "codec-crates", derive(serde::Deserialize))]
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
    /// Request headers in arrival order, as the host serialized them (pseudo-headers too:
    /// readers leave them out).
    pub request_headers: RawHeaders,
    pub request_body: Body,
    /// Envoy's `source.address` (the downstream peer), `ip:port`.
    pub source_address: String,
    /// `None` when no response was sent, e.g. the client went away first.
    pub response: Option<Response>,
    /// Envoy's `upstream.address`, `ip:port`, empty when no upstream was used.
    pub upstream_address: String,
    pub route_name: String,
    pub cluster_name: String,
    /// The call came in on an outbound listener (Envoy's `listener_direction`), as an Istio
    /// sidecar's calls to other services do.
    pub outbound: bool,
    /// How many calls this one stands for: 100 / the sample rate it was kept at (1 when every
    /// call is captured).
    pub weight: u32,
    /// The governance rule that answered the call instead of the upstream.
    pub blocked_by: Option<String>,
}

/// The response half of a [`Record`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "codec-crates", derive(serde::Deserialize))]
pub struct Response {
    pub status: u16,
    /// Response headers as the host serialized them (`:status` too: readers leave it out).
    pub headers: RawHeaders,
    pub body: Body,
    /// Response trailers (gRPC sends `grpc-status` there).
    pub trailers: RawHeaders,
}

/// A [`Record`] whose strings and bodies are borrowed, from a decoded message or a `Record`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub start_ns: i64,
    pub duration_ns: i64,
    pub method: &'a str,
    pub scheme: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub request_headers: Vec<(&'a str, &'a str)>,
    pub request_body: BodyRef<'a>,
    pub source_address: &'a str,
    pub response: Option<ResponseRef<'a>>,
    pub upstream_address: &'a str,
    pub route_name: &'a str,
    pub cluster_name: &'a str,
    pub outbound: bool,
    pub weight: u32,
    pub blocked_by: Option<&'a str>,
}

/// The response half of a [`RecordRef`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseRef<'a> {
    pub status: u16,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: BodyRef<'a>,
    pub trailers: Vec<(&'a str, &'a str)>,
}

impl Record {
    #[cfg(any(test, feature = "testing"))]
    /// MessagePack with struct fields as arrays: no field names on the wire.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(out)
    }

    #[cfg(any(test, feature = "testing"))]
    /// The first record in `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Record, Error> {
        RecordRef::decode(bytes).map(|r| r.to_record())
    }

    /// Appends the encoding to `out`: records are self-delimiting, so several can share one
    /// queue message. Fails only for a string or body over 4 GiB, leaving part of it in `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        rmp_serde::encode::write(out, self)
    }

    #[cfg(any(test, feature = "testing"))]
    /// Every record of a message made with [`Record::encode_into`]; stops at the first error.
    pub fn decode_all(bytes: &[u8]) -> impl Iterator<Item = Result<Record, Error>> + '_ {
        RecordRef::decode_all(bytes).map(|r| r.map(|r| r.to_record()))
    }

    /// The same record, borrowed (only the header lists are allocated).
    pub fn view(&self) -> RecordRef<'_> {
        RecordRef {
            start_ns: self.start_ns,
            duration_ns: self.duration_ns,
            method: &self.method,
            scheme: &self.scheme,
            authority: &self.authority,
            path: &self.path,
            request_headers: self.request_headers.regular(),
            request_body: self.request_body.view(),
            source_address: &self.source_address,
            response: self.response.as_ref().map(|r| ResponseRef {
                status: r.status,
                headers: r.headers.regular(),
                body: r.body.view(),
                trailers: r.trailers.regular(),
            }),
            upstream_address: &self.upstream_address,
            route_name: &self.route_name,
            cluster_name: &self.cluster_name,
            outbound: self.outbound,
            weight: self.weight,
            blocked_by: self.blocked_by.as_deref(),
        }
    }
}

impl<'a> RecordRef<'a> {
    /// The first record in `bytes`, borrowing from them.
    pub fn decode(bytes: &'a [u8]) -> Result<RecordRef<'a>, Error> {
        Reader(bytes).record()
    }

    /// Every record of a message made with [`Record::encode_into`]; stops at the first error.
    pub fn decode_all(bytes: &'a [u8]) -> impl Iterator<Item = Result<RecordRef<'a>, Error>> {
        let mut reader = Reader(bytes);
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed || reader.0.is_empty() {
                return None;
            }
            let rec = reader.record();
            failed = rec.is_err();
            Some(rec)
        })
    }

    /// Whether Moesif would take this call's event: it needs a verb and a full URI, host
    /// included. Envoy still logs requests it rejected before routing (malformed request line,
    /// headers too large, bad content-length), with no request headers at all.
    pub fn is_shippable(&self) -> bool {
        let absolute = ["http://", "https://"].iter().any(|s| {
            self.path
                .strip_prefix(s)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        });
        !self.method.is_empty() && (!self.authority.is_empty() || absolute)
    }

    #[cfg(any(test, feature = "testing"))]
    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record {
            start_ns: self.start_ns,
            duration_ns: self.duration_ns,
            method: self.method.to_string(),
            scheme: self.scheme.to_string(),
            authority: self.authority.to_string(),
            path: self.path.to_string(),
            request_headers: RawHeaders::from_pairs(&self.request_headers),
            request_body: self.request_body.to_body(),
            source_address: self.source_address.to_string(),
            response: self.response.as_ref().map(|r| Response {
                status: r.status,
                headers: RawHeaders::from_pairs(&r.headers),
                body: r.body.to_body(),
                trailers: RawHeaders::from_pairs(&r.trailers),
            }),
            upstream_address: self.upstream_address.to_string(),
            route_name: self.route_name.to_string(),
            cluster_name: self.cluster_name.to_string(),
            outbound: self.outbound,
            weight: self.weight,
            blocked_by: self.blocked_by.map(str::to_string),
        }
    }
}

/// Reads exactly what rmp-serde writes for a [`Record`]: structs as arrays of their fields in
/// declaration order, `(name, value)` pairs as 2-arrays, strings as str, bodies as bin, `None`
/// as nil, and enum variants by name (`"Empty"`, `{"Captured": bin}`, `{"Omitted": int}`).
/// Anything else is an error, never a panic. The remaining input is `.0`.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn record(&mut self) -> Result<RecordRef<'a>, Error> {
        self.array_of(16)?;
        // Struct expressions evaluate their fields in the order written: the wire order.
        Ok(RecordRef {
            start_ns: self.int()?,
            duration_ns: self.int()?,
            method: self.str()?,
            scheme: self.str()?,
            authority: self.str()?,
            path: self.str()?,
            request_headers: self.headers()?,
            request_body: self.body()?,
            source_address: self.str()?,
            response: match self.nil()? {
                true => None,
                false => Some(self.response()?),
            },
            upstream_address: self.str()?,
            route_name: self.str()?,
            cluster_name: self.str()?,
            outbound: self.bool()?,
            weight: self.int()?,
            blocked_by: match self.nil()? {
                true => None,
                false => Some(self.str()?),
            },
        })
    }

    fn response(&mut self) -> Result<ResponseRef<'a>, Error> {
        self.array_of(4)?;
        Ok(ResponseRef {
            status: self.int()?,
            headers: self.headers()?,
            body: self.body()?,
            trailers: self.headers()?,
        })
    }

    /// A serialized header map, without its pseudo-headers.
    fn headers(&mut self) -> Result<Vec<(&'a str, &'a str)>, Error> {
        let len = rmp::decode::read_bin_len(&mut self.0)?;
        let mut headers = Vec::new();
        for pair in pairs::text_pairs(self.take(len)?) {
            let (name, value) = pair?;
            if !name.starts_with(':') {
                headers.push((name, value));
            }
        }
        Ok(headers)
    }

    fn body(&mut self) -> Result<BodyRef<'a>, Error> {
        // A unit variant is just its name; the others are a one-entry map {name: value}.
        if !matches!(
            self.peek()?,
            Marker::FixMap(_) | Marker::Map16 | Marker::Map32
        ) {
            return match self.str()? {
                "Empty" => Ok(BodyRef::Empty),
                other => Err(unknown_variant(other)),
            };
        }
        let entries = rmp::decode::read_map_len(&mut self.0)?;
        if entries != 1 {
            return Err(Error::LengthMismatch(entries));
        }
        match self.str()? {
            "Captured" => {
                let len = rmp::decode::read_bin_len(&mut self.0)?;
                Ok(BodyRef::Captured(self.take(len)?))
            }
            "Omitted" => Ok(BodyRef::Omitted(self.int()?)),
            other => Err(unknown_variant(other)),
        }
    }

    fn array_of(&mut self, expected: u32) -> Result<(), Error> {
        match rmp::decode::read_array_len(&mut self.0)? {
            n if n == expected => Ok(()),
            n => Err(Error::LengthMismatch(n)),
        }
    }

    /// Any MessagePack integer that fits in `T`.
    fn int<T: TryFrom<i128>>(&mut self) -> Result<T, Error> {
        let n: i128 = rmp::decode::read_int(&mut self.0)?;
        T::try_from(n).map_err(|_| Error::OutOfRange)
    }

    fn str(&mut self) -> Result<&'a str, Error> {
        let len = rmp::decode::read_str_len(&mut self.0)?;
        Ok(std::str::from_utf8(self.take(len)?)?)
    }

    fn bool(&mut self) -> Result<bool, Error> {
        let b = match self.peek()? {
            Marker::True => true,
            Marker::False => false,
            other => return Err(Error::TypeMismatch(other)),
        };
        self.0 = self.0.get(1..).unwrap_or_default();
        Ok(b)
    }

    /// Consumes a nil if one is next.
    fn nil(&mut self) -> Result<bool, Error> {
        let nil = self.peek()? == Marker::Null;
        if nil {
            self.0 = self.0.get(1..).unwrap_or_default();
        }
        Ok(nil)
    }

    fn peek(&self) -> Result<Marker, Error> {
        self.0.first().map(|&b| Marker::from_u8(b)).ok_or_else(eof)
    }

    fn take(&mut self, len: u32) -> Result<&'a [u8], Error> {
        let (head, rest) = self.0.split_at_checked(len as usize).ok_or_else(eof)?;
        self.0 = rest;
        Ok(head)
    }
}

fn eof() -> Error {
    Error::InvalidDataRead(std::io::ErrorKind::UnexpectedEof.into())
}

fn unknown_variant(name: &str) -> Error {
    Error::Syntax(format!("unknown Body variant {name:?}"))
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
            request_headers: RawHeaders::from_pairs(&[("content-type", "application/json")]),
            request_body: Body::Captured(br#"{"a":1}"#.to_vec()),
            source_address: "10.0.0.1:5555".into(),
            response: Some(Response {
                status: 201,
                headers: RawHeaders::default(),
                body: Body::Omitted(200_000),
                trailers: RawHeaders::from_pairs(&[("grpc-status", "0")]),
            }),
            upstream_address: "127.0.0.1:8080".into(),
            route_name: "r".into(),
            cluster_name: "c".into(),
            outbound: true,
            weight: 2,
            blocked_by: Some("rule-1".into()),
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

    fn int() -> impl proptest::strategy::Strategy<Value = i64> {
        use proptest::prelude::*;
        // Every width boundary of the integer encodings, and their neighbours.
        let edges = [
            0,
            127,
            128,
            255,
            256,
            65_535,
            65_536,
            4_294_967_295,
            4_294_967_296,
        ];
        let edges = edges
            .into_iter()
            .flat_map(|e: i64| [e, -e, -e - 1, e + 1])
            .chain([-32, -33, -128, -129, -32_768, -32_769, i64::MIN, i64::MAX])
            .collect::<Vec<_>>();
        prop_oneof![any::<i64>(), proptest::sample::select(edges)]
    }

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            ".{0,40}",
            (0usize..3, 0usize..3).prop_map(|(len, pad)| "x".repeat([31, 255, 65_535][len] + pad)),
        ]
    }

    fn body() -> impl proptest::strategy::Strategy<Value = Body> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Body::Empty),
            int().prop_map(|n| Body::Omitted(n as u64)),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Body::Captured),
            (0usize..2, 0usize..3).prop_map(|(len, pad)| Body::Captured(vec![
                7;
                [255, 65_535][len]
                    + pad
            ])),
        ]
    }

    /// Regular headers only: readers leave pseudo-headers out.
    fn headers() -> impl proptest::strategy::Strategy<Value = RawHeaders> {
        use proptest::prelude::*;
        proptest::collection::vec(("([^:].{0,7})?", text()), 0..20)
            .prop_map(|pairs| RawHeaders::from_pairs(&pairs))
    }

    #[test]
    fn readers_leave_pseudo_headers_out() {
        let rec = Record {
            request_headers: RawHeaders::from_pairs(&[(":path", "/a"), ("accept", "*/*")]),
            response: Some(Response {
                headers: RawHeaders::from_pairs(&[(":status", "200"), ("x", "1")]),
                ..Response::default()
            }),
            ..Record::default()
        };
        let bytes = rec.encode().unwrap();
        let read = RecordRef::decode(&bytes).unwrap();
        assert_eq!(read.request_headers, vec![("accept", "*/*")]);
        assert_eq!(read.response.map(|r| r.headers), Some(vec![("x", "1")]));
        assert_eq!(read.request_headers, rec.view().request_headers);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn any_record_decodes_back(
            (start_ns, duration_ns, status) in (int(), int(), proptest::prelude::any::<u16>()),
            (method, path, source_address) in (text(), text(), text()),
            (request_headers, request_body) in (headers(), body()),
            response in proptest::option::of((headers(), body(), headers())),
            (outbound, weight) in proptest::prelude::any::<(bool, u32)>(),
            blocked_by in proptest::option::of(text()),
        ) {
            let rec = Record {
                start_ns,
                duration_ns,
                method,
                scheme: "https".into(),
                authority: String::new(),
                path,
                request_headers,
                request_body,
                source_address,
                response: response.map(|(headers, body, trailers)| Response { status, headers, body, trailers }),
                upstream_address: "10.0.0.1:80".into(),
                route_name: "r".into(),
                cluster_name: String::new(),
                outbound,
                weight,
                blocked_by,
            };
            let ours = rec.encode().unwrap();
            proptest::prop_assert_eq!(Record::decode(&ours).unwrap(), rec.clone());
            proptest::prop_assert_eq!(RecordRef::decode(&ours).unwrap(), rec.view());
        }
    }

    #[test]
    fn decoding_matches_rmp_serde_on_truncated_and_corrupted_input() {
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct SerdeRecord {
            start_ns: i64,
            duration_ns: i64,
            method: String,
            scheme: String,
            authority: String,
            path: String,
            #[serde(with = "serde_bytes")]
            request_headers: Vec<u8>,
            request_body: SerdeBody,
            source_address: String,
            response: Option<SerdeResponse>,
            upstream_address: String,
            route_name: String,
            cluster_name: String,
            outbound: bool,
            weight: u32,
            blocked_by: Option<String>,
        }
        #[derive(serde::Deserialize, PartialEq, Debug)]
        struct SerdeResponse {
            status: u16,
            #[serde(with = "serde_bytes")]
            headers: Vec<u8>,
            body: SerdeBody,
            #[serde(with = "serde_bytes")]
            trailers: Vec<u8>,
        }
        #[derive(serde::Deserialize, PartialEq, Debug)]
        enum SerdeBody {
            Empty,
            Captured(#[serde(with = "serde_bytes")] Vec<u8>),
            Omitted(u64),
        }
        let rec = Record {
            start_ns: -5,
            request_headers: RawHeaders::from_pairs(&[("a", "b")]),
            request_body: Body::Captured(vec![1, 2, 3]),
            response: Some(Response {
                status: 200,
                headers: RawHeaders::default(),
                body: Body::Omitted(300),
                trailers: RawHeaders::from_pairs(&[("t", "v")]),
            }),
            outbound: true,
            ..Record::default()
        };
        let bytes = rec.encode().unwrap();
        for cut in 0..bytes.len() {
            let part = &bytes[..cut];
            assert!(
                RecordRef::decode(part).is_err(),
                "accepted a record cut at {cut}"
            );
            assert!(rmp_serde::from_slice::<SerdeRecord>(part).is_err());
        }
        for at in 0..bytes.len() {
            for b in [
                0x00, 0x7f, 0x80, 0x90, 0xa0, 0xc0, 0xc4, 0xcc, 0xd9, 0xdc, 0xff,
            ] {
                let mut bad = bytes.clone();
                bad[at] = b;
                // Whatever rmp-serde accepts and the types allow, the hand-written reader
                // accepts the same way (it may refuse forms the writer never produces).
                if let Ok(ours) = RecordRef::decode(&bad) {
                    let theirs = rmp_serde::from_slice::<SerdeRecord>(&bad).unwrap();
                    assert_eq!(ours.path, theirs.path);
                    assert_eq!(ours.start_ns, theirs.start_ns);
                    let regular = pairs::text_pairs(&theirs.request_headers)
                        .filter_map(Result::ok)
                        .filter(|(n, _)| !n.starts_with(':'))
                        .count();
                    assert_eq!(ours.request_headers.len(), regular);
                }
            }
        }
    }
}
