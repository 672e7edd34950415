//! Sends the batches of a core `Shipper` to the collector with `dispatch_http_call`.
//! Used by the singleton shipper and, in fallback mode, by each worker's filter root.
//! Only ever called from root-context callbacks, so call responses come back to a live context.

use crate::host::{self, Buffer, Map};
use crate::metrics::Metrics;
use crate::remote::Fetcher;
use moesif_core::app_config::AppConfig;
use moesif_core::config::Config;
use moesif_core::governance::Rules;
use moesif_core::policy::Compiled;
use moesif_core::ratelimit::LogGate;
use moesif_core::retry::parse_retry_after;
use moesif_core::shipper::{Outcome, Outgoing, Shipper};
use moesif_core::stats::{Counter, Counts};
use proxy_wasm::hostcalls;
use std::rc::Rc;
use std::time::Duration;

pub const USER_AGENT: &str = concat!("moesif-envoy-wasm/", env!("CARGO_PKG_VERSION"));
/// At most one failure line and one set of drop lines per interval.
const LOG_INTERVAL_MS: u64 = 10_000;

pub struct Delivery {
    config: Config,
    shipper: Shipper,
    metrics: Metrics,
    failure_log: LogGate,
    drop_log: LogGate,
    /// Counters as of the last drop log line, to report what happened since.
    logged: Counts,
    /// Moesif's app config and governance rules, fetched by whoever ships.
    app_config: Fetcher<AppConfig>,
    rules: Fetcher<Rules>,
}

impl Delivery {
    pub fn new(config: Config) -> Self {
        let shipper = Shipper::new(&config, host::seed());
        let now = host::now_ms();
        let app_config = Fetcher::new(&config, now);
        let rules = Fetcher::new(&config, now);
        Delivery {
            config,
            shipper,
            metrics: Metrics::new(),
            failure_log: LogGate::new(LOG_INTERVAL_MS),
            drop_log: LogGate::new(LOG_INTERVAL_MS),
            logged: Counts::default(),
            app_config,
            rules,
        }
    }

    /// Fetches Moesif's app config and rules if due (only roots that ship call this).
    pub fn fetch_due(&mut self, now_ms: u64) {
        self.app_config.poll(&self.config, now_ms);
        self.rules.poll(&self.config, now_ms);
    }

    pub fn own_policy(&self) -> Rc<Compiled> {
        self.shipper.own_policy()
    }

    pub fn shipper(&mut self) -> &mut Shipper {
        &mut self.shipper
    }

    /// Sends every batch that may go now.
    pub fn dispatch_due(&mut self, now_ms: u64) {
        while let Some(out) = self.shipper.poll(now_ms) {
            self.dispatch(out, now_ms);
        }
    }

    fn dispatch(&mut self, out: Outgoing, now_ms: u64) {
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
            Some(&out.batch.gzip),
            vec![],
            timeout,
        ) {
            Ok(token) => {
                if self.config.debug {
                    log::info!(
                        "moesif: sending batch of {} events ({} bytes gzip, {} raw, attempt {}) to cluster {} for app {}",
                        out.batch.events,
                        out.batch.gzip.len(),
                        out.batch.raw_bytes,
                        out.attempts + 1,
                        self.config.upstream,
                        self.config.masked_application_id()
                    );
                }
                self.shipper.dispatched(token, out);
            }
            Err(status) => {
                let outcome = self.shipper.dispatch_failed(out, now_ms);
                let why = format!(
                    "cluster `{}` refused the call: {status:?}",
                    self.config.upstream
                );
                self.log_failure(outcome, &why, now_ms);
            }
        }
    }

    /// Handles the collector's answer to the call `token`.
    pub fn on_response(&mut self, token: u32, body_size: usize, now_ms: u64) {
        if self.app_config.on_response(token, body_size, now_ms)
            || self.rules.on_response(token, body_size, now_ms)
        {
            return;
        }
        self.app_config.saw_answer();
        self.rules.saw_answer();
        // Bytes from outside (the collector, or whatever answers in its place): read lossily.
        let header = |name| host::header(Map::CallResponse, name);
        let status = header(":status").and_then(|s| s.trim().parse::<u16>().ok());
        let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v));
        match self.shipper.on_response(token, status, retry_after, now_ms) {
            Some(Outcome::Sent { events }) if self.config.debug => {
                log::info!("moesif: batch of {events} events accepted");
            }
            Some(outcome @ (Outcome::Retrying { .. } | Outcome::Rejected { .. })) => {
                let reason = host::buffer(Buffer::CallResponseBody, 0, body_size.min(200))
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let why = match status {
                    Some(s) => format!("collector answered {s} {}", reason.trim()),
                    None => "no answer from the collector".to_string(),
                };
                self.log_failure(outcome, &why, now_ms);
            }
            _ => {}
        }
        self.dispatch_due(now_ms);
    }

    fn log_failure(&mut self, outcome: Outcome, why: &str, now_ms: u64) {
        let Some(held) = self.failure_log.allow(now_ms) else {
            return;
        };
        match outcome {
            Outcome::Retrying { events, delay_ms } => log::warn!(
                "moesif: batch of {events} events failed: {why}; retrying in {delay_ms} ms ({held} similar messages suppressed)"
            ),
            Outcome::Rejected { events } => log::warn!(
                "moesif: batch of {events} events rejected: {why}; not retryable, dropped ({held} similar messages suppressed)"
            ),
            Outcome::Sent { .. } => {}
        }
    }

    /// Publishes metrics to Envoy and logs (rate-limited) any events dropped, or diverted from
    /// a full queue, since last time. Done from the tick so requests pay no metric host calls.
    pub fn sync_metrics(&mut self, now_ms: u64) {
        let counts = *self.shipper.counts();
        self.metrics.sync(&counts, &self.shipper.gauges());
        let notable: Vec<(Counter, u64, &str)> = counts
            .since(&self.logged)
            .filter_map(|(c, n)| Some((c, n, c.notice()?)))
            .collect();
        if !notable.is_empty() && self.drop_log.allow(now_ms).is_some() {
            for (c, n, notice) in notable {
                log::warn!("moesif: {n} {notice}, counted in {}", c.name());
            }
            self.logged = counts;
        }
    }

    /// Events not yet acknowledged by the collector.
    pub fn unsent(&self) -> u64 {
        self.shipper.unsent()
    }
}
