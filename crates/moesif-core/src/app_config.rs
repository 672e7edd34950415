//! Moesif's app config (`GET /v1/config`) and the sampling decision made from it.
//!
//! The document (see MOESIF_API.md, "App config"):
//!
//! ```json
//! {"sample_rate": 100, "user_sample_rate": {"<user>": 50}, "company_sample_rate": {"<co>": 10},
//!  "regex_config": [{"conditions": [{"path": "request.route", "value": "^/health"}], "sample_rate": 0}],
//!  "user_rules": {...}, "company_rules": {...}}
//! ```
//!
//! The rate of a call, as Moesif's Python SDK (moesifapi-python, `RegexConfigHelper`) picks it:
//! the first `regex_config` entry whose conditions all match, else the user's rate, else the
//! company's, else `sample_rate`. A condition is a regular expression searched (unanchored)
//! in one fact of the call:
//!
//! | `path` | the text searched |
//! |---|---|
//! | `request.verb` | the method, e.g. `GET` |
//! | `request.route` | the URL path without its query string (`/` when empty) |
//! | `request.ip_address` | the client's IP, when known |
//! | `response.status` | the status in decimal, e.g. `503`; never matches without a response |
//!
//! Match semantics follow the Python SDK exactly: `re.search(value, text)` counts only when the
//! leftmost match is NOT empty (it tests `match.group(0)`), so a pattern such as `x*`, which
//! matches the empty string at the start of any text, matches nothing. A fact that is absent
//! (no IP, an empty method, no response) matches no condition. The regex dialect is
//! regex-lite's (Rust `regex` syntax without Unicode classes), which agrees with Python's `re` on
//! the patterns Moesif's UI writes (literals, anchors, classes, alternation, repetition).
//! One deliberate difference: the SDK keys an entry's conditions by path, so of two conditions
//! on the same path it checks only the last; here every condition of an entry must match.
//!
//! The plugin decides at request headers, before copying anything, but `response.status` is
//! only known at log time: [`AppConfig::sample_rate_at_request`] answers [`Rate::Known`] when the
//! status cannot change the outcome, else [`Rate::DependsOnStatus`], and then
//! [`AppConfig::sample_rate_at_log`] decides. Whenever the first answers `Known(r)`, the second
//! answers `r` for every status.

use regex_lite::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The rate when the document says none: sample everything.
pub const DEFAULT_SAMPLE_RATE: u8 = 100;

/// Largest compiled size (regex-lite's approximate heap bytes) of one condition's regex. A
/// larger one does not compile, and its entry never matches. Moesif's rules are a few hundred
/// bytes; the bound keeps a hostile or broken document from costing megabytes per regex or a
/// slow search per request (search time grows with the compiled size).
pub const MAX_REGEX_SIZE: usize = 1 << 17;

/// What is known of a call's sample rate at request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// The rate, whatever the response status turns out to be.
    Known(u8),
    /// A `regex_config` entry with a `response.status` condition could decide: ask again at
    /// log time with [`AppConfig::sample_rate_at_log`].
    DependsOnStatus,
}

/// The fact of a call a condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Verb,
    Route,
    IpAddress,
    Status,
}

impl Field {
    /// The field named by a condition's `path`; `None` for a path this plugin does not know.
    pub fn from_path(path: &str) -> Option<Field> {
        match path {
            "request.verb" => Some(Field::Verb),
            "request.route" => Some(Field::Route),
            "request.ip_address" => Some(Field::IpAddress),
            "response.status" => Some(Field::Status),
            _ => None,
        }
    }
}

/// Whether conditions match at request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    No,
    Yes,
    /// Every request condition matches; a `response.status` condition decides.
    DependsOnStatus,
}

#[derive(Debug, Clone)]
struct Condition {
    field: Field,
    regex: Regex,
}

/// The conditions of one `regex_config` entry, all of which must match (never empty). The
/// governance rules of `/v1/rules` use the same shape.
#[derive(Debug, Clone)]
pub struct Conditions(Vec<Condition>);

impl Conditions {
    /// Parses `[{"path": ..., "value": ...}, ...]` found at `key` (for messages). `Err` for a
    /// wrong JSON type; `Ok(None)` for conditions that can never match (none at all, a missing
    /// path or value, an unknown path, a regex that does not compile), with the reason pushed
    /// onto `ignored`.
    pub fn parse(
        value: &Value,
        key: &str,
        ignored: &mut Vec<String>,
    ) -> Result<Option<Conditions>, String> {
        let list = match value {
            Value::Null => return Ok(dead(ignored, format!("{key}: missing"))),
            Value::Array(list) => list,
            other => return Err(wrong_type(key, "an array", other)),
        };
        let mut out = Vec::with_capacity(list.len());
        let mut why_dead = list.is_empty().then(|| format!("{key}: empty"));
        for (i, cond) in list.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let Value::Object(cond) = cond else {
                return Err(wrong_type(&key, "an object", cond));
            };
            let path = opt_str(cond, "path", &key)?;
            let pattern = opt_str(cond, "value", &key)?;
            if why_dead.is_some() {
                continue; // still type-checked, not compiled
            }
            let (Some(path), Some(pattern)) = (path, pattern) else {
                why_dead = Some(format!("{key}: needs path and value"));
                continue;
            };
            let Some(field) = Field::from_path(path) else {
                why_dead = Some(format!("{key}.path: unknown path {:?}", short(path)));
                continue;
            };
            match RegexBuilder::new(pattern)
                .size_limit(MAX_REGEX_SIZE)
                .build()
            {
                Ok(regex) => out.push(Condition { field, regex }),
                Err(e) => why_dead = Some(format!("{key}.value: not a valid regex: {e}")),
            }
        }
        Ok(match why_dead {
            Some(why) => dead(ignored, why),
            None => Some(Conditions(out)),
        })
    }

    /// At request headers: `route` without its query string, `ip` the client's.
    pub fn at_request(&self, verb: &str, route: &str, ip: Option<&str>) -> Match {
        let route = route_of(route);
        let mut status = false;
        for c in &self.0 {
            let text = match c.field {
                Field::Verb => Some(verb),
                Field::Route => Some(route),
                Field::IpAddress => ip,
                Field::Status => {
                    status = true;
                    continue;
                }
            };
            if !found(&c.regex, text) {
                return Match::No;
            }
        }
        if status {
            Match::DependsOnStatus
        } else {
            Match::Yes
        }
    }

    /// At log time; `status` 0 means there was no response.
    pub fn at_log(&self, verb: &str, route: &str, ip: Option<&str>, status: u16) -> bool {
        let route = route_of(route);
        let mut status_text = None;
        self.0.iter().all(|c| match c.field {
            Field::Verb => found(&c.regex, Some(verb)),
            Field::Route => found(&c.regex, Some(route)),
            Field::IpAddress => found(&c.regex, ip),
            Field::Status => {
                let text = status_text.get_or_insert_with(|| status.to_string());
                found(&c.regex, (status != 0).then_some(text.as_str()))
            }
        })
    }
}

fn dead<T>(ignored: &mut Vec<String>, why: String) -> Option<T> {
    ignored.push(why);
    None
}

/// Python's `re.search(...).group(0)` is truthy: a non-empty leftmost match. An absent or empty
/// fact matches nothing (the SDK leaves falsy facts out of its mapping).
fn found(regex: &Regex, text: Option<&str>) -> bool {
    text.filter(|t| !t.is_empty())
        .and_then(|t| regex.find(t))
        .is_some_and(|m| !m.as_str().is_empty())
}

/// The route as the SDK extracts it from the URL: the path up to `?`, `/` when empty.
fn route_of(path: &str) -> &str {
    match path.split_once('?').map_or(path, |(p, _)| p) {
        "" => "/",
        p => p,
    }
}

/// One `regex_config` entry that can match.
#[derive(Debug, Clone)]
pub struct RegexRule {
    pub conditions: Conditions,
    /// 0..=100.
    pub sample_rate: u8,
}

/// Moesif's app config. `Default` samples everything.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Percentage of calls kept when nothing more specific applies, 0..=100 (default 100).
    pub sample_rate: u8,
    /// User id -> rate (0..=100). A `BTreeMap`: no hasher to seed from the host in wasm.
    pub user_sample_rate: BTreeMap<String, u8>,
    /// Company id -> rate (0..=100).
    pub company_sample_rate: BTreeMap<String, u8>,
    /// Governance cohorts (entity id -> `[{rules, values}]`), kept as served.
    pub user_rules: Map<String, Value>,
    pub company_rules: Map<String, Value>,
    /// The `regex_config` entries that can match, in order.
    regex_config: Vec<RegexRule>,
    /// Why entries of `regex_config` were left out (they can never match), for the logs.
    ignored: Vec<String>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            sample_rate: DEFAULT_SAMPLE_RATE,
            user_sample_rate: BTreeMap::new(),
            company_sample_rate: BTreeMap::new(),
            user_rules: Map::new(),
            company_rules: Map::new(),
            regex_config: Vec::new(),
            ignored: Vec::new(),
        }
    }
}

/// [`AppConfig::parse`].
pub fn parse(bytes: &[u8]) -> Result<AppConfig, String> {
    AppConfig::parse(bytes)
}

impl AppConfig {
    /// Parses the body of `GET /v1/config`. Tolerant of what Moesif may add or get wrong
    /// without changing types: unknown keys are ignored; `null` is the same as absent; a rate
    /// is any JSON number, rounded to the nearest integer (a positive rate never to 0) and
    /// clamped to 0..=100; a `regex_config` entry that can never match (no conditions, a
    /// condition without path or value, an unknown path, a regex that does not compile or is
    /// over [`MAX_REGEX_SIZE`], no `sample_rate`) is left out and listed in
    /// [`ignored`](Self::ignored). A value of the wrong JSON type anywhere is an error naming
    /// it (e.g. `regex_config[0].sample_rate: expected a number, got a string`), as is a body
    /// that is not a JSON object. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<AppConfig, String> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(root) = root else {
            return Err(wrong_type("(root)", "an object", &root));
        };
        let get = |key: &str| root.get(key).unwrap_or(&Value::Null);
        let mut config = AppConfig {
            sample_rate: rate(get("sample_rate"), "sample_rate")?.unwrap_or(DEFAULT_SAMPLE_RATE),
            user_sample_rate: rates(get("user_sample_rate"), "user_sample_rate")?,
            company_sample_rate: rates(get("company_sample_rate"), "company_sample_rate")?,
            user_rules: object(get("user_rules"), "user_rules")?,
            company_rules: object(get("company_rules"), "company_rules")?,
            ..AppConfig::default()
        };
        let entries = match get("regex_config") {
            Value::Null => &[][..],
            Value::Array(entries) => entries,
            other => return Err(wrong_type("regex_config", "an array", other)),
        };
        for (i, entry) in entries.iter().enumerate() {
            let key = format!("regex_config[{i}]");
            let Value::Object(entry) = entry else {
                return Err(wrong_type(&key, "an object", entry));
            };
            let field = |name: &str| entry.get(name).unwrap_or(&Value::Null);
            let sample_rate = rate(field("sample_rate"), &format!("{key}.sample_rate"))?;
            let conditions = Conditions::parse(
                field("conditions"),
                &format!("{key}.conditions"),
                &mut config.ignored,
            )?;
            match (conditions, sample_rate) {
                (Some(conditions), Some(sample_rate)) => config.regex_config.push(RegexRule {
                    conditions,
                    sample_rate,
                }),
                (Some(_), None) => config.ignored.push(format!("{key}.sample_rate: missing")),
                (None, _) => {}
            }
        }
        Ok(config)
    }

    /// Whether every call is kept, at weight 1, whatever it is: then no decision is needed and
    /// no fact about the call need be gathered. Moesif serves this to apps that do not sample.
    pub fn keeps_everything(&self) -> bool {
        let full = |rate: &u8| *rate >= 100;
        full(&self.sample_rate)
            && self.user_sample_rate.values().all(full)
            && self.company_sample_rate.values().all(full)
            && self.regex_config.iter().all(|r| full(&r.sample_rate))
    }

    /// The `regex_config` entries that can match, in order.
    pub fn regex_rules(&self) -> &[RegexRule] {
        &self.regex_config
    }

    /// Why `regex_config` entries were left out (each can never match).
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// The rate of a call at request headers: `route` is the URL path (a query string is cut
    /// off), `ip` the client's, `user`/`company` the ids found (empty counts as none).
    /// `Known(r)` when the response status cannot change the outcome (also when the entries
    /// it could select all give `r`), else `DependsOnStatus`.
    pub fn sample_rate_at_request(
        &self,
        verb: &str,
        route: &str,
        ip: Option<&str>,
        user: Option<&str>,
        company: Option<&str>,
    ) -> Rate {
        // Bit r set: r is a possible outcome.
        let mut possible: u128 = 0;
        let mut add =
            |rate: u8| possible |= 1u128.checked_shl(u32::from(rate.min(100))).unwrap_or(0);
        let mut settled = false;
        for rule in &self.regex_config {
            match rule.conditions.at_request(verb, route, ip) {
                Match::No => {}
                Match::Yes => {
                    add(rule.sample_rate);
                    settled = true;
                    break;
                }
                Match::DependsOnStatus => add(rule.sample_rate),
            }
        }
        if !settled {
            add(self.fallback_rate(user, company));
        }
        if possible.count_ones() == 1 {
            // Below 128, so it fits (and it is at most 100).
            Rate::Known(possible.trailing_zeros().min(100) as u8)
        } else {
            Rate::DependsOnStatus
        }
    }

    /// The rate of a call at log time; `status` 0 means there was no response (a
    /// `response.status` condition does not match then). Arguments as for
    /// [`sample_rate_at_request`](Self::sample_rate_at_request).
    pub fn sample_rate_at_log(
        &self,
        verb: &str,
        route: &str,
        ip: Option<&str>,
        status: u16,
        user: Option<&str>,
        company: Option<&str>,
    ) -> u8 {
        self.regex_config
            .iter()
            .find(|rule| rule.conditions.at_log(verb, route, ip, status))
            .map_or_else(
                || self.fallback_rate(user, company),
                |rule| rule.sample_rate,
            )
            .min(100)
    }

    /// The user's rate, else the company's, else `sample_rate`.
    fn fallback_rate(&self, user: Option<&str>, company: Option<&str>) -> u8 {
        let lookup = |map: &BTreeMap<String, u8>, id: Option<&str>| {
            id.filter(|id| !id.is_empty())
                .and_then(|id| map.get(id).copied())
        };
        lookup(&self.user_sample_rate, user)
            .or_else(|| lookup(&self.company_sample_rate, company))
            .unwrap_or(self.sample_rate)
            .min(100)
    }
}

/// Whether a call sampled at `rate` percent is kept, `roll` being uniform in `0..100` (taken
/// modulo 100): kept when `roll < rate`, as the SDKs keep when `rate >= random() * 100`. Rate 0
/// keeps nothing, 100 (or more) everything.
pub fn keep(rate: u8, roll: u32) -> bool {
    roll % 100 < u32::from(rate)
}

/// The `weight` a kept event carries: how many calls it stands for, `floor(100 / rate)`; 1 when
/// the rate is 0 or 100 (or more).
pub fn weight(rate: u8) -> u32 {
    match rate {
        0 | 100.. => 1,
        r => 100 / u32::from(r),
    }
}

/// A rate: `None` when absent or null, else the number rounded (half away from zero; a
/// positive rate never becomes 0) and clamped to 0..=100.
fn rate(value: &Value, key: &str) -> Result<Option<u8>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let r = f.round().clamp(0.0, 100.0);
            let r = if f > 0.0 { r.max(1.0) } else { r };
            // Clamped to 0..=100 above; NaN (not from JSON) would become 0.
            Ok(Some(r as u8))
        }
        other => Err(wrong_type(key, "a number", other)),
    }
}

/// A map of id -> rate; null members are left out.
fn rates(value: &Value, key: &str) -> Result<BTreeMap<String, u8>, String> {
    let mut out = BTreeMap::new();
    for (id, v) in object_ref(value, key)?.into_iter().flatten() {
        if let Some(r) = rate(v, &format!("{key}.{}", short(id)))? {
            out.insert(id.clone(), r);
        }
    }
    Ok(out)
}

fn object(value: &Value, key: &str) -> Result<Map<String, Value>, String> {
    Ok(object_ref(value, key)?.cloned().unwrap_or_default())
}

fn object_ref<'a>(value: &'a Value, key: &str) -> Result<Option<&'a Map<String, Value>>, String> {
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        other => Err(wrong_type(key, "an object", other)),
    }
}

/// A string member, `None` when absent or null.
fn opt_str<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(&format!("{key}.{name}"), "a string", other)),
    }
}

/// What kind of JSON value `value` is, for messages (also the governance rules').
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn wrong_type(key: &str, expected: &str, got: &Value) -> String {
    format!("{key}: expected {expected}, got {}", type_name(got))
}

/// At most 64 characters of a served string, for messages.
pub(crate) fn short(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> AppConfig {
        AppConfig::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn keeps_everything_only_when_every_possible_rate_is_100() {
        assert!(AppConfig::default().keeps_everything());
        assert!(cfg(r#"{"sample_rate":100,"user_rules":{"u":[]}}"#).keeps_everything());
        assert!(!cfg(r#"{"sample_rate":50}"#).keeps_everything());
        assert!(!cfg(r#"{"user_sample_rate":{"u":10}}"#).keeps_everything());
        assert!(!cfg(r#"{"company_sample_rate":{"c":0}}"#).keeps_everything());
        let regex = r#"{"regex_config":[{"conditions":[{"path":"request.route","value":"^/h"}],"sample_rate":0}]}"#;
        assert!(!cfg(regex).keeps_everything());
    }

    fn err(json: &str) -> String {
        AppConfig::parse(json.as_bytes()).unwrap_err()
    }

    /// The rate at log time, checked against the request-time answer when that is known.
    fn at(c: &AppConfig, verb: &str, route: &str, ip: Option<&str>, status: u16) -> u8 {
        let log = c.sample_rate_at_log(verb, route, ip, status, None, None);
        if let Rate::Known(r) = c.sample_rate_at_request(verb, route, ip, None, None) {
            assert_eq!(r, log, "{verb} {route} {ip:?} {status}");
        }
        log
    }

    const EXAMPLE: &str = r#"{"sample_rate": 100, "user_sample_rate": {"u1": 50},
        "company_sample_rate": {"c1": 20},
        "regex_config": [{"conditions": [{"path": "request.route", "value": "^/health"}], "sample_rate": 0}],
        "user_rules": {"u1": [{"rules": "r1", "values": {"0": "gold"}}]}, "company_rules": {}}"#;

    #[test]
    fn default_samples_everything() {
        let c = AppConfig::default();
        assert_eq!(
            c.sample_rate_at_request("GET", "/", None, Some("u"), Some("c")),
            Rate::Known(100)
        );
        assert_eq!(c.sample_rate_at_log("GET", "/", None, 500, None, None), 100);
        let c = cfg("{}");
        assert_eq!(c.sample_rate, 100);
        assert!(c.regex_rules().is_empty() && c.ignored().is_empty());
    }

    #[test]
    fn the_documented_example_parses() {
        let c = cfg(EXAMPLE);
        assert_eq!(c.sample_rate, 100);
        assert_eq!(c.user_sample_rate.get("u1"), Some(&50));
        assert_eq!(c.company_sample_rate.get("c1"), Some(&20));
        assert_eq!(c.regex_rules().len(), 1);
        assert_eq!(c.user_rules["u1"][0]["rules"], "r1");
        assert!(c.company_rules.is_empty());
        let req =
            |route, user, company| c.sample_rate_at_request("GET", route, None, user, company);
        assert_eq!(req("/health/live", Some("u1"), None), Rate::Known(0));
        assert_eq!(req("/items", Some("u1"), Some("c1")), Rate::Known(50));
        assert_eq!(req("/items", Some("u2"), Some("c1")), Rate::Known(20));
        assert_eq!(req("/items", None, Some("c2")), Rate::Known(100));
        assert_eq!(req("/v1/health", None, None), Rate::Known(100), "^ anchors");
    }

    #[test]
    fn precedence_is_regex_then_user_then_company_then_default() {
        let c = cfg(r#"{"sample_rate": 40, "user_sample_rate": {"u": 30, "": 1},
            "company_sample_rate": {"c": 20, "": 2},
            "regex_config": [{"conditions": [{"path": "request.verb", "value": "POST"}], "sample_rate": 10}]}"#);
        let log = |verb, user, company| c.sample_rate_at_log(verb, "/", None, 200, user, company);
        assert_eq!(log("POST", Some("u"), Some("c")), 10);
        assert_eq!(log("GET", Some("u"), Some("c")), 30);
        assert_eq!(log("GET", Some("x"), Some("c")), 20);
        assert_eq!(log("GET", Some("x"), Some("y")), 40);
        assert_eq!(log("GET", None, None), 40);
        assert_eq!(log("GET", Some(""), Some("")), 40, "an empty id is no id");
    }

    #[test]
    fn conditions_and_entries_or_first_match_wins() {
        let c = cfg(r#"{"sample_rate": 90, "regex_config": [
            {"conditions": [{"path": "request.verb", "value": "GET"},
                            {"path": "request.route", "value": "^/a"}], "sample_rate": 1},
            {"conditions": [{"path": "request.route", "value": "^/a"}], "sample_rate": 2},
            {"conditions": [{"path": "request.ip_address", "value": "^10\\."}], "sample_rate": 3},
            {"conditions": [{"path": "request.verb", "value": "GET"}], "sample_rate": 4}]}"#);
        assert_eq!(at(&c, "GET", "/a/b", Some("10.0.0.1"), 200), 1);
        assert_eq!(at(&c, "POST", "/a/b", Some("10.0.0.1"), 200), 2);
        assert_eq!(at(&c, "POST", "/b", Some("10.0.0.1"), 200), 3);
        assert_eq!(at(&c, "GET", "/b", Some("192.168.0.1"), 200), 4);
        assert_eq!(
            at(&c, "GET", "/b", None, 200),
            4,
            "no IP matches no IP condition"
        );
        assert_eq!(at(&c, "PUT", "/b", None, 200), 90);
    }

    #[test]
    fn search_is_unanchored_and_needs_a_non_empty_match() {
        let c = cfg(r#"{"sample_rate": 50, "regex_config": [
            {"conditions": [{"path": "request.route", "value": "users"}], "sample_rate": 1},
            {"conditions": [{"path": "request.route", "value": "x*"}], "sample_rate": 2},
            {"conditions": [{"path": "request.verb", "value": ""}], "sample_rate": 3}]}"#);
        assert_eq!(at(&c, "GET", "/api/users/42", None, 200), 1);
        assert_eq!(at(&c, "GET", "/USERS", None, 200), 50, "case-sensitive");
        // Python: re.search("x*", "/axe") matches "" at 0, which is falsy.
        assert_eq!(at(&c, "GET", "/axe", None, 200), 50);
        assert_eq!(at(&c, "GET", "xx", None, 200), 2);
    }

    #[test]
    fn route_is_the_path_without_query() {
        let c = cfg(r#"{"sample_rate": 50, "regex_config": [
            {"conditions": [{"path": "request.route", "value": "^/items$"}], "sample_rate": 1},
            {"conditions": [{"path": "request.route", "value": "^/$"}], "sample_rate": 2},
            {"conditions": [{"path": "request.route", "value": "page"}], "sample_rate": 3}]}"#);
        assert_eq!(at(&c, "GET", "/items?page=2", None, 200), 1);
        assert_eq!(at(&c, "GET", "", None, 200), 2);
        assert_eq!(at(&c, "GET", "?page=1", None, 200), 2);
        assert_eq!(at(&c, "GET", "/other?page=1", None, 200), 50);
    }

    #[test]
    fn status_conditions_are_decided_at_log_time() {
        let c = cfg(
            r#"{"sample_rate": 10, "user_sample_rate": {"vip": 100}, "regex_config": [
            {"conditions": [{"path": "response.status", "value": "^5"},
                            {"path": "request.route", "value": "^/api"}], "sample_rate": 100},
            {"conditions": [{"path": "request.route", "value": "^/health"}], "sample_rate": 0}]}"#,
        );
        let req = |route, user| c.sample_rate_at_request("GET", route, None, user, None);
        assert_eq!(req("/api/x", None), Rate::DependsOnStatus);
        assert_eq!(
            req("/health", None),
            Rate::Known(0),
            "the status entry fails on route"
        );
        assert_eq!(req("/other", None), Rate::Known(10));
        assert_eq!(
            req("/api/x", Some("vip")),
            Rate::Known(100),
            "every possible outcome is 100"
        );
        let log = |status| c.sample_rate_at_log("GET", "/api/x", None, status, None, None);
        assert_eq!(log(503), 100);
        assert_eq!(log(200), 10);
        assert_eq!(log(0), 10, "no response matches no status condition");
    }

    #[test]
    fn a_status_entry_before_a_matching_entry_still_depends() {
        let c = cfg(r#"{"regex_config": [
            {"conditions": [{"path": "response.status", "value": "404"}], "sample_rate": 0},
            {"conditions": [{"path": "request.verb", "value": "GET"}], "sample_rate": 50}]}"#);
        assert_eq!(
            c.sample_rate_at_request("GET", "/", None, None, None),
            Rate::DependsOnStatus
        );
        assert_eq!(at(&c, "GET", "/", None, 404), 0);
        assert_eq!(at(&c, "GET", "/", None, 200), 50);
        assert_eq!(at(&c, "POST", "/", None, 200), 100);
    }

    #[test]
    fn entries_that_can_never_match_are_left_out() {
        let c = cfg(r#"{"sample_rate": 50, "regex_config": [
            {"conditions": [{"path": "request.route", "value": "(unclosed"}], "sample_rate": 1},
            {"conditions": [{"path": "request.headers.x", "value": "a"}], "sample_rate": 2},
            {"conditions": [], "sample_rate": 3},
            {"sample_rate": 4},
            {"conditions": [{"path": "request.route"}], "sample_rate": 5},
            {"conditions": [{"path": "request.route", "value": "/"}]},
            {"conditions": [{"path": "request.route", "value": "a{1000}{1000}"}], "sample_rate": 6},
            {"conditions": [{"path": "request.route", "value": "/"}], "sample_rate": 7}]}"#);
        assert_eq!(c.regex_rules().len(), 1);
        assert_eq!(c.ignored().len(), 7, "{:?}", c.ignored());
        assert!(
            c.ignored()[0].starts_with("regex_config[0].conditions[0].value: not a valid regex")
        );
        assert!(c.ignored()[1].contains("unknown path"), "{:?}", c.ignored());
        assert_eq!(c.ignored()[5], "regex_config[5].sample_rate: missing");
        assert_eq!(at(&c, "GET", "/x", None, 200), 7);
    }

    #[test]
    fn rates_are_rounded_and_clamped() {
        let c = cfg(
            r#"{"sample_rate": 150, "user_sample_rate": {"a": -5, "b": 12.5, "c": 0.2,
            "d": 1e300, "e": 18446744073709551616, "f": -0.0, "g": null, "h": 99.4}}"#,
        );
        assert_eq!(c.sample_rate, 100);
        let u = |id: &str| c.user_sample_rate.get(id).copied();
        assert_eq!(
            [
                u("a"),
                u("b"),
                u("c"),
                u("d"),
                u("e"),
                u("f"),
                u("g"),
                u("h")
            ],
            [
                Some(0),
                Some(13),
                Some(1),
                Some(100),
                Some(100),
                Some(0),
                None,
                Some(99)
            ]
        );
        assert_eq!(cfg(r#"{"sample_rate": null}"#).sample_rate, 100);
        assert_eq!(cfg(r#"{"sample_rate": -1e300}"#).sample_rate, 0);
    }

    #[test]
    fn wrong_types_are_errors_naming_the_value() {
        assert!(err("{").starts_with("not valid JSON"));
        assert_eq!(err("[]"), "(root): expected an object, got an array");
        assert_eq!(
            err(r#"{"sample_rate": "50"}"#),
            "sample_rate: expected a number, got a string"
        );
        assert_eq!(
            err(r#"{"user_sample_rate": [1]}"#),
            "user_sample_rate: expected an object, got an array"
        );
        assert_eq!(
            err(r#"{"company_sample_rate": {"c": true}}"#),
            "company_sample_rate.c: expected a number, got a boolean"
        );
        assert_eq!(
            err(r#"{"regex_config": {}}"#),
            "regex_config: expected an array, got an object"
        );
        assert_eq!(
            err(r#"{"regex_config": [1]}"#),
            "regex_config[0]: expected an object, got a number"
        );
        assert_eq!(
            err(r#"{"regex_config": [{"conditions": "x", "sample_rate": 1}]}"#),
            "regex_config[0].conditions: expected an array, got a string"
        );
        assert_eq!(
            err(r#"{"regex_config": [{"conditions": [[]], "sample_rate": 1}]}"#),
            "regex_config[0].conditions[0]: expected an object, got an array"
        );
        assert_eq!(
            err(r#"{"regex_config": [{"conditions": [{"path": 1, "value": "a"}]}]}"#),
            "regex_config[0].conditions[0].path: expected a string, got a number"
        );
        // Type errors are found after a condition that already made the entry dead.
        assert_eq!(
            err(
                r#"{"regex_config": [{"conditions": [{"path": "nope", "value": "a"},
                {"path": "request.verb", "value": 5}], "sample_rate": 1}]}"#
            ),
            "regex_config[0].conditions[1].value: expected a string, got a number"
        );
        assert_eq!(
            err(r#"{"regex_config": [{"conditions": [], "sample_rate": "1"}]}"#),
            "regex_config[0].sample_rate: expected a number, got a string"
        );
        assert_eq!(
            err(r#"{"user_rules": []}"#),
            "user_rules: expected an object, got an array"
        );
        assert_eq!(
            err(r#"{"company_rules": 1}"#),
            "company_rules: expected an object, got a number"
        );
        let long = "x".repeat(100);
        let e = err(&format!(r#"{{"user_sample_rate": {{"{long}": "1"}}}}"#));
        assert!(e.len() < 120, "{e}");
    }

    #[test]
    fn unknown_keys_and_nulls_are_ignored() {
        let c = cfg(
            r#"{"org_id": "x", "sample_rate": 30, "user_sample_rate": null,
            "regex_config": null, "user_rules": null,
            "regex_config_v2": [1], "company_sample_rate": {"c": 5, "d": null}}"#,
        );
        assert_eq!(c.sample_rate, 30);
        assert!(c.user_sample_rate.is_empty() && c.user_rules.is_empty());
        assert_eq!(c.company_sample_rate.len(), 1);
        let c = cfg(
            r#"{"regex_config": [{"conditions": [{"path": "request.verb", "value": "GET",
            "extra": 1}], "sample_rate": 5, "name": "x"}]}"#,
        );
        assert_eq!(at(&c, "GET", "/", None, 200), 5);
    }

    #[test]
    fn keep_and_weight() {
        assert!((0..100).all(|roll| !keep(0, roll)));
        assert!((0..100).all(|roll| keep(100, roll)));
        assert_eq!((0..100).filter(|&roll| keep(50, roll)).count(), 50);
        assert_eq!((0..100).filter(|&roll| keep(7, roll)).count(), 7);
        assert!(keep(1, 0) && !keep(1, 1));
        assert!(keep(1, 100), "the roll is taken modulo 100");
        assert!(keep(200, u32::MAX));
        for (rate, w) in [
            (0, 1),
            (100, 1),
            (50, 2),
            (30, 3),
            (33, 3),
            (1, 100),
            (99, 1),
            (200, 1),
        ] {
            assert_eq!(weight(rate), w, "rate {rate}");
        }
    }

    #[test]
    fn status_text_is_decimal() {
        let c = cfg(r#"{"regex_config": [
            {"conditions": [{"path": "response.status", "value": "^(4|5)\\d\\d$"}], "sample_rate": 7}]}"#);
        assert_eq!(at(&c, "GET", "/", None, 404), 7);
        assert_eq!(at(&c, "GET", "/", None, 599), 7);
        assert_eq!(at(&c, "GET", "/", None, 200), 100);
        assert_eq!(at(&c, "GET", "/", None, 4040), 100);
    }
}
