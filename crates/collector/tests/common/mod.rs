//! Helpers shared by the integration tests: run a real binary on a free port, and make HTTP
//! calls whose error statuses are ordinary replies rather than errors.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::error::Error;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

pub type TestResult = Result<(), Box<dyn Error>>;

/// A binary under test, killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `bin` with `args` plus `--listen 127.0.0.1:0` and waits for its LISTENING line.
    pub fn start(bin: &str, args: &[&str]) -> Result<Self, Box<dyn Error>> {
        let mut child = Command::new(bin)
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .ok_or_else(|| format!("no LISTENING line, got {line:?}"))?
            .parse()?;
        Ok(Self { child, addr })
    }

    /// Starts a collector whose events file is unique to `name`.
    pub fn collector(name: &str, args: &[&str]) -> Result<(Self, PathBuf), Box<dyn Error>> {
        let file = events_file(name);
        let path = file.to_str().ok_or("non-UTF-8 temp dir")?;
        let mut all = vec!["--events-file", path];
        all.extend_from_slice(args);
        Ok((
            Self::start(env!("CARGO_BIN_EXE_moesif-collector"), &all)?,
            file,
        ))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> std::io::Result<ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh events file path in Cargo's per-target temp dir.
pub fn events_file(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.jsonl"));
    let _ = std::fs::remove_file(&path);
    path
}

/// An HTTP response, whatever its status.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` (with `body` unless it is empty); 4xx/5xx come back as a [`Reply`].
pub fn send(request: ureq::Request, body: &[u8]) -> Result<Reply, Box<dyn Error>> {
    let result = if body.is_empty() {
        request.call()
    } else {
        request.send_bytes(body)
    };
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(e) => return Err(e.into()),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .filter_map(|name| {
            let value = response.header(&name)?.to_owned();
            Some((name, value))
        })
        .collect();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body)?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

pub fn get(url: &str) -> Result<Reply, Box<dyn Error>> {
    send(ureq::get(url), b"")
}

pub fn post(url: &str, body: &[u8]) -> Result<Reply, Box<dyn Error>> {
    send(ureq::post(url), body)
}

/// Waits for a condition that a server reaches asynchronously.
pub fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
