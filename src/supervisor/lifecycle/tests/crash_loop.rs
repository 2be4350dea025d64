//! Crash-loop back-off: counting bad starts, suspending starts, doubling, recovery.

use std::time::Duration;

use super::super::crash_loop::{
    FAILURE_WINDOW_MS, FIRST_BACKOFF_MS, MAX_BACKOFF_MS, MAX_FAILURES_IN_WINDOW, RECOVERED_AFTER_MS,
};
use super::super::*;
use super::{emitted, Driver};

const EXIT_AT_START: &str = "exited before becoming ready, with status 3";

/// A start at `now` that ends with the process exiting at once; returns what the exit emitted.
fn failed_start(d: &mut Driver, now: u64) -> Vec<LifecycleEvent> {
    let effects = d.at(now, Input::Start);
    assert!(
        effects.contains(&Effect::Spawn),
        "start at {now} did not spawn"
    );
    emitted(&d.at(now, Input::Exited("status 3".into())))
}

fn backing_off(retry_after_ms: u64) -> LifecycleEvent {
    LifecycleEvent::BackingOff {
        reason: EXIT_AT_START.to_string(),
        retry_after: Duration::from_millis(retry_after_ms),
    }
}

/// A start while backing off answers at once and spawns nothing.
fn assert_refused(d: &mut Driver, now: u64, retry_after_ms: u64) {
    let effects = d.at(now, Input::Start);
    assert_eq!(effects, vec![Effect::Emit(backing_off(retry_after_ms))]);
    assert!(d.state.is_stopped());
}

#[test]
fn five_failures_in_the_window_suspend_starts_for_a_second() {
    let mut d = Driver::new();
    for i in 0..MAX_FAILURES_IN_WINDOW as u64 - 1 {
        let events = failed_start(&mut d, i * 100);
        assert_eq!(
            events,
            vec![LifecycleEvent::StartFailed(EXIT_AT_START.into())]
        );
    }
    let events = failed_start(&mut d, 400);
    assert_eq!(
        events,
        vec![
            LifecycleEvent::StartFailed(EXIT_AT_START.into()),
            backing_off(FIRST_BACKOFF_MS)
        ]
    );
    // Every start meanwhile is answered, with the time left.
    assert_refused(&mut d, 500, 900);
    assert_refused(&mut d, 1_399, 1);
    assert!(d.at(1_400, Input::Start).contains(&Effect::Spawn));
}

#[test]
fn failures_spread_beyond_the_window_never_back_off() {
    let mut d = Driver::new();
    let gap = FAILURE_WINDOW_MS / (MAX_FAILURES_IN_WINDOW as u64 - 1) + 1;
    for i in 0..20 {
        let events = failed_start(&mut d, i * gap);
        assert_eq!(events.len(), 1, "failure {i}: {events:?}");
    }
}

#[test]
fn each_failure_after_the_first_back_off_doubles_it_up_to_a_minute() {
    let mut d = Driver::new();
    let mut now = 0;
    for _ in 0..MAX_FAILURES_IN_WINDOW {
        failed_start(&mut d, now);
        now += 10;
    }
    let mut delay = FIRST_BACKOFF_MS;
    let mut seen = Vec::new();
    for _ in 0..10 {
        now += delay;
        let events = failed_start(&mut d, now);
        delay = match events.last() {
            Some(LifecycleEvent::BackingOff { retry_after, .. }) => retry_after.as_millis() as u64,
            other => panic!("no back-off after a failure in a loop: {other:?}"),
        };
        seen.push(delay);
    }
    assert_eq!(
        seen,
        [2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000, 60_000]
    );
    assert_eq!(delay, MAX_BACKOFF_MS);
}

#[test]
fn a_backend_healthy_for_long_enough_starts_with_a_clean_record() {
    let mut d = Driver::new();
    for i in 0..MAX_FAILURES_IN_WINDOW as u64 {
        failed_start(&mut d, i);
    }
    let mut now = 1_000 + FIRST_BACKOFF_MS;
    d.at(now, Input::Start);
    d.at(now, Input::ReadyCallback);
    now += RECOVERED_AFTER_MS;
    // Any input while ready looks at how long it has been healthy; here the crash itself.
    let events = emitted(&d.at(now, Input::Exited("signal SIGKILL".into())));
    assert_eq!(
        events,
        vec![LifecycleEvent::Stopped],
        "one crash after a healthy stretch is no loop"
    );
    assert!(d.at(now, Input::Start).contains(&Effect::Spawn));
}

#[test]
fn crashes_soon_after_becoming_ready_count_as_a_loop() {
    let mut d = Driver::new();
    let mut now = 0;
    let mut last = Vec::new();
    for _ in 0..MAX_FAILURES_IN_WINDOW {
        d.at(now, Input::Start);
        d.at(now + 50, Input::ReadyCallback);
        last = emitted(&d.at(now + 500, Input::Exited("status 1".into())));
        now += 1_000;
    }
    assert_eq!(
        last,
        vec![
            LifecycleEvent::Stopped,
            LifecycleEvent::BackingOff {
                reason: "exited while ready, with status 1".into(),
                retry_after: Duration::from_millis(FIRST_BACKOFF_MS),
            }
        ]
    );
    assert!(!d.at(now, Input::Start).contains(&Effect::Spawn));
}

#[test]
fn an_unhealthy_restart_waits_for_the_back_off() {
    let mut d = Driver::new();
    d.timings.unhealthy_threshold = 1;
    for i in 0..MAX_FAILURES_IN_WINDOW as u64 - 1 {
        failed_start(&mut d, i);
    }
    d.at(100, Input::Start);
    d.at(100, Input::ReadyCallback);
    let due = d.state.deadline().unwrap_or(0).min(5_100);
    assert_eq!(d.at(due, Input::Tick), vec![Effect::Probe]);
    let events = emitted(&d.at(due, Input::ProbeResult(false)));
    assert_eq!(
        events,
        vec![
            LifecycleEvent::Unhealthy,
            LifecycleEvent::Stopping(StopReason::Restart),
            LifecycleEvent::BackingOff {
                reason: "failed 1 health checks in a row".into(),
                retry_after: Duration::from_millis(FIRST_BACKOFF_MS),
            }
        ]
    );
    // The stop completes during the back-off: no restart behind it.
    let effects = d.at(due + 10, Input::Exited("signal SIGTERM".into()));
    assert_eq!(emitted(&effects), vec![LifecycleEvent::Stopped]);
    assert!(!effects.contains(&Effect::Spawn));
    assert!(d.state.is_stopped());
}

#[test]
fn a_timed_out_start_that_triggers_the_back_off_is_not_restarted_by_its_reap() {
    // The fifth failure is a startup timeout: killed, reported, and waiting to be reaped.
    let mut d = Driver::new();
    d.timings.startup_timeout = Duration::from_millis(100);
    for i in 0..MAX_FAILURES_IN_WINDOW as u64 - 1 {
        failed_start(&mut d, i);
    }
    d.at(10, Input::Start);
    let events = emitted(&d.at(110, Input::Tick));
    assert!(matches!(
        events.as_slice(),
        [
            LifecycleEvent::StartFailed(_),
            LifecycleEvent::BackingOff { .. }
        ]
    ));
    assert_eq!(
        d.at(120, Input::Start).len(),
        1,
        "answered with BackingOff at once"
    );
    let effects = d.at(130, Input::Exited("signal SIGKILL".into()));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(d.state.is_stopped());
}

#[test]
fn a_stop_for_removal_is_not_answered_with_back_off() {
    let mut d = Driver::new();
    for i in 0..MAX_FAILURES_IN_WINDOW as u64 - 1 {
        failed_start(&mut d, i);
    }
    d.at(10, Input::Start);
    d.at(10, Input::ReadyCallback);
    d.in_flight = 1;
    d.at(20, Input::Stop(StopReason::Removed));
    assert!(d.at(30, Input::Start).is_empty());
}
