//! Envoy counters for `moesif_core::stats`, pushed in bulk from the tick instead of per request.

use moesif_core::stats::{Counter, Counts};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub struct Metrics {
    ids: Vec<Option<u32>>,
    synced: Counts,
}

impl Metrics {
    pub fn define() -> Self {
        let ids = Counter::ALL
            .iter()
            .map(|c| hostcalls::define_metric(MetricType::Counter, c.name()).ok())
            .collect();
        Metrics {
            ids,
            synced: Counts::default(),
        }
    }

    /// Adds to the host's counters whatever grew since the last sync.
    pub fn sync(&mut self, counts: &Counts) {
        for (c, delta) in counts.since(&self.synced) {
            if let Some(Some(id)) = self.ids.get(c as usize) {
                let _ = hostcalls::increment_metric(*id, delta as i64);
            }
        }
        self.synced = *counts;
    }
}
