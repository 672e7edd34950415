//! Upstream + collector + Envoy, started together for one test.

use crate::envoy::{self, Envoy, Options};
use crate::services::{
    start_collector_with, start_grpc, start_upstream, Collector, GrpcServer, Upstream,
};
use std::path::PathBuf;

pub struct Stack {
    pub dir: PathBuf,
    pub upstream: Upstream,
    pub collector: Collector,
    pub envoy: Envoy,
}

impl Stack {
    pub fn start(name: &str, opts: &Options) -> Stack {
        Stack::start_with_collector(name, opts, &[])
    }

    /// With the collector started with `flags` (e.g. `--count-only`).
    pub fn start_with_collector(name: &str, opts: &Options, flags: &[&str]) -> Stack {
        let dir = crate::scratch(name);
        let upstream = start_upstream(&dir);
        let collector = start_collector_with(&dir, flags);
        Stack::with_envoy(dir, upstream, collector, opts)
    }

    /// With `sample-grpc` too, behind Envoy's route `/demo.Demo/` (`opts.grpc_port` is set
    /// to it). The server stops when the returned [`GrpcServer`] is dropped.
    pub fn start_with_grpc(name: &str, opts: &Options) -> (Stack, GrpcServer) {
        let dir = crate::scratch(name);
        let upstream = start_upstream(&dir);
        let grpc = start_grpc(&dir);
        let collector = start_collector_with(&dir, &[]);
        let opts = opts.clone().grpc_port(grpc.port);
        (Stack::with_envoy(dir, upstream, collector, &opts), grpc)
    }

    fn with_envoy(dir: PathBuf, upstream: Upstream, collector: Collector, opts: &Options) -> Stack {
        let envoy = envoy::start(
            &dir,
            &envoy::render_with(opts, upstream.port, collector.port),
        );
        Stack {
            dir,
            upstream,
            collector,
            envoy,
        }
    }
}
