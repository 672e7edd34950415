//! `cargo xtask <task>`: everything a fresh machine needs, from toolchain to demo.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bench;
mod demo;
mod envoy;
mod viewer;

use std::path::Path;
use std::process::{exit, Command};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("setup") => match rest {
            [] => setup(),
            [flag, v] if flag == "--envoy" => {
                setup_tools();
                envoy::install(v);
            }
            _ => usage(),
        },
        Some("build") => build(),
        Some("demo") => {
            let keep = match rest {
                [] => false,
                [flag] if flag == "--keep" => true,
                _ => usage(),
            };
            setup();
            build();
            demo::run(keep);
        }
        Some("viewer-timing") => {
            setup_tools();
            build_tools();
            viewer::timing();
        }
        Some("wasm-micro") => {
            setup_tools();
            bench::wasm_micro();
        }
        Some("bench") => {
            setup();
            build();
            build_stages();
            bench::run(rest);
        }
        Some("test") => {
            let args = TestArgs::parse(rest);
            setup_tools();
            build();
            test(&args);
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: cargo xtask <setup [--envoy VERSION]|build|demo [--keep]|bench [--help]|test [--envoy VERSION] [--smoke] [cargo test args]|viewer-timing|wasm-micro>"
    );
    exit(2);
}

/// `cargo xtask test [--envoy VERSION] [--smoke] [cargo test args]`.
struct TestArgs {
    /// Run on this Envoy (from PyPI, in `.venv/envoy-<VERSION>/`) instead of the default one.
    envoy: Option<String>,
    /// Only the smoke set: on `--envoy`, else on every version of `envoy::SMOKE_ENVOYS`.
    smoke: bool,
    cargo: Vec<String>,
}

impl TestArgs {
    fn parse(args: &[String]) -> Self {
        let mut parsed = TestArgs {
            envoy: None,
            smoke: false,
            cargo: Vec::new(),
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--envoy" => match args.next() {
                    Some(v) => parsed.envoy = Some(v.clone()),
                    None => usage(),
                },
                "--smoke" => parsed.smoke = true,
                _ => {
                    if let Some(v) = arg.strip_prefix("--envoy=") {
                        parsed.envoy = Some(v.into());
                    } else {
                        // Everything from the first argument xtask does not know goes to cargo.
                        parsed.cargo.push(arg.clone());
                        parsed.cargo.extend(args.by_ref().cloned());
                    }
                }
            }
        }
        if parsed.smoke && !parsed.cargo.is_empty() {
            eprintln!("--smoke runs a fixed set of tests and takes no cargo test args");
            exit(2);
        }
        if let Some(v) = &parsed.envoy {
            envoy::check_version(v);
        }
        parsed
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

/// Installs the wasm target, wrk (load generator), openssl (test certificates), prometheus
/// (`prometheus` and `promtool`, for tests/observability.rs), chromium with chromedriver
/// (tests/viewer.rs) and node (the bench's wasm micro-benchmarks in V8) from Debian, and Envoy (into .venv/, unless ENVOY_BIN points elsewhere).
fn setup() {
    setup_tools();
    setup_envoy();
}

fn setup_tools() {
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip1"]));
    // Debian packages, each with a program it installs: present means installed. Looked up
    // on PATH, not run (chromium would start a browser).
    let packages = [
        ("wrk", "wrk"),
        ("openssl", "openssl"),
        ("prometheus", "prometheus"),
        ("chromium", "chromium"),
        ("chromium-driver", "chromedriver"),
        ("nodejs", "node"),
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    let on_path = |program: &str| std::env::split_paths(&path).any(|d| d.join(program).is_file());
    let missing: Vec<&str> = packages
        .into_iter()
        .filter(|(_, program)| !on_path(program))
        .map(|(package, _)| package)
        .collect();
    if !missing.is_empty() {
        apt_install(&missing);
    }
}

/// The default Envoy into `.venv/`, unless `ENVOY_BIN` points elsewhere.
fn setup_envoy() {
    if std::env::var_os("ENVOY_BIN").is_none() {
        envoy::install(envoy::DEFAULT);
    }
}

fn apt_install(packages: &[&str]) {
    run(Command::new("apt-get").arg("update").arg("-qq"));
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"));
}

/// `cargo build` of a .wasm package in release, for every wasm build xtask makes.
pub(crate) fn wasm_release(package: &str) -> Command {
    let mut cmd = Command::new("cargo");
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip1",
        "--package",
        package,
    ]);
    cmd
}

/// The plugin (.wasm, release), the empty filter (the bench's floor) and its ticking build (the
/// reload memory test's floor), and the collector/upstream tools (release, they serve
/// benchmarks).
fn build() {
    run(&mut wasm_release("moesif-envoy-wasm"));
    // Test-only build: the crash switch, and the next queue block format (it reads this one
    // too) for rollout tests of mixed builds. Its own target dir keeps it apart from the release.
    run(wasm_release("moesif-envoy-wasm").args([
        "--features",
        "test-faults,test-format-next",
        "--target-dir",
        "target/test-build",
    ]));
    // Own invocations, so that they cannot change the plugin's dependency features; the ticking
    // one (the reload memory test's floor) in its own target dir.
    run(&mut wasm_release("empty-filter"));
    run(wasm_release("empty-filter").args([
        "--features",
        "tick",
        "--target-dir",
        "target/empty-filter-tick",
    ]));
    build_tools();
    let wasm = e2e::wasm_path();
    let size = std::fs::metadata(&wasm).map(|m| m.len()).unwrap_or(0);
    eprintln!("plugin: {} ({} KiB)", rel(&wasm), size / 1024);
}

/// The benchmark-only builds, each in its own target dir: the plugin's stage variants (the glue
/// crate's `stage-*` features) and the empty filter that only makes a capture's host calls, and
/// the one that also ships them.
fn build_stages() {
    for stage in bench::STAGES {
        let dir = format!("target/{}", stage.replace(',', "+"));
        run(wasm_release("moesif-envoy-wasm").args(["--features", stage, "--target-dir", &dir]));
    }
    run(wasm_release("empty-filter").args([
        "--features",
        "calls",
        "--target-dir",
        "target/empty-filter-calls",
    ]));
    run(wasm_release("empty-filter").args([
        "--features",
        "ship",
        "--target-dir",
        "target/empty-filter-ship",
    ]));
}

/// The collector, the sample upstream and the sample gRPC server (release: they serve
/// benchmarks).
fn build_tools() {
    run(Command::new("cargo").args(["build", "--release", "--package", "collector"]));
}

fn rel(p: &Path) -> String {
    let root = e2e::root().canonicalize().unwrap();
    let p = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    p.strip_prefix(&root).unwrap_or(&p).display().to_string()
}

/// Format and lint gates, unit tests, then the end-to-end suite against the real Envoy
/// (`--envoy`: that version). The plain `cargo xtask test` (CI) then runs the smoke set on each
/// older Envoy of `envoy::SMOKE_ENVOYS`. `--smoke` runs only the smoke set.
fn test(args: &TestArgs) {
    if args.smoke {
        let versions = match &args.envoy {
            Some(v) => vec![v.as_str()],
            None => envoy::SMOKE_ENVOYS.to_vec(),
        };
        smoke_matrix(&versions);
        return;
    }
    let mut cargo_test = Command::new("cargo");
    cargo_test.args(["test", "--workspace"]).args(&args.cargo);
    match &args.envoy {
        Some(v) => {
            cargo_test.env("ENVOY_BIN", envoy::install(v));
        }
        None => setup_envoy(),
    }
    // The plain command (CI) also runs the smoke set on the older Envoys. They are installed
    // before the long run, so that a failed install shows early.
    let matrix = args.envoy.is_none() && args.cargo.is_empty();
    if matrix {
        for v in envoy::SMOKE_ENVOYS {
            envoy::install(v);
        }
    }
    run(Command::new("cargo").args(["fmt", "--all", "--check"]));
    run(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]));
    // The plugin as released, and its benchmark variants, which must keep building; so must
    // the empty filter's floors.
    let plugin = std::iter::once("").chain(bench::STAGES);
    let floors = ["tick", "calls", "ship"];
    let builds =
        (plugin.map(|f| ("moesif-envoy-wasm", f))).chain(floors.map(|f| ("empty-filter", f)));
    for (package, features) in builds {
        run(Command::new("cargo").args([
            "clippy",
            "--package",
            package,
            "--target",
            "wasm32-wasip1",
            "--features",
            features,
            "--",
            "-D",
            "warnings",
        ]));
    }
    run(&mut cargo_test);
    if matrix {
        smoke_matrix(envoy::SMOKE_ENVOYS);
    } else if args.envoy.is_none() {
        eprintln!("smoke set on older Envoys skipped: cargo test args given");
    }
}

/// The smoke set on each of `versions` (installed first); exits with failure after all ran if
/// any failed.
fn smoke_matrix(versions: &[&str]) {
    for v in versions {
        envoy::install(v);
    }
    let failed: Vec<&str> = versions
        .iter()
        .copied()
        .filter(|v| !envoy::smoke(v))
        .collect();
    if !failed.is_empty() {
        eprintln!("smoke set failed on Envoy {}", failed.join(", "));
        exit(1);
    }
}
