//! Plugin configuration: one JSON document accepted by both the filter and the shipper.
//!
//! The keys of the public Moesif Envoy plugin v0.4.0 keep their names, types and defaults so that
//! a config copied from its README keeps working. Every struct field below is a documented option.

use serde::Deserialize;
use std::fmt;

/// Validated plugin configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Moesif Application Id, sent as `X-Moesif-Application-Id`. Required.
    pub moesif_application_id: String,
    /// Request header whose value becomes the event's `user_id`.
    pub user_id_header: Option<String>,
    /// Request header whose value becomes the event's `company_id`.
    pub company_id_header: Option<String>,
    /// A batch is sent as soon as it holds this many events.
    pub batch_max_size: usize,
    /// Milliseconds a non-empty batch may wait before it is sent anyway.
    pub batch_max_wait: u64,
    /// Envoy cluster that reaches the Moesif Collector API.
    pub upstream: String,
    /// Host sent as `:authority` to the collector.
    pub base_uri: String,
    /// Log every batch sent (the application id is never logged in full).
    pub debug: bool,
    /// Milliseconds to wait for the collector to answer a batch.
    pub connection_timeout: u64,
    /// Bytes of each request and response body held for capture; larger bodies are not shipped,
    /// only their size. 0 disables body capture.
    pub max_body_size: usize,
    /// Name of the shared queue between the filters and the shipper.
    pub queue_name: String,
    /// vm_id of the shipper that registered the queue; `None` means the filter's own vm_id.
    pub queue_vm_id: Option<String>,
    /// Bytes of events held while waiting to be (re)sent, batches in flight included. Beyond it
    /// the oldest unsent batches are dropped.
    pub max_buffer_bytes: usize,
    /// Batch requests awaiting an answer at once.
    pub max_in_flight: usize,
    /// Bytes of records allowed in the shared queue between filters and shipper (Envoy does
    /// not bound it). When the shipper falls this far behind, filters ship the overflow
    /// themselves.
    pub max_queue_bytes: usize,
    /// First retry delay in ms after a transient failure; doubles per failure.
    pub retry_backoff_initial_ms: u64,
    /// Longest retry delay in ms.
    pub retry_backoff_max_ms: u64,
    /// Request header names (any case) whose values are replaced by a fixed marker, on top of
    /// the credentials (see `mask_credentials`).
    pub request_header_masks: Vec<String>,
    /// Response header names (any case) whose values are replaced by a fixed marker, on top of
    /// the credentials.
    pub response_header_masks: Vec<String>,
    /// JSON field names whose values are masked in request bodies, at any depth.
    pub request_body_masks: Vec<String>,
    /// JSON field names whose values are masked in response bodies, at any depth.
    pub response_body_masks: Vec<String>,
    /// Query parameter names whose values are masked in `request.uri`.
    pub request_query_masks: Vec<String>,
    /// Mask the credential headers (`authorization`, `proxy-authorization`, `cookie`,
    /// `set-cookie`, `x-api-key`). On by default; `false` ships them in clear.
    pub mask_credentials: bool,
    /// Headers that may carry a token for identity (JWT or Basic), comma-separated, in order.
    pub authorization_header_name: String,
    /// JWT claim holding the user id; dots walk nested objects (`user.id`).
    pub authorization_user_id_field: String,
    /// JWT claim holding the company id; none by default.
    pub authorization_company_id_field: Option<String>,
    /// Request header whose value becomes the event's `session_token`.
    pub session_token_header: Option<String>,
    /// Request header whose value becomes `request.api_version`.
    pub api_version_header: Option<String>,
    /// Calls not to capture at all (health checks, metrics scrapes): a call matching any rule
    /// is skipped. Decided at request headers.
    pub skip: Vec<SkipRule>,
    /// Capture no request bodies (no body host call at all).
    pub disable_capture_request_body: bool,
    /// Capture no response bodies (no body host call at all).
    pub disable_capture_response_body: bool,
    /// Bytes of each request body held for capture; `max_body_size` when not set.
    pub request_max_body_size: Option<usize>,
    /// Bytes of each response body held for capture; `max_body_size` when not set.
    pub response_max_body_size: Option<usize>,
    /// A JSON object merged into every event's `metadata`, beside the Envoy facts.
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The event's `direction`: `auto` (Envoy's `listener_direction`: `Outgoing` on an
    /// outbound listener, as an Istio sidecar's, else `Incoming`), `Incoming` or `Outgoing`.
    pub direction: DirectionSetting,
    /// Apply Moesif's governance rules (`GET /v1/rules`): a blocking rule answers the call
    /// from Envoy, and the upstream never sees it. Off by default: it changes traffic.
    pub enable_governance: bool,
    /// Test builds only (cargo feature `test-faults`): the shipper aborts its VM this many ms
    /// after start, to exercise the filters' fallback.
    #[cfg(feature = "test-faults")]
    pub test_crash_after_ms: Option<u64>,
    /// Test builds only (cargo feature `test-faults`): a request carrying this header makes the
    /// filter panic in `on_http_request_headers`, to exercise the `failure_policy`.
    #[cfg(feature = "test-faults")]
    pub test_panic_header: Option<String>,
    /// Test builds only (cargo feature `test-faults`): the filter reads each `on_log` property
    /// with its own host call, as where Envoy evaluates no CEL, to exercise that path.
    #[cfg(feature = "test-faults")]
    pub test_properties_one_by_one: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            moesif_application_id: String::new(),
            user_id_header: None,
            company_id_header: None,
            batch_max_size: 100,
            batch_max_wait: 2000,
            upstream: "moesif_api".into(),
            base_uri: "api.moesif.net".into(),
            debug: false,
            connection_timeout: 5000,
            max_body_size: 100_000,
            queue_name: "moesif_events".into(),
            queue_vm_id: None,
            max_buffer_bytes: 10_000_000,
            max_in_flight: 4,
            max_queue_bytes: 16_000_000,
            retry_backoff_initial_ms: 1000,
            retry_backoff_max_ms: 60_000,
            request_header_masks: Vec::new(),
            response_header_masks: Vec::new(),
            request_body_masks: Vec::new(),
            response_body_masks: Vec::new(),
            request_query_masks: Vec::new(),
            mask_credentials: true,
            authorization_header_name: "authorization".into(),
            authorization_user_id_field: "sub".into(),
            authorization_company_id_field: None,
            session_token_header: None,
            api_version_header: None,
            skip: Vec::new(),
            disable_capture_request_body: false,
            disable_capture_response_body: false,
            request_max_body_size: None,
            response_max_body_size: None,
            metadata: None,
            direction: DirectionSetting::Auto,
            enable_governance: false,
            #[cfg(feature = "test-faults")]
            test_crash_after_ms: None,
            #[cfg(feature = "test-faults")]
            test_panic_header: None,
            #[cfg(feature = "test-faults")]
            test_properties_one_by_one: false,
        }
    }
}

/// One `skip` rule: each field given is a regular expression (regex-lite syntax) that must
/// match the WHOLE value (it is anchored at both ends); a rule matches when all its fields do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SkipRule {
    /// The request method, e.g. `GET|HEAD`.
    pub method: Option<String>,
    /// The host as the client sent it (`:authority`), port included if sent.
    pub host: Option<String>,
    /// The path without its query string, e.g. `/health|/metrics/.*`.
    pub path: Option<String>,
}

/// Where the event's `direction` comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum DirectionSetting {
    /// From Envoy's `listener_direction`: outbound listeners give `Outgoing`.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    Incoming,
    Outgoing,
}

/// Every key [`Config`] understands; anything else is reported as a warning.
pub const KNOWN_KEYS: &[&str] = &[
    "moesif_application_id",
    "user_id_header",
    "company_id_header",
    "batch_max_size",
    "batch_max_wait",
    "upstream",
    "base_uri",
    "debug",
    "connection_timeout",
    "max_body_size",
    "queue_name",
    "queue_vm_id",
    "max_buffer_bytes",
    "max_in_flight",
    "max_queue_bytes",
    "retry_backoff_initial_ms",
    "retry_backoff_max_ms",
    "request_header_masks",
    "response_header_masks",
    "request_body_masks",
    "response_body_masks",
    "request_query_masks",
    "mask_credentials",
    "authorization_header_name",
    "authorization_user_id_field",
    "authorization_company_id_field",
    "session_token_header",
    "api_version_header",
    "skip",
    "disable_capture_request_body",
    "disable_capture_response_body",
    "request_max_body_size",
    "response_max_body_size",
    "metadata",
    "direction",
    "enable_governance",
    #[cfg(feature = "test-faults")]
    "test_crash_after_ms",
    #[cfg(feature = "test-faults")]
    "test_panic_header",
    #[cfg(feature = "test-faults")]
    "test_properties_one_by_one",
];

/// Why a configuration was rejected; always names the offending key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid plugin config: key `{}`: {}",
            self.key, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

fn err(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A parsed config and the warnings (unknown keys) found on the way.
#[derive(Debug)]
pub struct Parsed {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Parses and validates the plugin configuration bytes (a JSON object).
    pub fn parse(bytes: &[u8]) -> Result<Parsed, ConfigError> {
        let mut value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| err("(root)", format!("not valid JSON: {e}")))?;
        // Some control planes deliver the JSON object itself as a JSON string.
        if let Some(inner) = value.as_str() {
            value = serde_json::from_str(inner)
                .map_err(|e| err("(root)", format!("string is not valid JSON: {e}")))?;
        }
        let object = value
            .as_object()
            .ok_or_else(|| err("(root)", "expected a JSON object"))?;
        let warnings = object
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .map(|k| format!("unknown config key `{k}` ignored"))
            .collect();
        let config: Config = serde_path_to_error::deserialize(&value).map_err(|e| {
            let key = e.path().to_string();
            err(&key, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(Parsed { config, warnings })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.moesif_application_id.trim().is_empty() {
            return Err(err(
                "moesif_application_id",
                "is required and must not be empty",
            ));
        }
        if !(1..=10_000).contains(&self.batch_max_size) {
            return Err(err("batch_max_size", "must be between 1 and 10000"));
        }
        if !(1..=600_000).contains(&self.batch_max_wait) {
            return Err(err("batch_max_wait", "must be between 1 and 600000 ms"));
        }
        if !(1..=600_000).contains(&self.connection_timeout) {
            return Err(err("connection_timeout", "must be between 1 and 600000 ms"));
        }
        if !(10_000..=1_000_000_000).contains(&self.max_buffer_bytes) {
            return Err(err(
                "max_buffer_bytes",
                "must be between 10000 and 1000000000",
            ));
        }
        if !(100_000..=1_000_000_000).contains(&self.max_queue_bytes) {
            return Err(err(
                "max_queue_bytes",
                "must be between 100000 and 1000000000",
            ));
        }
        if !(1..=64).contains(&self.max_in_flight) {
            return Err(err("max_in_flight", "must be between 1 and 64"));
        }
        if !(1..=3_600_000).contains(&self.retry_backoff_initial_ms) {
            return Err(err(
                "retry_backoff_initial_ms",
                "must be between 1 and 3600000 ms",
            ));
        }
        if !(self.retry_backoff_initial_ms..=3_600_000).contains(&self.retry_backoff_max_ms) {
            return Err(err(
                "retry_backoff_max_ms",
                "must be between retry_backoff_initial_ms and 3600000 ms",
            ));
        }
        if self.max_body_size > 10_000_000 {
            return Err(err("max_body_size", "must be at most 10000000 bytes"));
        }
        for (key, value) in [
            ("upstream", &self.upstream),
            ("base_uri", &self.base_uri),
            ("queue_name", &self.queue_name),
        ] {
            if value.trim().is_empty() {
                return Err(err(key, "must not be empty"));
            }
        }
        for (key, value) in [
            ("request_max_body_size", self.request_max_body_size),
            ("response_max_body_size", self.response_max_body_size),
        ] {
            if value.is_some_and(|v| v > 10_000_000) {
                return Err(err(key, "must be at most 10000000 bytes"));
            }
        }
        for (key, names) in [
            ("request_header_masks", &self.request_header_masks),
            ("response_header_masks", &self.response_header_masks),
            ("request_body_masks", &self.request_body_masks),
            ("response_body_masks", &self.response_body_masks),
            ("request_query_masks", &self.request_query_masks),
        ] {
            if let Some(i) = names.iter().position(|n| n.trim().is_empty()) {
                return Err(err(&format!("{key}[{i}]"), "must not be empty"));
            }
        }
        if self.authorization_header_names().is_empty() {
            return Err(err(
                "authorization_header_name",
                "must name at least one header",
            ));
        }
        if self.authorization_user_id_field.trim().is_empty() {
            return Err(err("authorization_user_id_field", "must not be empty"));
        }
        if let Some(m) = &self.metadata {
            for reserved in [
                "envoy",
                "grpc",
                "request_body_omitted",
                "response_body_omitted",
            ] {
                if m.contains_key(reserved) {
                    return Err(err(
                        &format!("metadata.{reserved}"),
                        "is written by the plugin; choose another name",
                    ));
                }
            }
        }
        crate::skip::SkipRules::compile(&self.skip).map_err(|(key, reason)| err(&key, reason))?;
        for (key, value) in [
            ("user_id_header", &self.user_id_header),
            ("company_id_header", &self.company_id_header),
            (
                "authorization_company_id_field",
                &self.authorization_company_id_field,
            ),
            ("session_token_header", &self.session_token_header),
            ("api_version_header", &self.api_version_header),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(err(key, "must not be empty when set"));
            }
        }
        #[cfg(feature = "test-faults")]
        if self
            .test_panic_header
            .as_deref()
            .is_some_and(|v| v.trim().is_empty())
        {
            return Err(err("test_panic_header", "must not be empty when set"));
        }
        Ok(())
    }

    /// `authorization_header_name` as a list of lower-case names.
    pub fn authorization_header_names(&self) -> Vec<String> {
        self.authorization_header_name
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect()
    }

    /// The cap of each request body: `None` when request bodies are not captured at all.
    pub fn request_body_cap(&self) -> Option<usize> {
        (!self.disable_capture_request_body)
            .then(|| self.request_max_body_size.unwrap_or(self.max_body_size))
    }

    /// The cap of each response body: `None` when response bodies are not captured at all.
    pub fn response_body_cap(&self) -> Option<usize> {
        (!self.disable_capture_response_body)
            .then(|| self.response_max_body_size.unwrap_or(self.max_body_size))
    }

    /// The application id with all but its first and last 4 characters masked, for logs.
    pub fn masked_application_id(&self) -> String {
        let id = &self.moesif_application_id;
        let n = id.chars().count();
        if n <= 8 {
            return "*".repeat(n);
        }
        id.chars()
            .enumerate()
            .map(|(i, c)| if i < 4 || i >= n - 4 { c } else { '*' })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v040_readme_config_parses_with_defaults() {
        let json = br#"{
            "moesif_application_id":"eyJhcHAiOiIxMjM0NTY3ODkiLCJ2ZXIiOiIyLjAifQ",
            "user_id_header":"X-User-Example-Header",
            "company_id_header":"X-Company-Example-Header",
            "upstream": "moesif_api"
        }"#;
        let parsed = Config::parse(json).unwrap();
        let c = parsed.config;
        assert!(parsed.warnings.is_empty());
        assert_eq!(c.user_id_header.as_deref(), Some("X-User-Example-Header"));
        assert_eq!(
            c.company_id_header.as_deref(),
            Some("X-Company-Example-Header")
        );
        assert_eq!(c.batch_max_size, 100);
        assert_eq!(c.batch_max_wait, 2000);
        assert_eq!(c.connection_timeout, 5000);
        assert_eq!(c.base_uri, "api.moesif.net");
        assert_eq!(c.max_body_size, 100_000);
        assert_eq!(c.queue_name, "moesif_events");
        assert_eq!(c.queue_vm_id, None);
        assert_eq!(c.max_buffer_bytes, 10_000_000);
        assert_eq!(c.max_in_flight, 4);
        assert_eq!(c.max_queue_bytes, 16_000_000);
        assert_eq!(
            (c.retry_backoff_initial_ms, c.retry_backoff_max_ms),
            (1000, 60_000)
        );
        assert!(!c.debug);
    }

    #[test]
    fn missing_app_id_names_the_key() {
        let e = Config::parse(br#"{"upstream":"x"}"#).unwrap_err();
        assert_eq!(e.key, "moesif_application_id");
        assert!(e.to_string().contains("`moesif_application_id`"));
    }

    #[test]
    fn privacy_and_identity_options_are_refused_naming_the_key() {
        let refused = |extra: &str| {
            let json = format!(r#"{{"moesif_application_id":"a",{extra}}}"#);
            Config::parse(json.as_bytes()).unwrap_err()
        };
        let e = refused(r#""skip":[{"method":"GET"},{"path":"(unclosed"}]"#);
        assert_eq!(e.key, "skip[1].path");
        assert!(e.reason.starts_with("not a valid regex"), "{}", e.reason);
        assert_eq!(refused(r#""skip":[{}]"#).key, "skip[0]");
        assert_eq!(refused(r#""skip":[{"paht":"/x"}]"#).key, "skip[0].paht");
        assert_eq!(
            refused(r#""request_body_masks":"password""#).key,
            "request_body_masks"
        );
        assert_eq!(
            refused(r#""request_header_masks":["a",""]"#).key,
            "request_header_masks[1]"
        );
        assert_eq!(refused(r#""metadata":{"envoy":1}"#).key, "metadata.envoy");
        assert_eq!(refused(r#""metadata":[1]"#).key, "metadata");
        assert_eq!(refused(r#""direction":"sideways""#).key, "direction");
        assert_eq!(
            refused(r#""authorization_header_name":" , ""#).key,
            "authorization_header_name"
        );
        assert_eq!(
            refused(r#""authorization_user_id_field":"""#).key,
            "authorization_user_id_field"
        );
        assert_eq!(
            refused(r#""response_max_body_size":20000000"#).key,
            "response_max_body_size"
        );
        assert_eq!(
            refused(r#""mask_credentials":"no""#).key,
            "mask_credentials"
        );
    }

    #[test]
    fn privacy_and_identity_defaults() {
        let c = Config::parse(br#"{"moesif_application_id":"a","max_body_size":500}"#)
            .unwrap()
            .config;
        assert!(c.mask_credentials);
        assert_eq!(c.authorization_header_names(), vec!["authorization"]);
        assert_eq!(c.authorization_user_id_field, "sub");
        assert_eq!(
            (c.request_body_cap(), c.response_body_cap()),
            (Some(500), Some(500))
        );
        assert_eq!(c.direction, DirectionSetting::Auto);
        let c = Config::parse(
            br#"{"moesif_application_id":"a","disable_capture_request_body":true,"response_max_body_size":7,"authorization_header_name":"Authorization, X-Token"}"#,
        )
        .unwrap()
        .config;
        assert_eq!(
            (c.request_body_cap(), c.response_body_cap()),
            (None, Some(7))
        );
        assert_eq!(
            c.authorization_header_names(),
            vec!["authorization", "x-token"]
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e =
            Config::parse(br#"{"moesif_application_id":"a","batch_max_size":"ten"}"#).unwrap_err();
        assert_eq!(e.key, "batch_max_size");
        assert!(e.reason.contains("invalid type"), "{}", e.reason);
        let e = Config::parse(br#"{"moesif_application_id":"a","debug":1}"#).unwrap_err();
        assert_eq!(e.key, "debug");
    }

    #[test]
    fn out_of_range_names_the_key() {
        let e = Config::parse(br#"{"moesif_application_id":"a","batch_max_size":0}"#).unwrap_err();
        assert_eq!(e.key, "batch_max_size");
        let e = Config::parse(br#"{"moesif_application_id":"a","upstream":" "}"#).unwrap_err();
        assert_eq!(e.key, "upstream");
        let e = Config::parse(br#"{"moesif_application_id":"a","max_in_flight":0}"#).unwrap_err();
        assert_eq!(e.key, "max_in_flight");
        let e = Config::parse(
            br#"{"moesif_application_id":"a","retry_backoff_initial_ms":5000,"retry_backoff_max_ms":10}"#,
        )
        .unwrap_err();
        assert_eq!(e.key, "retry_backoff_max_ms");
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let p = Config::parse(br#"{"moesif_application_id":"a","sampel_rate":5}"#).unwrap();
        assert_eq!(p.warnings, vec!["unknown config key `sampel_rate` ignored"]);
    }

    #[test]
    fn test_fault_keys_are_accepted_only_by_test_builds() {
        let json = br#"{"moesif_application_id":"a","test_crash_after_ms":5,"test_panic_header":"x-panic","test_properties_one_by_one":true}"#;
        let p = Config::parse(json).unwrap();
        #[cfg(not(feature = "test-faults"))]
        assert_eq!(
            p.warnings,
            vec![
                "unknown config key `test_crash_after_ms` ignored",
                "unknown config key `test_panic_header` ignored",
                "unknown config key `test_properties_one_by_one` ignored"
            ]
        );
        #[cfg(feature = "test-faults")]
        {
            assert!(p.warnings.is_empty(), "{:?}", p.warnings);
            assert_eq!(p.config.test_crash_after_ms, Some(5));
            assert_eq!(p.config.test_panic_header.as_deref(), Some("x-panic"));
            assert!(p.config.test_properties_one_by_one);
            let e = Config::parse(br#"{"moesif_application_id":"a","test_panic_header":" "}"#)
                .unwrap_err();
            assert_eq!(e.key, "test_panic_header");
        }
    }

    #[test]
    fn json_in_a_string_is_accepted() {
        let p = Config::parse(br#""{\"moesif_application_id\":\"a\"}""#).unwrap();
        assert_eq!(p.config.moesif_application_id, "a");
    }

    #[test]
    fn not_json_is_rejected() {
        let e = Config::parse(b"moesif_application_id: a").unwrap_err();
        assert_eq!(e.key, "(root)");
        let e = Config::parse(b"[1]").unwrap_err();
        assert_eq!(e.key, "(root)");
    }

    #[test]
    fn app_id_is_masked() {
        let mut c = Config {
            moesif_application_id: "abcdefghijklmnop".into(),
            ..Config::default()
        };
        assert_eq!(c.masked_application_id(), "abcd********mnop");
        c.moesif_application_id = "short".into();
        assert_eq!(c.masked_application_id(), "*****");
    }
}
