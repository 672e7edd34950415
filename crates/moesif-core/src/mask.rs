//! Masking: credentials and personal data must not leave the gateway in clear. Header values,
//! query parameter values and JSON body members the configuration names become [`MASKED`].
//!
//! Everything here runs in the shipper, on Envoy's main thread, once per event: one pass over
//! the input, nothing allocated when nothing is masked, and work linear in the input whatever
//! it holds (no recursion, so no nesting can overflow the stack).

use std::borrow::Cow;

/// What a masked value becomes: five asterisks, whatever the value was (its length and type
/// are not kept either). In a query string it is the parameter's value (`token=*****`); in a
/// JSON body it is a JSON string (`"password":"*****"`), whatever the member's value was.
pub const MASKED: &str = "*****";

/// Headers that carry credentials, masked by default (lower case).
pub const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Whether the header `name` is one of `masks`: names are compared ASCII-case-insensitively,
/// so masks may be given in any case. Only `masks` counts: the configuration decides whether
/// [`CREDENTIAL_HEADERS`] are among them.
pub fn is_masked_header(name: &str, masks: &[String]) -> bool {
    masks.iter().any(|m| m.eq_ignore_ascii_case(name))
}

/// `path` (a request path with an optional query, `/a/b?x=1&token=abc&y`, or an absolute URI,
/// `http://h/p?q`) with the value of every query parameter named in `names` replaced by
/// [`MASKED`]. Borrowed when nothing is masked.
///
/// - The query is what follows the first `?`, up to the first `#` (a fragment is kept as is);
///   a `?` after a `#` is part of the fragment, so such a path has no query.
/// - Parameters are separated by `&` or `;`; each separator is kept as it is.
/// - A parameter's name is what precedes its first `=`, percent-decoded (`%74oken` is `token`)
///   and compared exactly. A `+` matches either itself or a space (form encoding). A `%` not
///   followed by two hex digits is taken literally.
/// - A named parameter becomes `name=*****` with its name as written, whether its value was
///   empty or it had no `=` at all. Everything else is copied byte for byte.
pub fn query<'a>(path: &'a str, names: &[String]) -> Cow<'a, str> {
    if names.is_empty() {
        return Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let Some(question) = bytes.iter().position(|&b| b == b'?' || b == b'#') else {
        return Cow::Borrowed(path);
    };
    if bytes.get(question) != Some(&b'?') {
        return Cow::Borrowed(path);
    }
    let end = bytes
        .get(question..)
        .and_then(|q| q.iter().position(|&b| b == b'#'))
        .map_or(bytes.len(), |at| question + at);

    let mut out: Option<String> = None;
    // How much of `path` is in `out` already.
    let mut copied = 0;
    let mut start = question + 1;
    while start <= end {
        let param_end = bytes
            .get(start..end)
            .and_then(|p| p.iter().position(|&b| b == b'&' || b == b';'))
            .map_or(end, |at| start + at);
        let param = bytes.get(start..param_end).unwrap_or_default();
        let eq = param.iter().position(|&b| b == b'=');
        let name = param.get(..eq.unwrap_or(param.len())).unwrap_or_default();
        if !param.is_empty() && names.iter().any(|n| name_matches(name, n.as_bytes())) {
            let out = out.get_or_insert_with(|| String::with_capacity(path.len() + MASKED.len()));
            // The text up to the name's end, and its `=` if it has one.
            let keep = start + name.len() + usize::from(eq.is_some());
            out.push_str(path.get(copied..keep).unwrap_or_default());
            if eq.is_none() {
                out.push('=');
            }
            out.push_str(MASKED);
            copied = param_end;
        }
        start = param_end + 1;
    }
    match out {
        None => Cow::Borrowed(path),
        Some(mut out) => {
            out.push_str(path.get(copied..).unwrap_or_default());
            Cow::Owned(out)
        }
    }
}

/// Whether the query parameter name `raw` (as written) percent-decodes to `target`, reading a
/// `+` as itself or, if that does not match, as a space.
fn name_matches(raw: &[u8], target: &[u8]) -> bool {
    decodes_to(raw, target, false) || (raw.contains(&b'+') && decodes_to(raw, target, true))
}

/// Percent-decodes `raw` on the fly and compares it with `target`, without allocating.
fn decodes_to(raw: &[u8], target: &[u8], plus_is_space: bool) -> bool {
    let mut i = 0;
    let mut t = target.iter();
    while let Some(&b) = raw.get(i) {
        let (byte, len) = match b {
            b'%' => match (hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
                (Some(hi), Some(lo)) => (hi << 4 | lo, 3),
                _ => (b'%', 1),
            },
            b'+' if plus_is_space => (b' ', 1),
            _ => (b, 1),
        };
        if t.next() != Some(&byte) {
            return false;
        }
        i += len;
    }
    t.next().is_none()
}

fn hex(b: Option<&u8>) -> Option<u8> {
    char::from(*b?).to_digit(16).map(|d| d as u8)
}

/// Appends to `out` the JSON value `json` with the value of every object member whose key
/// (unescaped: `"pass\u0077ord"` is `password`) is one of `fields`, compared exactly, replaced
/// by the JSON string `"*****"` ([`MASKED`]): at any depth, whatever the value's type.
/// Everything else is copied byte for byte, whitespace included.
///
/// `json` is expected to be one valid JSON value (as `json::is_valid` accepts). On anything
/// unexpected the rest is copied unchanged from there; it never panics and reads each byte
/// about once (a key with escapes is unescaped into one scratch buffer). The kinds of the open
/// containers are kept as bits, 64 to a word, so nesting of any depth costs no recursion and
/// allocates only beyond 64 levels.
pub fn json_body(json: &str, fields: &[String], out: &mut Vec<u8>) {
    let bytes = json.as_bytes();
    let copied = if fields.is_empty() {
        0
    } else {
        mask_members(bytes, fields, out)
    };
    out.extend_from_slice(bytes.get(copied..).unwrap_or_default());
}

/// Writes `bytes` to `out` up to the end of the last masked value and returns how far it
/// wrote; the caller copies the rest.
fn mask_members(bytes: &[u8], fields: &[String], out: &mut Vec<u8>) -> usize {
    let mut copied = 0;
    let mut kinds = Kinds::default();
    let mut scratch = Vec::new();
    // Whether a string here is an object key (right after `{` or after `,` in an object).
    let mut key_next = false;
    let mut i = 0;
    loop {
        i = skip_whitespace(bytes, i);
        let Some(&b) = bytes.get(i) else {
            return copied;
        };
        match b {
            b'{' | b'[' => {
                kinds.push(b == b'{');
                key_next = b == b'{';
                i += 1;
            }
            b'}' | b']' => {
                if !kinds.pop() {
                    return copied;
                }
                key_next = false;
                i += 1;
            }
            b',' => {
                key_next = kinds.in_object();
                i += 1;
            }
            b'"' if key_next => {
                key_next = false;
                let Some(end) = string_end(bytes, i) else {
                    return copied;
                };
                let key = bytes.get(i + 1..end - 1).unwrap_or_default();
                let masked = key_matches(key, fields, &mut scratch);
                i = skip_whitespace(bytes, end);
                if bytes.get(i) != Some(&b':') {
                    return copied;
                }
                i = skip_whitespace(bytes, i + 1);
                if masked {
                    let Some(value_end) = value_end(bytes, i) else {
                        return copied;
                    };
                    out.extend_from_slice(bytes.get(copied..i).unwrap_or_default());
                    out.push(b'"');
                    out.extend_from_slice(MASKED.as_bytes());
                    out.push(b'"');
                    copied = value_end;
                    i = value_end;
                }
            }
            b'"' => match string_end(bytes, i) {
                Some(end) => i = end,
                None => return copied,
            },
            _ => {
                let end = scalar_end(bytes, i);
                if end == i {
                    return copied;
                }
                i = end;
            }
        }
    }
}

/// The kinds of the open containers, one bit each (1 for an object), innermost in bit 0 of
/// `bits`, of which `used` are in use; a full word moves to `spill` when a 65th level opens.
/// `used` is 0 only when no container is open.
#[derive(Default)]
struct Kinds {
    bits: u64,
    used: u32,
    spill: Vec<u64>,
}

impl Kinds {
    fn push(&mut self, object: bool) {
        if self.used == u64::BITS {
            self.spill.push(self.bits);
            self.bits = 0;
            self.used = 0;
        }
        self.bits = self.bits << 1 | u64::from(object);
        self.used += 1;
    }

    /// Closes the innermost container; false if none is open.
    fn pop(&mut self) -> bool {
        if self.used == 0 {
            return false;
        }
        self.bits >>= 1;
        self.used -= 1;
        if self.used == 0 {
            if let Some(word) = self.spill.pop() {
                self.bits = word;
                self.used = u64::BITS;
            }
        }
        true
    }

    fn in_object(&self) -> bool {
        self.used > 0 && self.bits & 1 == 1
    }
}

fn skip_whitespace(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\t' | b'\r') = bytes.get(i) {
        i += 1;
    }
    i
}

/// The end (after the closing quote) of the string starting at `i` (a `"`).
fn string_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += bytes
            .get(j..)?
            .iter()
            .position(|&b| b == b'"' || b == b'\\')?;
        match bytes.get(j)? {
            b'"' => return Some(j + 1),
            _ => j += 2,
        }
    }
}

/// The end of a number, `true`, `false` or `null` (or of garbage) starting at `i`.
fn scalar_end(bytes: &[u8], i: usize) -> usize {
    let len = bytes
        .get(i..)
        .unwrap_or_default()
        .iter()
        .take_while(|&&b| {
            !matches!(
                b,
                b' ' | b'\n' | b'\t' | b'\r' | b',' | b':' | b'"' | b'[' | b']' | b'{' | b'}'
            )
        })
        .count();
    i + len
}

/// The end of the value starting at `i`, nested containers included.
fn value_end(bytes: &[u8], i: usize) -> Option<usize> {
    match *bytes.get(i)? {
        b'"' => string_end(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match *bytes.get(j)? {
                    b'"' => {
                        j = string_end(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let end = scalar_end(bytes, i);
            (end > i).then_some(end)
        }
    }
}

/// Whether the key `raw` (between its quotes, as written) unescapes to one of `fields`. A key
/// without a backslash is compared as it is; one with escapes is unescaped into `scratch`.
fn key_matches(raw: &[u8], fields: &[String], scratch: &mut Vec<u8>) -> bool {
    if !raw.contains(&b'\\') {
        return fields.iter().any(|f| f.as_bytes() == raw);
    }
    // Escapes only ever shorten a key: a field longer than the raw key cannot match.
    if fields.iter().all(|f| f.len() > raw.len()) {
        return false;
    }
    scratch.clear();
    if unescape(raw, scratch).is_none() {
        return false;
    }
    fields.iter().any(|f| f.as_bytes() == scratch.as_slice())
}

/// Appends the JSON string contents `raw` unescaped (UTF-8) to `out`; `None` for an escape
/// that is not valid JSON (a lone surrogate included).
fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let short = match *raw.get(i + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let first = hex4(raw, i + 2)?;
                let (code, len) = match first {
                    0xd800..=0xdbff => {
                        if raw.get(i + 6..i + 8)? != b"\\u" {
                            return None;
                        }
                        let low = hex4(raw, i + 8)?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return None;
                        }
                        (0x10000 + ((first - 0xd800) << 10) + (low - 0xdc00), 12)
                    }
                    _ => (first, 6),
                };
                let c = char::from_u32(code)?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                i += len;
                continue;
            }
            _ => return None,
        };
        out.push(short);
        i += 2;
    }
    Some(())
}

/// Four hex digits at `i`.
fn hex4(raw: &[u8], i: usize) -> Option<u32> {
    raw.get(i..i + 4)?
        .iter()
        .try_fold(0u32, |n, &b| Some(n << 4 | char::from(b).to_digit(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn masked_query(path: &str, names: &[&str]) -> Cow<'static, str> {
        Cow::Owned(query(path, &strings(names)).into_owned())
    }

    fn mask_json(json: &str, fields: &[&str]) -> String {
        let mut out = b"prefix:".to_vec();
        json_body(json, &strings(fields), &mut out);
        let out = String::from_utf8(out).unwrap();
        out.strip_prefix("prefix:").unwrap().to_string()
    }

    /// The reference: every member named in `fields`, at any depth, becomes "*****".
    fn reference(value: &Value, fields: &[&str]) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if fields.contains(&k.as_str()) {
                            Value::String(MASKED.into())
                        } else {
                            reference(v, fields)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| reference(v, fields)).collect())
            }
            other => other.clone(),
        }
    }

    fn check_json(json: &str, fields: &[&str]) -> String {
        let out = mask_json(json, fields);
        let input: Value = serde_json::from_str(json).unwrap();
        let output: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(output, reference(&input, fields), "{json} -> {out}");
        out
    }

    #[test]
    fn masked_marker_and_defaults() {
        assert_eq!(MASKED, "*****");
        assert!(CREDENTIAL_HEADERS
            .iter()
            .all(|h| *h == h.to_ascii_lowercase()));
    }

    #[test]
    fn header_names_compare_in_any_case() {
        let masks = strings(&["Authorization", "x-api-key"]);
        assert!(is_masked_header("authorization", &masks));
        assert!(is_masked_header("AUTHORIZATION", &masks));
        assert!(is_masked_header("X-Api-Key", &masks));
        assert!(!is_masked_header("x-api-keys", &masks));
        assert!(!is_masked_header("cookie", &masks));
        assert!(!is_masked_header("authorization", &[]));
        let defaults: Vec<String> = CREDENTIAL_HEADERS.iter().map(|h| h.to_string()).collect();
        for h in ["Cookie", "Set-Cookie", "Proxy-Authorization"] {
            assert!(is_masked_header(h, &defaults));
        }
    }

    #[test]
    fn query_values_are_masked() {
        let names = ["token", "key"];
        for (path, expected) in [
            ("/a/b?x=1&token=abc&y", "/a/b?x=1&token=*****&y"),
            ("/a?token=abc", "/a?token=*****"),
            ("/a?token=", "/a?token=*****"),
            ("/a?token", "/a?token=*****"),
            ("/a?y&token&z=1", "/a?y&token=*****&z=1"),
            ("/a?token=a=b&x=1", "/a?token=*****&x=1"),
            ("/a?x=1;token=abc;y=2", "/a?x=1;token=*****;y=2"),
            (
                "/a?token=1&token=2&key=3",
                "/a?token=*****&token=*****&key=*****",
            ),
            ("/a?token=abc#frag?token=x", "/a?token=*****#frag?token=x"),
            ("/a?x=token&y=key", "/a?x=token&y=key"),
            ("http://h/p?token=s3cret&q", "http://h/p?token=*****&q"),
            (
                "https://h:8443/p/q?a=%20&key=k#f",
                "https://h:8443/p/q?a=%20&key=*****#f",
            ),
            ("/a?%74oken=abc", "/a?%74oken=*****"),
            ("/a?%74%6F%6b%65%6e=abc", "/a?%74%6F%6b%65%6e=*****"),
            ("/a?&&token=é&&", "/a?&&token=*****&&"),
            ("/é?ü=1&token=ß", "/é?ü=1&token=*****"),
        ] {
            assert_eq!(masked_query(path, &names), expected, "{path}");
        }
    }

    #[test]
    fn query_borrowed_when_nothing_is_masked() {
        let names = strings(&["token"]);
        for path in [
            "",
            "/",
            "*",
            "/a/b",
            "/a?x=1&y=2",
            "/a?tokens=1&atoken=2&Token=3",
            "/a#x?token=1",
            "/a?",
            "/a?&;",
            "/a?token%=1",
            "/a?%zztoken=1",
            "http://h/p",
        ] {
            assert!(
                matches!(query(path, &names), Cow::Borrowed(p) if p == path),
                "{path}"
            );
        }
        assert!(matches!(query("/a?token=1", &[]), Cow::Borrowed(_)));
    }

    #[test]
    fn query_names_are_percent_decoded_and_compared_exactly() {
        assert_eq!(
            masked_query("/a?api%5Fkey=1", &["api_key"]),
            "/a?api%5Fkey=*****"
        );
        assert_eq!(masked_query("/a?api_key=1", &["API_KEY"]), "/a?api_key=1");
        // `+` is a space in form encoding, or itself.
        assert_eq!(masked_query("/a?my+key=1", &["my key"]), "/a?my+key=*****");
        assert_eq!(masked_query("/a?my+key=1", &["my+key"]), "/a?my+key=*****");
        assert_eq!(masked_query("/a?my%2Bkey=1", &["my key"]), "/a?my%2Bkey=1");
        // A bad escape is literal; a name may decode to bytes that are not UTF-8.
        assert_eq!(masked_query("/a?%zz=1", &["%zz"]), "/a?%zz=*****");
        assert_eq!(
            masked_query("/a?%=1&%4=2", &["%", "%4"]),
            "/a?%=*****&%4=*****"
        );
        assert_eq!(masked_query("/a?%ff=1", &["\u{ff}"]), "/a?%ff=1");
        assert_eq!(masked_query("/a?%c3%bf=1", &["\u{ff}"]), "/a?%c3%bf=*****");
        // An empty name is a name too.
        assert_eq!(masked_query("/a?=1&b=2", &[""]), "/a?=*****&b=2");
        assert_eq!(masked_query("/a?b=2&&", &[""]), "/a?b=2&&");
    }

    #[test]
    fn json_members_are_masked_at_any_depth_whatever_their_type() {
        let fields = ["password", "ssn"];
        let out = check_json(
            r#"{"user":"ann","password":"hunter2","nested":{"ssn":123,"a":[{"password":{"x":[1,2]}},{"ssn":null}]},"list":[["password"]],"ssn":[1,{"b":2}]}"#,
            &fields,
        );
        assert_eq!(
            out,
            r#"{"user":"ann","password":"*****","nested":{"ssn":"*****","a":[{"password":"*****"},{"ssn":"*****"}]},"list":[["password"]],"ssn":"*****"}"#
        );
        for value in [
            "true",
            "false",
            "-1.5e3",
            "\"a\\\"}\"",
            "{}",
            "[]",
            "{\"ssn\":1}",
        ] {
            let json = format!("{{\"password\":{value},\"k\":1}}");
            assert_eq!(mask_json(&json, &fields), r#"{"password":"*****","k":1}"#);
        }
    }

    #[test]
    fn json_whitespace_and_everything_else_is_byte_identical() {
        let json = "\n { \"a\" : [ 1 , 2.50 , \"\\u00e9\" ] ,\r\n\t\"password\"  :\t{ \"x\" : 1 } , \"b\" : \"password\" }\n";
        let out = check_json(json, &["password"]);
        assert_eq!(
            out,
            "\n { \"a\" : [ 1 , 2.50 , \"\\u00e9\" ] ,\r\n\t\"password\"  :\t\"*****\" , \"b\" : \"password\" }\n"
        );
        // Nothing to mask: a copy.
        for fields in [&[][..], &["nope"][..]] {
            assert_eq!(mask_json(json, fields), json);
        }
        for scalar in ["1", "\"password\"", "null", "  [ ]  "] {
            assert_eq!(mask_json(scalar, &["password"]), scalar);
        }
    }

    #[test]
    fn escaped_keys_still_match() {
        let fields = ["password", "é", "😀", "a\"b", "a/b"];
        for key in [
            r#"pass\u0077ord"#,
            r#"\u0070\u0061\u0073\u0073\u0077\u006F\u0072\u0064"#,
            r#"\u00e9"#,
            r#"\ud83d\ude00"#,
            r#"a\"b"#,
            r#"a\/b"#,
        ] {
            let json = format!(r#"{{"{key}":"secret","other":"kept"}}"#);
            let out = check_json(&json, &fields);
            assert_eq!(out, format!(r#"{{"{key}":"*****","other":"kept"}}"#));
        }
        // Values that look like keys, and keys escaped into something else, stay.
        check_json(
            r#"{"x":"password","passwor\u0064x":1,"pass\\word":2}"#,
            &fields,
        );
        assert_eq!(
            mask_json(r#"{"pass\\word":2}"#, &["pass\\word"]),
            r#"{"pass\\word":"*****"}"#
        );
    }

    #[test]
    fn masked_members_in_arrays_of_objects_and_duplicates() {
        let json =
            r#"[{"token":1,"token":2},[{"t":{"token":"x"}}],{"a":{"b":{"c":{"token":[]}}}}]"#;
        let out = check_json(json, &["token"]);
        assert_eq!(
            out,
            r#"[{"token":"*****","token":"*****"},[{"t":{"token":"*****"}}],{"a":{"b":{"c":{"token":"*****"}}}}]"#
        );
    }

    #[test]
    fn deep_nesting_has_no_recursion_and_keeps_track_of_kinds() {
        for depth in [1, 63, 64, 65, 127, 128, 129, 100_000] {
            let mut json = String::new();
            for _ in 0..depth {
                json.push_str("{\"a\":[");
            }
            json.push_str("{\"password\":1,\"b\":2}");
            for _ in 0..depth {
                json.push_str("],\"password\":3}");
            }
            let out = mask_json(&json, &["password"]);
            assert_eq!(
                out,
                json.replace("\"password\":1", "\"password\":\"*****\"")
                    .replace("\"password\":3", "\"password\":\"*****\""),
                "{depth}"
            );
            if depth < 60 {
                check_json(&json, &["password"]);
            }
        }
        // A masked value nested deeply is skipped in one go.
        let deep = format!(
            "{{\"password\":{}1{},\"b\":1}}",
            "[".repeat(50_000),
            "]".repeat(50_000)
        );
        assert_eq!(
            mask_json(&deep, &["password"]),
            r#"{"password":"*****","b":1}"#
        );
    }

    #[test]
    fn invalid_input_never_panics_and_keeps_the_rest() {
        let fields = ["password"];
        for json in [
            "",
            "{",
            "}",
            "]]]",
            "{\"password\"",
            "{\"password\":",
            "{\"password\" 1}",
            "{\"password\":}",
            "{\"password\":\"unterminated",
            "{\"password\":[1,2",
            "{\"a\\",
            "{\"pass\\u00",
            "{\"pass\\ud800\":1}",
            "{\"pass\\x\":1}",
            ":::",
            "{1:2}",
            "[\"password\":1]",
        ] {
            let out = mask_json(json, &fields);
            assert_eq!(out, json, "{json}");
        }
        // Masking done before the error stays done.
        assert_eq!(
            mask_json("{\"password\":1,\"b\":}", &fields),
            "{\"password\":\"*****\",\"b\":}"
        );
    }

    #[test]
    fn kinds_stack_crosses_word_boundaries() {
        let mut kinds = Kinds::default();
        let pattern = |d: usize| d % 3 == 2 || d % 7 == 1;
        for d in 0..300 {
            kinds.push(pattern(d));
            assert_eq!(kinds.in_object(), pattern(d));
        }
        for d in (0..300).rev() {
            assert_eq!(kinds.in_object(), pattern(d), "{d}");
            assert!(kinds.pop());
        }
        assert!(!kinds.in_object());
        assert!(!kinds.pop());
    }

    #[test]
    fn reference_agrees_on_a_realistic_body() {
        let body = json!({
            "user": {"email": "a@b.c", "password": "p", "profile": {"ssn": "1", "age": 3}},
            "items": [{"card": {"number": "4111", "cvv": 123}}, {"card": null}],
            "token": "t", "note": "password ssn card"
        });
        for text in [
            body.to_string(),
            serde_json::to_string_pretty(&body).unwrap(),
        ] {
            check_json(&text, &["password", "ssn", "card", "token"]);
            check_json(&text, &["user", "items"]);
        }
    }
}
