//! The pool controller: how many of a pool's instances run. Pure decisions over what the supervisor
//! knows (each slot's lifecycle and traffic, the requests each request thread says it holds), carried out
//! by [`Supervisor::control`] as `Start` inputs to the chosen slots.
//!
//! * **Want**: `ceil((in flight + held) / per)` instances, where `per` is `target_in_flight` (or
//!   `max_in_flight`, or one instance for everything without either), at least `min_running`, at most
//!   `max_running`; `wake = "all"` wants every slot once anything is wanted.
//! * **Which**: the lowest stopped slots that are not backing off; a slot still stopping is left to
//!   finish (its requests wait for the next start).
//! * **Idle**: each instance idles out on its own; the controller only vetoes a stop that would take the
//!   pool below `min_running`, stop an `always_on` pool or a fixed address, or leave held requests
//!   behind.
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

/// Whether a window's traffic leaves one of `ready` instances idle: the pool's peak in flight fits in
/// 80% of what one instance fewer would take at `target`.
pub fn excess_capacity(peak: usize, ready: usize, target: u32) -> bool {
    ready > 0 && peak * 10 <= 8 * (ready - 1) * target as usize
}

/// The instance a scale-down drains: among the ready ones (slot, in flight), the fewest in flight, then
/// the highest slot (so long-lived tunnels are cut last and traffic packs onto the low slots).
pub fn drain_candidate(ready: &[(u32, usize)]) -> Option<u32> {
    ready
        .iter()
        .min_by_key(|&&(slot, in_flight)| (in_flight, std::cmp::Reverse(slot)))
        .map(|&(slot, _)| slot)
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
        if pool.scaling.rolling {
            self.roll(key);
        }
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

    /// `reload = "rolling"`: replaces the next ready instance still running an older spec, unless one
    /// is being replaced (stopping for it, or started again and not ready yet). The replaced instance
    /// drains what it carries, stops, and starts at once with its new spec; the others serve meanwhile.
    fn roll(&mut self, key: usize) {
        let Some(backend) = self.backends.get_mut(key) else {
            return;
        };
        for slot in &mut backend.instances {
            if slot.replacing && matches!(slot.lifecycle, Lifecycle::Ready(_)) {
                slot.replacing = false;
            }
        }
        if backend.instances.iter().any(|s| s.replacing) || backend.removed {
            return;
        }
        let outdated = (0u32..).zip(&backend.instances).find(|(_, slot)| {
            matches!(slot.lifecycle, Lifecycle::Ready(_))
                && !slot.retired
                && slot.running.as_ref().is_some_and(|r| r.spec != slot.spec)
        });
        let Some((index, _)) = outdated else {
            return;
        };
        log::info!(
            "{}: replacing instance {index} with its new settings",
            backend.host
        );
        if let Some(slot) = backend.slot_mut(index) {
            slot.replacing = true;
        }
        let instance = InstanceKey::new(key, index);
        self.feed(instance, Input::Stop(StopReason::Replace));
        // Marks the stop to be followed by a start, with the spec the reload gave the slot.
        self.feed(instance, Input::Start);
    }

    /// Opens a scale-down window for the pool at `key` if it can shed an instance (a target, more
    /// ready than `min_running`, nothing held) and none is open; closes it when it cannot.
    fn arm_window(&mut self, key: usize) {
        let Some(backend) = self.backends.get(key) else {
            return;
        };
        let Some(pool) = &backend.config.pool else {
            return;
        };
        let ready = ready_slots(backend).len() as u32;
        let may_shed = pool.scaling.target_in_flight.is_some()
            && ready > pool.scaling.min_running
            && !backend.removed;
        match (may_shed, self.windows.deadline_of(key)) {
            (true, None) => {
                // The window starts now: what ran before does not count.
                for activity in &backend.activity {
                    activity.take_peak();
                }
                let delay = pool.scaling.scale_down_delay.as_millis() as u64;
                self.windows.set(key, Some(self.clock.now_ms() + delay));
            }
            (false, Some(_)) => self.windows.set(key, None),
            _ => {}
        }
    }

    /// Every pool whose window has ended: if its traffic left an instance idle the whole window, that
    /// instance drains (one per window); the next window opens if it can shed more.
    pub(super) fn close_windows(&mut self) {
        let now = self.clock.now_ms();
        while let Some(key) = self.windows.pop_due(now) {
            let Some(backend) = self.backends.get(key) else {
                continue;
            };
            let Some(pool) = backend.config.pool.clone() else {
                continue;
            };
            let ready = ready_slots(backend);
            let peak: usize = backend.activity.iter().map(|a| a.take_peak()).sum();
            let held = backend.held.iter().any(|&h| h > 0);
            let target = pool.scaling.target_in_flight.unwrap_or(u32::MAX);
            let shed = ready.len() as u32 > pool.scaling.min_running
                && !held
                && !self.shutting_down
                && excess_capacity(peak, ready.len(), target);
            if let Some(slot) = drain_candidate(&ready).filter(|_| shed) {
                log::info!(
                    "{}: {} instances ready, at most {peak} requests in flight over the last {:?}: \
                     draining instance {slot}",
                    backend.host,
                    ready.len(),
                    pool.scaling.scale_down_delay
                );
                self.feed(
                    InstanceKey::new(key, slot),
                    Input::Stop(StopReason::ScaleDown),
                );
            }
            self.arm_window(key);
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

/// The ready instances of a backend (slot, in flight), retired ones aside.
fn ready_slots(backend: &Backend) -> Vec<(u32, usize)> {
    (0u32..)
        .zip(&backend.instances)
        .filter(|(_, s)| matches!(s.lifecycle, Lifecycle::Ready(_)) && !s.retired)
        .map(|(i, _)| (i, backend.activity_of(i).in_flight()))
        .collect()
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
    fn excess_capacity_is_a_window_whose_peak_fits_one_instance_fewer() {
        // Three ready at a target of 10: two take 20, 80% of that is 16.
        assert!(excess_capacity(16, 3, 10));
        assert!(!excess_capacity(17, 3, 10));
        assert!(
            !excess_capacity(0, 1, 10) || excess_capacity(0, 1, 10),
            "one instance"
        );
        assert!(
            excess_capacity(0, 1, 10),
            "the last instance may shed only below min_running's say"
        );
        assert_eq!(drain_candidate(&[(0, 2), (1, 0), (2, 0)]), Some(2));
        assert_eq!(drain_candidate(&[(0, 0), (1, 3)]), Some(0));
        assert_eq!(drain_candidate(&[]), None);
    }

    #[test]
    fn wake_all_starts_every_slot_for_one_request() {
        let mut all = scaling(0, 3);
        all.wake = Wake::All;
        assert_eq!(to_start(&all, None, 1, &stopped(3)), vec![0, 1, 2]);
    }
}
