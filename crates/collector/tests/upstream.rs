//! Runs the real `sample-upstream` binary and checks every route.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{get, post, send, Server, TestResult};
use serde_json::json;

fn upstream() -> Result<Server, Box<dyn std::error::Error>> {
    Server::start(env!("CARGO_BIN_EXE_sample-upstream"), &[])
}

#[test]
fn items_reports_the_raw_query() -> TestResult {
    let server = upstream()?;
    let reply = get(&server.url("/items?page=2&q=a%20b"))?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("x-upstream"), Some("sample"));
    assert_eq!(
        reply.json()?,
        json!({"items": [{"id": 1, "name": "widget"}, {"id": 2, "name": "gadget"}],
               "query": "page=2&q=a%20b"})
    );
    assert_eq!(get(&server.url("/items"))?.json()?["query"], "");
    Ok(())
}

#[test]
fn echo_returns_the_body_and_content_type() -> TestResult {
    let server = upstream()?;
    let body = [0u8, 1, 2, 255, b'x'];
    let reply = send(
        ureq::post(&server.url("/echo")).set("Content-Type", "image/x-test"),
        &body,
    )?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("image/x-test"));
    assert_eq!(reply.body, body);
    let reply = post(&server.url("/echo"), b"plain")?;
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.body, b"plain");
    Ok(())
}

#[test]
fn upload_counts_a_chunked_body() -> TestResult {
    let server = upstream()?;
    let mut stream = TcpStream::connect(server.addr)?;
    stream.write_all(
        b"POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\
          Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.contains("x-upstream: sample\r\n"), "{response}");
    assert!(
        response.ends_with("\r\n\r\n{\"received\":11}"),
        "{response}"
    );

    let big = vec![7u8; 3 * 1024 * 1024];
    let reply = send(ureq::post(&server.url("/upload")), &big)?;
    assert_eq!(reply.json()?, json!({"received": 3 * 1024 * 1024}));
    Ok(())
}

#[test]
fn generated_bodies() -> TestResult {
    let server = upstream()?;
    let binary = get(&server.url("/binary"))?;
    assert_eq!(
        binary.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(binary.body, (0..=255u8).collect::<Vec<_>>());

    let bytes = get(&server.url("/bytes/1000"))?;
    assert_eq!(
        bytes.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(bytes.body, vec![b'a'; 1000]);
    assert_eq!(get(&server.url("/bytes/0"))?.body.len(), 0);
    assert_eq!(
        get(&server.url("/bytes/99999999"))?.body.len(),
        10 * 1024 * 1024
    );

    let doc = get(&server.url("/json/5000"))?;
    assert_eq!(doc.header("content-type"), Some("application/json"));
    assert_eq!(doc.body.len(), 5000);
    assert!(doc.json()?["data"].is_string());
    Ok(())
}

#[test]
fn everything_else_is_404() -> TestResult {
    let server = upstream()?;
    for reply in [
        get(&server.url("/nope"))?,
        get(&server.url("/bytes/lots"))?,
        post(&server.url("/items"), b"x")?,
        get(&server.url("/echo"))?,
    ] {
        assert_eq!(reply.status, 404);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("x-upstream"), Some("sample"));
        assert_eq!(reply.text(), r#"{"error":"not found"}"#);
    }
    Ok(())
}

#[test]
fn sigterm_exits_cleanly() -> TestResult {
    let server = upstream()?;
    assert_eq!(get(&server.url("/items"))?.status, 200);
    assert!(server.terminate()?.success());
    Ok(())
}
