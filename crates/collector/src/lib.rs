//! Local test tools for the Moesif Envoy plugin.
//!
//! Two binaries are built on this library: `moesif-collector`, a stand-in for the Moesif
//! Collector API that records what the plugin ships and can inject faults, and
//! `sample-upstream`, a fast API for the plugin to sit in front of. Both bind 127.0.0.1 by
//! default and speak plain HTTP/1.1, so tests never need TLS or the real Moesif. The
//! collector also serves a page at `/` for people: the events it received, live ([`viewer`]).
//!
//! A third, `sample-grpc`, serves the gRPC service of [`grpc`] over HTTP/2 without TLS (h2c)
//! on 127.0.0.1, for the tests of gRPC calls (status in the trailers, streamed responses).

pub mod api;
pub mod cli;
pub mod decode;
pub mod dedup;
pub mod documents;
pub mod faults;
pub mod grpc;
pub mod listing;
pub mod serve;
pub mod skim;
pub mod store;
pub mod upstream;
pub mod validate;
pub mod viewer;
