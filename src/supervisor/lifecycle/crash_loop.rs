//! Crash-loop back-off: a backend that keeps failing is not spawned again for every request.
//!
//! [`CrashLoop::step`] wraps [`Lifecycle::handle`]. It counts the starts that end badly (a failed start,
//! an exit while ready, an unhealthy verdict); after [`MAX_FAILURES_IN_WINDOW`] of them within
//! [`FAILURE_WINDOW_MS`] it suspends starts for [`FIRST_BACKOFF_MS`], and every failure after that doubles
//! the suspension up to [`MAX_BACKOFF_MS`]. While suspended, whatever would spawn (a request, the restart
//! after a stop or a timed-out start) answers `BackingOff` instead, so held requests are released at once.
//! A backend ready and passing its checks for [`RECOVERED_AFTER_MS`] has its record wiped.
//!
//! The record outlives every state, which is why it sits beside the [`Lifecycle`] rather than in it.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Effect, Env, Input, Lifecycle, Transition};
use crate::msg::{LifecycleEvent, StopReason};

/// Bad starts tolerated within [`FAILURE_WINDOW_MS`] before starts are suspended: enough to ride out a
/// few flukes (a dependency still coming up), few enough that a broken backend stops costing a spawn
/// per request within seconds.
pub const MAX_FAILURES_IN_WINDOW: usize = 5;
/// The sliding window those failures are counted in.
pub const FAILURE_WINDOW_MS: u64 = 10_000;
/// The first suspension; each failure after it doubles the next one.
pub const FIRST_BACKOFF_MS: u64 = 1_000;
/// The longest suspension: a backend fixed meanwhile should not wait more than a minute to be tried.
pub const MAX_BACKOFF_MS: u64 = 60_000;
/// Ready and passing every probe this long, a backend counts as recovered and its record is wiped. Long
/// enough that a backend crashing shortly after each start is still seen as a loop.
pub const RECOVERED_AFTER_MS: u64 = 30_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashLoop {
    /// When the recent bad starts ended, oldest first; never more than [`MAX_FAILURES_IN_WINDOW`].
    recent: VecDeque<u64>,
    /// Set once a loop is detected, and kept (with its delay) until the backend recovers.
    backoff: Option<Backoff>,
    /// What went wrong last: the reason given to requests refused while backing off.
    last_failure: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Backoff {
    delay_ms: u64,
    until_ms: u64,
}

impl CrashLoop {
    /// One transition of `state` under the crash-loop rules.
    pub fn step(&mut self, state: Lifecycle, input: Input, env: &Env) -> Transition {
        let now = env.now_ms;
        if let Lifecycle::Ready(ready) = &state {
            let healthy_for = now.saturating_sub(ready.healthy_since_ms);
            if ready.failures == 0 && healthy_for >= RECOVERED_AFTER_MS {
                self.forget();
            }
        }
        if input == Input::Start && may_start_from(&state) {
            if let Some(answer) = self.refusal(now) {
                return (state, vec![Effect::Emit(answer)]);
            }
        }
        let was_ready = matches!(state, Lifecycle::Ready(_));
        let exit = match &input {
            Input::Exited(how) if was_ready => Some(how.clone()),
            _ => None,
        };
        let (mut next, mut effects) = state.handle(input, env);
        if let Some(why) = failure_in(&effects, exit, env) {
            if let Some(answer) = self.record(now, why) {
                effects.push(Effect::Emit(answer));
                // A restart queued behind the stop would spawn straight back into the loop; the next
                // request after the back-off starts it instead.
                match &mut next {
                    Lifecycle::Stopping(stopping) => stopping.restart_after = false,
                    Lifecycle::Reaping { restart_after } => *restart_after = false,
                    _ => {}
                }
            }
        }
        if effects.contains(&Effect::Spawn) {
            if let Some(answer) = self.refusal(now) {
                effects.retain(|e| {
                    !matches!(e, Effect::Spawn | Effect::Emit(LifecycleEvent::Starting))
                });
                effects.push(Effect::Emit(answer));
                next = Lifecycle::Stopped;
            }
        }
        (next, effects)
    }

    /// Wipes the record: the backend recovered, or its config changed and deserves a fresh chance.
    /// When the back-off in force ends, if one is.
    pub fn backoff_until(&self) -> Option<u64> {
        self.backoff.map(|b| b.until_ms)
    }

    pub fn forget(&mut self) {
        *self = CrashLoop::default();
    }

    /// The answer to a start while starts are suspended; `None` when a start may go ahead.
    pub fn refusal(&self, now_ms: u64) -> Option<LifecycleEvent> {
        let backoff = self.backoff?;
        (backoff.until_ms > now_ms).then(|| LifecycleEvent::BackingOff {
            reason: self.last_failure.clone(),
            retry_after: Duration::from_millis(backoff.until_ms - now_ms),
        })
    }

    /// Notes a bad start; returns the `BackingOff` report when it suspends starts.
    fn record(&mut self, now_ms: u64, why: String) -> Option<LifecycleEvent> {
        self.last_failure = why;
        while self
            .recent
            .front()
            .is_some_and(|&at| now_ms.saturating_sub(at) > FAILURE_WINDOW_MS)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= MAX_FAILURES_IN_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(now_ms);
        let delay_ms = match self.backoff {
            Some(previous) => previous.delay_ms.saturating_mul(2).min(MAX_BACKOFF_MS),
            None if self.recent.len() >= MAX_FAILURES_IN_WINDOW => FIRST_BACKOFF_MS,
            None => return None,
        };
        self.backoff = Some(Backoff {
            delay_ms,
            until_ms: now_ms + delay_ms,
        });
        self.refusal(now_ms)
    }
}

/// States in which a `Start` would (now or after the stop) spawn a new instance.
fn may_start_from(state: &Lifecycle) -> bool {
    match state {
        Lifecycle::Stopped | Lifecycle::Reaping { .. } => true,
        Lifecycle::Stopping(stopping) => {
            matches!(stopping.reason, StopReason::Idle | StopReason::Restart)
        }
        Lifecycle::Starting(_) | Lifecycle::Ready(_) => false,
    }
}

/// Why this transition counts as a bad start, if it does. `exit` is set for an exit while ready.
fn failure_in(effects: &[Effect], exit: Option<String>, env: &Env) -> Option<String> {
    for effect in effects {
        match effect {
            Effect::Emit(LifecycleEvent::StartFailed(why)) => return Some(why.clone()),
            Effect::Emit(LifecycleEvent::Unhealthy) => {
                return Some(format!(
                    "failed {} health checks in a row",
                    env.timings.unhealthy_threshold.max(1)
                ))
            }
            _ => {}
        }
    }
    exit.map(|how| format!("exited while ready, with {how}"))
}
