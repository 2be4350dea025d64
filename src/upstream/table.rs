//! Each request thread's runtime state of every backend: the lifecycle as last reported, the requests held
//! until it is ready, where its instance listens, and whatever the thread keeps per backend (the reactor's
//! idle connections). The reactor and the h2 worker each own one [`Upstreams`], generic over how they
//! remember a held request (`W`) and their extra data (`X`); both feed it the same reports and the same
//! reload [`Reconcile`](super::Reconcile), so they admit, hold, release and forget alike.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::route_table::RouteTable;
use super::view::{BackendView, Verdict};
use super::UpstreamAddr;
use crate::config::BackendConfig;
use crate::error::ProxyError;
use crate::msg::{Activity, BackendEvent, Host, LifecycleEvent};

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

/// A held request as a thread remembers it.
pub trait Waiter {
    /// The request gave up waiting on its own: it no longer counts against `max_held_requests`.
    fn is_gone(&self) -> bool {
        false
    }
}

/// One backend as a request thread sees it.
#[derive(Debug)]
pub struct Backend<W, X> {
    pub id: BackendId,
    pub host: Host,
    pub config: Arc<BackendConfig>,
    pub activity: Arc<Activity>,
    /// Where the current instance listens, as its last report said (a new port applies from its start).
    pub addr: UpstreamAddr,
    /// The lifecycle as last reported, and the admission rules.
    pub view: BackendView,
    waiting: Vec<W>,
    /// The thread's own per-backend data.
    pub extra: X,
}

impl<W, X> Backend<W, X> {
    /// How long a request may be held for this backend.
    pub fn hold_limit(&self) -> Duration {
        self.config.timings.startup_timeout + HOLD_SLACK
    }
}

/// What to do with a new request.
#[derive(Debug)]
pub enum Admission<R> {
    /// Forward it now to the backend it was admitted for.
    Forward,
    /// It waits (its waiter is kept) until `until`; `start` says `Command::Start` must be sent for the
    /// backend the caller asked about (no start is under way yet).
    Hold {
        start: bool,
        until: Instant,
        receipt: R,
    },
    Refuse(ProxyError),
}

/// What a report, or a reload, asks of the thread for one backend.
#[derive(Debug)]
pub struct Outcome<W, X> {
    pub id: BackendId,
    /// Held requests to forward (`Ok`) or answer with the error.
    pub release: Option<(Vec<W>, Result<(), ProxyError>)>,
    /// Send `Command::Start` for this backend (`id`).
    pub start: bool,
    /// Close the backend's idle pooled connections: the instance behind them is going away.
    pub drop_pool: bool,
    /// The backend is gone for good (removed, and stopped or never started); its held requests are in
    /// `release` with a 404.
    pub forgotten: Option<Backend<W, X>>,
}

impl<W, X> Outcome<W, X> {
    fn new(id: BackendId) -> Self {
        Outcome {
            id,
            release: None,
            start: false,
            drop_pool: false,
            forgotten: None,
        }
    }
}

struct Slot<W, X> {
    generation: u32,
    backend: Option<Backend<W, X>>,
}

pub struct Upstreams<W, X> {
    routes: Arc<RouteTable>,
    slots: Vec<Slot<W, X>>,
    /// A reload plans by Host (the config's key), and the admin API's ready callback names one.
    by_host: HashMap<Host, BackendId>,
    max_held: usize,
    /// Nothing is held any more: no backend will start.
    shutting_down: bool,
}

impl<W: Waiter, X: Default> Upstreams<W, X> {
    /// An empty set; the first [`Reconcile`](super::Reconcile) fills it. `max_held` is
    /// `limits.max_held_requests`, per backend.
    pub fn new(max_held: usize) -> Self {
        Upstreams {
            routes: Arc::default(),
            slots: Vec::new(),
            by_host: HashMap::new(),
            max_held,
            shutting_down: false,
        }
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    pub fn get(&self, id: BackendId) -> Option<&Backend<W, X>> {
        let slot = self.slots.get(id.index())?;
        slot.backend.as_ref().filter(|b| b.id == id)
    }

    pub fn get_mut(&mut self, id: BackendId) -> Option<&mut Backend<W, X>> {
        let slot = self.slots.get_mut(id.index())?;
        slot.backend.as_mut().filter(|b| b.id == id)
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
    /// the request's own, for the 404. A held request's waiter comes from `waiter`, which also gives the
    /// caller its receipt (the h2 worker's receiving end).
    pub fn admit<R>(
        &mut self,
        backend: Option<BackendId>,
        host: &str,
        now: Instant,
        waiter: impl FnOnce() -> (W, R),
    ) -> Admission<R> {
        let max_held = self.max_held;
        let shutting_down = self.shutting_down;
        let Some(backend) = backend.and_then(|id| self.get_mut(id)) else {
            return Admission::Refuse(ProxyError::unknown_host(host));
        };
        backend.waiting.retain(|w| !w.is_gone());
        let held = backend.waiting.len();
        match backend.view.admit(&backend.host, held, max_held, now) {
            Verdict::Forward => Admission::Forward,
            Verdict::Refuse(err) => Admission::Refuse(err),
            // Nothing starts any more once the proxy shuts down; ready backends serve until they stop.
            Verdict::Hold { .. } if shutting_down => Admission::Refuse(ProxyError::shutting_down()),
            Verdict::Hold { start } => {
                let (waiter, receipt) = waiter();
                backend.waiting.push(waiter);
                Admission::Hold {
                    start,
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

    /// Applies one lifecycle report; `None` when it is about a backend this thread does not know, such
    /// as one forgotten since, whose slot a newer backend may hold (the generation tells them apart).
    pub fn on_event(&mut self, report: BackendEvent, now: Instant) -> Option<Outcome<W, X>> {
        let BackendEvent {
            backend: id,
            instance,
            event,
            ..
        } = report;
        let shutting_down = self.shutting_down;
        let backend = self.get_mut(id)?;
        if matches!(event, LifecycleEvent::Starting | LifecycleEvent::Ready) {
            // The instance says where it listens: a port changed by a reload takes effect with its start.
            backend.addr = instance.addr;
        }
        backend.waiting.retain(|w| !w.is_gone());
        let has_waiting = !backend.waiting.is_empty();
        let reaction = backend
            .view
            .apply(&backend.host, event, now, has_waiting, shutting_down);
        if reaction.forget {
            return Some(self.forget(id));
        }
        let mut outcome = Outcome::new(id);
        if let Some(result) = reaction.release {
            outcome.release = Some((std::mem::take(&mut backend.waiting), result));
        }
        outcome.start = reaction.start;
        outcome.drop_pool = reaction.drop_pool;
        Some(outcome)
    }

    /// Proxy shutdown: nothing is held from now on, and what waits is answered 503 at once (backends that
    /// are ready keep serving until their own stop begins).
    pub fn shut_down(&mut self) -> Vec<(Vec<W>, Result<(), ProxyError>)> {
        self.shutting_down = true;
        self.iter_mut()
            .filter(|b| !b.waiting.is_empty())
            .map(|b| {
                let err = ProxyError::shutting_down();
                (std::mem::take(&mut b.waiting), Err(err))
            })
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
        outcome.release = Some((std::mem::take(&mut gone.waiting), Err(err)));
        outcome.drop_pool = true;
        outcome.forgotten = Some(gone);
        outcome
    }

    /// Puts a backend into its slot (a reload added it); whatever held the slot before is returned.
    pub(super) fn insert(
        &mut self,
        id: BackendId,
        config: Arc<BackendConfig>,
        activity: Arc<Activity>,
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
        let backend = Backend {
            id,
            host: host.clone(),
            addr: UpstreamAddr::of(&config),
            config,
            activity,
            view: BackendView::default(),
            waiting: Vec::new(),
            extra: X::default(),
        };
        let slot = &mut self.slots[id.index()];
        slot.generation = id.generation;
        slot.backend = Some(backend);
        self.by_host.insert(host, id);
        displaced
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
