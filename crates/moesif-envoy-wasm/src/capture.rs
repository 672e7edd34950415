//! Per-request capture: collects what the call looked like without ever pausing it, then hands
//! one record to the filter root in on_log.

use crate::host::{self, Buffer, Map};
use crate::properties::Properties;
use crate::shared::Shared;
use moesif_core::app_config::{self, AppConfig, Rate};
use moesif_core::body::BodyCapture;
use moesif_core::config::DirectionSetting;
use moesif_core::governance::{Call, Cohorts};
use moesif_core::headers::{client_ip, forwarded_ip};
use moesif_core::identity::identify;
use moesif_core::pairs::RawHeaders;
use moesif_core::record::{Record, Response};
use moesif_core::stats::Counter;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

/// Trailers kept per response: gRPC sends two or three; anything beyond is not API metadata.
const MAX_TRAILERS: usize = 32;
const MAX_TRAILER_BYTES: usize = 8 * 1024;

pub struct Capture {
    shared: Rc<Shared>,
    /// Left out (a `skip` rule matched, or sampling): nothing more is read or recorded.
    skipped: bool,
    /// The sample rate depends on the response status: decided in on_log with the config and
    /// the facts it needs.
    sample_at_log: Option<(Rc<AppConfig>, SampleFacts)>,
    /// Response headers that matching non-blocking governance rules add.
    add_headers: Vec<(String, String)>,
    record: Record,
    /// `record.source_address` was settled at request headers (for sampling or governance):
    /// the peer's address is a host call, made at most once per call.
    peer_read: bool,
    /// `None`: bodies of this direction are not captured (no body host call at all).
    request_body: Option<BodyCapture>,
    response_headers: Option<RawHeaders>,
    status: Option<u16>,
    response_body: Option<BodyCapture>,
    trailers: RawHeaders,
}

impl Capture {
    pub fn new(shared: Rc<Shared>) -> Self {
        let config = &shared.config;
        let request_body = config.request_body_cap().map(BodyCapture::new);
        let response_body = config.response_body_cap().map(BodyCapture::new);
        Capture {
            shared,
            skipped: false,
            sample_at_log: None,
            add_headers: Vec::new(),
            record: Record::default(),
            peer_read: false,
            request_body,
            response_headers: None,
            status: None,
            response_body,
            trailers: RawHeaders::default(),
        }
    }

    /// Whether a `skip` rule matches the request line.
    fn is_skipped(&self, headers: &RawHeaders) -> bool {
        let rules = &self.shared.skip;
        let get = |name| headers.get(name).unwrap_or_default();
        !rules.is_empty() && rules.matches(get(":method"), get(":authority"), get(":path"))
    }
}

/// What a sampling decision is made from, besides the method and route.
pub struct SampleFacts {
    ip: Option<String>,
    user: Option<String>,
    company: Option<String>,
}

impl Capture {
    /// Moesif's remote controls, at request headers: governance (when on), then sampling. They
    /// only run once Moesif's app config or rules have arrived; until then there is no work.
    fn steer(&mut self) -> Action {
        let app = self.shared.app_config();
        let rules = self.shared.rules().filter(|r| !r.is_empty());
        // What Moesif serves to apps that do not sample: nothing to decide on the hot path.
        let sampling = app.as_ref().filter(|a| !a.keeps_everything()).cloned();
        if sampling.is_none() && rules.is_none() {
            return Action::Continue;
        }
        let facts = self.facts();
        if let Some(rules) = rules {
            let empty = serde_json::Map::new();
            let cohorts = Cohorts {
                user_rules: app.as_ref().map_or(&empty, |a| &a.user_rules),
                company_rules: app.as_ref().map_or(&empty, |a| &a.company_rules),
            };
            let rec = &self.record;
            let call = Call {
                verb: &rec.method,
                route: route(&rec.path),
                ip: facts.ip.as_deref(),
                user: facts.user.as_deref(),
                company: facts.company.as_deref(),
            };
            let decision = rules.decide(&call, &cohorts);
            if let Some(block) = decision.block {
                // Answered from Envoy: the upstream never sees the call. Its event is always
                // kept (not sampled), carrying the rule.
                host::send_local_response(block.status, &block.headers, &block.body);
                self.record.blocked_by = Some(block.rule_id);
                return Action::Pause;
            }
            self.add_headers = decision.add_headers;
        }
        if let Some(app) = sampling {
            self.sample(app, facts);
        }
        Action::Continue
    }

    /// Who made the call and from where, for sampling and governance. The peer's address read
    /// here is the record's too.
    fn facts(&mut self) -> SampleFacts {
        let headers = self.record.request_headers.regular();
        let who = identify(&headers, &self.shared.policy.identity);
        let peer = peer_unless_forwarded(&headers, || {
            host::string_property("source\0address").unwrap_or_default()
        });
        let ip = client_ip(&headers, &peer);
        self.record.source_address = peer;
        self.peer_read = true;
        SampleFacts {
            ip,
            user: who.user_id,
            company: who.company_id,
        }
    }

    /// Moesif's sampling: a call left out copies no body and makes no record.
    fn sample(&mut self, app: Rc<AppConfig>, facts: SampleFacts) {
        let rec = &self.record;
        let rate = app.sample_rate_at_request(
            &rec.method,
            route(&rec.path),
            facts.ip.as_deref(),
            facts.user.as_deref(),
            facts.company.as_deref(),
        );
        match rate {
            Rate::Known(rate) => self.keep_or_drop(rate),
            Rate::DependsOnStatus => self.sample_at_log = Some((app, facts)),
        }
    }

    fn keep_or_drop(&mut self, rate: u8) {
        if app_config::keep(rate, self.shared.roll()) {
            self.record.weight = app_config::weight(rate);
        } else {
            self.leave_out(Counter::CallsSampledOut);
        }
    }

    /// Nothing more of this call is read or recorded; it is counted as `why`.
    fn leave_out(&mut self, why: Counter) {
        self.skipped = true;
        self.request_body = None;
        self.response_body = None;
        self.record = Record::default();
        self.shared.count(why);
    }
}

/// The peer's address (`read`: from the host), only when no forwarding header names the
/// client (empty then): the client IP comes from that header.
fn peer_unless_forwarded(headers: &[(&str, &str)], read: impl FnOnce() -> String) -> String {
    if forwarded_ip(headers).is_some() {
        return String::new();
    }
    read()
}

/// The path without its query string.
fn route(path: &str) -> &str {
    path.split('?').next().unwrap_or_default()
}

/// Offers a body chunk of `size` bytes to `capture`, fetching it from the host only if wanted.
fn take_chunk(capture: &mut Option<BodyCapture>, buffer: Buffer, size: usize) {
    if let Some(capture) = capture {
        if capture.offer(size) {
            if let Some(chunk) = host::buffer(buffer, 0, size) {
                capture.push(chunk);
            }
        }
    }
}

fn finish(capture: &mut Option<BodyCapture>) -> moesif_core::body::Body {
    capture.take().map(BodyCapture::finish).unwrap_or_default()
}

impl Context for Capture {}

impl HttpContext for Capture {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        // One host call for the whole map, kept as the host serialized it.
        let headers = host::header_map(Map::Request);
        if self.is_skipped(&headers) {
            self.leave_out(Counter::CallsSkipped);
            return Action::Continue;
        }
        #[cfg(feature = "test-faults")]
        if let Some(name) = self.shared.config.test_panic_header.as_deref() {
            if headers.pairs().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                // A panic mid-request, like a real bug would cause: the hook must log it before
                // the VM dies, and the config's failure_policy decides what Envoy does next.
                #[allow(clippy::panic)]
                {
                    panic!("test fault: request carried test_panic_header `{name}`");
                }
            }
        }
        let get = |name| headers.get(name).unwrap_or_default().to_owned();
        self.record.method = get(":method");
        self.record.scheme = get(":scheme");
        self.record.authority = get(":authority");
        self.record.path = get(":path");
        self.record.request_headers = headers;
        self.record.weight = 1;
        self.steer()
    }

    fn on_http_request_body(&mut self, size: usize, _: bool) -> Action {
        take_chunk(&mut self.request_body, Buffer::RequestBody, size);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        // Headers a matching non-blocking governance rule adds, sampled or not.
        for (name, value) in std::mem::take(&mut self.add_headers) {
            host::add_header(Map::Response, &name, &value);
        }
        if self.skipped {
            return Action::Continue;
        }
        let headers = host::header_map(Map::Response);
        self.status = headers.get(":status").and_then(|s| s.parse().ok());
        self.response_headers = Some(headers);
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, _: bool) -> Action {
        take_chunk(&mut self.response_body, Buffer::ResponseBody, size);
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _: usize) -> Action {
        if self.skipped {
            return Action::Continue;
        }
        let trailers = host::header_map(Map::ResponseTrailers);
        let mut bytes = 0;
        let kept: Vec<(&str, &str)> = trailers
            .pairs()
            .take(MAX_TRAILERS)
            .take_while(|(n, v)| {
                bytes += n.len() + v.len();
                bytes <= MAX_TRAILER_BYTES
            })
            .collect();
        self.trailers = if kept.len() == trailers.pairs().count() {
            trailers
        } else {
            RawHeaders::from_pairs(&kept)
        };
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Some((app, facts)) = self.sample_at_log.take() {
            let rec = &self.record;
            let status = self.status.unwrap_or(0);
            let rate = app.sample_rate_at_log(
                &rec.method,
                route(&rec.path),
                facts.ip.as_deref(),
                status,
                facts.user.as_deref(),
                facts.company.as_deref(),
            );
            self.keep_or_drop(rate);
        }
        if self.skipped {
            return;
        }
        let mut rec = std::mem::take(&mut self.record);
        let mut properties = Properties::read(self.shared.log_properties.as_ref());
        if properties.one_by_one() {
            self.shared.count(Counter::CallsPropertiesOneByOne);
        }
        rec.start_ns = properties.start_ns();
        rec.duration_ns = properties.duration_ns();
        if !self.peer_read {
            rec.source_address = peer_unless_forwarded(&rec.request_headers.regular(), || {
                properties.source_address()
            });
        }
        rec.route_name = properties.route_name();
        rec.cluster_name = properties.cluster_name();
        if self.shared.config.direction == DirectionSetting::Auto {
            rec.outbound = properties.listener_direction() == 2;
        }
        rec.request_body = finish(&mut self.request_body);
        let status = self.status.or_else(|| {
            host::i64_property("response\0code")
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| *c > 0)
        });
        if let Some(status) = status {
            rec.upstream_address = properties.upstream_address();
            rec.response = Some(Response {
                status,
                headers: self.response_headers.take().unwrap_or_default(),
                body: finish(&mut self.response_body),
                trailers: std::mem::take(&mut self.trailers),
            });
        }
        self.shared.submit(rec);
    }
}
