//! Per-request capture: collects what the call looked like without ever pausing it, then hands
//! one record to the filter root in on_log.

use crate::host::{self, Buffer, Map};
use crate::shared::Shared;
use moesif_core::body::BodyCapture;
use moesif_core::headers::{find, take_request_line, take_status};
use moesif_core::record::{Record, Response};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

pub struct Capture {
    shared: Rc<Shared>,
    record: Record,
    request_body: BodyCapture,
    response_headers: Option<Vec<(String, String)>>,
    status: Option<u16>,
    response_body: BodyCapture,
}

impl Capture {
    pub fn new(shared: Rc<Shared>) -> Self {
        let cap = shared.config.max_body_size;
        Capture {
            shared,
            record: Record::default(),
            request_body: BodyCapture::new(cap),
            response_headers: None,
            status: None,
            response_body: BodyCapture::new(cap),
        }
    }
}

impl Context for Capture {}

impl HttpContext for Capture {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let mut headers = host::header_map(Map::Request);
        let line = take_request_line(&mut headers);
        let config = &self.shared.config;
        #[cfg(feature = "test-faults")]
        if let Some(name) = config.test_panic_header.as_deref() {
            if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                // A panic mid-request, like a real bug would cause: the hook must log it before
                // the VM dies, and the config's failure_policy decides what Envoy does next.
                #[allow(clippy::panic)]
                {
                    panic!("test fault: request carried test_panic_header `{name}`");
                }
            }
        }
        let lookup = |name: &Option<String>| {
            name.as_deref()
                .and_then(|n| find(&headers, n))
                .map(str::to_owned)
        };
        self.record.user_id = lookup(&config.user_id_header);
        self.record.company_id = lookup(&config.company_id_header);
        self.record.method = line.method;
        self.record.scheme = line.scheme;
        self.record.authority = line.authority;
        self.record.path = line.path;
        self.record.request_headers = headers;
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, _: bool) -> Action {
        if self.request_body.offer(size) {
            if let Some(chunk) = host::buffer(Buffer::RequestBody, 0, size) {
                self.request_body.push(&chunk);
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let mut headers = host::header_map(Map::Response);
        self.status = take_status(&mut headers);
        self.response_headers = Some(headers);
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, _: bool) -> Action {
        if self.response_body.offer(size) {
            if let Some(chunk) = host::buffer(Buffer::ResponseBody, 0, size) {
                self.response_body.push(&chunk);
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let mut rec = std::mem::take(&mut self.record);
        rec.start_ns = host::i64_property(&["request", "time"]).unwrap_or(0);
        rec.duration_ns = host::i64_property(&["request", "duration"]).unwrap_or(0);
        rec.source_address = host::string_property(&["source", "address"]).unwrap_or_default();
        rec.route_name = host::string_property(&["xds", "route_name"]).unwrap_or_default();
        rec.cluster_name = host::string_property(&["xds", "cluster_name"]).unwrap_or_default();
        rec.request_body = std::mem::replace(&mut self.request_body, BodyCapture::new(0)).finish();
        let status = self.status.or_else(|| {
            host::i64_property(&["response", "code"])
                .and_then(|c| u16::try_from(c).ok())
                .filter(|c| *c > 0)
        });
        if let Some(status) = status {
            rec.upstream_address =
                host::string_property(&["upstream", "address"]).unwrap_or_default();
            rec.response = Some(Response {
                status,
                headers: self.response_headers.take().unwrap_or_default(),
                body: std::mem::replace(&mut self.response_body, BodyCapture::new(0)).finish(),
            });
        }
        self.shared.submit(rec);
    }
}
