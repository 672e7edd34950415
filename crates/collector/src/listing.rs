//! The event viewer's list: one summary row per stored event, newest first, filtered and
//! paged here, so a browser gets one page of rows and never the whole store.
//!
//! Events are numbered from 1 in the order they arrived; the number of an event never
//! changes while more arrive (only clearing the store starts again from 1). A page walks the
//! store from its newest event down and stops once it is full, so a first page costs the
//! same with a hundred events stored or a hundred thousand. Only a filtered `total` reads
//! them all.

use std::fmt::{self, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the plugin's masks write in place of a value (`moesif_core::mask::MASKED`, repeated
/// here: the collector stands in for Moesif and depends on none of the plugin's crates).
pub const MASKED: &str = "*****";

/// Rows per page when the query does not say.
pub const DEFAULT_LIMIT: usize = 50;

/// The most rows one page may hold, so one request cannot ask for the whole store.
pub const MAX_LIMIT: usize = 500;

/// Query of `GET /_collector/page`. An empty value means "no filter", as an HTML form sends
/// its empty fields.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Exactly this `user_id`.
    pub user: Option<String>,
    /// Exactly this `company_id`.
    pub company: Option<String>,
    /// `1xx` to `5xx`, or `none` for calls that got no response.
    pub status: Option<String>,
    /// A substring of the request's path and query (the URI without scheme and host).
    pub path: Option<String>,
    /// Only events numbered below this one: the previous page's `next_before`.
    pub before: Option<u64>,
    /// Rows per page: [`DEFAULT_LIMIT`] by default, at most [`MAX_LIMIT`].
    pub limit: Option<usize>,
}

/// One page of the list.
#[derive(Debug, Serialize)]
pub struct Page<'a> {
    /// Newest first.
    pub rows: Vec<Row<'a>>,
    /// Events matching the filters in the whole store.
    pub total: usize,
    /// Events stored, which is also the number of the newest one.
    pub stored: usize,
    /// The `before` of the next, older page; `None` on the last page.
    pub next_before: Option<u64>,
}

/// What the list shows of one event; the detail view fetches the event itself.
#[derive(Debug, PartialEq, Serialize)]
pub struct Row<'a> {
    /// The event's number, for `GET /_collector/event/{seq}`.
    pub seq: u64,
    pub time: Option<&'a str>,
    pub method: Option<&'a str>,
    pub uri: Option<&'a str>,
    pub status: Option<u64>,
    /// `metadata.envoy.duration_ms`, as the plugin measured it.
    pub duration_ms: Option<f64>,
    pub user: Option<&'a str>,
    pub company: Option<&'a str>,
    /// See [`body_bytes`].
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Where a mask shows, see [`masked`].
    pub masked: Vec<String>,
}

/// The page of `events` (the store, oldest first) that `query` asks for, or why the query
/// makes no sense.
pub fn page<'a>(events: &'a [Value], query: &PageQuery) -> Result<Page<'a>, String> {
    let filter = Filter::parse(query)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    // Event `n` is at index `n - 1`, so the events before `n` are the first `n - 1`.
    let end = query.before.map_or(events.len(), |before| {
        usize::try_from(before.saturating_sub(1)).map_or(events.len(), |n| n.min(events.len()))
    });
    let mut page = Page {
        rows: Vec::with_capacity(limit),
        total: 0,
        stored: events.len(),
        next_before: None,
    };
    if filter.is_empty() {
        // Every event matches: the page is the newest `limit` before `end`, and one more
        // tells whether there is an older page.
        page.total = events.len();
        let before_end = events.get(..end).unwrap_or_default();
        for (index, event) in before_end.iter().enumerate().rev().take(limit + 1) {
            page.offer(limit, index, event);
        }
    } else {
        // One pass counts every match and takes the page's.
        for (index, event) in events.iter().enumerate().rev() {
            if filter.matches(event) {
                page.total += 1;
                if index < end {
                    page.offer(limit, index, event);
                }
            }
        }
    }
    Ok(page)
}

impl<'a> Page<'a> {
    /// Offers the event at `index`, older than any offered before: taken while the page has
    /// room, and the first one it has no room for means there is an older page.
    fn offer(&mut self, limit: usize, index: usize, event: &'a Value) {
        if self.rows.len() < limit {
            self.rows.push(Row::of(index as u64 + 1, event));
        } else if self.next_before.is_none() {
            self.next_before = self.rows.last().map(|row| row.seq);
        }
    }
}

/// The filters of a [`PageQuery`], checked.
#[derive(Debug)]
struct Filter<'q> {
    user: Option<&'q str>,
    company: Option<&'q str>,
    status: Option<StatusClass>,
    path: Option<&'q str>,
}

#[derive(Debug, Clone, Copy)]
enum StatusClass {
    /// The first digit of the status: 2 for `2xx`.
    Hundreds(u64),
    NoResponse,
}

impl<'q> Filter<'q> {
    fn parse(query: &'q PageQuery) -> Result<Self, String> {
        let given = |value: &'q Option<String>| value.as_deref().filter(|v| !v.is_empty());
        let status = given(&query.status)
            .map(|status| match status {
                "none" => Ok(StatusClass::NoResponse),
                _ => status
                    .strip_suffix("xx")
                    .and_then(|digit| digit.parse().ok())
                    .filter(|digit| (1..=5).contains(digit))
                    .map(StatusClass::Hundreds)
                    .ok_or_else(|| {
                        format!("status `{status}`: expected 1xx, 2xx, 3xx, 4xx, 5xx or none")
                    }),
            })
            .transpose()?;
        Ok(Self {
            user: given(&query.user),
            company: given(&query.company),
            status,
            path: given(&query.path),
        })
    }

    fn is_empty(&self) -> bool {
        self.user.is_none()
            && self.company.is_none()
            && self.status.is_none()
            && self.path.is_none()
    }

    fn matches(&self, event: &Value) -> bool {
        self.user
            .is_none_or(|user| text(event, &["user_id"]) == Some(user))
            && self
                .company
                .is_none_or(|company| text(event, &["company_id"]) == Some(company))
            && self.status.is_none_or(|class| {
                let status = field(event, &["response", "status"]).and_then(Value::as_u64);
                match class {
                    StatusClass::Hundreds(digit) => status.is_some_and(|s| s / 100 == digit),
                    StatusClass::NoResponse => status.is_none(),
                }
            })
            && self.path.is_none_or(|part| {
                text(event, &["request", "uri"])
                    .is_some_and(|uri| path_and_query(uri).contains(part))
            })
    }
}

impl<'a> Row<'a> {
    fn of(seq: u64, event: &'a Value) -> Self {
        Self {
            seq,
            time: text(event, &["request", "time"]),
            method: text(event, &["request", "verb"]),
            uri: text(event, &["request", "uri"]),
            status: field(event, &["response", "status"]).and_then(Value::as_u64),
            duration_ms: field(event, &["metadata", "envoy", "duration_ms"])
                .and_then(Value::as_f64),
            user: text(event, &["user_id"]),
            company: text(event, &["company_id"]),
            request_bytes: body_bytes(event, "request"),
            response_bytes: body_bytes(event, "response"),
            masked: masked(event),
        }
    }
}

/// The member of `event` at `path` (`Value::pointer` would allocate on every call, and the
/// filters call this for every stored event).
fn field<'a>(event: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(event, |value, key| value.get(key))
}

fn text<'a>(event: &'a Value, path: &[&str]) -> Option<&'a str> {
    field(event, path).and_then(Value::as_str)
}

/// `https://host/p?q` without `https://host`: what a path filter looks in.
fn path_and_query(uri: &str) -> &str {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    rest.find('/').and_then(|at| rest.get(at..)).unwrap_or("")
}

/// The size of the body of `side` (`request` or `response`) as the plugin captured it: the
/// size it reported for a body too large to ship, the decoded length of a base64 body, the
/// compact JSON of a JSON one (the client's whitespace is not kept), 0 without a body.
fn body_bytes(event: &Value, side: &str) -> u64 {
    let omitted = event
        .get("metadata")
        .and_then(|metadata| metadata.get(format!("{side}_body_omitted")))
        .and_then(|omitted| omitted.get("size"))
        .and_then(Value::as_u64);
    if let Some(size) = omitted {
        return size;
    }
    let Some(part) = event.get(side) else {
        return 0;
    };
    let encoding = part.get("transfer_encoding").and_then(Value::as_str);
    match (part.get("body"), encoding) {
        (None, _) => 0,
        (Some(Value::String(base64)), Some("base64")) => {
            let digits = base64
                .bytes()
                .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
                .count();
            (digits * 3 / 4) as u64
        }
        (Some(body), _) => serde_json::to_vec(body).map_or(0, |json| json.len() as u64),
    }
}

/// Where the plugin's masks show in `event`: header values, query parameter values and JSON
/// body members that are [`MASKED`], named `request.headers.x-api-key`,
/// `request.uri?api_key`, `request.body.user.password`, `response.body.cards[0].number`.
fn masked(event: &Value) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(uri) = text(event, &["request", "uri"]) {
        // The query ends at a fragment; a `?` after a `#` is part of the fragment.
        let query = uri.split('#').next().and_then(|u| u.split_once('?'));
        for param in query.into_iter().flat_map(|(_, q)| q.split(['&', ';'])) {
            if let Some((name, MASKED)) = param.split_once('=') {
                found.push(format!("request.uri?{name}"));
            }
        }
    }
    for side in ["request", "response"] {
        let Some(part) = event.get(side) else {
            continue;
        };
        let headers = part.get("headers").and_then(Value::as_object);
        for (name, value) in headers.into_iter().flatten() {
            if value.as_str() == Some(MASKED) {
                found.push(format!("{side}.headers.{name}"));
            }
        }
        let base64 = part.get("transfer_encoding").and_then(Value::as_str) == Some("base64");
        if let Some(body) = part.get("body").filter(|_| !base64) {
            masked_members(body, &mut format!("{side}.body"), &mut found);
        }
    }
    found
}

/// Adds to `found` the path of every [`MASKED`] string in `value`, which is at `path`.
/// Recursion is bounded: serde_json refuses to parse JSON nested over 128 deep.
fn masked_members(value: &Value, path: &mut String, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s == MASKED => found.push(path.clone()),
        Value::Object(members) => {
            for (name, member) in members {
                descend(member, path, format_args!(".{name}"), found);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                descend(item, path, format_args!("[{index}]"), found);
            }
        }
        _ => {}
    }
}

/// [`masked_members`] of `member`, at `path` followed by `step`.
fn descend(member: &Value, path: &mut String, step: fmt::Arguments, found: &mut Vec<String>) {
    let len = path.len();
    // Writing to a String cannot fail.
    let _ = path.write_fmt(step);
    masked_members(member, path, found);
    path.truncate(len);
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::{page, PageQuery, Row};

    /// An event as the plugin ships it, shortened.
    fn event(n: u64, user: &str, company: &str, path: &str, status: u64) -> Value {
        json!({
            "transaction_id": format!("tx-{n}"),
            "user_id": user,
            "company_id": company,
            "request": {
                "time": format!("2024-10-30T04:45:{:02}.000Z", n % 60),
                "uri": format!("http://api.test{path}"),
                "verb": "GET",
                "headers": {"accept": "*/*"}
            },
            "response": {"time": "2024-10-30T04:46:00.000Z", "status": status, "headers": {}},
            "metadata": {"envoy": {"duration_ms": 1.5}}
        })
    }

    /// 1000 events: users u0..u9 in turn, companies c0..c2, every 7th a 500 on /slow.
    fn store() -> Vec<Value> {
        (1..=1000)
            .map(|n| {
                let (path, status) = if n % 7 == 0 {
                    (format!("/slow/{n}"), 500)
                } else {
                    (format!("/items/{n}?page=1"), 200)
                };
                event(
                    n,
                    &format!("u{}", n % 10),
                    &format!("c{}", n % 3),
                    &path,
                    status,
                )
            })
            .collect()
    }

    fn query(fields: Value) -> PageQuery {
        serde_json::from_value(fields).unwrap()
    }

    fn seqs(rows: &[Row]) -> Vec<u64> {
        rows.iter().map(|row| row.seq).collect()
    }

    #[test]
    fn first_page_is_the_newest_events_and_pages_chain_down_to_the_oldest() {
        let events = store();
        let first = page(&events, &PageQuery::default()).unwrap();
        assert_eq!(seqs(&first.rows), (951..=1000).rev().collect::<Vec<_>>());
        assert_eq!((first.total, first.stored), (1000, 1000));
        assert_eq!(first.next_before, Some(951));

        let mut before = first.next_before;
        let mut seen = first.rows.len();
        let mut pages = 1;
        while let Some(b) = before {
            let next = page(&events, &query(json!({"before": b, "limit": 300}))).unwrap();
            assert_eq!(next.rows.first().map(|r| r.seq), Some(b - 1));
            seen += next.rows.len();
            pages += 1;
            before = next.next_before;
        }
        assert_eq!((seen, pages), (1000, 5), "50 + 300 + 300 + 300 + 50");
    }

    #[test]
    fn row_fields_come_from_the_event() {
        let events = store();
        let page = page(&events, &query(json!({"limit": 1}))).unwrap();
        assert_eq!(
            page.rows,
            [Row {
                seq: 1000,
                time: Some("2024-10-30T04:45:40.000Z"),
                method: Some("GET"),
                uri: Some("http://api.test/items/1000?page=1"),
                status: Some(200),
                duration_ms: Some(1.5),
                user: Some("u0"),
                company: Some("c1"),
                request_bytes: 0,
                response_bytes: 0,
                masked: vec![],
            }]
        );
    }

    #[test]
    fn filters_combine_and_count_every_match() {
        let events = store();
        let by_user = page(&events, &query(json!({"user": "u3", "limit": 5}))).unwrap();
        assert_eq!(seqs(&by_user.rows), [993, 983, 973, 963, 953]);
        assert_eq!(by_user.total, 100);
        assert_eq!(by_user.next_before, Some(953));

        // n % 10 == 3, n % 3 == 0 and n % 7 == 0: multiples of 21 ending in 3.
        let all = query(json!({"user": "u3", "company": "c0", "status": "5xx", "path": "/slow/"}));
        let narrow = page(&events, &all).unwrap();
        assert_eq!(seqs(&narrow.rows), [903, 693, 483, 273, 63]);
        assert_eq!(narrow.total, 5);
        assert_eq!(narrow.next_before, None);

        let ok = page(&events, &query(json!({"status": "2xx", "limit": 500}))).unwrap();
        assert_eq!(ok.total, 1000 - 142);
        assert!(ok.rows.iter().all(|row| row.status == Some(200)));

        // The path filter looks at the path and query, not at the host.
        assert_eq!(
            page(&events, &query(json!({"path": "api.test"})))
                .unwrap()
                .total,
            0
        );
        assert_eq!(
            page(&events, &query(json!({"path": "page=1"})))
                .unwrap()
                .total,
            858
        );
        // Exact users: u1 is not u10.
        assert_eq!(
            page(&events, &query(json!({"user": "u"}))).unwrap().total,
            0
        );
        assert_eq!(
            page(&events, &query(json!({"status": "none"})))
                .unwrap()
                .total,
            0
        );
    }

    #[test]
    fn empty_values_do_not_filter_and_bad_ones_are_refused() {
        let events = store();
        let empty = query(json!({"user": "", "company": "", "status": "", "path": ""}));
        assert_eq!(page(&events, &empty).unwrap().total, 1000);
        for status in ["2XX", "6xx", "200", "xx"] {
            let err = page(&events, &query(json!({ "status": status }))).unwrap_err();
            assert!(err.contains(&format!("status `{status}`")), "{err}");
        }
    }

    #[test]
    fn paging_bounds() {
        let events = store();
        let page_of = |q: Value| page(&events, &query(q)).unwrap();
        assert!(page_of(json!({"before": 1})).rows.is_empty());
        assert!(page_of(json!({"before": 0})).rows.is_empty());
        let last = page_of(json!({"before": 3}));
        assert_eq!((seqs(&last.rows), last.next_before), (vec![2, 1], None));
        assert_eq!(page_of(json!({"before": u64::MAX})).rows.len(), 50);
        assert_eq!(page_of(json!({"limit": 0})).rows.len(), 1);
        assert_eq!(page_of(json!({"limit": 100_000})).rows.len(), 500);
        let none = page(&[], &PageQuery::default()).unwrap();
        assert_eq!(
            (none.rows.len(), none.total, none.next_before),
            (0, 0, None)
        );
    }

    #[test]
    fn sizes_and_masks() {
        let event = json!({
            "user_id": "ann",
            "request": {
                "time": "2024-10-30T04:45:42.914Z",
                "uri": "https://api.test/login?api_key=*****&page=2;token=*****#frag?x=*****",
                "verb": "POST",
                "headers": {"authorization": "*****", "x-plain": "visible"},
                "body": {
                    "user": {"name": "ann", "password": "*****"},
                    "cards": [{"number": "*****"}]
                },
                "transfer_encoding": "json"
            },
            "response": {
                "time": "2024-10-30T04:45:42.950Z",
                "status": 201,
                "headers": {"set-cookie": "*****"},
                // "*****" in a base64 body is data, not a mask; 7 digits and a pad: 5 bytes.
                "body": "KioqKio=",
                "transfer_encoding": "base64"
            }
        });
        let page = page(std::slice::from_ref(&event), &PageQuery::default()).unwrap();
        let row = &page.rows[0];
        assert_eq!(
            row.masked,
            [
                "request.uri?api_key",
                "request.uri?token",
                "request.headers.authorization",
                "request.body.cards[0].number",
                "request.body.user.password",
                "response.headers.set-cookie",
            ]
        );
        let json = serde_json::to_vec(&event["request"]["body"]).unwrap().len() as u64;
        assert_eq!((row.request_bytes, row.response_bytes), (json, 5));
        assert_eq!(row.duration_ms, None);
        assert_eq!(row.company, None);

        let omitted = json!({
            "request": {"time": "t", "uri": "http://h/", "verb": "GET"},
            "metadata": {"response_body_omitted": {"size": 150_000, "reason": "too large"}}
        });
        let page = super::page(std::slice::from_ref(&omitted), &PageQuery::default()).unwrap();
        let row = &page.rows[0];
        assert_eq!(
            (row.request_bytes, row.response_bytes, row.status),
            (0, 150_000, None)
        );
    }
}
