//! proxy-wasm glue: adapts Envoy host calls to `moesif-core`. One module, two roots:
//! the HTTP filter (any root_id but the shipper's) and the singleton shipper.

mod capture;
mod delivery;
mod filter;
mod host;
mod logging;
mod metrics;
mod occupancy;
mod properties;
mod remote;
mod shared;
mod shipper;

use proxy_wasm::traits::RootContext;

/// root_id of the singleton shipper loaded through `envoy.bootstrap.wasm`.
const SHIPPER_ROOT_ID: &str = "moesif_shipper";

proxy_wasm::main! {{
    logging::init();
    // The SDK does not pass the root_id to the factory, so ask the host.
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        if host::string_property("plugin_root_id").as_deref() == Some(SHIPPER_ROOT_ID) {
            Box::new(shipper::ShipperRoot::default())
        } else {
            Box::new(filter::FilterRoot::default())
        }
    });
}}
