//! The reload scenarios of the shared suite, run for each protocol like the rest of it.

use std::time::Duration;

use super::{configs, released, Driver, Http1, Protocol, H2};
use crate::error::ErrorCode;
use crate::msg::{LifecycleEvent, StopReason};
use crate::upstream::Admission;

both!(
    reload_adds_keeps_and_removes,
    a_reload_that_changes_nothing_keeps_a_back_off,
    a_new_port_takes_effect_at_the_next_start,
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
    let Admission::Hold { start, .. } = d.admit("a.test") else {
        panic!("a changed backend is started again")
    };
    assert!(start);
}

fn a_new_port_takes_effect_at_the_next_start<P: Protocol>() {
    let mut d = Driver::<P>::new(&[("a.test", 4000)], 10);
    d.event("a.test", LifecycleEvent::Ready);
    d.reload(&[("a.test", 5000)]);
    let port = |d: &Driver<P>| {
        let backend = d.table.get(d.id("a.test")).unwrap();
        backend.addr.tcp().map(|a| a.port())
    };
    assert_eq!(port(&d), Some(4000), "the running instance keeps its port");
    d.event_at("a.test", 4000, LifecycleEvent::Stopping(StopReason::Idle));
    d.event_at("a.test", 4000, LifecycleEvent::Stopped);
    d.event_at("a.test", 5000, LifecycleEvent::Starting);
    assert_eq!(port(&d), Some(5000));
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
        let reconcile = reactor.table.plan(&configs(&hosts));
        reactor.table.apply(&reconcile);
        worker.table.apply(&reconcile);
        for (host, _) in &hosts {
            assert_eq!(reactor.table.id_of(host), worker.table.id_of(host));
        }
        assert_eq!(reactor.table.routes(), worker.table.routes());
    }
}
