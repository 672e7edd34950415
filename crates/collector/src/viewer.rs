//! The event viewer: a page at `/` that shows a person what the collector received (the
//! live list of events with filters, a detail view, the batch stats), and the two endpoints
//! behind it: `GET /_collector/page` (one page of the list, see [`crate::listing`]) and
//! `GET /_collector/event/{seq}` (one event as stored).
//!
//! The page is plain HTML, CSS and JS from `assets/`, embedded in the binary: nothing to
//! build, nothing fetched from anywhere but this collector, which its Content-Security-Policy
//! enforces, so it works offline.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::api::{error, Collector};
use crate::listing::{self, PageQuery};

const HTML: &str = include_str!("../assets/viewer.html");
const CSS: &str = include_str!("../assets/viewer.css");
const JS: &str = include_str!("../assets/viewer.js");

/// Scripts, styles and requests from this collector only: no CDN, no inline code.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'";

/// The page, its assets and its API, for [`crate::api::router`].
pub fn routes() -> Router<Arc<Collector>> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", HTML)))
        .route("/viewer.css", get(|| asset("text/css; charset=utf-8", CSS)))
        .route(
            "/viewer.js",
            get(|| asset("text/javascript; charset=utf-8", JS)),
        )
        .route("/_collector/page", get(page))
        .route("/_collector/event/{seq}", get(event))
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        ],
        body,
    )
        .into_response()
}

/// One page of the list; 400 with a reason for a filter that makes no sense.
async fn page(State(collector): State<Arc<Collector>>, Query(query): Query<PageQuery>) -> Response {
    let store = collector.store();
    match listing::page(store.recorded(), &query) {
        Ok(page) => Json(page).into_response(),
        Err(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

/// Event number `seq` (from 1, as in the list's rows) exactly as stored.
async fn event(State(collector): State<Arc<Collector>>, Path(seq): Path<u64>) -> Response {
    let store = collector.store();
    let index = usize::try_from(seq).ok().and_then(|seq| seq.checked_sub(1));
    match index.and_then(|index| store.recorded().get(index)) {
        Some(event) => Json(event).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no event {seq}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{CSS, HTML, JS};

    /// The page must work offline: no asset names anything outside the collector (and the
    /// Content-Security-Policy would refuse it if one did).
    #[test]
    fn assets_load_nothing_from_elsewhere() {
        for (name, text) in [("html", HTML), ("css", CSS), ("js", JS)] {
            assert!(!text.contains("://"), "viewer.{name} names a URL");
        }
        for needle in ["url(", "@import"] {
            assert!(!CSS.contains(needle), "viewer.css loads with {needle}");
        }
        let links: Vec<&str> = ["src=\"", "href=\""]
            .iter()
            .flat_map(|attribute| HTML.split(attribute).skip(1))
            .collect();
        assert_eq!(links.len(), 2);
        for link in links {
            assert!(link.starts_with('/') && !link.starts_with("//"), "{link}");
        }
    }
}
