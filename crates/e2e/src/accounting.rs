//! The README's accounting invariant, read from Envoy's stats: every captured call is sent,
//! dropped or skipped (each counted by reason), buffered, in flight, or sitting in the queue:
//!
//! `captured = sent + dropped_* + skipped_* + buffered + in_flight + (enqueued - dequeued)`
//!
//! Every end-to-end delivery test ends with [`settle`] (or [`settle_until`]), which waits for
//! delivery to finish and then requires the invariant to hold exactly.

use crate::envoy::Envoy;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub type Stats = BTreeMap<String, u64>;

fn get(s: &Stats, name: &str) -> u64 {
    s.get(name).copied().unwrap_or(0)
}

/// Events whose life ended without delivery, all reasons: every `moesif_events_dropped_*`
/// and `moesif_events_skipped_*` counter (so a new reason cannot be forgotten here).
pub fn ended(s: &Stats) -> u64 {
    s.iter()
        .filter(|(k, _)| {
            k.starts_with("moesif_events_dropped_") || k.starts_with("moesif_events_skipped_")
        })
        .map(|(_, v)| v)
        .sum()
}

/// Only the `moesif_events_dropped_*` counters: events lost.
pub fn dropped(s: &Stats) -> u64 {
    s.iter()
        .filter(|(k, _)| k.starts_with("moesif_events_dropped_"))
        .map(|(_, v)| v)
        .sum()
}

/// Records in the shared queue: enqueued and not yet dequeued.
pub fn queued(s: &Stats) -> u64 {
    get(s, "moesif_events_enqueued").saturating_sub(get(s, "moesif_events_dequeued"))
}

/// Whether the invariant holds exactly.
pub fn holds(s: &Stats) -> bool {
    get(s, "moesif_events_sent")
        + ended(s)
        + get(s, "moesif_events_buffered")
        + get(s, "moesif_events_in_flight")
        + queued(s)
        == get(s, "moesif_events_captured")
        && get(s, "moesif_events_enqueued") >= get(s, "moesif_events_dequeued")
}

/// Nothing queued, buffered or in flight.
pub fn idle(s: &Stats) -> bool {
    get(s, "moesif_events_buffered") == 0
        && get(s, "moesif_events_in_flight") == 0
        && queued(s) == 0
}

/// A `done` condition for [`settle_until`]: nothing was sent for `quiet`. For tests where
/// something is stranded for good (a dead VM's last gauges), so "idle" never comes.
pub fn sent_quiet_for(quiet: Duration) -> impl Fn(&Stats) -> bool {
    let last = std::cell::Cell::new((0, Instant::now()));
    move |s| {
        let sent = get(s, "moesif_events_sent");
        if sent != last.get().0 {
            last.set((sent, Instant::now()));
        }
        last.get().1.elapsed() > quiet
    }
}

/// What `captured` must equal once delivery has settled.
pub enum Expect {
    /// Envoy's own count of requests on the ingress listener (every request it parsed).
    Completed,
    /// An exact number, for tests whose calls Envoy does not all count (rejected before
    /// parsing completes).
    Captured(u64),
    /// Whatever was captured (sampling decides how many): only the invariant is required.
    Any,
}

/// Waits until nothing is queued, buffered or in flight, the invariant holds exactly, and
/// every request Envoy counted was captured; returns the plugin's stats.
pub fn settle(envoy: &Envoy, timeout: Duration) -> Stats {
    settle_until(envoy, timeout, Expect::Completed, idle)
}

/// Like [`settle`], with another idea of what is expected and of when delivery is over.
pub fn settle_until(
    envoy: &Envoy,
    timeout: Duration,
    expect: Expect,
    done: impl Fn(&Stats) -> bool,
) -> Stats {
    let deadline = Instant::now() + timeout;
    loop {
        // Read each time: a request a load generator sent just before it stopped may be parsed
        // (and counted) by a busy worker only after the generator has exited.
        let expected = match expect {
            Expect::Completed => envoy.completed(),
            Expect::Captured(n) => n,
            Expect::Any => u64::MAX,
        };
        let s = envoy.plugin_stats();
        let captured = get(&s, "moesif_events_captured");
        if done(&s) && holds(&s) && (expected == u64::MAX || captured == expected) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "delivery did not settle with the invariant exact in {timeout:?}: expected {expected} captured, {s:?}\n{}",
            envoy.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
