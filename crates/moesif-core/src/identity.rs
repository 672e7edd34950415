//! Who made the call: the user and company ids of an event, found the way Moesif's Kong plugin
//! finds them. A configured header names them outright; otherwise they come from the token in
//! an authorization header: a JWT's claims, or the user name of HTTP Basic credentials.
//!
//! A JWT is decoded WITHOUT checking its signature. This is attribution for analytics, not
//! authentication: the gateway or the upstream decides whether the caller may call, and a
//! forged token only mislabels the caller's own calls.
//!
//! The work is bounded whatever the request holds: a token over [`MAX_TOKEN_LEN`] is ignored
//! without being read, and a JWT payload is decoded once, then only the claims asked for are
//! looked at.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// Longest token, in bytes, that is looked at: 16 KiB (16 384 bytes), counted over the whole
/// header value as captured (scheme and spaces included). A longer value is ignored outright,
/// not even scanned, so a 3 MB header costs nothing. Real JWTs are well under 8 KiB (Envoy's
/// default limit for all request headers together is 60 KiB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Where the user and company ids come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRules {
    /// Request header whose value (trimmed, non-empty) is the user id, before any token.
    pub user_id_header: Option<String>,
    /// Request header whose value (trimmed, non-empty) is the company id, before any token.
    pub company_id_header: Option<String>,
    /// Headers that may carry a token, in order (default ["authorization"]).
    pub authorization_header_names: Vec<String>,
    /// Claim path of the user id in a JWT payload, dot-separated for nesting (default "sub").
    pub authorization_user_id_field: String,
    /// Claim path of the company id in a JWT payload, dot-separated for nesting (default none).
    pub authorization_company_id_field: Option<String>,
}

impl Default for IdentityRules {
    fn default() -> Self {
        IdentityRules {
            user_id_header: None,
            company_id_header: None,
            authorization_header_names: vec!["authorization".to_string()],
            authorization_user_id_field: "sub".to_string(),
            authorization_company_id_field: None,
        }
    }
}

/// The user and company an event is attributed to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Option<String>,
    pub company_id: Option<String>,
}

/// The identity of a request with `headers` (name, value pairs as captured: lower-case names,
/// possibly repeated; names are compared ASCII-case-insensitively).
///
/// Separately for the user and the company, the explicit header (`user_id_header`,
/// `company_id_header`: the first such header with a non-empty trimmed value) wins over the
/// token. The token is the value of the first of `authorization_header_names` present with a
/// non-empty value (later names are not tried, even if that token gives nothing):
/// - `Bearer <jwt>` (scheme in any case, then spaces or tabs) or a bare JWT: three
///   `.`-separated segments of base64 characters, the first two non-empty. The payload (the
///   second) is base64url, with or without padding; the standard alphabet (`+`, `/`) is
///   accepted too. It must be a JSON object. A claim path is first looked up as one top-level
///   claim (`https://example.com/user_id`, as namespaced claims are named), then as
///   `.`-separated names through nested objects (`user.id`). A non-empty string claim is taken
///   as it is, a number claim as its JSON text (`42`, `-1.5e3`); any other value gives nothing.
/// - `Basic <base64(user:password)>`: the user name (before the first `:`, non-empty) is the
///   user id; never the password, never a company. Credentials without a `:` give nothing.
///
/// Anything malformed gives no identity from the token, and never panics.
pub fn identify<S: AsRef<str>>(headers: &[(S, S)], rules: &IdentityRules) -> Identity {
    let header = |name: &Option<String>| {
        name.as_deref()
            .and_then(|name| first_value(headers, name))
            .map(str::to_string)
    };
    let mut identity = Identity {
        user_id: header(&rules.user_id_header),
        company_id: header(&rules.company_id_header),
    };
    let company_field = rules.authorization_company_id_field.as_deref();
    let want_company = identity.company_id.is_none() && company_field.is_some();
    if identity.user_id.is_some() && !want_company {
        return identity;
    }
    let Some(token) = token(headers, &rules.authorization_header_names) else {
        return identity;
    };
    let (user, company) = match token {
        Token::Basic(credentials) => (basic_user(credentials), None),
        Token::Jwt(jwt) => {
            let user_field =
                (identity.user_id.is_none()).then_some(&*rules.authorization_user_id_field);
            let company_field = company_field.filter(|_| want_company);
            jwt_claims(jwt, user_field, company_field).unwrap_or_default()
        }
    };
    identity.user_id = identity.user_id.or(user);
    identity.company_id = identity.company_id.or(company);
    identity
}

/// The first value of header `name` (any case) that is not empty once trimmed, trimmed.
fn first_value<'a, S: AsRef<str>>(headers: &'a [(S, S)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref().trim())
        .find(|v| !v.is_empty())
}

enum Token<'a> {
    /// The base64 credentials after `Basic`.
    Basic(&'a str),
    /// What should be a JWT: after `Bearer`, or the whole value.
    Jwt(&'a str),
}

/// The token of the first of `names` present with a non-empty value; `None` if there is none,
/// or if that value is over [`MAX_TOKEN_LEN`] (then the later names are not tried either).
fn token<'a, S: AsRef<str>>(headers: &'a [(S, S)], names: &[String]) -> Option<Token<'a>> {
    let value = names.iter().find_map(|name| {
        headers
            .iter()
            .filter(|(n, _)| n.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
            // Checked before trimming: an oversized value is not even scanned.
            .find(|v| v.len() > MAX_TOKEN_LEN || !v.trim().is_empty())
    })?;
    if value.len() > MAX_TOKEN_LEN {
        return None;
    }
    let value = value.trim();
    if let Some(jwt) = after_scheme(value, "bearer") {
        Some(Token::Jwt(jwt))
    } else if let Some(credentials) = after_scheme(value, "basic") {
        Some(Token::Basic(credentials))
    } else {
        Some(Token::Jwt(value))
    }
}

/// What follows `scheme` (any case) and at least one space or tab.
fn after_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let head = value.get(..scheme.len())?;
    let rest = value.get(scheme.len()..)?;
    if !head.eq_ignore_ascii_case(scheme) || !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim_start_matches([' ', '\t']))
}

/// Decodes base64 in either alphabet (standard, or URL-safe as JWTs use), with or without
/// padding.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
    let engine = if text.contains(['+', '/']) {
        &STANDARD
    } else {
        &URL_SAFE
    };
    engine.decode(text).ok()
}

/// The user name of Basic credentials.
fn basic_user(credentials: &str) -> Option<String> {
    let decoded = decode_base64(credentials)?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = decoded.get(..colon)?;
    (!user.is_empty()).then(|| String::from_utf8_lossy(user).into_owned())
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'=')
}

/// The claims at `user_field` and `company_field` of the JWT `jwt`; `None` if it is no JWT
/// with a JSON object payload.
fn jwt_claims(
    jwt: &str,
    user_field: Option<&str>,
    company_field: Option<&str>,
) -> Option<(Option<String>, Option<String>)> {
    if user_field.is_none() && company_field.is_none() {
        return None;
    }
    let mut segments = jwt.split('.');
    let (header, payload, signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() || header.is_empty() || payload.is_empty() {
        return None;
    }
    if ![header, payload, signature]
        .iter()
        .all(|s| s.bytes().all(is_base64_char))
    {
        return None;
    }
    let decoded = decode_base64(payload)?;
    let claims: BTreeMap<String, &RawValue> = serde_json::from_slice(&decoded).ok()?;
    let claim = |field: Option<&str>| field.and_then(|f| claim(&claims, f));
    Some((claim(user_field), claim(company_field)))
}

/// The claim at `path`: a top-level claim of that name, else `.`-separated names through
/// nested objects. A non-empty string as it is, a number as its JSON text, else nothing.
fn claim(claims: &BTreeMap<String, &RawValue>, path: &str) -> Option<String> {
    let raw = match claims.get(path) {
        Some(raw) => *raw,
        None => {
            let mut names = path.split('.');
            let mut raw = *claims.get(names.next()?)?;
            for name in names {
                let object: BTreeMap<String, &RawValue> = serde_json::from_str(raw.get()).ok()?;
                raw = *object.get(name)?;
            }
            raw
        }
    };
    let text = raw.get();
    match text.as_bytes().first()? {
        b'"' => serde_json::from_str::<String>(text)
            .ok()
            .filter(|s| !s.is_empty()),
        b'-' | b'0'..=b'9' => Some(text.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use serde_json::json;

    fn jwt(payload: &serde_json::Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
        format!("{header}.{payload}.c2lnbmF0dXJl")
    }

    fn auth(value: &str) -> Vec<(String, String)> {
        vec![("authorization".to_string(), value.to_string())]
    }

    fn user_of(headers: &[(String, String)], rules: &IdentityRules) -> Option<String> {
        identify(headers, rules).user_id
    }

    fn company_rules(field: &str) -> IdentityRules {
        IdentityRules {
            authorization_company_id_field: Some(field.to_string()),
            ..IdentityRules::default()
        }
    }

    fn id(user: Option<&str>, company: Option<&str>) -> Identity {
        Identity {
            user_id: user.map(str::to_string),
            company_id: company.map(str::to_string),
        }
    }

    #[test]
    fn defaults() {
        let rules = IdentityRules::default();
        assert_eq!(rules.authorization_header_names, ["authorization"]);
        assert_eq!(rules.authorization_user_id_field, "sub");
        assert_eq!(rules.user_id_header, None);
        assert_eq!(rules.company_id_header, None);
        assert_eq!(rules.authorization_company_id_field, None);
        assert_eq!(identify::<&str>(&[], &rules), Identity::default());
        assert_eq!(MAX_TOKEN_LEN, 16_384);
    }

    #[test]
    fn jwt_sub_is_the_user() {
        let token = jwt(&json!({"sub": "user-1", "name": "Ann"}));
        let rules = IdentityRules::default();
        assert_eq!(
            identify(&auth(&format!("Bearer {token}")), &rules),
            id(Some("user-1"), None)
        );
    }

    #[test]
    fn explicit_headers_beat_the_token_separately() {
        let token = jwt(&json!({"sub": "from-token", "org": "org-token"}));
        let rules = IdentityRules {
            user_id_header: Some("X-User-Id".into()),
            company_id_header: Some("X-Company-Id".into()),
            ..company_rules("org")
        };
        let mut headers = auth(&format!("Bearer {token}"));
        assert_eq!(
            identify(&headers, &rules),
            id(Some("from-token"), Some("org-token"))
        );
        headers.push(("x-user-id".into(), "  from-header \t".into()));
        assert_eq!(
            identify(&headers, &rules),
            id(Some("from-header"), Some("org-token"))
        );
        headers.push(("x-company-id".into(), "acme".into()));
        assert_eq!(
            identify(&headers, &rules),
            id(Some("from-header"), Some("acme"))
        );
        // An empty or blank explicit header does not count; the first non-empty one does.
        let headers = vec![
            ("x-user-id".to_string(), "   ".to_string()),
            ("X-USER-ID".to_string(), "second".to_string()),
            ("authorization".to_string(), format!("Bearer {token}")),
        ];
        assert_eq!(
            identify(&headers, &rules).user_id.as_deref(),
            Some("second")
        );
        let headers = vec![
            ("x-user-id".to_string(), "".to_string()),
            ("authorization".to_string(), format!("Bearer {token}")),
        ];
        assert_eq!(
            identify(&headers, &rules).user_id.as_deref(),
            Some("from-token")
        );
    }

    #[test]
    fn custom_nested_and_company_claims() {
        let token = jwt(&json!({
            "sub": "s",
            "uid": "custom",
            "user": {"id": "nested", "org": {"id": 77}},
            "https://example.com/user_id": "namespaced",
            "company": "acme"
        }));
        let headers = auth(&format!("Bearer {token}"));
        let rules = |user: &str, company: Option<&str>| IdentityRules {
            authorization_user_id_field: user.into(),
            authorization_company_id_field: company.map(str::to_string),
            ..IdentityRules::default()
        };
        assert_eq!(
            user_of(&headers, &rules("uid", None)),
            Some("custom".into())
        );
        assert_eq!(
            user_of(&headers, &rules("user.id", None)),
            Some("nested".into())
        );
        assert_eq!(
            user_of(&headers, &rules("https://example.com/user_id", None)),
            Some("namespaced".into())
        );
        assert_eq!(
            identify(&headers, &rules("sub", Some("user.org.id"))),
            id(Some("s"), Some("77"))
        );
        assert_eq!(
            identify(&headers, &rules("sub", Some("company"))),
            id(Some("s"), Some("acme"))
        );
        for missing in [
            "nope",
            "user.nope",
            "user.id.x",
            "user.org",
            "",
            ".",
            "user.",
            "sub.x",
        ] {
            assert_eq!(user_of(&headers, &rules(missing, None)), None, "{missing}");
        }
    }

    #[test]
    fn numeric_claims_are_their_json_text() {
        for (value, text) in [
            (json!(42), Some("42")),
            (json!(-7), Some("-7")),
            (json!(18446744073709551615u64), Some("18446744073709551615")),
            (json!(1.5), Some("1.5")),
            (json!(""), None),
            (json!(true), None),
            (json!(null), None),
            (json!([1]), None),
            (json!({"a": 1}), None),
        ] {
            let token = jwt(&json!({ "sub": value }));
            assert_eq!(
                user_of(&auth(&token), &IdentityRules::default()).as_deref(),
                text,
                "{value}"
            );
        }
        // Exactly as written in the payload, beyond what an f64 or u64 holds.
        let payload =
            URL_SAFE_NO_PAD.encode(r#"{"sub":123456789012345678901234567890,"n":-1.50E+3}"#);
        let token = format!("aGVhZGVy.{payload}.");
        let rules = IdentityRules::default();
        assert_eq!(
            user_of(&auth(&token), &rules).as_deref(),
            Some("123456789012345678901234567890")
        );
        let rules = IdentityRules {
            authorization_user_id_field: "n".into(),
            ..rules
        };
        assert_eq!(user_of(&auth(&token), &rules).as_deref(), Some("-1.50E+3"));
    }

    #[test]
    fn escaped_string_claims_are_unescaped() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"s\u0075b":"\u00e9t\u00e9 \"q\""}"#);
        let token = format!("aGVhZGVy.{payload}.sig");
        assert_eq!(
            user_of(&auth(&token), &IdentityRules::default()).as_deref(),
            Some("été \"q\"")
        );
    }

    #[test]
    fn bearer_scheme_in_any_case_with_any_spaces_or_a_bare_token() {
        let token = jwt(&json!({"sub": "u"}));
        for value in [
            format!("Bearer {token}"),
            format!("bearer {token}"),
            format!("BEARER {token}"),
            format!("bEaReR    {token}"),
            format!("Bearer\t {token}  "),
            format!("  Bearer {token}"),
            token.clone(),
            format!("  {token}\t"),
        ] {
            assert_eq!(
                user_of(&auth(&value), &IdentityRules::default()).as_deref(),
                Some("u"),
                "{value}"
            );
        }
        for value in ["Bearer", "Bearer ", "Bearer   ", "Token abc.def.ghi"] {
            assert_eq!(
                user_of(&auth(value), &IdentityRules::default()),
                None,
                "{value}"
            );
        }
        assert_eq!(
            user_of(&auth(&format!("Token {token}")), &IdentityRules::default()),
            None
        );
    }

    #[test]
    fn payload_padding_and_alphabets() {
        // `>>>` in base64 is `Pj4-` (URL-safe) or `Pj4+` (standard); the payload needs padding.
        let payload = br#"{"sub":"u>>>??"}"#;
        let rules = IdentityRules::default();
        for encoded in [
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE.encode(payload),
            STANDARD.encode(payload),
            STANDARD.encode(payload).trim_end_matches('=').to_string(),
        ] {
            let token = format!("eyJhbGciOiJub25lIn0.{encoded}.");
            assert_eq!(
                user_of(&auth(&token), &rules).as_deref(),
                Some("u>>>??"),
                "{encoded}"
            );
        }
        assert!(URL_SAFE.encode(payload).contains('-') && STANDARD.encode(payload).contains('+'));
        assert!(URL_SAFE.encode(payload).ends_with('='));
    }

    #[test]
    fn basic_gives_the_user_name_only() {
        let rules = company_rules("sub");
        let basic = |s: &str| auth(&format!("Basic {}", STANDARD.encode(s)));
        assert_eq!(
            identify(&basic("alice:s3cret:x"), &rules),
            id(Some("alice"), None)
        );
        assert_eq!(user_of(&basic("bob:"), &rules).as_deref(), Some("bob"));
        assert_eq!(user_of(&basic("ünï:pw"), &rules).as_deref(), Some("ünï"));
        assert_eq!(
            user_of(
                &auth(&format!("basic   {}", STANDARD.encode("c:d"))),
                &rules
            )
            .as_deref(),
            Some("c")
        );
        assert_eq!(
            user_of(
                &auth(&format!("BASIC {}", URL_SAFE_NO_PAD.encode("e:f"))),
                &rules
            )
            .as_deref(),
            Some("e")
        );
        for bad in [":password", "no-colon-api-key", ""] {
            assert_eq!(identify(&basic(bad), &rules), Identity::default(), "{bad}");
        }
        assert_eq!(user_of(&auth("Basic !!!"), &rules), None);
        assert_eq!(user_of(&auth("Basic"), &rules), None);
        // The password never shows.
        let id = identify(&basic("u:hunter2"), &rules);
        assert!(!format!("{id:?}").contains("hunter2"));
    }

    #[test]
    fn malformed_tokens_give_nothing() {
        let rules = company_rules("org");
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let good = enc(r#"{"sub":"u","org":"o"}"#);
        for token in [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            format!("h.{good}"),
            format!("h.{good}.s.x"),
            format!("h.{good}.s.x.y"),
            format!(".{good}.s"),
            "h..s".into(),
            format!("h.{good}!.s"),
            format!("h!.{good}.s"),
            format!("h.{good}.s!"),
            format!("h.{}.s", enc("not json")),
            format!("h.{}.s", enc(r#"["sub","u"]"#)),
            format!("h.{}.s", enc(r#""sub""#)),
            format!("h.{}.s", enc(r#"{"sub":"u""#)),
            format!("h.{}.s", enc(r#"{"sub":"u"} x"#)),
            format!("h.{}.s", enc(r#"{"sub":"","org":null}"#)),
            format!("h.{}.s", enc(r#"{"sub":{"id":1},"org":[1]}"#)),
            format!("h.{}.s", enc("\u{0}\u{ff}")),
            format!("h.{}.s", &good[..good.len() - 1]),
            "h.a.s".into(),
            "h.====.s".into(),
            format!("h.{}.s", "[".repeat(2000)),
            format!("h.{}.s", enc(&"[".repeat(5000))),
        ] {
            assert_eq!(
                identify(&auth(&token), &rules),
                Identity::default(),
                "{token}"
            );
            assert_eq!(
                identify(&auth(&format!("Bearer {token}")), &rules),
                Identity::default(),
                "{token}"
            );
        }
        // Sanity: the good payload does identify.
        assert_eq!(
            identify(&auth(&format!("h.{good}.s")), &rules),
            id(Some("u"), Some("o"))
        );
    }

    #[test]
    fn oversized_tokens_are_ignored_without_decoding() {
        let rules = IdentityRules::default();
        // A valid JWT padded to just over the bound.
        let token = jwt(&json!({"sub": "u", "pad": "x".repeat(MAX_TOKEN_LEN)}));
        assert!(token.len() > MAX_TOKEN_LEN);
        assert_eq!(user_of(&auth(&token), &rules), None);
        // Exactly at the bound (with its scheme) it is read.
        let small = jwt(&json!({"sub": "u"}));
        let at_bound = format!(
            "Bearer {small}{}",
            " ".repeat(MAX_TOKEN_LEN - 7 - small.len())
        );
        assert_eq!(at_bound.len(), MAX_TOKEN_LEN);
        assert_eq!(user_of(&auth(&at_bound), &rules).as_deref(), Some("u"));
        let over = format!("{at_bound} ");
        assert_eq!(user_of(&auth(&over), &rules), None);
        // 3 MB: valid-looking, all spaces, and a valid JWT behind 3 MB of spaces. Each costs
        // next to nothing.
        let big = jwt(&json!({"sub": "u", "pad": "x".repeat(3 << 20)}));
        let spaces = " ".repeat(3 << 20);
        let hidden = format!("{spaces}{small}");
        let start = std::time::Instant::now();
        for _ in 0..1000 {
            for value in [&big, &spaces, &hidden] {
                assert_eq!(user_of(&auth(value), &rules), None);
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
        // An oversized first header stops the search: later names are not tried.
        let rules = IdentityRules {
            authorization_header_names: vec!["authorization".into(), "x-token".into()],
            ..IdentityRules::default()
        };
        let mut headers = auth(&big);
        headers.push(("x-token".into(), small.clone()));
        assert_eq!(user_of(&headers, &rules), None);
        // The explicit header still counts.
        let rules = IdentityRules {
            user_id_header: Some("x-user".into()),
            ..rules
        };
        headers.push(("x-user".into(), "explicit".into()));
        assert_eq!(user_of(&headers, &rules).as_deref(), Some("explicit"));
    }

    #[test]
    fn authorization_header_names_in_order() {
        let rules = IdentityRules {
            authorization_header_names: vec!["X-Access-Token".into(), "authorization".into()],
            ..IdentityRules::default()
        };
        let first = jwt(&json!({"sub": "first"}));
        let second = jwt(&json!({"sub": "second"}));
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        // Header order does not matter, the order of the names does.
        let headers = h(&[("authorization", &second), ("x-access-token", &first)]);
        assert_eq!(user_of(&headers, &rules).as_deref(), Some("first"));
        // A blank first one is skipped, as is an absent one.
        let headers = h(&[("authorization", &second), ("x-access-token", "  ")]);
        assert_eq!(user_of(&headers, &rules).as_deref(), Some("second"));
        let headers = h(&[("authorization", &second)]);
        assert_eq!(user_of(&headers, &rules).as_deref(), Some("second"));
        // A present but useless first token: the later names are not tried.
        let headers = h(&[("authorization", &second), ("x-access-token", "opaque")]);
        assert_eq!(user_of(&headers, &rules), None);
        // Repeated: the first non-empty value.
        let headers = h(&[
            ("authorization", ""),
            ("Authorization", &first),
            ("authorization", &second),
        ]);
        assert_eq!(
            user_of(&headers, &IdentityRules::default()).as_deref(),
            Some("first")
        );
        // No names: no token.
        let rules = IdentityRules {
            authorization_header_names: vec![],
            ..IdentityRules::default()
        };
        assert_eq!(user_of(&auth(&first), &rules), None);
    }

    #[test]
    fn borrowed_headers_work_too() {
        let token = jwt(&json!({"sub": "u"}));
        let headers = [("authorization", token.as_str())];
        assert_eq!(
            identify(&headers, &IdentityRules::default())
                .user_id
                .as_deref(),
            Some("u")
        );
    }

    #[test]
    fn hostile_claims_do_not_panic() {
        let rules = IdentityRules {
            authorization_user_id_field: "a.a.a.a.a.a.a.a.a.a".into(),
            ..company_rules("a")
        };
        let deep = format!("{}1{}", "{\"a\":".repeat(2000), "}".repeat(2000));
        let token = format!("h.{}.s", URL_SAFE_NO_PAD.encode(&deep));
        assert!(token.len() < MAX_TOKEN_LEN);
        assert_eq!(identify(&auth(&token), &rules), Identity::default());
        let nested = format!("{}\"id\"{}", "{\"a\":".repeat(10), "}".repeat(10));
        let token = format!("h.{}.s", URL_SAFE_NO_PAD.encode(&nested));
        assert_eq!(identify(&auth(&token), &rules), id(Some("id"), None));
    }
}
