//! The pool controller: how many of a pool's instances run. Pure decisions over what the supervisor
//! knows (each slot's lifecycle and traffic, the requests each request thread says it holds), carried out
//! by [`Supervisor::control`] as `Start` inputs to the chosen slots.
//!
//! * **Want**: `ceil((in flight + held) / per)` instances, where `per` is `target_in_flight` (or
//!   `max_in_flight`, or one instance for everything without either), at least `min_running`, at most
//!   `max_running`; `wake = "all"` wants every slot once anything is wanted.
//! * **Which**: a draining instance taken back first, then the lowest stopped slots that are not backing
//!   off; a slot still stopping for good is left to finish. `Demand.grow` asks for one more at once;
//!   hard affinity starts exactly the slot a request needs (`start_slot`).
//! * **Idle**: each instance idles out on its own; the controller only vetoes a stop that would take the
//!   pool below `min_running`, stop an `always_on` pool or a fixed address, or leave held requests
//!   behind. Excess capacity is shed by `scale_down`, a changed spec replaced by `rolling`.
//! * **Order**: `start_after` pools start once those they name are ready, and stop in reverse at
//!   shutdown (`stop_in_order`).
//!
//! A `[backends]` entry never reaches here: it is started by `Command::Start` as before.

use super::backend::Backend;
use super::event_loop::Supervisor;
use super::keys::InstanceKey;
use super::lifecycle::{Input, Lifecycle, StopPhase, Stopping};
use super::policy::Order;
use crate::config::pools::{Scaling, Wake};
use crate::config::BackendKind;
use crate::msg::StopReason;

/// A slot as the controller weighs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotView {
    /// Starting, ready or stopping for good: counts as running.
    pub up: bool,
    /// Draining for a scale-down, not signalled yet: taken back before anything is started.
    pub draining: bool,
    /// Stopped, not backing off, not retired: may be started now.
    pub startable: bool,
    pub in_flight: usize,
}

/// The slots to start now: draining ones first (taken back warm), then the lowest stopped ones.
pub fn to_start(scaling: &Scaling, per: Option<u32>, held: u32, slots: &[SlotView]) -> Vec<u32> {
    let load: usize = slots.iter().map(|s| s.in_flight).sum::<usize>() + held as usize;
    let count = slots.len() as u32;
    let wanted = match (per, load) {
        (_, 0) => 0,
        (_, _) if scaling.wake == Wake::All => count,
        (Some(per), load) => u32::try_from(load.div_ceil(per.max(1) as usize)).unwrap_or(count),
        (None, _) => 1,
    };
    let want = wanted.max(scaling.min_running).min(scaling.max_running);
    let up = slots.iter().filter(|s| s.up).count() as u32;
    let missing = want.saturating_sub(up) as usize;
    let draining = (0u32..).zip(slots).filter(|(_, s)| s.draining);
    let stopped = (0u32..).zip(slots).filter(|(_, s)| s.startable);
    draining
        .chain(stopped)
        .map(|(index, _)| index)
        .take(missing)
        .collect()
}

/// Whether instance `index` of `backend` may stop for idleness now.
pub fn may_stop_idle(backend: &Backend, index: u32) -> bool {
    let Some(pool) = &backend.config.pool else {
        return true;
    };
    let Some(slot) = backend.slot(index) else {
        return true;
    };
    if slot.retired {
        return true;
    }
    let scaling = &pool.scaling;
    if scaling.always_on || slot.spec.kind == BackendKind::External {
        return false;
    }
    if backend.held.iter().any(|&h| h > 0) {
        return false;
    }
    let running = backend
        .instances
        .iter()
        .filter(|s| matches!(s.lifecycle, Lifecycle::Ready(_) | Lifecycle::Starting(_)))
        .count() as u32;
    if running <= scaling.min_running {
        return false;
    }
    match scaling.wake {
        // The instances stop together: only once all of them are idle.
        Wake::All => (0..backend.count()).all(|i| backend.activity_of(i).in_flight() == 0),
        Wake::One => true,
    }
}

impl Supervisor {
    /// After an instance of the backend at `key` changed: its pool may be short of instances, and pools
    /// that start after it may go now. Re-entrant calls (a start the controller made) are skipped.
    pub(super) fn after_pool_change(&mut self, key: usize) {
        if self.controlling {
            return;
        }
        let Some(name) = self
            .backends
            .get(key)
            .filter(|b| b.config.is_pool())
            .map(|b| b.host.clone())
        else {
            return;
        };
        self.controlling = true;
        self.control(key);
        let waiting: Vec<usize> = self
            .backends
            .iter()
            .filter(|(_, b)| {
                b.config
                    .pool
                    .as_ref()
                    .is_some_and(|p| p.scaling.start_after.iter().any(|n| **n == *name))
            })
            .map(|(k, _)| k)
            .collect();
        for other in waiting {
            self.control(other);
        }
        self.controlling = false;
    }

    /// Shutdown, in reverse `start_after` order: each backend is told to stop once nothing that starts
    /// after it still runs (a worker stops before the database it started after). Called at shutdown
    /// and whenever a backend has come to rest during it.
    pub(super) fn stop_in_order(&mut self) {
        let still_up: Vec<(std::sync::Arc<str>, Vec<String>)> = self
            .backends
            .iter()
            .filter(|(_, b)| !b.is_at_rest())
            .map(|(_, b)| {
                let after = b
                    .config
                    .pool
                    .as_ref()
                    .map(|p| p.scaling.start_after.clone());
                (b.host.clone(), after.unwrap_or_default())
            })
            .collect();
        let ready: Vec<usize> = self
            .backends
            .iter()
            .filter(|(_, b)| !b.shutdown_ordered)
            .filter(|(_, b)| {
                !still_up
                    .iter()
                    .any(|(other, after)| *other != b.host && after.iter().any(|a| **a == *b.host))
            })
            .map(|(key, _)| key)
            .collect();
        for key in ready {
            if let Some(backend) = self.backends.get_mut(key) {
                backend.shutdown_ordered = true;
            }
            self.order(key, Order::Stop(StopReason::Shutdown));
        }
    }

    /// Whether every pool `start_after` names is ready (every instance of it).
    fn predecessors_ready(&self, after: &[String]) -> bool {
        after.iter().all(|name| {
            self.backends.iter().any(|(_, b)| {
                *b.host == **name
                    && b.instances
                        .iter()
                        .all(|s| matches!(s.lifecycle, Lifecycle::Ready(_)))
            })
        })
    }

    /// Hard affinity: a request waits for slot `slot` (the owner of its key) and only that slot.
    pub(super) fn start_slot(&mut self, key: usize, slot: u32) {
        let startable = self
            .backends
            .get(key)
            .and_then(|b| b.slot(slot))
            .is_some_and(|s| !s.retired);
        if startable {
            self.feed(InstanceKey::new(key, slot), Input::Start);
        }
    }

    /// Starts whatever the pool at `key` is short of (nothing for a `[backends]` entry).
    pub(super) fn control(&mut self, key: usize) {
        if self.shutting_down {
            return;
        }
        let Some(pool) = self.backends.get(key).and_then(|b| b.config.pool.clone()) else {
            return;
        };
        if !self.predecessors_ready(&pool.scaling.start_after) {
            return;
        }
        let Some(backend) = self.backends.get_mut(key) else {
            return;
        };
        if backend.removed {
            return;
        }
        let now = self.clock.now_ms();
        let min = pool.scaling.min_running as usize;
        let mut views = Vec::with_capacity(backend.instances.len());
        for (index, slot) in backend.instances.iter_mut().enumerate() {
            // The slots the pool must keep running are restarted after a back-off without a request.
            slot.keep_running = !slot.retired && index < min;
            let backing_off = slot.crash_loop.backoff_until().is_some_and(|t| t > now);
            let at_rest = slot.is_at_rest();
            let draining = is_draining(&slot.lifecycle);
            views.push(SlotView {
                up: !at_rest && !draining,
                draining: draining && !slot.retired,
                startable: at_rest && !backing_off && !slot.retired,
                in_flight: backend.activity.get(index).map_or(0, |a| a.in_flight()),
            });
        }
        let per = pool.scaling.target_in_flight.or(pool.scaling.max_in_flight);
        // Hard affinity starts the owner a request needs (`start_slot`), never slots by load.
        let owned = matches!(
            pool.strategy,
            crate::config::pools::Strategy::Hash {
                over: crate::config::pools::HashOver::Slots,
                ..
            }
        );
        let held = match owned {
            true => 0,
            false => backend.held.iter().sum(),
        };
        if owned {
            views.iter_mut().for_each(|v| v.in_flight = 0);
        }
        for index in to_start(&pool.scaling, per, held, &views) {
            self.feed(InstanceKey::new(key, index), Input::Start);
        }
        self.arm_window(key);
        self.roll(key, pool.scaling.rolling);
    }

    /// A request thread saw every ready instance above its target: one more instance (a draining one
    /// taken back first, else the lowest stopped slot) unless one is already starting or the pool runs
    /// `max_running`.
    pub(super) fn grow(&mut self, key: usize) {
        let Some(backend) = self.backends.get(key) else {
            return;
        };
        let Some(pool) = &backend.config.pool else {
            return;
        };
        let now = self.clock.now_ms();
        let mut up = 0;
        let mut draining = None;
        let mut stopped = None;
        for (index, slot) in (0u32..).zip(&backend.instances) {
            match &slot.lifecycle {
                Lifecycle::Starting(_) => return,
                Lifecycle::Ready(_) => up += 1,
                lifecycle if is_draining(lifecycle) => draining = draining.or(Some(index)),
                _ => {}
            }
            let backing_off = slot.crash_loop.backoff_until().is_some_and(|t| t > now);
            if slot.is_at_rest() && !backing_off && !slot.retired {
                stopped = stopped.or(Some(index));
            }
        }
        if up >= pool.scaling.max_running || self.shutting_down || backend.removed {
            return;
        }
        if let Some(index) = draining.or(stopped) {
            self.feed(InstanceKey::new(key, index), Input::Start);
        }
    }
}

/// A scale-down still draining: nothing was signalled, so it can be taken back.
fn is_draining(lifecycle: &Lifecycle) -> bool {
    matches!(
        lifecycle,
        Lifecycle::Stopping(Stopping {
            reason: StopReason::ScaleDown,
            phase: StopPhase::Draining { .. },
            ..
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn scaling(min: u32, max: u32) -> Scaling {
        Scaling {
            min_running: min,
            max_running: max,
            target_in_flight: None,
            max_in_flight: None,
            queue_timeout: Duration::from_secs(10),
            scale_down_delay: Duration::from_secs(60),
            wake: Wake::One,
            always_on: false,
            start_after: Vec::new(),
            rolling: false,
        }
    }

    fn stopped(n: usize) -> Vec<SlotView> {
        vec![
            SlotView {
                up: false,
                draining: false,
                startable: true,
                in_flight: 0,
            };
            n
        ]
    }

    #[test]
    fn one_held_request_starts_the_lowest_slot_and_nothing_more() {
        assert_eq!(to_start(&scaling(0, 4), None, 1, &stopped(4)), vec![0]);
        assert_eq!(
            to_start(&scaling(0, 4), None, 0, &stopped(4)),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn a_target_asks_for_as_many_instances_as_the_load_needs_within_max_running() {
        assert_eq!(
            to_start(&scaling(0, 4), Some(4), 9, &stopped(4)),
            vec![0, 1, 2]
        );
        assert_eq!(
            to_start(&scaling(0, 2), Some(4), 100, &stopped(4)),
            vec![0, 1]
        );
        let mut slots = stopped(4);
        slots[0] = SlotView {
            up: true,
            draining: false,
            startable: false,
            in_flight: 4,
        };
        assert_eq!(to_start(&scaling(0, 4), Some(4), 1, &slots), vec![1]);
    }

    #[test]
    fn min_running_is_kept_without_traffic_and_backing_off_slots_are_skipped() {
        let mut slots = stopped(3);
        slots[0].startable = false;
        assert_eq!(to_start(&scaling(2, 3), None, 0, &slots), vec![1, 2]);
    }

    #[test]
    fn a_draining_instance_is_taken_back_before_a_stopped_one_starts() {
        let mut slots = stopped(3);
        slots[2] = SlotView {
            up: false,
            draining: true,
            startable: false,
            in_flight: 1,
        };
        assert_eq!(to_start(&scaling(0, 3), Some(1), 1, &slots), vec![2, 0]);
        assert_eq!(
            to_start(&scaling(0, 3), None, 0, &slots),
            vec![2],
            "its own request is demand"
        );
    }

    #[test]
    fn wake_all_starts_every_slot_for_one_request() {
        let mut all = scaling(0, 3);
        all.wake = Wake::All;
        assert_eq!(to_start(&all, None, 1, &stopped(3)), vec![0, 1, 2]);
    }
}
