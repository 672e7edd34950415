//! When to fetch a document Moesif serves and changes remotely: the app config (`GET
//! /v1/config`, tag header `X-Moesif-Config-ETag`) or the governance rules (`GET /v1/rules`,
//! `X-Moesif-Rules-Tag`). A pure state machine: time is passed in, never read, and the caller
//! makes the calls and keeps the last good document (a failure changes nothing but the
//! schedule).
//!
//! A fetch is due:
//! - at start (nothing fetched yet), and after failures until one succeeds;
//! - when a batch response carried a tag that differs from the one held ([`Remote::saw_tag`]);
//! - at the latest [`REFRESH_MS`] after the last success;
//!
//! but never while a fetch is in flight (unless it has been for [`LOST_AFTER_MS`]: its answer
//! is presumed lost) and never before the backoff after a failure has elapsed: from
//! [`BACKOFF_INITIAL_MS`], doubling per consecutive failure up to [`BACKOFF_MAX_MS`], each delay
//! jittered into its upper half so that proxies started together do not retry in lockstep.
//!
//! Tags: every batch response carries the current tag, so while a fetch is in flight many of
//! them may announce the same new tag; they make one fetch at most. A fetch covers the tags seen
//! before it started: its document is at least that new, even if its own tag is missing or
//! spelled differently from the batch responses' (which would otherwise refetch on every batch).
//! A differing tag seen while it was in flight makes one more fetch due. Once a differing tag is
//! seen, it stays due until a fetch succeeds (a later batch with the held tag, say from a
//! lagging server, does not cancel it). Empty tags are ignored.

use crate::retry::Backoff;

/// Longest time between two successful fetches: 5 minutes (MOESIF_API.md).
pub const REFRESH_MS: u64 = 5 * 60 * 1000;
/// Backoff after the first failure: 1 s (jittered to 0.5..=1 s).
pub const BACKOFF_INITIAL_MS: u64 = 1000;
/// Longest backoff: 5 minutes, the refresh period (jittered to 2.5..=5 min).
pub const BACKOFF_MAX_MS: u64 = REFRESH_MS;
/// A fetch in flight this long (2 min) is presumed lost and another one becomes due. The host
/// call's own timeout (the plugin's `connection_timeout`, at most 10 min in theory, seconds in
/// practice) normally answers first; this only keeps a callback that never comes from stopping
/// every later refresh.
pub const LOST_AFTER_MS: u64 = 2 * 60 * 1000;

/// The fetch schedule of one remote document.
#[derive(Debug)]
pub struct Remote {
    /// When the last fetch succeeded; `None` until one has.
    last_success_ms: Option<u64>,
    /// When the fetch in flight started.
    in_flight_since: Option<u64>,
    /// After a failure: when it happened and how long to wait.
    backoff_from: Option<(u64, u64)>,
    backoff: Backoff,
    /// The tag of the document held (from its fetch's answer).
    held: Option<String>,
    /// A tag that the held document covers though it is not `held`: one seen before its fetch
    /// started.
    covered: Option<String>,
    /// A tag seen on a batch response that neither `held` nor `covered` is: a fetch is due.
    newer: Option<String>,
    /// `newer` when the fetch in flight started: it will be covered.
    covering: Option<String>,
}

impl Remote {
    /// A schedule whose first fetch is due at once. `now_ms` seeds the backoff jitter (proxies
    /// start at different milliseconds).
    pub fn new(now_ms: u64) -> Remote {
        Remote::with_seed(splitmix64(now_ms))
    }

    /// A schedule with the backoff jitter drawn from `seed`.
    pub fn with_seed(seed: u64) -> Remote {
        Remote {
            last_success_ms: None,
            in_flight_since: None,
            backoff_from: None,
            backoff: Backoff::new(BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, seed),
            held: None,
            covered: None,
            newer: None,
            covering: None,
        }
    }

    /// Whether to start a fetch now (see the module documentation).
    pub fn due(&self, now_ms: u64) -> bool {
        if self
            .in_flight_since
            .is_some_and(|since| now_ms.saturating_sub(since) < LOST_AFTER_MS)
        {
            return false;
        }
        if self
            .backoff_from
            .is_some_and(|(at, delay)| !waited(at, now_ms, delay))
        {
            return false;
        }
        match self.last_success_ms {
            None => true,
            Some(at) => self.newer.is_some() || waited(at, now_ms, REFRESH_MS),
        }
    }

    /// A fetch started.
    pub fn started(&mut self, now_ms: u64) {
        self.in_flight_since = Some(now_ms);
        self.covering = self.newer.clone();
    }

    /// The fetch succeeded; `tag` is its answer's tag header, if any. The caller now holds its
    /// document.
    pub fn succeeded(&mut self, tag: Option<&str>, now_ms: u64) {
        let held = tag
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from);
        let covering = self.covering.take();
        // The same document as before still covers what the previous one did.
        self.covered = covering.or_else(|| {
            if held == self.held {
                self.covered.take()
            } else {
                None
            }
        });
        self.held = held;
        if self
            .newer
            .as_ref()
            .is_some_and(|n| self.held.as_ref() == Some(n) || self.covered.as_ref() == Some(n))
        {
            self.newer = None;
        }
        self.in_flight_since = None;
        self.backoff_from = None;
        self.backoff.on_success();
        self.last_success_ms = Some(now_ms);
    }

    /// The fetch failed (no answer, an error status, a document that does not parse): the next
    /// one waits for the backoff.
    pub fn failed(&mut self, now_ms: u64) {
        self.in_flight_since = None;
        self.covering = None;
        let delay = self.backoff.on_failure(None);
        self.backoff_from = Some((now_ms, delay));
    }

    /// A batch response carried `tag` (`X-Moesif-Config-ETag` or `X-Moesif-Rules-Tag`).
    pub fn saw_tag(&mut self, tag: &str) {
        let tag = tag.trim();
        let is = |t: &Option<String>| t.as_deref() == Some(tag);
        if tag.is_empty() || is(&self.held) || is(&self.covered) || is(&self.newer) {
            return;
        }
        self.newer = Some(tag.to_string());
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight_since.is_some()
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// The tag of the document held, if its answer had one.
    pub fn held_tag(&self) -> Option<&str> {
        self.held.as_deref()
    }

    /// When the last fetch succeeded.
    pub fn last_success_ms(&self) -> Option<u64> {
        self.last_success_ms
    }

    /// After a failure, the earliest time of the next attempt.
    pub fn retry_at_ms(&self) -> Option<u64> {
        self.backoff_from
            .map(|(at, delay)| at.saturating_add(delay))
    }
}

/// Whether `ms` have passed since `since`; a clock that went back counts as having waited
/// (rather than waiting for it to catch up).
fn waited(since: u64, now: u64, ms: u64) -> bool {
    now.checked_sub(since).is_none_or(|d| d >= ms)
}

/// Spreads nearby seeds (start times a few ms apart) over the whole range.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    /// A schedule that fetched successfully at T0 with tag `a`.
    fn fetched() -> Remote {
        let mut r = Remote::with_seed(7);
        r.started(T0);
        r.succeeded(Some("a"), T0);
        r
    }

    #[test]
    fn due_at_start_not_while_in_flight_not_after_success() {
        let mut r = Remote::new(T0);
        assert!(r.due(T0));
        r.started(T0);
        assert!(r.in_flight());
        assert!(!r.due(T0));
        assert!(!r.due(T0 + LOST_AFTER_MS - 1));
        r.succeeded(Some(" a "), T0 + 50);
        assert!(!r.in_flight());
        assert_eq!(r.held_tag(), Some("a"));
        assert_eq!(r.last_success_ms(), Some(T0 + 50));
        assert!(!r.due(T0 + 50));
        assert!(!r.due(T0 + 60_000));
    }

    #[test]
    fn refreshes_every_five_minutes() {
        let mut r = fetched();
        assert!(!r.due(T0 + REFRESH_MS - 1));
        assert!(r.due(T0 + REFRESH_MS));
        r.started(T0 + REFRESH_MS);
        assert!(!r.due(T0 + REFRESH_MS + 1));
        r.succeeded(Some("a"), T0 + REFRESH_MS + 100);
        assert!(!r.due(T0 + 2 * REFRESH_MS));
        assert!(r.due(T0 + 2 * REFRESH_MS + 100));
    }

    #[test]
    fn a_differing_tag_makes_it_due_the_same_tag_does_not() {
        let mut r = fetched();
        r.saw_tag("a");
        r.saw_tag("  ");
        r.saw_tag("");
        assert!(!r.due(T0 + 1));
        r.saw_tag("b");
        assert!(r.due(T0 + 1));
        r.saw_tag("a");
        assert!(r.due(T0 + 1), "a differing tag sticks until a fetch");
        r.started(T0 + 1);
        r.succeeded(Some("b"), T0 + 2);
        assert!(!r.due(T0 + 3));
        r.saw_tag("b");
        assert!(!r.due(T0 + 3));
    }

    #[test]
    fn no_refetch_storm_while_in_flight() {
        let mut r = fetched();
        r.saw_tag("b");
        assert!(r.due(T0 + 10));
        r.started(T0 + 10);
        let mut fetches = 1;
        // Every batch response carries the same new tag while the fetch is in flight.
        for t in 0..1000 {
            r.saw_tag("b");
            if r.due(T0 + 11 + t) {
                fetches += 1;
            }
        }
        r.succeeded(Some("b"), T0 + 2000);
        for t in 0..1000 {
            r.saw_tag("b");
            if r.due(T0 + 2001 + t) {
                fetches += 1;
                r.started(T0 + 2001 + t);
                r.succeeded(Some("b"), T0 + 2001 + t);
            }
        }
        assert_eq!(fetches, 1);
    }

    #[test]
    fn a_tag_seen_in_flight_newer_than_the_answer_makes_one_more_fetch() {
        let mut r = fetched();
        r.saw_tag("b");
        r.started(T0 + 10);
        r.saw_tag("c"); // changed again after the fetch was served
        r.succeeded(Some("b"), T0 + 20);
        assert!(r.due(T0 + 21));
        r.started(T0 + 21);
        r.saw_tag("c");
        r.succeeded(Some("c"), T0 + 30);
        assert!(!r.due(T0 + 31));
    }

    #[test]
    fn an_answer_without_its_tag_covers_the_tags_seen_before() {
        let mut r = Remote::with_seed(1);
        r.saw_tag("b");
        r.started(T0);
        r.succeeded(None, T0 + 10);
        assert_eq!(r.held_tag(), None);
        r.saw_tag("b");
        assert!(!r.due(T0 + 11), "b is covered");
        // A tag first seen after the start-up fetch: one fetch, then covered.
        let mut r = Remote::with_seed(1);
        r.started(T0);
        r.succeeded(None, T0 + 10);
        r.saw_tag("b");
        assert!(r.due(T0 + 11));
        r.started(T0 + 11);
        r.succeeded(None, T0 + 20);
        for t in 0..100 {
            r.saw_tag("b");
            assert!(!r.due(T0 + 21 + t));
        }
    }

    #[test]
    fn answers_spelling_tags_differently_do_not_loop() {
        // The config's answer says `"a"`, the batch responses `a`: one refetch, then covered,
        // also across the 5-minute refreshes that return the same document.
        let mut r = Remote::with_seed(1);
        r.started(T0);
        r.succeeded(Some("\"a\""), T0);
        r.saw_tag("a");
        assert!(r.due(T0 + 1));
        r.started(T0 + 1);
        r.succeeded(Some("\"a\""), T0 + 2);
        r.saw_tag("a");
        assert!(!r.due(T0 + 3));
        r.started(T0 + REFRESH_MS + 2);
        r.succeeded(Some("\"a\""), T0 + REFRESH_MS + 2);
        r.saw_tag("a");
        assert!(!r.due(T0 + REFRESH_MS + 3));
        // A new document's tag does not inherit the old cover.
        r.saw_tag("b");
        assert!(r.due(T0 + REFRESH_MS + 4));
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let mut r = Remote::with_seed(3);
        let mut now = T0;
        let mut ceiling = BACKOFF_INITIAL_MS;
        for i in 0..12 {
            assert!(r.due(now), "attempt {i}");
            r.started(now);
            r.failed(now);
            assert_eq!(r.failures(), i + 1);
            let delay = r.retry_at_ms().unwrap() - now;
            assert!(
                ceiling / 2 <= delay && delay <= ceiling,
                "failure {i}: {delay} not in [{}, {ceiling}]",
                ceiling / 2
            );
            assert!(!r.due(now + delay - 1));
            now += delay;
            ceiling = (ceiling * 2).min(BACKOFF_MAX_MS);
        }
        assert_eq!(ceiling, BACKOFF_MAX_MS, "the cap was reached");
        r.started(now);
        r.succeeded(Some("a"), now);
        assert_eq!((r.failures(), r.retry_at_ms()), (0, None));
        r.saw_tag("b");
        r.started(now + 1);
        r.failed(now + 1);
        let delay = r.retry_at_ms().unwrap() - (now + 1);
        assert!(
            delay <= BACKOFF_INITIAL_MS,
            "reset after a success: {delay}"
        );
    }

    #[test]
    fn a_differing_tag_respects_the_backoff() {
        let mut r = fetched();
        r.saw_tag("b");
        r.started(T0 + 1);
        r.failed(T0 + 1);
        let retry = r.retry_at_ms().unwrap();
        r.saw_tag("c");
        assert!(!r.due(retry - 1));
        assert!(r.due(retry));
    }

    #[test]
    fn a_failed_refresh_retries_with_backoff() {
        let mut r = fetched();
        let now = T0 + REFRESH_MS;
        assert!(r.due(now));
        r.started(now);
        r.failed(now);
        assert!(!r.due(now + 1));
        assert!(r.due(r.retry_at_ms().unwrap()));
        assert_eq!(r.last_success_ms(), Some(T0), "the old document stays");
    }

    #[test]
    fn jitter_differs_between_proxies() {
        let delays: std::collections::HashSet<u64> = (0..20)
            .map(|ms| {
                let mut r = Remote::new(T0 + ms);
                r.started(T0);
                r.failed(T0);
                r.retry_at_ms().unwrap()
            })
            .collect();
        assert!(delays.len() > 10, "{delays:?}");
    }

    #[test]
    fn a_lost_fetch_is_given_up_after_a_while() {
        let mut r = fetched();
        r.saw_tag("b");
        r.started(T0 + 1);
        assert!(!r.due(T0 + LOST_AFTER_MS));
        assert!(r.due(T0 + 1 + LOST_AFTER_MS));
        // A late answer is still taken.
        r.started(T0 + 1 + LOST_AFTER_MS);
        r.succeeded(Some("b"), T0 + 2 + LOST_AFTER_MS);
        assert!(!r.due(T0 + 3 + LOST_AFTER_MS));
    }

    #[test]
    fn a_clock_going_back_does_not_stall() {
        let mut r = fetched();
        assert!(r.due(T0 - 1), "refresh due rather than in 5 min + the jump");
        r.started(T0);
        r.failed(T0);
        assert!(r.due(T0 - 10_000));
    }
}
