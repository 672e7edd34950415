//! The HTTP filter's root context: holds the config, routes records to the singleton shipper's
//! queue while that shipper is alive, and otherwise (no singleton configured, or its VM died)
//! batches and ships this worker's events itself.

use crate::capture::Capture;
use crate::delivery::Delivery;
use crate::host;
use crate::occupancy::Occupancy;
use moesif_core::config::Config;
use moesif_core::forward::Block;
use moesif_core::liveness::{self, Health};
use moesif_core::record::Record;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// State shared by the filter root and its HTTP contexts (same thread, so `Rc`).
pub struct Shared {
    pub config: Config,
    queue_vm_id: String,
    heartbeat_key: String,
    /// The shipper's queue while it is usable; `None` means ship locally.
    queue: Cell<Option<u32>>,
    /// The queue's size in bytes; only shared with the shipper when its heartbeat is visible
    /// (same vm_id), so only enforced then.
    occupancy: Occupancy,
    bounded: Cell<bool>,
    /// Set when Envoy retires this filter config (e.g. an ECDS update): nothing may be left
    /// waiting for a tick that will not come.
    closing: Cell<bool>,
    /// Filter counters, and the fallback shipper.
    delivery: RefCell<Delivery>,
}

impl Shared {
    /// Re-decides where records go; called at configure and on every tick, never per request.
    fn route(&self, now_ms: u64) {
        let beat = hostcalls::get_shared_data(&self.heartbeat_key)
            .ok()
            .and_then(|(b, _)| b);
        let health = liveness::health(beat.as_deref(), now_ms);
        let queue = match health {
            Health::Dead => None,
            Health::Alive | Health::Unknown => self.queue.get().or_else(|| {
                hostcalls::resolve_shared_queue(&self.queue_vm_id, &self.config.queue_name)
                    .ok()
                    .flatten()
            }),
        };
        match (self.queue.get(), queue) {
            (Some(_), None) => log::warn!(
                "moesif: singleton shipper not alive (heartbeat {health:?}); this worker ships its own events"
            ),
            (None, Some(_)) if health == Health::Alive => {
                log::info!("moesif: singleton shipper alive; sending events through its queue");
            }
            _ => {}
        }
        self.queue.set(queue);
        self.bounded.set(health == Health::Alive);
    }

    /// Hands one captured call to the shipper's queue (in blocks), or ships it from here.
    pub fn submit(&self, record: Record) {
        let Ok(mut d) = self.delivery.try_borrow_mut() else {
            return;
        };
        match self.queue.get() {
            Some(_) => {
                if let Some(block) = d.shipper().forward(&record) {
                    self.enqueue(&mut d, block);
                } else if self.closing.get() {
                    self.flush_block(&mut d);
                }
            }
            None => d.shipper().capture_locally(&record, host::now_ms()),
        }
    }

    /// Enqueues the open block, whatever its size (tick, retiring root).
    fn flush_block(&self, d: &mut Delivery) {
        if let Some(block) = d.shipper().take_block() {
            self.enqueue(d, block);
        }
    }

    /// Puts `block` on the queue if it has room, else (queue full, or no usable queue) ships
    /// it from here.
    fn enqueue(&self, d: &mut Delivery, block: Block) {
        let Some(queue) = self.queue.get() else {
            return d.shipper().enqueue_failed(&block, host::now_ms());
        };
        let len = block.bytes.len() as u64;
        let max = self.config.max_queue_bytes as u64;
        if self.bounded.get() && !self.occupancy.reserve(len, max) {
            return d.shipper().queue_full(&block, host::now_ms());
        }
        if hostcalls::enqueue_shared_queue(queue, Some(&block.bytes)).is_ok() {
            d.shipper().enqueued(&block);
        } else {
            if self.bounded.get() {
                self.occupancy.release(len);
            }
            self.queue.set(None);
            d.shipper().enqueue_failed(&block, host::now_ms());
        }
    }

    fn with_delivery(&self, f: impl FnOnce(&mut Delivery)) {
        if let Ok(mut d) = self.delivery.try_borrow_mut() {
            f(&mut d);
        }
    }
}

#[derive(Default)]
pub struct FilterRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for FilterRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        if let Some(shared) = &self.shared {
            shared.with_delivery(|d| d.on_response(token, body_size, host::now_ms()));
        }
    }

    /// Envoy retires this root (config update or shutdown). Records for the singleton are
    /// enqueued now; events this root ships itself keep it alive (`false`) until delivered.
    /// No dispatch here: that crashes Envoy 1.40 at shutdown.
    fn on_done(&mut self) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        shared.closing.set(true);
        let mut unsent = 0;
        shared.with_delivery(|d| {
            shared.flush_block(d);
            d.shipper().close_batch();
            unsent = d.unsent();
        });
        if unsent > 0 {
            log::warn!(
                "moesif: filter stopping with {unsent} events not yet delivered; they are delivered if only this config is being replaced, lost if Envoy is exiting (drain first)"
            );
        }
        unsent == 0
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let Some(config) = host::load_config(self.get_plugin_configuration(), "moesif") else {
            return false;
        };
        let queue_vm_id = config
            .queue_vm_id
            .clone()
            .or_else(|| host::string_property(&["plugin_vm_id"]))
            .unwrap_or_default();
        self.set_tick_period(Duration::from_millis(config.batch_max_wait.clamp(1, 100)));
        let shared = Shared {
            queue_vm_id,
            heartbeat_key: liveness::key(&config.queue_name),
            queue: Cell::new(None),
            occupancy: Occupancy::new(&config.queue_name),
            bounded: Cell::new(false),
            closing: Cell::new(false),
            delivery: RefCell::new(Delivery::new(config.clone())),
            config,
        };
        shared.route(host::now_ms());
        self.shared = Some(Rc::new(shared));
        true
    }

    fn on_tick(&mut self) {
        if let Some(shared) = &self.shared {
            let now = host::now_ms();
            shared.route(now);
            shared.with_delivery(|d| {
                shared.flush_block(d);
                d.dispatch_due(now);
                d.sync_metrics(now);
                if shared.closing.get() && d.unsent() == 0 {
                    let _ = hostcalls::done();
                }
            });
        }
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(Capture::new(shared)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
