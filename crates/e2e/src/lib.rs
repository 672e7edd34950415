//! End-to-end harness shared by the tests and `cargo xtask demo`: starts the real processes on
//! 127.0.0.1 with ephemeral ports and talks to them over HTTP. Panics are fine here (test code);
//! every panic message says what was being waited for. (The no-panic lints apply to the plugin
//! crates, not to test tooling.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod accounting;
pub mod bootstrap;
pub mod browser;
pub mod client;
pub mod envoy;
pub mod grpc;
pub mod load;
pub mod process;
pub mod services;
pub mod stack;
pub mod tls;

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The plugin as `cargo xtask build` leaves it.
pub fn wasm_path() -> PathBuf {
    std::env::var_os("MOESIF_WASM").map_or_else(
        || root().join("target/wasm32-wasip1/release/moesif_envoy_wasm_plugin.wasm"),
        PathBuf::from,
    )
}

/// `ENVOY_BIN`, else the Envoy that `cargo xtask setup` installed into `.venv/`.
pub fn envoy_bin() -> PathBuf {
    std::env::var_os("ENVOY_BIN").map_or_else(|| root().join(".venv/bin/envoy"), PathBuf::from)
}

/// A binary of the `collector` crate, built in release mode by `cargo xtask build`.
pub fn tool_bin(name: &str) -> PathBuf {
    let p = root().join("target/release").join(name);
    assert!(
        p.exists(),
        "{} missing: run `cargo xtask build` first",
        p.display()
    );
    p
}

/// A fresh scratch directory under target/e2e for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = root()
        .join("target/e2e")
        .join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The plugin's test-only build (by `cargo xtask build`): features `test-faults` (the crash
/// switch) and `test-format-next` (writes the next queue block format, reads this one too).
pub fn test_build_wasm_path() -> PathBuf {
    root().join("target/test-build/wasm32-wasip1/release/moesif_envoy_wasm_plugin.wasm")
}

/// A benchmark-only variant of the plugin (by `cargo xtask bench`), built with `features` of
/// the glue crate (`stage-*`, which stop the plugin after that stage, and `codec-crates`).
pub fn stage_wasm_path(features: &str) -> PathBuf {
    root()
        .join("target")
        .join(features.replace(',', "+"))
        .join("wasm32-wasip1/release/moesif_envoy_wasm_plugin.wasm")
}

/// The do-nothing proxy-wasm filter of crates/empty-filter (by `cargo xtask build`): what
/// Envoy's wasm runtime alone costs, the floor that benchmarks and tests compare the plugin to.
pub fn empty_filter_wasm_path() -> PathBuf {
    root().join("target/wasm32-wasip1/release/empty_filter.wasm")
}

/// The empty filter with the `calls` feature (by `cargo xtask bench`): the host calls of a
/// capture and nothing else, the floor of any plugin that captures calls.
pub fn empty_filter_calls_wasm_path() -> PathBuf {
    root().join("target/empty-filter-calls/wasm32-wasip1/release/empty_filter.wasm")
}

/// The empty filter with the `ship` feature (by `cargo xtask bench`): those host calls, and what
/// they return shipped through a queue to a singleton that posts a fixed batch per 100 calls; the
/// floor of any plugin that captures calls and ships them as this one does. The filter's and the
/// singleton's .wasm.
pub fn empty_filter_ship_wasm_path() -> PathBuf {
    root().join("target/empty-filter-ship/wasm32-wasip1/release/empty_filter.wasm")
}

/// The empty filter with the `tick` feature (by `cargo xtask build`): its root ticks every
/// 100 ms until retired, doing nothing; the floor of a plugin with periodic work.
pub fn empty_filter_tick_wasm_path() -> PathBuf {
    root().join("target/empty-filter-tick/wasm32-wasip1/release/empty_filter.wasm")
}
