//! Host-independent core of the Moesif Envoy plugin: everything that does not call the proxy.
//! The cdylib glue (`moesif-envoy-wasm`) only adapts host calls to these types.

pub mod app_config;
pub mod batch;
pub mod body;
pub mod config;
pub mod event;
pub mod forward;
pub mod governance;
pub mod headers;
pub mod identity;
pub mod ids;
// Public only to the tests, fuzz targets and benchmarks (feature `testing`).
#[cfg(feature = "testing")]
pub mod json;
#[cfg(not(feature = "testing"))]
mod json;
pub mod liveness;
pub mod log_facts;
pub mod mask;
pub mod pairs;
pub mod policy;
pub mod ratelimit;
pub mod record;
pub mod remote;
pub mod retry;
pub mod route;
#[cfg(feature = "testing")]
pub mod samples;
#[cfg(any(test, feature = "codec-crates"))]
pub mod serde_event;
pub mod shipper;
pub mod skip;
pub mod stats;
pub mod time;
