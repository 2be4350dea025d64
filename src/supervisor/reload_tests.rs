//! Reloads reach the supervisor as the reactor planned them: it makes the same changes under the same ids,
//! including when the two disagree for a moment about a removed backend's stop.

use std::time::Duration;

use super::harness::{named, Harness, EVENT_WAIT};
use crate::msg::{BackendEvent, Command, LifecycleEvent, ReactorMsg, StopReason};
use crate::supervisor::test_support::{
    first_pid, free_port, local_config, pids_in, recorded, scratch_file, wait_for,
};
use crate::upstream::{BackendId, Change};

/// The next report, not heard by the harness's table: still on its way to the reactor.
fn unheard(h: &Harness) -> (BackendId, LifecycleEvent) {
    match h.next_unheard() {
        ReactorMsg::Backend(BackendEvent { backend, event, .. }) => (backend, event),
        other => panic!("expected a report, got {other:?}"),
    }
}

#[test]
fn reload_adds_removes_and_leaves_running_backends_alone() {
    let pids = scratch_file("e2e-reload");
    let kept = named("kept.test", recorded(free_port(), &pids, "exec sleep 30"));
    let dropped = named("dropped.test", local_config(free_port(), "sleep", &["30"]));
    let h = Harness::new(vec![kept.clone(), dropped]);
    h.start("kept.test");
    h.expect("kept.test", LifecycleEvent::Starting);
    h.ready("kept.test");
    h.expect("kept.test", LifecycleEvent::Ready);
    first_pid(&pids);

    let mut changed = kept.clone();
    changed.timings.idle_timeout = Duration::from_secs(600);
    let added = named("added.test", local_config(free_port(), "sleep", &["30"]));
    let dropped = h.id("dropped.test");
    h.reload(vec![changed, added]);
    h.send(Command::Start(dropped));
    h.start("added.test");
    h.expect("added.test", LifecycleEvent::Starting);
    h.start("kept.test");
    h.expect("kept.test", LifecycleEvent::Ready);
    assert_eq!(pids_in(&pids).len(), 1, "a changed backend keeps running");

    let kept = h.id("kept.test");
    h.reload(Vec::new());
    let mut stopped = Vec::new();
    while stopped.len() < 4 {
        if let ReactorMsg::Backend(BackendEvent { host, event, .. }) = h.next() {
            stopped.push((host.to_string(), event));
        }
    }
    for host in ["kept.test", "added.test"] {
        assert!(stopped.contains(&(
            host.to_string(),
            LifecycleEvent::Stopping(StopReason::Removed)
        )));
        assert!(stopped.contains(&(host.to_string(), LifecycleEvent::Stopped)));
    }
    h.send(Command::Start(kept));
    h.quiet_for(Duration::from_millis(100));
}

/// The reactor still has a removed backend (its `Stopped` has not reached it) when it plans a reload
/// that puts it back: a Keep, for an id the supervisor forgot when the backend stopped. The supervisor
/// takes it in afresh under that id.
#[test]
fn a_kept_backend_the_supervisor_already_forgot_starts_afresh_under_its_id() {
    let pids = scratch_file("e2e-keep-forgotten");
    let config = named("a.test", recorded(free_port(), &pids, "exec sleep 30"));
    let h = Harness::new(vec![config.clone()]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    h.ready("a.test");
    h.expect("a.test", LifecycleEvent::Ready);
    let id = h.id("a.test");
    let first = first_pid(&pids);

    h.reload(Vec::new());
    let removed = LifecycleEvent::Stopping(StopReason::Removed);
    assert_eq!(unheard(&h), (id, removed));
    assert_eq!(unheard(&h), (id, LifecycleEvent::Stopped));
    let back = h.reload(vec![config]);
    assert!(
        matches!(back.changes[..], [Change::Keep { id: kept, .. }] if kept == id),
        "{:?}",
        back.changes
    );

    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    let started = wait_for(EVENT_WAIT, || {
        let started = pids_in(&pids);
        (started.len() == 2).then_some(started)
    })
    .expect("started again");
    assert_ne!(started[1], first);
}

/// The reactor forgot a removed backend at once, as it never saw it start (the removal came while its
/// start was on its way), then a reload adds its host back: a new id. The supervisor still stops the old
/// instance; the new backend carries on with it instead of starting a second program on its port.
#[test]
fn a_host_added_back_while_its_removed_backend_still_stops_carries_on_with_it() {
    let pids = scratch_file("e2e-added-back");
    // TERM is ignored from before the pid is written: the stop lasts the grace period.
    let script = format!("trap '' TERM; echo $$ >> {}; sleep 30", pids.display());
    let mut config = named("a.test", local_config(free_port(), "sh", &["-c", &script]));
    config.timings.shutdown_grace_period = Duration::from_secs(1);
    let h = Harness::new(vec![config.clone()]);
    let old = h.id("a.test");
    h.start("a.test");
    assert_eq!(unheard(&h), (old, LifecycleEvent::Starting));
    first_pid(&pids);
    let removal = h.reload(Vec::new());
    assert!(matches!(removal.changes[..], [Change::Remove { id }] if id == old));
    let removed = LifecycleEvent::Stopping(StopReason::Removed);
    assert_eq!(unheard(&h), (old, removed));

    let added = h.reload(vec![config]);
    let new = match added.changes[..] {
        [Change::Add { id, .. }] => id,
        _ => panic!("expected an addition: {:?}", added.changes),
    };
    assert_ne!(new, old);
    // From here on it is reported under the new id, and its stop is an ordinary one.
    h.expect("a.test", LifecycleEvent::Stopping(StopReason::Idle));
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Stopped);
    h.expect("a.test", LifecycleEvent::Starting);
    assert!(wait_for(EVENT_WAIT, || (pids_in(&pids).len() == 2).then_some(())).is_some());
}
