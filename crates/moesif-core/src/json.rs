//! Hand-rolled JSON output for the event writer: strings and numbers appended straight to the
//! batch buffer. Escaping matches `serde_json` byte for byte (tests compare the two), so events
//! look exactly as if `serde_json` had written them, without its per-call overhead.

/// Appends `s` as a JSON string literal.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_contents(out, s);
    out.push(b'"');
}

/// Appends `s` escaped for the inside of a JSON string literal, so several pieces can make up
/// one literal. Like `serde_json`: `"`, `\` and control characters are escaped, the short forms
/// (`\n`, ...) where JSON has them; everything else, DEL and non-ASCII included, is copied.
pub(crate) fn write_str_contents(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Header values, paths and ids almost never need escaping: copy them in one go.
    if !any_needs_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        if !needs_escape(b) {
            out.push(b);
            continue;
        }
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let hex = |nibble: u8| HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]);
                continue;
            }
        };
        out.extend_from_slice(&[b'\\', short]);
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte [`needs_escape`], looking at 8 bytes at a time (this scan runs over every
/// header of every event). The word tests are the classic exact "has a byte less than n" and
/// "has a zero byte" bit tricks.
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let has_less = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH != 0;
    let has_byte = |w: u64, b: u8| has_less(w ^ (ONES * u64::from(b)), 1);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let w = u64::from_ne_bytes(chunk.try_into().unwrap_or_default());
        if has_less(w, 0x20) || has_byte(w, b'"') || has_byte(w, b'\\') {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| needs_escape(b))
}

/// Whether `text` is exactly one JSON value, with JSON whitespace allowed between tokens: the
/// verdict of `serde_json::from_str::<&RawValue>` (tests compare the two), without its
/// per-token overhead. Like serde_json when it skips a value: no nesting limit, and `\u`
/// escapes need four hex digits but are not checked for surrogates.
///
/// The helpers take the position to start at and return the position after what they read,
/// `None` if it is not valid there. They are `#[inline(always)]` because the release profile's
/// `opt-level = "s"` leaves them as calls, which made the whole check a third slower.
pub(crate) fn is_valid(text: &[u8]) -> bool {
    is_valid_at(text).is_some()
}

fn is_valid_at(text: &[u8]) -> Option<()> {
    // The containers around the position, innermost last: `[` or `{`. A stack, not recursion,
    // so deep nesting cannot overflow the call stack.
    let mut open = Vec::new();
    let mut i = 0;
    loop {
        // A value is expected here.
        i = skip_whitespace(text, i);
        i = match *text.get(i)? {
            b'"' => string_end(text, i)?,
            b'-' | b'0'..=b'9' => number_end(text, i)?,
            b't' => word_end(text, i, b"true")?,
            b'f' => word_end(text, i, b"false")?,
            b'n' => word_end(text, i, b"null")?,
            bracket @ (b'[' | b'{') => {
                let close = if bracket == b'[' { b']' } else { b'}' };
                i = skip_whitespace(text, i + 1);
                if text.get(i) == Some(&close) {
                    i + 1
                } else {
                    open.push(bracket);
                    if bracket == b'{' {
                        i = key_end(text, i)?;
                    }
                    continue;
                }
            }
            _ => return None,
        };
        // After a value: close containers until one goes on with a comma.
        loop {
            i = skip_whitespace(text, i);
            let Some(&container) = open.last() else {
                return (i == text.len()).then_some(());
            };
            match (*text.get(i)?, container) {
                (b',', b'[') => {
                    i += 1;
                    break;
                }
                (b',', _) => {
                    i = key_end(text, i + 1)?;
                    break;
                }
                (b']', b'[') | (b'}', b'{') => {
                    open.pop();
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

#[inline(always)]
fn skip_whitespace(text: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = text.get(i) {
        i += 1;
    }
    i
}

#[inline(always)]
fn word_end(text: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    text.get(i..)?.starts_with(word).then_some(i + word.len())
}

#[inline(always)]
fn digits_end(text: &[u8], i: usize) -> usize {
    let digits = text
        .get(i..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    i + digits
}

/// A number: no leading zeros, and a fraction or exponent needs at least one digit.
#[inline(always)]
fn number_end(text: &[u8], mut i: usize) -> Option<usize> {
    if text.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match *text.get(i)? {
        // A digit right after a lone leading zero ("01") is an error, as in serde_json.
        b'0' if text.get(i + 1).is_some_and(u8::is_ascii_digit) => return None,
        b'0' => i + 1,
        b'1'..=b'9' => digits_end(text, i + 1),
        _ => return None,
    };
    if text.get(i) == Some(&b'.') {
        let end = digits_end(text, i + 1);
        if end == i + 1 {
            return None;
        }
        i = end;
    }
    if let Some(b'e' | b'E') = text.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = text.get(i) {
            i += 1;
        }
        let end = digits_end(text, i);
        if end == i {
            return None;
        }
        i = end;
    }
    Some(i)
}

/// A string, quotes included.
#[inline(always)]
fn string_end(text: &[u8], mut i: usize) -> Option<usize> {
    if text.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        // Skip to the closing quote, an escape, or a control character (an error).
        let mut b = *text.get(i)?;
        while !needs_escape(b) {
            i += 1;
            b = *text.get(i)?;
        }
        match b {
            b'"' => return Some(i + 1),
            b'\\' => {
                i = match *text.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i + 2,
                    b'u' => {
                        let hex = text.get(i + 2..i + 6)?;
                        hex.iter().all(u8::is_ascii_hexdigit).then_some(i + 6)?
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
}

/// An object key and its colon.
#[inline(always)]
fn key_end(text: &[u8], i: usize) -> Option<usize> {
    let i = skip_whitespace(text, string_end(text, skip_whitespace(text, i))?);
    (text.get(i) == Some(&b':')).then_some(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn word_scan_finds_every_byte_to_escape_anywhere() {
        for b in 0..=255u8 {
            for len in 1..=17 {
                for at in 0..len {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(
                        any_needs_escape(&bytes),
                        needs_escape(b),
                        "{b} at {at}/{len}"
                    );
                }
            }
        }
        let mixed: Vec<u8> = (0x20..=0xff).filter(|&b| !needs_escape(b)).collect();
        assert!(!any_needs_escape(&mixed));
    }

    #[test]
    fn escaping_matches_serde_json() {
        let every_ascii: String = (0u8..=0x7f).map(char::from).collect();
        for s in [
            "",
            "plain",
            "application/json; charset=utf-8",
            "quote\" back\\slash",
            "tab\tnew\nline\r\u{8}\u{c}\u{1f}\u{0}",
            "héllo wörld ✓ 😀",
            "\u{7f}",
            &every_ascii,
        ] {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn word_scan_agrees_with_the_byte_scan(bytes in proptest::collection::vec(0u8..=255, 0..40)) {
            proptest::prop_assert_eq!(
                any_needs_escape(&bytes),
                bytes.iter().any(|&b| needs_escape(b))
            );
        }
    }

    fn serde_says_valid(text: &str) -> bool {
        serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok()
    }

    #[test]
    fn validator_agrees_with_serde_json_on_edge_cases() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        for text in [
            "",
            " ",
            "0",
            "-0",
            "01",
            "-01",
            "1.",
            "1.5",
            ".5",
            "-",
            "+1",
            "1e",
            "1e+",
            "1E-7",
            "0e5",
            "1.5e3x",
            "12345678901234567890123",
            "-1.0e+00",
            "0.0.0",
            "1 2",
            "00",
            "true",
            "tru",
            "truex",
            "null",
            "nul",
            "false",
            "False",
            r#""""#,
            r#"""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            r#""\u00g9""#,
            r#""\u00e""#,
            r#""\ud800""#,
            r#""\x""#,
            "\"tab\there\"",
            "\"\u{7f}é😀\"",
            "[]",
            "[ ]",
            "[,]",
            "[1,]",
            "[1 2]",
            "[1,2]",
            "{}",
            "{ }",
            r#"{"a":1}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{a:1}"#,
            r#"{"a":}"#,
            r#"{,"a":1}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":[{"b":null}],"c":{}}"#,
            "[}",
            "{]",
            "[[[]]",
            "[]]",
            " \n\t\r[1] \n",
            "\u{a0}1",
            "[1]\u{a0}",
            "1,",
            &deep,
        ] {
            assert_eq!(
                is_valid(text.as_bytes()),
                serde_says_valid(text),
                "{text:?}"
            );
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(".{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn validator_agrees_with_serde_json_on_mutated_json(
            value in json_value(),
            pretty in proptest::prelude::any::<bool>(),
            edits in proptest::collection::vec((0usize..1000, 0usize..3, 0usize..24), 0..3),
        ) {
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let mut bytes = text.into_bytes();
            // Deleting, inserting or replacing single bytes breaks the JSON in every possible way.
            let alphabet = b"[]{}\",:-+.0e5 \tatu\\/\x01";
            for (at, op, with) in edits {
                let at = at % (bytes.len() + 1);
                let b = alphabet[with % alphabet.len()];
                match op {
                    0 if at < bytes.len() => { bytes.remove(at); }
                    1 => bytes.insert(at, b),
                    _ if at < bytes.len() => bytes[at] = b,
                    _ => {}
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                proptest::prop_assert_eq!(is_valid(text.as_bytes()), serde_says_valid(text), "{:?}", text);
            }
        }

        #[test]
        fn validator_agrees_with_serde_json_on_token_soup(text in "[\\[\\]{}\",:0-9eE+.\\- \\ttrufalsn\\\\/ubcdA-F\\x00\\x1f]{0,24}") {
            proptest::prop_assert_eq!(is_valid(text.as_bytes()), serde_says_valid(&text), "{:?}", text);
        }
    }
}
