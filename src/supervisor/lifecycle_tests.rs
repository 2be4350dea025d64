use std::time::Duration;

use super::*;

fn timings() -> Timings {
    Timings {
        idle_timeout: Duration::from_secs(60),
        startup_timeout: Duration::from_secs(30),
        health_check_interval: Duration::from_millis(100),
        health_path: "/health".to_string(),
        request_timeout: Duration::from_secs(30),
        shutdown_grace_period: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(20),
        ready_health_check_interval: Duration::from_secs(5),
        unhealthy_threshold: 3,
    }
}

/// Drives one machine through inputs at chosen times, with chosen traffic.
struct Driver {
    state: Lifecycle,
    timings: Timings,
    in_flight: usize,
    last_active_ms: u64,
}

impl Driver {
    fn new() -> Self {
        Driver {
            state: Lifecycle::Stopped,
            timings: timings(),
            in_flight: 0,
            last_active_ms: 0,
        }
    }

    fn at(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        let env = Env {
            now_ms,
            in_flight: self.in_flight,
            last_active_ms: self.last_active_ms,
            timings: &self.timings,
        };
        let (state, effects) =
            std::mem::replace(&mut self.state, Lifecycle::Stopped).handle(input, &env);
        self.state = state;
        effects
    }

    fn started(now_ms: u64) -> Self {
        let mut d = Driver::new();
        d.at(now_ms, Input::Start);
        d
    }

    fn ready(now_ms: u64) -> Self {
        let mut d = Driver::started(now_ms);
        d.at(now_ms, Input::ReadyCallback);
        d
    }
}

fn emitted(effects: &[Effect]) -> Vec<LifecycleEvent> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Emit(ev) => Some(ev.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn start_spawns_once_and_reports_starting() {
    let mut d = Driver::new();
    let effects = d.at(1_000, Input::Start);
    assert_eq!(
        effects,
        vec![Effect::Spawn, Effect::Emit(LifecycleEvent::Starting)]
    );
    assert!(matches!(
        d.state,
        Lifecycle::Starting {
            since_ms: 1_000,
            give_up_at: 31_000,
            ..
        }
    ));
    assert_eq!(d.state.deadline(), Some(1_100));
    assert!(
        d.at(1_050, Input::Start).is_empty(),
        "a second start must not spawn again"
    );
}

#[test]
fn probes_every_interval_until_healthy() {
    let mut d = Driver::started(0);
    assert!(
        d.at(50, Input::Tick).is_empty(),
        "nothing is due before the interval"
    );
    assert_eq!(d.at(100, Input::Tick), vec![Effect::Probe]);
    assert_eq!(
        d.state.deadline(),
        Some(30_000),
        "only the give-up deadline while a probe is out"
    );
    assert!(d.at(120, Input::Tick).is_empty(), "one probe at a time");
    assert!(d.at(150, Input::ProbeResult(false)).is_empty());
    assert_eq!(d.state.deadline(), Some(250));
    assert_eq!(d.at(250, Input::Tick), vec![Effect::Probe]);
    let effects = d.at(260, Input::ProbeResult(true));
    assert_eq!(emitted(&effects), vec![LifecycleEvent::Ready]);
    assert!(matches!(
        d.state,
        Lifecycle::Ready {
            since_ms: 260,
            failures: 0,
            ..
        }
    ));
}

#[test]
fn a_probe_result_nobody_asked_for_is_ignored() {
    let mut d = Driver::started(0);
    assert!(d.at(10, Input::ProbeResult(true)).is_empty());
    assert!(matches!(d.state, Lifecycle::Starting { .. }));
}

#[test]
fn ready_callback_wins_over_probing() {
    let mut d = Driver::started(0);
    d.at(100, Input::Tick);
    let effects = d.at(120, Input::ReadyCallback);
    assert_eq!(
        effects,
        vec![Effect::CancelProbe, Effect::Emit(LifecycleEvent::Ready)]
    );
    assert!(
        d.at(130, Input::ProbeResult(true)).is_empty(),
        "the cancelled probe's answer is stale"
    );
}

#[test]
fn start_while_ready_repeats_ready() {
    let mut d = Driver::ready(0);
    assert_eq!(
        d.at(10, Input::Start),
        vec![Effect::Emit(LifecycleEvent::Ready)]
    );
}

#[test]
fn startup_timeout_kills_and_reports_then_waits_for_the_reap() {
    let mut d = Driver::started(0);
    let effects = d.at(30_000, Input::Tick);
    assert!(effects.contains(&Effect::Kill));
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::StartFailed(
            "did not become healthy within 30s".into()
        )]
    );
    assert_eq!(
        d.state,
        Lifecycle::Reaping {
            restart_after: false
        }
    );
    assert!(
        d.at(30_001, Input::Start).is_empty(),
        "no second spawn before the first is reaped"
    );
    let effects = d.at(30_005, Input::Exited("signal SIGKILL".into()));
    assert_eq!(
        effects,
        vec![Effect::Spawn, Effect::Emit(LifecycleEvent::Starting)]
    );
}

#[test]
fn reaping_without_a_new_request_ends_stopped_silently() {
    let mut d = Driver::started(0);
    d.at(30_000, Input::Tick);
    assert!(d
        .at(30_010, Input::Exited("signal SIGKILL".into()))
        .is_empty());
    assert!(d.state.is_stopped());
}

#[test]
fn exit_while_starting_fails_the_start() {
    let mut d = Driver::started(0);
    let effects = d.at(40, Input::Exited("status 1".into()));
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::StartFailed(
            "exited with status 1 before becoming ready".into()
        )]
    );
    assert!(d.state.is_stopped());
}

#[test]
fn spawn_failure_fails_the_start() {
    let mut d = Driver::started(0);
    let effects = d.at(0, Input::SpawnFailed("no such file".into()));
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::StartFailed("no such file".into())]
    );
    assert!(d.state.is_stopped());
}

#[test]
fn unhealthy_after_threshold_consecutive_failures_then_restart() {
    let mut d = Driver::ready(0);
    d.in_flight = 1;
    let fail_next_probe = |d: &mut Driver, healthy: bool| {
        let due = d.state.deadline().unwrap();
        assert_eq!(d.at(due, Input::Tick), vec![Effect::Probe]);
        d.at(due + 10, Input::ProbeResult(healthy))
    };
    for _ in 0..2 {
        assert!(fail_next_probe(&mut d, false).is_empty());
    }
    // A success in between resets the count.
    assert!(fail_next_probe(&mut d, true).is_empty());
    for _ in 0..2 {
        assert!(fail_next_probe(&mut d, false).is_empty());
    }
    let now = d.state.deadline().unwrap();
    let effects = fail_next_probe(&mut d, false);
    assert_eq!(
        emitted(&effects),
        vec![
            LifecycleEvent::Unhealthy,
            LifecycleEvent::Stopping(StopReason::Restart)
        ]
    );
    // The drain of a restart is capped, even though drain_timeout is 20 s.
    assert!(matches!(
        d.state,
        Lifecycle::Stopping {
            reason: StopReason::Restart,
            phase: StopPhase::Draining { until, .. },
            restart_after: true,
        } if until == now + 10 + 5_000
    ));
    d.in_flight = 0;
    assert_eq!(d.at(now + 60, Input::Tick), vec![Effect::Terminate]);
    let effects = d.at(now + 70, Input::Exited("status 0".into()));
    assert_eq!(
        effects,
        vec![
            Effect::Emit(LifecycleEvent::Stopped),
            Effect::Spawn,
            Effect::Emit(LifecycleEvent::Starting)
        ]
    );
}

#[test]
fn idle_check_rearms_lazily_and_stops_when_quiet() {
    let mut d = Driver::ready(1_000);
    assert_eq!(
        d.state.deadline(),
        Some(6_000),
        "next probe comes before the idle check"
    );
    // Traffic ended at 20 s: the check at 61 s re-arms at 80 s instead of stopping.
    d.last_active_ms = 20_000;
    d.at(61_000, Input::Tick);
    assert!(matches!(
        d.state,
        Lifecycle::Ready {
            idle_check_at: 80_000,
            ..
        }
    ));
    // Busy at 80 s: look again one idle timeout later.
    d.in_flight = 2;
    d.at(80_000, Input::Tick);
    assert!(matches!(
        d.state,
        Lifecycle::Ready {
            idle_check_at: 140_000,
            ..
        }
    ));
    // Quiet since 90 s: at 150 s it has been idle for 60 s.
    d.in_flight = 0;
    d.last_active_ms = 90_000;
    d.at(140_000, Input::Tick);
    assert!(matches!(
        d.state,
        Lifecycle::Ready {
            idle_check_at: 150_000,
            ..
        }
    ));
    let effects = d.at(150_000, Input::Tick);
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::Stopping(StopReason::Idle)]
    );
    assert!(
        effects.contains(&Effect::Terminate),
        "nothing in flight: SIGTERM at once"
    );
}

#[test]
fn a_fresh_backend_is_not_idle_because_of_old_activity() {
    let mut d = Driver::ready(100_000);
    d.last_active_ms = 0;
    d.at(160_000, Input::Tick);
    assert!(
        matches!(d.state, Lifecycle::Stopping { .. }),
        "idle for exactly the timeout"
    );
    let mut d = Driver::ready(100_000);
    d.at(130_000, Input::Tick);
    assert!(matches!(d.state, Lifecycle::Ready { .. }));
}

#[test]
fn stop_drains_then_terminates_then_kills() {
    let mut d = Driver::ready(0);
    d.in_flight = 1;
    let effects = d.at(1_000, Input::Stop(StopReason::Shutdown));
    assert_eq!(
        effects,
        vec![
            Effect::CancelProbe,
            Effect::Emit(LifecycleEvent::Stopping(StopReason::Shutdown))
        ]
    );
    assert_eq!(
        d.state.deadline(),
        Some(1_050),
        "drain is checked every 50 ms"
    );
    assert!(d.at(1_050, Input::Tick).is_empty());
    assert_eq!(d.state.deadline(), Some(1_100));
    d.in_flight = 0;
    assert_eq!(d.at(1_100, Input::Tick), vec![Effect::Terminate]);
    assert_eq!(
        d.state.deadline(),
        Some(11_100),
        "grace period before SIGKILL"
    );
    assert!(d.at(5_000, Input::Tick).is_empty());
    assert_eq!(d.at(11_100, Input::Tick), vec![Effect::Kill]);
    assert_eq!(d.state.deadline(), None);
    let effects = d.at(11_110, Input::Exited("signal SIGKILL".into()));
    assert_eq!(effects, vec![Effect::Emit(LifecycleEvent::Stopped)]);
    assert!(d.state.is_stopped());
}

#[test]
fn drain_gives_up_at_the_drain_timeout() {
    let mut d = Driver::ready(0);
    d.in_flight = 3;
    d.at(0, Input::Stop(StopReason::Removed));
    assert!(d.at(19_950, Input::Tick).is_empty());
    assert_eq!(d.at(20_000, Input::Tick), vec![Effect::Terminate]);
}

#[test]
fn start_during_idle_stop_restarts_after_it() {
    let mut d = Driver::ready(0);
    d.at(60_000, Input::Tick);
    assert!(matches!(
        d.state,
        Lifecycle::Stopping {
            reason: StopReason::Idle,
            ..
        }
    ));
    assert!(d.at(60_010, Input::Start).is_empty());
    assert!(d.at(60_020, Input::Start).is_empty());
    let effects = d.at(60_100, Input::Exited("status 0".into()));
    assert_eq!(
        effects,
        vec![
            Effect::Emit(LifecycleEvent::Stopped),
            Effect::Spawn,
            Effect::Emit(LifecycleEvent::Starting)
        ]
    );
}

#[test]
fn start_during_shutdown_is_ignored_and_shutdown_cancels_a_pending_restart() {
    let mut d = Driver::ready(0);
    d.at(0, Input::Stop(StopReason::Shutdown));
    assert!(d.at(10, Input::Start).is_empty());
    assert_eq!(
        d.at(20, Input::Exited("status 0".into())),
        vec![Effect::Emit(LifecycleEvent::Stopped)]
    );

    let mut d = Driver::ready(0);
    d.at(60_000, Input::Tick);
    d.at(60_010, Input::Start);
    let effects = d.at(60_020, Input::Stop(StopReason::Shutdown));
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::Stopping(StopReason::Shutdown)]
    );
    assert_eq!(
        d.at(60_030, Input::Exited("status 0".into())),
        vec![Effect::Emit(LifecycleEvent::Stopped)]
    );
}

#[test]
fn exit_while_ready_reports_stopped() {
    let mut d = Driver::ready(0);
    let effects = d.at(500, Input::Exited("status 2".into()));
    assert_eq!(
        effects,
        vec![Effect::CancelProbe, Effect::Emit(LifecycleEvent::Stopped)]
    );
    assert!(d.state.is_stopped());
}

#[test]
fn stop_while_starting_goes_through_the_stop_phases() {
    let mut d = Driver::started(0);
    let effects = d.at(10, Input::Stop(StopReason::Shutdown));
    assert!(effects.contains(&Effect::Terminate));
    assert!(
        d.at(20, Input::ReadyCallback).is_empty(),
        "too late to become ready"
    );
}

#[test]
fn stopped_ignores_everything_but_start() {
    let mut d = Driver::new();
    for input in [
        Input::Tick,
        Input::ReadyCallback,
        Input::Stop(StopReason::Shutdown),
        Input::ProbeResult(true),
        Input::Exited("status 0".into()),
    ] {
        assert!(d.at(0, input).is_empty());
        assert!(d.state.is_stopped());
    }
}

#[test]
fn zero_intervals_cannot_spin() {
    let mut d = Driver::new();
    d.timings.health_check_interval = Duration::ZERO;
    d.timings.idle_timeout = Duration::ZERO;
    d.at(0, Input::Start);
    assert_eq!(d.state.deadline(), Some(MIN_PROBE_INTERVAL_MS));
    d.at(0, Input::ReadyCallback);
    d.in_flight = 1;
    d.at(0, Input::Tick);
    assert!(
        matches!(d.state, Lifecycle::Ready { idle_check_at, .. } if idle_check_at >= MIN_IDLE_RECHECK_MS)
    );
}

#[test]
fn durations_read_like_the_config() {
    assert_eq!(describe_duration(Duration::from_secs(30)), "30s");
    assert_eq!(describe_duration(Duration::from_millis(1_500)), "1500ms");
}
