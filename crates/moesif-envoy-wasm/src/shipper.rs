//! The singleton shipper root (root_id `moesif_shipper`, `envoy.bootstrap.wasm` with
//! `singleton: true`): drains the queue every worker's filter writes to and owns all delivery.

use crate::delivery::Delivery;
use crate::host;
use moesif_core::config::Config;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext};
use std::time::Duration;

#[derive(Default)]
pub struct ShipperRoot {
    queue: Option<u32>,
    delivery: Option<Delivery>,
}

impl ShipperRoot {
    fn drain(&mut self) {
        let (Some(queue), Some(delivery)) = (self.queue, self.delivery.as_mut()) else {
            return;
        };
        let now = host::now_ms();
        while let Ok(Some(bytes)) = hostcalls::dequeue_shared_queue(queue) {
            delivery.shipper().accept_encoded(&bytes, now);
            delivery.dispatch_due(now);
        }
        delivery.dispatch_due(now);
    }
}

impl Context for ShipperRoot {
    fn on_http_call_response(&mut self, token: u32, _: usize, _: usize, _: usize) {
        if let Some(d) = self.delivery.as_mut() {
            d.on_response(token, host::now_ms());
        }
    }
}

impl RootContext for ShipperRoot {
    fn on_configure(&mut self, _: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        let config = match Config::parse(&bytes) {
            Ok(parsed) => {
                for w in parsed.warnings {
                    log::warn!("moesif shipper: {w}");
                }
                parsed.config
            }
            Err(e) => {
                log::error!("moesif shipper: {e}");
                return false;
            }
        };
        match hostcalls::register_shared_queue(&config.queue_name) {
            Ok(q) => self.queue = Some(q),
            Err(e) => {
                log::error!(
                    "moesif shipper: cannot register queue `{}`: {e:?}",
                    config.queue_name
                );
                return false;
            }
        }
        self.set_tick_period(Duration::from_millis(config.batch_max_wait.clamp(1, 100)));
        self.delivery = Some(Delivery::new(config));
        true
    }

    fn on_queue_ready(&mut self, _: u32) {
        self.drain();
    }

    fn on_tick(&mut self) {
        self.drain();
        if let Some(d) = self.delivery.as_mut() {
            d.sync_metrics();
        }
    }
}
