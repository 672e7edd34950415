//! The `ship` feature (the bench's `(e3)`): the floor of a plugin that captures each call and
//! ships it through a singleton, as this plugin does, with none of its own work. Each worker
//! appends what its calls' host calls returned to one block and enqueues it every
//! `CALLS_PER_BLOCK` calls; the singleton (root_id `moesif_shipper`) takes the blocks off the
//! queue and, for every `CALLS_PER_BATCH` calls, posts one batch made once at configure (100
//! real events, gzipped) to the collector and reads the answer's status. No record encoding, no
//! event JSON, no gzip per batch: what is left is the host's part of capturing and shipping.
//!
//! A benchmark-only build: it uses the SDK's wrappers, which panic on host statuses Envoy does
//! not return for these calls, where the plugin goes through its own `host.rs`.
#![allow(clippy::disallowed_methods)]

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, RootContext};
use proxy_wasm::types::MapType;
use std::cell::RefCell;
use std::time::Duration;

/// The plugin's block size (records per queue message) and its default `batch_max_size`.
const CALLS_PER_BLOCK: usize = moesif_core::forward::MAX_EVENTS;
const CALLS_PER_BATCH: usize = 100;
const QUEUE: &str = "floor_ship";
/// The plugin's `upstream` default; the bench's Envoy points it at the local collector.
const CLUSTER: &str = "moesif_api";

struct Block {
    queue: Option<u32>,
    bytes: Vec<u8>,
    calls: usize,
}

thread_local! {
    static BLOCK: RefCell<Block> = const {
        RefCell::new(Block { queue: None, bytes: Vec::new(), calls: 0 })
    };
}

/// Keeps what one host call returned in this worker's open block.
pub fn append(bytes: Option<&[u8]>) {
    BLOCK.with_borrow_mut(|b| b.bytes.extend_from_slice(bytes.unwrap_or_default()));
}

/// Ends one call: a full block goes on the queue (resolved on first use, in this VM's vm_id).
pub fn call_done() {
    BLOCK.with_borrow_mut(|b| {
        b.calls += 1;
        if b.calls < CALLS_PER_BLOCK {
            return;
        }
        if b.queue.is_none() {
            let vm_id = hostcalls::get_property(vec!["plugin_vm_id"])
                .ok()
                .flatten()
                .unwrap_or_default();
            b.queue = hostcalls::resolve_shared_queue(&String::from_utf8_lossy(&vm_id), QUEUE)
                .ok()
                .flatten();
        }
        if let Some(q) = b.queue {
            let _ = hostcalls::enqueue_shared_queue(q, Some(&b.bytes));
        }
        b.bytes.clear();
        b.calls = 0;
    });
}

/// The singleton's side: blocks in, one fixed batch out per `CALLS_PER_BATCH` calls.
#[derive(Default)]
pub struct FloorShipper {
    queue: Option<u32>,
    calls: usize,
    batch: Vec<u8>,
}

impl Context for FloorShipper {
    fn on_http_call_response(&mut self, _: u32, _: usize, _: usize, _: usize) {
        let _ = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status");
    }
}

impl RootContext for FloorShipper {
    fn on_configure(&mut self, _: usize) -> bool {
        self.queue = hostcalls::register_shared_queue(QUEUE).ok();
        let mut batcher = moesif_core::batch::Batcher::new(CALLS_PER_BATCH, usize::MAX, 0);
        for event in moesif_core::samples::real_events() {
            batcher.push(&event, 0);
        }
        self.batch = batcher.take().map(|b| b.gzip).unwrap_or_default();
        true
    }

    fn on_queue_ready(&mut self, _: u32) {
        let Some(q) = self.queue else { return };
        while let Ok(Some(_)) = hostcalls::dequeue_shared_queue(q) {
            self.calls += CALLS_PER_BLOCK;
        }
        while self.calls >= CALLS_PER_BATCH {
            self.calls -= CALLS_PER_BATCH;
            let _ = hostcalls::dispatch_http_call(
                CLUSTER,
                vec![
                    (":method", "POST"),
                    (":path", "/v1/events/batch"),
                    (":authority", "api.moesif.net"),
                    ("x-moesif-application-id", "local-demo-app-id"),
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                    ("user-agent", "empty-filter"),
                ],
                Some(&self.batch),
                vec![],
                Duration::from_secs(10),
            );
        }
    }
}
