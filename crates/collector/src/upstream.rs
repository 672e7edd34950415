//! The sample upstream API: a handful of fixed routes covering the body shapes the plugin
//! must log (JSON, binary, echoed, large, streamed uploads), served straight on hyper so it
//! is never the bottleneck in a benchmark.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

/// The largest body `/bytes/{n}` and `/json/{n}` produce.
pub const MAX_GENERATED_BYTES: usize = 10 * 1024 * 1024;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");

/// Answers one request; every response carries `x-upstream: sample`, so tests can tell an
/// upstream answer from one the proxy made up.
pub async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = route(request).await;
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert("x-upstream", HeaderValue::from_static("sample"));
    Ok(response)
}

async fn route(request: Request<Incoming>) -> (StatusCode, HeaderValue, Bytes) {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, "/items") => {
            let query = serde_json::Value::from(request.uri().query().unwrap_or_default());
            let body = format!(
                r#"{{"items":[{{"id":1,"name":"widget"}},{{"id":2,"name":"gadget"}}],"query":{query}}}"#
            );
            ok(JSON, body)
        }
        (&Method::GET, "/binary") => ok(OCTETS, (0..=u8::MAX).collect::<Vec<u8>>()),
        (&Method::POST, "/echo") => {
            let content_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or(OCTETS);
            match request.into_body().collect().await {
                Ok(body) => (StatusCode::OK, content_type, body.to_bytes()),
                Err(_) => bad_body(),
            }
        }
        (&Method::POST, "/upload") => match count_body(request.into_body()).await {
            Some(received) => ok(JSON, format!(r#"{{"received":{received}}}"#)),
            None => bad_body(),
        },
        (&Method::GET, _) => match generated(path) {
            Some((content_type, body)) => ok(content_type, body),
            None => not_found(),
        },
        _ => not_found(),
    }
}

/// `/bytes/{n}`: n bytes of `a`; `/json/{n}`: a JSON document of n bytes (one long string);
/// `/items/{n}`: a JSON list of items of about n bytes, shaped like a typical API answer.
fn generated(path: &str) -> Option<(HeaderValue, Vec<u8>)> {
    let (kind, n) = path.strip_prefix('/')?.split_once('/')?;
    let n = n.parse::<usize>().ok()?.min(MAX_GENERATED_BYTES);
    match kind {
        "bytes" => Some((OCTETS, vec![b'a'; n])),
        "json" => {
            const OPEN: &[u8] = br#"{"data":""#;
            const CLOSE: &[u8] = br#""}"#;
            let filler = n.saturating_sub(OPEN.len() + CLOSE.len());
            let mut body = Vec::with_capacity(OPEN.len() + filler + CLOSE.len());
            body.extend_from_slice(OPEN);
            body.resize(OPEN.len() + filler, b'a');
            body.extend_from_slice(CLOSE);
            Some((JSON, body))
        }
        "items" => Some((JSON, items(n))),
        _ => None,
    }
}

fn items(n: usize) -> Vec<u8> {
    const CLOSE: &[u8] = b"]}";
    let mut body = br#"{"items":["#.to_vec();
    for id in 1.. {
        let item = format!(r#"{{"id":{id},"name":"widget-{id}","price":9.5,"in_stock":true}}"#);
        if id > 1 {
            if body.len() + 1 + item.len() + CLOSE.len() > n {
                break;
            }
            body.push(b',');
        }
        body.extend_from_slice(item.as_bytes());
    }
    body.extend_from_slice(CLOSE);
    body
}

/// Counts an upload frame by frame, so a large or chunked upload is never held in memory.
async fn count_body(mut body: Incoming) -> Option<u64> {
    let mut received = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.ok()?.data_ref() {
            received += data.len() as u64;
        }
    }
    Some(received)
}

fn ok(content_type: HeaderValue, body: impl Into<Bytes>) -> (StatusCode, HeaderValue, Bytes) {
    (StatusCode::OK, content_type, body.into())
}

fn bad_body() -> (StatusCode, HeaderValue, Bytes) {
    let body = Bytes::from_static(br#"{"error":"could not read the request body"}"#);
    (StatusCode::BAD_REQUEST, JSON, body)
}

fn not_found() -> (StatusCode, HeaderValue, Bytes) {
    let body = Bytes::from_static(br#"{"error":"not found"}"#);
    (StatusCode::NOT_FOUND, JSON, body)
}

#[cfg(test)]
mod tests {
    use super::generated;

    #[test]
    fn generated_bodies_have_the_asked_size() {
        let json = generated("/json/100")
            .map(|(_, body)| body)
            .unwrap_or_default();
        assert_eq!(json.len(), 100);
        assert!(serde_json::from_slice::<serde_json::Value>(&json).is_ok());
        assert_eq!(generated("/json/3").map(|(_, b)| b.len()), Some(11));
        assert_eq!(
            generated("/bytes/7").map(|(_, b)| b),
            Some(b"aaaaaaa".to_vec())
        );
        let items = generated("/items/1024")
            .map(|(_, body)| body)
            .unwrap_or_default();
        assert!((1024 - 60..=1024).contains(&items.len()), "{}", items.len());
        let parsed: serde_json::Value = serde_json::from_slice(&items).unwrap_or_default();
        assert_eq!(parsed["items"][0]["name"], "widget-1");
        assert_eq!(generated("/items/1").map(|(_, b)| b.len()), Some(66));
        assert!(generated("/bytes/x").is_none());
        assert!(generated("/other/1").is_none());
        assert!(generated("/bytes/1/2").is_none());
    }
}
