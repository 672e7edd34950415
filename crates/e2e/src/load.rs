//! Steady load from a real load generator: wrk, paced by a Lua `delay()` so that the offered
//! rate is fixed (about `connections * 1000 / pace_ms` requests per second).

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Wrk(Child);

/// Starts wrk against `url` for `seconds`, in the background.
pub fn start(dir: &Path, url: &str, seconds: u32, connections: u32, pace_ms: u32) -> Wrk {
    start_script(
        dir,
        url,
        seconds,
        connections,
        &format!("function delay() return {pace_ms} end\n"),
    )
}

/// Like [`start`], with a Lua script of one's own (headers, pacing).
pub fn start_script(dir: &Path, url: &str, seconds: u32, connections: u32, lua: &str) -> Wrk {
    let script = dir.join("load.lua");
    std::fs::write(&script, lua).unwrap();
    let child = Command::new("wrk")
        .args([
            "-t",
            "1",
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
        ])
        .arg("-s")
        .arg(&script)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wrk not found: run `cargo xtask setup`");
    Wrk(child)
}

impl Wrk {
    /// Waits for wrk to finish; returns its summary.
    pub fn finish(self) -> String {
        let out = self.0.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "wrk failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
