//! The collector's event viewer as a person sees it, in a real headless Chromium: calls sent
//! through the real Envoy and plugin show up in the list with the right fields, a user
//! filter narrows the list, the detail view decodes a base64 JSON body, and a new call
//! appears without a reload. Leaves a screenshot at `target/viewer/viewer.png`.

use base64::Engine;
use e2e::browser::{Browser, ENTER};
use e2e::client::{Call, Client};
use e2e::envoy::{Mode, Options};
use e2e::process::wait_for;
use e2e::stack::Stack;
use serde_json::{json, Value};
use std::time::Duration;

/// What the list shows, read from the page: one object per row, top to bottom.
const READ_ROWS: &str = r##"
    const text = (tr, name) => tr.querySelector(`td.${name}`).textContent;
    return [...document.querySelectorAll("#rows tr")].map((tr) => ({
        seq: Number(tr.dataset.seq),
        method: text(tr, "method"),
        uri: text(tr, "uri"),
        status: text(tr, "status"),
        user: text(tr, "user"),
        company: text(tr, "company"),
        masked: text(tr, "masks"),
    }));
"##;

const WAIT: Duration = Duration::from_secs(20);

fn rows(browser: &Browser) -> Vec<Value> {
    browser.eval(READ_ROWS, &[]).as_array().cloned().unwrap()
}

/// The row the page should show for `event`, numbered `seq`.
fn expected_row(seq: usize, event: &Value) -> Value {
    json!({
        "seq": seq,
        "method": event["request"]["verb"],
        "uri": event["request"]["uri"],
        "status": event["response"]["status"].to_string(),
        "user": event["user_id"].as_str().unwrap_or(""),
        "company": event["company_id"].as_str().unwrap_or(""),
    })
}

/// The path and query of a full URI.
fn target(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.find('/').map_or("", |i| &rest[i..])
}

fn without_masked(mut row: Value) -> Value {
    row.as_object_mut().unwrap().remove("masked");
    row
}

#[test]
fn viewer_lists_filters_details_and_updates_live_in_chromium() {
    let stack = Stack::start("viewer", &Options::new(Mode::Singleton));
    let client = Client::new();
    let order = json!({"order": {"id": 42, "items": ["tea", "cake"]}}).to_string();
    // Each call with the status it gets.
    let calls: [(Call, u16); 5] = [
        (
            (
                "GET",
                "/items?page=2",
                vec![
                    ("x-user-id", "alice"),
                    ("x-company-id", "acme"),
                    ("x-api-key", "SECRET-KEY"),
                ],
                None,
            ),
            200,
        ),
        (
            (
                "POST",
                "/echo",
                vec![
                    ("x-user-id", "alice"),
                    ("x-company-id", "acme"),
                    ("content-type", "application/json"),
                ],
                Some(br#"{"name":"widget","price":9.5}"#),
            ),
            200,
        ),
        (
            (
                "GET",
                "/items",
                vec![("x-user-id", "bob"), ("x-company-id", "globex")],
                None,
            ),
            200,
        ),
        // Not a JSON content type: the plugin ships the body as base64.
        (
            (
                "POST",
                "/echo",
                vec![("x-user-id", "carol"), ("content-type", "text/plain")],
                Some(order.as_bytes()),
            ),
            200,
        ),
        (
            (
                "GET",
                "/does-not-exist",
                vec![("x-user-id", "bob"), ("x-company-id", "globex")],
                None,
            ),
            404,
        ),
    ];
    for ((method, path, headers, body), status) in &calls {
        let r = client.send(method, &stack.envoy.url(path), headers, *body);
        assert_eq!(r.status, *status, "{method} {path}: {}", r.text());
    }
    wait_for("5 events at the collector", WAIT, || {
        (stack.collector.event_count() == 5).then_some(())
    });
    let events = stack.collector.events();
    let mut arrived: Vec<(String, String, String, String)> = events
        .iter()
        .map(|e| {
            let field = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
            let uri = e["request"]["uri"].as_str().unwrap();
            (
                field(&e["request"]["verb"]),
                target(uri).to_string(),
                field(&e["response"]["status"]),
                field(&e["user_id"]),
            )
        })
        .collect();
    let mut sent: Vec<(String, String, String, String)> = calls
        .iter()
        .map(|((method, path, headers, _), status)| {
            let user = headers.iter().find(|(k, _)| *k == "x-user-id").unwrap().1;
            (
                method.to_string(),
                path.to_string(),
                status.to_string(),
                user.to_string(),
            )
        })
        .collect();
    arrived.sort();
    sent.sort();
    assert_eq!(arrived, sent, "the collector got the calls sent");

    let browser = Browser::start(&stack.dir);
    browser.goto(&format!("http://127.0.0.1:{}/", stack.collector.port));

    // Every event, newest first, with the fields the event carries.
    let expected: Vec<Value> = events
        .iter()
        .enumerate()
        .rev()
        .map(|(index, event)| expected_row(index + 1, event))
        .collect();
    let shown = wait_for("the 5 rows", WAIT, || {
        let shown = rows(&browser);
        (shown.len() == 5).then_some(shown)
    });
    let shown_fields: Vec<Value> = shown.iter().cloned().map(without_masked).collect();
    assert_eq!(shown_fields, expected);
    let masked: Vec<&str> = shown
        .iter()
        .map(|r| r["masked"].as_str().unwrap())
        .collect();
    let with_key = events
        .iter()
        .position(|e| target(e["request"]["uri"].as_str().unwrap()) == "/items?page=2")
        .unwrap();
    for (row, masks) in shown.iter().zip(&masked) {
        let want = if row["seq"] == with_key + 1 {
            "request.headers.x-api-key"
        } else {
            ""
        };
        assert_eq!(*masks, want, "{row}");
    }
    let summary = browser.text(&browser.find("#summary"));
    assert!(summary.starts_with("5 matching of 5 stored"), "{summary}");
    wait_for("the stats panel", WAIT, || {
        let stats = stack.collector.stats();
        let shows = |id: &str, key: &str| {
            let text = browser.text(&browser.find(id));
            text.parse::<u64>().ok() == stats[key].as_u64()
        };
        (shows("#stat-events", "events") && shows("#stat-batches", "batches")).then_some(())
    });

    // Typing a user into the filter narrows the list to exactly that user's calls.
    browser.type_text(&browser.find("#f-user"), &format!("alice{ENTER}"));
    let alice: Vec<Value> = expected
        .iter()
        .filter(|r| r["user"] == "alice")
        .cloned()
        .collect();
    assert_eq!(alice.len(), 2);
    wait_for("only alice's rows", WAIT, || {
        let shown: Vec<Value> = rows(&browser).into_iter().map(without_masked).collect();
        (shown == alice).then_some(())
    });
    let summary = browser.text(&browser.find("#summary"));
    assert!(summary.starts_with("2 matching of 5 stored"), "{summary}");
    browser.click(&browser.find("#clear-filters"));
    wait_for("all rows again", WAIT, || {
        (rows(&browser).len() == 5).then_some(())
    });

    // The detail view shows carol's base64 body decoded, and pretty-printed as JSON.
    let carol = events.iter().position(|e| e["user_id"] == "carol").unwrap();
    assert_eq!(events[carol]["request"]["transfer_encoding"], "base64");
    browser.click(&browser.find(&format!("#rows tr[data-seq=\"{}\"]", carol + 1)));
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&order).unwrap()).unwrap();
    for side in ["request", "response"] {
        let body = format!("#detail-{side}-body");
        wait_for(&format!("carol's {side} body decoded"), WAIT, || {
            (browser.text(&browser.find(&body)) == pretty).then_some(())
        });
        let note = browser.text(&browser.find(&format!("{body}-note")));
        assert_eq!(
            note,
            format!("(base64, decoded: {} B of JSON text)", order.len())
        );
    }
    // What arrived was base64: the event JSON shows it so.
    let encoded = base64::engine::general_purpose::STANDARD.encode(&order);
    let event_json = browser.text(&browser.find("#detail-json"));
    assert!(event_json.contains(&encoded), "{event_json}");
    let title = browser.text(&browser.find("#detail-title"));
    assert!(
        title.starts_with(&format!("#{} POST http://", carol + 1)),
        "{title}"
    );

    // A new call shows up on its own: no reload (the page's state survives).
    browser.eval("window.notReloaded = true;", &[]);
    let r = client.get(
        &stack.envoy.url("/items?live=1"),
        &[("x-user-id", "dave"), ("x-company-id", "initech")],
    );
    assert_eq!(r.status, 200);
    let newest = wait_for("the new call at the top of the list", WAIT, || {
        let shown = rows(&browser);
        (shown.len() == 6).then(|| shown[0].clone())
    });
    assert_eq!(newest["seq"], 6);
    assert_eq!(newest["method"], "GET");
    assert_eq!(target(newest["uri"].as_str().unwrap()), "/items?live=1");
    assert_eq!(
        (&newest["status"], &newest["user"]),
        (&json!("200"), &json!("dave"))
    );
    assert_eq!(browser.eval("return window.notReloaded;", &[]), true);

    let png = e2e::root().join("target/viewer/viewer.png");
    browser.screenshot(&png);
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is a PNG",
        png.display()
    );
    println!("screenshot: {}", png.display());
}
