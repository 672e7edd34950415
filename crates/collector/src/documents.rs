//! The documents the plugin fetches, the app config (`GET /v1/config`) and the governance
//! rules (`GET /v1/rules`), each with the tag the plugin compares to decide when to refetch
//! it (`X-Moesif-Config-ETag`, `X-Moesif-Rules-Tag`).

use serde_json::Value;

/// What Moesif serves to an app with no sampling or rules configured.
pub const DEFAULT_APP_CONFIG: &str = r#"{"sample_rate":100,"user_sample_rate":{},"company_sample_rate":{},"regex_config":[],"user_rules":{},"company_rules":{}}"#;

/// What Moesif serves to an app without governance rules.
pub const DEFAULT_RULES: &str = "[]";

/// Which of the two documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// A JSON object, served at `GET /v1/config`.
    AppConfig,
    /// A JSON array, served at `GET /v1/rules`.
    Rules,
}

impl Document {
    /// The header that carries the document's tag, on its own answers and on batch answers.
    pub fn tag_header(self) -> &'static str {
        match self {
            Self::AppConfig => "x-moesif-config-etag",
            Self::Rules => "x-moesif-rules-tag",
        }
    }

    /// The name error messages use.
    pub fn name(self) -> &'static str {
        match self {
            Self::AppConfig => "app config",
            Self::Rules => "rules",
        }
    }

    fn default_body(self) -> &'static str {
        match self {
            Self::AppConfig => DEFAULT_APP_CONFIG,
            Self::Rules => DEFAULT_RULES,
        }
    }

    /// Whether `value` has the document's shape; the reason if not.
    fn check(self, value: &Value) -> Result<(), String> {
        match self {
            Self::AppConfig if !value.is_object() => {
                Err("app config must be a JSON object".to_owned())
            }
            Self::Rules if !value.is_array() => Err("rules must be a JSON array".to_owned()),
            _ => Ok(()),
        }
    }
}

/// A document as served, and its tag.
#[derive(Debug, Clone)]
pub struct Tagged {
    body: String,
    tag: String,
}

impl Tagged {
    /// Parses `json` as a `document` (an object for the app config, an array for the rules).
    /// The served bytes are its compact form, so the tag only changes when the content does,
    /// not when whitespace does.
    pub fn parse(document: Document, json: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| format!("{} is not valid JSON: {e}", document.name()))?;
        document.check(&value)?;
        Ok(Self::from_body(value.to_string()))
    }

    /// What Moesif serves when nothing is configured.
    pub fn default_for(document: Document) -> Self {
        Self::from_body(document.default_body().to_owned())
    }

    fn from_body(body: String) -> Self {
        let tag = format!("{:016x}", fnv1a64(body.as_bytes()));
        Self { body, tag }
    }

    /// The JSON text to serve.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The tag: a stable hash of [`Self::body`].
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// FNV-1a, 64 bit: tiny, deterministic across runs and platforms, good enough for a tag.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::{fnv1a64, Document, Tagged};

    fn tag(document: Document, json: &str) -> Result<String, String> {
        Tagged::parse(document, json).map(|t| t.tag().to_owned())
    }

    #[test]
    fn config_tag_tracks_content_not_whitespace() {
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let config = Document::AppConfig;
        let a = tag(config, r#"{"sample_rate": 50}"#);
        assert_eq!(a, tag(config, r#"{ "sample_rate":50 }"#));
        assert_ne!(a, tag(config, r#"{"sample_rate":10}"#));
        assert_eq!(
            tag(config, "[]"),
            Err("app config must be a JSON object".to_owned())
        );
        assert_eq!(Tagged::default_for(config).tag().len(), 16);
    }

    #[test]
    fn rules_are_an_array_tagged_the_same_way() -> Result<(), String> {
        let rules = Document::Rules;
        let default = Tagged::default_for(rules);
        assert_eq!(default.body(), "[]");
        assert_eq!(Some(default.tag()), tag(rules, " [ ] ").ok().as_deref());
        let one = Tagged::parse(rules, r#"[ {"_id": "r1", "block": true} ]"#)?;
        assert_eq!(one.body(), r#"[{"_id":"r1","block":true}]"#);
        assert_eq!(
            one.tag(),
            format!("{:016x}", fnv1a64(one.body().as_bytes()))
        );
        assert_ne!(one.tag(), default.tag());
        assert_eq!(
            tag(rules, "{}"),
            Err("rules must be a JSON array".to_owned())
        );
        assert!(tag(rules, "[")
            .err()
            .is_some_and(|e| e.starts_with("rules is not valid JSON: ")));
        Ok(())
    }
}
