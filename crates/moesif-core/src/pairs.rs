//! Decoding of the proxy-wasm ABI's serialized map of pairs (how the host hands over a header
//! map): `count: u32`, then `count` pairs of `(name_len: u32, value_len: u32)`, then every name
//! and value, each followed by a NUL byte; all integers little-endian.
//!
//! The SDK's own decoder indexes without checks and unwraps `String::from_utf8`, so one header
//! name or value that is not UTF-8 (from a client, an upstream, or a collector's answer) kills
//! the VM. This one never panics: bytes are decoded lossily, and a map that is cut short or
//! inconsistent yields the pairs that were whole.

/// The pairs in `bytes`, names and values decoded lossily (invalid UTF-8 becomes U+FFFD).
pub fn decode(bytes: &[u8]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let Some(count) = u32_at(bytes, 0) else {
        return pairs;
    };
    let Some(mut data) = (count as usize)
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
    else {
        return pairs;
    };
    for i in 0..count as usize {
        let at = 4 + i * 8;
        let (Some(name_len), Some(value_len)) = (u32_at(bytes, at), u32_at(bytes, at + 4)) else {
            break;
        };
        let Some((name, after_name)) = take(bytes, data, name_len as usize) else {
            break;
        };
        let Some((value, after_value)) = take(bytes, after_name, value_len as usize) else {
            break;
        };
        data = after_value;
        pairs.push((lossy(name), lossy(value)));
    }
    pairs
}

/// `len` bytes at `at` and the offset after them and their NUL terminator.
fn take(bytes: &[u8], at: usize, len: usize) -> Option<(&[u8], usize)> {
    let end = at.checked_add(len)?;
    let field = bytes.get(at..end)?;
    Some((field, end.saturating_add(1)))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?))
}

/// Valid UTF-8 is moved, not copied; anything else is replaced character by character.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
}
