//! A local Moesif-compatible Collector API: stores what the plugin ships and can inject
//! faults, and serves an app config and governance rules that tests can change, so the plugin
//! can be tested without the real Moesif. See `collector::api`.

use std::path::Path;
use std::process::ExitCode;

use collector::api::{router, Collector};
use collector::cli::{args_or_help, exit_code, parse_flags, Flags};
use collector::documents::{Document, Tagged};
use collector::faults::FaultSpec;
use collector::serve::{bind_and_announce, serve};
use collector::store::Store;
use hyper_util::service::TowerToHyperService;
use tokio::sync::mpsc;

const USAGE: &str = "usage: moesif-collector [--listen ADDR] [--events-file PATH] \
[--app-config PATH] [--rules PATH] [--faults JSON] [--count-only]
  --listen ADDR        address to bind (default 127.0.0.1:8088; port 0 picks a free port)
  --events-file PATH   JSON-lines file every accepted event is appended to
                       (default moesif-events.jsonl)
  --app-config PATH    JSON object served at GET /v1/config (default: sample everything,
                       no cohorts); changeable at runtime with POST /_collector/config
  --rules PATH         JSON array of governance rules served at GET /v1/rules
                       (default []); changeable at runtime with POST /_collector/rules
  --faults JSON        initial fault spec, as POSTed to /_collector/faults (one target)
  --count-only         for benchmarks, where the collector shares the CPU with the proxy:
                       read only each event's transaction_id and count; no validation
                       beyond \"JSON array of objects\", no events file (--events-file is
                       ignored), no per-batch log line, GET /_collector/events is always [],
                       and stats add \"count_only\": true
Prints `LISTENING <addr>` once bound; exits on SIGTERM/SIGINT.";

#[tokio::main]
async fn main() -> ExitCode {
    exit_code("moesif-collector", run().await)
}

async fn run() -> Result<(), String> {
    let Some(args) = args_or_help(USAGE) else {
        return Ok(());
    };
    let flags = parse_flags(
        args,
        &["listen", "events-file", "app-config", "rules", "faults"],
        &["count-only"],
    )
    .map_err(|e| format!("{e}\n{USAGE}"))?;
    let listen = flags.value("listen").unwrap_or("127.0.0.1:8088");
    let events_file = flags.value("events-file").unwrap_or("moesif-events.jsonl");
    let config = load(&flags, "app-config", Document::AppConfig)?;
    let rules = load(&flags, "rules", Document::Rules)?;
    let faults = flags
        .value("faults")
        .map(|json| FaultSpec::parse(json.as_bytes()))
        .transpose()?;
    let store = if flags.has("count-only") {
        Store::count_only()
    } else {
        Store::open(Path::new(events_file)).map_err(|e| format!("opening {events_file}: {e}"))?
    };

    let (refusals, refusals_rx) = mpsc::unbounded_channel();
    let collector = Collector::new(store, config, rules, refusals);
    if let Some(spec) = faults {
        // A refusal starts once the accept loop below runs; no need to wait for it.
        let _ = collector.apply_faults(&spec);
    }
    let listener = bind_and_announce(listen).await?;
    let service = TowerToHyperService::new(router(collector));
    serve(listener, service, Some(refusals_rx))
        .await
        .map_err(|e| e.to_string())
}

/// The `document` in the file named by `--flag`, or the default one without the flag.
fn load(flags: &Flags, flag: &str, document: Document) -> Result<Tagged, String> {
    let Some(path) = flags.value(flag) else {
        return Ok(Tagged::default_for(document));
    };
    let json = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    Tagged::parse(document, &json).map_err(|e| format!("--{flag} {path}: {e}"))
}
