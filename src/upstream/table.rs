//! Each request thread's runtime state of every backend: each instance's lifecycle as last reported and
//! where it listens, the requests held until one can take them, and whatever the thread keeps per
//! backend. The reactor and the h2 worker each own one [`Upstreams`], generic over how they remember a
//! held request (`W`) and their extra data (`X`); both feed it the same reports and the same reload
//! [`Reconcile`](super::Reconcile), so they admit, hold, release and forget alike.
//!
//! A `[backends]` entry is one instance with the rules of [`BackendView`](super::view::BackendView); a pool's admission and
//! release over its instances are `pool_view`'s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::affinity::Affinity;
use super::backend::{instances_for, Admission, Backend, BackendId, InstanceId, Leased, Outcome};
use super::backend::{Instance, Waiter};
use super::balance::BalanceState;
use super::pool_view;
use super::queue::Queue;
use super::route_table::RouteTable;
use super::view::Verdict;
use crate::config::BackendConfig;
use crate::error::ProxyError;
use crate::msg::{
    Activity, BackendEntry, BackendEvent, Clock, Command, Host, Lease, LifecycleEvent, State,
    Thread,
};

struct Slot<W, X> {
    generation: u32,
    backend: Option<Backend<W, X>>,
}

pub struct Upstreams<W, X> {
    routes: Arc<RouteTable>,
    slots: Vec<Slot<W, X>>,
    /// A reload plans by name (the config's key), and the admin API's ready callback names one.
    by_host: HashMap<Host, BackendId>,
    max_held: usize,
    /// Nothing is held any more: no backend will start.
    shutting_down: bool,
    /// Which thread this is, for the demand it reports.
    thread: Thread,
    clock: Clock,
    /// Seeds each pool's balancing state (random choices differ per process and per thread).
    seed: u64,
}

impl<W: Waiter, X: Default> Upstreams<W, X> {
    /// An empty set; the first [`Reconcile`](super::Reconcile) fills it. `max_held` is
    /// `limits.max_held_requests`, per backend.
    pub fn new(max_held: usize, thread: Thread, clock: Clock) -> Self {
        Upstreams {
            routes: Arc::default(),
            slots: Vec::new(),
            by_host: HashMap::new(),
            max_held,
            shutting_down: false,
            thread,
            clock,
            seed: super::balance::random_seed() ^ thread as u64,
        }
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The route table itself, for a `Reconcile` that keeps it (a session added or removed).
    pub fn shared_routes(&self) -> Arc<RouteTable> {
        self.routes.clone()
    }

    /// The id a backend added now (outside a reload: a session's) gets.
    pub fn next_id(&self) -> BackendId {
        self.next_free_id(&[])
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub fn get(&self, id: BackendId) -> Option<&Backend<W, X>> {
        let slot = self.slots.get(id.index())?;
        slot.backend.as_ref().filter(|b| b.id == id)
    }

    pub fn get_mut(&mut self, id: BackendId) -> Option<&mut Backend<W, X>> {
        let slot = self.slots.get_mut(id.index())?;
        slot.backend.as_mut().filter(|b| b.id == id)
    }

    /// The instance a connection was made to, if its backend is still configured.
    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.get(id.backend)?.instance(id.slot)
    }

    pub fn id_of(&self, host: &str) -> Option<BackendId> {
        self.by_host.get(host).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Backend<W, X>> {
        self.slots.iter().filter_map(|slot| slot.backend.as_ref())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Backend<W, X>> {
        self.slots
            .iter_mut()
            .filter_map(|slot| slot.backend.as_mut())
    }

    pub fn len(&self) -> usize {
        self.by_host.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Decides a new request's fate. `backend` is what the route table matched (`None`: no route), `host`
    /// the request's own, for the 404; `affinity` answers a pool's hash key or sticky cookie. A held
    /// request's waiter comes from `waiter`, which also gives the caller its receipt (the h2 worker's
    /// receiving end).
    pub fn admit<R>(
        &mut self,
        backend: Option<BackendId>,
        host: &str,
        now: Instant,
        affinity: &impl Affinity,
        waiter: impl FnOnce() -> (W, R),
    ) -> Admission<R> {
        let (max_held, shutting_down, thread) = (self.max_held, self.shutting_down, self.thread);
        let stamp = self.clock.stamp(now);
        let Some(backend) = backend.and_then(|id| self.get_mut(id)) else {
            return Admission::Refuse(ProxyError::unknown_host(host));
        };
        backend.waiting.prune();
        let held = backend.waiting.len();
        if backend.config.is_pool() {
            let context = (shutting_down, stamp, thread);
            return pool_view::admit(backend, held, max_held, affinity, context, waiter);
        }
        let id = backend.id;
        let first = &mut backend.instances[0];
        match first.view.admit(&backend.host, held, max_held, now) {
            Verdict::Forward => Admission::Forward {
                to: Leased {
                    slot: 0,
                    lease: Lease::begin(&first.activity, stamp),
                },
                ask: None,
            },
            Verdict::Refuse(err) => Admission::Refuse(err),
            // Nothing starts any more once the proxy shuts down; ready backends serve until they stop.
            Verdict::Hold { .. } if shutting_down => Admission::Refuse(ProxyError::shutting_down()),
            Verdict::Hold { start } => {
                let (waiter, receipt) = waiter();
                backend.waiting.push(waiter, None);
                Admission::Hold {
                    ask: start.then_some(Command::Start(id)),
                    until: now + backend.hold_limit(),
                    receipt,
                }
            }
        }
    }

    /// A held request gave up (its client left, or its wait ran out): it no longer counts against
    /// `max_held_requests`. `is_it` picks it out, for threads whose waiters cannot tell that themselves
    /// ([`Waiter::is_gone`]; the h2 worker's can, and passes `|_| false`). A pool's controller may need
    /// to hear the new count (the command returned).
    pub fn abandon(&mut self, id: BackendId, is_it: impl Fn(&W) -> bool) -> Option<Command> {
        let thread = self.thread;
        let backend = self.get_mut(id)?;
        backend.waiting.retain(|w| !is_it(w));
        backend.waiting.prune();
        let pool = backend.config.pool.clone()?;
        pool_view::report_demand(backend, &pool, thread, false)
    }

    /// What a request held for `id` is answered when its wait runs out: a pool whose instances are up
    /// but full had no room (`QUEUE_TIMEOUT`); otherwise nothing became ready in time.
    pub fn wait_expired(&self, id: BackendId, host: &str) -> ProxyError {
        let full = self.get(id).and_then(|b| {
            let pool = b.config.pool.as_ref()?;
            let up = b.instances.iter().any(|i| i.view.state == State::Ready);
            up.then(|| ProxyError::queue_timeout(&b.host, pool.scaling.queue_timeout))
        });
        full.unwrap_or_else(|| ProxyError::not_ready_in_time(host))
    }

    /// A request on `id` ended (its lease was dropped) at `now`: a pool at its `max_in_flight` may take
    /// a held request now.
    pub fn freed(&mut self, id: InstanceId, now: Instant) -> Option<Outcome<W, X>> {
        let (clock, thread) = (self.clock, self.thread);
        let backend = self.get_mut(id.backend)?;
        // Nothing held and nothing to tell: the common case (every request's end), decided without a
        // look at the pool or the clock.
        if backend.waiting.is_empty() && backend.reported == 0 {
            return None;
        }
        let stamp = clock.stamp(now);
        let pool = backend.config.pool.clone()?;
        backend.waiting.prune();
        let mut outcome = Outcome::new(backend.id);
        outcome.release = pool_view::release_to(backend, id.slot, stamp);
        if backend.waiting.is_empty() {
            backend.waiting_flags.set(thread, false);
        }
        outcome.ask = pool_view::report_demand(backend, &pool, thread, false);
        (!outcome.release.is_empty() || outcome.ask.is_some()).then_some(outcome)
    }

    /// Whether the other request thread holds requests for the pool of `id` while it is full: a place
    /// this thread frees there must be offered to it (`SlotFreed`).
    pub fn other_waits(&self, id: InstanceId) -> bool {
        self.get(id.backend)
            .is_some_and(|b| b.waiting_flags.is_set(self.thread.other()))
    }

    /// Applies one lifecycle report; `None` when it is about a backend this thread does not know, such
    /// as one forgotten since, whose slot a newer backend may hold (the generation tells them apart).
    pub fn on_event(&mut self, report: BackendEvent, now: Instant) -> Option<Outcome<W, X>> {
        let BackendEvent {
            backend: id,
            instance,
            event,
            ..
        } = report;
        let (shutting_down, thread) = (self.shutting_down, self.thread);
        let stamp = self.clock.stamp(now);
        let backend = self.get_mut(id)?;
        let slot = instance.index;
        let host = backend.host.clone();
        let target = backend.instances.get_mut(slot as usize)?;
        if matches!(event, LifecycleEvent::Starting | LifecycleEvent::Ready) {
            // The instance says where it listens: a port changed by a reload takes effect with its start.
            target.addr = instance.addr;
        }
        backend.waiting.prune();
        let has_waiting = !backend.waiting.is_empty();
        let reaction = target
            .view
            .apply(&host, event.clone(), now, has_waiting, shutting_down);
        if reaction.forget && backend.instances.iter().all(|i| i.view.state_is_stopped()) {
            return Some(self.forget(id));
        }
        let mut outcome = Outcome::new(id);
        outcome.drop_pool = reaction.drop_pool;
        outcome.slot = Some(slot);
        if backend.config.is_pool() {
            pool_view::on_event(
                backend,
                slot,
                &event,
                shutting_down,
                stamp,
                thread,
                &mut outcome,
            );
            return Some(outcome);
        }
        if let Some(result) = reaction.release {
            let waiting = backend.waiting.take_all();
            let activity = &backend.instances[0].activity;
            outcome.release = waiting
                .into_iter()
                .map(|w| {
                    let leased = result.clone().map(|()| Leased {
                        slot: 0,
                        lease: Lease::begin(activity, stamp),
                    });
                    (w, leased)
                })
                .collect();
        }
        if reaction.start {
            outcome.ask = Some(Command::Start(id));
        }
        Some(outcome)
    }

    /// Proxy shutdown: nothing is held from now on, and what waits is answered 503 at once (backends that
    /// are ready keep serving until their own stop begins).
    pub fn shut_down(&mut self) -> Vec<(W, Result<Leased, ProxyError>)> {
        self.shutting_down = true;
        let err = ProxyError::shutting_down();
        self.iter_mut()
            .flat_map(|b| b.waiting.refuse_all(&err))
            .collect()
    }

    /// Removes a backend for good; its held requests are answered 404.
    pub(super) fn forget(&mut self, id: BackendId) -> Outcome<W, X> {
        let mut outcome = Outcome::new(id);
        let Some(slot) = self.slots.get_mut(id.index()) else {
            return outcome;
        };
        if slot.backend.as_ref().is_none_or(|b| b.id != id) {
            return outcome;
        }
        let Some(mut gone) = slot.backend.take() else {
            return outcome;
        };
        self.by_host.remove(&gone.host);
        let err = ProxyError::unknown_host(&gone.host);
        outcome.release = gone.waiting.refuse_all(&err);
        outcome.drop_pool = true;
        outcome.forgotten = Some(gone);
        outcome
    }

    /// Puts a backend into its slot (a reload added it); whatever held the slot before is returned.
    pub(super) fn insert(&mut self, id: BackendId, entry: &BackendEntry) -> Option<Outcome<W, X>> {
        let (config, activity) = (entry.config.clone(), &entry.activity);
        while self.slots.len() <= id.index() {
            self.slots.push(Slot {
                generation: 0,
                backend: None,
            });
        }
        // Both threads apply the same reloads in the same order, so the slot is free; if it ever were
        // not, the old occupant is forgotten rather than silently overwritten.
        let occupant = self.slots[id.index()].backend.as_ref().map(|old| old.id);
        let displaced = occupant.map(|old| self.forget(old));
        let host = Host::from(config.hostname.as_str());
        let instances = instances_for(&config, activity, Vec::new());
        let backend = Backend {
            id,
            host: host.clone(),
            balance: BalanceState::new(self.seed ^ u64::from(id.slot), instances.len()),
            instances,
            config,
            waiting: Queue::default(),
            demand_sent: false,
            reported: 0,
            waiting_flags: entry.waiting.clone(),
            metrics: entry.metrics.clone(),
            extra: X::default(),
        };
        let slot = &mut self.slots[id.index()];
        slot.generation = id.generation;
        slot.backend = Some(backend);
        self.by_host.insert(host, id);
        displaced
    }

    /// A reload kept this backend with `config`: instances keep their state by slot, slots beyond the
    /// new count go, new ones start stopped.
    pub(super) fn keep(
        &mut self,
        id: BackendId,
        config: Arc<BackendConfig>,
        activity: &[Arc<Activity>],
        changed: bool,
    ) {
        let seed = self.seed;
        let Some(backend) = self.get_mut(id) else {
            return;
        };
        let old = std::mem::take(&mut backend.instances);
        backend.instances = instances_for(&config, activity, old);
        for instance in &mut backend.instances {
            instance.view.reloaded(changed);
        }
        if changed {
            backend.balance = BalanceState::new(seed ^ u64::from(id.slot), backend.instances.len());
        }
        backend.config = config;
    }

    /// The id a backend added now gets: the lowest free slot, in a new generation.
    pub(super) fn next_free_id(&self, taken: &[BackendId]) -> BackendId {
        let free = self.slots.iter().enumerate().find(|(index, slot)| {
            slot.backend.is_none() && !taken.iter().any(|t| t.index() == *index)
        });
        match free {
            Some((index, slot)) => BackendId::new(index as u32, slot.generation.wrapping_add(1)),
            None => {
                let past_taken = taken.iter().map(|t| t.index() + 1).max().unwrap_or(0);
                let index = self.slots.len().max(past_taken);
                BackendId::new(index as u32, 1)
            }
        }
    }

    pub(super) fn set_routes(&mut self, routes: Arc<RouteTable>) {
        self.routes = routes;
    }
}
