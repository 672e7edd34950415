//! A real headless Chromium, driven through chromedriver with plain W3C WebDriver (HTTP and
//! JSON), to check pages as a person sees them (the collector's event viewer). Debian's
//! `chromium` and `chromium-driver` packages, installed by `cargo xtask setup`, provide both.

use base64::Engine;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// What W3C WebDriver calls an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The Enter key, for [`Browser::type_text`].
pub const ENTER: &str = "\u{E007}";

/// One browser session. Dropping it closes the browser, and kills whatever is left of it.
pub struct Browser {
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    agent: ureq::Agent,
    /// Dropped after the session is deleted (fields drop in order).
    _driver: Driver,
}

/// chromedriver in a process group of its own, which the browsers it starts join: killing
/// the group when dropped leaves no Chromium behind, even when a test fails.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session through it, with
    /// the browser's profile and chromedriver's log in `dir`.
    pub fn start(dir: &Path) -> Browser {
        let log = dir.join("chromedriver.log");
        let mut child = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {CHROMEDRIVER} (`cargo xtask setup` installs it): {e}")
            });
        let stdout = child.stdout.take().unwrap();
        let driver = Driver(child);
        let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
        let port = lines
            .by_ref()
            .find_map(|line| {
                let port = line.split("started successfully on port ").nth(1)?;
                port.trim_end_matches('.').parse::<u16>().ok()
            })
            .unwrap_or_else(|| panic!("chromedriver did not say its port; see {}", log.display()));
        // Whatever chromedriver still prints must not fill the pipe and block it.
        std::thread::spawn(move || lines.for_each(drop));

        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        // Chromium fails to start on a profile path with `..` in it (chromedriver then waits
        // a minute for it and gives up), and the harness's paths have some.
        let profile = dir.canonicalize().unwrap().join("chromium-profile");
        let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                // Tests run as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1400,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }}}});
        let server = format!("http://127.0.0.1:{port}");
        let created = call(
            &agent,
            "POST",
            &format!("{server}/session"),
            Some(capabilities),
        );
        let id = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {created}"));
        Browser {
            session: format!("{server}/session/{id}"),
            agent,
            _driver: driver,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        call(
            &self.agent,
            method,
            &format!("{}{path}", self.session),
            body,
        )
    }

    /// Loads `url` and waits for the page to be loaded.
    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    /// Every element matching the CSS `selector`, in document order.
    pub fn find_all(&self, selector: &str) -> Vec<Element> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": selector})),
        );
        found
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| match e[ELEMENT].as_str() {
                Some(id) => Element(id.to_string()),
                None => panic!("not an element: {e}"),
            })
            .collect()
    }

    /// The first element matching the CSS `selector`; panics if there is none.
    pub fn find(&self, selector: &str) -> Element {
        self.find_all(selector)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {selector}"))
    }

    pub fn click(&self, element: &Element) {
        self.call(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        );
    }

    /// Types `text` into `element` as key presses (with [`ENTER`] for the Enter key).
    pub fn type_text(&self, element: &Element, text: &str) {
        self.call(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        );
    }

    /// The text of `element` as rendered.
    pub fn text(&self, element: &Element) -> String {
        let text = self.call("GET", &format!("/element/{}/text", element.0), None);
        text.as_str().unwrap_or_default().to_string()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns what
    /// it returns.
    pub fn eval(&self, script: &str, args: &[Value]) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Saves what the window shows as a PNG at `path`.
    pub fn screenshot(&self, path: &Path) {
        let png = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    /// Closes the browser the polite way first, so it removes what it wrote.
    fn drop(&mut self) {
        let _ = self
            .agent
            .request("DELETE", &self.session)
            .timeout(Duration::from_secs(10))
            .call();
    }
}

/// One WebDriver command; returns its `value`, panics with WebDriver's message on an error.
fn call(agent: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Value {
    let request = agent.request(method, url);
    let result = match body {
        Some(body) => request
            .set("content-type", "application/json")
            .send_string(&body.to_string()),
        None => request.call(),
    };
    let response = match result {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("WebDriver {method} {url}: {e}"),
    };
    let status = response.status();
    let mut text = String::new();
    response
        .into_reader()
        .take(64 << 20)
        .read_to_string(&mut text)
        .unwrap();
    let mut answer: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("WebDriver {method} {url}: {status} {e}: {text}"));
    assert!(
        status < 300,
        "WebDriver {method} {url}: {status} {}: {}",
        answer["value"]["error"],
        answer["value"]["message"]
    );
    answer["value"].take()
}
