//! `reload = "rolling"`: after a reload changed the spec of a pool's instances, they are replaced one
//! at a time (drain, stop, start with the new spec, wait until ready, then the next), the others serving
//! meanwhile. A replacement that does not come up halts the roll until the next reload.
//!
//! An instance at a fixed `address` rolls whatever the pool's `reload`: nothing of ours runs there, so
//! "its next start" would never come, and replacing it costs only a new probe (a changed address, or a
//! re-read `ca_file` of an `https://` one, applies at once).

use super::event_loop::Supervisor;
use super::keys::InstanceKey;
use super::lifecycle::{Input, Lifecycle};
use crate::config::BackendKind;
use crate::msg::StopReason;

impl Supervisor {
    /// `reload = "rolling"`: replaces the next ready instance still running an older spec, unless one
    /// is being replaced (stopping for it, or started again and not ready yet). The replaced instance
    /// drains what it carries, stops, and starts at once with its new spec; the others serve meanwhile.
    /// `all`: every instance (`reload = "rolling"`); otherwise only those at a fixed address.
    pub(super) fn roll(&mut self, key: usize, all: bool) {
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
                && (all || slot.spec.kind == BackendKind::External)
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
}
