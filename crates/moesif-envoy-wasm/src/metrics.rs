//! Envoy metrics for `moesif_core::stats`, pushed in bulk from the tick instead of per request.
//! Gauges are published as increments so that the values of all VMs and roots add up.
//!
//! Metrics are defined once per VM, not per root context: Envoy keeps every definition for the
//! VM's lifetime, and a filter config reload (ECDS; Istio pushes often) creates a new root in
//! the same VM. Defining them anew per root grew Envoy's memory on every reload.

use crate::host::{self, MetricKind};
use moesif_core::stats::{Counter, Counts, Gauge, Gauges};
use std::sync::OnceLock;

struct Ids {
    counters: Vec<Option<u32>>,
    gauges: Vec<Option<u32>>,
}

fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| Ids {
        counters: Counter::ALL
            .iter()
            .map(|c| host::define_metric(MetricKind::Counter, c.name()))
            .collect(),
        gauges: Gauge::ALL
            .iter()
            .map(|g| host::define_metric(MetricKind::Gauge, g.name()))
            .collect(),
    })
}

/// What one root has published so far.
pub struct Metrics {
    synced_counts: Counts,
    synced_gauges: Gauges,
}

impl Metrics {
    /// Defines the VM's metrics if no root did yet, so that every metric shows from the start.
    pub fn new() -> Self {
        ids();
        Metrics {
            synced_counts: Counts::default(),
            synced_gauges: Gauges::default(),
        }
    }

    /// Adds to the host's metrics whatever changed since the last sync.
    pub fn sync(&mut self, counts: &Counts, gauges: &Gauges) {
        let ids = ids();
        for (c, delta) in counts.since(&self.synced_counts) {
            if let Some(Some(id)) = ids.counters.get(c as usize) {
                host::increment_metric(*id, i64::try_from(delta).unwrap_or(i64::MAX));
            }
        }
        for (g, delta) in gauges.since(&self.synced_gauges) {
            if let Some(Some(id)) = ids.gauges.get(g as usize) {
                host::increment_metric(*id, delta);
            }
        }
        self.synced_counts = *counts;
        self.synced_gauges = *gauges;
    }
}
