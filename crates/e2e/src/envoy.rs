//! The real Envoy, configured from `envoy/local.yaml` with ephemeral ports.

use crate::client::Client;
use crate::process::{wait_for, Proc};
use crate::{envoy_bin, root, wasm_path};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Which blocks of `envoy/local.yaml` to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Filter plus singleton shipper.
    Singleton,
    /// Filter only: each worker ships by itself (a v0.4.0-style config).
    Fallback,
    /// No plugin at all.
    Baseline,
}

/// The filter config the tests and the demo use unless they say otherwise.
pub const DEFAULT_FILTER_CONFIG: &str = r#"{"moesif_application_id": "local-demo-app-id", "user_id_header": "X-User-Id", "company_id_header": "X-Company-Id", "batch_max_wait": 1000}"#;

/// The shipper config the tests and the demo use unless they say otherwise.
pub const DEFAULT_SHIPPER_CONFIG: &str =
    r#"{"moesif_application_id": "local-demo-app-id", "batch_max_wait": 1000}"#;

/// Everything that varies between the Envoys the tests start.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub filter_config: String,
    pub shipper_config: String,
    /// The .wasm the shipper runs.
    pub shipper_wasm: PathBuf,
    /// The .wasm the filter runs, and its root_id (another plugin can be swapped in).
    pub filter_wasm: PathBuf,
    pub filter_root_id: String,
    /// Where the `sample_grpc` cluster (route `/demo.Demo/`) sends gRPC calls; 0 (nothing
    /// listens, calls there fail) unless a test started `sample-grpc`.
    pub grpc_port: u16,
}

impl Options {
    pub fn new(mode: Mode) -> Self {
        Options {
            mode,
            filter_config: DEFAULT_FILTER_CONFIG.into(),
            shipper_config: DEFAULT_SHIPPER_CONFIG.into(),
            shipper_wasm: wasm_path(),
            filter_wasm: wasm_path(),
            filter_root_id: "moesif_api_root_id".into(),
            grpc_port: 0,
        }
    }

    /// Runs another plugin as the filter (benchmark comparisons).
    pub fn filter_plugin(mut self, wasm: PathBuf, root_id: &str) -> Self {
        self.filter_wasm = wasm;
        self.filter_root_id = root_id.into();
        self
    }

    pub fn filter(mut self, json: &str) -> Self {
        self.filter_config = json.into();
        self
    }

    pub fn shipper(mut self, json: &str) -> Self {
        self.shipper_config = json.into();
        self
    }

    pub fn shipper_wasm(mut self, path: PathBuf) -> Self {
        self.shipper_wasm = path;
        self
    }

    /// Routes `/demo.Demo/` to the `sample-grpc` listening on `port`.
    pub fn grpc_port(mut self, port: u16) -> Self {
        self.grpc_port = port;
        self
    }
}

/// Renders `envoy/local.yaml` for `mode` with the default plugin configs.
pub fn render(mode: Mode, filter_config: &str, upstream_port: u16, collector_port: u16) -> String {
    render_with(
        &Options::new(mode).filter(filter_config),
        upstream_port,
        collector_port,
    )
}

/// Renders `envoy/local.yaml` for `opts`.
pub fn render_with(opts: &Options, upstream_port: u16, collector_port: u16) -> String {
    let mode = opts.mode;
    let template = std::fs::read_to_string(root().join("envoy/local.yaml")).unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for line in template.lines() {
        let t = line.trim();
        let cut = |block: &str| match mode {
            Mode::Singleton => false,
            Mode::Fallback => block == "shipper",
            Mode::Baseline => true,
        };
        if let Some(block) = t.strip_prefix("# BEGIN ") {
            skipping = cut(block);
            continue;
        }
        if t.starts_with("# END ") {
            skipping = false;
            continue;
        }
        if skipping {
            continue;
        }
        let block_value = match t {
            "{{FILTER_CONFIG}}" => Some(&opts.filter_config),
            "{{SHIPPER_CONFIG}}" => Some(&opts.shipper_config),
            _ => None,
        };
        if let Some(value) = block_value {
            // Inside a YAML block scalar: every line of the JSON needs the same indent.
            let indent = &line[..line.len() - line.trim_start().len()];
            for l in value.lines() {
                out.push_str(indent);
                out.push_str(l.trim_start());
                out.push('\n');
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.replace("{{ADMIN_PORT}}", "0")
        .replace("{{LISTEN_PORT}}", "0")
        .replace("{{UPSTREAM_PORT}}", &upstream_port.to_string())
        .replace("{{COLLECTOR_PORT}}", &collector_port.to_string())
        .replace("{{GRPC_PORT}}", &opts.grpc_port.to_string())
        .replace("{{FILTER_WASM}}", &opts.filter_wasm.display().to_string())
        .replace("{{FILTER_ROOT_ID}}", &opts.filter_root_id)
        .replace("{{SHIPPER_WASM}}", &opts.shipper_wasm.display().to_string())
}

pub struct Envoy {
    pub proc: Proc,
    pub admin: String,
    pub port: u16,
    pub log: PathBuf,
    client: Client,
}

/// Starts Envoy on `config` (a rendered YAML) and waits until its listener is up.
pub fn start(dir: &Path, config: &str) -> Envoy {
    start_with_workers(dir, config, 2)
}

/// Starts Envoy on a config built as JSON (Envoy reads JSON bootstraps too).
pub fn start_json(dir: &Path, config: &Value) -> Envoy {
    std::fs::create_dir_all(dir).unwrap();
    start_file(dir, "envoy.json", &config.to_string(), 2)
}

/// Starts Envoy with `workers` worker threads (`--concurrency`; the others use 2).
pub fn start_with_workers(dir: &Path, config: &str, workers: u32) -> Envoy {
    start_file(dir, "envoy.yaml", config, workers)
}

fn start_file(dir: &Path, name: &str, config: &str, workers: u32) -> Envoy {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join(name);
    std::fs::write(&cfg, config).unwrap();
    let admin_file = dir.join("admin.addr");
    let log = dir.join("envoy.log");
    let mut cmd = Command::new(envoy_bin());
    cmd.arg("-c")
        .arg(&cfg)
        .args(["--concurrency", &workers.to_string()])
        .args(["--use-dynamic-base-id", "-l", "info"])
        .arg("--admin-address-path")
        .arg(&admin_file);
    let mut proc = Proc::spawn("envoy", cmd, &log);
    let admin = wait_for("envoy admin address", Duration::from_secs(30), || {
        if let Some(status) = proc.try_wait() {
            panic!("envoy exited ({status}):\n{}", tail(&log));
        }
        std::fs::read_to_string(&admin_file)
            .ok()
            .filter(|s| !s.trim().is_empty())
    });
    let client = Client::new();
    let admin = format!("http://{}", admin.trim());
    let port = wait_for("envoy listener", Duration::from_secs(30), || {
        let r = client.get(&format!("{admin}/listeners?format=json"), &[]);
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        v["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            .as_u64()
            .map(|p| p as u16)
    });
    wait_for("envoy LIVE", Duration::from_secs(30), || {
        let r = client.get(&format!("{admin}/ready"), &[]);
        (r.status == 200).then_some(())
    });
    Envoy {
        proc,
        admin,
        port,
        log,
        client,
    }
}

/// The last 60 lines of a log, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

impl Envoy {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The plugin's counters (`wasmcustom.moesif_*`), by name without the prefix.
    pub fn plugin_stats(&self) -> BTreeMap<String, u64> {
        let r = self.client.get(
            &format!("{}/stats?format=json&filter=wasmcustom", self.admin),
            &[],
        );
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        v["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                let name = s["name"].as_str()?.strip_prefix("wasmcustom.")?;
                Some((name.to_string(), s["value"].as_u64()?))
            })
            .collect()
    }

    pub fn stat(&self, name: &str) -> u64 {
        self.plugin_stats().get(name).copied().unwrap_or(0)
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Envoy's own stats whose name contains `filter`, with their values.
    pub fn stats_matching(&self, filter: &str) -> Vec<(String, u64)> {
        let url = format!("{}/stats?format=json&filter={filter}", self.admin);
        let v: Value = serde_json::from_slice(&self.client.get(&url, &[]).body).unwrap();
        v["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["name"].as_str()?.to_string(), s["value"].as_u64()?)))
            .collect()
    }

    /// One of Envoy's own counters, e.g. `http.ingress_http.downstream_rq_total`.
    pub fn server_stat(&self, name: &str) -> u64 {
        let last = name.rsplit('.').next().unwrap_or(name);
        self.stats_matching(last)
            .into_iter()
            .find_map(|(n, v)| (n == name).then_some(v))
            .unwrap_or(0)
    }

    /// Requests Envoy took on the ingress listener, answered or not (a load generator that
    /// stops mid-request leaves some unanswered; they are API calls all the same).
    pub fn completed(&self) -> u64 {
        self.server_stat("http.ingress_http.downstream_rq_total")
    }

    /// Resident memory of the Envoy process.
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    }

    /// `POST` to an admin endpoint, e.g. `/drain_listeners?graceful`.
    pub fn admin_post(&self, path: &str) -> u16 {
        self.client
            .send("POST", &format!("{}{path}", self.admin), &[], Some(b""))
            .status
    }
}

/// Runs `envoy --mode validate` on a config file; returns (success, output).
pub fn validate(config: &Path) -> (bool, String) {
    let out = Command::new(envoy_bin())
        .args(["--mode", "validate", "--use-dynamic-base-id", "-c"])
        .arg(config)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}
