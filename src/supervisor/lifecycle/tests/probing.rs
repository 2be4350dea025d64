//! Probing while starting and once ready: when each probe goes out, and what its answer does.

use super::*;

#[test]
fn a_starting_instance_that_refuses_connections_is_knocked_on_every_few_ms_however_long_it_takes() {
    let mut d = Driver::started(0);
    // Far into a slow start, where an answered but unhealthy probe would wait the whole interval.
    let mut now = 1;
    let mut knocks = 0;
    while now < 10_000 {
        assert_eq!(d.at(now, Input::Tick), vec![Effect::Probe], "at {now}");
        d.at(now, Input::ProbeRefused);
        let next = d.state.deadline().expect("a knock is due");
        let gap = next - now;
        assert!(
            (MIN_KNOCK_GAP_MS..=MAX_KNOCK_GAP_MS).contains(&gap),
            "gap {gap} at {now}"
        );
        now = next;
        knocks += 1;
    }
    // Bounded work over a 10 s start: one knock per millisecond (a socket-table lookup each).
    assert!((9_900..10_000).contains(&knocks), "{knocks} knocks");
    // Once something listens but does not answer 2xx yet, probes space out as before.
    d.at(now, Input::Tick);
    d.at(now, Input::ProbeResult(false));
    assert_eq!(d.state.deadline(), Some(now + 100));
    // And the moment it answers, it is ready.
    d.at(now + 100, Input::Tick);
    let effects = d.at(now + 101, Input::ProbeResult(true));
    assert_eq!(emitted(&effects), vec![LifecycleEvent::Ready]);
}

#[test]
fn a_ready_instance_that_refuses_a_probe_has_failed_it() {
    let mut d = Driver::ready(0);
    let due = d.state.deadline().expect("a probe is due");
    assert_eq!(d.at(due, Input::Tick), vec![Effect::Probe]);
    d.at(due, Input::ProbeRefused);
    assert!(
        matches!(d.state, Lifecycle::Ready(Ready { failures: 1, .. })),
        "{:?}",
        d.state
    );
}

#[test]
fn probes_soon_after_the_spawn_then_back_off_towards_the_interval() {
    let mut d = Driver::started(0);
    assert_eq!(d.at(1, Input::Tick), vec![Effect::Probe]);
    assert_eq!(
        d.state.deadline(),
        Some(30_000),
        "only the give-up deadline while a probe is out"
    );
    assert!(d.at(1, Input::Tick).is_empty(), "one probe at a time");
    // A quarter of the time spent starting so far, at least 1 ms.
    d.at(2, Input::ProbeResult(false));
    assert_eq!(d.state.deadline(), Some(3));
    d.at(3, Input::Tick);
    d.at(40, Input::ProbeResult(false));
    assert_eq!(d.state.deadline(), Some(50));
    // Never more than the configured interval.
    d.at(50, Input::Tick);
    d.at(1_000, Input::ProbeResult(false));
    assert_eq!(d.state.deadline(), Some(1_100));
    assert_eq!(d.at(1_100, Input::Tick), vec![Effect::Probe]);
    let effects = d.at(1_160, Input::ProbeResult(true));
    assert_eq!(emitted(&effects), vec![LifecycleEvent::Ready]);
    assert!(matches!(
        d.state,
        Lifecycle::Ready(Ready {
            since_ms: 1_160,
            failures: 0,
            ..
        })
    ));
}

#[test]
fn probes_while_starting_stay_few() {
    // Probes answered at once (connection refused) for a backend that takes 2 s to start.
    let mut d = Driver::started(0);
    let mut probes = 0;
    let mut now = 0;
    while let Some(at) = d.state.deadline() {
        now = at;
        if now >= 2_000 {
            break;
        }
        if d.at(now, Input::Tick).contains(&Effect::Probe) {
            probes += 1;
            d.at(now, Input::ProbeResult(false));
        }
    }
    // 2 s at 100 ms would be 20 probes; the ramp up to the interval adds about as many again.
    assert!(probes <= 45, "{probes} probes in 2 s");
    assert!(now >= 2_000);
}

#[test]
fn a_probe_result_nobody_asked_for_is_ignored() {
    let mut d = Driver::started(0);
    assert!(d.at(10, Input::ProbeResult(true)).is_empty());
    assert!(matches!(d.state, Lifecycle::Starting(_)));
}
