//! How many bytes sit in the shared queue, kept in shared data beside it. Envoy does not bound
//! the queue: a shipper that falls behind (e.g. large bodies at a high rate) would grow Envoy's
//! memory without limit. Filters reserve room before enqueueing; the shipper releases it.
//!
//! The count is exact under contention: an update that keeps losing the compare-and-swap race
//! is not applied blindly. A reservation that cannot be made is a full queue (the block is
//! shipped by the worker, counted); a release that cannot be made yet is kept and retried on
//! the next one or on the tick.

use crate::host;
use std::cell::Cell;

/// Compare-and-swap attempts per update. Each miss means another VM's update went through,
/// so a miss streak this long means the queue is hot, never that it is stuck.
const ATTEMPTS: usize = 64;

pub struct Occupancy {
    key: String,
    /// Bytes taken off the queue whose release has not gone through yet.
    unreleased: Cell<u64>,
}

impl Occupancy {
    pub fn new(queue_name: &str) -> Self {
        Occupancy {
            key: format!("moesif_queue_bytes.{queue_name}"),
            unreleased: Cell::new(0),
        }
    }

    /// Applies `f` to the count atomically; false if `f` declined (`None`) or the update could
    /// not be made (contention, host error), leaving the count unchanged.
    fn update(&self, f: impl Fn(u64) -> Option<u64>) -> bool {
        for _ in 0..ATTEMPTS {
            let (bytes, cas) = host::shared_data(&self.key);
            let current = bytes
                .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
                .map_or(0, u64::from_le_bytes);
            let Some(next) = f(current) else {
                return false;
            };
            match host::set_shared_data(&self.key, &next.to_le_bytes(), cas) {
                Ok(()) => return true,
                Err(s) if s.is_cas_mismatch() => continue,
                Err(_) => return false,
            }
        }
        false
    }

    /// Reserves `n` bytes if the queue stays within `max`; false means no room (or the count
    /// could not be updated): the caller ships the block itself.
    pub fn reserve(&self, n: u64, max: u64) -> bool {
        self.update(|current| current.checked_add(n).filter(|total| *total <= max))
    }

    /// Returns `n` bytes taken off the queue (or never put on it), with any earlier release
    /// that has not gone through yet.
    pub fn release(&self, n: u64) {
        let due = self.unreleased.get().saturating_add(n);
        let done = self.update(|current| Some(current.saturating_sub(due)));
        self.unreleased.set(if done { 0 } else { due });
    }

    /// Retries a pending release (from the tick).
    pub fn settle(&self) {
        if self.unreleased.get() > 0 {
            self.release(0);
        }
    }
}
