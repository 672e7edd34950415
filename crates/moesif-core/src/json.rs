//! Hand-rolled JSON output for the event writer: strings and numbers appended straight to the
//! batch buffer. Escaping matches `serde_json` byte for byte (tests compare the two), so events
//! look exactly as if `serde_json` had written them, without its per-call overhead. And
//! [`is_valid`], which decides whether a captured body can be embedded in the batch as JSON.

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_str_contents(out, s);
    out.push(b'"');
}

/// Appends `s` escaped for the inside of a JSON string literal, so several pieces can make up
/// one literal. Like `serde_json`: `"`, `\` and control characters are escaped, the short forms
/// (`\n`, ...) where JSON has them; everything else, DEL and non-ASCII included, is copied.
pub fn write_str_contents(out: &mut Vec<u8>, s: &str) {
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

const fn needs_escape(b: u8) -> bool {
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

/// Most arrays and objects a body embedded as JSON may nest, counting its own outermost one:
/// `[[1]]` is 2. serde_json's `Value` (the collector's parse of the whole batch) refuses a
/// document nested 128 deep, and a body sits 3 deep in the batch (`[` batch, `{` event,
/// `{` request or response), so the batch would fail from 125 levels inside the body. 64 is
/// half of serde_json's limit: room for the envelope to grow and for a stricter parser
/// downstream, far above what real API bodies nest (a few levels, rarely 20). The kinds of 64
/// open containers also fit in one `u64`, so the check needs no allocation.
pub const MAX_DEPTH: u32 = 64;
// `is_valid` keeps the open containers' kinds as the bits of a `u64`.
const _: () = assert!(MAX_DEPTH <= u64::BITS);

/// Whether `text` (UTF-8, checked by the caller) is exactly one JSON value, with JSON whitespace
/// allowed between tokens, that the parse of the whole batch takes once the body is embedded
/// in it. A body refused here is sent in base64, which is always accepted; one accepted here
/// that the batch parse refused would make the collector refuse the whole batch (400), every
/// other event in it included.
///
/// So this follows serde_json's `Value` parse (tests compare the two), not `RawValue`'s, which
/// skips over a value without looking at what `Value` refuses:
/// - nesting: at most [`MAX_DEPTH`] levels (stricter than `Value`, see there);
/// - `\u` escapes: four hex digits, and a surrogate only as a pair, a high one (`\uD800` to
///   `\uDBFF`) followed at once by `\u` and a low one (`\uDC00` to `\uDFFF`). A lone or reversed
///   surrogate is no character: `Value` refuses it, like strict parsers elsewhere;
/// - numbers: any length and precision, but not one that `Value` makes infinity (`1e400`, an
///   integer of 310 digits, `1.8e308`): "number out of range". Tiny ones become 0 and are
///   accepted, as there. See `parses_to_infinity` for the exact rule at the boundary.
///
/// One pass over the bytes (only a number of 10^308 or more is read twice), without allocating
/// or recursing. The helpers take the position to start at and return the position after what
/// they read, `None` if it is not valid there. They are `#[inline(always)]` because the release
/// profile's `opt-level = "s"` leaves them as calls, which made the whole check a third slower.
pub fn is_valid(text: &[u8]) -> bool {
    is_valid_at(text).is_some()
}

fn is_valid_at(text: &[u8]) -> Option<()> {
    // The containers around the position, one bit each, innermost in bit 0: 1 for an object,
    // 0 for an array. `depth` says how many bits are in use.
    let mut objects = 0u64;
    let mut depth = 0u32;
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
                // An empty one counts too: serde_json counts every `[` and `{`.
                if depth >= MAX_DEPTH {
                    return None;
                }
                let close = if bracket == b'[' { b']' } else { b'}' };
                i = skip_whitespace(text, i + 1);
                if text.get(i) == Some(&close) {
                    i + 1
                } else {
                    objects = objects << 1 | u64::from(bracket == b'{');
                    depth += 1;
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
            if depth == 0 {
                return (i == text.len()).then_some(());
            }
            let in_object = objects & 1 == 1;
            match (*text.get(i)?, in_object) {
                (b',', false) => {
                    i += 1;
                    break;
                }
                (b',', true) => {
                    i = key_end(text, i + 1)?;
                    break;
                }
                (b']', false) | (b'}', true) => {
                    objects >>= 1;
                    depth -= 1;
                    i += 1;
                }
                _ => return None,
            }
        }
    }
}

#[inline(always)]
fn skip_whitespace(text: &[u8], mut i: usize) -> usize {
    // Most tokens follow each other without any: one comparison decides that.
    while let Some(&b) = text.get(i) {
        if b > b' ' || !matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

#[inline(always)]
fn word_end(text: &[u8], i: usize, word: &[u8]) -> Option<usize> {
    text.get(i..)?.starts_with(word).then_some(i + word.len())
}

#[inline(always)]
fn digits_end(text: &[u8], mut i: usize) -> usize {
    while text.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// A number: no leading zeros, a fraction or exponent needs at least one digit, and it must
/// not be out of f64's range.
#[inline(always)]
fn number_end(text: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    if text.get(i) == Some(&b'-') {
        i += 1;
    }
    let integer = i;
    i = match *text.get(i)? {
        // A digit right after a lone leading zero ("01") is an error, as in serde_json.
        b'0' if text.get(i + 1).is_some_and(u8::is_ascii_digit) => return None,
        b'0' => i + 1,
        b'1'..=b'9' => digits_end(text, i + 1),
        _ => return None,
    };
    // The value is below 10^(integer digits + exponent), a lone 0 counting no digit.
    let mut magnitude = if text.get(integer) == Some(&b'0') {
        0
    } else {
        (i - integer) as i64
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
        let negative = text.get(i) == Some(&b'-');
        if let Some(b'+' | b'-') = text.get(i) {
            i += 1;
        }
        let end = digits_end(text, i);
        if end == i {
            return None;
        }
        let exponent = text
            .get(i..end)
            .unwrap_or_default()
            .iter()
            .fold(0i64, |e, d| {
                e.saturating_mul(10).saturating_add(i64::from(d - b'0'))
            });
        magnitude = if negative {
            magnitude.saturating_sub(exponent)
        } else {
            magnitude.saturating_add(exponent)
        };
        i = end;
    }
    // Below 10^308, serde_json's few roundings cannot reach infinity (f64::MAX is 1.797e308).
    // Only a number that may (never one in real bodies) is read again, digit by digit.
    if magnitude > 308 && parses_to_infinity(text.get(start..i)?) {
        return None;
    }
    Some(i)
}

/// Whether serde_json's `Value` parse refuses the JSON number `number` (it becomes infinity).
/// Near `f64::MAX` that depends on how serde_json rounds, so serde_json itself decides: only
/// numbers of 309 digits' magnitude or more get here, which real bodies almost never hold.
#[cold]
#[inline(never)]
fn parses_to_infinity(number: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(number).is_err()
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
        while STOPS_STRING.get(usize::from(b)) == Some(&false) {
            i += 1;
            b = *text.get(i)?;
        }
        match b {
            b'"' => return Some(i + 1),
            b'\\' => {
                i = match *text.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i + 2,
                    b'u' => unicode_escape_end(text, i)?,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
}

/// The bytes that end a run of plain characters in a string: what [`needs_escape`] says, as a
/// table (one load per byte in the scan instead of three comparisons).
// Built at compile time: an index out of bounds would fail the build, not the plugin.
#[allow(clippy::indexing_slicing)]
static STOPS_STRING: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = needs_escape(b as u8);
        b += 1;
    }
    table
};

/// A `\u` escape at `i`: one that is not a surrogate, or a high and a low surrogate in a row.
#[inline(always)]
fn unicode_escape_end(text: &[u8], i: usize) -> Option<usize> {
    match hex4(text, i + 2)? {
        0xd800..=0xdbff => {
            if text.get(i + 6..i + 8)? != b"\\u" {
                return None;
            }
            let low = hex4(text, i + 8)?;
            (0xdc00..=0xdfff).contains(&low).then_some(i + 12)
        }
        0xdc00..=0xdfff => None,
        _ => Some(i + 6),
    }
}

/// Four hex digits at `i`.
#[inline(always)]
fn hex4(text: &[u8], i: usize) -> Option<u16> {
    text.get(i..i + 4)?.iter().try_fold(0u16, |n, &b| {
        let digit = char::from(b).to_digit(16)?;
        Some(n << 4 | digit as u16)
    })
}

/// An object key and its colon.
#[inline(always)]
fn key_end(text: &[u8], i: usize) -> Option<usize> {
    let i = skip_whitespace(text, string_end(text, skip_whitespace(text, i))?);
    (text.get(i) == Some(&b':')).then_some(i + 1)
}

#[cfg(any(test, feature = "testing"))]
/// How deeply arrays and objects nest in `text` (valid JSON): brackets outside strings.
pub fn nesting(text: &str) -> u32 {
    let (mut depth, mut most, mut in_string, mut escaped) = (0u32, 0, false, false);
    for b in text.bytes() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'[' | b'{' => {
                depth += 1;
                most = most.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    most
}

#[cfg(any(test, feature = "testing"))]
/// What `is_valid` promises: serde_json's `Value` takes it, nested at most `MAX_DEPTH`.
pub fn serde_says_valid(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text).is_ok() && nesting(text) <= MAX_DEPTH
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

    /// `text` where a body goes in a batch: 3 levels deep.
    fn in_batch(text: &str) -> String {
        format!(r#"[{{"request":{{"time":"2024-10-30T04:45:42.914Z","body":{text}}}}}]"#)
    }

    fn batch_parses(text: &str) -> bool {
        serde_json::from_str::<serde_json::Value>(&in_batch(text)).is_ok()
    }

    fn nested(depth: usize, open: &str, inner: &str, close: &str) -> String {
        open.repeat(depth) + inner + &close.repeat(depth)
    }

    #[test]
    fn nesting_is_limited_to_max_depth() {
        assert_eq!(MAX_DEPTH, 64);
        for (open, close) in [
            ("[", "]"),
            (r#"{"a":"#, "}"),
            (r#"[{"a":"#, "}]"),
            ("[1,", "]"),
        ] {
            // Counted in containers, whatever they are; an empty one counts too.
            for (inner, levels) in [("1", 0), ("[]", 1), ("{}", 1), (r#"{"b":[]}"#, 2)] {
                let per = open.matches(['[', '{']).count();
                for total in [
                    MAX_DEPTH as usize - 1,
                    MAX_DEPTH as usize,
                    MAX_DEPTH as usize + 1,
                ] {
                    if (total - levels) % per != 0 {
                        continue;
                    }
                    let text = nested((total - levels) / per, open, inner, close);
                    assert_eq!(nesting(&text) as usize, total, "{text}");
                    assert_eq!(
                        is_valid(text.as_bytes()),
                        total <= MAX_DEPTH as usize,
                        "{text}"
                    );
                    assert!(batch_parses(&text), "{text}");
                    // RawValue skips over any nesting.
                    assert!(serde_json::from_str::<&serde_json::value::RawValue>(&text).is_ok());
                }
            }
        }
        // Why 64: embedded in a batch, serde_json's `Value` takes 124 levels and refuses 125.
        assert!(batch_parses(&nested(124, "[", "", "]")));
        assert!(!batch_parses(&nested(125, "[", "", "]")));
        assert!(serde_json::from_str::<serde_json::Value>(&nested(127, "[", "", "]")).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nested(128, "[", "", "]")).is_err());
        // Closed containers give their level back.
        let wide = format!("[{}]", vec![nested(63, "[", "", "]"); 3].join(","));
        assert!(is_valid(wide.as_bytes()));
        assert!(!is_valid(format!("[{wide}]").as_bytes()));
        // Bits of the stack are exact at 64 levels: the kinds of brackets must still match.
        let mixed = nested(32, r#"[{"a":"#, "0", "}]");
        assert!(is_valid(mixed.as_bytes()));
        assert!(!is_valid(mixed.replacen("}]", "]}", 1).as_bytes()));
        // The outermost of 64 levels is still known to be an object when it closes.
        let outer = format!(r#"{{"k":{}}}"#, nested(63, "[", "", "]"));
        assert!(is_valid(outer.as_bytes()), "{outer}");
        assert!(!is_valid(
            format!("{}]", &outer[..outer.len() - 1]).as_bytes()
        ));
    }

    #[test]
    fn surrogates_must_come_in_pairs() {
        for (text, valid) in [
            (r#""\ud83d\ude00""#, true),
            (r#""\uD83D\uDE00""#, true),
            (r#""a\ud800\udc00b""#, true),
            (r#""\udbff\udfff""#, true),
            (r#""\ud7ff \ue000 \uffff \u0000""#, true),
            (r#"{"\ud83d\ude00":"\ud83d\ude00"}"#, true),
            (r#""\ud800""#, false),
            (r#""\udbff""#, false),
            (r#""\udc00""#, false),
            (r#""\udfff""#, false),
            (r#""\ude00\ud83d""#, false),
            (r#""\ud800\ud800""#, false),
            (r#""\ud800\u0041""#, false),
            (r#""\ud800\ue000""#, false),
            (r#""\ud800x""#, false),
            (r#""\ud800 \udc00""#, false),
            (r#""\ud800\n""#, false),
            (r#""\ud800\\""#, false),
            (r#""\ud800\udc0""#, false),
            (r#""\ud800\""#, false),
            (r#""\ud800"#, false),
            (r#"{"\ud800":1}"#, false),
            (r#"["\ud83d\ude00", "\udc00"]"#, false),
        ] {
            assert_eq!(is_valid(text.as_bytes()), valid, "{text}");
            assert_eq!(serde_says_valid(text), valid, "{text}");
            assert_eq!(batch_parses(text), valid, "{text}");
        }
    }

    #[test]
    fn numbers_beyond_f64_are_refused() {
        let digits = |n: usize| "9".repeat(n);
        let ones = |n: usize| "1".to_string() + &"0".repeat(n - 1);
        for (text, valid) in [
            ("1e308".to_string(), true),
            ("-1e308".into(), true),
            ("1.7976931348623157e308".into(), true),
            // Rounds to f64::MAX when correctly rounded, but serde_json's one multiplication
            // rounds it up to infinity: refused, as serde_json refuses it.
            ("1.7976931348623158e308".into(), false),
            ("17976931348623158e292".into(), false),
            ("1e309".into(), false),
            ("-1e309".into(), false),
            ("1e400".into(), false),
            ("1.8e308".into(), false),
            ("2e308".into(), false),
            ("0.1e310".into(), false),
            ("0.01e310".into(), true),
            (ones(309), true),
            (ones(310), false),
            (digits(308), true),
            (digits(309), false),
            (digits(400), false),
            (format!("-{}", digits(400)), false),
            (format!("{}.5", digits(309)), false),
            (format!("{}e-100", digits(400)), true),
            (format!("{}e-91", ones(400)), true),
            (format!("{}e-90", ones(400)), false),
            (format!("0.{}1e310", "0".repeat(5)), true),
            ("1e2147483647".into(), false),
            ("1e2147483648".into(), false),
            ("1e99999999999999999999".into(), false),
            ("1E+400".into(), false),
            ("1e-400".into(), true),
            ("-1e-400".into(), true),
            ("1e-2147483648".into(), true),
            ("1e-99999999999999999999".into(), true),
            ("0e400".into(), true),
            ("0e99999999999999999999".into(), true),
            ("-0.0e99999999999999999999".into(), true),
            ("0.000e2147483648".into(), true),
            ("18446744073709551616.5e288".into(), true),
            ("18446744073709551616.5e289".into(), false),
            ("[1, 2.5, 1e400]".into(), false),
            (r#"{"a":1e400}"#.into(), false),
        ] {
            assert_eq!(is_valid(text.as_bytes()), valid, "{text}");
            assert_eq!(serde_says_valid(&text), valid, "{text}");
            assert_eq!(batch_parses(&text), valid, "{text}");
        }
    }

    /// Around f64::MAX the verdict is serde_json's rounding: every number whose magnitude is
    /// near the fast path's cut (10^308) and the boundary, against serde_json itself.
    #[test]
    fn numbers_at_the_boundary_agree_with_serde_json() {
        let mantissas = [
            "1",
            "9",
            "17976931348623157",
            "17976931348623158",
            "17976931348623159",
            "1797693134862315708145274237317043567981",
            "1797693134862315807937289714053034150799",
            "17976931348623157081452742373170435679810",
            "18446744073709551615",
            "18446744073709551616",
            "184467440737095516159",
            "99999999999999999999999",
        ];
        let mut seen = [0; 3];
        for m in mantissas {
            for point in 0..=m.len() {
                let (int, frac) = m.split_at(point);
                let int = if int.is_empty() { "0" } else { int };
                let base = if frac.is_empty() {
                    int.to_string()
                } else {
                    format!("{int}.{frac}")
                };
                for exp in 280..=320 {
                    for text in [format!("{base}e{exp}"), format!("-{base}E+{exp}")] {
                        let valid = is_valid(text.as_bytes());
                        assert_eq!(valid, serde_says_valid(&text), "{text}");
                        let value = text.parse::<f64>().unwrap().abs();
                        if value >= 1e308 {
                            // Past the fast path: both verdicts, and some refused that a
                            // correctly rounding parse makes finite.
                            seen[usize::from(valid)] += 1;
                            seen[2] += usize::from(!valid && value.is_finite());
                        }
                    }
                }
            }
            // Integers of 300 to 320 digits, no exponent.
            for len in 300..=320 {
                let text = m.to_string() + &"0".repeat(len - m.len().min(len));
                assert_eq!(is_valid(text.as_bytes()), serde_says_valid(&text), "{text}");
                let text = m.to_string() + &"9".repeat(len - m.len().min(len));
                assert_eq!(is_valid(text.as_bytes()), serde_says_valid(&text), "{text}");
            }
        }
        assert!(seen.iter().all(|&n| n > 10), "{seen:?}");
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
