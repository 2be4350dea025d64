//! What a request thread knows about one backend: its instances (each one's lifecycle as last reported,
//! address and shared counters), the requests held for it, and the names it goes by between threads
//! ([`BackendId`], and [`InstanceId`] for one instance). The values admission and reports hand back
//! ([`Admission`], [`Outcome`]) are here too; [`super::table`] keeps every backend and applies the rules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::balance::BalanceState;
use super::queue::Queue;
use super::view::BackendView;
use super::UpstreamAddr;
use crate::config::BackendConfig;
use crate::error::ProxyError;
use crate::metrics::BackendMetrics;
use crate::msg::{Activity, Command, Host, Lease, Waiting};

/// How much longer than `startup_timeout` a request is held: the supervisor reports a failed start when
/// the timeout passes, and that report should win over the hold's own expiry.
pub const HOLD_SLACK: Duration = Duration::from_secs(2);

/// Names a backend in tables and between the request threads: a slot, and the generation that holds it,
/// so a slot reused after a removal is never confused with the backend that had it before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendId {
    pub(super) slot: u32,
    pub(super) generation: u32,
}

impl BackendId {
    pub fn new(slot: u32, generation: u32) -> BackendId {
        BackendId { slot, generation }
    }

    pub(super) fn index(self) -> usize {
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
    pub(super) waiting: Queue<W>,
    pub(super) balance: BalanceState,
    /// A saturation `Demand` was sent since the pool's last lifecycle report: no need to send another.
    pub(super) demand_sent: bool,
    /// The held count the supervisor last heard from this thread.
    pub(super) reported: u32,
    /// Which threads hold requests for it while it is full; shared with the other thread.
    pub waiting_flags: Arc<Waiting>,
    /// The counters its requests and lifecycle add to (its metrics label's, shared by both threads).
    pub metrics: Arc<BackendMetrics>,
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
    pub(super) fn new(id: BackendId) -> Self {
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

/// The instances of `config`, each with its counters, taking over the state of the ones it `had` by slot.
pub(super) fn instances_for(
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
