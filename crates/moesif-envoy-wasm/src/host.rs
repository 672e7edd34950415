//! Small typed wrappers over host calls.

use proxy_wasm::hostcalls;
use std::time::UNIX_EPOCH;

pub fn bytes_property(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

pub fn string_property(path: &[&str]) -> Option<String> {
    bytes_property(path).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Envoy encodes integer properties (times, durations, codes) as 8 little-endian bytes.
pub fn i64_property(path: &[&str]) -> Option<i64> {
    let b = bytes_property(path)?;
    Some(i64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seed for transaction ids: host entropy, else the clock.
pub fn seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Header map as strings; values that are not UTF-8 are kept lossily instead of panicking
/// (the SDK's string variant unwraps).
pub fn lossy(map: Vec<(String, Vec<u8>)>) -> Vec<(String, String)> {
    map.into_iter()
        .map(|(k, v)| {
            let v = String::from_utf8(v)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
            (k, v)
        })
        .collect()
}

/// Parses the plugin configuration, logging warnings; `None` (after logging the error, which
/// names the key) rejects the plugin.
pub fn load_config(bytes: Option<Vec<u8>>, who: &str) -> Option<moesif_core::config::Config> {
    match moesif_core::config::Config::parse(&bytes.unwrap_or_default()) {
        Ok(parsed) => {
            for w in parsed.warnings {
                log::warn!("{who}: {w}");
            }
            Some(parsed.config)
        }
        Err(e) => {
            log::error!("{who}: {e}");
            None
        }
    }
}
