//! The lifecycle of one instance of a backend as a pure state machine.
//!
//! ```text
//!            Start                 2xx probe / ready callback
//! Stopped ─────────▶ Starting ───────────────────────────────▶ Ready
//!    ▲                  │ exit / spawn error: StartFailed         │ idle, unhealthy, removal, shutdown
//!    │                  │ startup timeout: StartFailed ─▶ Reaping │
//!    │                  ▼                                         ▼
//!    └──── exit ─── Stopping: Draining ─▶ Terminating (SIGTERM) ─▶ Killing (SIGKILL)
//! ```
//!
//! [`Lifecycle::handle`] takes the state, one [`Input`] and an [`Env`] (the time, the backend's traffic and
//! timings) and returns the next state plus the [`Effect`]s the supervisor loop must carry out. Every deadline
//! lives in the state; the loop only has to wake the machine with [`Input::Tick`] at [`Lifecycle::deadline`].
//! Nothing here touches the OS, so tests drive every transition with plain numbers.
//!
//! `up.rs` holds the way up (Starting, Ready), `stop.rs` the way down (Stopping, Reaping), and
//! `crash_loop.rs` the record of bad starts that outlives every state: the supervisor runs each transition
//! through [`CrashLoop::step`], which suspends starts (answering `BackingOff`) while a backend keeps failing.

mod crash_loop;
mod stop;
mod up;

use std::time::Duration;

use crate::config::Timings;
use crate::msg::{LifecycleEvent, StopReason};

pub use crash_loop::CrashLoop;
pub use stop::{StopPhase, Stopping};
pub use up::{Ready, Starting};

/// How often a draining backend's in-flight count is checked. Draining is short-lived and rare, so a
/// coarse poll is cheaper than a notification path from the reactor, and 50 ms is below what a person
/// notices.
pub const DRAIN_CHECK_MS: u64 = 50;

/// Longest drain before an unhealthy backend is restarted: its requests are probably stuck already, and
/// every extra second keeps new clients waiting on a broken backend.
pub const RESTART_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Floor for probe intervals, so a zero in the config cannot turn probing into a busy loop.
pub const MIN_PROBE_INTERVAL_MS: u64 = 10;

/// Floor for the gap between probes of a starting backend. The gaps grow with the time spent starting
/// (see [`up::starting_probe_gap`]), so this floor only applies to the first few milliseconds.
pub const MIN_STARTING_PROBE_GAP_MS: u64 = 1;

/// Bounds of the gap between connection attempts while a starting instance is not listening yet (see
/// [`up::knock_gap`]).
pub const MIN_KNOCK_GAP_MS: u64 = 1;
pub const MAX_KNOCK_GAP_MS: u64 = 1;

/// Floor for re-checking idleness of a busy backend, so `idle_timeout = 0` cannot spin.
pub const MIN_IDLE_RECHECK_MS: u64 = 1_000;

/// What the machine is told about the world at the moment of an input.
#[derive(Debug, Clone, Copy)]
pub struct Env<'a> {
    pub now_ms: u64,
    /// Requests and tunnels currently going through the backend.
    pub in_flight: usize,
    /// When traffic last began or ended (`Clock` milliseconds).
    pub last_active_ms: u64,
    /// The timings of the instance that runs (or of the config the next start will use).
    pub timings: &'a Timings,
    /// The pool controller allows an idle stop (false: `always_on`, at `min_running`, a fixed
    /// address, or requests wait for the pool). Always true for a `[backends]` entry.
    pub may_stop_idle: bool,
}

/// When the next health probe goes out, or that one is out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeSlot {
    Due(u64),
    InFlight,
}

impl ProbeSlot {
    fn due_at(self) -> Option<u64> {
        match self {
            ProbeSlot::Due(at) => Some(at),
            ProbeSlot::InFlight => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lifecycle {
    Stopped,
    Starting(Starting),
    Ready(Ready),
    Stopping(Stopping),
    /// Killed after its start timed out. Already reported as failed (so stopped); waiting to be reaped
    /// before anything new may use its port. `restart_after`: a request came meanwhile.
    Reaping {
        restart_after: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A request needs the backend.
    Start,
    /// The backend said it is ready.
    ReadyCallback,
    /// Stop it (removal from the config, proxy shutdown).
    Stop(StopReason),
    /// The instance could not be created; the text says why. For a container this comes later (its
    /// start runs on a worker thread), and it also ends a stop or a reaping whose start was abandoned.
    SpawnFailed(String),
    /// The health probe that was in flight finished: true = 2xx.
    ProbeResult(bool),
    /// The probe in flight found nothing listening at the instance's address (connection refused): a
    /// failed probe, except while starting, where the program may start listening any moment and is
    /// knocked on again within milliseconds ([`up::knock_gap`]).
    ProbeRefused,
    /// The probe could not even be attempted because the proxy is out of file descriptors: that says
    /// nothing about the backend, so it counts neither as a success nor as a failure.
    ProbeSkipped,
    /// The instance has exited and been reaped; the text describes how ("status 1", "signal SIGKILL").
    Exited(String),
    /// The instance was spawned on a listener the supervisor bound and passed to it (socket
    /// activation): connections wait in that listener's backlog until the program accepts, so it is
    /// routable now. Probing goes on (by the HTTP answer: a connect succeeds on the backlog at once)
    /// until it is healthy, still bounded by the startup timeout.
    Listening,
    /// The program sent `READY=1` to its `NOTIFY_SOCKET`: ready now, whatever its health path says yet.
    NotifyReady,
    /// The program sent `STOPPING=1`: it is going away by itself, so it is treated as a stop in progress
    /// (drained, then terminated within the grace period if it does not exit by itself).
    NotifyStopping,
    /// The program sent `WATCHDOG=1`: alive, for another `watchdog_secs`.
    WatchdogPing,
    /// A deadline may have passed.
    Tick,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Tell the reactor.
    Emit(LifecycleEvent),
    /// Create the instance (process or container) from the current config.
    Spawn,
    /// Send one health probe; its outcome comes back as `ProbeResult`.
    Probe,
    /// Drop any probe in flight; its result is no longer wanted.
    CancelProbe,
    /// Ask the instance to stop (SIGTERM to the process group).
    Terminate,
    /// Force it (SIGKILL to the process group).
    Kill,
}

/// The next state and what to do about it.
pub type Transition = (Lifecycle, Vec<Effect>);

impl Lifecycle {
    pub fn handle(self, input: Input, env: &Env) -> Transition {
        match self {
            Lifecycle::Stopped => match input {
                Input::Start => up::begin_start(env, Vec::new()),
                _ => (Lifecycle::Stopped, Vec::new()),
            },
            Lifecycle::Starting(starting) => starting.handle(input, env),
            Lifecycle::Ready(ready) => ready.handle(input, env),
            Lifecycle::Stopping(stopping) => stopping.handle(input, env),
            Lifecycle::Reaping { restart_after } => stop::reaping(restart_after, input, env),
        }
    }

    /// The earliest moment the machine wants a `Tick`; `None` = only an outside input can move it.
    pub fn deadline(&self) -> Option<u64> {
        match self {
            Lifecycle::Stopped | Lifecycle::Reaping { .. } => None,
            Lifecycle::Starting(s) => Some(earliest(s.give_up_at, s.probe.due_at())),
            Lifecycle::Ready(r) => Some(earliest(
                earliest(r.idle_check_at, r.probe.due_at()),
                r.watchdog_at,
            )),
            Lifecycle::Stopping(s) => s.phase.deadline(),
        }
    }

    /// Nothing runs and nothing is pending: the backend may be forgotten or the proxy may exit.
    pub fn is_stopped(&self) -> bool {
        matches!(self, Lifecycle::Stopped)
    }
}

fn earliest(at: u64, maybe: Option<u64>) -> u64 {
    maybe.map_or(at, |other| other.min(at))
}

fn probe_interval(interval: Duration) -> u64 {
    millis(interval).max(MIN_PROBE_INTERVAL_MS)
}

/// Milliseconds, saturating far below `u64::MAX` so `now + millis(..)` cannot overflow.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).map_or(u64::MAX / 4, |ms| ms.min(u64::MAX / 4))
}

/// "30s" for whole seconds, "1500ms" otherwise: how the config spells it.
pub fn describe_duration(d: Duration) -> String {
    let ms = millis(d);
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests;
