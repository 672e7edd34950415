//! Moesif's governance rules (`GET /v1/rules`) and what they do to a call, decided at request
//! headers: block it with a canned response, or add headers to its response.
//!
//! The document (see MOESIF_API.md, "Governance rules") is a JSON array of rules:
//!
//! ```json
//! [{"_id": "r1", "name": "Quota", "type": "user", "block": true,
//!   "applied_to": "matching", "applied_to_unidentified": false,
//!   "regex_config": [{"conditions": [{"path": "request.route", "value": "^/api"}]}],
//!   "variables": [{"name": "0", "path": "user_id"}],
//!   "response": {"status": 429, "headers": {"X-Reason": "quota {{0}}"},
//!                "body": {"error": "over quota, plan {{0}}"}}}]
//! ```
//!
//! Cohort membership comes from the app config ([`crate::app_config::AppConfig::user_rules`] /
//! `company_rules`: entity id -> `[{"rules": <rule _id>, "values": {<name>: <value>}}]`),
//! passed in as [`Cohorts`].
//!
//! # Which rules apply to a call
//!
//! - `regex`: when its `regex_config` matches the call.
//! - `user`: the call's user is *in the cohort* when `user_rules[user]` has an entry whose
//!   `rules` is the rule's `_id`. With `applied_to: "matching"` (the default) the rule applies to
//!   users in the cohort; with `"not_matching"` to identified users NOT in it. A call without a
//!   user (none, or empty) gets the rule only when `applied_to_unidentified` is true, whatever
//!   `applied_to` says. Its `regex_config` must match too.
//! - `company`: likewise, with the company id and `company_rules`.
//!
//! This is what Kong's plugin (`moesif_gov.lua`, `governance_helpers.lua`) and moesif-nodejs
//! (`governanceRulesManager.js`) do.
//!
//! `regex_config` is matched exactly as the app config's (see [`crate::app_config`]: the same
//! [`Conditions`]): entries OR, the conditions of an entry AND, each an unanchored regex search
//! that needs a non-empty match, on `request.verb`, `request.route` (the path without its query
//! string) and `request.ip_address`. A `regex_config` that is absent, null or `[]` matches every
//! call. An entry that can never match (no conditions, as in Kong, where an empty entry
//! matches nothing; an unknown path such as `request.body.operationName` or a header, which
//! this plugin cannot see at request headers; a regex that does not compile) is left out and
//! noted in [`Rules::ignored`]; a rule whose entries all can never match never applies and is
//! skipped. A `response.status` condition never matches: there is no response yet (Kong's
//! access phase has no status either). Moesif's own agents differ in the dialect (Kong uses
//! Lua patterns, Node JavaScript regexes); this plugin uses one dialect for both documents.
//!
//! # What applies
//!
//! Rules are considered user rules first, then company rules, then regex rules, each group in
//! the order the array lists them. The first applicable rule with `block: true` answers the call
//! ([`Decision::block`]): its `response.status`, its `response.headers` and its `response.body`,
//! and only its headers. Otherwise every applicable non-blocking rule adds its
//! `response.headers` to the call's response ([`Decision::add_headers`]), in that order; a
//! header already added (compared case-insensitively) is not replaced by a later rule's.
//! Where Moesif's agents disagree or are loose this plugin chose: Kong adds no header unless it
//! blocks and then merges every applicable rule's headers; Node merges them all, block or not;
//! neither keeps the array's order within a group (Kong also puts a group's rules with
//! `applied_to_unidentified` after those without).
//!
//! # Templates
//!
//! `{{name}}` in a header value or the body is replaced by the `values[name]` of the cohort
//! entry that put the call's user (company) in the rule's cohort, else by `UNKNOWN`: always for
//! regex rules and for calls that got a rule through `not_matching` or
//! `applied_to_unidentified`. `variables` (`[{name, path}]`) is not needed for this: Moesif keys
//! `values` by the variable's name (`"0"`), and `path` only says where Moesif took the value
//! from; both Kong and Node look up the name as written. (They replace only the declared names
//! and leave an undeclared placeholder as it is; here every placeholder is filled.) A name is 1
//! to 128 characters other than `{`, `}`, `"`, `\` and control characters, taken as written
//! (no trimming). A string value is used as it is, a number or boolean as its JSON text, an
//! array or object as its compact JSON text, null as `UNKNOWN`.
//!
//! The body: absent or null is an empty body. A string is sent as its text (as Kong's
//! `kong.response.exit` and Node's `res.send` send a string), placeholders replaced verbatim.
//! Anything else is serialized as compact JSON (object members in name order) and the
//! placeholders in that text are replaced by the value escaped for a JSON string, so the body
//! stays valid JSON (in serialized JSON a placeholder can only sit inside a string); such a
//! block also gets `content-type: application/json; charset=utf-8` unless the rule sets a
//! content type, as Kong's and Node's do. In a header value, control characters other than tab
//! are removed from the values put in (a value cannot split the header).
//!
//! # Parsing and bounds
//!
//! [`Rules::parse`] is tolerant: a rule that is malformed (not an object, no `_id`, an unknown
//! `type` or `applied_to`, a value of the wrong JSON type, a blocking rule without a `status`
//! in 100..=599, an invalid header name or value, too large a response) is skipped and
//! reported in [`Rules::ignored`], as is a `_id` already seen. A document that is not a JSON
//! array is an error. Everything is compiled at parse: [`Rules::decide`] allocates nothing when
//! no rule applies. Header names are lower-cased. The work is bounded:
//! - at most [`MAX_RULES`] (1000) rules are read; the rest of the array is ignored (reported);
//! - a body is at most [`MAX_BODY`] (64 KiB) after templating: a rule whose body is larger even
//!   with every placeholder `UNKNOWN` is skipped, and when the values would make it larger the
//!   body is sent with every placeholder `UNKNOWN`;
//! - a header value likewise at most [`MAX_HEADER_VALUE`] (8 KiB), at most [`MAX_HEADERS`] (64)
//!   headers a rule; framing and hop-by-hop headers (`content-length`, `transfer-encoding`,
//!   `connection`, ...), which only the proxy may set, are left out (noted).

use crate::app_config::{short, type_name, wrong_type, Conditions, Match};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeSet;

/// Most rules read from the document; later ones are ignored (and reported).
pub const MAX_RULES: usize = 1000;
/// Largest body of a blocking response, in bytes, after templating.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest header value of a rule, in bytes, after templating.
pub const MAX_HEADER_VALUE: usize = 8 * 1024;
/// Most headers one rule may set.
pub const MAX_HEADERS: usize = 64;
/// What a placeholder without a value becomes.
pub const UNKNOWN: &str = "UNKNOWN";

/// The content type of a block with a JSON body, unless the rule sets one (as Kong's).
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// Longest placeholder name, in bytes.
const MAX_NAME: usize = 128;

/// Headers a rule may not set: the proxy frames the response.
pub const FORBIDDEN_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What is known of a call at request headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Call<'a> {
    pub verb: &'a str,
    /// The URL path; a query string is not matched.
    pub route: &'a str,
    pub ip: Option<&'a str>,
    /// The user id; empty counts as none.
    pub user: Option<&'a str>,
    /// The company id; empty counts as none.
    pub company: Option<&'a str>,
}

/// Cohort membership from the app config: `user_rules` / `company_rules` (entity id ->
/// `[{"rules": <rule _id>, "values": {<name>: <value>}}]`). Anything of another shape puts the
/// entity in no cohort.
#[derive(Debug, Clone, Copy)]
pub struct Cohorts<'a> {
    pub user_rules: &'a Map<String, Value>,
    pub company_rules: &'a Map<String, Value>,
}

/// What governance does to a call.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// Answer the call with this instead of forwarding it.
    pub block: Option<Block>,
    /// Headers to add to the response (empty when blocked), lower-case names, each once.
    pub add_headers: Vec<(String, String)>,
}

/// The response of a blocking rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    /// The rule's `_id`, for the event's `blocked_by`.
    pub rule_id: String,
    /// 100..=599.
    pub status: u16,
    /// Lower-case names, each once.
    pub headers: Vec<(String, String)>,
    /// At most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    // In order of precedence.
    User,
    Company,
    Regex,
}

/// How values are put into a template's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Inside JSON strings: escaped.
    Json,
    /// A header value: control characters other than tab removed.
    Header,
    /// A text body: as they are.
    Raw,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Var(String),
}

/// A text with placeholders, and its bound.
#[derive(Debug, Clone)]
struct Template {
    parts: Vec<Part>,
    escape: Escape,
    cap: usize,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    kind: Kind,
    block: bool,
    not_matching: bool,
    unidentified: bool,
    /// `None`: every call. Else any of these matches (never empty).
    regex: Option<Vec<Conditions>>,
    /// 100..=599 for a blocking rule, else 0 (unused).
    status: u16,
    /// Lower-case names, each once.
    headers: Vec<(String, Template)>,
    /// A blocking rule's body (empty parts for none).
    body: Template,
    /// Whether the blocking response gets `content-type: application/json`.
    json_content_type: bool,
}

/// The governance rules, compiled. `Default` has none.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Blocking rules, in order of precedence.
    blocking: Vec<Rule>,
    /// Non-blocking rules that set headers, in order of precedence.
    annotating: Vec<Rule>,
    /// Rules kept, including non-blocking ones without headers.
    len: usize,
    ignored: Vec<String>,
}

impl Rules {
    /// Parses the body of `GET /v1/rules` (see the module documentation). Tolerant: a malformed
    /// rule is skipped and reported in [`ignored`](Self::ignored); `Err` only for a body that
    /// is not a JSON array. Never panics.
    pub fn parse(bytes: &[u8]) -> Result<Rules, String> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Array(list) = root else {
            return Err(format!(
                "(root): expected an array, got {}",
                type_name(&root)
            ));
        };
        let mut rules = Rules::default();
        let mut ids = BTreeSet::new();
        let mut kept = Vec::new();
        for (i, value) in list.iter().enumerate() {
            if i >= MAX_RULES {
                rules.ignored.push(format!(
                    "rules[{MAX_RULES}..]: {} rules over the limit of {MAX_RULES} ignored",
                    list.len().saturating_sub(MAX_RULES)
                ));
                break;
            }
            let label = label(i, value);
            let mut notes = Vec::new();
            let rule = compile(value, &mut notes);
            rules
                .ignored
                .extend(notes.into_iter().map(|n| format!("{label}: {n}")));
            match rule {
                Ok(rule) if ids.contains(rule.id.as_str()) => {
                    rules
                        .ignored
                        .push(format!("{label} skipped: _id seen before"));
                }
                Ok(rule) => {
                    ids.insert(rule.id.clone());
                    kept.push(rule);
                }
                Err(why) => rules.ignored.push(format!("{label} skipped: {why}")),
            }
        }
        rules.len = kept.len();
        // Stable: the array's order within each kind.
        kept.sort_by_key(|r| r.kind);
        for rule in kept {
            if rule.block {
                rules.blocking.push(rule);
            } else if !rule.headers.is_empty() {
                rules.annotating.push(rule);
            }
        }
        Ok(rules)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rules kept (not skipped).
    pub fn len(&self) -> usize {
        self.len
    }

    /// What was left out and why, for the logs: skipped rules, and `regex_config` entries and
    /// headers that were dropped from rules that were kept.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// What governance does to a call, from what is known at request headers (see the module
    /// documentation). Allocates nothing when no rule applies.
    pub fn decide(&self, call: &Call<'_>, cohorts: &Cohorts<'_>) -> Decision {
        if self.blocking.is_empty() && self.annotating.is_empty() {
            return Decision::default();
        }
        let facts = Facts::new(call, cohorts);
        for rule in &self.blocking {
            if let Some(values) = facts.applies(rule) {
                return Decision {
                    block: Some(rule.block_response(values)),
                    add_headers: Vec::new(),
                };
            }
        }
        let mut add_headers: Vec<(String, String)> = Vec::new();
        for rule in &self.annotating {
            let Some(values) = facts.applies(rule) else {
                continue;
            };
            for (name, template) in &rule.headers {
                if !add_headers.iter().any(|(n, _)| n == name) {
                    add_headers.push((name.clone(), template.render_string(values)));
                }
            }
        }
        Decision {
            block: None,
            add_headers,
        }
    }
}

/// One call's facts, looked up once.
struct Facts<'a> {
    call: &'a Call<'a>,
    user: Option<&'a [Value]>,
    company: Option<&'a [Value]>,
}

/// The `values` a rule's templates are filled from.
type Values<'a> = Option<&'a Map<String, Value>>;

impl<'a> Facts<'a> {
    fn new(call: &'a Call<'a>, cohorts: &Cohorts<'a>) -> Facts<'a> {
        /// `None` for no id; else the id's cohort entries (empty when none).
        fn entries<'a>(id: Option<&str>, map: &'a Map<String, Value>) -> Option<&'a [Value]> {
            let id = id.filter(|id| !id.is_empty())?;
            Some(match map.get(id) {
                Some(Value::Array(list)) => list.as_slice(),
                _ => &[],
            })
        }
        Facts {
            call,
            user: entries(call.user, cohorts.user_rules),
            company: entries(call.company, cohorts.company_rules),
        }
    }

    /// `Some(values)` when `rule` applies to the call.
    fn applies(&self, rule: &Rule) -> Option<Values<'a>> {
        let values = match rule.kind {
            Kind::Regex => None,
            Kind::User => membership(rule, self.user)?,
            Kind::Company => membership(rule, self.company)?,
        };
        let matches = match &rule.regex {
            None => true,
            Some(entries) => entries
                .iter()
                .any(|c| c.at_request(self.call.verb, self.call.route, self.call.ip) == Match::Yes),
        };
        matches.then_some(values)
    }
}

/// Whether an entity rule applies to an entity with cohort `entries` (`None`: unidentified),
/// and the values of its cohort entry.
fn membership<'a>(rule: &Rule, entries: Option<&'a [Value]>) -> Option<Values<'a>> {
    let Some(entries) = entries else {
        return rule.unidentified.then_some(None);
    };
    let entry = entries
        .iter()
        .find(|e| e.get("rules").and_then(Value::as_str) == Some(rule.id.as_str()));
    match (entry, rule.not_matching) {
        (Some(entry), false) => Some(entry.get("values").and_then(Value::as_object)),
        (None, true) => Some(None),
        _ => None,
    }
}

impl Rule {
    fn block_response(&self, values: Values<'_>) -> Block {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(name, template)| (name.clone(), template.render_string(values)))
            .collect();
        if self.json_content_type {
            headers.push(("content-type".into(), JSON_CONTENT_TYPE.into()));
        }
        Block {
            rule_id: self.id.clone(),
            status: self.status,
            headers,
            body: self.body.render(values),
        }
    }
}

impl Template {
    /// Splits `text` at its placeholders.
    fn compile(text: &str, escape: Escape, cap: usize) -> Template {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let (before, from_open) = rest.split_at(open);
            literal.push_str(before);
            let after = from_open.get(2..).unwrap_or("");
            match placeholder(after) {
                Some((name, tail)) => {
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(name.to_string()));
                    rest = tail;
                }
                None => {
                    // Not a placeholder: keep one `{` and look again from the next.
                    literal.push('{');
                    rest = from_open.get(1..).unwrap_or("");
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Template { parts, escape, cap }
    }

    fn empty() -> Template {
        Template {
            parts: Vec::new(),
            escape: Escape::Raw,
            cap: 0,
        }
    }

    /// The text with `values` put in; with every placeholder `UNKNOWN` when that would be over
    /// the cap (which [`compile`] checked that this is not).
    fn render(&self, values: Values<'_>) -> Vec<u8> {
        self.fill(values)
            .or_else(|| self.fill(None))
            .unwrap_or_default()
    }

    fn render_string(&self, values: Values<'_>) -> String {
        // Only whole `&str`s are put in, so the bytes are UTF-8.
        String::from_utf8(self.render(values)).unwrap_or_default()
    }

    /// `None` when over the cap.
    fn fill(&self, values: Values<'_>) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text.as_bytes()),
                Part::Var(name) => {
                    let value = value_text(values.and_then(|v| v.get(name.as_str())));
                    // Escaping only makes it longer: refuse a huge value before copying it.
                    if out.len().saturating_add(value.len()) > self.cap {
                        return None;
                    }
                    match self.escape {
                        Escape::Json => crate::json::write_str_contents(&mut out, &value),
                        Escape::Raw => out.extend_from_slice(value.as_bytes()),
                        Escape::Header => out.extend(
                            value
                                .bytes()
                                .filter(|&b| b == b'\t' || !(b < 0x20 || b == 0x7f)),
                        ),
                    }
                }
            }
            if out.len() > self.cap {
                return None;
            }
        }
        Some(out)
    }
}

/// `text` (after `{{`) starts with a placeholder name and `}}`: the name and what follows.
fn placeholder(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let len = bytes
        .iter()
        .take(MAX_NAME + 1)
        .position(|&b| matches!(b, b'{' | b'}' | b'"' | b'\\') || b < 0x20 || b == 0x7f)?;
    if len == 0 || len > MAX_NAME || !text.get(len..)?.starts_with("}}") {
        return None;
    }
    Some((text.get(..len)?, text.get(len + 2..)?))
}

/// The text a value puts in a template.
fn value_text(value: Option<&Value>) -> Cow<'_, str> {
    match value {
        None | Some(Value::Null) => Cow::Borrowed(UNKNOWN),
        Some(Value::String(s)) => Cow::Borrowed(s),
        Some(other) => Cow::Owned(other.to_string()),
    }
}

/// `rules[3] (_id "abc")`, for messages.
fn label(i: usize, value: &Value) -> String {
    match value.get("_id").and_then(Value::as_str) {
        Some(id) => format!("rules[{i}] (_id {:?})", short(id)),
        None => format!("rules[{i}]"),
    }
}

/// Compiles one rule; `Err` says why it is skipped. Entries and headers left out of a rule are
/// noted in `notes`.
fn compile(value: &Value, notes: &mut Vec<String>) -> Result<Rule, String> {
    let Value::Object(rule) = value else {
        return Err(format!("expected an object, got {}", type_name(value)));
    };
    let id = match member(rule, "_id") {
        Value::String(id) if !id.is_empty() => id.clone(),
        Value::String(_) | Value::Null => return Err("_id: missing or empty".into()),
        other => return Err(wrong_type("_id", "a string", other)),
    };
    let kind = match member(rule, "type") {
        Value::String(t) => match t.as_str() {
            "regex" => Kind::Regex,
            "user" => Kind::User,
            "company" => Kind::Company,
            t => return Err(format!("type: unknown type {:?}", short(t))),
        },
        Value::Null => return Err("type: missing".into()),
        other => return Err(wrong_type("type", "a string", other)),
    };
    let block = boolean(rule, "block")?;
    let (not_matching, unidentified) = if kind == Kind::Regex {
        (false, false)
    } else {
        let not_matching = match member(rule, "applied_to") {
            Value::Null => false,
            Value::String(a) => match a.as_str() {
                "matching" => false,
                "not_matching" => true,
                a => return Err(format!("applied_to: unknown value {:?}", short(a))),
            },
            other => return Err(wrong_type("applied_to", "a string", other)),
        };
        (not_matching, boolean(rule, "applied_to_unidentified")?)
    };
    let regex = regex_config(member(rule, "regex_config"), notes)?;

    let response = match member(rule, "response") {
        Value::Object(response) => Some(response),
        Value::Null => None,
        other => return Err(wrong_type("response", "an object", other)),
    };
    let field = |name: &str| response.and_then(|r| r.get(name)).unwrap_or(&Value::Null);
    let headers = headers(field("headers"), notes)?;
    let (status, body, json_content_type) = if block {
        let status = match field("status") {
            Value::Number(n) => n
                .as_u64()
                .filter(|s| (100..=599).contains(s))
                .and_then(|s| u16::try_from(s).ok())
                .ok_or_else(|| format!("response.status: {n} is not a status (100..=599)"))?,
            Value::Null => return Err("response.status: missing".into()),
            other => return Err(wrong_type("response.status", "a number", other)),
        };
        let (text, escape) = match field("body") {
            Value::Null => (String::new(), Escape::Raw),
            Value::String(s) => (s.clone(), Escape::Raw),
            json => (json.to_string(), Escape::Json),
        };
        let body = Template::compile(&text, escape, MAX_BODY);
        if body.fill(None).is_none() {
            return Err(format!(
                "response.body: over {MAX_BODY} bytes (placeholders as {UNKNOWN})"
            ));
        }
        let json = escape == Escape::Json && !headers.iter().any(|(n, _)| n == "content-type");
        (status, body, json)
    } else {
        (0, Template::empty(), false)
    };
    Ok(Rule {
        id,
        kind,
        block,
        not_matching,
        unidentified,
        regex,
        status,
        headers,
        body,
        json_content_type,
    })
}

/// `None` for every call; else the entries that can match (`Err` when none can).
fn regex_config(value: &Value, notes: &mut Vec<String>) -> Result<Option<Vec<Conditions>>, String> {
    let entries = match value {
        Value::Null => return Ok(None),
        Value::Array(entries) if entries.is_empty() => return Ok(None),
        Value::Array(entries) => entries,
        other => return Err(wrong_type("regex_config", "an array", other)),
    };
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let key = format!("regex_config[{i}]");
        let Value::Object(entry) = entry else {
            return Err(wrong_type(&key, "an object", entry));
        };
        let conditions = Conditions::parse(
            member(entry, "conditions"),
            &format!("{key}.conditions"),
            notes,
        )?;
        out.extend(conditions);
    }
    if out.is_empty() {
        return Err("regex_config: no entry can ever match".into());
    }
    Ok(Some(out))
}

/// A rule's `response.headers`: lower-case names, each once.
fn headers(value: &Value, notes: &mut Vec<String>) -> Result<Vec<(String, Template)>, String> {
    let map = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(map) => map,
        other => return Err(wrong_type("response.headers", "an object", other)),
    };
    if map.len() > MAX_HEADERS {
        return Err(format!(
            "response.headers: {} headers, over {MAX_HEADERS}",
            map.len()
        ));
    }
    let mut out: Vec<(String, Template)> = Vec::with_capacity(map.len());
    for (name, value) in map {
        let key = format!("response.headers.{}", short(name));
        if name.is_empty() || !name.bytes().all(is_token) {
            return Err(format!("{key}: not a valid header name"));
        }
        let text = match value {
            Value::Null => continue,
            Value::String(s) => Cow::Borrowed(s.as_str()),
            Value::Number(_) | Value::Bool(_) => Cow::Owned(value.to_string()),
            other => return Err(wrong_type(&key, "a string", other)),
        };
        if text.bytes().any(|b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
            return Err(format!("{key}: control characters in the value"));
        }
        let name = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&name.as_str()) {
            notes.push(format!("{key}: left out (only the proxy sets it)"));
            continue;
        }
        if out.iter().any(|(n, _)| *n == name) {
            notes.push(format!("{key}: left out (the same name twice)"));
            continue;
        }
        let template = Template::compile(&text, Escape::Header, MAX_HEADER_VALUE);
        if template.fill(None).is_none() {
            return Err(format!("{key}: over {MAX_HEADER_VALUE} bytes"));
        }
        out.push((name, template));
    }
    Ok(out)
}

/// RFC 9110 `tchar`.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn member<'a>(object: &'a Map<String, Value>, name: &str) -> &'a Value {
    object.get(name).unwrap_or(&Value::Null)
}

/// A boolean member, false when absent or null.
fn boolean(object: &Map<String, Value>, name: &str) -> Result<bool, String> {
    match member(object, name) {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        other => Err(wrong_type(name, "a boolean", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(doc: Value) -> Rules {
        Rules::parse(doc.to_string().as_bytes()).unwrap()
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// A call to `route` by `user` of `company`.
    fn call<'a>(route: &'a str, user: Option<&'a str>, company: Option<&'a str>) -> Call<'a> {
        Call {
            verb: "GET",
            route,
            ip: Some("10.0.0.1"),
            user,
            company,
        }
    }

    /// The `_id` of the blocking rule, if any.
    fn blocked_by(r: &Rules, c: &Call<'_>, users: &Value, companies: &Value) -> Option<String> {
        let (users, companies) = (map(users.clone()), map(companies.clone()));
        let cohorts = Cohorts {
            user_rules: &users,
            company_rules: &companies,
        };
        r.decide(c, &cohorts).block.map(|b| b.rule_id)
    }

    fn decide(r: &Rules, c: &Call<'_>, users: &Value, companies: &Value) -> Decision {
        let (users, companies) = (map(users.clone()), map(companies.clone()));
        r.decide(
            c,
            &Cohorts {
                user_rules: &users,
                company_rules: &companies,
            },
        )
    }

    fn block_rule(id: &str, kind: &str, extra: Value) -> Value {
        let mut rule = json!({"_id": id, "name": id, "type": kind, "block": true,
            "response": {"status": 403, "body": {"blocked_by": id}}});
        for (k, v) in map(extra) {
            rule[k] = v;
        }
        rule
    }

    fn none() -> Value {
        json!({})
    }

    #[test]
    fn a_regex_rule_applies_when_its_regex_config_matches() {
        let r = rules(json!([block_rule(
            "r1",
            "regex",
            json!({"regex_config": [
            {"conditions": [{"path": "request.route", "value": "^/admin"},
                            {"path": "request.verb", "value": "^(POST|DELETE)$"}]},
            {"conditions": [{"path": "request.ip_address", "value": "^192\\.168\\."}]}]})
        )]));
        assert_eq!((r.len(), r.ignored()), (1, &[][..]));
        let d = |verb, route, ip| {
            let c = Call {
                verb,
                route,
                ip,
                user: Some("u"),
                company: None,
            };
            blocked_by(&r, &c, &none(), &none())
        };
        assert_eq!(d("POST", "/admin/x?y=1", None), Some("r1".into()));
        assert_eq!(d("GET", "/admin/x", None), None, "conditions AND");
        assert_eq!(
            d("GET", "/", Some("192.168.1.1")),
            Some("r1".into()),
            "entries OR"
        );
        assert_eq!(d("GET", "/", Some("10.0.0.1")), None);
        assert_eq!(
            d("DELETE", "/v1/admin", None),
            None,
            "anchored by the pattern"
        );
        let b = decide(&r, &call("/", None, None), &none(), &none());
        assert_eq!(b, Decision::default());

        // No regex_config (absent, null or empty): every call.
        for rc in [Value::Null, json!([])] {
            let r = rules(json!([block_rule(
                "r",
                "regex",
                json!({"regex_config": rc})
            )]));
            assert_eq!(
                blocked_by(&r, &call("/x", None, None), &none(), &none()),
                Some("r".into())
            );
        }
    }

    #[test]
    fn a_blocking_response_is_the_rules() {
        let r = rules(json!([{"_id": "r1", "type": "regex", "block": true,
            "response": {"status": 429, "headers": {"X-Reason": "quota", "Retry-After": 60},
                         "body": {"error": "slow down", "n": [1, 2.5, null, true]}}}]));
        let d = decide(&r, &call("/", None, None), &none(), &none());
        assert_eq!(
            d.block,
            Some(Block {
                rule_id: "r1".into(),
                status: 429,
                headers: vec![
                    ("retry-after".into(), "60".into()),
                    ("x-reason".into(), "quota".into()),
                    ("content-type".into(), JSON_CONTENT_TYPE.into()),
                ],
                body: br#"{"error":"slow down","n":[1,2.5,null,true]}"#.to_vec(),
            })
        );
        assert!(d.add_headers.is_empty());

        // A string body is sent as its text; no body is an empty one; a content type of the
        // rule's is kept.
        let r = rules(json!([
            {"_id": "a", "type": "user", "block": true, "applied_to_unidentified": true,
             "response": {"status": 503, "body": "Try \"later\""}},
            {"_id": "b", "type": "regex", "block": true, "response": {"status": 402}},
            {"_id": "c", "type": "company", "block": true, "applied_to_unidentified": true,
             "response": {"status": 400, "headers": {"Content-Type": "application/problem+json"},
                          "body": {"title": "no"}}}]));
        let d = decide(&r, &call("/", None, None), &none(), &none());
        let b = d.block.unwrap();
        assert_eq!(
            (b.status, &b.body[..], &b.headers[..]),
            (503, &b"Try \"later\""[..], &[][..])
        );
        let d = decide(&r, &call("/", Some("u"), None), &none(), &none());
        let b = d.block.unwrap();
        assert_eq!((b.rule_id.as_str(), b.body.len()), ("c", 14));
        assert_eq!(
            b.headers,
            vec![("content-type".into(), "application/problem+json".into())]
        );
        let d = decide(&r, &call("/", Some("u"), Some("c")), &none(), &none());
        let b = d.block.unwrap();
        assert_eq!((b.rule_id.as_str(), b.status, b.body.len()), ("b", 402, 0));
    }

    #[test]
    fn user_rules_follow_cohorts_and_applied_to() {
        let r = rules(json!([
            block_rule("in", "user", json!({})),
            block_rule("out", "user", json!({"applied_to": "not_matching"})),
        ]));
        let users = json!({"alice": [{"rules": "in", "values": {}}],
                           "bob": [{"rules": "out"}, {"rules": "other"}],
                           "carol": [{"rules": "in"}, {"rules": "out"}],
                           "weird": {"rules": "in"}});
        let by = |user| blocked_by(&r, &call("/", user, None), &users, &none());
        assert_eq!(
            by(Some("alice")),
            Some("in".into()),
            "in the cohort, matching"
        );
        assert_eq!(by(Some("bob")), None, "in out's cohort, not in in's");
        assert_eq!(by(Some("carol")), Some("in".into()));
        assert_eq!(
            by(Some("dave")),
            Some("out".into()),
            "identified, not in the cohort"
        );
        assert_eq!(
            by(Some("weird")),
            Some("out".into()),
            "a malformed entry: no cohort"
        );
        assert_eq!(by(None), None, "unidentified, not applied_to_unidentified");
        assert_eq!(by(Some("")), None, "an empty id is no id");
        // The company plays no part in user rules.
        assert_eq!(
            blocked_by(&r, &call("/", None, Some("alice")), &users, &users),
            None
        );
    }

    #[test]
    fn unidentified_calls_get_only_rules_applied_to_unidentified() {
        for applied_to in ["matching", "not_matching"] {
            let r = rules(json!([block_rule(
                "u",
                "user",
                json!({"applied_to": applied_to, "applied_to_unidentified": true,
                       "regex_config": [{"conditions": [{"path": "request.route", "value": "^/api"}]}]})
            )]));
            assert_eq!(
                blocked_by(&r, &call("/api", None, None), &none(), &none()),
                Some("u".into()),
                "{applied_to}"
            );
            assert_eq!(
                blocked_by(&r, &call("/other", None, None), &none(), &none()),
                None,
                "the regex_config must match too"
            );
            let identified = blocked_by(&r, &call("/api", Some("x"), None), &none(), &none());
            assert_eq!(identified.is_some(), applied_to == "not_matching");
        }
    }

    #[test]
    fn company_rules_follow_company_cohorts() {
        let r = rules(json!([
            block_rule(
                "vip",
                "company",
                json!({"applied_to": "not_matching",
                "regex_config": [{"conditions": [{"path": "request.route", "value": "^/vip"}]}]})
            ),
            block_rule("banned", "company", json!({})),
            block_rule(
                "anon",
                "company",
                json!({"applied_to_unidentified": true,
                "regex_config": [{"conditions": [{"path": "request.verb", "value": "POST"}]}]})
            ),
        ]));
        let companies = json!({"acme": [{"rules": "vip"}], "evil": [{"rules": "banned"}]});
        let by =
            |route, company| blocked_by(&r, &call(route, Some("u"), company), &none(), &companies);
        assert_eq!(by("/vip/1", Some("acme")), None);
        assert_eq!(by("/vip/1", Some("other")), Some("vip".into()));
        assert_eq!(by("/x", Some("other")), None);
        assert_eq!(by("/x", Some("evil")), Some("banned".into()));
        assert_eq!(by("/vip", Some("evil")), Some("vip".into()), "array order");
        assert_eq!(by("/x", None), None, "GET");
        let post = Call {
            verb: "POST",
            ..call("/x", Some("u"), None)
        };
        assert_eq!(
            blocked_by(&r, &post, &none(), &companies),
            Some("anon".into())
        );
        // Users' cohorts play no part in company rules.
        assert_eq!(
            blocked_by(
                &r,
                &call("/x", Some("evil"), Some("z")),
                &companies,
                &none()
            ),
            None
        );
    }

    #[test]
    fn user_rules_then_company_rules_then_regex_rules() {
        // Listed in the opposite order of precedence.
        let r = rules(json!([
            block_rule("regex1", "regex", json!({})),
            block_rule("regex2", "regex", json!({})),
            block_rule("company1", "company", json!({})),
            block_rule("company2", "company", json!({})),
            block_rule("user1", "user", json!({})),
            block_rule("user2", "user", json!({})),
        ]));
        let users =
            json!({"u1": [{"rules": "user2"}, {"rules": "user1"}], "u2": [{"rules": "user2"}]});
        let companies = json!({"c": [{"rules": "company2"}, {"rules": "company1"}], "c2": [{"rules": "company2"}]});
        let by = |u, c| blocked_by(&r, &call("/", u, c), &users, &companies);
        assert_eq!(by(Some("u1"), Some("c")), Some("user1".into()));
        assert_eq!(by(Some("u2"), Some("c")), Some("user2".into()));
        assert_eq!(by(Some("x"), Some("c")), Some("company1".into()));
        assert_eq!(by(Some("x"), Some("c2")), Some("company2".into()));
        assert_eq!(by(None, Some("x")), Some("regex1".into()));
    }

    #[test]
    fn non_blocking_rules_add_headers_first_one_wins() {
        let hdr = |id: &str, kind: &str, headers: Value, extra: Value| {
            let mut rule = json!({"_id": id, "type": kind, "block": false,
                "response": {"status": 200, "headers": headers}});
            for (k, v) in map(extra) {
                rule[k] = v;
            }
            rule
        };
        let r = rules(json!([
            hdr("re", "regex", json!({"X-Limit": "regex", "X-Regex": "1"}), json!({})),
            hdr("co", "company", json!({"x-limit": "company", "X-Company": "1"}), json!({})),
            hdr("us", "user", json!({"X-LIMIT": "user", "X-User": "{{plan}}"}), json!({})),
            hdr("no", "regex", json!({"X-No": "1"}), json!({"regex_config":
                [{"conditions": [{"path": "request.route", "value": "^/never"}]}]})),
            {"_id": "quiet", "type": "regex"},
            block_rule("blk", "regex", json!({"regex_config":
                [{"conditions": [{"path": "request.route", "value": "^/blocked"}]}],
                "response": {"status": 451, "headers": {"X-Blocked": "yes"}}})),
        ]));
        assert_eq!(r.len(), 6);
        let users = json!({"u": [{"rules": "us", "values": {"plan": "gold"}}]});
        let companies = json!({"c": [{"rules": "co"}]});
        let d = decide(&r, &call("/a", Some("u"), Some("c")), &users, &companies);
        assert_eq!(d.block, None);
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            d.add_headers,
            pairs(&[
                ("x-limit", "user"),
                ("x-user", "gold"),
                ("x-company", "1"),
                ("x-regex", "1")
            ])
        );
        let d = decide(&r, &call("/a", None, None), &users, &companies);
        assert_eq!(
            d.add_headers,
            pairs(&[("x-limit", "regex"), ("x-regex", "1")])
        );
        // Blocked: only the blocking rule's headers.
        let d = decide(
            &r,
            &call("/blocked", Some("u"), Some("c")),
            &users,
            &companies,
        );
        assert!(d.add_headers.is_empty());
        let b = d.block.unwrap();
        assert_eq!((b.rule_id.as_str(), b.status), ("blk", 451));
        assert_eq!(
            b.headers,
            pairs(&[("x-blocked", "yes")]),
            "no body, no content type"
        );
    }

    #[test]
    fn templates_take_the_cohort_entrys_values_else_unknown() {
        let rule = |id: &str, kind: &str, extra: Value| {
            let mut rule = json!({"_id": id, "type": kind, "block": true,
                "variables": [{"name": "0", "path": "user_id"}, {"name": "plan", "path": "plan"}],
                "response": {"status": 429,
                    "headers": {"X-Plan": "{{plan}}/{{0}}", "X-Missing": "{{nope}}"},
                    "body": {"msg": "{{0}} on {{plan}}", "{{0}}": ["{{missing}}", 1]}}});
            for (k, v) in map(extra) {
                rule[k] = v;
            }
            rule
        };
        let r = rules(json!([
            rule(
                "u",
                "user",
                json!({"regex_config": [{"conditions": [{"path": "request.route", "value": "^/u"}]}]})
            ),
            rule(
                "n",
                "user",
                json!({"applied_to": "not_matching",
                "regex_config": [{"conditions": [{"path": "request.route", "value": "^/n"}]}]})
            ),
            rule("c", "company", json!({})),
            rule("r", "regex", json!({})),
        ]));
        let users = json!({
            "alice": [{"rules": "other", "values": {"0": "wrong"}},
                      {"rules": "u", "values": {"0": "Alice \"A\" \\ \n\u{1}é", "plan": 42}}],
            "bob": [{"rules": "u"}],
            "carol": [{"rules": "u", "values": {"0": null, "plan": {"tier": [1, "x"]}}}]});
        let companies = json!({"acme": [{"rules": "c", "values": {"plan": true, "0": ""}}]});
        let block = |route, user, company| {
            decide(&r, &call(route, user, company), &users, &companies)
                .block
                .unwrap()
        };
        let check = |b: &Block, id: &str, plan: &str, zero: &str| {
            assert_eq!(b.rule_id, id);
            let body: Value = serde_json::from_slice(&b.body).unwrap();
            assert_eq!(
                body,
                json!({"msg": format!("{zero} on {plan}"), zero: ["UNKNOWN", 1]}),
                "{}",
                String::from_utf8_lossy(&b.body)
            );
            let header = |name: &str| {
                b.headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            assert_eq!(header("x-missing"), "UNKNOWN");
            let zero: String = zero.chars().filter(|&c| c >= ' ' || c == '\t').collect();
            assert_eq!(header("x-plan"), format!("{plan}/{zero}"));
        };
        check(
            &block("/u", Some("alice"), None),
            "u",
            "42",
            "Alice \"A\" \\ \n\u{1}é",
        );
        check(&block("/u", Some("bob"), None), "u", "UNKNOWN", "UNKNOWN");
        check(
            &block("/u", Some("carol"), None),
            "u",
            r#"{"tier":[1,"x"]}"#,
            "UNKNOWN",
        );
        check(&block("/n", Some("zed"), None), "n", "UNKNOWN", "UNKNOWN");
        check(&block("/x", Some("alice"), Some("acme")), "c", "true", "");
        check(
            &block("/x", Some("alice"), Some("x")),
            "r",
            "UNKNOWN",
            "UNKNOWN",
        );
    }

    #[test]
    fn placeholders_are_names_between_double_braces() {
        let t = |text: &str| {
            let values = map(json!({"0": "V", "a b": "S", "{": "no", "": "no"}));
            let rendered = Template::compile(text, Escape::Raw, 1000).render(Some(&values));
            String::from_utf8(rendered).unwrap()
        };
        assert_eq!(t("{{0}}"), "V");
        assert_eq!(t("x{{0}}y{{0}}z"), "xVyVz");
        assert_eq!(t("{{{0}}}"), "{V}");
        assert_eq!(t("{{{{0}}"), "{{V");
        assert_eq!(t("{{a b}}"), "S", "spaces are part of the name");
        assert_eq!(t("{{}}"), "{{}}");
        assert_eq!(t("{{0}"), "{{0}");
        assert_eq!(t("{{0"), "{{0");
        assert_eq!(t("{{"), "{{");
        assert_eq!(t("{0}}"), "{0}}");
        assert_eq!(t("{{x\"y}}"), "{{x\"y}}");
        assert_eq!(t("{{é}}"), "UNKNOWN");
        let long = "n".repeat(MAX_NAME);
        assert_eq!(t(&format!("{{{{{long}}}}}")), "UNKNOWN");
        let longer = "n".repeat(MAX_NAME + 1);
        assert_eq!(t(&format!("{{{{{longer}}}}}")), format!("{{{{{longer}}}}}"));
        assert_eq!(t(""), "");
        assert_eq!(t("plain"), "plain");
    }

    #[test]
    fn bodies_are_bounded() {
        // A string body is its text: exactly at the cap, one byte over.
        let at_cap = "x".repeat(MAX_BODY);
        let over = "x".repeat(MAX_BODY + 1);
        // A placeholder that grows to UNKNOWN past the cap.
        let grows = format!("{}{{{{0}}}}", "x".repeat(MAX_BODY - 6));
        let r = rules(json!([
            {"_id": "over", "type": "regex", "block": true, "response": {"status": 400, "body": over}},
            {"_id": "grows", "type": "regex", "block": true, "response": {"status": 400, "body": grows}},
            {"_id": "big-header", "type": "regex", "block": true,
             "response": {"status": 400, "headers": {"x": "y".repeat(MAX_HEADER_VALUE + 1)}}},
            {"_id": "at-cap", "type": "user", "block": true, "applied_to": "not_matching",
             "response": {"status": 400, "body": at_cap}},
            {"_id": "tpl", "type": "user", "block": true,
             "response": {"status": 400, "headers": {"x-v": "{{0}}"},
                          "body": {"a": "{{0}}", "b": "x".repeat(MAX_BODY - 100)}}},
        ]));
        assert_eq!(r.len(), 2, "{:?}", r.ignored());
        assert_eq!(r.ignored().len(), 3);
        assert!(r.ignored()[0].starts_with("rules[0] (_id \"over\") skipped: response.body: over"));
        assert!(r.ignored()[2].contains("response.headers.x: over"));
        let b = decide(&r, &call("/", Some("u"), None), &none(), &none())
            .block
            .unwrap();
        assert_eq!((b.rule_id.as_str(), b.body.len()), ("at-cap", MAX_BODY));
        // Values that would make the body or a header too big: every placeholder UNKNOWN.
        let small = "small".to_string();
        let exact = "a".repeat(MAX_HEADER_VALUE);
        let huge = "\"".repeat(MAX_HEADER_VALUE + 1);
        for (value, in_body, in_header) in [
            (&small, &small, &small),
            (&exact, &UNKNOWN.to_string(), &exact),
            (&huge, &UNKNOWN.to_string(), &UNKNOWN.to_string()),
        ] {
            let users =
                json!({"u": [{"rules": "tpl", "values": {"0": value}}, {"rules": "at-cap"}]});
            let b = decide(&r, &call("/", Some("u"), None), &users, &none())
                .block
                .unwrap();
            assert_eq!(b.rule_id, "tpl");
            assert!(b.body.len() <= MAX_BODY);
            let body: Value = serde_json::from_slice(&b.body).unwrap();
            assert!(body["a"] == **in_body, "{}", value.len());
            assert!(b.headers[0] == ("x-v".to_string(), in_header.clone()));
        }
    }

    #[test]
    fn malformed_rules_are_skipped_and_reported() {
        let good = block_rule("good", "regex", json!({}));
        let doc = json!([
            1,
            {"type": "regex", "block": true, "response": {"status": 403}},
            {"_id": "", "type": "regex"},
            {"_id": 5, "type": "regex"},
            {"_id": "t1", "type": "api"},
            {"_id": "t2"},
            {"_id": "t3", "type": ["user"]},
            {"_id": "b", "type": "regex", "block": "yes"},
            {"_id": "a1", "type": "user", "applied_to": "some"},
            {"_id": "a2", "type": "user", "applied_to": 1},
            {"_id": "a3", "type": "user", "applied_to_unidentified": "true"},
            {"_id": "rc1", "type": "regex", "regex_config": {}},
            {"_id": "rc2", "type": "regex", "regex_config": [1]},
            {"_id": "rc3", "type": "regex", "regex_config": [{"conditions": [{"path": 1, "value": "x"}]}]},
            {"_id": "rc4", "type": "regex", "regex_config": [{"conditions": []}, {"conditions": [{"path": "request.body.query", "value": "x"}]}]},
            {"_id": "rc5", "type": "regex", "regex_config": [{"conditions": [{"path": "request.route", "value": "(unclosed"}]}]},
            {"_id": "s1", "type": "regex", "block": true},
            {"_id": "s2", "type": "regex", "block": true, "response": {"status": "429"}},
            {"_id": "s3", "type": "regex", "block": true, "response": {"status": 99}},
            {"_id": "s4", "type": "regex", "block": true, "response": {"status": 600}},
            {"_id": "s5", "type": "regex", "block": true, "response": {"status": 429.5}},
            {"_id": "s6", "type": "regex", "block": true, "response": {"status": -1}},
            {"_id": "r1", "type": "regex", "response": []},
            {"_id": "h1", "type": "regex", "response": {"headers": []}},
            {"_id": "h2", "type": "regex", "response": {"headers": {"bad name": "x"}}},
            {"_id": "h3", "type": "regex", "response": {"headers": {":status": "200"}}},
            {"_id": "h4", "type": "regex", "response": {"headers": {"x": "a\r\nb"}}},
            {"_id": "h5", "type": "regex", "response": {"headers": {"x": {"a": 1}}}},
            {"_id": "h6", "type": "regex", "response": {"headers": {"": "x"}}},
            good,
            block_rule("good", "user", json!({"applied_to_unidentified": true})),
        ]);
        let r = rules(doc);
        assert_eq!(r.len(), 1, "{:#?}", r.ignored());
        let skipped: Vec<&String> = r
            .ignored()
            .iter()
            .filter(|m| m.contains(" skipped: "))
            .collect();
        assert_eq!(skipped.len(), 30, "{:#?}", r.ignored());
        assert_eq!(
            skipped[0],
            "rules[0] skipped: expected an object, got a number"
        );
        assert_eq!(skipped[1], "rules[1] skipped: _id: missing or empty");
        assert_eq!(
            skipped[7],
            "rules[7] (_id \"b\") skipped: block: expected a boolean, got a string"
        );
        assert_eq!(
            skipped[13],
            "rules[13] (_id \"rc3\") skipped: regex_config[0].conditions[0].path: expected a string, got a number"
        );
        assert_eq!(
            skipped[14],
            "rules[14] (_id \"rc4\") skipped: regex_config: no entry can ever match"
        );
        assert!(r
            .ignored()
            .contains(&"rules[14] (_id \"rc4\"): regex_config[0].conditions: empty".to_string()));
        assert_eq!(
            skipped[18],
            "rules[18] (_id \"s3\") skipped: response.status: 99 is not a status (100..=599)"
        );
        assert_eq!(
            skipped[29],
            "rules[30] (_id \"good\") skipped: _id seen before"
        );
        let b = decide(&r, &call("/", None, None), &none(), &none())
            .block
            .unwrap();
        assert_eq!((b.rule_id.as_str(), b.status), ("good", 403));

        // Not an array, not JSON: errors.
        assert_eq!(
            Rules::parse(b"{}").unwrap_err(),
            "(root): expected an array, got an object"
        );
        assert!(Rules::parse(b"[")
            .unwrap_err()
            .starts_with("not valid JSON"));
        assert!(Rules::parse(b"").is_err());
        let empty = Rules::parse(b"[]").unwrap();
        assert!(empty.is_empty() && empty.ignored().is_empty());
        assert_eq!(
            decide(&empty, &call("/", Some("u"), Some("c")), &none(), &none()),
            Decision::default()
        );
    }

    #[test]
    fn what_cannot_be_known_at_request_headers_never_matches() {
        let r = rules(json!([
            block_rule(
                "status",
                "regex",
                json!({"regex_config": [
                {"conditions": [{"path": "response.status", "value": "."}]}]})
            ),
            block_rule(
                "mixed",
                "regex",
                json!({"regex_config": [
                {"conditions": [{"path": "request.headers.x-api-key", "value": "."}]},
                {"conditions": [{"path": "request.route", "value": "^/ok"}]}]})
            ),
        ]));
        assert_eq!(r.len(), 2);
        assert_eq!(r.ignored().len(), 1, "{:?}", r.ignored());
        assert!(r.ignored()[0].contains("unknown path"));
        assert_eq!(
            blocked_by(&r, &call("/x", None, None), &none(), &none()),
            None
        );
        assert_eq!(
            blocked_by(&r, &call("/ok", None, None), &none(), &none()),
            Some("mixed".into())
        );
    }

    #[test]
    fn headers_are_lower_cased_deduplicated_and_framing_left_out() {
        let r = rules(
            json!([{"_id": "h", "type": "regex", "response": {"headers": {
            "Content-Length": "5", "transfer-encoding": "chunked", "X-A": "1", "x-a": "2",
            "X-Null": null, "X-Tab": "a\tb", "X-Num": 1.5, "X-Bool": false}}}]),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r.ignored().len(), 3, "{:?}", r.ignored());
        let d = decide(&r, &call("/", None, None), &none(), &none());
        let names: Vec<&str> = d.add_headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-a", "x-bool", "x-num", "x-tab"]);
        assert_eq!(d.add_headers[0].1, "1", "the first in name order");
        assert_eq!(d.add_headers[1].1, "false");
        assert_eq!(d.add_headers[2].1, "1.5");
        assert_eq!(d.add_headers[3].1, "a\tb");
    }

    #[test]
    fn a_hundred_rules_parse_and_decide() {
        // 100 rules: user, company and regex ones, a third blocking, each keyed by route.
        let mut doc = Vec::new();
        let kinds = ["user", "company", "regex"];
        for i in 0..100 {
            let kind = kinds[i % 3];
            doc.push(json!({"_id": format!("r{i}"), "type": kind, "block": i % 2 == 0,
                "applied_to": if i % 5 == 0 { "not_matching" } else { "matching" },
                "applied_to_unidentified": i % 7 == 0,
                "regex_config": [{"conditions": [{"path": "request.route", "value": format!("^/r{i}$")}]}],
                "response": {"status": 400 + i, "headers": {format!("X-R{i}"): "{{v}}"},
                             "body": {"rule": i, "v": "{{v}}"}}}));
        }
        let r = rules(Value::Array(doc));
        assert_eq!((r.len(), r.ignored().len()), (100, 0));
        let users = json!({"u": (0..100).filter(|i| i % 3 == 0)
            .map(|i| json!({"rules": format!("r{i}"), "values": {"v": format!("user{i}")}}))
            .collect::<Vec<_>>()});
        let companies = json!({"c": (0..100).filter(|i| i % 3 == 1 && i % 4 == 1)
            .map(|i| json!({"rules": format!("r{i}"), "values": {"v": format!("co{i}")}}))
            .collect::<Vec<_>>()});
        for i in 0..100usize {
            let route = format!("/r{i}");
            for (user, company) in [(Some("u"), Some("c")), (None, None), (Some("x"), Some("y"))] {
                let d = decide(&r, &call(&route, user, company), &users, &companies);
                // Only rule i can apply to its route.
                let in_cohort = match i % 3 {
                    0 => user == Some("u"),
                    1 => company == Some("c") && i % 4 == 1,
                    _ => false,
                };
                let identified = match i % 3 {
                    0 => user.is_some(),
                    1 => company.is_some(),
                    _ => true,
                };
                let applies = match (i % 3, identified) {
                    (2, _) => true,
                    (_, false) => i % 7 == 0,
                    (_, true) => in_cohort != (i % 5 == 0),
                };
                let value = if in_cohort && i % 5 != 0 {
                    if i % 3 == 0 {
                        format!("user{i}")
                    } else {
                        format!("co{i}")
                    }
                } else {
                    "UNKNOWN".into()
                };
                let what = format!("rule {i}, {user:?} {company:?}");
                match (applies, i % 2 == 0) {
                    (false, _) => assert_eq!(d, Decision::default(), "{what}"),
                    (true, true) => {
                        let b = d.block.unwrap();
                        assert_eq!(b.rule_id, format!("r{i}"), "{what}");
                        assert_eq!(usize::from(b.status), 400 + i);
                        assert_eq!(
                            serde_json::from_slice::<Value>(&b.body).unwrap(),
                            json!({"rule": i, "v": value}),
                            "{what}"
                        );
                        assert_eq!(b.headers[0], (format!("x-r{i}"), value));
                    }
                    (true, false) => {
                        assert_eq!(d.block, None, "{what}");
                        assert_eq!(d.add_headers, vec![(format!("x-r{i}"), value)], "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn at_most_max_rules_are_read() {
        let doc: Vec<Value> = (0..MAX_RULES + 5)
            .map(|i| json!({"_id": format!("r{i}"), "type": "regex"}))
            .collect();
        let r = rules(Value::Array(doc));
        assert_eq!(r.len(), MAX_RULES);
        assert_eq!(
            r.ignored(),
            [format!(
                "rules[{MAX_RULES}..]: 5 rules over the limit of {MAX_RULES} ignored"
            )]
        );
    }
}
