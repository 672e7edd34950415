//! The collector's HTTP API: the Moesif endpoints the plugin calls (`/v1/...`) and the
//! `/_collector/...` endpoints tests use to inspect what arrived, to change the app config
//! and rules the plugin fetches, and to inject faults.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::LengthLimitError;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::decode::{decode, DecodeError};
use crate::documents::{Document, Tagged};
use crate::faults::{
    garbage_body, BrokenBody, FaultSpec, FaultsByTarget, Injected, Target, RESET_ANNOUNCED_LEN,
};
use crate::serve::Refusal;
use crate::skim::skim_events;
use crate::store::{EventFilter, Rejection, Store};
use crate::validate::parse_events;
use crate::viewer;

/// Moesif's limit on one batch; also bounds what a decompressed body may grow to.
const MAX_BATCH_BYTES: usize = 50 * 1024 * 1024;
const APP_ID_HEADER: &str = "x-moesif-application-id";
/// Carries a fault spec's `header_bytes`.
const HOSTILE_HEADER: &str = "x-hostile";

/// Everything the handlers share.
#[derive(Debug)]
pub struct Collector {
    store: Mutex<Store>,
    faults: Mutex<FaultsByTarget>,
    config: Mutex<Tagged>,
    rules: Mutex<Tagged>,
    refusals: mpsc::UnboundedSender<Refusal>,
}

impl Collector {
    /// `refusals` reaches the accept loop, which alone can close the listening socket.
    /// `config` and `rules` are the documents served at first (see [`Tagged::parse`]).
    pub fn new(
        store: Store,
        config: Tagged,
        rules: Tagged,
        refusals: mpsc::UnboundedSender<Refusal>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store: Mutex::new(store),
            faults: Mutex::new(FaultsByTarget::default()),
            config: Mutex::new(config),
            rules: Mutex::new(rules),
            refusals,
        })
    }

    /// The store, for the viewer's queries.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    fn document(&self, document: Document) -> &Mutex<Tagged> {
        match document {
            Document::AppConfig => &self.config,
            Document::Rules => &self.rules,
        }
    }

    /// The tag of the document served now.
    fn tag(&self, document: Document) -> String {
        lock(self.document(document)).tag().to_owned()
    }

    /// Puts `spec` in force for its target. A `refuse_ms` refusal is handed to the accept
    /// loop; the returned receiver resolves once the listening socket is actually closed.
    pub fn apply_faults(&self, spec: &FaultSpec) -> Option<oneshot::Receiver<()>> {
        lock(&self.faults).set(spec);
        let ms = spec.refuse_ms?;
        let (closed, was_closed) = oneshot::channel();
        let refusal = Refusal {
            duration: Duration::from_millis(ms),
            closed,
        };
        // Sending only fails once the accept loop is gone, and then there is nothing to refuse.
        self.refusals.send(refusal).ok()?;
        Some(was_closed)
    }

    /// Handles an event POST after its body arrived; runs in its own task (see
    /// [`receive_events`]) so that it completes even when the client gives up.
    async fn process(&self, headers: HeaderMap, wire: Bytes, batch: bool) -> Response {
        let latency = lock(&self.faults).of(Target::Events).latency();
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        let injected = lock(&self.faults).of(Target::Events).take();
        let Some(injected) = injected else {
            return self.handle(&headers, &wire, batch);
        };
        let mut store = lock(&self.store);
        store.count_fault(Target::Events);
        if injected.replaces_handling() {
            store.reject(Rejection::Fault);
        }
        drop(store);
        faulted(&injected, || self.handle(&headers, &wire, batch))
    }

    /// What the collector makes of an event POST without faults: validate, store, answer.
    fn handle(&self, headers: &HeaderMap, wire: &[u8], batch: bool) -> Response {
        if !has_app_id(headers) {
            lock(&self.store).reject(Rejection::Status(401));
            return unauthorized();
        }
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let raw = match decode(encoding, wire, MAX_BATCH_BYTES) {
            Ok(raw) => raw,
            Err(e @ DecodeError::TooLarge) => {
                return self.reject(StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            Err(e) => return self.reject(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let count_only = lock(&self.store).is_count_only();
        if count_only {
            let ids = match skim_events(&raw, batch) {
                Ok(ids) => ids,
                Err(reason) => return self.reject(StatusCode::BAD_REQUEST, reason),
            };
            let ids = ids.iter().map(Option::as_deref);
            lock(&self.store).count(ids, header_map(headers), wire.len(), raw.len());
        } else {
            let events = match parse_events(&raw, batch) {
                Ok(events) => events,
                Err(reason) => return self.reject(StatusCode::BAD_REQUEST, reason),
            };
            let count = events.len();
            let stored =
                lock(&self.store).accept(events, header_map(headers), wire.len(), raw.len());
            if let Err(e) = stored {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("events file: {e}"),
                );
            }
            eprintln!("batch: {count} events");
        }
        // Both tags, so the plugin learns of a change without polling.
        let tags = [Document::AppConfig, Document::Rules].map(|d| (d.tag_header(), self.tag(d)));
        (StatusCode::CREATED, tags).into_response()
    }

    /// Answers an event POST with a 4xx of its own making, counting it as rejected.
    fn reject(&self, status: StatusCode, reason: impl Into<String>) -> Response {
        lock(&self.store).reject(Rejection::Status(status.as_u16()));
        error(status, reason)
    }
}

/// The routes, ready to serve with [`crate::serve::serve`].
pub fn router(collector: Arc<Collector>) -> Router {
    Router::new()
        .route("/v1/events/batch", post(receive_batch))
        .route("/v1/events", post(receive_event))
        .route(
            "/v1/config",
            get(|state, headers| fetch(state, headers, Document::AppConfig)),
        )
        .route(
            "/v1/rules",
            get(|state, headers| fetch(state, headers, Document::Rules)),
        )
        .route("/_collector/events", get(list_events).delete(clear_events))
        .route("/_collector/stats", get(stats))
        .route(
            "/_collector/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route(
            "/_collector/config",
            get(|state| show_document(state, Document::AppConfig))
                .post(|state, body| set_document(state, body, Document::AppConfig)),
        )
        .route(
            "/_collector/rules",
            get(|state| show_document(state, Document::Rules))
                .post(|state, body| set_document(state, body, Document::Rules)),
        )
        .merge(viewer::routes())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .with_state(collector)
}

async fn receive_batch(state: State<Arc<Collector>>, headers: HeaderMap, body: Body) -> Response {
    receive_events(state, headers, body, true).await
}

async fn receive_event(state: State<Arc<Collector>>, headers: HeaderMap, body: Body) -> Response {
    receive_events(state, headers, body, false).await
}

/// Reads the body here, then hands over to a task: with `latency_ms` a client may time out
/// and hang up, and the event must still be stored so its retry shows up as a duplicate.
async fn receive_events(
    State(collector): State<Arc<Collector>>,
    headers: HeaderMap,
    body: Body,
    batch: bool,
) -> Response {
    let wire = match axum::body::to_bytes(body, MAX_BATCH_BYTES).await {
        Ok(wire) => wire,
        Err(e) if std::error::Error::source(&e).is_some_and(|s| s.is::<LengthLimitError>()) => {
            return collector.reject(StatusCode::PAYLOAD_TOO_LARGE, "batch is over 50 MB");
        }
        Err(_) => return error(StatusCode::BAD_REQUEST, "could not read the body"),
    };
    let task = tokio::spawn(async move { collector.process(headers, wire, batch).await });
    task.await.unwrap_or_else(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("handler failed: {e}"),
        )
    })
}

/// `GET /v1/config` or `GET /v1/rules`: the document with its tag, unless a fault of that
/// target answers otherwise. Counted on arrival, so a faulted fetch, or one the client gave
/// up on, counts too; one without an app id does not.
async fn fetch(
    State(collector): State<Arc<Collector>>,
    headers: HeaderMap,
    document: Document,
) -> Response {
    if !has_app_id(&headers) {
        return unauthorized();
    }
    lock(&collector.store).count_fetch(document);
    let target = match document {
        Document::AppConfig => Target::Config,
        Document::Rules => Target::Rules,
    };
    let latency = lock(&collector.faults).of(target).latency();
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let injected = lock(&collector.faults).of(target).take();
    if injected.is_some() {
        lock(&collector.store).count_fault(target);
    }
    let serve = || served(document, &lock(collector.document(document)));
    match injected {
        Some(injected) => faulted(&injected, serve),
        None => serve(),
    }
}

/// `GET /_collector/config` or `GET /_collector/rules`: what the plugin would fetch, without
/// counting a fetch or meeting a fault.
async fn show_document(State(collector): State<Arc<Collector>>, document: Document) -> Response {
    served(document, &lock(collector.document(document)))
}

/// Replaces the app config or the rules, so tests can change a tag and watch the plugin
/// refetch; answers like [`show_document`] with the new one.
async fn set_document(
    State(collector): State<Arc<Collector>>,
    body: Bytes,
    document: Document,
) -> Response {
    let tagged = std::str::from_utf8(&body)
        .map_err(|e| format!("{} is not UTF-8: {e}", document.name()))
        .and_then(|json| Tagged::parse(document, json));
    match tagged {
        Ok(tagged) => {
            let response = served(document, &tagged);
            *lock(collector.document(document)) = tagged;
            response
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

/// A document as the plugin gets it: the JSON, with its tag in the document's header.
fn served(document: Document, tagged: &Tagged) -> Response {
    (
        [
            (header::CONTENT_TYPE.as_str(), "application/json"),
            (document.tag_header(), tagged.tag()),
        ],
        tagged.body().to_owned(),
    )
        .into_response()
}

/// Always `[]` in count-only mode, which keeps no events.
async fn list_events(
    State(collector): State<Arc<Collector>>,
    Query(filter): Query<EventFilter>,
) -> Json<Value> {
    let store = lock(&collector.store);
    Json(Value::Array(
        store.events(&filter).into_iter().cloned().collect(),
    ))
}

async fn clear_events(State(collector): State<Arc<Collector>>) -> Response {
    match lock(&collector.store).clear() {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("events file: {e}"),
        ),
    }
}

async fn stats(State(collector): State<Arc<Collector>>) -> Json<Value> {
    Json(lock(&collector.store).stats())
}

/// `?target=` of the faults endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetQuery {
    target: Option<Target>,
}

/// The faults in force for `?target=` (default: event POSTs).
async fn get_faults(
    State(collector): State<Arc<Collector>>,
    Query(query): Query<TargetQuery>,
) -> Json<FaultSpec> {
    Json(lock(&collector.faults).current(query.target.unwrap_or_default()))
}

async fn set_faults(State(collector): State<Arc<Collector>>, body: Bytes) -> Response {
    match FaultSpec::parse(&body) {
        Ok(spec) => {
            if let Some(closed) = collector.apply_faults(&spec) {
                // An error only means the accept loop is gone: nothing left to wait for.
                let _ = closed.await;
            }
            Json(lock(&collector.faults).current(spec.target())).into_response()
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

/// Clears the faults of `?target=`, or of every target without it; answers the (now empty)
/// spec of that target, or of event POSTs.
async fn clear_faults(
    State(collector): State<Arc<Collector>>,
    Query(query): Query<TargetQuery>,
) -> Json<FaultSpec> {
    let mut faults = lock(&collector.faults);
    faults.clear(query.target);
    Json(faults.current(query.target.unwrap_or_default()))
}

/// The answer to a request under an injected fault: the fault's own answer if it replaces
/// handling, else `handle`'s (a real success that merely answers strangely, its status
/// replaced if it succeeded), tampered with either way.
fn faulted(injected: &Injected, handle: impl FnOnce() -> Response) -> Response {
    let response = if injected.replaces_handling() {
        injected_answer(injected)
    } else {
        let mut response = handle();
        let success_status = injected.status.and_then(|s| StatusCode::from_u16(s).ok());
        if let Some(status) = success_status.filter(|_| response.status().is_success()) {
            *response.status_mut() = status;
            if matches!(status.as_u16(), 204 | 205 | 304) {
                // These answers have no body, even when the real one (a document) had.
                response.headers_mut().remove(header::CONTENT_LENGTH);
                *response.body_mut() = Body::empty();
            }
        }
        response
    };
    tamper(response, injected)
}

/// The answer of a fault that answers in place of the collector: a connection broken
/// mid-body for `reset`, else the injected error status.
fn injected_answer(injected: &Injected) -> Response {
    if injected.reset {
        let mut response = Response::new(Body::new(BrokenBody::start()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(RESET_ANNOUNCED_LEN),
        );
        return response;
    }
    let status = injected
        .status
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    error(status, "injected fault")
}

/// Adds the injected headers to `response` and swaps its body for garbage if asked.
fn tamper(mut response: Response, injected: &Injected) -> Response {
    let headers = response.headers_mut();
    if let Some(value) = &injected.retry_after {
        headers.insert(header::RETRY_AFTER, value.clone());
    }
    if let Some(value) = &injected.hostile_header {
        headers.insert(HOSTILE_HEADER, value.clone());
    }
    if injected.garbage_body {
        // The body's own length goes out instead.
        headers.remove(header::CONTENT_LENGTH);
        *response.body_mut() = Body::from(garbage_body());
    }
    response
}

/// The app id is Moesif's only authentication; without it nothing is accepted.
fn has_app_id(headers: &HeaderMap) -> bool {
    headers
        .get(APP_ID_HEADER)
        .is_some_and(|id| !id.as_bytes().trim_ascii().is_empty())
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "missing X-Moesif-Application-Id header",
    )
}

/// Headers as a plain map for the stats: lower-case names, repeated values joined by ", ".
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A panic in one handler must not wedge the whole collector, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
