//! The reload scenarios of the shared suite, run for each protocol like the rest of it; and what a late
//! report about a backend a reload removed does (nothing).

use std::time::Duration;

use super::{configs, released, Driver, Http1, Protocol, H2};
use crate::error::ErrorCode;
use crate::msg::{LifecycleEvent, StopReason};
use crate::upstream::{Admission, BackendId};

both!(
    reload_adds_keeps_and_removes,
    a_reload_that_changes_nothing_keeps_a_back_off,
    a_new_port_takes_effect_at_the_next_start,
    a_late_report_about_a_removed_backend_leaves_the_one_in_its_slot_alone,
);

fn reload_adds_keeps_and_removes<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000), ("b.test", 4001)], 10);
    d.event("b.test", LifecycleEvent::Ready);
    let _held_a = d.hold("a.test");
    let a = d.id("a.test");
    let outcomes = d.reload(&[("c.test", 4002)]);
    // a never started: forgotten at once, its held request answered 404.
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].id, a);
    assert_eq!(
        released(&outcomes[0]),
        Some((1, Some(ErrorCode::UnknownHost)))
    );
    assert!(outcomes[0].forgotten.is_some());
    assert!(matches!(d.admit("c.test"), Admission::Hold { .. }));
    assert_eq!(d.refused("a.test").code, ErrorCode::UnknownHost);
    // b is running but removed: new requests are refused while it drains, 404 once it stopped.
    assert_eq!(d.refused("b.test").code, ErrorCode::BackendShuttingDown);
    d.event("b.test", LifecycleEvent::Stopping(StopReason::Removed));
    assert_eq!(d.refused("b.test").code, ErrorCode::BackendShuttingDown);
    let stopped = d.event("b.test", LifecycleEvent::Stopped);
    assert!(stopped.forgotten.is_some() && stopped.drop_pool);
    assert_eq!(d.refused("b.test").code, ErrorCode::UnknownHost);
    // The freed slot goes to the next backend added, under a new generation.
    d.reload(&[("c.test", 4002), ("d.test", 4003)]);
    let d_id = d.id("d.test");
    assert_ne!(d_id, a, "a reused slot is a new id");
    assert!(d.table.get(a).is_none());
}

fn a_reload_that_changes_nothing_keeps_a_back_off<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    let backing_off = LifecycleEvent::BackingOff {
        reason: "exited".into(),
        retry_after: Duration::from_secs(30),
    };
    d.event("a.test", backing_off);
    assert!(d.reload(&[("a.test", 4000)]).is_empty());
    let err = d.refused("a.test");
    assert_eq!(err.code, ErrorCode::BackendStartFailed);
    assert_eq!(err.retry_after_secs, Some(30));
    // New settings deserve a fresh start.
    d.reload(&[("a.test", 4010)]);
    let Admission::Hold { ask: start, .. } = d.admit("a.test") else {
        panic!("a changed backend is started again")
    };
    assert!(start.is_some());
}

fn a_new_port_takes_effect_at_the_next_start<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    d.event("a.test", LifecycleEvent::Ready);
    d.reload(&[("a.test", 5000)]);
    let port = |d: &Driver<P>| {
        let backend = d.table.get(d.id("a.test")).unwrap();
        backend.first().addr.tcp().map(|a| a.port())
    };
    assert_eq!(port(&d), Some(4000), "the running instance keeps its port");
    d.event_at("a.test", 4000, LifecycleEvent::Stopping(StopReason::Idle));
    d.event_at("a.test", 4000, LifecycleEvent::Stopped);
    d.event_at("a.test", 5000, LifecycleEvent::Starting);
    assert_eq!(port(&d), Some(5000));
}

/// A report about a removed backend can still be on its way when the reload that adds another takes its
/// slot: the new generation tells them apart, so the report is dropped instead of reaching the new one.
fn a_late_report_about_a_removed_backend_leaves_the_one_in_its_slot_alone<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    d.event("a.test", LifecycleEvent::Ready);
    let old = d.id("a.test");
    d.reload(&[]);
    d.event("a.test", LifecycleEvent::Stopping(StopReason::Removed));
    assert!(d
        .event("a.test", LifecycleEvent::Stopped)
        .forgotten
        .is_some());
    d.reload(&[("b.test", 4001)]);
    let new = d.id("b.test");
    assert_eq!(
        new,
        BackendId::new(0, 2),
        "b takes a's slot, one generation on"
    );
    assert_ne!(new, old);
    let _held = d.hold("b.test");

    // a's instance, late: every report is dropped, none reaches b.
    for event in [
        LifecycleEvent::Ready,
        LifecycleEvent::StartFailed("late".into()),
        LifecycleEvent::Stopping(StopReason::Removed),
        LifecycleEvent::Stopped,
    ] {
        assert!(d.report(old, "a.test", 4000, event).is_none());
    }
    let b = d.table.get(new).unwrap();
    assert_eq!(
        b.first().addr.tcp().map(|a| a.port()),
        Some(4001),
        "b's address is its own"
    );
    assert_eq!(b.first().view.state, crate::msg::State::Stopped);
    assert!(!b.first().view.removed);
    // b's held request still waits, and b's own reports still count.
    let Admission::Hold {
        ask: start,
        receipt: _second,
        ..
    } = d.admit("b.test")
    else {
        panic!("b is still starting")
    };
    assert!(start.is_none(), "b's start is still the one under way");
    let ready = d.event("b.test", LifecycleEvent::Ready);
    assert_eq!(released(&ready), Some((2, None)));
}

#[test]
fn both_threads_applying_the_same_reloads_agree_on_every_id() {
    let mut reactor = Driver::<Http1>::new(&[("a.test", 4000), ("b.test", 4001)], 10);
    let mut worker = Driver::<H2>::new(&[("a.test", 4000), ("b.test", 4001)], 10);
    for hosts in [
        vec![("b.test", 4001), ("c.test", 4002)],
        vec![("c.test", 4002), ("d.test", 4003), ("a.test", 4000)],
        vec![("e.test", 4004)],
    ] {
        let reconcile = reactor.table.plan(&configs(&hosts), &[]);
        reactor.table.apply(&reconcile);
        worker.table.apply(&reconcile);
        for (host, _) in &hosts {
            assert_eq!(reactor.table.id_of(host), worker.table.id_of(host));
        }
        assert!(
            std::ptr::eq(reactor.table.routes(), worker.table.routes()),
            "both threads route by the one table of the reload"
        );
    }
}
