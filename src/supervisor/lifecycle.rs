//! The lifecycle of one backend as a pure state machine.
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

use std::time::Duration;

use crate::config::Timings;
use crate::msg::{LifecycleEvent, StopReason};

/// How often a draining backend's in-flight count is checked. Draining is short-lived and rare, so a
/// coarse poll is cheaper than a notification path from the reactor, and 50 ms is below what a person notices.
pub const DRAIN_CHECK_MS: u64 = 50;

/// Longest drain before an unhealthy backend is restarted: its requests are probably stuck already, and
/// every extra second keeps new clients waiting on a broken backend.
pub const RESTART_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// Floor for probe intervals, so a zero in the config cannot turn probing into a busy loop.
pub const MIN_PROBE_INTERVAL_MS: u64 = 10;

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
}

/// When the next health probe goes out, or that one is out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeSlot {
    Due(u64),
    InFlight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPhase {
    /// Waiting for in-flight requests to finish, checked every `DRAIN_CHECK_MS`.
    Draining { until: u64, next_check: u64 },
    /// SIGTERM sent; SIGKILL at `until`.
    Terminating { until: u64 },
    /// SIGKILL sent; waiting for the exit.
    Killing,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Lifecycle {
    Stopped,
    Starting {
        since_ms: u64,
        give_up_at: u64,
        probe: ProbeSlot,
    },
    Ready {
        since_ms: u64,
        /// Consecutive failed probes.
        failures: u32,
        probe: ProbeSlot,
        /// When idleness is next looked at (lazily: one wake-up per idle timeout at most).
        idle_check_at: u64,
    },
    Stopping {
        reason: StopReason,
        phase: StopPhase,
        /// Start again as soon as the instance is gone (a request came during an idle stop, or a restart).
        restart_after: bool,
    },
    /// Killed after its start timed out. Already reported as failed (so stopped); waiting to be reaped
    /// before anything new may use its port.
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
    /// The instance could not be created; the text says why.
    SpawnFailed(String),
    /// The health probe that was in flight finished: true = 2xx.
    ProbeResult(bool),
    /// The instance has exited and been reaped; the text describes how ("status 1", "signal SIGKILL").
    Exited(String),
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

impl Lifecycle {
    pub fn handle(self, input: Input, env: &Env) -> (Lifecycle, Vec<Effect>) {
        let now = env.now_ms;
        match (self, input) {
            (Lifecycle::Stopped, Input::Start) => begin_start(env, Vec::new()),
            (state @ Lifecycle::Stopped, _) => (state, Vec::new()),

            (
                Lifecycle::Starting {
                    probe: ProbeSlot::InFlight,
                    ..
                },
                Input::ProbeResult(true),
            ) => become_ready(env),
            (Lifecycle::Starting { .. }, Input::ReadyCallback) => become_ready(env),
            (
                Lifecycle::Starting {
                    since_ms,
                    give_up_at,
                    probe: ProbeSlot::InFlight,
                },
                Input::ProbeResult(false),
            ) => {
                let probe = ProbeSlot::Due(now + probe_interval(env.timings.health_check_interval));
                (
                    Lifecycle::Starting {
                        since_ms,
                        give_up_at,
                        probe,
                    },
                    Vec::new(),
                )
            }
            (Lifecycle::Starting { .. }, Input::SpawnFailed(why)) => (
                Lifecycle::Stopped,
                vec![Effect::Emit(LifecycleEvent::StartFailed(why))],
            ),
            (Lifecycle::Starting { .. }, Input::Exited(how)) => (
                Lifecycle::Stopped,
                vec![
                    Effect::CancelProbe,
                    Effect::Emit(LifecycleEvent::StartFailed(format!(
                        "exited with {how} before becoming ready"
                    ))),
                ],
            ),
            (Lifecycle::Starting { .. }, Input::Stop(reason)) => {
                begin_stop(reason, false, env, Vec::new())
            }
            (
                Lifecycle::Starting {
                    since_ms,
                    give_up_at,
                    probe,
                },
                Input::Tick,
            ) => {
                if now >= give_up_at {
                    let why = format!(
                        "did not become healthy within {}",
                        describe_duration(env.timings.startup_timeout)
                    );
                    return (
                        Lifecycle::Reaping {
                            restart_after: false,
                        },
                        vec![
                            Effect::CancelProbe,
                            Effect::Kill,
                            Effect::Emit(LifecycleEvent::StartFailed(why)),
                        ],
                    );
                }
                let (probe, effects) = send_probe_if_due(probe, now);
                (
                    Lifecycle::Starting {
                        since_ms,
                        give_up_at,
                        probe,
                    },
                    effects,
                )
            }
            (state @ Lifecycle::Starting { .. }, _) => (state, Vec::new()),

            (state @ Lifecycle::Ready { .. }, Input::Start) => {
                // The reactor may have missed the first announcement; saying it again is harmless.
                (state, vec![Effect::Emit(LifecycleEvent::Ready)])
            }
            (
                Lifecycle::Ready {
                    since_ms,
                    failures,
                    probe: ProbeSlot::InFlight,
                    idle_check_at,
                },
                Input::ProbeResult(healthy),
            ) => {
                let failures = if healthy {
                    0
                } else {
                    failures.saturating_add(1)
                };
                if failures >= env.timings.unhealthy_threshold.max(1) {
                    let effects = vec![Effect::Emit(LifecycleEvent::Unhealthy)];
                    return begin_stop(StopReason::Restart, true, env, effects);
                }
                let probe =
                    ProbeSlot::Due(now + probe_interval(env.timings.ready_health_check_interval));
                (
                    Lifecycle::Ready {
                        since_ms,
                        failures,
                        probe,
                        idle_check_at,
                    },
                    Vec::new(),
                )
            }
            (Lifecycle::Ready { .. }, Input::Exited(_)) => (
                Lifecycle::Stopped,
                vec![Effect::CancelProbe, Effect::Emit(LifecycleEvent::Stopped)],
            ),
            (Lifecycle::Ready { .. }, Input::Stop(reason)) => {
                begin_stop(reason, false, env, Vec::new())
            }
            (
                Lifecycle::Ready {
                    since_ms,
                    failures,
                    probe,
                    idle_check_at,
                },
                Input::Tick,
            ) => ready_tick(since_ms, failures, probe, idle_check_at, env),
            (state @ Lifecycle::Ready { .. }, _) => (state, Vec::new()),

            (
                Lifecycle::Stopping {
                    reason,
                    phase,
                    restart_after,
                },
                input,
            ) => stopping(reason, phase, restart_after, input, env),

            (Lifecycle::Reaping { .. }, Input::Start) => (
                Lifecycle::Reaping {
                    restart_after: true,
                },
                Vec::new(),
            ),
            (Lifecycle::Reaping { .. }, Input::Stop(_)) => (
                Lifecycle::Reaping {
                    restart_after: false,
                },
                Vec::new(),
            ),
            (Lifecycle::Reaping { restart_after }, Input::Exited(_)) => {
                if restart_after {
                    begin_start(env, Vec::new())
                } else {
                    (Lifecycle::Stopped, Vec::new())
                }
            }
            (state @ Lifecycle::Reaping { .. }, _) => (state, Vec::new()),
        }
    }

    /// The earliest moment the machine wants a `Tick`; `None` = only an outside input can move it.
    pub fn deadline(&self) -> Option<u64> {
        let due = |probe: &ProbeSlot| match probe {
            ProbeSlot::Due(at) => Some(*at),
            ProbeSlot::InFlight => None,
        };
        match self {
            Lifecycle::Stopped | Lifecycle::Reaping { .. } => None,
            Lifecycle::Starting {
                give_up_at, probe, ..
            } => Some(due(probe).map_or(*give_up_at, |at| at.min(*give_up_at))),
            Lifecycle::Ready {
                probe,
                idle_check_at,
                ..
            } => Some(due(probe).map_or(*idle_check_at, |at| at.min(*idle_check_at))),
            Lifecycle::Stopping { phase, .. } => match phase {
                StopPhase::Draining { until, next_check } => Some((*until).min(*next_check)),
                StopPhase::Terminating { until } => Some(*until),
                StopPhase::Killing => None,
            },
        }
    }

    /// Nothing runs and nothing is pending: the backend may be forgotten or the proxy may exit.
    pub fn is_stopped(&self) -> bool {
        matches!(self, Lifecycle::Stopped)
    }
}

fn begin_start(env: &Env, mut effects: Vec<Effect>) -> (Lifecycle, Vec<Effect>) {
    let now = env.now_ms;
    effects.push(Effect::Spawn);
    effects.push(Effect::Emit(LifecycleEvent::Starting));
    let state = Lifecycle::Starting {
        since_ms: now,
        give_up_at: now + millis(env.timings.startup_timeout),
        probe: ProbeSlot::Due(now + probe_interval(env.timings.health_check_interval)),
    };
    (state, effects)
}

fn become_ready(env: &Env) -> (Lifecycle, Vec<Effect>) {
    let now = env.now_ms;
    let state = Lifecycle::Ready {
        since_ms: now,
        failures: 0,
        probe: ProbeSlot::Due(now + probe_interval(env.timings.ready_health_check_interval)),
        idle_check_at: now + millis(env.timings.idle_timeout),
    };
    (
        state,
        vec![Effect::CancelProbe, Effect::Emit(LifecycleEvent::Ready)],
    )
}

fn ready_tick(
    since_ms: u64,
    failures: u32,
    probe: ProbeSlot,
    idle_check_at: u64,
    env: &Env,
) -> (Lifecycle, Vec<Effect>) {
    let now = env.now_ms;
    let idle_timeout = millis(env.timings.idle_timeout);
    let mut idle_check_at = idle_check_at;
    if now >= idle_check_at {
        // A backend that just became ready has not been idle, whatever the counters say.
        let quiet_since = env.last_active_ms.max(since_ms);
        if env.in_flight == 0 && now >= quiet_since + idle_timeout {
            return begin_stop(StopReason::Idle, false, env, Vec::new());
        }
        idle_check_at = if env.in_flight > 0 {
            now + idle_timeout.max(MIN_IDLE_RECHECK_MS)
        } else {
            quiet_since + idle_timeout
        };
    }
    let (probe, effects) = send_probe_if_due(probe, now);
    (
        Lifecycle::Ready {
            since_ms,
            failures,
            probe,
            idle_check_at,
        },
        effects,
    )
}

fn send_probe_if_due(probe: ProbeSlot, now: u64) -> (ProbeSlot, Vec<Effect>) {
    match probe {
        ProbeSlot::Due(at) if now >= at => (ProbeSlot::InFlight, vec![Effect::Probe]),
        other => (other, Vec::new()),
    }
}

fn begin_stop(
    reason: StopReason,
    restart_after: bool,
    env: &Env,
    mut effects: Vec<Effect>,
) -> (Lifecycle, Vec<Effect>) {
    let now = env.now_ms;
    let drain = match reason {
        StopReason::Restart => env.timings.drain_timeout.min(RESTART_DRAIN_LIMIT),
        _ => env.timings.drain_timeout,
    };
    effects.push(Effect::CancelProbe);
    effects.push(Effect::Emit(LifecycleEvent::Stopping(reason)));
    let phase = StopPhase::Draining {
        until: now + millis(drain),
        next_check: now,
    };
    // Check the drain at once: an idle backend goes straight to SIGTERM without waiting a tick.
    let (state, more) = stopping(reason, phase, restart_after, Input::Tick, env);
    effects.extend(more);
    (state, effects)
}

fn stopping(
    reason: StopReason,
    phase: StopPhase,
    restart_after: bool,
    input: Input,
    env: &Env,
) -> (Lifecycle, Vec<Effect>) {
    let now = env.now_ms;
    let keep = |phase, restart_after| Lifecycle::Stopping {
        reason,
        phase,
        restart_after,
    };
    match input {
        Input::Start => {
            let restarts = matches!(reason, StopReason::Idle | StopReason::Restart);
            (keep(phase, restart_after || restarts), Vec::new())
        }
        Input::Stop(new_reason) => {
            let overrides = matches!(new_reason, StopReason::Removed | StopReason::Shutdown)
                && new_reason != reason;
            if !overrides {
                return (keep(phase, restart_after), Vec::new());
            }
            // The reactor must learn that new requests now get 503 instead of waiting.
            let state = Lifecycle::Stopping {
                reason: new_reason,
                phase,
                restart_after: false,
            };
            (
                state,
                vec![Effect::Emit(LifecycleEvent::Stopping(new_reason))],
            )
        }
        Input::Exited(_) => {
            let effects = vec![Effect::Emit(LifecycleEvent::Stopped)];
            if restart_after {
                begin_start(env, effects)
            } else {
                (Lifecycle::Stopped, effects)
            }
        }
        Input::Tick => match phase {
            StopPhase::Draining { until, next_check } => {
                if env.in_flight == 0 || now >= until {
                    let until = now + millis(env.timings.shutdown_grace_period);
                    (
                        keep(StopPhase::Terminating { until }, restart_after),
                        vec![Effect::Terminate],
                    )
                } else if now >= next_check {
                    let next_check = now + DRAIN_CHECK_MS;
                    (
                        keep(StopPhase::Draining { until, next_check }, restart_after),
                        Vec::new(),
                    )
                } else {
                    (keep(phase, restart_after), Vec::new())
                }
            }
            StopPhase::Terminating { until } if now >= until => {
                (keep(StopPhase::Killing, restart_after), vec![Effect::Kill])
            }
            _ => (keep(phase, restart_after), Vec::new()),
        },
        Input::ReadyCallback | Input::SpawnFailed(_) | Input::ProbeResult(_) => {
            (keep(phase, restart_after), Vec::new())
        }
    }
}

fn probe_interval(interval: Duration) -> u64 {
    millis(interval).max(MIN_PROBE_INTERVAL_MS)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4)
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
#[path = "lifecycle_tests.rs"]
mod tests;
