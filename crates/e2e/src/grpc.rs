//! A small blocking gRPC client over h2c (HTTP/2 with prior knowledge, no TLS) that reports
//! exactly what it saw: the response headers, every length-prefixed message, the trailers,
//! and the final `grpc-status` / `grpc-message` (from the trailers, or from the headers of a
//! trailers-only response). It speaks to `sample-grpc`'s service `demo.Demo`, directly or
//! through Envoy; its message is encoded by hand here, independently of the server's prost.

use bytes::{Buf, Bytes, BytesMut};
use std::time::Duration;

pub const ECHO: &str = "/demo.Demo/Echo";
pub const FAIL: &str = "/demo.Demo/Fail";
pub const COUNT: &str = "/demo.Demo/Count";

/// How long one call may take, connect to trailers.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `message DemoMessage { string text = 1; int32 n = 2; }`, the only message of `demo.Demo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoMessage {
    pub text: String,
    pub n: i32,
}

impl DemoMessage {
    pub fn text(text: &str) -> Self {
        DemoMessage {
            text: text.into(),
            n: 0,
        }
    }

    pub fn n(n: i32) -> Self {
        DemoMessage {
            text: String::new(),
            n,
        }
    }

    /// The protobuf encoding (default values omitted, as proto3 does).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.text.is_empty() {
            out.push(0x0a); // field 1, length-delimited
            put_varint(&mut out, self.text.len() as u64);
            out.extend_from_slice(self.text.as_bytes());
        }
        if self.n != 0 {
            out.push(0x10); // field 2, varint
            put_varint(&mut out, i64::from(self.n) as u64);
        }
        out
    }

    /// Decodes a protobuf encoding, skipping unknown fields; panics on a malformed one.
    pub fn decode(mut bytes: &[u8]) -> Self {
        let mut message = DemoMessage::default();
        while !bytes.is_empty() {
            let key = get_varint(&mut bytes);
            match (key >> 3, key & 7) {
                (1, 2) => {
                    let len = get_varint(&mut bytes) as usize;
                    assert!(len <= bytes.len(), "truncated text field");
                    message.text = String::from_utf8(bytes[..len].to_vec()).unwrap();
                    bytes = &bytes[len..];
                }
                (2, 0) => message.n = get_varint(&mut bytes) as i64 as i32,
                (_, 0) => {
                    get_varint(&mut bytes);
                }
                (_, 1) => bytes = &bytes[8..],
                (_, 2) => {
                    let len = get_varint(&mut bytes) as usize;
                    bytes = &bytes[len..];
                }
                (_, 5) => bytes = &bytes[4..],
                (field, wire) => panic!("unsupported field {field} wire type {wire}"),
            }
        }
        message
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().expect("truncated varint");
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
    }
    panic!("varint longer than 10 bytes")
}

/// What the client saw of one call.
#[derive(Debug, Clone)]
pub struct GrpcReply {
    /// The HTTP `:status`.
    pub http_status: u16,
    /// Lower-case names, in the order received.
    pub headers: Vec<(String, String)>,
    /// The whole response body as received (length-prefixed messages).
    pub body: Vec<u8>,
    /// The messages, decoded.
    pub messages: Vec<DemoMessage>,
    /// The trailers; `None` when the response ended with its headers (trailers-only).
    pub trailers: Option<Vec<(String, String)>>,
    /// The final `grpc-status`: from the trailers, else from the headers.
    pub status: Option<u32>,
    /// The final `grpc-message`, percent-decoded, from where `status` came from.
    pub message: Option<String>,
}

impl GrpcReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        find(&self.headers, name)
    }

    pub fn trailer(&self, name: &str) -> Option<&str> {
        self.trailers.as_deref().and_then(|t| find(t, name))
    }
}

fn find<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find_map(|(k, v)| (k == name).then_some(v.as_str()))
}

/// Calls `path` (e.g. [`ECHO`]) on 127.0.0.1:`port` over a new h2c connection, sending
/// `request` and the extra `metadata` headers; waits for the end of the response.
pub fn call(port: u16, path: &str, request: &DemoMessage, metadata: &[(&str, &str)]) -> GrpcReply {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(CALL_TIMEOUT, call_async(port, path, request, metadata))
            .await
            .unwrap_or_else(|_| panic!("gRPC call {path} timed out after {CALL_TIMEOUT:?}"))
    })
}

async fn call_async(
    port: u16,
    path: &str,
    request: &DemoMessage,
    metadata: &[(&str, &str)],
) -> GrpcReply {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("gRPC connect to 127.0.0.1:{port}: {e}"));
    let _ = tcp.set_nodelay(true);
    let (client, connection) = h2::client::handshake(tcp)
        .await
        .unwrap_or_else(|e| panic!("h2 handshake with 127.0.0.1:{port}: {e}"));
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut client = client.ready().await.unwrap();
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(format!("http://127.0.0.1:{port}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in metadata {
        builder = builder.header(*name, *value);
    }
    let (response, mut send) = client
        .send_request(builder.body(()).unwrap(), false)
        .unwrap_or_else(|e| panic!("gRPC {path}: sending the request: {e}"));
    send.send_data(Bytes::from(frame(&request.encode())), true)
        .unwrap_or_else(|e| panic!("gRPC {path}: sending the message: {e}"));
    let response = response
        .await
        .unwrap_or_else(|e| panic!("gRPC {path}: no response: {e}"));
    let (parts, mut body) = response.into_parts();
    let headers = pairs(&parts.headers);
    let mut received = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("gRPC {path}: reading the body: {e}"));
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let trailers = body
        .trailers()
        .await
        .unwrap_or_else(|e| panic!("gRPC {path}: reading the trailers: {e}"))
        .map(|t| pairs(&t));
    drop(client);
    driver.abort();
    let body = received.to_vec();
    let messages = unframe(&body)
        .iter()
        .map(|m| DemoMessage::decode(m))
        .collect();
    let final_fields = trailers
        .as_deref()
        .filter(|t| find(t, "grpc-status").is_some())
        .unwrap_or(&headers);
    let status = find(final_fields, "grpc-status").map(|s| {
        s.parse()
            .unwrap_or_else(|_| panic!("gRPC {path}: bad grpc-status {s:?}"))
    });
    let message = find(final_fields, "grpc-message").map(percent_decode);
    GrpcReply {
        http_status: parts.status.as_u16(),
        headers,
        body,
        messages,
        trailers,
        status,
        message,
    }
}

fn pairs(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// One uncompressed gRPC message: flag 0, 4-byte big-endian length, the message.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Splits a body into its messages; panics on a compressed or truncated one.
pub fn unframe(mut body: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    while body.has_remaining() {
        assert!(body.len() >= 5, "truncated gRPC message prefix: {body:?}");
        let compressed = body.get_u8();
        assert_eq!(compressed, 0, "compressed gRPC message");
        let len = body.get_u32() as usize;
        assert!(body.len() >= len, "truncated gRPC message");
        messages.push(body[..len].to_vec());
        body.advance(len);
    }
    messages
}

/// Undoes the percent-encoding gRPC applies to `grpc-message`.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_match_protobuf() {
        let m = DemoMessage {
            text: "hi".into(),
            n: 300,
        };
        assert_eq!(m.encode(), [0x0a, 2, b'h', b'i', 0x10, 0xac, 0x02]);
        assert_eq!(DemoMessage::decode(&m.encode()), m);
        let negative = DemoMessage::n(-1);
        assert_eq!(negative.encode().len(), 11);
        assert_eq!(DemoMessage::decode(&negative.encode()), negative);
        assert!(DemoMessage::default().encode().is_empty());
        let two = [frame(&m.encode()), frame(&[])].concat();
        assert_eq!(unframe(&two), vec![m.encode(), vec![]]);
        assert_eq!(
            percent_decode("quota%20exceeded %E2%9C%93"),
            "quota exceeded ✓"
        );
    }
}
