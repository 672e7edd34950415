//! gRPC through the real Envoy to a real gRPC server (`sample-grpc`, tonic, h2c): gRPC sends
//! `grpc-status` in the response trailers (after the messages), so a filter that reads only
//! headers misses it. A unary OK call, a unary error after a message and a server-streaming
//! call: each event must carry the status the client saw.

use e2e::accounting;
use e2e::envoy::{Mode, Options};
use e2e::grpc::{self, DemoMessage, GrpcReply, COUNT, ECHO, FAIL};
use e2e::process::wait_for;
use e2e::services::start_grpc;
use e2e::stack::Stack;
use serde_json::{json, Value};
use std::time::Duration;

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn texts(reply: &GrpcReply) -> Vec<&str> {
    reply.messages.iter().map(|m| m.text.as_str()).collect()
}

/// The status came where gRPC puts it after messages: in the trailers, not the headers.
fn assert_status_in_trailers(reply: &GrpcReply, what: &str) {
    assert_eq!(reply.http_status, 200, "{what}: {reply:?}");
    assert_eq!(
        reply.header("content-type"),
        Some("application/grpc"),
        "{what}: {reply:?}"
    );
    assert!(
        reply.header("grpc-status").is_none(),
        "{what}: status in headers: {reply:?}"
    );
    assert!(
        reply.trailer("grpc-status").is_some(),
        "{what}: no grpc-status trailer: {reply:?}"
    );
}

/// The three calls of the Envoy test, checked for what the client must see. `port` is
/// Envoy's listener or the server itself.
fn call_and_check(port: u16) -> [(&'static str, DemoMessage, GrpcReply); 3] {
    let echo_req = DemoMessage::text("hello grpc");
    let echo = grpc::call(port, ECHO, &echo_req, &[("x-test-id", "echo")]);
    assert_status_in_trailers(&echo, "Echo");
    assert_eq!(echo.messages, vec![echo_req.clone()], "Echo: {echo:?}");
    assert_eq!((echo.status, echo.message.as_deref()), (Some(0), None));

    let fail_req = DemoMessage::text("spend");
    let fail = grpc::call(port, FAIL, &fail_req, &[("x-test-id", "fail")]);
    assert_status_in_trailers(&fail, "Fail");
    assert_eq!(fail.messages, vec![fail_req.clone()], "Fail: {fail:?}");
    assert_eq!(
        (fail.status, fail.message.as_deref()),
        (Some(9), Some("quota exceeded")),
        "Fail: {fail:?}"
    );

    let count_req = DemoMessage::n(3);
    let count = grpc::call(port, COUNT, &count_req, &[("x-test-id", "count")]);
    assert_status_in_trailers(&count, "Count");
    assert_eq!(texts(&count), ["1", "2", "3"], "Count: {count:?}");
    assert_eq!(
        count.messages.iter().map(|m| m.n).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!((count.status, count.message.as_deref()), (Some(0), None));
    [
        (ECHO, echo_req, echo),
        (FAIL, fail_req, fail),
        (COUNT, count_req, count),
    ]
}

/// The server and the client agree without Envoy in between, and an unknown method gets a
/// trailers-only answer (the status in the headers, no body, no trailers).
#[test]
fn sample_grpc_answers_as_documented() {
    let dir = e2e::scratch("grpc-direct");
    let server = start_grpc(&dir);
    call_and_check(server.port);
    let unknown = grpc::call(server.port, "/demo.Demo/Nope", &DemoMessage::default(), &[]);
    assert_eq!(unknown.http_status, 200, "{unknown:?}");
    assert!(unknown.trailers.is_none(), "{unknown:?}");
    assert!(unknown.messages.is_empty(), "{unknown:?}");
    assert_eq!(unknown.status, Some(12), "{unknown:?}");
    assert_eq!(unknown.header("grpc-status"), Some("12"), "{unknown:?}");
}

#[test]
fn grpc_status_from_trailers_reaches_the_event() {
    let (stack, _grpc) = Stack::start_with_grpc("grpc", &Options::new(Mode::Singleton));
    let calls = call_and_check(stack.envoy.port);

    let c = &stack.collector;
    wait_for(
        "3 gRPC events at the collector",
        Duration::from_secs(30),
        || (c.event_count() >= 3).then_some(()),
    );
    let events = c.events();
    assert_eq!(events.len(), 3, "{events:#?}");
    for (path, request, reply) in &calls {
        let id = path.rsplit('/').next().unwrap().to_lowercase();
        let e = events
            .iter()
            .find(|e| e["request"]["headers"]["x-test-id"] == id.as_str())
            .unwrap_or_else(|| panic!("no event for {path}: {events:#?}"));
        let (req, res) = (&e["request"], &e["response"]);
        let ctx = format!("{path}: client saw {reply:?}\nevent {e:#}");
        // What the plugin captured before this issue: request, headers, bodies.
        assert_eq!(req["verb"], "POST", "{ctx}");
        assert!(
            req["uri"].as_str().is_some_and(|u| u.ends_with(path)),
            "{ctx}"
        );
        assert_eq!(req["headers"]["content-type"], "application/grpc", "{ctx}");
        assert_eq!(req["body"], b64(&grpc::frame(&request.encode())), "{ctx}");
        assert_eq!(res["status"], 200, "{ctx}");
        assert_eq!(res["body"], b64(&reply.body), "{ctx}");
        assert_eq!(e["metadata"]["envoy"]["route_name"], "grpc", "{ctx}");
        assert_eq!(
            e["metadata"]["envoy"]["cluster_name"], "sample_grpc",
            "{ctx}"
        );
        // The status the client saw, which arrived in the trailers.
        let status = reply.status.unwrap();
        assert_eq!(
            res["headers"]["grpc-status"],
            status.to_string(),
            "response.headers[\"grpc-status\"]: {ctx}"
        );
        // Headers as on the wire (gRPC percent-encodes the message); metadata.grpc decoded,
        // as the client read it.
        let wire_message = reply
            .trailers
            .iter()
            .flatten()
            .find_map(|(n, v)| (n == "grpc-message").then_some(v.as_str()));
        assert_eq!(
            res["headers"].get("grpc-message").and_then(Value::as_str),
            wire_message,
            "response.headers[\"grpc-message\"]: {ctx}"
        );
        let mut expected = json!({ "status": status });
        if let Some(message) = &reply.message {
            expected["message"] = json!(message);
        }
        assert_eq!(e["metadata"]["grpc"], expected, "metadata.grpc: {ctx}");
    }

    let stats = accounting::settle(&stack.envoy, Duration::from_secs(10));
    assert_eq!(stats["moesif_events_sent"], 3, "{stats:?}");
}
