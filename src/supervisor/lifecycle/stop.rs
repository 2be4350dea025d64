//! The way down: drain, SIGTERM, grace period, SIGKILL, reap; and Reaping after a failed start.

use super::up::{become_ready, begin_start};
use super::{
    millis, Effect, Env, Input, Lifecycle, Transition, DRAIN_CHECK_MS, RESTART_DRAIN_LIMIT,
};
use crate::msg::{LifecycleEvent, StopReason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stopping {
    pub reason: StopReason,
    pub phase: StopPhase,
    /// Start again as soon as the instance is gone (a request came during an idle stop, or a restart).
    pub restart_after: bool,
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

impl StopPhase {
    pub fn deadline(self) -> Option<u64> {
        match self {
            StopPhase::Draining { until, next_check } => Some(until.min(next_check)),
            StopPhase::Terminating { until } => Some(until),
            StopPhase::Killing => None,
        }
    }
}

/// Starting or Ready -> Stopping: say so, then begin draining (or go straight to SIGTERM if idle).
pub fn begin_stop(
    reason: StopReason,
    restart_after: bool,
    env: &Env,
    mut effects: Vec<Effect>,
) -> Transition {
    let now = env.now_ms;
    let drain = match reason {
        StopReason::Restart => env.timings.drain_timeout.min(RESTART_DRAIN_LIMIT),
        StopReason::Terminated => std::time::Duration::ZERO,
        _ => env.timings.drain_timeout,
    };
    effects.push(Effect::CancelProbe);
    effects.push(Effect::Emit(LifecycleEvent::Stopping(reason)));
    let stopping = Stopping {
        reason,
        phase: StopPhase::Draining {
            until: now + millis(drain),
            next_check: now,
        },
        restart_after,
    };
    // A pool instance the controller takes out of rotation while it serves waits one drain check before
    // its first look at the counters: the request threads learn of the stop first, so a request one of
    // them admitted meanwhile is counted (and waited for), never cut. Anything else is checked at once:
    // an idle backend goes straight to SIGTERM without waiting a tick.
    if matches!(reason, StopReason::ScaleDown | StopReason::Replace) {
        let phase = StopPhase::Draining {
            until: now + millis(drain).max(DRAIN_CHECK_MS),
            next_check: now + DRAIN_CHECK_MS,
        };
        return (Lifecycle::Stopping(Stopping { phase, ..stopping }), effects);
    }
    let (state, more) = stopping.handle(Input::Tick, env);
    effects.extend(more);
    (state, effects)
}

impl Stopping {
    pub fn handle(self, input: Input, env: &Env) -> Transition {
        match input {
            // Demand came back while a scale-down still drains: nothing was signalled yet, so the
            // instance is simply taken back.
            Input::Start
                if self.reason == StopReason::ScaleDown
                    && matches!(self.phase, StopPhase::Draining { .. }) =>
            {
                become_ready(env, false)
            }
            Input::Start => {
                let restarts = matches!(
                    self.reason,
                    StopReason::Idle
                        | StopReason::Restart
                        | StopReason::Announced
                        | StopReason::ScaleDown
                        | StopReason::Replace
                );
                let restart_after = self.restart_after || restarts;
                (
                    Lifecycle::Stopping(Stopping {
                        restart_after,
                        ..self
                    }),
                    Vec::new(),
                )
            }
            Input::Stop(reason) => {
                let overrides = reason.is_final() && reason != self.reason;
                if !overrides {
                    return (Lifecycle::Stopping(self), Vec::new());
                }
                // The reactor must learn that new requests now get 503 instead of waiting.
                let state = Stopping {
                    reason,
                    phase: self.phase,
                    restart_after: false,
                };
                let effects = vec![Effect::Emit(LifecycleEvent::Stopping(reason))];
                (Lifecycle::Stopping(state), effects)
            }
            // A container whose start was abandoned by the stop ends as a failed spawn: gone all the same.
            Input::Exited(_) | Input::SpawnFailed(_) => {
                let effects = vec![Effect::Emit(LifecycleEvent::Stopped)];
                if self.restart_after {
                    begin_start(env, effects)
                } else {
                    (Lifecycle::Stopped, effects)
                }
            }
            Input::Tick => self.tick(env),
            Input::ReadyCallback
            | Input::ProbeResult(_)
            | Input::ProbeRefused
            | Input::ProbeSkipped
            | Input::Listening
            | Input::NotifyReady
            | Input::NotifyStopping
            | Input::WatchdogPing => (Lifecycle::Stopping(self), Vec::new()),
        }
    }

    fn tick(self, env: &Env) -> Transition {
        let now = env.now_ms;
        let (phase, effects) = match self.phase {
            StopPhase::Draining { until, .. } if env.in_flight == 0 || now >= until => {
                let until = now + millis(env.timings.shutdown_grace_period);
                (StopPhase::Terminating { until }, vec![Effect::Terminate])
            }
            StopPhase::Draining { until, next_check } if now >= next_check => {
                let next_check = now + DRAIN_CHECK_MS;
                (StopPhase::Draining { until, next_check }, Vec::new())
            }
            StopPhase::Terminating { until } if now >= until => {
                (StopPhase::Killing, vec![Effect::Kill])
            }
            unchanged => (unchanged, Vec::new()),
        };
        (Lifecycle::Stopping(Stopping { phase, ..self }), effects)
    }
}

/// Reaping: waiting for a killed start to exit; a request meanwhile starts it again after the reap.
pub fn reaping(restart_after: bool, input: Input, env: &Env) -> Transition {
    match input {
        Input::Start => (
            Lifecycle::Reaping {
                restart_after: true,
            },
            Vec::new(),
        ),
        Input::Stop(_) => (
            Lifecycle::Reaping {
                restart_after: false,
            },
            Vec::new(),
        ),
        // A container killed while still being created ends as a failed spawn.
        Input::Exited(_) | Input::SpawnFailed(_) if restart_after => begin_start(env, Vec::new()),
        Input::Exited(_) | Input::SpawnFailed(_) => (Lifecycle::Stopped, Vec::new()),
        Input::ReadyCallback
        | Input::ProbeResult(_)
        | Input::ProbeRefused
        | Input::ProbeSkipped
        | Input::Listening
        | Input::NotifyReady
        | Input::NotifyStopping
        | Input::WatchdogPing
        | Input::Tick => (Lifecycle::Reaping { restart_after }, Vec::new()),
    }
}
