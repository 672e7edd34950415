//! The HTTP filter's root context: holds the config, finds the shipper's queue, and in fallback
//! mode (no singleton shipper reachable) batches and ships this worker's events itself.

use crate::capture::Capture;
use crate::delivery::Delivery;
use crate::host;
use moesif_core::config::Config;
use moesif_core::record::Record;
use moesif_core::stats::Counter;
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
    queue: Cell<Option<u32>>,
    /// Filter counters, and the fallback shipper when the queue is unavailable.
    delivery: RefCell<Delivery>,
}

impl Shared {
    /// The shipper's queue, resolved lazily: filters may configure before the shipper registers.
    fn queue(&self) -> Option<u32> {
        if self.queue.get().is_none() {
            let q = hostcalls::resolve_shared_queue(&self.queue_vm_id, &self.config.queue_name)
                .ok()
                .flatten();
            self.queue.set(q);
        }
        self.queue.get()
    }

    /// Hands one captured call to the shipper's queue, or to the local fallback shipper.
    pub fn submit(&self, record: Record) {
        let Ok(mut delivery) = self.delivery.try_borrow_mut() else {
            return;
        };
        let shipper = delivery.shipper();
        shipper.count(Counter::EventsCaptured, 1);
        if let Some(queue) = self.queue() {
            match record.encode() {
                Ok(bytes) => match hostcalls::enqueue_shared_queue(queue, Some(&bytes)) {
                    Ok(()) => {
                        shipper.count(Counter::EventsEnqueued, 1);
                        return;
                    }
                    Err(_) => {
                        self.queue.set(None);
                        shipper.count(Counter::EventsEnqueueFailed, 1);
                    }
                },
                Err(_) => {
                    shipper.count(Counter::EventsDroppedEncodeError, 1);
                    return;
                }
            }
        }
        shipper.accept(&record, host::now_ms());
    }
}

#[derive(Default)]
pub struct FilterRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for FilterRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, _: usize, _: usize) {
        if let Some(shared) = &self.shared {
            if let Ok(mut d) = shared.delivery.try_borrow_mut() {
                d.on_response(token, host::now_ms());
            }
        }
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(parsed) => {
                for w in parsed.warnings {
                    log::warn!("moesif: {w}");
                }
                parsed.config
            }
            Err(e) => {
                log::error!("moesif: {e}");
                return false;
            }
        };
        let queue_vm_id = config
            .queue_vm_id
            .clone()
            .or_else(|| host::string_property(&["plugin_vm_id"]))
            .unwrap_or_default();
        self.set_tick_period(Duration::from_millis(config.batch_max_wait.clamp(1, 100)));
        let shared = Shared {
            queue_vm_id,
            queue: Cell::new(None),
            delivery: RefCell::new(Delivery::new(config.clone())),
            config,
        };
        shared.queue();
        self.shared = Some(Rc::new(shared));
        true
    }

    fn on_tick(&mut self) {
        if let Some(shared) = &self.shared {
            if let Ok(mut d) = shared.delivery.try_borrow_mut() {
                d.dispatch_due(host::now_ms());
                d.sync_metrics();
            }
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
