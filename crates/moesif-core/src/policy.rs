//! What the filter's configuration says about turning its records into events: masks, identity,
//! extra event fields. It is the filter's, not the shipper's: under Istio the filter's config
//! (the WasmPlugin) is where users put it. So it travels with every queue block, and the
//! shipper applies the policy of the block it reads; a worker shipping by itself applies its own.

use crate::config::{Config, DirectionSetting};
use crate::identity::IdentityRules;
use crate::mask::CREDENTIAL_HEADERS;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Policy {
    /// Lower-case header names; the credentials included unless `mask_credentials` is off.
    pub request_header_masks: Vec<String>,
    pub response_header_masks: Vec<String>,
    pub request_body_masks: Vec<String>,
    pub response_body_masks: Vec<String>,
    pub request_query_masks: Vec<String>,
    pub user_id_header: Option<String>,
    pub company_id_header: Option<String>,
    pub authorization_header_names: Vec<String>,
    pub authorization_user_id_field: String,
    pub authorization_company_id_field: Option<String>,
    pub session_token_header: Option<String>,
    pub api_version_header: Option<String>,
    /// The members of the configured metadata object, as JSON text without the braces
    /// (`"team":"a","tier":1`), written as is into every event's `metadata`.
    pub metadata_members: String,
    /// `Some` when the config fixes the direction; `None` takes it from the record.
    pub direction: Option<Direction>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Incoming,
    Outgoing,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "Incoming",
            Direction::Outgoing => "Outgoing",
        }
    }
}

impl Policy {
    pub fn from_config(c: &Config) -> Policy {
        let headers = |extra: &[String]| {
            let credentials = CREDENTIAL_HEADERS
                .iter()
                .filter(|_| c.mask_credentials)
                .map(|h| h.to_string());
            let mut names: Vec<String> = credentials
                .chain(extra.iter().map(|h| h.trim().to_ascii_lowercase()))
                .collect();
            names.sort();
            names.dedup();
            names
        };
        let metadata_members = c
            .metadata
            .as_ref()
            .and_then(|m| serde_json::to_string(m).ok())
            .and_then(|text| {
                let inner = text.strip_prefix('{')?.strip_suffix('}')?;
                Some(inner.to_string())
            })
            .unwrap_or_default();
        Policy {
            request_header_masks: headers(&c.request_header_masks),
            response_header_masks: headers(&c.response_header_masks),
            request_body_masks: c.request_body_masks.clone(),
            response_body_masks: c.response_body_masks.clone(),
            request_query_masks: c.request_query_masks.clone(),
            user_id_header: c.user_id_header.clone(),
            company_id_header: c.company_id_header.clone(),
            authorization_header_names: c.authorization_header_names(),
            authorization_user_id_field: c.authorization_user_id_field.clone(),
            authorization_company_id_field: c.authorization_company_id_field.clone(),
            session_token_header: c.session_token_header.clone(),
            api_version_header: c.api_version_header.clone(),
            metadata_members,
            direction: match c.direction {
                DirectionSetting::Auto => None,
                DirectionSetting::Incoming => Some(Direction::Incoming),
                DirectionSetting::Outgoing => Some(Direction::Outgoing),
            },
        }
    }

    /// The bytes a queue block carries.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Policy, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn identity_rules(&self) -> IdentityRules {
        IdentityRules {
            user_id_header: self.user_id_header.clone(),
            company_id_header: self.company_id_header.clone(),
            authorization_header_names: self.authorization_header_names.clone(),
            authorization_user_id_field: self.authorization_user_id_field.clone(),
            authorization_company_id_field: self.authorization_company_id_field.clone(),
        }
    }
}

/// A policy ready to apply: decoded once per block (or once per filter root), not per event.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub policy: Policy,
    pub identity: IdentityRules,
}

impl Compiled {
    pub fn new(policy: Policy) -> Compiled {
        Compiled {
            identity: policy.identity_rules(),
            policy,
        }
    }
}

impl Default for Compiled {
    /// No masks, no identity: for tests of the event's shape.
    fn default() -> Self {
        Compiled::new(Policy::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_by_default_and_the_switch_ships_them() {
        let c =
            Config::parse(br#"{"moesif_application_id":"a","request_header_masks":["X-Secret"]}"#)
                .unwrap()
                .config;
        let p = Policy::from_config(&c);
        for h in CREDENTIAL_HEADERS {
            assert!(p.request_header_masks.contains(&h.to_string()), "{h}");
            assert!(p.response_header_masks.contains(&h.to_string()), "{h}");
        }
        assert!(p.request_header_masks.contains(&"x-secret".to_string()));
        let off = Config::parse(br#"{"moesif_application_id":"a","mask_credentials":false}"#)
            .unwrap()
            .config;
        assert!(Policy::from_config(&off).request_header_masks.is_empty());
    }

    #[test]
    fn round_trips_and_carries_metadata_members() {
        let c = Config::parse(
            br#"{"moesif_application_id":"a","metadata":{"team":"payments","tier":1},"direction":"Outgoing"}"#,
        )
        .unwrap()
        .config;
        let p = Policy::from_config(&c);
        assert_eq!(p.metadata_members, r#""team":"payments","tier":1"#);
        assert_eq!(p.direction, Some(Direction::Outgoing));
        assert_eq!(Policy::decode(&p.encode()).unwrap(), p);
    }
}
