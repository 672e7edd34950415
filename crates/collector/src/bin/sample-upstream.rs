//! A fast sample API for the plugin to sit in front of in demos, end-to-end tests and
//! benchmarks. See `collector::upstream` for the routes.

use std::process::ExitCode;

use collector::cli::{args_or_help, exit_code, parse_flags};
use collector::serve::{bind_and_announce, serve};
use collector::upstream::handle;
use hyper::service::service_fn;

const USAGE: &str = "usage: sample-upstream [--listen ADDR]
  --listen ADDR   address to bind (default 127.0.0.1:8080; port 0 picks a free port)
Prints `LISTENING <addr>` once bound; exits on SIGTERM/SIGINT.";

#[tokio::main]
async fn main() -> ExitCode {
    exit_code("sample-upstream", run().await)
}

async fn run() -> Result<(), String> {
    let Some(args) = args_or_help(USAGE) else {
        return Ok(());
    };
    let flags = parse_flags(args, &["listen"], &[]).map_err(|e| format!("{e}\n{USAGE}"))?;
    let listen = flags.value("listen").unwrap_or("127.0.0.1:8080");
    let listener = bind_and_announce(listen).await?;
    serve(listener, service_fn(handle), None)
        .await
        .map_err(|e| e.to_string())
}
