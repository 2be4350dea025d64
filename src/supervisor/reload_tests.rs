//! Reloads reach the supervisor as the reactor planned them: it makes the same changes under the same ids.

use std::time::Duration;

use super::harness::{named, Harness};
use crate::msg::{BackendEvent, Command, LifecycleEvent, ReactorMsg, StopReason};
use crate::supervisor::test_support::{
    first_pid, free_port, local_config, pids_in, recorded, scratch_file,
};

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
