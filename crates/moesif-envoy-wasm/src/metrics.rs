//! Envoy metrics for `moesif_core::stats`, pushed in bulk from the tick instead of per request.
//! Gauges are published as increments so that the values of all VMs add up.

use moesif_core::stats::{Counter, Counts, Gauge, Gauges};
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub struct Metrics {
    counters: Vec<Option<u32>>,
    gauges: Vec<Option<u32>>,
    synced_counts: Counts,
    synced_gauges: Gauges,
}

impl Metrics {
    pub fn define() -> Self {
        let define = |kind, name| hostcalls::define_metric(kind, name).ok();
        Metrics {
            counters: Counter::ALL
                .iter()
                .map(|c| define(MetricType::Counter, c.name()))
                .collect(),
            gauges: Gauge::ALL
                .iter()
                .map(|g| define(MetricType::Gauge, g.name()))
                .collect(),
            synced_counts: Counts::default(),
            synced_gauges: Gauges::default(),
        }
    }

    /// Adds to the host's metrics whatever changed since the last sync.
    pub fn sync(&mut self, counts: &Counts, gauges: &Gauges) {
        for (c, delta) in counts.since(&self.synced_counts) {
            if let Some(Some(id)) = self.counters.get(c as usize) {
                let _ = hostcalls::increment_metric(*id, delta as i64);
            }
        }
        for (g, delta) in gauges.since(&self.synced_gauges) {
            if let Some(Some(id)) = self.gauges.get(g as usize) {
                let _ = hostcalls::increment_metric(*id, delta);
            }
        }
        self.synced_counts = *counts;
        self.synced_gauges = *gauges;
    }
}
