//! Each request thread's runtime state of every backend: each instance's lifecycle as last reported and
//! where it listens, the requests held until one can take them, and whatever the thread keeps per
//! backend. The reactor and the h2 worker each own one [`Upstreams`], generic over how they remember a
//! held request (`W`) and their extra data (`X`); both feed it the same reports and the same reload
//! [`Reconcile`](super::Reconcile), so they admit, hold, release and forget alike.
//!
//! A `[backends]` entry is one instance with the rules of [`BackendView`]; a pool's admission and
//! release over its instances are `pool_view`'s.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::balance::BalanceState;
use super::pool_view::{self, Affinity};
use super::route_table::RouteTable;
use super::view::{BackendView, Verdict};
use super::UpstreamAddr;
use crate::config::BackendConfig;
use crate::error::ProxyError;
use crate::msg::{
    Activity, BackendEvent, Clock, Command, Host, Lease, LifecycleEvent, State, Thread,
};

/// How much longer than `startup_timeout` a request is held: the supervisor reports a failed start when
/// the timeout passes, and that report should win over the hold's own expiry.
pub const HOLD_SLACK: Duration = Duration::from_secs(2);

/// Names a backend in tables and between the request threads: a slot, and the generation that holds it,
/// so a slot reused after a removal is never confused with the backend that had it before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendId {
    slot: u32,
    generation: u32,
}

impl BackendId {
    pub fn new(slot: u32, generation: u32) -> BackendId {
        BackendId { slot, generation }
    }

    fn index(self) -> usize {
        self.slot as usize
    }
}

/// `#slot.generation`, for logs about a backend whose Host is not at hand.
impl std::fmt::Display for BackendId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}.{}", self.slot, self.generation)
    }
}

/// One instance of one backend: what a connection to a backend is kept and pooled under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InstanceId {
    pub backend: BackendId,
    pub slot: u32,
}

/// A held request as a thread remembers it.
pub trait Waiter {
    /// The request gave up waiting on its own: it no longer counts against `max_held_requests`.
    fn is_gone(&self) -> bool {
        false
    }
}

/// One instance as a request thread sees it.
#[derive(Debug)]
pub struct Instance {
    /// Where it listens, as its last report said (a new port applies from its start).
    pub addr: UpstreamAddr,
    /// Its lifecycle as last reported.
    pub view: BackendView,
    /// Its traffic, shared with the other thread and the supervisor.
    pub activity: Arc<Activity>,
    pub weight: u16,
}

/// One backend as a request thread sees it.
#[derive(Debug)]
pub struct Backend<W, X> {
    pub id: BackendId,
    pub host: Host,
    pub config: Arc<BackendConfig>,
    /// By slot.
    pub instances: Vec<Instance>,
    /// Oldest first: whichever instance can take a request first takes the front.
    waiting: VecDeque<W>,
    pub(super) balance: BalanceState,
    /// A saturation `Demand` was sent since the pool's last lifecycle report: no need to send another.
    pub(super) demand_sent: bool,
    /// The held count the supervisor last heard from this thread.
    pub(super) reported: u32,
    /// The thread's own per-backend data.
    pub extra: X,
}

impl<W, X> Backend<W, X> {
    /// How long a request may be held for this backend while an instance starts.
    pub fn hold_limit(&self) -> Duration {
        self.config.timings.startup_timeout + HOLD_SLACK
    }

    /// The instance in `slot`.
    pub fn instance(&self, slot: u32) -> Option<&Instance> {
        self.instances.get(slot as usize)
    }

    /// The first instance: a `[backends]` entry's only one.
    pub fn first(&self) -> &Instance {
        &self.instances[0]
    }

    /// Gone from the config, forgotten once every instance has stopped.
    pub fn is_removed(&self) -> bool {
        self.instances.first().is_some_and(|i| i.view.removed)
    }

    pub fn held(&self) -> usize {
        self.waiting.len()
    }

    pub(super) fn push_waiting(&mut self, waiter: W) {
        self.waiting.push_back(waiter);
    }

    pub(super) fn pop_waiting(&mut self) -> Option<W> {
        self.waiting.pop_front()
    }

    pub(super) fn drain_waiting(&mut self) -> impl Iterator<Item = W> {
        std::mem::take(&mut self.waiting).into_iter()
    }
}

/// A request admitted to an instance, counted in flight there until the lease is dropped.
#[derive(Debug)]
pub struct Leased {
    pub slot: u32,
    pub lease: Lease,
}

/// What to do with a new request.
#[derive(Debug)]
pub enum Admission<R> {
    /// Forward it now to this instance. `ask` is a command for the supervisor (a pool at its soft
    /// limit wants another instance).
    Forward {
        to: Leased,
        ask: Option<Command>,
    },
    /// It waits (its waiter is kept) until `until`; `ask` is the command that gets something started.
    Hold {
        ask: Option<Command>,
        until: Instant,
        receipt: R,
    },
    Refuse(ProxyError),
}

/// What a report, a reload or a freed place asks of the thread for one backend.
#[derive(Debug)]
pub struct Outcome<W, X> {
    pub id: BackendId,
    /// Held requests to forward to the instance leased to each (`Ok`) or answer with the error.
    pub release: Vec<(W, Result<Leased, ProxyError>)>,
    /// A command for the supervisor.
    pub ask: Option<Command>,
    /// Close idle pooled connections: the instance behind them is going away.
    pub drop_pool: bool,
    /// Whose connections `drop_pool` is about: one instance, or `None` for all.
    pub slot: Option<u32>,
    /// The backend is gone for good (removed, and stopped or never started); its held requests are in
    /// `release` with a 404.
    pub forgotten: Option<Backend<W, X>>,
}

impl<W, X> Outcome<W, X> {
    fn new(id: BackendId) -> Self {
        Outcome {
            id,
            release: Vec::new(),
            ask: None,
            drop_pool: false,
            slot: None,
            forgotten: None,
        }
    }

    /// Whether it asks the supervisor to start something.
    pub fn asks_start(&self) -> bool {
        matches!(self.ask, Some(Command::Start(_) | Command::Demand { .. }))
    }
}

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
        let (max_held, shutting_down, clock, thread) =
            (self.max_held, self.shutting_down, self.clock, self.thread);
        let Some(backend) = backend.and_then(|id| self.get_mut(id)) else {
            return Admission::Refuse(ProxyError::unknown_host(host));
        };
        backend.waiting.retain(|w| !w.is_gone());
        let held = backend.waiting.len();
        if backend.config.is_pool() {
            let (context, waiter) = ((shutting_down, clock, thread), waiter);
            return pool_view::admit(backend, held, max_held, now, affinity, context, waiter);
        }
        let id = backend.id;
        let first = &mut backend.instances[0];
        match first.view.admit(&backend.host, held, max_held, now) {
            Verdict::Forward => match Lease::take(&first.activity, None, clock) {
                Some(lease) => Admission::Forward {
                    to: Leased { slot: 0, lease },
                    ask: None,
                },
                None => Admission::Refuse(ProxyError::too_many_held()),
            },
            Verdict::Refuse(err) => Admission::Refuse(err),
            // Nothing starts any more once the proxy shuts down; ready backends serve until they stop.
            Verdict::Hold { .. } if shutting_down => Admission::Refuse(ProxyError::shutting_down()),
            Verdict::Hold { start } => {
                let (waiter, receipt) = waiter();
                backend.waiting.push_back(waiter);
                Admission::Hold {
                    ask: start.then_some(Command::Start(id)),
                    until: now + backend.hold_limit(),
                    receipt,
                }
            }
        }
    }

    /// A held request gave up (its client left, or its wait ran out): it no longer counts against
    /// `max_held_requests`. For threads whose waiters cannot tell that themselves ([`Waiter::is_gone`]).
    pub fn abandon(&mut self, id: BackendId, is_it: impl Fn(&W) -> bool) {
        if let Some(backend) = self.get_mut(id) {
            backend.waiting.retain(|w| !is_it(w));
        }
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

    /// A request on `id` ended (its lease was dropped): a pool at its `max_in_flight` may take a held
    /// request now.
    pub fn freed(&mut self, id: InstanceId) -> Option<Outcome<W, X>> {
        let clock = self.clock;
        let backend = self.get_mut(id.backend)?;
        if backend.waiting.is_empty() || !backend.config.is_pool() {
            return None;
        }
        backend.waiting.retain(|w| !w.is_gone());
        let mut outcome = Outcome::new(backend.id);
        outcome.release = pool_view::release_to(backend, id.slot, clock);
        (!outcome.release.is_empty()).then_some(outcome)
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
        let (shutting_down, clock, thread) = (self.shutting_down, self.clock, self.thread);
        let backend = self.get_mut(id)?;
        let slot = instance.index;
        let host = backend.host.clone();
        let target = backend.instances.get_mut(slot as usize)?;
        if matches!(event, LifecycleEvent::Starting | LifecycleEvent::Ready) {
            // The instance says where it listens: a port changed by a reload takes effect with its start.
            target.addr = instance.addr;
        }
        backend.waiting.retain(|w| !w.is_gone());
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
                clock,
                thread,
                &mut outcome,
            );
            return Some(outcome);
        }
        if let Some(result) = reaction.release {
            let waiting = std::mem::take(&mut backend.waiting);
            let activity = &backend.instances[0].activity;
            outcome.release = waiting
                .into_iter()
                .map(|w| {
                    let leased = result.clone().and_then(|()| {
                        Lease::take(activity, None, clock)
                            .map(|lease| Leased { slot: 0, lease })
                            .ok_or_else(ProxyError::too_many_held)
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
        self.iter_mut()
            .flat_map(|b| std::mem::take(&mut b.waiting))
            .map(|w| (w, Err(ProxyError::shutting_down())))
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
        outcome.release = std::mem::take(&mut gone.waiting)
            .into_iter()
            .map(|w| (w, Err(err.clone())))
            .collect();
        outcome.drop_pool = true;
        outcome.forgotten = Some(gone);
        outcome
    }

    /// Puts a backend into its slot (a reload added it); whatever held the slot before is returned.
    pub(super) fn insert(
        &mut self,
        id: BackendId,
        config: Arc<BackendConfig>,
        activity: &[Arc<Activity>],
    ) -> Option<Outcome<W, X>> {
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
            waiting: VecDeque::new(),
            demand_sent: false,
            reported: 0,
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

/// The instances of `config`, each with its counters, taking over the state of the ones it `had` by slot.
fn instances_for(
    config: &BackendConfig,
    activity: &[Arc<Activity>],
    had: Vec<Instance>,
) -> Vec<Instance> {
    let mut had = had.into_iter();
    super::instance::instances_of(config)
        .into_iter()
        .zip(activity)
        .map(|(spec, activity)| match had.next() {
            Some(old) => Instance {
                activity: activity.clone(),
                weight: spec.weight,
                ..old
            },
            None => Instance {
                addr: spec.addr,
                view: BackendView::default(),
                activity: activity.clone(),
                weight: spec.weight,
            },
        })
        .collect()
}
