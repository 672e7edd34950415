//! Logging through the host, and the panic hook. Both go through `host::log`: the SDK's logger
//! and panic hook unwrap the status of their own log call.

use crate::host;
use log::{Level, LevelFilter, Log, Metadata, Record};

struct HostLogger;

static LOGGER: HostLogger = HostLogger;

impl Log for HostLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let level = match record.level() {
                Level::Trace => 0,
                Level::Debug => 1,
                Level::Info => 2,
                Level::Warn => 3,
                Level::Error => 4,
            };
            host::log(level, &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Routes the `log` macros to Envoy at info level and up, and makes a panic log itself at
/// critical level, naming the plugin and what it costs, before the VM dies (Envoy then applies
/// the config's `failure_policy`): a panic is never silent.
pub fn init() {
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    std::panic::set_hook(Box::new(|info| {
        const CRITICAL: u32 = 5;
        host::log(
            CRITICAL,
            &format!(
                "moesif: panicked, this VM stops capturing (failure_policy decides what Envoy does next): {info}"
            ),
        );
    }));
}
