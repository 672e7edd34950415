//! Moesif's remote control: the app config (`GET /v1/config`: sample rates) fetched by whoever
//! ships (the singleton, or each worker in fallback mode) and published in shared data, where
//! every filter of the vm_id reads it on its tick and decodes it only when it changed.
//! When to fetch is `moesif_core::remote::Remote`'s decision; this adapts it to host calls.

use crate::host::{self, Buffer, Map};
use moesif_core::app_config::AppConfig;
use moesif_core::config::Config;
use moesif_core::ratelimit::LogGate;
use moesif_core::remote::Remote;
use proxy_wasm::hostcalls;
use std::rc::Rc;
use std::time::Duration;

/// Largest config document accepted (Moesif's are a few KB).
const MAX_CONFIG_BYTES: usize = 1 << 20;
const LOG_INTERVAL_MS: u64 = 60_000;

/// Shared-data keys of the published config and of its version (read on every tick: 8 bytes).
fn keys(queue_name: &str) -> (String, String) {
    (
        format!("moesif_app_config.{queue_name}"),
        format!("moesif_app_config_version.{queue_name}"),
    )
}

/// The shipping side: fetches and publishes.
pub struct Fetcher {
    schedule: Remote,
    in_flight: Option<u32>,
    key: String,
    version_key: String,
    failure_log: LogGate,
}

impl Fetcher {
    pub fn new(config: &Config, now_ms: u64) -> Self {
        let (key, version_key) = keys(&config.queue_name);
        Fetcher {
            schedule: Remote::new(now_ms),
            in_flight: None,
            key,
            version_key,
            failure_log: LogGate::new(LOG_INTERVAL_MS),
        }
    }

    /// Fetches the config if it is due.
    pub fn poll(&mut self, config: &Config, now_ms: u64) {
        if self.in_flight.is_some() || !self.schedule.due(now_ms) {
            return;
        }
        let headers = vec![
            (":method", "GET"),
            (":path", "/v1/config"),
            (":authority", config.base_uri.as_str()),
            (
                "x-moesif-application-id",
                config.moesif_application_id.as_str(),
            ),
            ("user-agent", crate::delivery::USER_AGENT),
        ];
        let timeout = Duration::from_millis(config.connection_timeout);
        self.schedule.started(now_ms);
        match hostcalls::dispatch_http_call(&config.upstream, headers, None, vec![], timeout) {
            Ok(token) => self.in_flight = Some(token),
            Err(status) => self.fail(&format!("cluster refused the call: {status:?}"), now_ms),
        }
    }

    /// A tag seen on a batch response: a different one means the config changed.
    pub fn saw_tag(&mut self, tag: &str) {
        self.schedule.saw_tag(tag);
    }

    /// Handles the answer to `token` if it is the config fetch; false if it is not ours.
    pub fn on_response(&mut self, token: u32, body_size: usize, now_ms: u64) -> bool {
        if self.in_flight != Some(token) {
            return false;
        }
        self.in_flight = None;
        let status = host::header(Map::CallResponse, ":status");
        if status.as_deref() != Some("200") {
            let status = status.unwrap_or_else(|| "no answer".into());
            self.fail(&format!("collector answered {status}"), now_ms);
            return true;
        }
        let body = host::buffer(Buffer::CallResponseBody, 0, body_size.min(MAX_CONFIG_BYTES))
            .unwrap_or_default();
        match AppConfig::parse(&body) {
            Ok(_) => {
                let tag = host::header(Map::CallResponse, "x-moesif-config-etag");
                self.schedule.succeeded(tag.as_deref(), now_ms);
                // The filters of this vm_id (this worker's included) pick it up on their tick.
                let _ = host::set_shared_data(&self.key, &body, None);
                let _ = host::set_shared_data(&self.version_key, &now_ms.to_le_bytes(), None);
            }
            Err(e) => self.fail(&format!("config does not parse: {e}"), now_ms),
        }
        true
    }

    fn fail(&mut self, why: &str, now_ms: u64) {
        self.schedule.failed(now_ms);
        if let Some(held) = self.failure_log.allow(now_ms) {
            log::warn!(
                "moesif: cannot fetch the app config (/v1/config): {why}; sampling stays as it was (100% until one arrives), retrying with backoff ({held} similar messages suppressed)"
            );
        }
    }
}

/// The reading side (every filter root): the published config, decoded when it changes.
pub struct Published {
    key: String,
    version_key: String,
    version: Option<Vec<u8>>,
    /// `None` until a config was published: then every call is captured, with no work.
    current: Option<Rc<AppConfig>>,
}

impl Published {
    pub fn new(queue_name: &str) -> Self {
        let (key, version_key) = keys(queue_name);
        Published {
            key,
            version_key,
            version: None,
            current: None,
        }
    }

    /// Picks up a newly published config (one 8-byte read when nothing changed).
    pub fn refresh(&mut self) {
        let (version, _) = host::shared_data(&self.version_key);
        if version.is_none() || version == self.version {
            return;
        }
        let (bytes, _) = host::shared_data(&self.key);
        if let Some(parsed) = bytes.and_then(|b| AppConfig::parse(&b).ok()) {
            self.current = Some(Rc::new(parsed));
            self.version = version;
        }
    }

    pub fn current(&self) -> Option<Rc<AppConfig>> {
        self.current.clone()
    }
}
