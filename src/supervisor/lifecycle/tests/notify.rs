//! Socket activation and readiness notification: an instance routable from its spawn, `READY=1`,
//! `STOPPING=1` and the watchdog.

use std::time::Duration;

use super::super::*;
use super::{emitted, Driver};
use crate::msg::{LifecycleEvent, StopReason};

#[test]
fn a_socket_activated_instance_is_routable_from_its_spawn_and_announced_once() {
    let mut d = Driver::started(1_000);
    let effects = d.at(1_000, Input::Listening);
    assert_eq!(emitted(&effects), vec![LifecycleEvent::Ready]);
    assert!(matches!(
        d.state,
        Lifecycle::Starting(Starting { routable: true, .. })
    ));
    // Probing goes on: the first healthy answer makes it Ready without a second announcement.
    let due = d.state.deadline().unwrap();
    assert_eq!(d.at(due, Input::Tick), vec![Effect::Probe]);
    let effects = d.at(due + 900, Input::ProbeResult(true));
    assert!(emitted(&effects).is_empty(), "{effects:?}");
    assert!(matches!(d.state, Lifecycle::Ready(_)));
}

#[test]
fn a_socket_activated_instance_that_never_answers_still_fails_its_start() {
    let mut d = Driver::started(0);
    d.at(0, Input::Listening);
    // Probes connect on the backlog and time out while it boots: not failures that count.
    for now in [10, 1_100, 2_300] {
        d.at(now, Input::Tick);
        d.at(now + 1_000, Input::ProbeResult(false));
        assert!(matches!(d.state, Lifecycle::Starting(_)));
    }
    let effects = d.at(30_000, Input::Tick);
    assert!(effects.contains(&Effect::Kill), "{effects:?}");
    assert!(matches!(
        emitted(&effects).as_slice(),
        [LifecycleEvent::StartFailed(why)] if why.contains("within 30s")
    ));
}

#[test]
fn an_exit_before_ready_fails_the_start_even_when_routable() {
    let mut d = Driver::started(0);
    d.at(0, Input::Listening);
    let effects = d.at(40, Input::Exited("status 1".into()));
    assert!(matches!(
        emitted(&effects).as_slice(),
        [LifecycleEvent::StartFailed(why)] if why.contains("before becoming ready")
    ));
    assert_eq!(d.state, Lifecycle::Stopped);
}

#[test]
fn ready_1_makes_a_starting_instance_ready_at_once() {
    let mut d = Driver::started(0);
    d.at(5, Input::Tick);
    // Its health path still fails: READY=1 is what counts.
    d.at(6, Input::ProbeResult(false));
    let effects = d.at(20, Input::NotifyReady);
    assert_eq!(emitted(&effects), vec![LifecycleEvent::Ready]);
    assert!(effects.contains(&Effect::CancelProbe));
    assert!(matches!(
        d.state,
        Lifecycle::Ready(Ready { since_ms: 20, .. })
    ));
    // Said again once ready: nothing new.
    assert!(d.at(30, Input::NotifyReady).is_empty());
}

#[test]
fn stopping_1_is_a_stop_in_progress_that_a_request_turns_into_a_restart() {
    let mut d = Driver::ready(0);
    let effects = d.at(100, Input::NotifyStopping);
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::Stopping(StopReason::Announced)]
    );
    // Idle: terminated at once, so a program that says it stops but hangs is still bounded.
    assert!(effects.contains(&Effect::Terminate), "{effects:?}");
    d.at(150, Input::Start);
    let effects = d.at(200, Input::Exited("status 0".into()));
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::Stopped, LifecycleEvent::Starting]
    );
    // Before ready, too.
    let mut d = Driver::started(0);
    let effects = d.at(10, Input::NotifyStopping);
    assert_eq!(
        emitted(&effects),
        vec![LifecycleEvent::Stopping(StopReason::Announced)]
    );
}

#[test]
fn a_silent_watchdog_makes_the_instance_unhealthy_and_restarts_it() {
    let mut d = Driver::new();
    d.timings.watchdog = Some(Duration::from_secs(2));
    d.at(0, Input::Start);
    d.at(100, Input::NotifyReady);
    assert!(matches!(
        d.state,
        Lifecycle::Ready(Ready {
            watchdog_at: Some(2_100),
            ..
        })
    ));
    assert_eq!(d.state.deadline(), Some(2_100));
    // Pings push it on.
    d.at(1_500, Input::WatchdogPing);
    assert_eq!(d.state.deadline(), Some(3_500));
    assert!(emitted(&d.at(3_499, Input::Tick)).is_empty());
    let effects = d.at(3_500, Input::Tick);
    assert_eq!(
        emitted(&effects),
        vec![
            LifecycleEvent::Unhealthy,
            LifecycleEvent::Stopping(StopReason::Restart)
        ]
    );
    assert!(matches!(
        d.state,
        Lifecycle::Stopping(Stopping {
            restart_after: true,
            ..
        })
    ));
}

#[test]
fn without_watchdog_secs_pings_change_nothing() {
    let mut d = Driver::ready(0);
    d.at(10, Input::WatchdogPing);
    assert!(matches!(
        d.state,
        Lifecycle::Ready(Ready {
            watchdog_at: None,
            ..
        })
    ));
    // Pings while starting are not counted either.
    let mut d = Driver::started(0);
    assert!(d.at(10, Input::WatchdogPing).is_empty());
}
