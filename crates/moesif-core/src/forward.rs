//! Records on their way from a filter to the singleton shipper, grouped into blocks so that
//! one queue message (one host call, one wake-up of the main thread) carries many of them.

use crate::record::Record;

/// Most records in one queue message.
const MAX_EVENTS: usize = 64;
/// A block this large is sent at once, however few records it holds.
const MAX_BYTES: usize = 256 * 1024;

/// An encoded block ready for the shared queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub bytes: Vec<u8>,
    pub events: usize,
}

#[derive(Debug, Default)]
pub struct Forwarder {
    bytes: Vec<u8>,
    events: usize,
}

impl Forwarder {
    /// Encodes `rec` into the open block; returns the block when it is full.
    pub fn push(&mut self, rec: &Record) -> Result<Option<Block>, rmp_serde::encode::Error> {
        let before = self.bytes.len();
        if let Err(e) = rec.encode_into(&mut self.bytes) {
            self.bytes.truncate(before);
            return Err(e);
        }
        self.events += 1;
        Ok((self.events >= MAX_EVENTS || self.bytes.len() >= MAX_BYTES)
            .then(|| self.take())
            .flatten())
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
        let mut f = Forwarder::default();
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
        let mut f = Forwarder::default();
        let big = Record {
            request_body: crate::body::Body::Captured(vec![7; MAX_BYTES]),
            ..Record::default()
        };
        assert_eq!(f.push(&big).unwrap().unwrap().events, 1);
    }
}
