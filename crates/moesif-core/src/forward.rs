//! Records on their way from a filter to the singleton shipper, grouped into blocks so that
//! one queue message (one host call, one wake-up of the main thread) carries many of them.
//!
//! A block is a header, `[MAGIC, format, count: u32 LE, policy_len: u32 LE]`, the filter's
//! [`Policy`](crate::policy::Policy) (`policy_len` bytes), then `count` records. The format
//! version lets a filter rolled out over ECDS next to a singleton of another build find out
//! whether that singleton can read it (the singleton publishes [`READS`] in its heartbeat);
//! the count lets a reader account for every record of a block it cannot decode; the policy
//! makes the singleton apply the filter's masks and identity rules.

use crate::record::{Record, RecordRef};
use rmp_serde::decode::Error;

/// First byte of every block: not a byte any MessagePack record starts with here.
const MAGIC: u8 = 0xB7;
const HEADER_LEN: usize = 10;

/// The block format this build writes (3: header maps as the host serialized them). (The
/// `test-format-next` build pretends the format changed, to test rollouts of mixed builds.)
pub const FORMAT: u8 = if cfg!(feature = "test-format-next") {
    4
} else {
    3
};

/// The block formats this build reads.
pub const READS: &[u8] = if cfg!(feature = "test-format-next") {
    &[3, 4]
} else {
    &[3]
};

/// Most records in one queue message (the bench's floor shipper uses the same blocks).
pub const MAX_EVENTS: usize = 64;
/// A block this large is sent at once, however few records it holds (unless the queue's
/// bound asks for smaller blocks).
const MAX_BYTES: usize = 256 * 1024;

/// An encoded block ready for the shared queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub bytes: Vec<u8>,
    pub events: usize,
}

/// A block as read back: how many records its header declares, and those records.
#[derive(Debug)]
pub struct Opened<'a> {
    pub declared: u64,
    /// The encoded policy of the filter that wrote the block.
    pub policy: &'a [u8],
    records: &'a [u8],
}

/// Why a block's records cannot be read at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreadable {
    /// Not a block (too short, or no magic byte): its record count is unknown.
    Garbled,
    /// A format this build does not read; the header still says how many records it held.
    Format { format: u8, declared: u64 },
}

/// Reads a block's header.
pub fn open(bytes: &[u8]) -> Result<Opened<'_>, Unreadable> {
    let (header, rest) = bytes
        .split_at_checked(HEADER_LEN)
        .ok_or(Unreadable::Garbled)?;
    let [magic, format, c0, c1, c2, c3, p0, p1, p2, p3] = *header else {
        return Err(Unreadable::Garbled);
    };
    if magic != MAGIC {
        return Err(Unreadable::Garbled);
    }
    let declared = u64::from(u32::from_le_bytes([c0, c1, c2, c3]));
    if !READS.contains(&format) {
        return Err(Unreadable::Format { format, declared });
    }
    let policy_len = u32::from_le_bytes([p0, p1, p2, p3]) as usize;
    let Some((policy, records)) = rest.split_at_checked(policy_len) else {
        return Err(Unreadable::Format { format, declared });
    };
    Ok(Opened {
        declared,
        policy,
        records,
    })
}

impl<'a> Opened<'a> {
    /// The records, at most as many as declared; stops at the first that does not decode.
    pub fn records(&self) -> impl Iterator<Item = Result<RecordRef<'a>, Error>> {
        RecordRef::decode_all(self.records).take(usize::try_from(self.declared).unwrap_or(0))
    }

    /// [`Opened::records`] as rmp-serde reads them into owned records (`codec-crates` build).
    #[cfg(feature = "codec-crates")]
    pub fn owned_records(&self) -> impl Iterator<Item = Result<Record, Error>> + 'a {
        use serde::Deserialize;
        let mut rest = self.records;
        let mut failed = false;
        std::iter::from_fn(move || {
            if failed || rest.is_empty() {
                return None;
            }
            let rec = Record::deserialize(&mut rmp_serde::Deserializer::new(&mut rest));
            failed = rec.is_err();
            Some(rec)
        })
        .take(usize::try_from(self.declared).unwrap_or(0))
    }
}

#[derive(Debug)]
pub struct Forwarder {
    bytes: Vec<u8>,
    events: usize,
    max_bytes: usize,
    /// The encoded policy every block carries.
    policy: Vec<u8>,
}

impl Forwarder {
    /// Blocks stay well below `max_queue_bytes`, so a few always fit in the queue.
    pub fn new(max_queue_bytes: usize, policy: Vec<u8>) -> Self {
        Forwarder {
            bytes: Vec::new(),
            events: 0,
            max_bytes: (max_queue_bytes / 8).clamp(1, MAX_BYTES),
            policy,
        }
    }

    /// Encodes `rec` into the open block; returns the block when it is full.
    pub fn push(&mut self, rec: &Record) -> Result<Option<Block>, rmp_serde::encode::Error> {
        if self.bytes.is_empty() {
            let policy_len = u32::try_from(self.policy.len()).unwrap_or(0).to_le_bytes();
            self.bytes.extend_from_slice(&[MAGIC, FORMAT, 0, 0, 0, 0]);
            self.bytes.extend_from_slice(&policy_len);
            if policy_len != [0; 4] {
                self.bytes.extend_from_slice(&self.policy);
            }
        }
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
        let mut bytes = std::mem::take(&mut self.bytes);
        let count = u32::try_from(events).unwrap_or(u32::MAX).to_le_bytes();
        if let Some(slot) = bytes.get_mut(2..6) {
            slot.copy_from_slice(&count);
        }
        Some(Block { bytes, events })
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
        let mut f = Forwarder::new(16_000_000, b"{}".to_vec());
        let rec = Record {
            path: "/x".into(),
            ..Record::default()
        };
        for _ in 0..MAX_EVENTS - 1 {
            assert_eq!(f.push(&rec).unwrap(), None);
        }
        let block = f.push(&rec).unwrap().unwrap();
        assert_eq!(block.events, MAX_EVENTS);
        let opened = open(&block.bytes).unwrap();
        assert_eq!(opened.declared, MAX_EVENTS as u64);
        assert_eq!(opened.records().filter(Result::is_ok).count(), MAX_EVENTS);
        assert_eq!((f.events(), f.bytes()), (0, 0));
        assert_eq!(f.take(), None);
    }

    #[test]
    fn big_records_close_the_block_early() {
        let mut f = Forwarder::new(16_000_000, b"{}".to_vec());
        let big = Record {
            request_body: crate::body::Body::Captured(vec![7; MAX_BYTES]),
            ..Record::default()
        };
        assert_eq!(f.push(&big).unwrap().unwrap().events, 1);
        let mut small = Forwarder::new(100_000, Vec::new());
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

    #[test]
    fn headers_say_format_and_count_even_when_records_do_not_decode() {
        let mut f = Forwarder::new(16_000_000, b"{}".to_vec());
        f.push(&Record::default()).unwrap();
        f.push(&Record::default()).unwrap();
        let mut block = f.take().unwrap().bytes;
        assert_eq!(block[..HEADER_LEN], [MAGIC, FORMAT, 2, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(open(&block).unwrap().policy, b"{}");
        block.truncate(HEADER_LEN + 2 + 3);
        let opened = open(&block).unwrap();
        assert_eq!(opened.declared, 2);
        assert!(opened.records().next().unwrap().is_err());
        let mut other = block.clone();
        other[1] = 99;
        assert_eq!(
            open(&other).unwrap_err(),
            Unreadable::Format {
                format: 99,
                declared: 2
            }
        );
        assert_eq!(open(b"\x95\x01").unwrap_err(), Unreadable::Garbled);
        assert_eq!(open(b"").unwrap_err(), Unreadable::Garbled);
        assert_eq!(open(&[0; 12]).unwrap_err(), Unreadable::Garbled);
    }

    #[test]
    fn this_build_reads_what_it_writes() {
        assert!(READS.contains(&FORMAT));
    }
}
