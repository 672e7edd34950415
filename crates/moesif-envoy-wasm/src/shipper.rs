//! The singleton shipper root (root_id `moesif_shipper`, `envoy.bootstrap.wasm` with
//! `singleton: true`): drains the queue every worker's filter writes to, owns all delivery, and
//! publishes a heartbeat so filters notice if it dies.

use crate::delivery::Delivery;
use crate::host;
use crate::occupancy::Occupancy;
use moesif_core::forward::READS;
use moesif_core::liveness;
use proxy_wasm::traits::{Context, RootContext};

#[derive(Default)]
pub struct ShipperRoot {
    queue: Option<u32>,
    heartbeat_key: String,
    occupancy: Option<Occupancy>,
    delivery: Option<Delivery>,
    #[cfg(feature = "test-faults")]
    crash_at_ms: Option<u64>,
}

impl ShipperRoot {
    /// Takes records off the queue until it is empty or the shipper is backlogged. A backlog
    /// stays on the queue (bounded by `max_queue_bytes`; filters ship what does not fit), so
    /// this loop ends even while workers refill the queue, letting call responses through.
    fn drain(&mut self, now_ms: u64) {
        let (Some(queue), Some(delivery)) = (self.queue, self.delivery.as_mut()) else {
            return;
        };
        while !delivery.shipper().is_backlogged() {
            let Some(bytes) = host::dequeue(queue) else {
                break;
            };
            if let Some(o) = &self.occupancy {
                o.release(bytes.len() as u64);
            }
            if cfg!(feature = "stage-enqueue") {
                continue;
            }
            delivery.shipper().accept_dequeued(&bytes, now_ms);
            delivery.dispatch_due(now_ms);
        }
        delivery.dispatch_due(now_ms);
    }

    /// Tells filters this shipper is alive and which block formats it reads.
    fn beat(&self, now_ms: u64) {
        let _ = host::set_shared_data(&self.heartbeat_key, &liveness::encode(now_ms, READS), None);
    }
}

impl Context for ShipperRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        let now = host::now_ms();
        if let Some(d) = self.delivery.as_mut() {
            d.on_response(token, body_size, now);
        }
        self.drain(now);
    }

    fn on_done(&mut self) -> bool {
        // No dispatch here: it crashes Envoy 1.40 at shutdown. Drain gracefully before stopping.
        if let Some(unsent) = self
            .delivery
            .as_ref()
            .map(Delivery::unsent)
            .filter(|n| *n > 0)
        {
            log::warn!("moesif shipper: stopping with {unsent} events not yet delivered");
        }
        true
    }
}

impl RootContext for ShipperRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let Some(config) = host::load_config("moesif shipper") else {
            return false;
        };
        match host::register_queue(&config.queue_name) {
            Ok(q) => self.queue = Some(q),
            Err(e) => {
                log::error!(
                    "moesif shipper: cannot register queue `{}`: {e:?}",
                    config.queue_name
                );
                return false;
            }
        }
        let now = host::now_ms();
        self.heartbeat_key = liveness::key(&config.queue_name);
        // No reset of the count: it starts at 0 with the process, and a queue this root takes
        // over (same vm_id and name) keeps its records, whose bytes are still reserved in it.
        self.occupancy = Some(Occupancy::new(&config.queue_name));
        self.beat(now);
        #[cfg(feature = "test-faults")]
        {
            self.crash_at_ms = config.test_crash_after_ms.map(|ms| now + ms);
        }
        host::set_tick_period_ms(config.batch_max_wait.clamp(1, 100));
        self.delivery = Some(Delivery::new(config));
        true
    }

    fn on_queue_ready(&mut self, _: u32) {
        self.drain(host::now_ms());
    }

    fn on_tick(&mut self) {
        let now = host::now_ms();
        #[cfg(feature = "test-faults")]
        if self.crash_at_ms.is_some_and(|at| now >= at) {
            // A panic, like a real bug would cause: the hook must log it before the VM dies.
            #[allow(clippy::panic)]
            {
                panic!("test fault: test_crash_after_ms elapsed");
            }
        }
        self.beat(now);
        if let Some(o) = &self.occupancy {
            o.settle();
        }
        self.drain(now);
        if let Some(d) = self.delivery.as_mut() {
            d.fetch_due(now);
            d.sync_metrics(now);
        }
    }
}
