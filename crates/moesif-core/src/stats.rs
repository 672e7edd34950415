//! The counters and gauges the plugin reports; the glue exposes each as an Envoy metric of the
//! same name. At any moment (counters summed over all VMs):
//! `captured = sent + dropped_* + skipped_invalid + buffered + in_flight + (enqueued - dequeued)`,
//! where `enqueued - dequeued` is what sits in the shared queue (or is stranded there if the
//! shipper died).

/// Every counter, in one place so the README table and the code cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Filter: API calls seen in on_log.
    EventsCaptured,
    /// Filter: records put on the shared queue for the singleton shipper (in blocks).
    EventsEnqueued,
    /// Filter: records meant for the queue that it refused, or that were still waiting when the
    /// shipper was found dead; the worker shipped them itself instead.
    EventsEnqueueFailed,
    /// Filter: records the shared queue had no room for (`max_queue_bytes`: the singleton
    /// shipper is behind); the worker shipped them itself instead of dropping them.
    EventsQueueFull,
    /// Shipper: records taken off the shared queue.
    EventsDequeued,
    /// Events acknowledged (2xx) by the collector.
    EventsSent,
    /// Events sent again after a transient failure.
    EventsRetried,
    /// Events dropped, oldest first, because the buffer bound was reached.
    EventsDroppedBufferFull,
    /// Events the collector refused for good (400, 401, 402, 404, 413, ...).
    EventsDroppedNonRetryable,
    /// Events lost because a record could not be encoded or decoded.
    EventsDroppedEncodeError,
    /// Events lost to an internal error: a callback found the filter's state in use.
    EventsDroppedInternal,
    /// Calls not shipped because they have no method or host: Envoy rejected them before
    /// routing (malformed request line, headers too large, bad content-length), and Moesif
    /// refuses an event without a verb and a full URI.
    EventsSkippedInvalid,
    /// Filter: records shipped by the worker itself because the running singleton does not
    /// read this build's queue block format (a rollout of mixed builds).
    EventsFormatUnsupported,
    /// Filter: calls a `skip` rule matched; never captured, so not part of the invariant.
    CallsSkipped,
    /// Filter: calls left out by Moesif's sampling; never captured, so not part of the
    /// invariant.
    CallsSampledOut,
    /// Filter: calls whose `on_log` properties took one host call each instead of one CEL
    /// evaluation: this Envoy evaluates no CEL, or the evaluation failed (no route matched, a
    /// stream ended before its duration was known). What the calls cost, not what they lost.
    CallsPropertiesOneByOne,
    /// Batches acknowledged by the collector.
    BatchesSent,
    /// Batch requests that failed (non-2xx, timeout, connect error, dispatch refused).
    BatchesFailed,
    /// Batches sent again after a transient failure.
    BatchesRetried,
    /// Gzipped bytes of acknowledged batches.
    BytesSentWire,
    /// Uncompressed JSON bytes of acknowledged batches.
    BytesSentRaw,
}

impl Counter {
    pub const ALL: [Counter; 21] = [
        Counter::EventsCaptured,
        Counter::EventsEnqueued,
        Counter::EventsEnqueueFailed,
        Counter::EventsQueueFull,
        Counter::EventsDequeued,
        Counter::EventsSent,
        Counter::EventsRetried,
        Counter::EventsDroppedBufferFull,
        Counter::EventsDroppedNonRetryable,
        Counter::EventsDroppedEncodeError,
        Counter::EventsDroppedInternal,
        Counter::EventsSkippedInvalid,
        Counter::EventsFormatUnsupported,
        Counter::CallsSkipped,
        Counter::CallsSampledOut,
        Counter::CallsPropertiesOneByOne,
        Counter::BatchesSent,
        Counter::BatchesFailed,
        Counter::BatchesRetried,
        Counter::BytesSentWire,
        Counter::BytesSentRaw,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::EventsCaptured => "moesif_events_captured",
            Counter::EventsEnqueued => "moesif_events_enqueued",
            Counter::EventsEnqueueFailed => "moesif_events_enqueue_failed",
            Counter::EventsQueueFull => "moesif_events_queue_full",
            Counter::EventsDequeued => "moesif_events_dequeued",
            Counter::EventsSent => "moesif_events_sent",
            Counter::EventsRetried => "moesif_events_retried",
            Counter::EventsDroppedBufferFull => "moesif_events_dropped_buffer_full",
            Counter::EventsDroppedNonRetryable => "moesif_events_dropped_non_retryable",
            Counter::EventsDroppedEncodeError => "moesif_events_dropped_encode_error",
            Counter::EventsDroppedInternal => "moesif_events_dropped_internal",
            Counter::EventsSkippedInvalid => "moesif_events_skipped_invalid",
            Counter::EventsFormatUnsupported => "moesif_events_format_unsupported",
            Counter::CallsSkipped => "moesif_calls_skipped",
            Counter::CallsSampledOut => "moesif_calls_sampled_out",
            Counter::CallsPropertiesOneByOne => "moesif_calls_properties_read_one_by_one",
            Counter::BatchesSent => "moesif_batches_sent",
            Counter::BatchesFailed => "moesif_batches_failed",
            Counter::BatchesRetried => "moesif_batches_retried",
            Counter::BytesSentWire => "moesif_bytes_sent_wire",
            Counter::BytesSentRaw => "moesif_bytes_sent_raw",
        }
    }

    /// Whether this counter ends an event's life without delivery: a term of the invariant.
    pub fn is_drop(self) -> bool {
        matches!(
            self,
            Counter::EventsDroppedBufferFull
                | Counter::EventsDroppedNonRetryable
                | Counter::EventsDroppedEncodeError
                | Counter::EventsDroppedInternal
                | Counter::EventsSkippedInvalid
        )
    }

    /// What an increase of this counter means for an operator, for counters whose every
    /// increase is logged (rate-limited); `None` for the others.
    pub fn notice(self) -> Option<&'static str> {
        Some(match self {
            Counter::EventsDroppedBufferFull
            | Counter::EventsDroppedNonRetryable
            | Counter::EventsDroppedEncodeError
            | Counter::EventsDroppedInternal => "events dropped",
            Counter::EventsSkippedInvalid => {
                "calls not shipped: Envoy rejected them before routing, so they have no method or host, and Moesif refuses such events"
            }
            Counter::EventsQueueFull => {
                "events found the shared queue full (max_queue_bytes: the singleton shipper is behind) and were shipped by this worker instead"
            }
            Counter::EventsFormatUnsupported => {
                "events shipped by this worker because the running singleton shipper does not read this build's queue format (mixed builds during a rollout)"
            }
            _ => return None,
        })
    }
}

/// Point-in-time values; published as Envoy gauges that add up over VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// Events waiting to be sent (open batch plus closed batches awaiting (re)send).
    EventsBuffered,
    /// Bytes held for those plus the batches in flight.
    BufferBytes,
    /// Batch requests awaiting the collector's answer.
    BatchesInFlight,
    /// Events in those batches.
    EventsInFlight,
    /// Worker filter roots shipping their own events (no singleton, it is dead, or it does not
    /// read their format): above 0 means the fallback is active.
    WorkersShippingLocally,
}

impl Gauge {
    pub const ALL: [Gauge; 5] = [
        Gauge::EventsBuffered,
        Gauge::BufferBytes,
        Gauge::BatchesInFlight,
        Gauge::EventsInFlight,
        Gauge::WorkersShippingLocally,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Gauge::EventsBuffered => "moesif_events_buffered",
            Gauge::BufferBytes => "moesif_buffer_bytes",
            Gauge::BatchesInFlight => "moesif_batches_in_flight",
            Gauge::EventsInFlight => "moesif_events_in_flight",
            Gauge::WorkersShippingLocally => "moesif_workers_shipping_locally",
        }
    }
}

/// Cumulative counter values; the glue pushes the difference since its last sync to the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts([u64; Counter::ALL.len()]);

impl Counts {
    pub fn add(&mut self, c: Counter, n: u64) {
        if let Some(v) = self.0.get_mut(c as usize) {
            *v = v.saturating_add(n);
        }
    }

    pub fn get(&self, c: Counter) -> u64 {
        self.0.get(c as usize).copied().unwrap_or(0)
    }

    /// Adds every counter of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for c in Counter::ALL {
            self.add(c, other.get(c));
        }
    }

    /// Counters that grew since `earlier`, with their increase.
    pub fn since(&self, earlier: &Counts) -> impl Iterator<Item = (Counter, u64)> + '_ {
        let earlier = *earlier;
        Counter::ALL.into_iter().filter_map(move |c| {
            let d = self.get(c).saturating_sub(earlier.get(c));
            (d > 0).then_some((c, d))
        })
    }
}

/// Current gauge values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gauges([u64; Gauge::ALL.len()]);

impl Gauges {
    pub fn set(&mut self, g: Gauge, v: u64) {
        if let Some(slot) = self.0.get_mut(g as usize) {
            *slot = v;
        }
    }

    pub fn get(&self, g: Gauge) -> u64 {
        self.0.get(g as usize).copied().unwrap_or(0)
    }

    /// Signed change of every gauge since `earlier` (gauges are published as increments so
    /// that the values of several VMs add up).
    pub fn since(&self, earlier: &Gauges) -> impl Iterator<Item = (Gauge, i64)> + '_ {
        let earlier = *earlier;
        Gauge::ALL.into_iter().filter_map(move |g| {
            let d = self.get(g) as i64 - earlier.get(g) as i64;
            (d != 0).then_some((g, d))
        })
    }
}

/// The invariant, for counts and gauges summed over every VM: what was captured minus what is
/// accounted for (sent, dropped or skipped, buffered, in flight, or sitting in the queue).
/// Zero when nothing is lost uncounted.
pub fn unaccounted(c: &Counts, g: &Gauges) -> i128 {
    let n = |v: u64| i128::from(v);
    let ended: i128 = Counter::ALL
        .into_iter()
        .filter(|c| c.is_drop())
        .map(|d| n(c.get(d)))
        .sum();
    n(c.get(Counter::EventsCaptured))
        - n(c.get(Counter::EventsSent))
        - ended
        - n(g.get(Gauge::EventsBuffered))
        - n(g.get(Gauge::EventsInFlight))
        - (n(c.get(Counter::EventsEnqueued)) - n(c.get(Counter::EventsDequeued)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_metric_in_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert!(c.name().starts_with("moesif_"));
        }
        for (i, g) in Gauge::ALL.iter().enumerate() {
            assert_eq!(*g as usize, i);
            assert!(g.name().starts_with("moesif_"));
        }
    }

    #[test]
    fn since_yields_increases() {
        let mut a = Counts::default();
        a.add(Counter::EventsSent, 3);
        let before = a;
        a.add(Counter::EventsSent, 2);
        a.add(Counter::BatchesSent, 1);
        let d: Vec<_> = a.since(&before).collect();
        assert_eq!(d, vec![(Counter::EventsSent, 2), (Counter::BatchesSent, 1)]);
    }

    #[test]
    fn gauges_yield_signed_changes() {
        let mut g = Gauges::default();
        g.set(Gauge::BufferBytes, 100);
        let before = g;
        g.set(Gauge::BufferBytes, 40);
        g.set(Gauge::BatchesInFlight, 2);
        let d: Vec<_> = g.since(&before).collect();
        assert_eq!(
            d,
            vec![(Gauge::BufferBytes, -60), (Gauge::BatchesInFlight, 2)]
        );
    }
}
