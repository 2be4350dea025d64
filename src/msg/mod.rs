//! The messages between threads, and the few facts they share.
//!
//! ```text
//!  reactor, h2 worker ──Command──▶ supervisor   Start(id), Demand{id, held, grow} and StartSlot{id, slot}
//!                                               (pools), ReadyCallback(id, slot), Reload(Reconcile),
//!                                               Shutdown
//!  reactor ◀──ReactorMsg── supervisor           Backend(BackendEvent { backend: id, instance, .. }),
//!                                               ShutdownComplete
//!  reactor, h2 worker ──Command──▶ supervisor   End{id, drain} (a session's backend, for good)
//!  reactor ◀──ReactorMsg── h2 worker            SlotFreed(instance): a full pool's place it freed;
//!                                               H2Ack(seq): session updates applied; TokenSpent
//!  reactor ──H2Handle──▶ h2 worker              the same reports and reloads, hand-offs, SlotFreed,
//!                                               numbered session updates
//! ```
//! Every message names a backend by its [`BackendId`], the compact name the reactor gave it when it
//! planned the reload that added it ([`Reconcile`]); the supervisor applies that same plan, so all three
//! threads agree on every id, and a report about a backend that is gone (its slot since reused under a
//! new generation) cannot be mistaken for one about its successor. The Host is carried only for logs.
//! Each receiving thread sleeps in its own `mio::Poll`; a [`Mailbox`] pairs the channel with that poll's
//! `Waker`. The only state threads share without messages is in `shared`: each instance's [`Activity`]
//! (atomic counters, written by whoever carries traffic through a [`Lease`], read by the supervisor to
//! decide idleness and scaling), each pool's [`Waiting`] flags, the admin facts the supervisor
//! records and each instance's last lines of output ([`output`]); so no request pays for a message.

pub mod output;
mod shared;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

pub use output::{OutputLine, Stream};
pub use shared::{Activity, Clock, Facts, Lease, Stamp, Waiting};

use crate::config::BackendConfig;
use crate::metrics::BackendMetrics;
use crate::upstream::{BackendId, InstanceId, Reconcile, UpstreamAddr};

/// The Host a backend serves (lower-case, no port): what routes to it, and what logs call it. Between
/// threads a backend is named by its [`BackendId`] instead.
pub type Host = Arc<str>;

/// Sends to a thread that sleeps in a `mio::Poll`: the message, then a wake-up.
pub struct Mailbox<T> {
    tx: mpsc::Sender<T>,
    waker: Arc<mio::Waker>,
}

impl<T> Clone for Mailbox<T> {
    fn clone(&self) -> Self {
        Mailbox {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl<T> Mailbox<T> {
    pub fn new(tx: mpsc::Sender<T>, waker: Arc<mio::Waker>) -> Self {
        Mailbox { tx, waker }
    }

    /// Returns false when the receiving thread is gone.
    pub fn send(&self, msg: T) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        if let Err(e) = self.waker.wake() {
            log::error!("failed to wake a thread: {e}");
        }
        true
    }
}

/// What the reactor (and, for starts, the h2 worker) asks of the supervisor.
#[derive(Debug)]
pub enum Command {
    /// A request needs this backend. Idempotent: if it is starting nothing happens, if it is ready the
    /// supervisor answers `Ready` again, if it is stopping after idleness it starts again once stopped.
    Start(BackendId),
    /// A pool's demand as one thread sees it: it holds `held` requests for the pool (the latest count
    /// from each thread stands until the next), and with `grow` the ready instances carried more than
    /// their `target_in_flight` when it forwarded a request: start one more now, whatever the load is
    /// by the time this is read (a burst of short requests may be over by then).
    Demand {
        backend: BackendId,
        from: Thread,
        held: u32,
        grow: bool,
    },
    /// Hard affinity: a request waits for this one slot of a pool (the owner of its key), which is not
    /// running; start exactly it.
    StartSlot { backend: BackendId, slot: u32 },
    /// An instance called its ready URL (`POST /ready/{hostname}`, or `/ready/pool/{pool}/{slot}`) on the
    /// admin port; the reactor resolved the name.
    ReadyCallback(BackendId, u32),
    /// A config reload, as the reactor planned it and the request threads apply it: the supervisor makes
    /// the same changes to its backends, under the same ids (it ignores the route table).
    Reload(Reconcile),
    /// A session ends: stop its backend for good (draining first unless `drain` is false) and forget it
    /// once stopped. The request threads remove it themselves (a `Change::Remove` of their own).
    End { backend: BackendId, drain: bool },
    /// Remove containers a killed proxy left on the Docker daemon this config's containers run on (a
    /// session template's: sessions of a proxy that was killed are gone with it).
    Sweep(Arc<BackendConfig>),
    /// Drain and stop every backend, then answer `ShutdownComplete`.
    Shutdown,
}

/// The two threads that carry requests, for what each reports on its own behalf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    Reactor,
    H2,
}

impl Thread {
    pub fn other(self) -> Thread {
        match self {
            Thread::Reactor => Thread::H2,
            Thread::H2 => Thread::Reactor,
        }
    }
}

/// What the supervisor tells the reactor.
#[derive(Debug)]
pub enum ReactorMsg {
    Backend(BackendEvent),
    /// From the h2 worker: a request on this instance of a pool at its `max_in_flight` ended while the
    /// reactor held requests for that pool; one of them may take the place.
    SlotFreed(InstanceId),
    /// From the h2 worker: it has applied every session update up to this sequence number, so a session
    /// published by then is routed by both request threads.
    H2Ack(u64),
    /// From the h2 worker: a client traded credential `index` of the session at `hostname` for its
    /// cookie (`/.spawngate/auth`); the token is spent.
    TokenSpent {
        hostname: Box<str>,
        index: usize,
    },
    ShutdownComplete,
    /// From the ACME thread (feature `acme`): a challenge to answer, a certificate to serve.
    #[cfg(feature = "acme")]
    Acme(Box<crate::acme::AcmeEvent>),
}

/// One report about one instance of a backend. It names the instance and where it listens, so nothing
/// outside the instance model derives an address.
#[derive(Debug, Clone)]
pub struct BackendEvent {
    /// Which backend: tables look it up by this id, generation included, so a late report about a
    /// forgotten backend never reaches the one that took its slot.
    pub backend: BackendId,
    /// The backend's Host, for logs only.
    pub host: Host,
    pub instance: InstanceRef,
    pub event: LifecycleEvent,
}

/// An instance of a backend: its slot in the backend's set of instances, and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceRef {
    pub index: u32,
    pub addr: UpstreamAddr,
}

/// A transition of one backend's lifecycle, as the supervisor saw it happen.
#[derive(Debug, Clone, PartialEq)]
pub enum LifecycleEvent {
    Starting,
    Ready,
    /// The start failed (timeout, exit, spawn or Docker error); the text says why. The backend is Stopped.
    StartFailed(String),
    /// The backend keeps failing to start or keeps crashing: starts are suspended for `retry_after`, and
    /// requests meanwhile get 503 BACKEND_START_FAILED with a `Retry-After` instead of a spawn each.
    BackingOff {
        reason: String,
        retry_after: Duration,
    },
    /// `unhealthy_threshold` probes failed in a row, or the watchdog went quiet; a restart follows.
    Unhealthy,
    Stopping(StopReason),
    Stopped,
}

/// Why a backend is being stopped; it decides what happens to requests that arrive meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Idle for `idle_timeout`: new requests are held and start it again.
    Idle,
    /// Failed its health checks (or its watchdog): new requests are held and it starts again.
    Restart,
    /// The program said it is going away (`STOPPING=1` on its `NOTIFY_SOCKET`): new requests are held
    /// and start it again once it is gone, as after an idle stop.
    Announced,
    /// A pool had more instances running than its traffic needed: this one drains and stops, and is
    /// taken back ("undrained") if demand returns before it is told to stop.
    ScaleDown,
    /// A rolling reload replaces it with an instance of the new settings: it drains, stops and starts
    /// again, one instance of the pool at a time, while the others serve.
    Replace,
    /// Gone from the config after a reload: new requests get 503 BACKEND_SHUTTING_DOWN.
    Removed,
    /// The proxy is shutting down: new requests get 503 BACKEND_SHUTTING_DOWN.
    Shutdown,
    /// A session ended at once (`DELETE /sessions/{id}?now=1`, or it ended by itself): no drain, SIGTERM
    /// now. New requests get 503 BACKEND_SHUTTING_DOWN (the session's route already answers 410).
    Terminated,
}

impl StopReason {
    /// The backend is going away for good: requests get 503 BACKEND_SHUTTING_DOWN instead of waiting for
    /// it to start again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StopReason::Removed | StopReason::Shutdown | StopReason::Terminated
        )
    }
}

/// The lifecycle states `/backends` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Stopped,
    Starting,
    Ready,
    Unhealthy,
    Stopping,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Ready => "ready",
            State::Unhealthy => "unhealthy",
            State::Stopping => "stopping",
        }
    }
}

/// A configured backend as a reload hands it to every thread: its settings and the shared counters of
/// each of its instances (by slot).
#[derive(Debug, Clone)]
pub struct BackendEntry {
    pub config: Arc<BackendConfig>,
    pub activity: Vec<Arc<Activity>>,
    /// Which request threads hold requests for it while its instances are full (see [`Waiting`]).
    pub waiting: Arc<Waiting>,
    /// The counters of its metrics label ([`Metrics::adopt`](crate::metrics::Metrics::adopt) gives
    /// them before a reload is applied; a fresh set until then).
    pub metrics: Arc<BackendMetrics>,
}

impl BackendEntry {
    /// A backend that has carried no traffic yet.
    pub fn new(config: Arc<BackendConfig>) -> Self {
        BackendEntry::keeping(config, &[], Arc::default())
    }

    /// A backend whose instances keep the counters they had (by slot); new slots start at zero.
    pub fn keeping(
        config: Arc<BackendConfig>,
        had: &[Arc<Activity>],
        waiting: Arc<Waiting>,
    ) -> Self {
        let count = crate::upstream::instance::instances_of(&config).len();
        let activity = (0..count)
            .map(|slot| had.get(slot).cloned().unwrap_or_default())
            .collect();
        BackendEntry {
            config,
            activity,
            waiting,
            metrics: Arc::default(),
        }
    }
}
