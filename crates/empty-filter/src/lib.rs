//! The cheapest possible proxy-wasm HTTP filter: every callback keeps the SDK's default
//! (continue, no host call). `cargo xtask bench` runs it as config (e) to show what Envoy's
//! wasm runtime costs before a plugin does any work.
//!
//! With the `tick` feature (a separate build, `e2e::empty_filter_tick_wasm_path()`), its root
//! also ticks every 100 ms, doing nothing, and stops ticking when retired, as a plugin with
//! periodic work should: the floor of such a plugin in the reload memory test. Envoy keeps the
//! timer of every root that ever ticked, retired or not, so each reload costs it more.
//!
//! With the `calls` feature (the bench's `(e2)`), each request makes the host calls the plugin's
//! capture makes, and drops what they return: the floor of any plugin that captures the call.
//! Like the plugin, it reads the `on_log` properties with one CEL evaluation where Envoy has
//! CEL (the expression is the plugin's, `moesif_core::log_facts::EXPRESSION`).
//!
//! With the `ship` feature (the bench's `(e3)`), it also ships what those calls return the way
//! the plugin does, through a queue and a singleton, with none of the plugin's own work
//! (`ship.rs`): the floor of a plugin that captures and ships.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        #[cfg(feature = "ship")]
        #[allow(clippy::disallowed_methods)] // see ship.rs
        if proxy_wasm::hostcalls::get_property(vec!["plugin_root_id"]).ok().flatten().as_deref()
            == Some(b"moesif_shipper".as_slice())
        {
            return Box::new(ship::FloorShipper::default());
        }
        Box::new(EmptyRoot)
    });
}}

struct EmptyRoot;

#[cfg(not(feature = "tick"))]
impl Context for EmptyRoot {}

#[cfg(feature = "tick")]
impl Context for EmptyRoot {
    fn on_done(&mut self) -> bool {
        let _ = proxy_wasm::hostcalls::set_tick_period(std::time::Duration::ZERO);
        true
    }
}

impl RootContext for EmptyRoot {
    #[cfg(feature = "tick")]
    fn on_configure(&mut self, _: usize) -> bool {
        let _ = proxy_wasm::hostcalls::set_tick_period(std::time::Duration::from_millis(100));
        true
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(EmptyFilter))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct EmptyFilter;

impl Context for EmptyFilter {}

#[cfg(not(feature = "calls"))]
impl HttpContext for EmptyFilter {}

#[cfg(feature = "calls")]
mod calls;
#[cfg(feature = "ship")]
mod ship;
