//! The supervisor thread driven through its public API, with real processes and real health endpoints.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::harness::{named, Harness, EVENT_WAIT};
use crate::msg::{BackendEvent, Command, LifecycleEvent, ReactorMsg, StopReason};
use crate::supervisor::test_support::{
    assert_gone, first_pid, free_port, gone, health_server, local_config, pids_in, recorded,
    scratch_file, wait_for,
};

#[test]
fn probes_until_the_backend_answers_then_stops_it_when_idle() {
    let port = free_port();
    let pids = scratch_file("e2e-idle");
    let mut config = recorded(port, &pids, "exec sleep 30");
    config.timings.idle_timeout = Duration::from_millis(300);
    let h = Harness::new(vec![named("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    let pid = first_pid(&pids);
    // The health endpoint appears only after the spawn (the port must be free to start).
    let _server = health_server(port);
    h.expect("a.test", LifecycleEvent::Ready);
    let ready_at = Instant::now();
    h.expect("a.test", LifecycleEvent::Stopping(StopReason::Idle));
    assert!(
        ready_at.elapsed() >= Duration::from_millis(250),
        "stopped before the idle timeout"
    );
    h.expect("a.test", LifecycleEvent::Stopped);
    assert!(gone(pid), "Stopped is reported after the reap");
}

#[test]
fn concurrent_starts_spawn_once_and_the_ready_callback_counts() {
    let pids = scratch_file("e2e-once");
    let config = recorded(free_port(), &pids, "exec sleep 30");
    let h = Harness::new(vec![named("a.test", config)]);
    for _ in 0..3 {
        h.start("a.test");
    }
    h.expect("a.test", LifecycleEvent::Starting);
    h.ready("a.test");
    h.expect("a.test", LifecycleEvent::Ready);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Ready);
    first_pid(&pids);
    assert_eq!(pids_in(&pids).len(), 1, "exactly one process");
}

#[test]
fn an_exit_while_starting_fails_the_start_at_once() {
    let mut config = local_config(free_port(), "sh", &["-c", "exit 3"]);
    // Probing is far slower than the exit: the failure must come from SIGCHLD.
    config.timings.health_check_interval = Duration::from_secs(20);
    let h = Harness::new(vec![named("a.test", config)]);
    let asked = Instant::now();
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    let why = "exited before becoming ready, with status 3".to_string();
    h.expect("a.test", LifecycleEvent::StartFailed(why));
    assert!(asked.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_backend_that_never_gets_healthy_is_killed_at_the_startup_timeout() {
    let pids = scratch_file("e2e-timeout");
    let mut config = recorded(free_port(), &pids, "exec sleep 30");
    config.timings.startup_timeout = Duration::from_millis(300);
    let h = Harness::new(vec![named("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    let why = "did not become healthy within 300ms".to_string();
    h.expect("a.test", LifecycleEvent::StartFailed(why));
    assert_gone(first_pid(&pids));
}

#[test]
fn failing_health_checks_restart_the_backend() {
    let port = free_port();
    let mut config = local_config(port, "sleep", &["30"]);
    config.timings.ready_health_check_interval = Duration::from_millis(30);
    config.timings.unhealthy_threshold = 2;
    config.timings.shutdown_grace_period = Duration::from_millis(500);
    let h = Harness::new(vec![named("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    let status = health_server(port);
    h.expect("a.test", LifecycleEvent::Ready);
    status.store(503, Ordering::SeqCst);
    h.expect("a.test", LifecycleEvent::Unhealthy);
    h.expect("a.test", LifecycleEvent::Stopping(StopReason::Restart));
    h.expect("a.test", LifecycleEvent::Stopped);
    // The health server still holds the port: the restart must refuse to start a second program there.
    h.expect("a.test", LifecycleEvent::Starting);
    let why = format!("port {port} is already in use by another program");
    h.expect("a.test", LifecycleEvent::StartFailed(why));
}

#[test]
fn an_exit_while_ready_is_reported_as_stopped() {
    let pids = scratch_file("e2e-crash");
    let config = recorded(free_port(), &pids, "exec sleep 30");
    let h = Harness::new(vec![named("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    h.ready("a.test");
    h.expect("a.test", LifecycleEvent::Ready);
    let pid = first_pid(&pids);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    h.expect("a.test", LifecycleEvent::Stopped);
    assert!(gone(pid));
}

#[test]
fn shutdown_stops_everything_even_a_backend_ignoring_sigterm() {
    let (plain_pids, stubborn_pids) = (
        scratch_file("e2e-shut-plain"),
        scratch_file("e2e-shut-stubborn"),
    );
    let plain = recorded(free_port(), &plain_pids, "exec sleep 30");
    let mut stubborn = recorded(free_port(), &stubborn_pids, "trap '' TERM; sleep 30");
    stubborn.timings.shutdown_grace_period = Duration::from_millis(200);
    let mut h = Harness::new(vec![
        named("plain.test", plain),
        named("stubborn.test", stubborn),
    ]);
    for host in ["plain.test", "stubborn.test"] {
        h.start(host);
        h.expect(host, LifecycleEvent::Starting);
        h.ready(host);
        h.expect(host, LifecycleEvent::Ready);
    }
    let pids = [first_pid(&plain_pids), first_pid(&stubborn_pids)];
    h.send(Command::Shutdown);
    let mut seen = Vec::new();
    loop {
        match h.next() {
            ReactorMsg::ShutdownComplete => break,
            ReactorMsg::Backend(BackendEvent { host, event, .. }) => {
                seen.push((host.to_string(), event))
            }
            ReactorMsg::SlotFreed(_) | ReactorMsg::H2Ack(_) | ReactorMsg::TokenSpent { .. } => {
                panic!("only the h2 worker sends that")
            }
            #[cfg(feature = "acme")]
            ReactorMsg::Acme(_) => panic!("only the ACME thread sends that"),
        }
    }
    for host in ["plain.test", "stubborn.test"] {
        let events: Vec<_> = seen
            .iter()
            .filter(|(h, _)| h == host)
            .map(|(_, e)| e.clone())
            .collect();
        assert_eq!(
            events,
            vec![
                LifecycleEvent::Stopping(StopReason::Shutdown),
                LifecycleEvent::Stopped
            ]
        );
    }
    h.join();
    for pid in pids {
        assert!(gone(pid));
    }
}

#[test]
fn a_start_during_an_idle_stop_starts_it_again_afterwards() {
    let pids = scratch_file("e2e-restart");
    let mut config = recorded(free_port(), &pids, "trap '' TERM; sleep 30");
    config.timings.idle_timeout = Duration::from_millis(100);
    config.timings.shutdown_grace_period = Duration::from_millis(300);
    let h = Harness::new(vec![named("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    h.ready("a.test");
    h.expect("a.test", LifecycleEvent::Ready);
    h.expect("a.test", LifecycleEvent::Stopping(StopReason::Idle));
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Stopped);
    h.expect("a.test", LifecycleEvent::Starting);
    assert!(wait_for(EVENT_WAIT, || (pids_in(&pids).len() == 2).then_some(())).is_some());
}

#[test]
fn every_backend_is_killed_when_the_reactor_goes_away() {
    let pids = scratch_file("e2e-orphan");
    let config = recorded(free_port(), &pids, "trap '' TERM; sleep 30");
    let mut h = Harness::new(vec![named("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    let pid = first_pid(&pids);
    h.events = None;
    // The supervisor learns the reactor is gone on its next report.
    h.ready("a.test");
    h.join();
    assert!(gone(pid));
}
