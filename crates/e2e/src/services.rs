//! The sample upstream, the sample gRPC server and the local collector, as real processes.

use crate::client::Client;
use crate::process::Proc;
use crate::tool_bin;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

pub struct Upstream {
    pub proc: Proc,
    pub port: u16,
}

pub fn start_upstream(dir: &Path) -> Upstream {
    let mut cmd = Command::new(tool_bin("sample-upstream"));
    cmd.args(["--listen", "127.0.0.1:0"]);
    let (proc, addr) = Proc::spawn_listening("sample-upstream", cmd, &dir.join("upstream.log"));
    Upstream {
        proc,
        port: port_of(&addr),
    }
}

/// `sample-grpc`: gRPC service `demo.Demo` over h2c (see `e2e::grpc` for a client).
pub struct GrpcServer {
    pub proc: Proc,
    pub port: u16,
}

pub fn start_grpc(dir: &Path) -> GrpcServer {
    let mut cmd = Command::new(tool_bin("sample-grpc"));
    cmd.args(["--listen", "127.0.0.1:0"]);
    let (proc, addr) = Proc::spawn_listening("sample-grpc", cmd, &dir.join("grpc.log"));
    GrpcServer {
        proc,
        port: port_of(&addr),
    }
}

pub struct Collector {
    pub proc: Proc,
    pub port: u16,
    client: Client,
}

pub fn start_collector(dir: &Path) -> Collector {
    start_collector_with(dir, &[])
}

/// The collector with extra flags, e.g. `--count-only` for benchmarks.
pub fn start_collector_with(dir: &Path, flags: &[&str]) -> Collector {
    let mut cmd = Command::new(tool_bin("moesif-collector"));
    cmd.args(["--listen", "127.0.0.1:0", "--events-file"])
        .arg(dir.join("events.jsonl"))
        .args(flags);
    let (proc, addr) = Proc::spawn_listening("moesif-collector", cmd, &dir.join("collector.log"));
    Collector {
        proc,
        port: port_of(&addr),
        client: Client::new(),
    }
}

impl Collector {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every stored event, oldest first.
    pub fn events(&self) -> Vec<Value> {
        let r = self.client.get(&self.url("/_collector/events"), &[]);
        assert_eq!(r.status, 200, "collector events: {}", r.text());
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v.as_array().cloned().unwrap_or_default()
    }

    pub fn stats(&self) -> Value {
        let r = self.client.get(&self.url("/_collector/stats"), &[]);
        serde_json::from_slice(&r.body).unwrap()
    }

    /// Number of events stored so far.
    pub fn event_count(&self) -> u64 {
        self.stats()["events"].as_u64().unwrap_or(0)
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap()
}

impl Collector {
    /// POSTs `body` as JSON to one of the collector's `/_collector/...` control endpoints.
    fn control(&self, path: &str, body: &Value) {
        let r = self.client.send(
            "POST",
            &self.url(path),
            &[("content-type", "application/json")],
            Some(body.to_string().as_bytes()),
        );
        assert!(r.status < 300, "{path} {body}: {} {}", r.status, r.text());
    }

    /// Replaces the collector's fault spec (see the collector's `/_collector/faults`).
    pub fn set_faults(&self, spec: &Value) {
        self.control("/_collector/faults", spec);
    }

    /// Replaces the app config served at `GET /v1/config` (a new ETag follows).
    pub fn set_app_config(&self, config: &Value) {
        self.control("/_collector/config", config);
    }

    /// Replaces the governance rules served at `GET /v1/rules` (a new tag follows).
    pub fn set_rules(&self, rules: &Value) {
        self.control("/_collector/rules", rules);
    }

    /// The faults still in force (`count` is what is left).
    pub fn faults(&self) -> Value {
        let r = self.client.get(&self.url("/_collector/faults"), &[]);
        serde_json::from_slice(&r.body).unwrap()
    }

    pub fn clear_faults(&self) {
        self.client
            .send("DELETE", &self.url("/_collector/faults"), &[], None);
    }
}

impl Collector {
    /// Forgets every stored event and resets the stats.
    pub fn clear_events(&self) {
        let r = self
            .client
            .send("DELETE", &self.url("/_collector/events"), &[], None);
        assert!(r.status < 300, "clear events: {}", r.status);
    }
}
