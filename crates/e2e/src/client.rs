//! A small blocking HTTP client that returns every status as a value, not an error.

use std::io::Read;
use std::time::Duration;

pub struct Reply {
    pub status: u16,
    /// Lower-case header names, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Clone)]
pub struct Client(ureq::Agent);

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    pub fn new() -> Self {
        Client(
            ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .max_idle_connections_per_host(8)
                .build(),
        )
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", url, headers, None)
    }

    /// `body: None` sends no body; `Some` sends it with a Content-Length.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let req = headers
            .iter()
            .fold(self.0.request(method, url), |r, (k, v)| r.set(k, v));
        let res = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        Self::reply(res)
    }

    /// Sends `body` with `Transfer-Encoding: chunked` (no Content-Length).
    pub fn send_chunked(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Reply {
        let req = headers
            .iter()
            .fold(self.0.request(method, url), |r, (k, v)| r.set(k, v));
        Self::reply(req.send(std::io::Cursor::new(body.to_vec())))
    }

    fn reply(res: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("HTTP request failed: {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                resp.all(&n)
                    .into_iter()
                    .map(|v| (n.to_ascii_lowercase(), v.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut body = Vec::new();
        resp.into_reader()
            .take(64 << 20)
            .read_to_end(&mut body)
            .unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// A scripted call: method, path, headers, optional body.
pub type Call<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Option<&'a [u8]>);
