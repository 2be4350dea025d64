//! The way up: Starting (probing until healthy, the ready callback or `READY=1`) and Ready (probing, idle
//! checks, the watchdog). A socket-activated instance is routable while still Starting: it is announced
//! as ready the moment its listener is handed over, and the startup timeout still bounds its boot.

use super::stop::begin_stop;
use super::MIN_STARTING_PROBE_GAP_MS;
use super::{describe_duration, millis, probe_interval, Effect, Env, Input, Lifecycle, ProbeSlot};
use super::{Transition, MAX_KNOCK_GAP_MS, MIN_IDLE_RECHECK_MS, MIN_KNOCK_GAP_MS};
use crate::msg::{LifecycleEvent, StopReason};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Starting {
    pub since_ms: u64,
    /// The startup timeout: kill it and report the failure at this moment.
    pub give_up_at: u64,
    pub probe: ProbeSlot,
    /// Already announced as ready: its listener was handed over (socket activation), so requests go to
    /// its backlog while it boots. Becoming healthy then announces nothing new.
    pub routable: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub since_ms: u64,
    /// Since when every probe has passed (the ready moment, or the last failed probe).
    pub healthy_since_ms: u64,
    /// Consecutive failed probes.
    pub failures: u32,
    pub probe: ProbeSlot,
    /// When idleness is next looked at (lazily: one wake-up per idle timeout at most).
    pub idle_check_at: u64,
    /// With `watchdog_secs`: unhealthy unless a `WATCHDOG=1` arrives by then.
    pub watchdog_at: Option<u64>,
}

/// Stopped (or just stopped) -> Starting: spawn, and say so.
pub fn begin_start(env: &Env, mut effects: Vec<Effect>) -> Transition {
    let now = env.now_ms;
    effects.push(Effect::Spawn);
    effects.push(Effect::Emit(LifecycleEvent::Starting));
    let state = Starting {
        since_ms: now,
        give_up_at: now + millis(env.timings.startup_timeout),
        probe: ProbeSlot::Due(now + starting_probe_gap(0, env)),
        routable: false,
    };
    (Lifecycle::Starting(state), effects)
}

impl Starting {
    pub fn handle(self, input: Input, env: &Env) -> Transition {
        let now = env.now_ms;
        let announced = self.routable;
        match input {
            Input::ReadyCallback | Input::NotifyReady => become_ready(env, announced),
            Input::Listening if !self.routable => {
                let state = Starting {
                    routable: true,
                    ..self
                };
                (
                    Lifecycle::Starting(state),
                    vec![Effect::Emit(LifecycleEvent::Ready)],
                )
            }
            Input::ProbeResult(healthy) if self.probe == ProbeSlot::InFlight => {
                if healthy {
                    return become_ready(env, announced);
                }
                let gap = starting_probe_gap(now.saturating_sub(self.since_ms), env);
                let probe = ProbeSlot::Due(now + gap);
                (Lifecycle::Starting(Starting { probe, ..self }), Vec::new())
            }
            // Nothing listens yet: knock again soon, since the moment it listens is the moment it can
            // take the held requests. The HTTP probe follows as soon as a connection is accepted.
            Input::ProbeRefused if self.probe == ProbeSlot::InFlight => {
                let gap = knock_gap(now.saturating_sub(self.since_ms));
                let probe = ProbeSlot::Due(now + gap);
                (Lifecycle::Starting(Starting { probe, ..self }), Vec::new())
            }
            // Not ready yet, as far as anyone can tell: try again as after a failed probe.
            Input::ProbeSkipped if self.probe == ProbeSlot::InFlight => {
                let gap = starting_probe_gap(now.saturating_sub(self.since_ms), env);
                let probe = ProbeSlot::Due(now + gap);
                (Lifecycle::Starting(Starting { probe, ..self }), Vec::new())
            }
            // A container's start fails after probes may have gone out, so one may be in flight.
            Input::SpawnFailed(why) => (
                Lifecycle::Stopped,
                vec![
                    Effect::CancelProbe,
                    Effect::Emit(LifecycleEvent::StartFailed(why)),
                ],
            ),
            Input::Exited(how) => {
                // `how` may go on with the last output ("status 3; last output: ..."), so it comes last.
                let why = format!("exited before becoming ready, with {how}");
                (
                    Lifecycle::Stopped,
                    vec![
                        Effect::CancelProbe,
                        Effect::Emit(LifecycleEvent::StartFailed(why)),
                    ],
                )
            }
            Input::Stop(reason) => begin_stop(reason, false, env, Vec::new()),
            Input::NotifyStopping => begin_stop(StopReason::Announced, false, env, Vec::new()),
            Input::Tick if now >= self.give_up_at => {
                let why = format!(
                    "did not become healthy within {}",
                    describe_duration(env.timings.startup_timeout)
                );
                let effects = vec![
                    Effect::CancelProbe,
                    Effect::Kill,
                    Effect::Emit(LifecycleEvent::StartFailed(why)),
                ];
                (
                    Lifecycle::Reaping {
                        restart_after: false,
                    },
                    effects,
                )
            }
            Input::Tick => {
                let (probe, effects) = send_probe_if_due(self.probe, now);
                (Lifecycle::Starting(Starting { probe, ..self }), effects)
            }
            // Already starting: one spawn however many requests ask. Stale probe results are dropped.
            // The watchdog counts only once ready.
            Input::Start
            | Input::ProbeResult(_)
            | Input::ProbeRefused
            | Input::ProbeSkipped
            | Input::Listening
            | Input::WatchdogPing => (Lifecycle::Starting(self), Vec::new()),
        }
    }
}

/// The wait before the next probe of a starting backend: a quarter of the time it has taken so far, within
/// [`MIN_STARTING_PROBE_GAP_MS`, the configured interval]. A backend that starts in T ms is found ready
/// about T/4 later at worst, instead of up to a whole interval later; and since each gap grows by a
/// quarter of the elapsed time, the probes before the interval is reached stay few (about 20 for 100 ms).
pub fn starting_probe_gap(elapsed_ms: u64, env: &Env) -> u64 {
    let interval = probe_interval(env.timings.health_check_interval);
    (elapsed_ms / 4).clamp(
        MIN_STARTING_PROBE_GAP_MS,
        interval.max(MIN_STARTING_PROBE_GAP_MS),
    )
}

/// The wait before knocking again on a starting instance that refused the connection: a 64th of the
/// time it has taken so far, within [[`MIN_KNOCK_GAP_MS`], [`MAX_KNOCK_GAP_MS`]], which is every
/// millisecond today. The moment it listens is the moment it can take the held requests, so the wait
/// after that stays under a millisecond or so whatever the start time or the health check interval.
/// This is for containers and for hosts without netlink, where a knock is a connection attempt. A
/// local program is not knocked on: the supervisor's listen watch (`supervisor::listening`) looks its
/// port up in the kernel's socket table every quarter or half millisecond while this probe stays in
/// flight. Socket activation avoids both.
pub fn knock_gap(elapsed_ms: u64) -> u64 {
    (elapsed_ms / 64).clamp(MIN_KNOCK_GAP_MS, MAX_KNOCK_GAP_MS)
}

/// Starting -> Ready. `announced`: the reactor was already told (a socket-activated instance is routable
/// from its spawn), so nothing is emitted again.
pub(super) fn become_ready(env: &Env, announced: bool) -> Transition {
    let now = env.now_ms;
    let state = Ready {
        since_ms: now,
        healthy_since_ms: now,
        failures: 0,
        probe: ProbeSlot::Due(now + probe_interval(env.timings.ready_health_check_interval)),
        idle_check_at: now + millis(env.timings.idle_timeout),
        watchdog_at: env.timings.watchdog.map(|w| now + millis(w)),
    };
    let mut effects = vec![Effect::CancelProbe];
    if !announced {
        effects.push(Effect::Emit(LifecycleEvent::Ready));
    }
    (Lifecycle::Ready(state), effects)
}

impl Ready {
    pub fn handle(self, input: Input, env: &Env) -> Transition {
        let now = env.now_ms;
        // A ready instance that stopped listening has failed its probe like any other.
        let input = match input {
            Input::ProbeRefused => Input::ProbeResult(false),
            other => other,
        };
        match input {
            // The reactor may have missed the first announcement; saying it again is harmless.
            Input::Start => (
                Lifecycle::Ready(self),
                vec![Effect::Emit(LifecycleEvent::Ready)],
            ),
            Input::ProbeResult(healthy) if self.probe == ProbeSlot::InFlight => {
                let failures = if healthy {
                    0
                } else {
                    self.failures.saturating_add(1)
                };
                if failures >= env.timings.unhealthy_threshold.max(1) {
                    let effects = vec![Effect::Emit(LifecycleEvent::Unhealthy)];
                    return begin_stop(StopReason::Restart, true, env, effects);
                }
                let interval = probe_interval(env.timings.ready_health_check_interval);
                let probe = ProbeSlot::Due(now + interval);
                let healthy_since_ms = if healthy { self.healthy_since_ms } else { now };
                let state = Ready {
                    failures,
                    probe,
                    healthy_since_ms,
                    ..self
                };
                (Lifecycle::Ready(state), Vec::new())
            }
            Input::ProbeSkipped if self.probe == ProbeSlot::InFlight => {
                let interval = probe_interval(env.timings.ready_health_check_interval);
                let state = Ready {
                    probe: ProbeSlot::Due(now + interval),
                    ..self
                };
                (Lifecycle::Ready(state), Vec::new())
            }
            Input::Exited(_) => (
                Lifecycle::Stopped,
                vec![Effect::CancelProbe, Effect::Emit(LifecycleEvent::Stopped)],
            ),
            Input::Stop(reason) => begin_stop(reason, false, env, Vec::new()),
            Input::NotifyStopping => begin_stop(StopReason::Announced, false, env, Vec::new()),
            Input::WatchdogPing => {
                let watchdog_at = env.timings.watchdog.map(|w| now + millis(w));
                (
                    Lifecycle::Ready(Ready {
                        watchdog_at,
                        ..self
                    }),
                    Vec::new(),
                )
            }
            Input::Tick => self.tick(env),
            Input::ReadyCallback
            | Input::SpawnFailed(_)
            | Input::ProbeResult(_)
            | Input::ProbeRefused
            | Input::ProbeSkipped
            | Input::Listening
            | Input::NotifyReady => (Lifecycle::Ready(self), Vec::new()),
        }
    }

    fn tick(self, env: &Env) -> Transition {
        let now = env.now_ms;
        if self.watchdog_at.is_some_and(|at| now >= at) {
            // Silent past its own promise: hung, as a failed health check would say, and restarted alike.
            let effects = vec![Effect::Emit(LifecycleEvent::Unhealthy)];
            return begin_stop(StopReason::Restart, true, env, effects);
        }
        let idle_timeout = millis(env.timings.idle_timeout);
        let mut idle_check_at = self.idle_check_at;
        if now >= idle_check_at {
            // A backend that just became ready has not been idle, whatever the counters say.
            let quiet_since = env.last_active_ms.max(self.since_ms);
            let idle = env.in_flight == 0 && now >= quiet_since + idle_timeout;
            if idle && env.may_stop_idle {
                return begin_stop(StopReason::Idle, false, env, Vec::new());
            }
            idle_check_at = if env.in_flight > 0 || idle {
                // Busy, or idle but kept (the pool controller vetoed the stop): look again later,
                // never in a loop on a deadline already past.
                now + idle_timeout.max(MIN_IDLE_RECHECK_MS)
            } else {
                quiet_since + idle_timeout
            };
        }
        let (probe, effects) = send_probe_if_due(self.probe, now);
        let state = Ready {
            probe,
            idle_check_at,
            ..self
        };
        (Lifecycle::Ready(state), effects)
    }
}

fn send_probe_if_due(probe: ProbeSlot, now: u64) -> (ProbeSlot, Vec<Effect>) {
    match probe {
        ProbeSlot::Due(at) if now >= at => (ProbeSlot::InFlight, vec![Effect::Probe]),
        other => (other, Vec::new()),
    }
}
