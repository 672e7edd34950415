//! Moesif's remote control: the app config (`GET /v1/config`: sample rates, cohorts) and the
//! governance rules (`GET /v1/rules`), fetched by whoever ships (the singleton, or each worker
//! in fallback mode) and published in shared data, where every filter of the vm_id reads them
//! on its tick and decodes them only when they changed. When to fetch is
//! `moesif_core::remote::Remote`'s decision; this adapts it to host calls.

use crate::host::{self, Buffer, Map};
use moesif_core::app_config::AppConfig;
use moesif_core::config::Config;
use moesif_core::governance::Rules;
use moesif_core::ratelimit::LogGate;
use moesif_core::remote::Remote;
use proxy_wasm::hostcalls;
use std::rc::Rc;
use std::time::Duration;

/// Largest document accepted (Moesif's are a few KB).
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
const LOG_INTERVAL_MS: u64 = 60_000;

/// A document Moesif serves to steer its agents.
pub trait Document: Sized {
    const PATH: &'static str;
    /// The header that carries its tag, on its own answer and on every batch answer.
    const TAG_HEADER: &'static str;
    /// Shared-data key prefix.
    const KEY: &'static str;
    /// What the failure log line calls it.
    const WHAT: &'static str;
    fn parse(bytes: &[u8]) -> Result<Self, String>;
}

impl Document for AppConfig {
    const PATH: &'static str = "/v1/config";
    const TAG_HEADER: &'static str = "x-moesif-config-etag";
    const KEY: &'static str = "moesif_app_config";
    const WHAT: &'static str = "app config (sampling stays as it was: 100% until one arrives)";
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        AppConfig::parse(bytes)
    }
}

impl Document for Rules {
    const PATH: &'static str = "/v1/rules";
    const TAG_HEADER: &'static str = "x-moesif-rules-tag";
    const KEY: &'static str = "moesif_rules";
    const WHAT: &'static str =
        "governance rules (the last ones stay in force: none until some arrive)";
    fn parse(bytes: &[u8]) -> Result<Self, String> {
        Rules::parse(bytes)
    }
}

/// Shared-data keys of a published document and of its version (read on every tick: 8 bytes).
fn keys<D: Document>(queue_name: &str) -> (String, String) {
    (
        format!("{}.{queue_name}", D::KEY),
        format!("{}_version.{queue_name}", D::KEY),
    )
}

/// The shipping side: fetches a document and publishes it.
pub struct Fetcher<D> {
    schedule: Remote,
    in_flight: Option<u32>,
    key: String,
    version_key: String,
    failure_log: LogGate,
    document: std::marker::PhantomData<D>,
}

impl<D: Document> Fetcher<D> {
    pub fn new(config: &Config, now_ms: u64) -> Self {
        let (key, version_key) = keys::<D>(&config.queue_name);
        Fetcher {
            schedule: Remote::new(now_ms),
            in_flight: None,
            key,
            version_key,
            failure_log: LogGate::new(LOG_INTERVAL_MS),
            document: std::marker::PhantomData,
        }
    }

    /// Fetches the document if it is due (never twice at once; a fetch whose answer never
    /// came is given up by the schedule).
    pub fn poll(&mut self, config: &Config, now_ms: u64) {
        if !self.schedule.due(now_ms) {
            return;
        }
        let headers = vec![
            (":method", "GET"),
            (":path", D::PATH),
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

    /// Reads the document's tag off a batch answer: a different one means it changed.
    pub fn saw_answer(&mut self) {
        if let Some(tag) = host::header(Map::CallResponse, D::TAG_HEADER) {
            self.schedule.saw_tag(&tag);
        }
    }

    /// Handles the answer to `token` if it is this fetch's; false if it is not.
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
        let body = host::buffer(
            Buffer::CallResponseBody,
            0,
            body_size.min(MAX_DOCUMENT_BYTES),
        )
        .unwrap_or_default();
        match D::parse(&body) {
            Ok(_) => {
                let tag = host::header(Map::CallResponse, D::TAG_HEADER);
                self.schedule.succeeded(tag.as_deref(), now_ms);
                // The filters of this vm_id (this worker's included) pick it up on their tick.
                let _ = host::set_shared_data(&self.key, &body, None);
                let _ = host::set_shared_data(&self.version_key, &now_ms.to_le_bytes(), None);
            }
            Err(e) => self.fail(&format!("it does not parse: {e}"), now_ms),
        }
        true
    }

    fn fail(&mut self, why: &str, now_ms: u64) {
        self.schedule.failed(now_ms);
        if let Some(held) = self.failure_log.allow(now_ms) {
            log::warn!(
                "moesif: cannot fetch the {} from {}: {why}; retrying with backoff ({held} similar messages suppressed)",
                D::WHAT,
                D::PATH
            );
        }
    }
}

/// The reading side (every filter root): the published document, decoded when it changes.
pub struct Published<D> {
    key: String,
    version_key: String,
    version: Option<Vec<u8>>,
    /// `None` until one was published.
    current: Option<Rc<D>>,
}

impl<D: Document> Published<D> {
    pub fn new(queue_name: &str) -> Self {
        let (key, version_key) = keys::<D>(queue_name);
        Published {
            key,
            version_key,
            version: None,
            current: None,
        }
    }

    /// Picks up a newly published document (one 8-byte read when nothing changed).
    pub fn refresh(&mut self) {
        let (version, _) = host::shared_data(&self.version_key);
        if version.is_none() || version == self.version {
            return;
        }
        let (bytes, _) = host::shared_data(&self.key);
        if let Some(parsed) = bytes.and_then(|b| D::parse(&b).ok()) {
            self.current = Some(Rc::new(parsed));
            self.version = version;
        }
    }

    pub fn current(&self) -> Option<Rc<D>> {
        self.current.clone()
    }
}
