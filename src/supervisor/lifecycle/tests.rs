use std::time::Duration;

use super::*;

mod crash_loop;
mod notify;
mod probing;
mod stop;

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
        socket_activation: false,
        server_timing: true,
        watchdog: None,
    }
}

/// Drives one machine (under the crash-loop rules, as the supervisor runs it) through inputs at chosen
/// times, with chosen traffic.
pub(super) struct Driver {
    pub state: Lifecycle,
    pub crash_loop: CrashLoop,
    pub timings: Timings,
    pub in_flight: usize,
    pub last_active_ms: u64,
    /// The pool controller's say on idle stops.
    pub may_stop_idle: bool,
}

impl Driver {
    pub fn new() -> Self {
        Driver {
            state: Lifecycle::Stopped,
            crash_loop: CrashLoop::default(),
            timings: timings(),
            in_flight: 0,
            last_active_ms: 0,
            may_stop_idle: true,
        }
    }

    pub fn at(&mut self, now_ms: u64, input: Input) -> Vec<Effect> {
        let env = Env {
            now_ms,
            in_flight: self.in_flight,
            last_active_ms: self.last_active_ms,
            timings: &self.timings,
            may_stop_idle: self.may_stop_idle,
        };
        let state = std::mem::replace(&mut self.state, Lifecycle::Stopped);
        let (state, effects) = self.crash_loop.step(state, input, &env);
        self.state = state;
        effects
    }

    pub fn started(now_ms: u64) -> Self {
        let mut d = Driver::new();
        d.at(now_ms, Input::Start);
        d
    }

    pub fn ready(now_ms: u64) -> Self {
        let mut d = Driver::started(now_ms);
        d.at(now_ms, Input::ReadyCallback);
        d
    }
}

pub(super) fn emitted(effects: &[Effect]) -> Vec<LifecycleEvent> {
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
        Lifecycle::Starting(Starting {
            since_ms: 1_000,
            give_up_at: 31_000,
            ..
        })
    ));
    assert_eq!(
        d.state.deadline(),
        Some(1_001),
        "the first probe goes out right after the spawn"
    );
    assert!(
        d.at(1_050, Input::Start).is_empty(),
        "a second start must not spawn again"
    );
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
            "exited before becoming ready, with status 1".into()
        )]
    );
    assert!(d.state.is_stopped());
}

#[test]
fn spawn_failure_fails_the_start() {
    let mut d = Driver::started(0);
    let effects = d.at(0, Input::SpawnFailed("no such file".into()));
    assert_eq!(
        effects,
        vec![
            Effect::CancelProbe,
            Effect::Emit(LifecycleEvent::StartFailed("no such file".into()))
        ]
    );
    assert!(d.state.is_stopped());
}

#[test]
fn a_vetoed_idle_stop_keeps_running_and_looks_again_an_idle_timeout_later() {
    let mut d = Driver::ready(1_000);
    d.may_stop_idle = false;
    let effects = d.at(61_000, Input::Tick);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Terminate)),
        "{effects:?}"
    );
    assert!(matches!(
        d.state,
        Lifecycle::Ready(Ready {
            idle_check_at: 121_000,
            ..
        })
    ));
    // Allowed again: the next check stops it.
    d.may_stop_idle = true;
    d.at(121_000, Input::Tick);
    assert!(matches!(d.state, Lifecycle::Stopping(_)), "{:?}", d.state);
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
        Lifecycle::Ready(Ready {
            idle_check_at: 80_000,
            ..
        })
    ));
    // Busy at 80 s: look again one idle timeout later.
    d.in_flight = 2;
    d.at(80_000, Input::Tick);
    assert!(matches!(
        d.state,
        Lifecycle::Ready(Ready {
            idle_check_at: 140_000,
            ..
        })
    ));
    // Quiet since 90 s: at 150 s it has been idle for 60 s.
    d.in_flight = 0;
    d.last_active_ms = 90_000;
    d.at(140_000, Input::Tick);
    assert!(matches!(
        d.state,
        Lifecycle::Ready(Ready {
            idle_check_at: 150_000,
            ..
        })
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
        matches!(d.state, Lifecycle::Stopping(_)),
        "idle for exactly the timeout"
    );
    let mut d = Driver::ready(100_000);
    d.at(130_000, Input::Tick);
    assert!(matches!(d.state, Lifecycle::Ready(_)));
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
    d.at(1, Input::Tick);
    d.at(100, Input::ProbeResult(false));
    assert_eq!(d.state.deadline(), Some(100 + MIN_PROBE_INTERVAL_MS));
    d.at(0, Input::ReadyCallback);
    d.in_flight = 1;
    d.at(0, Input::Tick);
    assert!(
        matches!(d.state, Lifecycle::Ready(Ready { idle_check_at, .. }) if idle_check_at >= MIN_IDLE_RECHECK_MS)
    );
}

#[test]
fn durations_read_like_the_config() {
    assert_eq!(describe_duration(Duration::from_secs(30)), "30s");
    assert_eq!(describe_duration(Duration::from_millis(1_500)), "1500ms");
}

#[test]
fn a_scale_down_still_draining_is_taken_back_by_demand_and_after_the_signal_restarts() {
    let mut d = Driver::ready(1_000);
    d.in_flight = 1;
    let effects = d.at(2_000, Input::Stop(StopReason::ScaleDown));
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::Stopping(StopReason::ScaleDown)]
    );
    assert!(
        matches!(d.state, Lifecycle::Stopping(_)),
        "draining its request"
    );
    // Demand returns before the drain ends: nothing was signalled, so it is ready again at once.
    let effects = d.at(2_100, Input::Start);
    assert_eq!(emitted(&effects), vec![LifecycleEvent::Ready]);
    assert!(!effects.contains(&Effect::Terminate) && !effects.contains(&Effect::Spawn));
    assert!(matches!(d.state, Lifecycle::Ready(_)));
    // Drained and signalled: demand now means a start once it is gone.
    d.in_flight = 0;
    let effects = d.at(3_000, Input::Stop(StopReason::ScaleDown));
    assert!(
        !effects.contains(&Effect::Terminate),
        "the threads learn first: {effects:?}"
    );
    let effects = d.at(3_050, Input::Tick);
    assert!(effects.contains(&Effect::Terminate), "{effects:?}");
    d.at(3_100, Input::Start);
    let effects = d.at(3_200, Input::Exited("signal SIGTERM".into()));
    assert!(effects.contains(&Effect::Spawn), "{effects:?}");
}
