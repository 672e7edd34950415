//! The shipping state machine shared by the singleton shipper and the per-worker fallback:
//! records in, gzipped batches out, outcomes counted. The glue performs the actual HTTP calls.

use crate::batch::{Batch, Batcher};
use crate::config::Config;
use crate::event::to_event_json;
use crate::ids::IdGen;
use crate::record::Record;
use crate::stats::{Counter, Counts};

/// A batch handed to the glue for dispatch, identified by the host's call token once sent.
pub struct Shipper {
    batcher: Batcher,
    in_flight: Vec<(u32, Batch)>,
    ids: IdGen,
    counts: Counts,
}

/// What became of a batch the collector answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent { events: usize },
    Failed { events: usize, status: Option<u16> },
}

impl Shipper {
    pub fn new(config: &Config, seed: u64) -> Self {
        Shipper {
            batcher: Batcher::new(config.batch_max_size, config.batch_max_wait),
            in_flight: Vec::new(),
            ids: IdGen::new(seed),
            counts: Counts::default(),
        }
    }

    /// Takes one MessagePack record from the queue.
    pub fn accept_encoded(&mut self, bytes: &[u8], now_ms: u64) {
        match Record::decode(bytes) {
            Ok(rec) => self.accept(&rec, now_ms),
            Err(_) => self.counts.add(Counter::EventsDroppedEncodeError, 1),
        }
    }

    /// Takes one record (the fallback path skips the MessagePack round trip).
    pub fn accept(&mut self, rec: &Record, now_ms: u64) {
        match to_event_json(rec, self.ids.next_uuid()) {
            Ok(json) => self.batcher.push(&json, now_ms),
            Err(_) => self.counts.add(Counter::EventsDroppedEncodeError, 1),
        }
    }

    /// Counts a filter-side event (captured, enqueued) in this shipper's counters.
    pub fn count(&mut self, c: Counter, n: u64) {
        self.counts.add(c, n);
    }

    /// The batch to send now, if one is due.
    pub fn poll(&mut self, now_ms: u64) -> Option<Batch> {
        if self.batcher.is_due(now_ms) {
            self.batcher.take()
        } else {
            None
        }
    }

    /// Every buffered event as a batch, due or not (graceful drain).
    pub fn flush(&mut self) -> Option<Batch> {
        self.batcher.take()
    }

    /// The glue dispatched `batch`; its answer will arrive under `token`.
    pub fn dispatched(&mut self, token: u32, batch: Batch) {
        self.in_flight.push((token, batch));
    }

    /// The host refused to dispatch `batch` at all (e.g. unknown cluster).
    pub fn dispatch_failed(&mut self, batch: Batch) -> Outcome {
        self.fail(batch, None)
    }

    /// The collector answered the call `token` with `status` (`None`: no HTTP answer).
    pub fn on_response(&mut self, token: u32, status: Option<u16>) -> Option<Outcome> {
        let pos = self.in_flight.iter().position(|(t, _)| *t == token)?;
        let (_, batch) = self.in_flight.swap_remove(pos);
        Some(match status {
            Some(s) if (200..300).contains(&s) => {
                self.counts.add(Counter::EventsSent, batch.events as u64);
                self.counts.add(Counter::BatchesSent, 1);
                self.counts
                    .add(Counter::BytesSentWire, batch.gzip.len() as u64);
                self.counts
                    .add(Counter::BytesSentRaw, batch.raw_bytes as u64);
                Outcome::Sent {
                    events: batch.events,
                }
            }
            _ => self.fail(batch, status),
        })
    }

    fn fail(&mut self, batch: Batch, status: Option<u16>) -> Outcome {
        self.counts.add(Counter::BatchesFailed, 1);
        self.counts
            .add(Counter::EventsDroppedBatchFailed, batch.events as u64);
        Outcome::Failed {
            events: batch.events,
            status,
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Events waiting in the open batch.
    pub fn buffered(&self) -> usize {
        self.batcher.events()
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipper(max: usize) -> Shipper {
        let config = Config {
            moesif_application_id: "app".into(),
            batch_max_size: max,
            batch_max_wait: 1000,
            ..Config::default()
        };
        Shipper::new(&config, 1)
    }

    fn record() -> Vec<u8> {
        Record {
            method: "GET".into(),
            path: "/".into(),
            ..Record::default()
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn sends_full_batches_and_counts_acks() {
        let mut s = shipper(2);
        s.accept_encoded(&record(), 0);
        assert!(s.poll(0).is_none());
        s.accept_encoded(&record(), 1);
        let batch = s.poll(1).unwrap();
        assert_eq!(batch.events, 2);
        s.dispatched(7, batch);
        assert_eq!(s.in_flight(), 1);
        assert_eq!(s.on_response(8, Some(200)), None);
        assert_eq!(
            s.on_response(7, Some(201)),
            Some(Outcome::Sent { events: 2 })
        );
        assert_eq!(s.counts().get(Counter::EventsSent), 2);
        assert_eq!(s.counts().get(Counter::BatchesSent), 1);
        assert!(s.counts().get(Counter::BytesSentWire) > 0);
        assert_eq!(s.in_flight(), 0);
    }

    #[test]
    fn failures_and_garbage_are_counted() {
        let mut s = shipper(10);
        s.accept_encoded(b"\xc1", 0);
        assert_eq!(s.counts().get(Counter::EventsDroppedEncodeError), 1);
        s.accept_encoded(&record(), 0);
        assert!(s.poll(999).is_none());
        let batch = s.poll(1000).unwrap();
        s.dispatched(1, batch);
        assert_eq!(
            s.on_response(1, Some(503)),
            Some(Outcome::Failed {
                events: 1,
                status: Some(503)
            })
        );
        assert_eq!(s.counts().get(Counter::BatchesFailed), 1);
        assert_eq!(s.counts().get(Counter::EventsDroppedBatchFailed), 1);
    }

    #[test]
    fn flush_takes_a_partial_batch() {
        let mut s = shipper(10);
        s.accept_encoded(&record(), 0);
        assert_eq!(s.buffered(), 1);
        assert_eq!(s.flush().unwrap().events, 1);
        assert!(s.flush().is_none());
    }
}
