//! What the supervisor keeps per backend: its policy, its latest config, the traffic counters the protocol
//! threads share with it, and its set of instances (each an [`InstanceSlot`] with its own lifecycle).

use std::sync::Arc;

use super::keys::InstanceKey;
use super::policy::Policy;
use super::slot::InstanceSlot;
use crate::config::BackendConfig;
use crate::msg::{Activity, BackendEntry, Host};
use crate::upstream::instance::{instances_of, InstanceSpec};
use crate::upstream::BackendId;

#[derive(Debug)]
pub struct Backend {
    /// The name the reactor gave it; every report carries it.
    pub id: BackendId,
    /// For logs, the ready URL and the health probe's `Host`.
    pub host: Host,
    pub policy: Policy,
    /// The latest config; the next start of each instance uses it.
    pub config: Arc<BackendConfig>,
    /// Each instance's traffic, by slot.
    pub activity: Vec<Arc<Activity>>,
    /// Requests each request thread last said it holds for the pool (reactor, h2 worker).
    pub held: [u32; 2],
    /// By index: `instances[i].spec.index == i`.
    pub instances: Vec<InstanceSlot>,
    /// Gone from the config: forget it once every instance has stopped.
    pub removed: bool,
    /// Told to stop for the proxy's shutdown (which waits for what starts after it to stop first).
    pub shutdown_ordered: bool,
    /// A session's start came while the session it waits for still ran: start once that one is gone.
    pub start_held: bool,
    /// The backend a session's start waits for (its key's previous session, or the one evicted for
    /// its room): first `SessionTag::after`, then, if that one ends without having run, what it
    /// waited for in turn.
    pub waits_for: Option<BackendId>,
}

impl Backend {
    /// A backend with the instances its config describes, all stopped.
    pub fn new(id: BackendId, entry: BackendEntry) -> Self {
        let specs = instances_of(&entry.config);
        Backend::with_instances(id, entry, specs)
    }

    /// A backend with the given instances (in index order), all stopped.
    pub fn with_instances(id: BackendId, entry: BackendEntry, specs: Vec<InstanceSpec>) -> Self {
        debug_assert!(specs.iter().zip(0..).all(|(s, i)| s.index == i));
        let waits_for = entry.config.session.as_ref().and_then(|tag| tag.after);
        Backend {
            id,
            host: host_of(&entry.config),
            policy: Policy::OnDemand,
            config: entry.config,
            activity: entry.activity,
            held: [0, 0],
            instances: specs.into_iter().map(InstanceSlot::new).collect(),
            removed: false,
            shutdown_ordered: false,
            start_held: false,
            waits_for,
        }
    }

    /// Takes a reloaded config. The next start of each instance uses it and its instance specs; a running
    /// instance keeps its own config and address until it stops.
    pub fn set_config(&mut self, config: Arc<BackendConfig>) {
        if *self.config != *config {
            log::info!("{}: new settings apply from its next start", self.host);
            let specs = instances_of(&config);
            // Slots beyond the new count retire (the caller stops them); new slots start stopped.
            for slot in self.instances.iter_mut().skip(specs.len()) {
                slot.retired = true;
                slot.keep_running = false;
            }
            for (index, spec) in specs.into_iter().enumerate() {
                match self.instances.get_mut(index) {
                    Some(slot) => {
                        slot.spec = spec;
                        slot.retired = false;
                        // New settings may well fix what kept failing: they get their own chances, and
                        // a rolling replacement that stopped at a failed instance goes on.
                        slot.crash_loop.forget();
                        slot.replacing = false;
                    }
                    None => self.instances.push(InstanceSlot::new(spec)),
                }
            }
        }
        self.config = config;
    }

    /// How many instances it has.
    pub fn count(&self) -> u32 {
        u32::try_from(self.instances.len()).unwrap_or(u32::MAX)
    }

    pub fn slot(&self, index: u32) -> Option<&InstanceSlot> {
        self.instances.get(usize::try_from(index).ok()?)
    }

    pub fn slot_mut(&mut self, index: u32) -> Option<&mut InstanceSlot> {
        self.instances.get_mut(usize::try_from(index).ok()?)
    }

    /// Its instances with their keys, given the backend's own key.
    pub fn slots(&self, backend: usize) -> impl Iterator<Item = (InstanceKey, &InstanceSlot)> {
        (0u32..)
            .zip(&self.instances)
            .map(move |(index, slot)| (InstanceKey::new(backend, index), slot))
    }

    /// The traffic counters of instance `index` (a retired slot shares none with the request threads
    /// any more: it reads as idle).
    pub fn activity_of(&self, index: u32) -> Arc<Activity> {
        self.activity
            .get(index as usize)
            .cloned()
            .unwrap_or_default()
    }

    /// Every instance stopped with nothing left to reap.
    pub fn is_at_rest(&self) -> bool {
        self.instances.iter().all(InstanceSlot::is_at_rest)
    }
}

fn host_of(config: &BackendConfig) -> Host {
    Host::from(config.hostname.as_str())
}
