//! The HTTP filter's root context: loads the config, creates a `Capture` per request, and
//! drives the shared state (`shared.rs`) from its tick: routing, the open block, and, when the
//! worker ships by itself, batches and retries.

use crate::capture::Capture;
use crate::host;
use crate::shared::Shared;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

/// A retired root's timer would otherwise fire every 100 ms for the life of the VM: Envoy 1.40
/// keeps it after the root is gone, and every config reload would add one.
fn stop_ticking() {
    host::set_tick_period_ms(0);
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
        let unsent = shared.close();
        if unsent > 0 {
            log::warn!(
                "moesif: filter stopping with {unsent} events not yet delivered; they are delivered if only this config is being replaced, lost if Envoy is exiting (drain first)"
            );
            return false;
        }
        stop_ticking();
        true
    }
}

impl RootContext for FilterRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let Some(config) = host::load_config("moesif") else {
            return false;
        };
        let queue_vm_id = config
            .queue_vm_id
            .clone()
            .or_else(|| host::string_property("plugin_vm_id"))
            .unwrap_or_default();
        host::set_tick_period_ms(config.batch_max_wait.clamp(1, 100));
        let shared = Shared::new(config, queue_vm_id);
        shared.reroute();
        self.shared = Some(Rc::new(shared));
        true
    }

    fn on_tick(&mut self) {
        if let Some(shared) = &self.shared {
            let unsent = shared.tick();
            if shared.is_closing() && unsent == 0 {
                stop_ticking();
                host::done();
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
