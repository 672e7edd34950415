//! The singleton shipper's heartbeat: filters read it to notice a shipper that died (its VM
//! crashed) and ship by themselves until it is back, and to learn which queue block formats
//! the running shipper reads (a filter rolled out over ECDS may be newer or older than it).
//!
//! Layout: the time of the beat (u64 LE, ms), then one byte per block format read. A beat of
//! only 8 bytes comes from a shipper that predates versioned blocks: it reads none of them.

/// A heartbeat older than this means the shipper is gone. The shipper beats on every tick
/// (at most 100 ms apart), so only a dead or wedged main thread misses 3 s.
pub const STALE_AFTER_MS: u64 = 3000;

/// Shared-data key the shipper beats on, per queue.
pub fn key(queue_name: &str) -> String {
    format!("moesif_shipper_heartbeat.{queue_name}")
}

pub fn encode(now_ms: u64, reads: &[u8]) -> Vec<u8> {
    let mut beat = now_ms.to_le_bytes().to_vec();
    beat.extend_from_slice(reads);
    beat
}

/// Whether the shipper that beat `heartbeat` reads blocks of `format`.
pub fn reads(heartbeat: Option<&[u8]>, format: u8) -> bool {
    heartbeat
        .and_then(|b| b.get(8..))
        .is_some_and(|formats| formats.contains(&format))
}

/// What a filter knows about the shipper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Beating recently: the queue is drained.
    Alive,
    /// Beat once, then stopped: do not trust the queue.
    Dead,
    /// Never seen (no singleton, or a different vm_id): trust queue resolution alone.
    Unknown,
}

pub fn health(heartbeat: Option<&[u8]>, now_ms: u64) -> Health {
    let Some(beat) = heartbeat
        .and_then(|b| b.get(..8))
        .and_then(|b| b.try_into().ok())
    else {
        return Health::Unknown;
    };
    if now_ms.saturating_sub(u64::from_le_bytes(beat)) > STALE_AFTER_MS {
        Health::Dead
    } else {
        Health::Alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_stale_and_missing_heartbeats() {
        let beat = encode(10_000, &[1]);
        assert_eq!(health(Some(&beat), 10_000), Health::Alive);
        assert_eq!(health(Some(&beat), 13_000), Health::Alive);
        assert_eq!(health(Some(&beat), 13_001), Health::Dead);
        assert_eq!(
            health(Some(&beat), 9_000),
            Health::Alive,
            "clock skew is not death"
        );
        assert_eq!(health(None, 10_000), Health::Unknown);
        assert_eq!(health(Some(b"short"), 10_000), Health::Unknown);
    }

    #[test]
    fn formats_read_travel_with_the_beat() {
        let beat = encode(10_000, &[1, 2]);
        assert!(reads(Some(&beat), 1));
        assert!(reads(Some(&beat), 2));
        assert!(!reads(Some(&beat), 3));
        assert!(
            !reads(Some(&10_000u64.to_le_bytes()), 1),
            "an unversioned shipper reads no block format"
        );
        assert!(!reads(None, 1));
    }
}
