//! Batching of event JSON into one gzipped JSON array per request to the collector.

use flate2::{write::GzEncoder, Compression};
use std::io::Write;

/// A gzipped JSON array of events, ready to POST to `/v1/events/batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub gzip: Vec<u8>,
    pub events: usize,
    /// Size of the uncompressed JSON array.
    pub raw_bytes: usize,
}

/// Collects event JSON until the batch is full (`max_events` or `max_bytes` of JSON) or old
/// enough (`max_wait_ms`).
#[derive(Debug)]
pub struct Batcher {
    json: Vec<u8>,
    events: usize,
    opened_ms: u64,
    max_events: usize,
    max_bytes: usize,
    max_wait_ms: u64,
}

impl Batcher {
    pub fn new(max_events: usize, max_bytes: usize, max_wait_ms: u64) -> Self {
        Batcher {
            json: Vec::new(),
            events: 0,
            opened_ms: 0,
            max_events: max_events.max(1),
            max_bytes,
            max_wait_ms,
        }
    }

    /// Adds one event's JSON object; the caller guarantees it is valid JSON.
    pub fn push(&mut self, event: &[u8], now_ms: u64) {
        let _ = self.push_with(now_ms, usize::MAX, |out| {
            out.extend_from_slice(event);
            Ok::<(), ()>(())
        });
    }

    /// Adds one event that `write` appends in place. Nothing is added (and `Ok(false)` is
    /// returned) if it writes more than `max_event_bytes`; its error leaves the batch as it was.
    pub fn push_with<E>(
        &mut self,
        now_ms: u64,
        max_event_bytes: usize,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<bool, E> {
        let before = self.json.len();
        if self.events == 0 {
            self.json.clear();
            self.json.push(b'[');
        } else {
            self.json.push(b',');
        }
        let start = self.json.len();
        let written = write(&mut self.json).map(|()| self.json.len() - start);
        match written {
            Ok(n) if n <= max_event_bytes => {
                if self.events == 0 {
                    self.opened_ms = now_ms;
                }
                self.events += 1;
                Ok(true)
            }
            other => {
                self.json
                    .truncate(if self.events == 0 { 0 } else { before });
                other.map(|_| false)
            }
        }
    }

    pub fn events(&self) -> usize {
        self.events
    }

    /// Bytes of JSON held.
    pub fn bytes(&self) -> usize {
        if self.events == 0 {
            0
        } else {
            self.json.len()
        }
    }

    pub fn is_full(&self) -> bool {
        self.events >= self.max_events || (self.events > 0 && self.json.len() >= self.max_bytes)
    }

    /// Full, or holding events for at least `max_wait_ms`.
    pub fn is_due(&self, now_ms: u64) -> bool {
        self.events > 0
            && (self.is_full() || now_ms.saturating_sub(self.opened_ms) >= self.max_wait_ms)
    }

    /// Closes and gzips the current batch; `None` when empty. The fastest level: it runs on the
    /// proxy's main thread, and event JSON compresses well even so.
    pub fn take(&mut self) -> Option<Batch> {
        if self.events == 0 {
            return None;
        }
        self.json.push(b']');
        let mut enc = GzEncoder::new(Vec::with_capacity(self.json.len() / 4), Compression::fast());
        // Writing into a Vec cannot fail.
        let gzip = enc
            .write_all(&self.json)
            .and_then(|()| enc.finish())
            .unwrap_or_default();
        let batch = Batch {
            gzip,
            events: self.events,
            raw_bytes: self.json.len(),
        };
        self.events = 0;
        self.json.clear();
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> String {
        let mut s = String::new();
        flate2::read::GzDecoder::new(b)
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn batches_by_size() {
        let mut b = Batcher::new(2, 1 << 20, 1000);
        assert!(!b.is_due(0));
        b.push(br#"{"a":1}"#, 0);
        assert!(!b.is_due(10));
        b.push(br#"{"b":2}"#, 5);
        assert!(b.is_full() && b.is_due(5));
        let batch = b.take().unwrap();
        assert_eq!(batch.events, 2);
        assert_eq!(gunzip(&batch.gzip), r#"[{"a":1},{"b":2}]"#);
        assert_eq!(batch.raw_bytes, 17);
        assert_eq!(b.take(), None);
        assert_eq!(b.bytes(), 0);
    }

    #[test]
    fn batches_by_age_from_first_event() {
        let mut b = Batcher::new(100, 1 << 20, 1000);
        b.push(b"{}", 500);
        b.push(b"{}", 1400);
        assert!(!b.is_due(1499));
        assert!(b.is_due(1500));
        assert_eq!(gunzip(&b.take().unwrap().gzip), "[{},{}]");
        b.push(b"{}", 2000);
        assert!(!b.is_due(2999));
        assert_eq!(gunzip(&b.take().unwrap().gzip), "[{}]");
    }

    #[test]
    fn failed_or_oversized_writes_leave_the_batch_intact() {
        let mut b = Batcher::new(100, 1 << 20, 1000);
        assert_eq!(b.push_with(0, 100, |_| Err("boom")), Err("boom"));
        assert_eq!(b.events(), 0);
        b.push(b"{}", 0);
        assert_eq!(
            b.push_with(0, 3, |o| {
                o.extend_from_slice(br#"{"a":1}"#);
                Ok::<_, ()>(())
            }),
            Ok(false)
        );
        assert_eq!(b.push_with(0, 100, |_| Err("boom")), Err("boom"));
        assert_eq!(gunzip(&b.take().unwrap().gzip), "[{}]");
    }

    #[test]
    fn batches_by_bytes() {
        let mut b = Batcher::new(100, 20, 1000);
        b.push(br#"{"a":"0123456789"}"#, 0);
        assert!(!b.is_full());
        b.push(b"{}", 0);
        assert!(b.is_full());
        assert_eq!(b.take().unwrap().events, 2);
    }
}
