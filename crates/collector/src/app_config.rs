//! The app config served at `GET /v1/config`, with the ETag the plugin compares to decide
//! when to refetch it.

use serde_json::Value;

/// What Moesif serves to an app with no sampling or rules configured.
pub const DEFAULT_APP_CONFIG: &str = r#"{"sample_rate":100,"user_sample_rate":{},"company_sample_rate":{},"regex_config":[],"user_rules":{},"company_rules":{}}"#;

/// An app config document and its ETag.
#[derive(Debug, Clone)]
pub struct AppConfig {
    body: String,
    etag: String,
}

impl AppConfig {
    /// Parses a JSON object; the served bytes are its compact form, so the ETag only
    /// changes when the content does, not when whitespace does.
    pub fn parse(json: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| format!("app config is not valid JSON: {e}"))?;
        if !value.is_object() {
            return Err("app config must be a JSON object".to_owned());
        }
        Ok(Self::from_body(value.to_string()))
    }

    fn from_body(body: String) -> Self {
        let etag = format!("{:016x}", fnv1a64(body.as_bytes()));
        Self { body, etag }
    }

    /// The JSON text to serve.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// The `X-Moesif-Config-ETag` value: a stable hash of [`Self::body`].
    pub fn etag(&self) -> &str {
        &self.etag
    }
}

impl Default for AppConfig {
    fn default() -> Self {
        Self::from_body(DEFAULT_APP_CONFIG.to_owned())
    }
}

/// FNV-1a, 64 bit: tiny, deterministic across runs and platforms, good enough for an ETag.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::{fnv1a64, AppConfig};

    #[test]
    fn etag_tracks_content_not_whitespace() {
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        let a = AppConfig::parse(r#"{"sample_rate": 50}"#).map(|c| c.etag().to_owned());
        let b = AppConfig::parse(r#"{ "sample_rate":50 }"#).map(|c| c.etag().to_owned());
        let c = AppConfig::parse(r#"{"sample_rate":10}"#).map(|c| c.etag().to_owned());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(AppConfig::parse("[]").is_err());
        assert_eq!(AppConfig::default().etag().len(), 16);
    }
}
