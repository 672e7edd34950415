//! How many bytes sit in the shared queue, kept in shared data beside it. Envoy does not bound
//! the queue: a shipper that falls behind (e.g. large bodies at a high rate) would grow Envoy's
//! memory without limit. Filters reserve room before enqueueing; the shipper releases it.

use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// Compare-and-swap attempts before giving up on exact accounting for one update.
const ATTEMPTS: usize = 16;

pub struct Occupancy {
    key: String,
}

impl Occupancy {
    pub fn new(queue_name: &str) -> Self {
        Occupancy {
            key: format!("moesif_queue_bytes.{queue_name}"),
        }
    }

    fn read(&self) -> (u64, Option<u32>) {
        let (bytes, cas) = hostcalls::get_shared_data(&self.key).unwrap_or((None, None));
        let value = bytes
            .and_then(|b| b.get(..8).and_then(|b| b.try_into().ok()))
            .map_or(0, u64::from_le_bytes);
        (value, cas)
    }

    /// Moves the count by `f`; `None` from `f` leaves it unchanged and returns false.
    fn update(&self, f: impl Fn(u64) -> Option<u64>) -> bool {
        for _ in 0..ATTEMPTS {
            let (current, cas) = self.read();
            let Some(next) = f(current) else {
                return false;
            };
            match hostcalls::set_shared_data(&self.key, Some(&next.to_le_bytes()), cas) {
                Err(Status::CasMismatch) => continue,
                _ => return true,
            }
        }
        // Heavily contended: let the record through rather than lose it.
        true
    }

    /// Reserves `n` bytes if the queue stays within `max`; false means it is full.
    pub fn reserve(&self, n: u64, max: u64) -> bool {
        self.update(|current| (current.saturating_add(n) <= max).then(|| current + n))
    }

    /// Returns `n` bytes taken off the queue (or never put on it).
    pub fn release(&self, n: u64) {
        self.update(|current| Some(current.saturating_sub(n)));
    }

    /// The shipper starts from an empty queue.
    pub fn reset(&self) {
        let _ = hostcalls::set_shared_data(&self.key, Some(&0u64.to_le_bytes()), None);
    }
}
