//! Records on their way from a filter to the singleton shipper, grouped into blocks so that
//! one queue message (one host call, one wake-up of the main thread) carries many of them.

use crate::record::Record;

/// Most records in one queue message.
const MAX_EVENTS: usize = 64;
/// A block this large is sent at once, however few records it holds (unless the queue's
/// bound asks for smaller blocks).
const MAX_BYTES: usize = 256 * 1024;

/// An encoded block ready for the shared queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub bytes: Vec<u8>,
    pub events: usize,
}

#[derive(Debug)]
pub struct Forwarder {
    bytes: Vec<u8>,
    events: usize,
    max_bytes: usize,
}

impl Forwarder {
    /// Blocks stay well below `max_queue_bytes`, so a few always fit in the queue.
    pub fn new(max_queue_bytes: usize) -> Self {
        Forwarder {
            bytes: Vec::new(),
            events: 0,
            max_bytes: (max_queue_bytes / 8).clamp(1, MAX_BYTES),
        }
    }

    /// Encodes `rec` into the open block; returns the block when it is full.
    pub fn push(&mut self, rec: &Record) -> Result<Option<Block>, rmp_serde::encode::Error> {
        let before = self.bytes.len();
        if let Err(e) = rec.encode_into(&mut self.bytes) {
            self.bytes.truncate(before);
            return Err(e);
        }
        self.events += 1;
        Ok(
            (self.events >= MAX_EVENTS || self.bytes.len() >= self.max_bytes)
                .then(|| self.take())
                .flatten(),
        )
    }

    /// The open block, if it holds anything.
    pub fn take(&mut self) -> Option<Block> {
        if self.events == 0 {
            return None;
        }
        let events = std::mem::take(&mut self.events);
        Some(Block {
            bytes: std::mem::take(&mut self.bytes),
            events,
        })
    }

    pub fn events(&self) -> usize {
        self.events
    }

    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_fill_up_and_decode_back() {
        let mut f = Forwarder::new(16_000_000);
        let rec = Record {
            path: "/x".into(),
            ..Record::default()
        };
        for _ in 0..MAX_EVENTS - 1 {
            assert_eq!(f.push(&rec).unwrap(), None);
        }
        let block = f.push(&rec).unwrap().unwrap();
        assert_eq!(block.events, MAX_EVENTS);
        assert_eq!(Record::decode_all(&block.bytes).count(), MAX_EVENTS);
        assert_eq!((f.events(), f.bytes()), (0, 0));
        assert_eq!(f.take(), None);
    }

    #[test]
    fn big_records_close_the_block_early() {
        let mut f = Forwarder::new(16_000_000);
        let big = Record {
            request_body: crate::body::Body::Captured(vec![7; MAX_BYTES]),
            ..Record::default()
        };
        assert_eq!(f.push(&big).unwrap().unwrap().events, 1);
        let mut small = Forwarder::new(100_000);
        let mid = Record {
            request_body: crate::body::Body::Captured(vec![7; 5_000]),
            ..Record::default()
        };
        assert_eq!(small.push(&mid).unwrap(), None);
        assert_eq!(small.push(&mid).unwrap(), None);
        assert_eq!(
            small.push(&mid).unwrap().unwrap().events,
            3,
            "blocks close past 1/8 of the queue"
        );
    }
}
