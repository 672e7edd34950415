//! Every host call the plugin makes, as functions that cannot panic.
//!
//! proxy-wasm 0.2.5's wrappers panic on any status they do not expect, and those that return
//! `String` (header maps, header values) unwrap `String::from_utf8`: a collector answering with
//! a non-UTF-8 `Retry-After` killed the singleton that way. So the plugin imports the ABI
//! functions itself: statuses are plain numbers (never transmuted into the SDK's enum), bytes
//! from outside are decoded lossily, and every failure is a value. The one SDK call left is
//! `dispatch_http_call` (see `delivery.rs`): its token must be registered with the SDK's
//! dispatcher for the answer to reach the right context, and it panics only on statuses Envoy
//! does not return for it.

use moesif_core::pairs::{self, RawHeaders};
use std::ptr::null_mut;

/// Header map and buffer kinds of the proxy-wasm ABI.
#[derive(Clone, Copy)]
pub enum Map {
    Request = 0,
    Response = 2,
    ResponseTrailers = 3,
    CallResponse = 6,
}

#[derive(Clone, Copy)]
pub enum Buffer {
    RequestBody = 0,
    ResponseBody = 1,
    CallResponseBody = 4,
    PluginConfiguration = 7,
}

const OK: u32 = 0;
const CAS_MISMATCH: u32 = 8;

/// A host status other than Ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

impl Status {
    pub fn is_cas_mismatch(self) -> bool {
        self.0 == CAS_MISMATCH
    }
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_register_shared_queue(
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_resolve_shared_queue(
        vm_id_data: *const u8,
        vm_id_size: usize,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_dequeue_shared_queue(
        queue_id: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_done() -> u32;
    fn proxy_call_foreign_function(
        name_data: *const u8,
        name_size: usize,
        argument_data: *const u8,
        argument_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

fn status(code: u32) -> Result<(), Status> {
    if code == OK {
        Ok(())
    } else {
        Err(Status(code))
    }
}

/// Takes ownership of bytes the host allocated through `proxy_on_memory_allocate` (the SDK's
/// allocator: a boxed slice of exactly `size` bytes).
///
/// # Safety
/// `data` is null or was returned by the host together with `size` for this call.
unsafe fn owned(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    (!data.is_null()).then(|| Vec::from_raw_parts(data, size, size))
}

/// Calls a host function that returns bytes; `Ok(None)` when it has none (NotFound, Empty).
fn bytes_call(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> u32,
) -> Result<Option<Vec<u8>>, Status> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let code = call(&mut data, &mut size);
    // SAFETY: the host filled `data`/`size` for this call (or left them null/0).
    let bytes = unsafe { owned(data, size) };
    match code {
        OK => Ok(bytes),
        // NotFound, Empty: nothing there.
        1 | 7 => Ok(None),
        code => Err(Status(code)),
    }
}

pub fn log(level: u32, message: &str) {
    // SAFETY: pointer and length of a live str.
    unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub fn now_ms() -> u64 {
    let mut ns: u64 = 0;
    // SAFETY: writes one u64.
    match unsafe { proxy_get_current_time_nanoseconds(&mut ns) } {
        OK => ns / 1_000_000,
        _ => 0,
    }
}

pub fn set_tick_period_ms(ms: u64) {
    // SAFETY: plain integer argument.
    unsafe { proxy_set_tick_period_milliseconds(u32::try_from(ms).unwrap_or(u32::MAX)) };
}

pub fn buffer(kind: Buffer, start: usize, max: usize) -> Option<Vec<u8>> {
    // SAFETY: out-pointers to locals.
    bytes_call(|d, s| unsafe { proxy_get_buffer_bytes(kind as u32, start, max, d, s) })
        .ok()
        .flatten()
}

/// A header map as the host serialized it (lossily re-encoded only if not UTF-8).
pub fn header_map(kind: Map) -> RawHeaders {
    // SAFETY: out-pointers to locals.
    bytes_call(|d, s| unsafe { proxy_get_header_map_pairs(kind as u32, d, s) })
        .ok()
        .flatten()
        .map(RawHeaders::from_host)
        .unwrap_or_default()
}

/// One header's value, decoded lossily.
pub fn header(kind: Map, name: &str) -> Option<String> {
    // SAFETY: pointer and length of a live str; out-pointers to locals.
    let value = bytes_call(|d, s| unsafe {
        proxy_get_header_map_value(kind as u32, name.as_ptr(), name.len(), d, s)
    });
    match value {
        Ok(Some(b)) => Some(pairs::lossy_owned(b)),
        // Present but empty: the host returns no buffer.
        Ok(None) => None,
        Err(_) => None,
    }
}

/// A property by its path as the ABI takes it: the segments joined by NUL (`"request\0time"`),
/// written so in the source, so that no call joins them at run time.
pub fn bytes_property(path: &str) -> Option<Vec<u8>> {
    // SAFETY: pointer and length of a live str; out-pointers to locals.
    bytes_call(|d, s| unsafe { proxy_get_property(path.as_ptr(), path.len(), d, s) })
        .ok()
        .flatten()
}

pub fn string_property(path: &str) -> Option<String> {
    bytes_property(path).map(pairs::lossy_owned)
}

/// Envoy encodes integer properties (times, durations, codes) as 8 little-endian bytes.
pub fn i64_property(path: &str) -> Option<i64> {
    moesif_core::log_facts::i64_le(&bytes_property(path)?)
}

/// Calls the host's function `name` outside the ABI (Envoy's `expr_create`, `expr_evaluate`).
pub fn foreign(name: &str, argument: &[u8]) -> Result<Option<Vec<u8>>, Status> {
    // SAFETY: pointers and lengths of a live str and slice; out-pointers to locals.
    bytes_call(|d, s| unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            argument.as_ptr(),
            argument.len(),
            d,
            s,
        )
    })
}

/// A shared-data value and its compare-and-swap token (`None`s when absent).
pub fn shared_data(key: &str) -> (Option<Vec<u8>>, Option<u32>) {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: pointer and length of a live str; out-pointers to locals.
    let code =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    // SAFETY: filled by the host for this call.
    let bytes = unsafe { owned(data, size) };
    match code {
        OK => (bytes, (cas != 0).then_some(cas)),
        _ => (None, None),
    }
}

pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), Status> {
    // SAFETY: pointers and lengths of live slices.
    status(unsafe {
        proxy_set_shared_data(
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
            cas.unwrap_or(0),
        )
    })
}

pub fn register_queue(name: &str) -> Result<u32, Status> {
    let mut id = 0;
    // SAFETY: pointer and length of a live str; out-pointer to a local.
    status(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// The queue `name` registered by a VM with `vm_id`, if there is one yet.
pub fn resolve_queue(vm_id: &str, name: &str) -> Option<u32> {
    let mut id = 0;
    // SAFETY: pointers and lengths of live strs; out-pointer to a local.
    let code = unsafe {
        proxy_resolve_shared_queue(
            vm_id.as_ptr(),
            vm_id.len(),
            name.as_ptr(),
            name.len(),
            &mut id,
        )
    };
    (code == OK).then_some(id)
}

pub fn enqueue(queue: u32, bytes: &[u8]) -> Result<(), Status> {
    // SAFETY: pointer and length of a live slice.
    status(unsafe { proxy_enqueue_shared_queue(queue, bytes.as_ptr(), bytes.len()) })
}

/// The next message, `None` when the queue is empty or gone.
pub fn dequeue(queue: u32) -> Option<Vec<u8>> {
    // SAFETY: out-pointers to locals.
    bytes_call(|d, s| unsafe { proxy_dequeue_shared_queue(queue, d, s) })
        .ok()
        .flatten()
}

pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
}

pub fn define_metric(kind: MetricKind, name: &str) -> Option<u32> {
    let mut id = 0;
    // SAFETY: pointer and length of a live str; out-pointer to a local.
    let code = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    (code == OK).then_some(id)
}

pub fn increment_metric(id: u32, delta: i64) {
    // SAFETY: plain integer arguments.
    unsafe { proxy_increment_metric(id, delta) };
}

/// Answers the current request from Envoy (governance): the upstream never sees it.
pub fn send_local_response(status: u16, headers: &[(String, String)], body: &[u8]) {
    let pairs: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    let map = pairs::encode(&pairs);
    let details = "moesif_governance";
    // SAFETY: pointers and lengths of live slices.
    unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    };
}

/// Adds a header to a map of the current request or response.
pub fn add_header(kind: Map, name: &str, value: &str) {
    // SAFETY: pointers and lengths of live strs.
    unsafe {
        proxy_add_header_map_value(
            kind as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    };
}

/// Tells Envoy a root context that asked to stay alive (`on_done` returned false) is finished.
pub fn done() {
    // SAFETY: no arguments.
    unsafe { proxy_done() };
}

/// Seed for transaction ids: host entropy, else the clock.
pub fn seed() -> u64 {
    getrandom::u64().unwrap_or_else(|_| now_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Parses the plugin configuration, logging warnings; `None` (after logging the error, which
/// names the key) rejects the plugin.
pub fn load_config(who: &str) -> Option<moesif_core::config::Config> {
    let bytes = buffer(Buffer::PluginConfiguration, 0, usize::MAX).unwrap_or_default();
    match moesif_core::config::Config::parse(&bytes) {
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
