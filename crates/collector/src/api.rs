//! The collector's HTTP API: the Moesif endpoints the plugin calls (`/v1/...`) and the
//! `/_collector/...` endpoints tests use to inspect what arrived and to inject faults.

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
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::app_config::AppConfig;
use crate::decode::{decode, DecodeError};
use crate::faults::{garbage_body, BrokenBody, FaultSpec, Faults, Injected, RESET_ANNOUNCED_LEN};
use crate::serve::Refusal;
use crate::skim::skim_events;
use crate::store::{EventFilter, Rejection, Store};
use crate::validate::parse_events;

/// Moesif's limit on one batch; also bounds what a decompressed body may grow to.
const MAX_BATCH_BYTES: usize = 50 * 1024 * 1024;
const APP_ID_HEADER: &str = "x-moesif-application-id";
const ETAG_HEADER: &str = "x-moesif-config-etag";
/// Carries a fault spec's `header_bytes`.
const HOSTILE_HEADER: &str = "x-hostile";

/// Everything the handlers share.
#[derive(Debug)]
pub struct Collector {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    config: Mutex<AppConfig>,
    refusals: mpsc::UnboundedSender<Refusal>,
}

impl Collector {
    /// `refusals` reaches the accept loop, which alone can close the listening socket.
    pub fn new(
        store: Store,
        config: AppConfig,
        refusals: mpsc::UnboundedSender<Refusal>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store: Mutex::new(store),
            faults: Mutex::new(Faults::default()),
            config: Mutex::new(config),
            refusals,
        })
    }

    /// Puts `spec` in force. A `refuse_ms` refusal is handed to the accept loop; the returned
    /// receiver resolves once the listening socket is actually closed.
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
        let latency = lock(&self.faults).latency();
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        let injected = lock(&self.faults).take();
        let Some(injected) = injected else {
            return self.handle(&headers, &wire, batch);
        };
        let response = if injected.replaces_handling() {
            lock(&self.store).reject(Rejection::Fault);
            injected_answer(&injected)
        } else {
            // A real success that merely answers strangely: handled and stored as usual.
            let mut response = self.handle(&headers, &wire, batch);
            let success_status = injected.status.and_then(|s| StatusCode::from_u16(s).ok());
            if let Some(status) = success_status.filter(|_| response.status().is_success()) {
                *response.status_mut() = status;
            }
            response
        };
        tamper(response, &injected)
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
        let etag = lock(&self.config).etag().to_owned();
        (StatusCode::CREATED, [(ETAG_HEADER, etag)]).into_response()
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
        .route("/v1/config", get(get_config))
        .route("/_collector/events", get(list_events).delete(clear_events))
        .route("/_collector/stats", get(stats))
        .route(
            "/_collector/faults",
            get(get_faults).post(set_faults).delete(clear_faults),
        )
        .route("/_collector/config", post(set_config))
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

async fn get_config(State(collector): State<Arc<Collector>>, headers: HeaderMap) -> Response {
    if !has_app_id(&headers) {
        return unauthorized();
    }
    lock(&collector.store).count_config_request();
    let config = lock(&collector.config).clone();
    (
        [
            (header::CONTENT_TYPE.as_str(), "application/json"),
            (ETAG_HEADER, config.etag()),
        ],
        config.body().to_owned(),
    )
        .into_response()
}

/// Replaces the app config, so tests can change the ETag and watch the plugin refetch.
async fn set_config(State(collector): State<Arc<Collector>>, body: Bytes) -> Response {
    let config = match std::str::from_utf8(&body)
        .map_err(|e| e.to_string())
        .and_then(AppConfig::parse)
    {
        Ok(config) => config,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let etag = config.etag().to_owned();
    *lock(&collector.config) = config;
    Json(json!({ "etag": etag })).into_response()
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

async fn get_faults(State(collector): State<Arc<Collector>>) -> Json<FaultSpec> {
    Json(lock(&collector.faults).current())
}

async fn set_faults(State(collector): State<Arc<Collector>>, body: Bytes) -> Response {
    match FaultSpec::parse(&body) {
        Ok(spec) => {
            if let Some(closed) = collector.apply_faults(&spec) {
                // An error only means the accept loop is gone: nothing left to wait for.
                let _ = closed.await;
            }
            Json(lock(&collector.faults).current()).into_response()
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

async fn clear_faults(State(collector): State<Arc<Collector>>) -> Json<FaultSpec> {
    let mut faults = lock(&collector.faults);
    *faults = Faults::default();
    Json(faults.current())
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

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// A panic in one handler must not wedge the whole collector, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
