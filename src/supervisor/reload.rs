//! The supervisor's set of backends: adding one, a reload (backends added, changed, removed, and one
//! removed earlier that comes back while it still drains), and forgetting a removed backend once every
//! instance of it has stopped.

use std::collections::HashMap;

use super::backend::{host_of, Backend};
use super::event_loop::Supervisor;
use super::keys::InstanceKey;
use super::lifecycle::Lifecycle;
use super::policy::Order;
use crate::msg::{BackendEntry, Host, LifecycleEvent, StopReason};

impl Supervisor {
    pub fn add_backend(&mut self, entry: BackendEntry) -> usize {
        self.insert_backend(Backend::new(entry))
    }

    /// Takes `backend` in (all its instances stopped); returns its key.
    pub fn insert_backend(&mut self, backend: Backend) -> usize {
        self.docker.sweep_leftovers(&backend.config);
        let host = backend.host.clone();
        let key = self.backends.insert(backend);
        self.by_host.insert(host, key);
        key
    }

    pub(super) fn reload(&mut self, entries: Vec<BackendEntry>) {
        let wanted: HashMap<Host, BackendEntry> = entries
            .into_iter()
            .map(|e| (host_of(&e.config), e))
            .collect();
        let gone: Vec<usize> = self
            .by_host
            .iter()
            .filter(|(host, _)| !wanted.contains_key(*host))
            .map(|(_, &key)| key)
            .collect();
        for (host, entry) in wanted {
            match self.by_host.get(&host) {
                Some(&key) => {
                    if self.backends[key].removed {
                        self.readd(key);
                    }
                    // The Activity Arc stays: the reactor keeps using the one it already has.
                    self.backends[key].set_config(entry.config);
                }
                None => {
                    log::debug!("{host}: added");
                    self.add_backend(entry);
                }
            }
        }
        for key in gone {
            self.backends[key].removed = true;
            self.order(key, Order::Stop(StopReason::Removed));
            self.forget_if_removed(key);
        }
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
            self.by_host.remove(&backend.host);
            for index in 0..backend.count() {
                self.timers.set(InstanceKey::new(key, index), None);
            }
            self.backends.remove(key);
        }
    }
}
