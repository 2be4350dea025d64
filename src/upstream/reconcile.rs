//! The one reload algorithm. The reactor computes a [`Reconcile`] once, from its backends and the new
//! config ([`Upstreams::plan`]); it and the h2 worker then apply that same value ([`Upstreams::apply`]),
//! and the supervisor makes the same changes to the backends it runs (`Command::Reload`), so all three
//! threads add, keep, change and remove backends alike, under the same ids.

use std::collections::HashMap;
use std::sync::Arc;

use super::backend::{BackendId, Outcome, Waiter};
use super::route_table::RouteTable;
use super::table::Upstreams;
use crate::config::hosts::HostConfig;
use crate::config::pools::Sticky;
use crate::config::BackendConfig;
use crate::msg::{BackendEntry, Host, State};

/// One reload, as every request thread applies it.
#[derive(Debug, Clone)]
pub struct Reconcile {
    /// The routes after the reload, swapped in whole.
    pub routes: Arc<RouteTable>,
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone)]
pub enum Change {
    /// A backend new to the config.
    Add { id: BackendId, entry: BackendEntry },
    /// A backend still in the config; `changed` says whether its settings differ (which also clears a
    /// back-off: new settings deserve a fresh start). Its activity counters carry over.
    Keep {
        id: BackendId,
        entry: BackendEntry,
        changed: bool,
    },
    /// Gone from the config: new requests are refused while it drains, and it is forgotten once stopped.
    Remove { id: BackendId },
}

impl Reconcile {
    /// The first set of backends, as every thread (the supervisor too) starts with it.
    pub fn initial(backends: &[Arc<BackendConfig>], hosts: &[HostConfig]) -> Reconcile {
        Upstreams::<NoWaiter, ()>::new(0, crate::msg::Thread::Reactor, crate::msg::Clock::new())
            .plan(backends, hosts)
    }
}

impl<W: Waiter, X: Default> Upstreams<W, X> {
    /// The reload from this set of backends to `backends` and the route tables of `hosts` (the new
    /// config's, in file order).
    pub fn plan(&self, backends: &[Arc<BackendConfig>], hosts: &[HostConfig]) -> Reconcile {
        let mut changes = Vec::with_capacity(backends.len());
        let mut added: Vec<BackendId> = Vec::new();
        let mut routed: Vec<(Host, BackendId)> = Vec::with_capacity(backends.len());
        let mut named: Vec<(Host, BackendId)> = Vec::with_capacity(backends.len());
        for config in backends {
            let existing = self.id_of(&config.hostname).and_then(|id| self.get(id));
            let change = match existing {
                Some(backend) => {
                    let had: Vec<_> = backend
                        .instances
                        .iter()
                        .map(|i| i.activity.clone())
                        .collect();
                    let waiting = backend.waiting_flags.clone();
                    Change::Keep {
                        id: backend.id,
                        entry: BackendEntry::keeping(config.clone(), &had, waiting),
                        changed: *backend.config != **config,
                    }
                }
                None => {
                    let id = self.next_free_id(&added);
                    added.push(id);
                    Change::Add {
                        id,
                        entry: BackendEntry::new(config.clone()),
                    }
                }
            };
            let id = match &change {
                Change::Add { id, .. } | Change::Keep { id, .. } | Change::Remove { id } => *id,
            };
            named.push((Host::from(config.hostname.as_str()), id));
            if !config.is_pool() {
                // A `[backends]` entry answers its own Host; a pool only what routes send it.
                routed.push((Host::from(config.hostname.as_str()), id));
            }
            changes.push(change);
        }
        for backend in self.iter() {
            // Sessions are not in the config: the session registry adds and removes them.
            if backend.config.session.is_some()
                || backends.iter().any(|c| c.hostname == *backend.host)
            {
                continue;
            }
            changes.push(Change::Remove { id: backend.id });
            let draining = backend
                .instances
                .iter()
                .any(|i| i.view.state != State::Stopped);
            if draining && !backend.config.is_pool() {
                // Still draining: its requests get 503 BACKEND_SHUTTING_DOWN, not 404, until it stops.
                routed.push((backend.host.clone(), backend.id));
            }
        }
        // Every `to` names a backend of the new config (the config checked it), so it is among `named`.
        let ids: HashMap<&str, BackendId> = named.iter().map(|(h, id)| (&**h, *id)).collect();
        let sticky: HashMap<&str, &Sticky> = backends
            .iter()
            .filter_map(|b| Some((b.hostname.as_str(), b.pool.as_ref()?.sticky.as_ref()?)))
            .collect();
        let target_of = |name: &str| {
            let id = ids.get(name).copied()?;
            Some((id, sticky.get(name).copied().cloned()))
        };
        let routes = RouteTable::build(routed.iter().cloned(), hosts, target_of);
        Reconcile {
            routes: Arc::new(routes),
            changes,
        }
    }

    /// Applies a reload. The outcomes are for backends forgotten at once (removed before they ever
    /// started): their held requests are answered 404 and their pools closed.
    pub fn apply(&mut self, reconcile: &Reconcile) -> Vec<Outcome<W, X>> {
        let mut outcomes = Vec::new();
        for change in &reconcile.changes {
            match change {
                Change::Add { id, entry } => {
                    let displaced = self.insert(*id, entry);
                    outcomes.extend(displaced);
                }
                Change::Keep { id, entry, changed } => {
                    self.keep(*id, entry.config.clone(), &entry.activity, *changed);
                }
                Change::Remove { id } => {
                    let Some(backend) = self.get_mut(*id) else {
                        continue;
                    };
                    for instance in &mut backend.instances {
                        instance.view.removed = true;
                    }
                    if backend
                        .instances
                        .iter()
                        .all(|i| i.view.state == State::Stopped)
                    {
                        // Never started (or already stopped): nothing to drain.
                        outcomes.push(self.forget(*id));
                    }
                }
            }
        }
        self.set_routes(reconcile.routes.clone());
        outcomes
    }
}

/// For planning from an empty set, where nothing is ever held.
struct NoWaiter;

impl Waiter for NoWaiter {}
