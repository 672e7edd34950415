//! Sends the batches of a core `Shipper` to the collector with `dispatch_http_call`.
//! Used by the singleton shipper and, in fallback mode, by each worker's filter root.
//! Only ever called from root-context callbacks, so call responses come back to a live context.

use crate::host;
use crate::metrics::Metrics;
use moesif_core::batch::Batch;
use moesif_core::config::Config;
use moesif_core::ratelimit::LogGate;
use moesif_core::shipper::{Outcome, Shipper};
use moesif_core::stats::Counter;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;
use std::time::Duration;

const USER_AGENT: &str = concat!("moesif-envoy-wasm/", env!("CARGO_PKG_VERSION"));

pub struct Delivery {
    config: Config,
    shipper: Shipper,
    metrics: Metrics,
    failure_log: LogGate,
}

impl Delivery {
    pub fn new(config: Config) -> Self {
        let shipper = Shipper::new(&config, host::seed());
        Delivery {
            config,
            shipper,
            metrics: Metrics::define(),
            failure_log: LogGate::new(10_000),
        }
    }

    pub fn shipper(&mut self) -> &mut Shipper {
        &mut self.shipper
    }

    /// Sends every batch that is due.
    pub fn dispatch_due(&mut self, now_ms: u64) {
        while let Some(batch) = self.shipper.poll(now_ms) {
            self.dispatch(batch, now_ms);
        }
    }

    /// Publishes counters to Envoy; done from the tick so requests pay no metric host calls.
    pub fn sync_metrics(&mut self) {
        self.metrics.sync(self.shipper.counts());
    }

    fn dispatch(&mut self, batch: Batch, now_ms: u64) {
        let headers = vec![
            (":method", "POST"),
            (":path", "/v1/events/batch"),
            (":authority", self.config.base_uri.as_str()),
            (
                "x-moesif-application-id",
                self.config.moesif_application_id.as_str(),
            ),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("user-agent", USER_AGENT),
        ];
        let timeout = Duration::from_millis(self.config.connection_timeout);
        match hostcalls::dispatch_http_call(
            &self.config.upstream,
            headers,
            Some(&batch.gzip),
            vec![],
            timeout,
        ) {
            Ok(token) => {
                if self.config.debug {
                    log::info!(
                        "moesif: sending batch of {} events ({} bytes gzip, {} raw) to cluster {} for app {}",
                        batch.events,
                        batch.gzip.len(),
                        batch.raw_bytes,
                        self.config.upstream,
                        self.config.masked_application_id()
                    );
                }
                self.shipper.dispatched(token, batch);
            }
            Err(status) => {
                let outcome = self.shipper.dispatch_failed(batch);
                self.log_failure(
                    outcome,
                    &format!(
                        "dispatch to cluster `{}` refused: {status:?}",
                        self.config.upstream
                    ),
                    now_ms,
                );
            }
        }
    }

    /// Handles the collector's answer to the call `token`.
    pub fn on_response(&mut self, token: u32, now_ms: u64) {
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse::<u16>().ok());
        match self.shipper.on_response(token, status) {
            Some(Outcome::Sent { events }) if self.config.debug => {
                log::info!("moesif: batch of {events} events accepted");
            }
            Some(outcome @ Outcome::Failed { .. }) => {
                let why = match status {
                    Some(s) => format!("collector answered {s}"),
                    None => "no answer from the collector".to_string(),
                };
                self.log_failure(outcome, &why, now_ms);
            }
            _ => {}
        }
        self.dispatch_due(now_ms);
    }

    fn log_failure(&mut self, outcome: Outcome, why: &str, now_ms: u64) {
        if let (Some(held), Outcome::Failed { events, .. }) =
            (self.failure_log.allow(now_ms), outcome)
        {
            log::warn!(
                "moesif: batch of {events} events failed: {why}; dropped, counted in {} ({held} similar messages suppressed)",
                Counter::EventsDroppedBatchFailed.name()
            );
        }
    }
}
