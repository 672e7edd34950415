//! A sample gRPC server for the plugin to sit in front of in end-to-end tests: service
//! `demo.Demo` over h2c. See `collector::grpc` for the methods.

use std::process::ExitCode;

use collector::cli::{args_or_help, exit_code, parse_flags};
use collector::grpc::Demo;
use collector::serve::bind_and_announce;
use tokio::signal::unix::{signal, SignalKind};
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

const USAGE: &str = "usage: sample-grpc [--listen ADDR]
  --listen ADDR   address to bind (default 127.0.0.1:0, a free port)
Serves gRPC service demo.Demo (Echo, Fail, Count) over HTTP/2 without TLS (h2c).
Prints `LISTENING <addr>` once bound; exits on SIGTERM/SIGINT.";

#[tokio::main]
async fn main() -> ExitCode {
    exit_code("sample-grpc", run().await)
}

async fn run() -> Result<(), String> {
    let Some(args) = args_or_help(USAGE) else {
        return Ok(());
    };
    let flags = parse_flags(args, &["listen"], &[]).map_err(|e| format!("{e}\n{USAGE}"))?;
    let listen = flags.value("listen").unwrap_or("127.0.0.1:0");
    let listener = bind_and_announce(listen).await?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let stop = async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    };
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .serve_with_incoming_shutdown(Demo, incoming, stop)
        .await
        .map_err(|e| e.to_string())
}
