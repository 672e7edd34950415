//! A fast sample API for the plugin to sit in front of in demos, end-to-end tests and
//! benchmarks. See `collector::upstream` for the routes.

use std::process::ExitCode;

use collector::cli::parse_flags;
use collector::serve::{announce, serve};
use collector::upstream::handle;
use hyper::service::service_fn;
use tokio::net::TcpListener;

const USAGE: &str = "usage: sample-upstream [--listen ADDR]
  --listen ADDR   address to bind (default 127.0.0.1:8080; port 0 picks a free port)
Prints `LISTENING <addr>` once bound; exits on SIGTERM/SIGINT.";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sample-upstream: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return Ok(());
    }
    let flags = parse_flags(args, &["listen"], &[]).map_err(|e| format!("{e}\n{USAGE}"))?;
    let listen = flags.value("listen").unwrap_or("127.0.0.1:8080");
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("binding {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    announce(addr).map_err(|e| e.to_string())?;
    serve(listener, service_fn(handle), None)
        .await
        .map_err(|e| e.to_string())
}
