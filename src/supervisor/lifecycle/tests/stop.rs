//! The way down: drain, SIGTERM, SIGKILL, restarts.

use super::super::stop::StopPhase;
use super::super::*;
use super::{emitted, Driver};

#[test]
fn probes_skipped_for_lack_of_descriptors_neither_fail_nor_pass() {
    let mut d = Driver::ready(0);
    let probe_with = |d: &mut Driver, input: Input| {
        let due = d.state.deadline().unwrap();
        assert_eq!(d.at(due, Input::Tick), vec![Effect::Probe]);
        d.at(due + 10, input)
    };
    // Threshold is 3: two failures, any number of skipped probes, and the third failure decides.
    for _ in 0..2 {
        assert!(probe_with(&mut d, Input::ProbeResult(false)).is_empty());
    }
    for _ in 0..5 {
        assert!(probe_with(&mut d, Input::ProbeSkipped).is_empty());
        assert!(matches!(d.state, Lifecycle::Ready(_)));
    }
    let effects = probe_with(&mut d, Input::ProbeResult(false));
    assert_eq!(emitted(&effects)[0], LifecycleEvent::Unhealthy);
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
        Lifecycle::Stopping(Stopping {
            reason: StopReason::Restart,
            phase: StopPhase::Draining { until, .. },
            restart_after: true,
        }) if until == now + 10 + 5_000
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
        Lifecycle::Stopping(Stopping {
            reason: StopReason::Idle,
            ..
        })
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
fn an_abandoned_container_start_ends_a_stop_like_an_exit() {
    let mut d = Driver::started(0);
    d.at(10, Input::Stop(StopReason::Shutdown));
    assert_eq!(
        d.at(
            500,
            Input::SpawnFailed("stopped before the container started".into())
        ),
        vec![Effect::Emit(LifecycleEvent::Stopped)]
    );
    assert!(d.state.is_stopped());

    // An idle-stop style restart still happens after it.
    let mut d = Driver::started(0);
    d.at(10, Input::Stop(StopReason::Idle));
    d.at(20, Input::Start);
    let effects = d.at(30, Input::SpawnFailed("stopped before it started".into()));
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
fn a_container_killed_while_created_ends_its_reaping_by_a_failed_spawn() {
    let mut d = Driver::started(0);
    let effects = d.at(30_000, Input::Tick);
    assert!(effects.contains(&Effect::Kill));
    assert!(d.at(30_010, Input::Start).is_empty());
    let effects = d.at(
        30_500,
        Input::SpawnFailed("stopped before it started".into()),
    );
    assert_eq!(
        effects,
        vec![Effect::Spawn, Effect::Emit(LifecycleEvent::Starting)],
        "the request that came meanwhile starts it again"
    );

    let mut d = Driver::started(0);
    d.at(30_000, Input::Tick);
    assert!(d
        .at(
            30_500,
            Input::SpawnFailed("stopped before it started".into())
        )
        .is_empty());
    assert!(d.state.is_stopped());
}
