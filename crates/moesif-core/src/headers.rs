//! Header handling: the Moesif header map, and the client's IP.

use crate::json;
#[cfg(any(test, feature = "testing", feature = "codec-crates"))]
use serde::ser::{Serialize, Serializer};
use std::net::{IpAddr, SocketAddr};

/// The first value of header `name` (any case), trimmed, if not empty. Works on owned and
/// borrowed header lists alike.
pub fn find<'a, S: AsRef<str>>(headers: &'a [(S, S)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref().trim())
        .filter(|v| !v.is_empty())
}

/// A JSON object with lower-case names; repeated headers joined with ", ". The event writer
/// appends it directly; `Serialize` (tests only) gives the same JSON.
pub struct HeaderMap<'a, S = String>(pub &'a [(S, S)]);

impl<S: AsRef<str>> HeaderMap<'_, S> {
    /// Appends the JSON object to `out` with the value of every header named in `masks`
    /// (lower-case) replaced by the mask marker, and each of `extra` added unless a header of
    /// that name is there (the `host` a client sent, which Envoy keeps as `:authority`;
    /// trailers).
    pub(crate) fn write_json_masked<E: AsRef<str>>(
        &self,
        out: &mut Vec<u8>,
        masks: &[String],
        extra: &[(E, E)],
    ) {
        out.push(b'{');
        let mut first = true;
        let mut entry = |name: &str, value: &str| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            json::write_str(out, name);
            out.push(b':');
            let masked = masks.iter().any(|m| m.eq_ignore_ascii_case(name));
            json::write_str(out, if masked { crate::mask::MASKED } else { value });
        };
        let merged = self.merged();
        match &merged {
            None => self
                .0
                .iter()
                .for_each(|(n, v)| entry(n.as_ref(), v.as_ref())),
            Some(merged) => merged.iter().for_each(|(n, v)| entry(n, v)),
        }
        for (i, (name, value)) in extra.iter().enumerate() {
            let (name, value) = (name.as_ref(), value.as_ref());
            let same = |n: &str| n.eq_ignore_ascii_case(name);
            let present = self.0.iter().any(|(n, _)| same(n.as_ref()))
                || extra.iter().take(i).any(|(n, _)| same(n.as_ref()));
            if !present && !name.is_empty() {
                entry(&name.to_ascii_lowercase(), value);
            }
        }
        out.push(b'}');
    }

    /// `None` when the headers can be written as they are: Envoy hands over lower-case, mostly
    /// unique names, so the common case copies nothing. Otherwise the merged list.
    fn merged(&self) -> Option<Vec<(String, String)>> {
        let lower = self
            .0
            .iter()
            .all(|(n, _)| !n.as_ref().bytes().any(|b| b.is_ascii_uppercase()));
        let unique = self.0.iter().enumerate().all(|(i, (n, _))| {
            self.0
                .iter()
                .skip(i + 1)
                .all(|(m, _)| m.as_ref() != n.as_ref())
        });
        if lower && unique {
            return None;
        }
        let mut merged: Vec<(String, String)> = Vec::with_capacity(self.0.len());
        for (name, value) in self.0 {
            let name = name.as_ref().to_ascii_lowercase();
            match merged.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => {
                    v.push_str(", ");
                    v.push_str(value.as_ref());
                }
                None => merged.push((name, value.as_ref().to_owned())),
            }
        }
        Some(merged)
    }
}

#[cfg(any(test, feature = "testing", feature = "codec-crates"))]
impl<S: AsRef<str>> Serialize for HeaderMap<'_, S> {
    fn serialize<Ser: Serializer>(&self, serializer: Ser) -> Result<Ser::Ok, Ser::Error> {
        match self.merged() {
            None => serializer.collect_map(self.0.iter().map(|(n, v)| (n.as_ref(), v.as_ref()))),
            Some(merged) => serializer.collect_map(merged.iter().map(|(n, v)| (n, v))),
        }
    }
}

/// Headers that proxies and CDNs use to carry the original client address, most trusted first.
pub const CLIENT_IP_HEADERS: &[&str] = &[
    "x-client-ip",
    "x-forwarded-for",
    "cf-connecting-ip",
    "fastly-client-ip",
    "true-client-ip",
    "x-real-ip",
    "x-cluster-client-ip",
    "x-forwarded",
    "forwarded-for",
    "forwarded",
];

/// The client's IP: the first valid IP in the forwarding headers, else the peer address.
pub fn client_ip<S: AsRef<str>>(headers: &[(S, S)], peer: &str) -> Option<String> {
    client_ip_addr(headers, peer).map(|ip| ip.to_string())
}

/// [`client_ip`] before it becomes text, for owned or borrowed headers.
pub(crate) fn client_ip_addr<S: AsRef<str>>(headers: &[(S, S)], peer: &str) -> Option<IpAddr> {
    forwarded_ip(headers).or_else(|| parse_address(peer))
}

/// The client's IP as the forwarding headers name it, if one does (then the peer's address
/// is not needed).
pub fn forwarded_ip<S: AsRef<str>>(headers: &[(S, S)]) -> Option<IpAddr> {
    CLIENT_IP_HEADERS
        .iter()
        .filter_map(|h| find(headers, h))
        .flat_map(|v| v.split(','))
        .find_map(parse_forwarded_ip)
}

/// An IP from `ip`, `ip:port`, `[v6]:port`, or a `Forwarded` element like `for="[v6]:port"`.
fn parse_forwarded_ip(item: &str) -> Option<IpAddr> {
    let item = item.trim();
    let item = item
        .split(';')
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            k.trim().eq_ignore_ascii_case("for").then_some(v)
        })
        .unwrap_or(item);
    parse_ip(item.trim().trim_matches('"'))
}

/// An address as Envoy gives it (`source.address`, `upstream.address`: one of each per event),
/// `ip:port` as a rule: that form is tried first, then whatever [`parse_ip`] takes.
pub(crate) fn parse_address(s: &str) -> Option<IpAddr> {
    s.trim()
        .parse::<SocketAddr>()
        .ok()
        .map(|a| a.ip())
        .or_else(|| parse_ip(s))
}

/// An IP from `ip`, `ip:port` or `[v6]:port`.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            s.strip_prefix('[')
                .and_then(|r| r.split(']').next())
                .and_then(|v| v.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn header_map_joins_repeats_and_lowercases() {
        let hs = h(&[("Set-Cookie", "a=1"), ("x-a", "1"), ("set-cookie", "b=2")]);
        let json = serde_json::to_string(&HeaderMap(&hs)).unwrap();
        assert_eq!(json, r#"{"set-cookie":"a=1, b=2","x-a":"1"}"#);
    }

    #[test]
    fn client_ip_prefers_forwarding_headers() {
        let hs = h(&[("x-forwarded-for", "unknown, 203.0.113.7, 10.0.0.1")]);
        assert_eq!(
            client_ip(&hs, "127.0.0.1:4000").as_deref(),
            Some("203.0.113.7")
        );
        let hs = h(&[("forwarded", r#"for="[2001:db8::1]:4711";proto=https"#)]);
        assert_eq!(
            client_ip(&hs, "127.0.0.1:4000").as_deref(),
            Some("2001:db8::1")
        );
        let hs = h(&[("x-real-ip", "198.51.100.2")]);
        assert_eq!(client_ip(&hs, "").as_deref(), Some("198.51.100.2"));
    }

    #[test]
    fn addresses_parse_with_or_without_a_port() {
        let ip = |s: &str| parse_address(s).map(|ip| ip.to_string());
        assert_eq!(ip("127.0.0.1:45678").as_deref(), Some("127.0.0.1"));
        assert_eq!(ip(" 10.0.0.2 ").as_deref(), Some("10.0.0.2"));
        assert_eq!(ip("[2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(
            ip("::1:80").as_deref(),
            Some("::1:80"),
            "an IPv6 address, no port"
        );
        assert_eq!(ip("[fe80::1%eth0]").as_deref(), None);
        assert_eq!(ip("envoy://internal_client_address/"), None);
        assert_eq!(ip(""), None);
        for s in ["1.2.3.4", "1.2.3.4:5", "[::1]:9", "::1", "[::2]", "x"] {
            assert_eq!(parse_address(s), parse_ip(s), "{s}");
        }
    }

    #[test]
    fn client_ip_falls_back_to_peer() {
        let hs = h(&[("x-forwarded-for", "garbage")]);
        assert_eq!(
            client_ip(&hs, "127.0.0.1:4000").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(client_ip::<&str>(&[], "[::1]:4000").as_deref(), Some("::1"));
        assert_eq!(client_ip::<&str>(&[], "").as_deref(), None);
    }
}
