//! The counters the plugin reports; the glue exposes each as an Envoy metric of the same name.

/// Every counter, in one place so the README table and the code cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Filter: API calls seen in on_log.
    EventsCaptured,
    /// Filter: records put on the shared queue for the singleton shipper.
    EventsEnqueued,
    /// Filter: records the queue refused; they were shipped by the worker itself instead.
    EventsEnqueueFailed,
    /// Shipper: events acknowledged (2xx) by the collector.
    EventsSent,
    /// Shipper: batches acknowledged by the collector.
    BatchesSent,
    /// Shipper: batch requests that failed (non-2xx, timeout, connect error, dispatch error).
    BatchesFailed,
    /// Events lost because their batch failed.
    EventsDroppedBatchFailed,
    /// Events lost because a record could not be encoded or decoded.
    EventsDroppedEncodeError,
    /// Gzipped bytes of acknowledged batches.
    BytesSentWire,
    /// Uncompressed JSON bytes of acknowledged batches.
    BytesSentRaw,
}

impl Counter {
    pub const ALL: [Counter; 10] = [
        Counter::EventsCaptured,
        Counter::EventsEnqueued,
        Counter::EventsEnqueueFailed,
        Counter::EventsSent,
        Counter::BatchesSent,
        Counter::BatchesFailed,
        Counter::EventsDroppedBatchFailed,
        Counter::EventsDroppedEncodeError,
        Counter::BytesSentWire,
        Counter::BytesSentRaw,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Counter::EventsCaptured => "moesif_events_captured",
            Counter::EventsEnqueued => "moesif_events_enqueued",
            Counter::EventsEnqueueFailed => "moesif_events_enqueue_failed",
            Counter::EventsSent => "moesif_events_sent",
            Counter::BatchesSent => "moesif_batches_sent",
            Counter::BatchesFailed => "moesif_batches_failed",
            Counter::EventsDroppedBatchFailed => "moesif_events_dropped_batch_failed",
            Counter::EventsDroppedEncodeError => "moesif_events_dropped_encode_error",
            Counter::BytesSentWire => "moesif_bytes_sent_wire",
            Counter::BytesSentRaw => "moesif_bytes_sent_raw",
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

    /// Counters that grew since `earlier`, with their increase.
    pub fn since(&self, earlier: &Counts) -> impl Iterator<Item = (Counter, u64)> + '_ {
        let earlier = *earlier;
        Counter::ALL.into_iter().filter_map(move |c| {
            let d = self.get(c).saturating_sub(earlier.get(c));
            (d > 0).then_some((c, d))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_counter_in_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert!(c.name().starts_with("moesif_"));
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
}
