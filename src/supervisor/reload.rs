//! The supervisor's set of backends, changed only by the reloads the reactor plans ([`Change`]): the
//! same diff the request threads apply, under the same ids, so there is one reload algorithm. A removed
//! backend is forgotten once every instance of it has stopped; one put back while it still drains
//! carries on.

use super::backend::Backend;
use super::event_loop::Supervisor;
use super::keys::InstanceKey;
use super::lifecycle::Lifecycle;
use super::policy::Order;
use crate::msg::{BackendEntry, LifecycleEvent, StopReason};
use crate::upstream::{BackendId, Change};

impl Supervisor {
    /// Takes `backend` in (all its instances stopped); returns its key.
    pub fn insert_backend(&mut self, mut backend: Backend) -> usize {
        self.docker.sweep_leftovers(&backend.config);
        backend.waits_for = backend.waits_for.map(|after| self.passed_wait(after));
        let id = backend.id;
        let key = self.backends.insert(backend);
        self.by_id.insert(id, key);
        key
    }

    /// Applies a reload as the reactor planned it (the start-up set is one too: only additions).
    pub(super) fn reconcile(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Add { id, entry } | Change::Keep { id, entry, .. } => {
                    self.take(*id, entry.clone());
                }
                Change::Remove { id } => self.remove(*id, StopReason::Removed),
            }
        }
    }

    /// Backend `id` is in the new config with `entry`'s settings.
    fn take(&mut self, id: BackendId, entry: BackendEntry) {
        let key = match self.by_id.get(&id) {
            Some(&key) => key,
            None => match self.draining_of(&entry) {
                Some(key) => self.rename(key, id),
                None => {
                    // New, or kept by a reactor that planned before it heard this backend stopped
                    // after its removal (this thread forgot it then): either way, a fresh start.
                    log::debug!("{}: added", entry.config.hostname);
                    let key = self.insert_backend(Backend::new(id, entry));
                    // A pool with `min_running` (or `always_on`) starts now.
                    self.control(key);
                    return;
                }
            },
        };
        if self.backends[key].removed {
            self.readd(key);
        }
        // The counters are the ones the request threads write from now on (for a kept backend, the
        // very ones it had).
        let backend = &mut self.backends[key];
        // Slots beyond the new count keep their counters while they drain: the request threads no
        // longer route to them, but what they carry still counts until it ends.
        let retiring = backend
            .activity
            .split_off(entry.activity.len().min(backend.activity.len()));
        backend.activity = entry.activity;
        backend.activity.extend(retiring);
        backend.set_config(entry.config);
        // Slots a smaller pool no longer has stop as if removed; more slots or a new `min_running`
        // are the controller's to start.
        let retired: Vec<u32> = self.backends[key]
            .slots(key)
            .filter(|(_, slot)| slot.retired && !slot.is_at_rest())
            .map(|(k, _)| k.index)
            .collect();
        for index in retired {
            self.feed(
                InstanceKey::new(key, index),
                Order::Stop(StopReason::Removed).input(),
            );
        }
        self.control(key);
    }

    /// A removed backend of `entry`'s host that still drains. The reactor adds a host afresh only once
    /// it forgot the backend that had it, which it may do before that one stopped here (it never saw it
    /// start: a reload removed it while its start was under way). Its instances are that host's: the new
    /// backend carries on with them rather than start a second program on the same port meanwhile.
    fn draining_of(&self, entry: &BackendEntry) -> Option<usize> {
        self.backends
            .iter()
            .find(|(_, b)| b.removed && *b.host == *entry.config.hostname)
            .map(|(key, _)| key)
    }

    /// The backend at `key` is known as `id` from now on; returns its key.
    fn rename(&mut self, key: usize, id: BackendId) -> usize {
        let old = std::mem::replace(&mut self.backends[key].id, id);
        self.by_id.remove(&old);
        self.by_id.insert(id, key);
        key
    }

    /// Gone from the config, or a session that ended: its instances stop (`reason`: `Removed` drains,
    /// `Terminated` does not), and it is forgotten once they have.
    pub(super) fn remove(&mut self, id: BackendId, reason: StopReason) {
        let Some(&key) = self.by_id.get(&id) else {
            return;
        };
        self.backends[key].removed = true;
        self.order(key, Order::Stop(reason));
        self.forget_if_removed(key);
    }

    /// A backend removed by an earlier reload is back while it still drains: the stop of each of its
    /// instances becomes an ordinary one, so requests are held and start it again instead of being
    /// refused as for a removed backend.
    fn readd(&mut self, key: usize) {
        let Some(backend) = self.backends.get_mut(key) else {
            return;
        };
        backend.removed = false;
        log::info!("{}: back in the config while stopping", backend.host);
        let mut reported = Vec::new();
        for (index, slot) in (0u32..).zip(&mut backend.instances) {
            if let Lifecycle::Stopping(stopping) = &mut slot.lifecycle {
                if stopping.reason == StopReason::Removed {
                    stopping.reason = StopReason::Idle;
                    reported.push(InstanceKey::new(key, index));
                }
            }
        }
        for instance in reported {
            self.emit(instance, LifecycleEvent::Stopping(StopReason::Idle));
        }
    }

    pub(super) fn forget_if_removed(&mut self, key: usize) {
        let Some(backend) = self.backends.get(key) else {
            return;
        };
        if backend.removed && backend.is_at_rest() {
            log::debug!("{}: removed", backend.host);
            let id = backend.id;
            let waited_for = backend.waits_for;
            self.by_id.remove(&id);
            for index in 0..backend.count() {
                self.timers.set(InstanceKey::new(key, index), None);
            }
            self.backends.remove(key);
            self.predecessor_gone(id, waited_for);
        }
    }
}
