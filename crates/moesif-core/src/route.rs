//! Where a filter's records go: onto the singleton shipper's queue, or shipped by the worker
//! itself. Decided per tick from the shipper's heartbeat and the queue's resolution, then per
//! block from the room left in the queue. The glue gathers those inputs and carries out the
//! answer.

use crate::liveness::Health;

/// Why a worker ships records itself instead of queueing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// No queue to be found: no singleton is configured (the v0.4.0 layout), it has not
    /// registered yet, or the queue refused a block.
    NoQueue,
    /// The singleton beat once, then stopped (its VM died).
    ShipperDead,
    /// The singleton is alive but does not read this build's block format (a rollout of
    /// mixed builds).
    FormatUnsupported,
}

/// The route of this worker's records until the next tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Enqueue on queue `id`. `bounded`: the shipper's heartbeat is visible (same vm_id), so
    /// the queue's size is shared with it and room is reserved before each block.
    Queue {
        id: u32,
        bounded: bool,
    },
    Local(Local),
}

/// Chooses the route. `known` is the queue used so far; `resolve` looks it up again (a host
/// call, made only when a queue would be used and none is known yet).
pub fn choose(
    health: Health,
    reads_our_format: bool,
    known: Option<u32>,
    resolve: impl FnOnce() -> Option<u32>,
) -> Route {
    match health {
        Health::Dead => Route::Local(Local::ShipperDead),
        Health::Alive if !reads_our_format => Route::Local(Local::FormatUnsupported),
        Health::Alive | Health::Unknown => match known.or_else(resolve) {
            Some(id) => Route::Queue {
                id,
                bounded: health == Health::Alive,
            },
            None => Route::Local(Local::NoQueue),
        },
    }
}

/// What becomes of one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Put it on queue `id`; `reserved`: room was reserved and must be released if the
    /// queue refuses it.
    Enqueue { id: u32, reserved: bool },
    /// Ship it from this worker.
    ShipHere(Diversion),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Diversion {
    Local(Local),
    /// The queue is at `max_queue_bytes`: the singleton is behind.
    QueueFull,
}

/// Places a block on `route`; `reserve` tries to reserve its bytes in the bounded queue.
pub fn place(route: Route, reserve: impl FnOnce() -> bool) -> Placement {
    match route {
        Route::Local(why) => Placement::ShipHere(Diversion::Local(why)),
        Route::Queue { id, bounded: false } => Placement::Enqueue {
            id,
            reserved: false,
        },
        Route::Queue { id, bounded: true } => match reserve() {
            true => Placement::Enqueue { id, reserved: true },
            false => Placement::ShipHere(Diversion::QueueFull),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> Option<u32> {
        panic!("must not resolve")
    }

    #[test]
    fn heartbeat_and_resolution_choose_the_route() {
        assert_eq!(
            choose(Health::Alive, true, None, || Some(3)),
            Route::Queue {
                id: 3,
                bounded: true
            }
        );
        assert_eq!(
            choose(Health::Alive, true, Some(3), unreachable),
            Route::Queue {
                id: 3,
                bounded: true
            }
        );
        assert_eq!(
            choose(Health::Unknown, false, None, || Some(4)),
            Route::Queue {
                id: 4,
                bounded: false
            },
            "no heartbeat in sight (other vm_id): the queue alone decides, unbounded"
        );
        assert_eq!(
            choose(Health::Unknown, false, None, || None),
            Route::Local(Local::NoQueue)
        );
        assert_eq!(
            choose(Health::Dead, true, Some(3), unreachable),
            Route::Local(Local::ShipperDead)
        );
        assert_eq!(
            choose(Health::Alive, false, Some(3), unreachable),
            Route::Local(Local::FormatUnsupported)
        );
    }

    #[test]
    fn blocks_go_where_there_is_room() {
        let bounded = Route::Queue {
            id: 1,
            bounded: true,
        };
        assert_eq!(
            place(bounded, || true),
            Placement::Enqueue {
                id: 1,
                reserved: true
            }
        );
        assert_eq!(
            place(bounded, || false),
            Placement::ShipHere(Diversion::QueueFull)
        );
        let unbounded = Route::Queue {
            id: 1,
            bounded: false,
        };
        assert_eq!(
            place(unbounded, || panic!("no reservation without a bound")),
            Placement::Enqueue {
                id: 1,
                reserved: false
            }
        );
        assert_eq!(
            place(Route::Local(Local::ShipperDead), || panic!()),
            Placement::ShipHere(Diversion::Local(Local::ShipperDead))
        );
    }
}
