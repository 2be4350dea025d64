//! Excess-capacity scale-down: a pool with a `target_in_flight` that ran more instances than its traffic
//! needed for a whole window (`scale_down_delay_secs`) drains one, at most one per window, never below
//! `min_running` or while requests wait. The window exists only while the pool could shed an instance
//! (0 wake-ups otherwise); a draining instance is taken back by demand (`pool_ctl::to_start`).

use super::backend::Backend;
use super::event_loop::Supervisor;
use super::keys::InstanceKey;
use super::lifecycle::{Input, Lifecycle};
use crate::msg::StopReason;

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

impl Supervisor {
    /// Opens a scale-down window for the pool at `key` if it can shed an instance (a target, more
    /// ready than `min_running`, nothing held) and none is open; closes it when it cannot.
    pub(super) fn arm_window(&mut self, key: usize) {
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
}
