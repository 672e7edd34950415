//! What the host knows about a finished call beyond its headers and bodies (times, addresses,
//! names), read at log time in one host call where the host can list them all at once: Envoy
//! serializes a list (a CEL expression's value) as a map of pairs whose names are the items.
//! One call instead of one per property saves a host crossing and an allocation callback each.

use crate::pairs;

/// The items of the one-call read, in the order the glue's expression lists them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogFacts {
    /// When the request started, ns since the epoch.
    pub start_ns: i64,
    /// How long the call took, ns (0 when the host has no figure, e.g. an aborted stream).
    pub duration_ns: i64,
    /// The peer's `ip:port`.
    pub source_address: String,
    pub route_name: String,
    pub cluster_name: String,
    /// The host's listener direction (Envoy: 0 unspecified, 1 inbound, 2 outbound).
    pub listener_direction: i64,
    /// The answering upstream's `ip:port` (empty when none answered).
    pub upstream_address: String,
}

/// How many items the list holds.
pub const ITEMS: usize = 7;

/// The list in Envoy's CEL (evaluated by its `expr_evaluate`), in the order of [`LogFacts`].
/// An absent property fails the whole evaluation (then the glue reads them one by one), so
/// the two that Envoy's own answers lack (a `direct_response`, a local reply: no cluster, no
/// upstream) are guarded by `has()` and read as "", as a one-by-one read that finds nothing
/// does. The others are left unguarded: each `has()` costs a second lookup, and they are
/// absent only on rare calls (no route matched, a stream aborted before its duration).
pub const EXPRESSION: &str = concat!(
    "[request.time, request.duration, source.address, xds.route_name,",
    " has(xds.cluster_name) ? xds.cluster_name : '',",
    " xds.listener_direction,",
    " has(upstream.address) ? upstream.address : '']",
);

impl LogFacts {
    /// Decodes the host's serialized list. `None` unless it holds exactly [`ITEMS`] items with
    /// 8-byte integers where integers belong: then the caller reads the properties one by one.
    pub fn decode(bytes: &[u8]) -> Option<LogFacts> {
        let mut items = pairs::iter(bytes).map(|(item, _)| item);
        let mut next = || items.next();
        let facts = LogFacts {
            start_ns: i64_le(next()?)?,
            duration_ns: i64_le(next()?)?,
            source_address: pairs::lossy(next()?),
            route_name: pairs::lossy(next()?),
            cluster_name: pairs::lossy(next()?),
            listener_direction: i64_le(next()?)?,
            upstream_address: pairs::lossy(next()?),
        };
        (next().is_none() && pairs::count(bytes) == Some(ITEMS)).then_some(facts)
    }
}

/// An integer as proxy-wasm hosts hand them over: 8 bytes, little-endian.
pub fn i64_le(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&[u8]]) -> Vec<u8> {
        let pairs: Vec<(&[u8], &[u8])> = items.iter().map(|i| (*i, &b""[..])).collect();
        pairs::encode(&pairs)
    }

    fn items() -> Vec<Vec<u8>> {
        vec![
            1_795_959_378_218_724_574i64.to_le_bytes().to_vec(),
            2_046_027i64.to_le_bytes().to_vec(),
            b"127.0.0.1:45834".to_vec(),
            b"api".to_vec(),
            b"sample_upstream".to_vec(),
            2i64.to_le_bytes().to_vec(),
            b"127.0.0.1:40575".to_vec(),
        ]
    }

    fn encoded(items: &[Vec<u8>]) -> Vec<u8> {
        list(&items.iter().map(Vec::as_slice).collect::<Vec<_>>())
    }

    #[test]
    fn a_whole_list_decodes_field_by_field() {
        assert_eq!(
            LogFacts::decode(&encoded(&items())),
            Some(LogFacts {
                start_ns: 1_795_959_378_218_724_574,
                duration_ns: 2_046_027,
                source_address: "127.0.0.1:45834".into(),
                route_name: "api".into(),
                cluster_name: "sample_upstream".into(),
                listener_direction: 2,
                upstream_address: "127.0.0.1:40575".into(),
            })
        );
    }

    /// What Envoy 1.40's `expr_evaluate` returned for the glue's expression, on a call answered
    /// by Envoy itself (`direct_response`: no cluster, no upstream).
    #[test]
    fn envoys_own_answer_decodes() {
        let bytes = [
            7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0, 0, 0, 0, 0, 6,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 32, 35, 128, 243, 182, 135, 236, 24, 0, 0, 52, 108, 5, 0, 0, 0, 0, 0, 0, 0, 49,
            50, 55, 46, 48, 46, 48, 46, 49, 58, 52, 52, 54, 52, 56, 0, 0, 100, 105, 114, 101, 99,
            116, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let facts = LogFacts::decode(&bytes).unwrap();
        assert_eq!(
            (facts.source_address.as_str(), facts.route_name.as_str()),
            ("127.0.0.1:44648", "direct")
        );
        assert_eq!(
            (facts.cluster_name.as_str(), facts.upstream_address.as_str()),
            ("", "")
        );
        assert_eq!((facts.duration_ns, facts.listener_direction), (355_380, 0));
        assert_eq!(facts.start_ns / 1_000_000_000, 1_795_959_571);
    }

    #[test]
    fn empty_items_are_empty_fields_and_bad_bytes_are_replaced() {
        let mut it = items();
        it[3] = Vec::new();
        it[6] = Vec::new();
        it[4] = b"up\xffstream".to_vec();
        let facts = LogFacts::decode(&encoded(&it)).unwrap();
        assert_eq!(
            (facts.route_name.as_str(), facts.cluster_name.as_str()),
            ("", "up\u{fffd}stream")
        );
        assert_eq!(facts.upstream_address, "");
    }

    #[test]
    fn anything_but_the_expected_list_is_refused() {
        let whole = items();
        let mut short = whole.clone();
        short.pop();
        let mut long = whole.clone();
        long.push(b"x".to_vec());
        let mut not_an_integer = whole.clone();
        not_an_integer[1] = b"1234".to_vec();
        for bad in [short, long, not_an_integer] {
            assert_eq!(LogFacts::decode(&encoded(&bad)), None, "{bad:?}");
        }
        let whole = encoded(&whole);
        // Into the last item (the NUL after it is not needed to read it).
        for cut in [0, 3, 4, 20, whole.len() - 2] {
            assert_eq!(LogFacts::decode(&whole[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn the_expression_lists_the_fields_in_their_order() {
        // Each item's property: its first name, whether guarded by `has()` or not.
        let listed: Vec<&str> = EXPRESSION
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|item| {
                let item = item.trim();
                item.strip_prefix("has(")
                    .and_then(|rest| rest.split(')').next())
                    .unwrap_or(item)
            })
            .collect();
        assert_eq!(
            listed,
            [
                "request.time",
                "request.duration",
                "source.address",
                "xds.route_name",
                "xds.cluster_name",
                "xds.listener_direction",
                "upstream.address"
            ]
        );
        assert_eq!(listed.len(), ITEMS);
    }

    #[test]
    fn integers_are_eight_bytes_little_endian() {
        assert_eq!(i64_le(&(-5i64).to_le_bytes()), Some(-5));
        assert_eq!(i64_le(&[1, 0, 0, 0]), None);
        assert_eq!(i64_le(&[0; 9]), None);
    }
}
