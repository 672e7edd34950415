//! What a filter root shares with its HTTP contexts: the config, where records go (the
//! singleton's queue or this worker's own shipper, decided by `moesif_core::route`), and the
//! delivery state. Everything runs on the worker's thread, hence `Rc`, `Cell` and `RefCell`.

use crate::delivery::Delivery;
use crate::host;
use crate::occupancy::Occupancy;
use crate::properties::Expression;
use crate::remote::Published;
use moesif_core::app_config::AppConfig;
use moesif_core::config::Config;
use moesif_core::forward::{Block, FORMAT};
use moesif_core::governance::Rules;
use moesif_core::liveness::{self, Health};
use moesif_core::policy::Compiled;
use moesif_core::record::Record;
use moesif_core::route::{self, Diversion, Local, Placement, Route};
use moesif_core::skip::SkipRules;
use moesif_core::stats::{Counter, Counts};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

pub struct Shared {
    pub config: Config,
    queue_vm_id: String,
    heartbeat_key: String,
    route: Cell<Route>,
    /// The queue's size in bytes, shared with the shipper (enforced when the route is bounded).
    occupancy: Occupancy,
    /// Set when Envoy retires this filter config (e.g. an ECDS update): nothing may be left
    /// waiting for a tick that may not come.
    closing: Cell<bool>,
    /// Counts of calls that never reached `delivery` (skipped, sampled out, or lost because it
    /// was in use), added to its counters on the next tick.
    pending: Cell<Counts>,
    /// The config's `skip` rules.
    pub skip: SkipRules,
    /// This config's policy (the one its shipper applies): identity rules for sampling and
    /// governance decisions by user and company.
    pub policy: Rc<Compiled>,
    /// Moesif's app config as last published (sample rates); `None` until one arrives.
    app: RefCell<Published<AppConfig>>,
    /// Governance rules as last published; only read when `enable_governance` is on.
    rules: RefCell<Published<Rules>>,
    /// Dice for sampling.
    rng: RefCell<fastrand::Rng>,
    /// Filter counters, and the worker's own shipper.
    delivery: RefCell<Delivery>,
    /// Reads a call's `on_log` properties in one host call (`None` where Envoy has no CEL).
    pub log_properties: Option<Expression>,
}

impl Shared {
    pub fn new(config: Config, queue_vm_id: String) -> Self {
        let delivery = Delivery::new(config.clone());
        Shared {
            queue_vm_id,
            heartbeat_key: liveness::key(&config.queue_name),
            route: Cell::new(Route::Local(Local::NoQueue)),
            occupancy: Occupancy::new(&config.queue_name),
            closing: Cell::new(false),
            pending: Cell::new(Counts::default()),
            // Validated at parse: compiling again cannot fail.
            skip: SkipRules::compile(&config.skip).unwrap_or_default(),
            policy: delivery.own_policy(),
            app: RefCell::new(Published::new(&config.queue_name)),
            rules: RefCell::new(Published::new(&config.queue_name)),
            rng: RefCell::new(fastrand::Rng::with_seed(host::seed())),
            delivery: RefCell::new(delivery),
            log_properties: Expression::create_for(&config),
            config,
        }
    }

    /// Re-decides where records go; called at configure and on every tick, never per request.
    pub fn reroute(&self) {
        let now_ms = host::now_ms();
        let (beat, _) = host::shared_data(&self.heartbeat_key);
        let health = liveness::health(beat.as_deref(), now_ms);
        let reads_ours = liveness::reads(beat.as_deref(), FORMAT);
        let old = self.route.get();
        let known = match old {
            Route::Queue { id, .. } => Some(id),
            Route::Local(_) => None,
        };
        let new = route::choose(health, reads_ours, known, || {
            host::resolve_queue(&self.queue_vm_id, &self.config.queue_name)
        });
        self.route.set(new);
        log_change(old, new, health);
    }

    /// Hands one captured call to the shipper's queue (in blocks), or ships it from here.
    pub fn submit(&self, record: Record) {
        if cfg!(feature = "stage-capture") {
            return;
        }
        let Ok(mut d) = self.delivery.try_borrow_mut() else {
            // Captured and dropped, so the invariant still holds.
            self.count(Counter::EventsCaptured);
            self.count(Counter::EventsDroppedInternal);
            return;
        };
        match self.route.get() {
            Route::Queue { .. } => {
                if let Some(block) = d.shipper().forward(&record) {
                    self.place(&mut d, block);
                }
            }
            Route::Local(why) => d.shipper().capture_locally(&record, why, host::now_ms()),
        }
        if self.closing.get() {
            // A call that ends after Envoy retired this root: no tick may follow to enqueue
            // its record or publish its counts.
            self.flush_block(&mut d);
            d.sync_metrics(host::now_ms());
        }
    }

    /// Counts one call that never reaches `delivery` (published on the next tick).
    pub fn count(&self, c: Counter) {
        let mut pending = self.pending.get();
        pending.add(c, 1);
        self.pending.set(pending);
    }

    /// Moesif's app config, once one was published.
    pub fn app_config(&self) -> Option<Rc<AppConfig>> {
        self.app.try_borrow().ok().and_then(|a| a.current())
    }

    /// The governance rules in force, when governance is on and some were published.
    pub fn rules(&self) -> Option<Rc<Rules>> {
        if !self.config.enable_governance {
            return None;
        }
        self.rules.try_borrow().ok().and_then(|r| r.current())
    }

    /// A roll of the dice in 0..100 for a sampling decision.
    pub fn roll(&self) -> u32 {
        self.rng.try_borrow_mut().map_or(0, |mut r| r.u32(0..100))
    }

    /// Enqueues the open block, whatever its size (tick, retiring root).
    pub fn flush_block(&self, d: &mut Delivery) {
        if let Some(block) = d.shipper().take_block() {
            self.place(d, block);
        }
    }

    /// Puts `block` on the queue if the route and the room allow, else ships it from here.
    fn place(&self, d: &mut Delivery, block: Block) {
        let len = block.bytes.len() as u64;
        let max = self.config.max_queue_bytes as u64;
        let placement = route::place(self.route.get(), || self.occupancy.reserve(len, max));
        let now = host::now_ms();
        match placement {
            Placement::Enqueue { id, reserved } => {
                if host::enqueue(id, &block.bytes).is_ok() {
                    d.shipper().enqueued(&block);
                } else {
                    if reserved {
                        self.occupancy.release(len);
                    }
                    self.route.set(Route::Local(Local::NoQueue));
                    d.shipper().enqueue_failed(&block, now);
                }
            }
            Placement::ShipHere(Diversion::QueueFull) => d.shipper().queue_full(&block, now),
            Placement::ShipHere(Diversion::Local(_)) => d.shipper().enqueue_failed(&block, now),
        }
    }

    /// Runs `f` on the delivery state, first adding the calls counted outside it.
    pub fn with_delivery(&self, f: impl FnOnce(&mut Delivery)) {
        if let Ok(mut d) = self.delivery.try_borrow_mut() {
            d.shipper().count(&self.pending.take());
            f(&mut d);
        }
    }

    /// The tick's share of the work: reroute, enqueue the open block, ship what is due.
    /// Returns the events this root still holds.
    pub fn tick(&self) -> u64 {
        self.reroute();
        self.occupancy.settle();
        let now = host::now_ms();
        let mut unsent = 0;
        let ships_itself = matches!(self.route.get(), Route::Local(_));
        self.with_delivery(|d| {
            self.flush_block(d);
            d.shipper()
                .set_shipping_locally(ships_itself && !self.is_closing());
            if ships_itself {
                d.fetch_due(now);
            }
            d.dispatch_due(now);
            d.sync_metrics(now);
            unsent = d.unsent();
        });
        if let Ok(mut app) = self.app.try_borrow_mut() {
            app.refresh();
        }
        if self.config.enable_governance {
            if let Ok(mut rules) = self.rules.try_borrow_mut() {
                rules.refresh();
            }
        }
        unsent
    }

    /// Envoy retires this root: enqueue or close what it holds; returns the events left to
    /// deliver from here.
    pub fn close(&self) -> u64 {
        self.closing.set(true);
        let mut unsent = 0;
        self.with_delivery(|d| {
            self.flush_block(d);
            d.shipper().set_shipping_locally(false);
            d.shipper().close_batch();
            d.sync_metrics(host::now_ms());
            unsent = d.unsent();
        });
        unsent
    }

    pub fn is_closing(&self) -> bool {
        self.closing.get()
    }
}

fn log_change(old: Route, new: Route, health: Health) {
    match (old, new) {
        (Route::Queue { .. }, Route::Local(Local::ShipperDead)) => log::warn!(
            "moesif: singleton shipper not alive (heartbeat {health:?}); this worker ships its own events"
        ),
        (Route::Queue { .. }, Route::Local(Local::NoQueue)) => log::warn!(
            "moesif: the singleton shipper's queue is gone; this worker ships its own events"
        ),
        (old, Route::Local(Local::FormatUnsupported)) if old != new => log::warn!(
            "moesif: the running singleton shipper does not read queue format {FORMAT} (a rollout of mixed plugin builds); this worker ships its own events, counted in moesif_events_format_unsupported"
        ),
        (Route::Local(_), Route::Queue { bounded: true, .. }) => {
            log::info!("moesif: singleton shipper alive; sending events through its queue");
        }
        _ => {}
    }
}
