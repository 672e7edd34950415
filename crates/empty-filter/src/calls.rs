//! The `calls` feature: each request makes the host calls the plugin's capture makes. What
//! they return is dropped, or with `ship` kept for the floor shipper (`ship.rs`).

use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_call_foreign_function(
        name: *const u8,
        name_size: usize,
        argument: *const u8,
        argument_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
}

const CREATE: &str = "expr_create";
const EVALUATE: &str = "expr_evaluate";

thread_local! {
    /// The plugin's expression, created on first use (`None` inside: Envoy has no CEL).
    static EXPRESSION: std::cell::OnceCell<Option<u32>> = const { std::cell::OnceCell::new() };
}

fn expression() -> Option<u32> {
    EXPRESSION.with(|e| {
        *e.get_or_init(|| {
            let text = moesif_core::log_facts::EXPRESSION;
            // SAFETY: pointers and lengths of live strs; out-pointers to locals.
            let token = call(|d, s| unsafe {
                proxy_call_foreign_function(
                    CREATE.as_ptr(),
                    CREATE.len(),
                    text.as_ptr(),
                    text.len(),
                    d,
                    s,
                )
            })?;
            token.get(..4)?.try_into().ok().map(u32::from_le_bytes)
        })
    })
}

/// Runs one host call that hands back bytes: them, if it succeeded (callers that only
/// make the call drop them).
fn call(f: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Option<Vec<u8>> {
    let mut data = std::ptr::null_mut();
    let mut size = 0;
    let status = f(&mut data, &mut size);
    // SAFETY: the host allocated `size` bytes at `data` through the SDK's allocator.
    let bytes = (!data.is_null()).then(|| unsafe { Vec::from_raw_parts(data, size, size) });
    bytes.filter(|_| status == 0)
}

/// What a host call returned: dropped, or with `ship` appended to this worker's block.
fn keep(bytes: Option<Vec<u8>>) {
    #[cfg(feature = "ship")]
    crate::ship::append(bytes.as_deref());
    #[cfg(not(feature = "ship"))]
    drop(bytes);
}

fn map(kind: u32) {
    // SAFETY: out-pointers to locals.
    keep(call(|d, s| unsafe {
        proxy_get_header_map_pairs(kind, d, s)
    }));
}

fn buffer(kind: u32, size: usize) {
    // SAFETY: out-pointers to locals.
    keep(call(|d, s| unsafe {
        proxy_get_buffer_bytes(kind, 0, size, d, s)
    }));
}

fn property(path: &str) {
    // SAFETY: pointer and length of a live str; out-pointers to locals.
    keep(call(|d, s| unsafe {
        proxy_get_property(path.as_ptr(), path.len(), d, s)
    }));
}

impl HttpContext for super::EmptyFilter {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        map(0);
        Action::Continue
    }

    fn on_http_request_body(&mut self, size: usize, _: bool) -> Action {
        buffer(0, size);
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        map(2);
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, _: bool) -> Action {
        buffer(1, size);
        Action::Continue
    }

    /// The properties as the plugin reads them: one CEL evaluation, or one call each
    /// where Envoy has no CEL.
    fn on_log(&mut self) {
        if let Some(token) = expression() {
            let token = token.to_le_bytes();
            // SAFETY: pointers and lengths of live slices; out-pointers to locals.
            keep(call(|d, s| unsafe {
                proxy_call_foreign_function(
                    EVALUATE.as_ptr(),
                    EVALUATE.len(),
                    token.as_ptr(),
                    token.len(),
                    d,
                    s,
                )
            }));
        } else {
            for path in [
                "request\0time",
                "request\0duration",
                "source\0address",
                "xds\0route_name",
                "xds\0cluster_name",
                "xds\0listener_direction",
                "upstream\0address",
            ] {
                property(path);
            }
        }
        #[cfg(feature = "ship")]
        crate::ship::call_done();
    }
}
