//! The shipping state machine shared by the singleton shipper and the per-worker fallback:
//! records in, gzipped batches out, every event accounted for. It never reads a clock or calls
//! the host: the glue passes the time in and performs the HTTP calls it asks for.

use crate::batch::{Batch, Batcher};
use crate::config::Config;
use crate::event::write_event_json;
use crate::forward::{self, Block, Forwarder, Unreadable};
use crate::ids::IdGen;
use crate::policy::{Compiled, Policy};
use crate::record::Record;
use crate::retry::{classify, Backoff, Verdict};
use crate::route::Local;
use crate::stats::{Counter, Counts, Gauge, Gauges};
use std::collections::VecDeque;
use std::rc::Rc;
use uuid::Uuid;

/// A closed batch on its way to the collector, with the attempts made so far.
#[derive(Debug)]
pub struct Outgoing {
    pub batch: Batch,
    pub attempts: u32,
}

/// What became of a batch the collector answered (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent {
        events: usize,
    },
    /// Kept; the next attempt waits `delay_ms`.
    Retrying {
        events: usize,
        delay_ms: u64,
    },
    /// Dropped for good, counted as non-retryable.
    Rejected {
        events: usize,
    },
}

pub struct Shipper {
    /// Filter side: records encoded for the singleton's queue, not yet enqueued.
    forward: Forwarder,
    batcher: Batcher,
    /// Closed batches awaiting (re)send, oldest first.
    waiting: VecDeque<Outgoing>,
    in_flight: Vec<(u32, Outgoing)>,
    backoff: Backoff,
    /// No dispatch before this time (backing off a failing collector).
    not_before_ms: u64,
    max_in_flight: usize,
    max_buffer_bytes: usize,
    ids: IdGen,
    counts: Counts,
    /// The policy of this root's own config, for what it captures and ships itself.
    own_policy: Rc<Compiled>,
    /// Filter side: this worker ships its own events (published as a gauge).
    shipping_locally: bool,
    /// The policy of the last queue block read, by its encoded bytes: consecutive blocks from
    /// one filter config carry the same bytes, so it is decoded once.
    block_policy: Option<(Vec<u8>, Rc<Compiled>)>,
}

impl Shipper {
    pub fn new(config: &Config, seed: u64) -> Self {
        let max_batch_bytes = (config.max_buffer_bytes / 4).max(1);
        let policy = Policy::from_config(config);
        Shipper {
            forward: Forwarder::new(config.max_queue_bytes, policy.encode()),
            batcher: Batcher::new(
                config.batch_max_size,
                max_batch_bytes,
                config.batch_max_wait,
            ),
            waiting: VecDeque::new(),
            in_flight: Vec::new(),
            backoff: Backoff::new(
                config.retry_backoff_initial_ms,
                config.retry_backoff_max_ms,
                seed.rotate_left(17),
            ),
            not_before_ms: 0,
            max_in_flight: config.max_in_flight.max(1),
            max_buffer_bytes: config.max_buffer_bytes,
            ids: IdGen::new(seed),
            counts: Counts::default(),
            own_policy: Rc::new(Compiled::new(policy)),
            shipping_locally: false,
            block_policy: None,
        }
    }

    /// The decoded policy of a block; `None` if it does not decode (then none of the block's
    /// records is shipped: without its masks they could leak credentials).
    fn policy_of(&mut self, encoded: &[u8]) -> Option<Rc<Compiled>> {
        if let Some((bytes, policy)) = &self.block_policy {
            if bytes.as_slice() == encoded {
                return Some(Rc::clone(policy));
            }
        }
        let policy = Rc::new(Compiled::new(Policy::decode(encoded).ok()?));
        self.block_policy = Some((encoded.to_vec(), Rc::clone(&policy)));
        Some(policy)
    }

    /// Takes one message dequeued from the shared queue: a block of MessagePack records.
    pub fn accept_dequeued(&mut self, bytes: &[u8], now_ms: u64) {
        let held = self.accept_block(bytes, now_ms);
        self.counts.add(Counter::EventsDequeued, held);
    }

    /// Ships every record of a block from here; returns how many its header declares. Those
    /// that cannot be decoded are counted as encode errors, every one of them: the header's
    /// count survives a garbled body. (Only a message that is not a block at all, which no
    /// filter writes, counts as one.)
    fn accept_block(&mut self, bytes: &[u8], now_ms: u64) -> u64 {
        let opened = match forward::open(bytes) {
            Ok(opened) => opened,
            Err(Unreadable::Format { declared, .. }) => {
                self.counts.add(Counter::EventsDroppedEncodeError, declared);
                return declared;
            }
            Err(Unreadable::Garbled) => {
                self.counts.add(Counter::EventsDroppedEncodeError, 1);
                return 1;
            }
        };
        #[cfg_attr(feature = "codec-crates", allow(unused_variables))]
        let Some(policy) = self.policy_of(opened.policy) else {
            self.counts
                .add(Counter::EventsDroppedEncodeError, opened.declared);
            return opened.declared;
        };
        let mut decoded = 0;
        #[cfg(not(feature = "codec-crates"))]
        for rec in opened.records() {
            let Ok(rec) = rec else { break };
            decoded += 1;
            self.accept(rec.is_shippable(), now_ms, |out, id| {
                write_event_json(&rec, id, &policy, out)
            });
        }
        // The benchmark build that measures what the hand-written codecs save (no policy).
        #[cfg(feature = "codec-crates")]
        for rec in opened.owned_records() {
            let Ok(rec) = rec else { break };
            decoded += 1;
            self.accept(rec.view().is_shippable(), now_ms, |out, id| {
                crate::serde_event::write_event(&rec, id, out)
            });
        }
        self.counts.add(
            Counter::EventsDroppedEncodeError,
            opened.declared.saturating_sub(decoded),
        );
        opened.declared
    }

    /// Filter side: queues `rec` for the singleton shipper; returns a block to enqueue when one
    /// is full. Counted as captured.
    pub fn forward(&mut self, rec: &Record) -> Option<Block> {
        self.counts.add(Counter::EventsCaptured, 1);
        match self.forward.push(rec) {
            Ok(block) => block,
            Err(_) => {
                self.counts.add(Counter::EventsDroppedEncodeError, 1);
                None
            }
        }
    }

    /// Filter side: the open block, whatever its size (tick, or switching routes).
    pub fn take_block(&mut self) -> Option<Block> {
        self.forward.take()
    }

    /// Filter side: `block` is on the queue.
    pub fn enqueued(&mut self, block: &Block) {
        self.counts
            .add(Counter::EventsEnqueued, block.events as u64);
    }

    /// Filter side: the shared queue is full (the singleton is behind); `block`'s records are
    /// shipped from here instead, so an overloaded singleton slows delivery, never loses it.
    pub fn queue_full(&mut self, block: &Block, now_ms: u64) {
        self.counts
            .add(Counter::EventsQueueFull, block.events as u64);
        self.accept_block(&block.bytes, now_ms);
    }

    /// Filter side: the queue refused `block`; its records are shipped from here instead.
    pub fn enqueue_failed(&mut self, block: &Block, now_ms: u64) {
        self.counts
            .add(Counter::EventsEnqueueFailed, block.events as u64);
        self.accept_block(&block.bytes, now_ms);
    }

    /// Filter side, fallback: ships `rec` from this VM, `why` as the route says. Counted as
    /// captured.
    pub fn capture_locally(&mut self, rec: &Record, why: Local, now_ms: u64) {
        self.counts.add(Counter::EventsCaptured, 1);
        if why == Local::FormatUnsupported {
            self.counts.add(Counter::EventsFormatUnsupported, 1);
        }
        let policy = Rc::clone(&self.own_policy);
        let view = rec.view();
        self.accept(view.is_shippable(), now_ms, |out, id| {
            write_event_json(&view, id, &policy, out)
        });
    }

    /// The policy of this root's own config (a filter root also decides sampling and
    /// governance by its identity rules).
    pub fn own_policy(&self) -> Rc<Compiled> {
        Rc::clone(&self.own_policy)
    }

    /// Filter side: whether this worker currently ships its own events.
    pub fn set_shipping_locally(&mut self, local: bool) {
        self.shipping_locally = local;
    }

    /// Filter side: counts gathered where the shipper was not at hand (calls skipped or sampled
    /// out at request headers, or lost because the filter's state was in use).
    pub fn count(&mut self, counts: &Counts) {
        self.counts.merge(counts);
    }

    fn accept(
        &mut self,
        shippable: bool,
        now_ms: u64,
        write: impl FnOnce(&mut Vec<u8>, Uuid) -> Result<(), serde_json::Error>,
    ) {
        if !shippable {
            return self.counts.add(Counter::EventsSkippedInvalid, 1);
        }
        let id = self.ids.next_uuid();
        let max = self.max_buffer_bytes;
        match self.batcher.push_with(now_ms, max, |out| write(out, id)) {
            Ok(true) => {}
            Ok(false) => return self.counts.add(Counter::EventsDroppedBufferFull, 1),
            Err(_) => return self.counts.add(Counter::EventsDroppedEncodeError, 1),
        }
        if self.batcher.is_full() {
            self.close_batch();
        }
        self.enforce_bound();
    }

    /// Closes the open batch now, due or not (a retiring filter config delivers what it holds).
    pub fn close_batch(&mut self) {
        if let Some(batch) = self.batcher.take() {
            self.waiting.push_back(Outgoing { batch, attempts: 0 });
        }
    }

    /// Drops the oldest waiting batches while over `max_buffer_bytes`.
    fn enforce_bound(&mut self) {
        while self.buffer_bytes() > self.max_buffer_bytes {
            let Some(oldest) = self.waiting.pop_front() else {
                break;
            };
            self.counts
                .add(Counter::EventsDroppedBufferFull, oldest.batch.events as u64);
        }
    }

    fn buffer_bytes(&self) -> usize {
        self.forward.bytes()
            + self.batcher.bytes()
            + self
                .waiting
                .iter()
                .map(|o| o.batch.gzip.len())
                .sum::<usize>()
            + self
                .in_flight
                .iter()
                .map(|(_, o)| o.batch.gzip.len())
                .sum::<usize>()
    }

    /// The next batch to dispatch now, if any: closes the open batch when it is due, then
    /// respects the backoff and `max_in_flight`. Hand it back with [`Shipper::dispatched`] or
    /// [`Shipper::dispatch_failed`].
    pub fn poll(&mut self, now_ms: u64) -> Option<Outgoing> {
        if self.batcher.is_due(now_ms) {
            self.close_batch();
            self.enforce_bound();
        }
        if self.in_flight.len() >= self.max_in_flight || now_ms < self.not_before_ms {
            return None;
        }
        let out = self.waiting.pop_front()?;
        if out.attempts > 0 {
            self.counts.add(Counter::BatchesRetried, 1);
            self.counts
                .add(Counter::EventsRetried, out.batch.events as u64);
        }
        Some(out)
    }

    /// A full round of closed batches waits for a free request slot (or the end of a
    /// backoff): taking in more records now would only grow the buffer.
    pub fn is_backlogged(&self) -> bool {
        self.waiting.len() >= self.max_in_flight
    }

    /// The glue dispatched `out`; its answer will arrive under `token`.
    pub fn dispatched(&mut self, token: u32, out: Outgoing) {
        self.in_flight.push((token, out));
    }

    /// The host refused to dispatch `out` at all (e.g. unknown cluster): a transient failure.
    pub fn dispatch_failed(&mut self, out: Outgoing, now_ms: u64) -> Outcome {
        self.settle(out, None, None, now_ms)
    }

    /// The collector answered the call `token` with `status` (`None`: no HTTP answer) and
    /// possibly `Retry-After` (ms). `None` if the token is not ours.
    pub fn on_response(
        &mut self,
        token: u32,
        status: Option<u16>,
        retry_after_ms: Option<u64>,
        now_ms: u64,
    ) -> Option<Outcome> {
        let pos = self.in_flight.iter().position(|(t, _)| *t == token)?;
        let (_, out) = self.in_flight.swap_remove(pos);
        Some(self.settle(out, status, retry_after_ms, now_ms))
    }

    fn settle(
        &mut self,
        mut out: Outgoing,
        status: Option<u16>,
        retry_after_ms: Option<u64>,
        now_ms: u64,
    ) -> Outcome {
        let events = out.batch.events;
        match classify(status) {
            Verdict::Accepted => {
                self.counts.add(Counter::EventsSent, events as u64);
                self.counts.add(Counter::BatchesSent, 1);
                self.counts
                    .add(Counter::BytesSentWire, out.batch.gzip.len() as u64);
                self.counts
                    .add(Counter::BytesSentRaw, out.batch.raw_bytes as u64);
                self.backoff.on_success();
                Outcome::Sent { events }
            }
            Verdict::Retry => {
                self.counts.add(Counter::BatchesFailed, 1);
                // Concurrent failures of one outage back off once, not once per batch.
                if now_ms >= self.not_before_ms || retry_after_ms.is_some() {
                    let delay = self.backoff.on_failure(retry_after_ms);
                    self.not_before_ms = self.not_before_ms.max(now_ms.saturating_add(delay));
                }
                out.attempts = out.attempts.saturating_add(1);
                self.waiting.push_front(out);
                self.enforce_bound();
                Outcome::Retrying {
                    events,
                    delay_ms: self.not_before_ms.saturating_sub(now_ms),
                }
            }
            Verdict::Reject => {
                self.counts.add(Counter::BatchesFailed, 1);
                self.counts
                    .add(Counter::EventsDroppedNonRetryable, events as u64);
                Outcome::Rejected { events }
            }
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    pub fn gauges(&self) -> Gauges {
        let mut g = Gauges::default();
        let waiting: usize = self.waiting.iter().map(|o| o.batch.events).sum();
        let in_flight: usize = self.in_flight.iter().map(|(_, o)| o.batch.events).sum();
        let buffered = self.forward.events() + self.batcher.events() + waiting;
        g.set(Gauge::EventsBuffered, buffered as u64);
        g.set(Gauge::BufferBytes, self.buffer_bytes() as u64);
        g.set(Gauge::BatchesInFlight, self.in_flight.len() as u64);
        g.set(Gauge::EventsInFlight, in_flight as u64);
        g.set(
            Gauge::WorkersShippingLocally,
            u64::from(self.shipping_locally),
        );
        g
    }

    /// Events not yet acknowledged: buffered plus in flight.
    pub fn unsent(&self) -> u64 {
        let g = self.gauges();
        g.get(Gauge::EventsBuffered) + g.get(Gauge::EventsInFlight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats;

    fn config(max: usize) -> Config {
        Config {
            moesif_application_id: "app".into(),
            batch_max_size: max,
            batch_max_wait: 1000,
            ..Config::default()
        }
    }

    fn valid() -> Record {
        Record {
            method: "GET".into(),
            scheme: "http".into(),
            authority: "api.example.com".into(),
            path: "/".into(),
            ..Record::default()
        }
    }

    /// One record as a queue block.
    fn record() -> Vec<u8> {
        block(&[valid()])
    }

    fn block(records: &[Record]) -> Vec<u8> {
        let mut f = Forwarder::new(16_000_000, Policy::default().encode());
        for r in records {
            f.push(r).unwrap();
        }
        f.take().unwrap().bytes
    }

    /// Every one of `fed` records dequeued is sent, dropped, skipped, buffered or in flight.
    fn assert_accounted(s: &Shipper, fed: u64) {
        let mut c = *s.counts();
        c.add(Counter::EventsCaptured, fed);
        c.add(Counter::EventsEnqueued, fed);
        assert_eq!(stats::unaccounted(&c, &s.gauges()), 0, "{c:?}");
        assert_eq!(s.counts().get(Counter::EventsDequeued), fed, "{c:?}");
    }

    #[test]
    fn sends_full_batches_and_counts_acks() {
        let mut s = Shipper::new(&config(2), 1);
        s.accept_dequeued(&record(), 0);
        assert!(s.poll(0).is_none());
        s.accept_dequeued(&record(), 1);
        let out = s.poll(1).unwrap();
        assert_eq!((out.batch.events, out.attempts), (2, 0));
        s.dispatched(7, out);
        assert_eq!(s.gauges().get(Gauge::BatchesInFlight), 1);
        assert_eq!(s.gauges().get(Gauge::EventsInFlight), 2);
        assert_eq!(s.on_response(8, Some(200), None, 2), None);
        assert_eq!(
            s.on_response(7, Some(201), None, 2),
            Some(Outcome::Sent { events: 2 })
        );
        assert_eq!(s.counts().get(Counter::EventsSent), 2);
        assert_eq!(s.counts().get(Counter::EventsDequeued), 2);
        assert_eq!(s.counts().get(Counter::BatchesSent), 1);
        assert!(s.counts().get(Counter::BytesSentWire) > 0);
        assert_eq!(s.gauges(), Gauges::default());
        assert_accounted(&s, 2);
    }

    #[test]
    fn partial_batch_waits_for_max_wait() {
        let mut s = Shipper::new(&config(10), 1);
        s.accept_dequeued(&record(), 100);
        assert!(s.poll(1099).is_none());
        assert_eq!(s.poll(1100).unwrap().batch.events, 1);
    }

    #[test]
    fn transient_failures_retry_the_same_bytes_with_backoff() {
        let mut s = Shipper::new(&config(1), 1);
        s.accept_dequeued(&record(), 0);
        let out = s.poll(0).unwrap();
        let bytes = out.batch.gzip.clone();
        s.dispatched(1, out);
        let Some(Outcome::Retrying { delay_ms, .. }) = s.on_response(1, Some(503), None, 10) else {
            panic!()
        };
        assert!((500..=1000).contains(&delay_ms), "{delay_ms}");
        assert!(s.poll(10 + delay_ms - 1).is_none(), "backing off");
        let again = s.poll(10 + delay_ms).unwrap();
        assert_eq!(again.attempts, 1);
        assert_eq!(again.batch.gzip, bytes, "same events, same transaction ids");
        assert_eq!(s.counts().get(Counter::BatchesRetried), 1);
        assert_eq!(s.counts().get(Counter::EventsRetried), 1);
        s.dispatched(2, again);
        let Some(Outcome::Retrying { delay_ms, .. }) = s.on_response(2, None, None, 2000) else {
            panic!()
        };
        assert!((1000..=2000).contains(&delay_ms), "doubled: {delay_ms}");
        let third = s.poll(2000 + delay_ms).unwrap();
        s.dispatched(3, third);
        assert_eq!(
            s.on_response(3, Some(200), None, 5000),
            Some(Outcome::Sent { events: 1 })
        );
        assert_eq!(s.counts().get(Counter::BatchesFailed), 2);
        assert_accounted(&s, 1);
    }

    #[test]
    fn retry_after_is_honoured() {
        let mut s = Shipper::new(&config(1), 1);
        s.accept_dequeued(&record(), 0);
        let out = s.poll(0).unwrap();
        s.dispatched(1, out);
        s.on_response(1, Some(429), Some(7000), 100);
        assert!(s.poll(7099).is_none());
        assert!(s.poll(7100).is_some());
    }

    #[test]
    fn concurrent_failures_back_off_once() {
        let mut s = Shipper::new(&config(1), 1);
        for _ in 0..3 {
            s.accept_dequeued(&record(), 0);
        }
        for t in 0..3 {
            let out = s.poll(0).unwrap();
            s.dispatched(t, out);
        }
        let first = s.on_response(0, Some(502), None, 10);
        let Some(Outcome::Retrying { delay_ms, .. }) = first else {
            panic!()
        };
        for t in 1..3 {
            let Some(Outcome::Retrying { delay_ms: d, .. }) = s.on_response(t, Some(502), None, 20)
            else {
                panic!()
            };
            assert_eq!(d + 10, delay_ms, "same deadline");
        }
        assert_accounted(&s, 3);
    }

    #[test]
    fn non_retryable_answers_drop_once() {
        let mut s = Shipper::new(&config(2), 1);
        s.accept_dequeued(&record(), 0);
        s.accept_dequeued(&record(), 0);
        let out = s.poll(0).unwrap();
        s.dispatched(1, out);
        assert_eq!(
            s.on_response(1, Some(400), None, 1),
            Some(Outcome::Rejected { events: 2 })
        );
        assert!(s.poll(100_000).is_none(), "never retried");
        assert_eq!(s.counts().get(Counter::EventsDroppedNonRetryable), 2);
        assert_accounted(&s, 2);
    }

    #[test]
    fn max_in_flight_is_respected() {
        let mut s = Shipper::new(
            &Config {
                max_in_flight: 2,
                ..config(1)
            },
            1,
        );
        for _ in 0..3 {
            s.accept_dequeued(&record(), 0);
        }
        let a = s.poll(0).unwrap();
        s.dispatched(1, a);
        let b = s.poll(0).unwrap();
        s.dispatched(2, b);
        assert!(s.poll(0).is_none());
        s.on_response(1, Some(200), None, 0);
        assert!(s.poll(0).is_some());
    }

    #[test]
    fn buffer_bound_drops_oldest_first_and_accounts_exactly() {
        let mut s = Shipper::new(
            &Config {
                max_buffer_bytes: 10_000,
                ..config(1)
            },
            1,
        );
        let out = {
            s.accept_dequeued(&record(), 0);
            s.poll(0).unwrap()
        };
        s.dispatched(1, out);
        s.on_response(1, Some(503), None, 0);
        // Collector down: keep feeding well past the bound.
        for i in 0..500 {
            s.accept_dequeued(&record(), i);
        }
        let g = s.gauges();
        assert!(g.get(Gauge::BufferBytes) <= 10_000, "{g:?}");
        let dropped = s.counts().get(Counter::EventsDroppedBufferFull);
        assert!(dropped > 0);
        assert_accounted(&s, 501);
        // The survivors are the newest: the first (retried, oldest) batch went first.
        let next = s.poll(100_000).unwrap();
        assert_eq!(next.attempts, 0, "oldest retry batch was dropped first");
    }

    #[test]
    fn filter_side_forwarding_and_fallback_account_exactly() {
        let mut s = Shipper::new(&config(100), 1);
        let rec = valid();
        for _ in 0..3 {
            assert_eq!(s.forward(&rec), None);
        }
        assert_eq!(s.gauges().get(Gauge::EventsBuffered), 3);
        let block = s.take_block().unwrap();
        assert_eq!(block.events, 3);
        s.enqueued(&block);
        s.forward(&rec);
        let refused = s.take_block().unwrap();
        s.enqueue_failed(&refused, 0);
        s.forward(&rec);
        s.forward(&rec);
        let no_room = s.take_block().unwrap();
        s.queue_full(&no_room, 0);
        s.capture_locally(&rec, Local::NoQueue, 0);
        s.capture_locally(&rec, Local::FormatUnsupported, 0);
        let mut lost = Counts::default();
        lost.add(Counter::EventsCaptured, 1);
        lost.add(Counter::EventsDroppedInternal, 1);
        s.count(&lost);
        let c = *s.counts();
        assert_eq!(c.get(Counter::EventsCaptured), 9);
        assert_eq!(c.get(Counter::EventsFormatUnsupported), 1);
        assert_eq!(c.get(Counter::EventsDroppedInternal), 1);
        assert_eq!(c.get(Counter::EventsEnqueued), 3);
        assert_eq!(c.get(Counter::EventsEnqueueFailed), 1);
        assert_eq!(c.get(Counter::EventsQueueFull), 2);
        assert_eq!(
            s.gauges().get(Gauge::EventsBuffered),
            5,
            "shipped from here, none dropped"
        );
        assert_eq!(
            stats::unaccounted(&c, &s.gauges()),
            0,
            "the 3 enqueued sit in the queue"
        );
        // The shipper side of the queue.
        let mut singleton = Shipper::new(&config(100), 2);
        singleton.accept_dequeued(&block.bytes, 0);
        assert_eq!(singleton.counts().get(Counter::EventsDequeued), 3);
        assert_eq!(singleton.unsent(), 3);
    }

    #[test]
    fn backlogged_once_a_full_round_waits() {
        let mut s = Shipper::new(
            &Config {
                max_in_flight: 2,
                ..config(1)
            },
            1,
        );
        for token in 0..2 {
            s.accept_dequeued(&record(), 0);
            let out = s.poll(0).unwrap();
            s.dispatched(token, out);
        }
        s.accept_dequeued(&record(), 0);
        assert!(!s.is_backlogged(), "one batch waits");
        s.accept_dequeued(&record(), 0);
        assert!(s.is_backlogged(), "two batches wait, none may go");
        s.on_response(0, Some(200), None, 1);
        let out = s.poll(1).unwrap();
        s.dispatched(2, out);
        assert!(!s.is_backlogged());
    }

    #[test]
    fn garbage_is_counted_record_by_record() {
        let mut s = Shipper::new(&config(10), 1);
        s.accept_dequeued(b"\xc1", 0);
        assert_eq!(s.counts().get(Counter::EventsDroppedEncodeError), 1);
        assert_accounted(&s, 1);
        // Five records, the third garbled: two shipped, three lost, all counted.
        let mut bytes = block(&[valid(), valid(), valid(), valid(), valid()]);
        let one = valid().encode().unwrap().len();
        let third = bytes.len() - 3 * one;
        bytes[third] = 0xc1;
        s.accept_dequeued(&bytes, 0);
        assert_eq!(s.counts().get(Counter::EventsDroppedEncodeError), 4);
        assert_eq!(s.unsent(), 2);
        assert_accounted(&s, 6);
        // A format this build does not read: every declared record counted.
        let mut other = block(&[valid(), valid()]);
        other[1] = 200;
        s.accept_dequeued(&other, 0);
        assert_eq!(s.counts().get(Counter::EventsDroppedEncodeError), 6);
        assert_accounted(&s, 8);
    }

    #[test]
    fn calls_without_method_or_host_are_skipped_and_counted() {
        let mut s = Shipper::new(&config(10), 1);
        let rejected = Record {
            scheme: "http".into(),
            ..Record::default()
        };
        let no_host = Record {
            authority: String::new(),
            ..valid()
        };
        s.accept_dequeued(&block(&[rejected, valid(), no_host]), 0);
        assert_eq!(s.counts().get(Counter::EventsSkippedInvalid), 2);
        assert_eq!(s.unsent(), 1);
        assert_accounted(&s, 3);
    }

    #[test]
    fn dispatch_refusal_is_transient() {
        let mut s = Shipper::new(&config(1), 1);
        s.accept_dequeued(&record(), 0);
        let out = s.poll(0).unwrap();
        assert!(matches!(
            s.dispatch_failed(out, 0),
            Outcome::Retrying { .. }
        ));
        assert_eq!(s.unsent(), 1);
    }
}
