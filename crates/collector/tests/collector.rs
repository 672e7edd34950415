//! Runs the real `moesif-collector` binary and checks its API end to end.

mod common;

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{eventually, get, post, send, Reply, Server, TestResult};
use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use serde_json::{json, Value};

const APP_ID: &str = "test-app";

fn event(transaction_id: &str, user_id: &str) -> Value {
    json!({
        "transaction_id": transaction_id,
        "user_id": user_id,
        "request": {
            "time": "2024-10-30T04:45:42.914Z",
            "uri": "https://api.acme.com/items?page=2",
            "verb": "GET",
            "headers": {"accept": "application/json"}
        },
        "response": {"time": "2024-10-30T04:45:42.950Z", "status": 200}
    })
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// POSTs `body` to `path` with the app id and the given `Content-Encoding`.
fn post_events(
    server: &Server,
    path: &str,
    body: &[u8],
    encoding: Option<&str>,
) -> Result<Reply, Box<dyn std::error::Error>> {
    let mut request = ureq::post(&server.url(path))
        .set("X-Moesif-Application-Id", APP_ID)
        .set("Content-Type", "application/json")
        .set("User-Agent", "collector-test/1.0");
    if let Some(encoding) = encoding {
        request = request.set("Content-Encoding", encoding);
    }
    send(request, body)
}

fn post_batch(server: &Server, events: &[Value]) -> Result<Reply, Box<dyn std::error::Error>> {
    let body = gzip(&serde_json::to_vec(events)?)?;
    post_events(server, "/v1/events/batch", &body, Some("gzip"))
}

fn stats(server: &Server) -> Result<Value, Box<dyn std::error::Error>> {
    Ok(get(&server.url("/_collector/stats"))?.json()?)
}

fn set_faults(server: &Server, spec: &str) -> Result<Reply, Box<dyn std::error::Error>> {
    post(&server.url("/_collector/faults"), spec.as_bytes())
}

const CONFIG_TAG: &str = "x-moesif-config-etag";
const RULES_TAG: &str = "x-moesif-rules-tag";

/// GETs `path` (`/v1/config`, `/v1/rules`) as the plugin does, with the app id.
fn fetch(server: &Server, path: &str) -> Result<Reply, Box<dyn std::error::Error>> {
    send(
        ureq::get(&server.url(path)).set("X-Moesif-Application-Id", APP_ID),
        b"",
    )
}

/// The value of `name` in `reply`, or an error naming it.
fn tag_of(reply: &Reply, name: &str) -> Result<String, String> {
    reply
        .header(name)
        .map(str::to_owned)
        .ok_or_else(|| format!("no {name} in a {} answer", reply.status))
}

/// Writes `json` (pretty) to a file unique to `name` and returns its path.
fn json_file(name: &str, json: &Value) -> Result<String, Box<dyn std::error::Error>> {
    let file = common::events_file(name).with_extension("json");
    std::fs::write(&file, serde_json::to_vec_pretty(json)?)?;
    Ok(file.to_str().ok_or("non-UTF-8 path")?.to_owned())
}

/// An HTTP/1.1 answer read straight off the socket, bytes as they came: ureq shows only
/// UTF-8 header values, and hides how a broken answer ended.
struct RawReply {
    head: Vec<u8>,
    body: Vec<u8>,
    /// The read error that ended the answer, if it did not end cleanly.
    error: Option<io::Error>,
}

impl RawReply {
    fn status(&self) -> Option<u16> {
        let line = self.head.split(|&b| b == b'\n').next()?;
        std::str::from_utf8(line.get(9..12)?).ok()?.parse().ok()
    }

    /// The raw value of header `name` (lower case), without the space after the colon.
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.split(|&b| b == b'\n').skip(1).find_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let (key, value) = line.split_at(colon);
            let value = value.get(1..)?;
            key.eq_ignore_ascii_case(name.as_bytes())
                .then(|| value.strip_prefix(b" ").unwrap_or(value))
        })
    }
}

/// POSTs `events` as a plain batch over a fresh connection and reads until it closes.
fn raw_post_batch(
    server: &Server,
    events: &[Value],
) -> Result<RawReply, Box<dyn std::error::Error>> {
    raw_request(
        server,
        "POST",
        "/v1/events/batch",
        &serde_json::to_vec(events)?,
    )
}

/// Sends a request with the app id over a fresh connection and reads until it closes.
fn raw_request(
    server: &Server,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<RawReply, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(server.addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nX-Moesif-Application-Id: {APP_ID}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        body.len()
    )?;
    stream.write_all(body)?;
    let mut answer = Vec::new();
    // On error, what was read so far is in `answer`.
    let error = stream.read_to_end(&mut answer).err();
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete head in {:?}", String::from_utf8_lossy(&answer)))?;
    let (head, body) = answer.split_at(split);
    Ok(RawReply {
        head: head.to_vec(),
        body: body.get(4..).unwrap_or_default().to_vec(),
        error,
    })
}

#[test]
fn gzip_batch_is_stored_with_stats_and_file() -> TestResult {
    let (server, file) = Server::collector("gzip-batch", &[])?;
    let events = [event("t1", "u1"), event("t2", "u2")];
    let raw = serde_json::to_vec(&events)?;
    let wire = gzip(&raw)?;
    let reply = post_events(&server, "/v1/events/batch", &wire, Some("gzip"))?;
    assert_eq!(reply.status, 201);
    assert!(reply.body.is_empty());
    let config = fetch(&server, "/v1/config")?;
    assert_eq!(reply.header(CONFIG_TAG), config.header(CONFIG_TAG));
    let rules = fetch(&server, "/v1/rules")?;
    assert_eq!(reply.header(RULES_TAG), rules.header(RULES_TAG));

    assert_eq!(
        get(&server.url("/_collector/events"))?.json()?,
        json!(events)
    );
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 2);
    assert_eq!(stats["batches"], 1);
    assert_eq!(stats["unique_transaction_ids"], 2);
    assert_eq!(stats["duplicate_events"], 0);
    assert_eq!(stats["bytes_wire"], wire.len());
    assert_eq!(stats["bytes_raw"], raw.len());
    assert_eq!(stats["rejected"], json!({"400": 0, "401": 0, "fault": 0}));
    assert_eq!(stats["last_headers"]["content-encoding"], "gzip");
    assert_eq!(stats["last_headers"]["x-moesif-application-id"], APP_ID);
    assert_eq!(stats["last_headers"]["user-agent"], "collector-test/1.0");

    let lines: Vec<Value> = std::fs::read_to_string(&file)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(json!(lines), json!(events));
    Ok(())
}

#[test]
fn deflate_plain_and_single_event_bodies_are_accepted() -> TestResult {
    let (server, _) = Server::collector("encodings", &[])?;
    let raw = serde_json::to_vec(&[event("z", "u")])?;
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(&raw)?;
    let mut deflate = DeflateEncoder::new(Vec::new(), Compression::default());
    deflate.write_all(&raw)?;
    for (body, encoding) in [
        (zlib.finish()?, Some("deflate")),
        (deflate.finish()?, Some("deflate")),
        (raw.clone(), None),
    ] {
        assert_eq!(
            post_events(&server, "/v1/events/batch", &body, encoding)?.status,
            201
        );
    }
    let single = serde_json::to_vec(&event("s", "u"))?;
    assert_eq!(
        post_events(&server, "/v1/events", &single, None)?.status,
        201
    );
    // A single event must be an object, a batch an array.
    assert_eq!(post_events(&server, "/v1/events", &raw, None)?.status, 400);
    assert_eq!(
        post_events(&server, "/v1/events/batch", &single, None)?.status,
        400
    );
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 4);
    assert_eq!(stats["batches"], 4);
    assert_eq!(stats["rejected"]["400"], 2);
    Ok(())
}

#[test]
fn missing_app_id_is_401_and_stores_nothing() -> TestResult {
    let (server, _) = Server::collector("no-app-id", &[])?;
    let body = serde_json::to_vec(&[event("t1", "u1")])?;
    let reply = post(&server.url("/v1/events/batch"), &body)?;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json()?["error"],
        "missing X-Moesif-Application-Id header"
    );
    let empty_id = ureq::post(&server.url("/v1/events/batch")).set("X-Moesif-Application-Id", "");
    assert_eq!(send(empty_id, &body)?.status, 401);
    for path in ["/v1/config", "/v1/rules"] {
        let reply = get(&server.url(path))?;
        assert_eq!(reply.status, 401, "{path}");
        assert_eq!(
            reply.json()?["error"],
            "missing X-Moesif-Application-Id header"
        );
        assert_eq!(reply.header(CONFIG_TAG), None);
        assert_eq!(reply.header(RULES_TAG), None);
        let empty_id = ureq::get(&server.url(path)).set("X-Moesif-Application-Id", " ");
        assert_eq!(send(empty_id, b"")?.status, 401, "{path}");
    }
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 0);
    assert_eq!(stats["batches"], 0);
    assert_eq!(stats["rejected"]["401"], 2);
    assert_eq!(stats["config_fetches"], 0);
    assert_eq!(stats["rules_fetches"], 0);
    Ok(())
}

#[test]
fn bad_events_are_400_with_the_reason_and_nothing_is_stored() -> TestResult {
    let (server, _) = Server::collector("bad-events", &[])?;
    let mut no_uri = event("t2", "u");
    if let Some(request) = no_uri["request"].as_object_mut() {
        request.remove("uri");
    }
    let reply = post_batch(&server, &[event("t1", "u"), no_uri])?;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()?,
        json!({"error": "event[1].request.uri: missing"})
    );

    let mut bad_status = event("t3", "u");
    bad_status["response"]["status"] = json!("200");
    let reply = post_batch(&server, &[bad_status])?;
    assert_eq!(
        reply.json()?["error"],
        "event[0].response.status: must be an integer"
    );

    let mut bad_time = event("t4", "u");
    bad_time["request"]["time"] = json!("yesterday");
    let reply = post_batch(&server, &[bad_time])?;
    assert_eq!(
        reply.json()?["error"],
        "event[0].request.time: not an ISO 8601 date-time: `yesterday`"
    );

    // Moesif's rules beyond presence: a full URL, a method token; one bad event among good
    // ones refuses the whole batch.
    let mut no_host = event("t5", "u");
    no_host["request"]["uri"] = json!("http:///items");
    let reply = post_batch(&server, &[event("t6", "u"), event("t7", "u"), no_host])?;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()?["error"],
        "event[2].request.uri: not a full URL (http or https, ://, host): `http:///items`"
    );
    let mut empty_verb = event("t8", "u");
    empty_verb["request"]["verb"] = json!("");
    let reply = post_batch(&server, &[empty_verb])?;
    assert_eq!(
        reply.json()?["error"],
        "event[0].request.verb: must not be empty"
    );

    let reply = post_events(&server, "/v1/events/batch", b"not gzip", Some("gzip"))?;
    assert_eq!(reply.status, 400);
    let reply = post_events(&server, "/v1/events/batch", b"{", None)?;
    assert_eq!(reply.status, 400);

    let stats = stats(&server)?;
    assert_eq!(stats["events"], 0);
    assert_eq!(stats["rejected"]["400"], 7);
    assert_eq!(get(&server.url("/_collector/events"))?.json()?, json!([]));
    Ok(())
}

#[test]
fn config_is_served_with_a_stable_etag_that_follows_changes() -> TestResult {
    let config = json!({"sample_rate": 50, "user_sample_rate": {"u1": 10}});
    let path = json_file("app-config", &config)?;
    let (server, _) = Server::collector("config", &["--app-config", &path])?;
    let first = fetch(&server, "/v1/config")?;
    assert_eq!(first.status, 200);
    assert_eq!(first.json()?, config);
    let etag = tag_of(&first, CONFIG_TAG)?;
    assert_eq!(etag.len(), 16);
    assert_eq!(
        fetch(&server, "/v1/config")?.header(CONFIG_TAG),
        Some(etag.as_str())
    );

    let changed = post(&server.url("/_collector/config"), br#"{"sample_rate": 10}"#)?;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.text(), r#"{"sample_rate":10}"#);
    let new_etag = tag_of(&changed, CONFIG_TAG)?;
    assert_ne!(new_etag, etag);
    let second = fetch(&server, "/v1/config")?;
    assert_eq!(second.json()?, json!({"sample_rate": 10}));
    assert_eq!(second.header(CONFIG_TAG), Some(new_etag.as_str()));
    let batch = post_batch(&server, &[event("t", "u")])?;
    assert_eq!(batch.header(CONFIG_TAG), Some(new_etag.as_str()));
    assert_eq!(stats(&server)?["config_fetches"], 3);
    Ok(())
}

#[test]
fn rules_default_to_an_empty_array_with_a_stable_tag() -> TestResult {
    let (server, _) = Server::collector("rules-default", &[])?;
    let reply = fetch(&server, "/v1/rules")?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.text(), "[]");
    let tag = tag_of(&reply, RULES_TAG)?;
    assert_eq!(tag.len(), 16);
    assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()), "{tag}");
    assert_eq!(reply.header(CONFIG_TAG), None);
    assert_ne!(
        Some(tag.as_str()),
        fetch(&server, "/v1/config")?.header(CONFIG_TAG)
    );
    // Stable: the same content has the same tag in another run.
    let (other, _) = Server::collector("rules-default-2", &[])?;
    assert_eq!(
        fetch(&other, "/v1/rules")?.header(RULES_TAG),
        Some(tag.as_str())
    );
    assert_eq!(stats(&server)?["rules_fetches"], 1);
    Ok(())
}

#[test]
fn rules_are_loaded_from_a_file_and_checked() -> TestResult {
    let rules = json!([{
        "_id": "r1",
        "name": "block bad users",
        "type": "user",
        "block": true,
        "applied_to": "matching",
        "regex_config": [],
        "response": {"status": 403, "headers": {"x-why": "{{reason}}"}, "body": {"e": 1}}
    }]);
    let path = json_file("rules-file", &rules)?;
    let (server, _) = Server::collector("rules-file", &["--rules", &path])?;
    let reply = fetch(&server, "/v1/rules")?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()?, rules);
    let tag = tag_of(&reply, RULES_TAG)?;
    let (default, _) = Server::collector("rules-file-default", &[])?;
    assert_ne!(
        fetch(&default, "/v1/rules")?.header(RULES_TAG),
        Some(tag.as_str())
    );
    // The file's pretty whitespace is not part of the tag: the compact form has the same.
    let compact = post(
        &default.url("/_collector/rules"),
        rules.to_string().as_bytes(),
    )?;
    assert_eq!(compact.header(RULES_TAG), Some(tag.as_str()));

    // Not an array, not JSON, no file: the collector refuses to start.
    let object = json_file("rules-object", &json!({"rules": []}))?;
    let not_json = common::events_file("rules-not-json").with_extension("json");
    std::fs::write(&not_json, "[{")?;
    let not_json = not_json.to_str().ok_or("non-UTF-8 path")?;
    for bad in [object.as_str(), not_json, "/nonexistent/rules.json"] {
        let started = Server::collector("rules-bad", &["--rules", bad]);
        assert!(started.is_err(), "--rules {bad} was accepted");
    }
    let array = json_file("config-array", &json!([]))?;
    assert!(Server::collector("config-bad", &["--app-config", &array]).is_err());
    Ok(())
}

#[test]
fn runtime_changes_move_the_tags_and_identical_content_keeps_them() -> TestResult {
    let (server, _) = Server::collector("runtime-docs", &[])?;
    let batch_tags = |server: &Server| -> Result<(String, String), Box<dyn std::error::Error>> {
        let reply = post_batch(server, &[event("t", "u")])?;
        assert_eq!(reply.status, 201);
        Ok((tag_of(&reply, CONFIG_TAG)?, tag_of(&reply, RULES_TAG)?))
    };
    for (path, header, new, same, other_shape) in [
        (
            "config",
            CONFIG_TAG,
            r#"{"sample_rate": 20, "regex_config": []}"#,
            r#"{"regex_config":[],"sample_rate":20}"#,
            "[]",
        ),
        (
            "rules",
            RULES_TAG,
            r#"[{"_id": "r1", "block": false}]"#,
            "[ {\"_id\":\"r1\",\n \"block\":false} ]",
            "{}",
        ),
    ] {
        let admin = server.url(&format!("/_collector/{path}"));
        let initial = get(&admin)?;
        assert_eq!(initial.status, 200);
        let served = fetch(&server, &format!("/v1/{path}"))?;
        assert_eq!(initial.body, served.body, "{path}");
        let old = tag_of(&initial, header)?;
        assert_eq!(served.header(header), Some(old.as_str()));
        let before = batch_tags(&server)?;

        let changed = post(&admin, new.as_bytes())?;
        assert_eq!(changed.status, 200, "{path}: {}", changed.text());
        assert_eq!(changed.json()?, serde_json::from_str::<Value>(new)?);
        let tag = tag_of(&changed, header)?;
        assert_ne!(tag, old, "{path}");
        let served = fetch(&server, &format!("/v1/{path}"))?;
        assert_eq!(served.json()?, serde_json::from_str::<Value>(new)?);
        assert_eq!(served.header(header), Some(tag.as_str()));
        assert_eq!(get(&admin)?.header(header), Some(tag.as_str()));
        let after = batch_tags(&server)?;
        // Only this document's tag moved on batch answers.
        if path == "config" {
            assert_eq!((after.0.as_str(), &after.1), (tag.as_str(), &before.1));
        } else {
            assert_eq!((&after.0, after.1.as_str()), (&before.0, tag.as_str()));
        }

        // The same content, spelled differently, keeps the tag.
        let again = post(&admin, same.as_bytes())?;
        assert_eq!(again.header(header), Some(tag.as_str()), "{path}");
        assert_eq!(batch_tags(&server)?, after);

        // Bad documents are refused with a reason and change nothing.
        let name = if path == "config" {
            "app config"
        } else {
            "rules"
        };
        for (body, reason) in [
            (&b"{"[..], format!("{name} is not valid JSON: ")),
            (other_shape.as_bytes(), format!("{name} must be a JSON ")),
            (&[0xff, 0xfe][..], format!("{name} is not UTF-8: ")),
        ] {
            let refused = post(&admin, body)?;
            assert_eq!(refused.status, 400, "{path} {body:?}");
            let error = refused.json()?["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(error.starts_with(&reason), "{path}: {error}");
            assert_eq!(refused.header(header), None);
        }
        assert_eq!(get(&admin)?.header(header), Some(tag.as_str()));
        assert_eq!(batch_tags(&server)?, after);
    }
    // The admin GETs and POSTs are not fetches.
    let stats = stats(&server)?;
    assert_eq!(stats["config_fetches"], 2);
    assert_eq!(stats["rules_fetches"], 2);
    Ok(())
}

#[test]
fn batch_and_event_answers_carry_both_tags() -> TestResult {
    let (server, _) = Server::collector("batch-tags", &[])?;
    let config_tag = tag_of(&fetch(&server, "/v1/config")?, CONFIG_TAG)?;
    let rules_tag = tag_of(&fetch(&server, "/v1/rules")?, RULES_TAG)?;
    let batch = post_batch(&server, &[event("a", "u")])?;
    let single = post_events(
        &server,
        "/v1/events",
        &serde_json::to_vec(&event("b", "u"))?,
        None,
    )?;
    for reply in [&batch, &single] {
        assert_eq!(reply.status, 201);
        assert_eq!(reply.header(CONFIG_TAG), Some(config_tag.as_str()));
        assert_eq!(reply.header(RULES_TAG), Some(rules_tag.as_str()));
    }
    // A refused batch, an injected error: no tags, the plugin must not act on them.
    let refused = post_events(&server, "/v1/events/batch", b"{", None)?;
    assert_eq!(refused.status, 400);
    set_faults(&server, r#"{"status":503,"count":1}"#)?;
    let faulted = post_batch(&server, &[event("c", "u")])?;
    assert_eq!(faulted.status, 503);
    for reply in [&refused, &faulted] {
        assert_eq!(reply.header(CONFIG_TAG), None);
        assert_eq!(reply.header(RULES_TAG), None);
    }
    // A strange success (2xx fault) still carries them.
    set_faults(&server, r#"{"status":200,"garbage_body":true,"count":1}"#)?;
    let strange = post_batch(&server, &[event("d", "u")])?;
    assert_eq!(strange.status, 200);
    assert_eq!(strange.header(RULES_TAG), Some(rules_tag.as_str()));
    assert_eq!(strange.header(CONFIG_TAG), Some(config_tag.as_str()));
    Ok(())
}

#[test]
fn fetch_counters_count_every_fetch_and_reset_with_the_events() -> TestResult {
    let (server, _) = Server::collector("fetch-counters", &[])?;
    let counters = |server: &Server| -> Result<(Value, Value), Box<dyn std::error::Error>> {
        let stats = stats(server)?;
        Ok((
            stats["config_fetches"].clone(),
            stats["rules_fetches"].clone(),
        ))
    };
    assert_eq!(counters(&server)?, (json!(0), json!(0)));
    for _ in 0..3 {
        assert_eq!(fetch(&server, "/v1/config")?.status, 200);
    }
    assert_eq!(fetch(&server, "/v1/rules")?.status, 200);
    // Not counted: no app id, the admin endpoints, event POSTs.
    assert_eq!(get(&server.url("/v1/rules"))?.status, 401);
    get(&server.url("/_collector/config"))?;
    get(&server.url("/_collector/rules"))?;
    post_batch(&server, &[event("a", "u")])?;
    assert_eq!(counters(&server)?, (json!(3), json!(1)));
    // A faulted fetch is a fetch too.
    set_faults(&server, r#"{"target":"rules","status":500,"count":1}"#)?;
    assert_eq!(fetch(&server, "/v1/rules")?.status, 500);
    assert_eq!(fetch(&server, "/v1/rules")?.status, 200);
    assert_eq!(counters(&server)?, (json!(3), json!(3)));
    assert_eq!(
        stats(&server)?["faults_injected"],
        json!({"events": 0, "config": 0, "rules": 1})
    );
    let cleared = send(ureq::delete(&server.url("/_collector/events")), b"")?;
    assert_eq!(cleared.status, 204);
    assert_eq!(counters(&server)?, (json!(0), json!(0)));
    assert_eq!(stats(&server)?["faults_injected"]["rules"], 0);
    Ok(())
}

#[test]
fn config_and_rules_faults_leave_the_other_targets_alone() -> TestResult {
    let (server, _) = Server::collector(
        "fault-targets",
        &["--faults", r#"{"target":"rules","status":502,"count":1}"#],
    )?;
    assert_eq!(fetch(&server, "/v1/rules")?.status, 502);
    assert_eq!(fetch(&server, "/v1/rules")?.status, 200);

    let spec = r#"{"target":"config","status":503,"count":2}"#;
    let reply = set_faults(&server, spec)?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()?, serde_json::from_str::<Value>(spec)?);
    assert_eq!(get(&server.url("/_collector/faults"))?.json()?, json!({}));
    assert_eq!(
        get(&server.url("/_collector/faults?target=config"))?.json()?,
        serde_json::from_str::<Value>(spec)?
    );
    assert_eq!(
        get(&server.url("/_collector/faults?target=rules"))?.json()?,
        json!({"target": "rules"})
    );
    assert_eq!(post_batch(&server, &[event("a", "u")])?.status, 201);
    assert_eq!(fetch(&server, "/v1/rules")?.status, 200);
    for _ in 0..2 {
        let reply = fetch(&server, "/v1/config")?;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.json()?, json!({"error": "injected fault"}));
        assert_eq!(reply.header(CONFIG_TAG), None);
    }
    let reply = fetch(&server, "/v1/config")?;
    assert_eq!(reply.status, 200);
    assert!(reply.header(CONFIG_TAG).is_some());

    // Rules answer 200 with garbage until cleared; events and config are untouched, and an
    // events fault does not replace it.
    set_faults(
        &server,
        r#"{"target":"rules","status":200,"garbage_body":true}"#,
    )?;
    set_faults(&server, r#"{"status":500}"#)?;
    for _ in 0..2 {
        let reply = fetch(&server, "/v1/rules")?;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body.len(), 300);
        assert_eq!(reply.body.get(..3), Some(&[0xff, 0x00, 0xfe][..]));
        assert!(reply.header(RULES_TAG).is_some());
        assert_eq!(post_batch(&server, &[event("b", "u")])?.status, 500);
        assert_eq!(fetch(&server, "/v1/config")?.json()?["sample_rate"], 100);
    }
    let cleared = send(
        ureq::delete(&server.url("/_collector/faults?target=rules")),
        b"",
    )?;
    assert_eq!(cleared.json()?, json!({"target": "rules"}));
    assert_eq!(fetch(&server, "/v1/rules")?.text(), "[]");
    assert_eq!(post_batch(&server, &[event("b", "u")])?.status, 500);
    // Without a target, DELETE clears every target.
    set_faults(&server, r#"{"target":"config","status":404}"#)?;
    let cleared = send(ureq::delete(&server.url("/_collector/faults")), b"")?;
    assert_eq!(cleared.json()?, json!({}));
    assert_eq!(post_batch(&server, &[event("c", "u")])?.status, 201);
    assert_eq!(fetch(&server, "/v1/config")?.status, 200);

    let stats = stats(&server)?;
    assert_eq!(stats["rejected"]["fault"], 3);
    assert_eq!(stats["events"], 2);
    assert_eq!(stats["config_fetches"], 6);
    assert_eq!(stats["rules_fetches"], 6);

    let typo = set_faults(&server, r#"{"target":"cfg","status":503}"#)?;
    assert_eq!(typo.status, 400);
    assert!(typo.json()?["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("bad fault spec: unknown variant `cfg`")));
    assert_eq!(
        get(&server.url("/_collector/faults?target=cfg"))?.status,
        400
    );
    Ok(())
}

#[test]
fn fetch_faults_answer_like_event_faults() -> TestResult {
    let (server, _) = Server::collector("fetch-faults", &[])?;
    set_faults(
        &server,
        r#"{"target":"config","status":429,"retry_after_bytes":"fffe31","header_bytes":"80","count":1}"#,
    )?;
    let reply = raw_request(&server, "GET", "/v1/config", b"")?;
    assert_eq!(reply.status(), Some(429));
    assert_eq!(reply.header("retry-after"), Some(&[0xff, 0xfe, 0x31][..]));
    assert_eq!(reply.header("x-hostile"), Some(&[0x80][..]));
    assert_eq!(reply.header(CONFIG_TAG), None);

    set_faults(&server, r#"{"target":"rules","reset":true,"count":1}"#)?;
    let reply = raw_request(&server, "GET", "/v1/rules", b"")?;
    assert_eq!(reply.status(), Some(200));
    assert_eq!(reply.header("content-length"), Some(&b"1000"[..]));
    assert_eq!(reply.body, br#"{"partial":""#, "then: {:?}", reply.error);
    let reply = raw_request(&server, "GET", "/v1/rules", b"")?;
    assert_eq!(reply.body, b"[]");
    assert!(reply.header(RULES_TAG).is_some());

    // A 204 success has no body, even for a document.
    set_faults(&server, r#"{"target":"config","status":204,"count":1}"#)?;
    let reply = raw_request(&server, "GET", "/v1/config", b"")?;
    assert_eq!(reply.status(), Some(204));
    assert!(reply.body.is_empty());
    assert!(reply.header("content-length").is_none_or(|l| l == b"0"));
    assert!(reply.header(CONFIG_TAG).is_some());

    // Latency on config fetches holds them only.
    set_faults(&server, r#"{"target":"config","latency_ms":600}"#)?;
    let started = Instant::now();
    assert_eq!(post_batch(&server, &[event("fast", "u")])?.status, 201);
    assert_eq!(fetch(&server, "/v1/rules")?.status, 200);
    assert!(started.elapsed() < Duration::from_millis(600));
    let started = Instant::now();
    assert_eq!(fetch(&server, "/v1/config")?.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(
        get(&server.url("/_collector/faults?target=config"))?.json()?,
        json!({"target": "config", "latency_ms": 600})
    );
    Ok(())
}

#[test]
fn events_filter_by_transaction_user_and_limit() -> TestResult {
    let (server, _) = Server::collector("filters", &[])?;
    let events = [
        event("a", "alice"),
        event("b", "bob"),
        event("c", "alice"),
        event("d", "alice"),
    ];
    assert_eq!(post_batch(&server, &events)?.status, 201);
    let ids = |query: &str| -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let found = get(&server.url(&format!("/_collector/events{query}")))?.json()?;
        Ok(found
            .as_array()
            .ok_or("not an array")?
            .iter()
            .filter_map(|e| e["transaction_id"].as_str().map(str::to_owned))
            .collect())
    };
    assert_eq!(ids("")?, ["a", "b", "c", "d"]);
    assert_eq!(ids("?transaction_id=b")?, ["b"]);
    assert_eq!(ids("?user_id=alice")?, ["a", "c", "d"]);
    assert_eq!(ids("?user_id=alice&limit=2")?, ["c", "d"]);
    assert_eq!(ids("?limit=1")?, ["d"]);
    assert_eq!(ids("?user_id=nobody")?, Vec::<String>::new());
    assert_eq!(ids("?transaction_id=a&user_id=bob")?, Vec::<String>::new());
    Ok(())
}

#[test]
fn duplicates_are_counted_and_delete_resets_everything() -> TestResult {
    let (server, file) = Server::collector("duplicates", &[])?;
    assert_eq!(
        post_batch(&server, &[event("a", "u"), event("b", "u")])?.status,
        201
    );
    assert_eq!(
        post_batch(
            &server,
            &[event("a", "u"), event("a", "u"), event("c", "u")]
        )?
        .status,
        201
    );
    assert_eq!(post_batch(&server, &[event("b", "u")])?.status, 201);
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["events"], 6);
    assert_eq!(stats_now["batches"], 3);
    assert_eq!(stats_now["unique_transaction_ids"], 3);
    assert_eq!(stats_now["duplicate_events"], 3);
    assert_eq!(stats_now["duplicate_transaction_ids"], json!(["a", "b"]));

    let cleared = send(ureq::delete(&server.url("/_collector/events")), b"")?;
    assert_eq!(cleared.status, 204);
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["events"], 0);
    assert_eq!(stats_now["duplicate_events"], 0);
    assert_eq!(stats_now["batches"], 0);
    assert_eq!(stats_now["bytes_wire"], 0);
    assert_eq!(std::fs::read_to_string(&file)?, "");
    assert_eq!(post_batch(&server, &[event("a", "u")])?.status, 201);
    assert_eq!(stats(&server)?["duplicate_events"], 0);
    Ok(())
}

#[test]
fn count_only_counts_ids_and_keeps_nothing() -> TestResult {
    let (server, file) = Server::collector("count-only", &["--count-only"])?;
    let first = "0b6e5c3a-1f2d-4e8a-9c7b-3d2e1f0a9b8c";
    let second = "7f3a2b1c-0d9e-4f8a-b7c6-5d4e3f2a1b0c";
    let events = [event(first, "u"), event(second, "u"), event(first, "u")];
    let raw = serde_json::to_vec(&events)?;
    let wire = gzip(&raw)?;
    let reply = post_events(&server, "/v1/events/batch", &wire, Some("gzip"))?;
    assert_eq!(reply.status, 201);
    assert!(reply.header(CONFIG_TAG).is_some());
    assert!(reply.header(RULES_TAG).is_some());
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["count_only"], true);
    assert_eq!(stats_now["events"], 3);
    assert_eq!(stats_now["unique_transaction_ids"], 2);
    assert_eq!(stats_now["duplicate_events"], 1);
    assert_eq!(stats_now["duplicate_transaction_ids"], json!([first]));
    assert_eq!(stats_now["batches"], 1);
    assert_eq!(stats_now["bytes_wire"], wire.len());
    assert_eq!(stats_now["bytes_raw"], raw.len());
    assert_eq!(stats_now["last_headers"]["content-encoding"], "gzip");

    let single = serde_json::to_vec(&json!({"transaction_id": "s"}))?;
    assert_eq!(
        post_events(&server, "/v1/events", &single, None)?.status,
        201
    );
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["events"], 4);
    assert_eq!(stats_now["unique_transaction_ids"], 3);
    assert_eq!(stats_now["batches"], 2);
    assert_eq!(get(&server.url("/_collector/events"))?.json()?, json!([]));
    assert!(!file.exists(), "count-only must not write an events file");

    assert_eq!(post(&server.url("/v1/events/batch"), &raw)?.status, 401);
    let reply = post_events(&server, "/v1/events/batch", &single, None)?;
    assert_eq!(reply.status, 400);
    let reason = reply.json()?["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.starts_with("batch body must be a JSON array of events"));
    assert_eq!(
        post_events(&server, "/v1/events/batch", b"[1]", None)?.status,
        400
    );
    set_faults(&server, r#"{"status":503,"count":1}"#)?;
    assert_eq!(post_batch(&server, &events)?.status, 503);
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["events"], 4);
    assert_eq!(
        stats_now["rejected"],
        json!({"400": 2, "401": 1, "fault": 1})
    );

    let cleared = send(ureq::delete(&server.url("/_collector/events")), b"")?;
    assert_eq!(cleared.status, 204);
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["count_only"], true);
    assert_eq!(stats_now["events"], 0);
    assert_eq!(stats_now["unique_transaction_ids"], 0);
    assert_eq!(stats_now["batches"], 0);
    assert_eq!(stats_now["bytes_wire"], 0);
    assert_eq!(stats_now["rejected"]["400"], 0);
    assert_eq!(post_batch(&server, &[event(first, "u")])?.status, 201);
    assert_eq!(stats(&server)?["duplicate_events"], 0);
    Ok(())
}

#[test]
fn status_fault_answers_count_requests_then_clears() -> TestResult {
    let (server, _) =
        Server::collector("fault-count", &["--faults", r#"{"status":500,"count":1}"#])?;
    assert_eq!(post_batch(&server, &[event("x", "u")])?.status, 500);

    let reply = set_faults(&server, r#"{"status":503,"count":2}"#)?;
    assert_eq!(reply.json()?, json!({"status": 503, "count": 2}));
    for _ in 0..2 {
        let reply = post_batch(&server, &[event("a", "u")])?;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.json()?, json!({"error": "injected fault"}));
        assert_eq!(reply.header("retry-after"), None);
    }
    assert_eq!(post_batch(&server, &[event("a", "u")])?.status, 201);
    assert_eq!(get(&server.url("/_collector/faults"))?.json()?, json!({}));
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 1);
    assert_eq!(stats["duplicate_events"], 0);
    assert_eq!(stats["rejected"]["fault"], 3);
    Ok(())
}

#[test]
fn status_fault_with_retry_after_and_duration() -> TestResult {
    let (server, _) = Server::collector("fault-duration", &[])?;
    let started = Instant::now();
    let reply = set_faults(
        &server,
        r#"{"status":429,"retry_after_s":7,"duration_ms":1000}"#,
    )?;
    assert_eq!(reply.status, 200);
    let mut faulted = 0;
    while started.elapsed() < Duration::from_millis(300) {
        let reply = post_batch(&server, &[event("a", "u")])?;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("7"));
        faulted += 1;
    }
    let current = get(&server.url("/_collector/faults"))?.json()?;
    assert_eq!(current["status"], 429);
    assert_eq!(current["retry_after_s"], 7);
    assert!(current["duration_ms"]
        .as_u64()
        .is_some_and(|left| left <= 1000));
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(started.elapsed()));
    assert_eq!(post_batch(&server, &[event("a", "u")])?.status, 201);
    assert_eq!(stats(&server)?["rejected"]["fault"], faulted);

    // Without count or duration the fault holds until cleared.
    set_faults(&server, r#"{"status":502}"#)?;
    for _ in 0..5 {
        assert_eq!(post_batch(&server, &[event("b", "u")])?.status, 502);
    }
    let cleared = send(ureq::delete(&server.url("/_collector/faults")), b"")?;
    assert_eq!(cleared.json()?, json!({}));
    assert_eq!(post_batch(&server, &[event("b", "u")])?.status, 201);

    let typo = set_faults(&server, r#"{"staus":503}"#)?;
    assert_eq!(typo.status, 400);
    Ok(())
}

#[test]
fn retry_after_bytes_arrive_raw_for_count_answers() -> TestResult {
    let (server, _) = Server::collector("fault-retry-after-bytes", &[])?;
    let spec = r#"{"status":503,"retry_after_bytes":"fffe31","count":2}"#;
    assert_eq!(
        set_faults(&server, spec)?.json()?,
        serde_json::from_str::<Value>(spec)?
    );
    for _ in 0..2 {
        let reply = raw_post_batch(&server, &[event("a", "u")])?;
        assert_eq!(reply.status(), Some(503));
        assert_eq!(reply.header("retry-after"), Some(&[0xff, 0xfe, 0x31][..]));
        assert!(reply.error.is_none());
    }
    let reply = raw_post_batch(&server, &[event("a", "u")])?;
    assert_eq!(reply.status(), Some(201));
    assert_eq!(reply.header("retry-after"), None);
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 1);
    assert_eq!(stats["rejected"]["fault"], 2);
    Ok(())
}

#[test]
fn header_bytes_arrive_raw_on_normal_and_injected_answers() -> TestResult {
    let (server, _) = Server::collector("fault-header-bytes", &[])?;
    set_faults(&server, r#"{"header_bytes":"80fe41ff","count":2}"#)?;
    for id in ["a", "b"] {
        let reply = raw_post_batch(&server, &[event(id, "u")])?;
        assert_eq!(reply.status(), Some(201));
        assert_eq!(
            reply.header("x-hostile"),
            Some(&[0x80, 0xfe, 0x41, 0xff][..])
        );
        assert!(reply.header(CONFIG_TAG).is_some());
        assert!(reply.header(RULES_TAG).is_some());
    }
    let reply = raw_post_batch(&server, &[event("c", "u")])?;
    assert_eq!(reply.status(), Some(201));
    assert_eq!(reply.header("x-hostile"), None);
    assert_eq!(
        stats(&server)?["events"],
        3,
        "x-hostile alone stores the events"
    );

    set_faults(
        &server,
        r#"{"status":502,"retry_after_s":3,"header_bytes":"c0ffee","count":1}"#,
    )?;
    let reply = raw_post_batch(&server, &[event("d", "u")])?;
    assert_eq!(reply.status(), Some(502));
    assert_eq!(reply.header("x-hostile"), Some(&[0xc0, 0xff, 0xee][..]));
    assert_eq!(reply.header("retry-after"), Some(&b"3"[..]));
    assert_eq!(reply.body, br#"{"error":"injected fault"}"#);
    assert_eq!(
        raw_post_batch(&server, &[event("d", "u")])?.header("x-hostile"),
        None
    );
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 4);
    assert_eq!(stats["rejected"]["fault"], 1);
    Ok(())
}

#[test]
fn garbage_200_still_stores_and_garbage_503_does_not() -> TestResult {
    let (server, _) = Server::collector("fault-garbage", &[])?;
    set_faults(&server, r#"{"status":200,"garbage_body":true,"count":1}"#)?;
    let events = [event("g1", "u"), event("g2", "u")];
    let reply = post_batch(&server, &events)?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 300);
    assert_eq!(reply.body.get(..3), Some(&[0xff, 0x00, 0xfe][..]));
    assert!(std::str::from_utf8(&reply.body).is_err());
    assert!(reply.header(CONFIG_TAG).is_some());
    assert!(reply.header(RULES_TAG).is_some());
    assert_eq!(
        get(&server.url("/_collector/events"))?.json()?,
        json!(events)
    );
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["events"], 2);
    assert_eq!(stats_now["rejected"]["fault"], 0);

    let reply = post_batch(&server, &[event("g3", "u")])?;
    assert_eq!(reply.status, 201);
    assert!(reply.body.is_empty());

    set_faults(&server, r#"{"status":503,"garbage_body":true,"count":1}"#)?;
    let reply = post_batch(&server, &[event("g4", "u")])?;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body.get(..3), Some(&[0xff, 0x00, 0xfe][..]));
    assert_eq!(post_batch(&server, &[event("g5", "u")])?.status, 201);
    let stats_now = stats(&server)?;
    assert_eq!(stats_now["events"], 4);
    assert_eq!(stats_now["rejected"]["fault"], 1);
    // Both faulted answers: the one that stored and the one that did not.
    assert_eq!(stats_now["faults_injected"]["events"], 2);
    assert_eq!(
        get(&server.url("/_collector/events?transaction_id=g4"))?.json()?,
        json!([])
    );
    Ok(())
}

#[test]
fn reset_breaks_the_answer_mid_body_and_stores_nothing() -> TestResult {
    let (server, _) = Server::collector("fault-reset", &[])?;
    set_faults(&server, r#"{"reset":true,"header_bytes":"ff","count":2}"#)?;
    let reply = raw_post_batch(&server, &[event("r", "u")])?;
    assert_eq!(reply.status(), Some(200));
    assert_eq!(reply.header("content-length"), Some(&b"1000"[..]));
    assert_eq!(reply.header("x-hostile"), Some(&[0xff][..]));
    assert_eq!(
        reply.body, br#"{"partial":""#,
        "then the connection broke: {:?}",
        reply.error
    );

    // A real client sees an error, not a short answer it could take for complete.
    let broken = post_batch(&server, &[event("r", "u")]);
    assert!(broken.is_err(), "{broken:?}");

    // The retry after the count is spent is stored, exactly once.
    assert_eq!(post_batch(&server, &[event("r", "u")])?.status, 201);
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 1);
    assert_eq!(stats["duplicate_events"], 0);
    assert_eq!(stats["rejected"]["fault"], 2);
    Ok(())
}

#[test]
fn hostile_fault_specs_are_checked() -> TestResult {
    let (server, _) = Server::collector("fault-specs", &[])?;
    for (spec, reason) in [
        (
            r#"{"header_bytes":"0d0a"}"#,
            "header_bytes: a header value cannot hold control bytes",
        ),
        (
            r#"{"status":503,"retry_after_bytes":"xyz"}"#,
            "retry_after_bytes: `xyz` is not hex",
        ),
        (
            r#"{"reset":true,"status":503}"#,
            "reset sends its own 200 answer",
        ),
        (
            r#"{"status":204,"garbage_body":true}"#,
            "garbage_body needs a status that has a body",
        ),
    ] {
        let reply = set_faults(&server, spec)?;
        assert_eq!(reply.status, 400, "{spec}");
        let error = reply.json()?["error"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            error.starts_with(&format!("bad fault spec: {reason}")),
            "{spec}: {error}"
        );
    }
    assert_eq!(get(&server.url("/_collector/faults"))?.json()?, json!({}));
    Ok(())
}

#[test]
fn latency_still_stores_so_a_timed_out_retry_is_a_duplicate() -> TestResult {
    let (server, _) = Server::collector("latency", &[])?;
    assert_eq!(set_faults(&server, r#"{"latency_ms":500}"#)?.status, 200);
    let body = gzip(&serde_json::to_vec(&[event("slow", "u")])?)?;
    let impatient = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(150))
        .build()
        .post(&server.url("/v1/events/batch"))
        .set("X-Moesif-Application-Id", APP_ID)
        .set("Content-Encoding", "gzip");
    assert!(
        send(impatient, &body).is_err(),
        "the client should time out"
    );
    assert_eq!(stats(&server)?["events"], 0);
    assert!(eventually(|| stats(&server).is_ok_and(|s| s["events"] == 1)));

    let started = Instant::now();
    let reply = post_events(&server, "/v1/events/batch", &body, Some("gzip"))?;
    assert_eq!(reply.status, 201);
    assert!(started.elapsed() >= Duration::from_millis(500));
    let stats = stats(&server)?;
    assert_eq!(stats["events"], 2);
    assert_eq!(stats["duplicate_events"], 1);
    assert_eq!(stats["duplicate_transaction_ids"], json!(["slow"]));
    Ok(())
}

#[test]
fn refuse_closes_the_port_then_reopens_it() -> TestResult {
    let (server, _) = Server::collector("refuse", &[])?;
    let reply = set_faults(&server, r#"{"refuse_ms":800}"#)?;
    assert_eq!(reply.status, 200);
    let refused = TcpStream::connect(server.addr).map_err(|e| e.kind());
    assert_eq!(refused.err(), Some(ErrorKind::ConnectionRefused));
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(post_batch(&server, &[event("after", "u")])?.status, 201);
    assert_eq!(stats(&server)?["events"], 1);
    Ok(())
}

#[test]
fn sigterm_exits_cleanly() -> TestResult {
    let (server, _) = Server::collector("sigterm", &[])?;
    assert_eq!(post_batch(&server, &[event("a", "u")])?.status, 201);
    assert!(server.terminate()?.success());
    Ok(())
}

#[test]
fn unknown_paths_are_404() -> TestResult {
    let (server, _) = Server::collector("not-found", &[])?;
    let reply = get(&server.url("/v1/nope"))?;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text(), r#"{"error":"not found"}"#);
    Ok(())
}

/// An event as the plugin ships it, for the viewer's list.
fn viewer_event(n: usize, user: &str, status: u16) -> Value {
    json!({
        "transaction_id": format!("v{n}"),
        "user_id": user,
        "company_id": "acme",
        "request": {
            "time": "2024-10-30T04:45:42.914Z",
            "uri": format!("https://api.acme.com/items/{n}?key=*****"),
            "verb": "GET",
            "headers": {"authorization": "*****"}
        },
        "response": {"time": "2024-10-30T04:45:42.950Z", "status": status, "headers": {}},
        "metadata": {"envoy": {"duration_ms": 36.5}}
    })
}

#[test]
fn viewer_page_and_its_paged_api() -> TestResult {
    let (server, _) = Server::collector("viewer", &[])?;
    let page = get(&server.url("/"))?;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("content-security-policy"),
        Some("default-src 'self'")
    );
    assert!(page.text().contains(r#"<tbody id="rows">"#));
    for (path, content_type) in [
        ("/viewer.js", "text/javascript; charset=utf-8"),
        ("/viewer.css", "text/css; charset=utf-8"),
    ] {
        let asset = get(&server.url(path))?;
        assert_eq!(asset.status, 200, "{path}");
        assert_eq!(asset.header("content-type"), Some(content_type), "{path}");
    }

    let events: Vec<Value> = (1..=120)
        .map(|n| viewer_event(n, if n % 4 == 0 { "ann" } else { "bob" }, 200))
        .chain([viewer_event(121, "ann", 503)])
        .collect();
    assert_eq!(post_batch(&server, &events)?.status, 201);

    let first = get(&server.url("/_collector/page"))?.json()?;
    assert_eq!(
        (first["total"].clone(), first["stored"].clone()),
        (json!(121), json!(121))
    );
    assert_eq!(first["next_before"], 72);
    let rows = first["rows"].as_array().ok_or("rows")?;
    assert_eq!(rows.len(), 50);
    assert_eq!(
        rows[0],
        json!({
            "seq": 121, "time": "2024-10-30T04:45:42.914Z", "method": "GET",
            "uri": "https://api.acme.com/items/121?key=*****", "status": 503,
            "duration_ms": 36.5, "user": "ann", "company": "acme",
            "request_bytes": 0, "response_bytes": 0,
            "masked": ["request.uri?key", "request.headers.authorization"]
        })
    );

    let ann = get(&server.url("/_collector/page?user=ann&status=2xx&path=&before=100&limit=3"))?
        .json()?;
    let seqs: Vec<&Value> = ann["rows"]
        .as_array()
        .ok_or("rows")?
        .iter()
        .map(|r| &r["seq"])
        .collect();
    assert_eq!(seqs, [96, 92, 88]);
    assert_eq!(ann["total"], 30);
    assert_eq!(ann["next_before"], 88);

    let bad = get(&server.url("/_collector/page?status=9xx"))?;
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("status `9xx`"), "{}", bad.text());
    assert_eq!(get(&server.url("/_collector/page?nope=1"))?.status, 400);

    assert_eq!(
        get(&server.url("/_collector/event/121"))?.json()?,
        events[120]
    );
    assert_eq!(get(&server.url("/_collector/event/1"))?.json()?, events[0]);
    for missing in ["0", "122", "x"] {
        let reply = get(&server.url(&format!("/_collector/event/{missing}")))?;
        assert_eq!(
            reply.status,
            if missing == "x" { 400 } else { 404 },
            "{missing}"
        );
    }

    // Numbers start again from 1 once the store is cleared.
    send(ureq::delete(&server.url("/_collector/events")), b"")?;
    assert_eq!(
        post_batch(&server, &[viewer_event(7, "cy", 201)])?.status,
        201
    );
    let after = get(&server.url("/_collector/page"))?.json()?;
    assert_eq!(after["rows"][0]["seq"], 1);
    assert_eq!(after["rows"][0]["user"], "cy");
    assert_eq!(get(&server.url("/_collector/event/2"))?.status, 404);
    Ok(())
}
