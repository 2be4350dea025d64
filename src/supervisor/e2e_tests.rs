//! The supervisor thread driven through its public API, with real processes and real health endpoints.

use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio::{Poll, Waker};

use super::*;
use crate::config::BackendConfig;
use crate::msg::{BackendEvent, Host, LifecycleEvent, StopReason};
use crate::supervisor::test_support::{
    assert_gone, first_pid, free_port, gone, health_server, local_config, pids_in, recorded,
    scratch_file, wait_for,
};

/// Longest wait for any one event; generous for a loaded machine, far below the test's own timeouts.
const EVENT_WAIT: Duration = Duration::from_secs(5);

pub(super) struct Harness {
    handle: Option<SupervisorHandle>,
    events: Option<mpsc::Receiver<ReactorMsg>>,
    /// The waker in the reactor mailbox needs its poll alive.
    _poll: Poll,
}

impl Harness {
    pub(super) fn new(entries: Vec<BackendEntry>) -> Harness {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx) = mpsc::channel();
        let handle = spawn(
            entries,
            Mailbox::new(tx, waker),
            Clock::new(),
            "http://127.0.0.1:9999/".to_string(),
        )
        .unwrap();
        Harness {
            handle: Some(handle),
            events: Some(rx),
            _poll: poll,
        }
    }

    pub(super) fn send(&self, command: Command) {
        assert!(self.handle.as_ref().unwrap().mailbox.send(command));
    }

    pub(super) fn start(&self, host: &str) {
        self.send(Command::Start(Host::from(host)));
    }

    pub(super) fn next(&self) -> ReactorMsg {
        let events = self.events.as_ref().unwrap();
        events
            .recv_timeout(EVENT_WAIT)
            .expect("the supervisor should have reported something")
    }

    pub(super) fn expect(&self, host: &str, event: LifecycleEvent) {
        match self.next() {
            ReactorMsg::Backend(BackendEvent {
                host: h, event: e, ..
            }) => {
                assert_eq!((&*h, &e), (host, &event));
            }
            other => panic!("expected {host} {event:?}, got {other:?}"),
        }
    }

    fn quiet_for(&self, time: Duration) {
        if let Ok(msg) = self.events.as_ref().unwrap().recv_timeout(time) {
            panic!("expected silence, got {msg:?}");
        }
    }

    fn join(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.thread.join().unwrap();
        }
    }
}

impl Drop for Harness {
    /// Whatever a test left running is killed: with the reactor's end gone, the supervisor's next report
    /// fails and it kills every backend before exiting.
    fn drop(&mut self) {
        self.events = None;
        if let Some(handle) = self.handle.take() {
            handle.mailbox.send(Command::Shutdown);
            let _ = handle.thread.join();
        }
    }
}

pub(super) fn entry(host: &str, config: BackendConfig) -> BackendEntry {
    let mut config = config;
    config.hostname = host.to_string();
    BackendEntry::new(Arc::new(config))
}

#[test]
fn probes_until_the_backend_answers_then_stops_it_when_idle() {
    let port = free_port();
    let pids = scratch_file("e2e-idle");
    let mut config = recorded(port, &pids, "exec sleep 30");
    config.timings.idle_timeout = Duration::from_millis(300);
    let h = Harness::new(vec![entry("a.test", config)]);
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
    let h = Harness::new(vec![entry("a.test", config)]);
    for _ in 0..3 {
        h.start("a.test");
    }
    h.expect("a.test", LifecycleEvent::Starting);
    h.send(Command::ReadyCallback(Host::from("a.test")));
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
    let h = Harness::new(vec![entry("a.test", config)]);
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
    let h = Harness::new(vec![entry("a.test", config)]);
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
    let h = Harness::new(vec![entry("a.test", config)]);
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
    let h = Harness::new(vec![entry("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    h.send(Command::ReadyCallback(Host::from("a.test")));
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
        entry("plain.test", plain),
        entry("stubborn.test", stubborn),
    ]);
    for host in ["plain.test", "stubborn.test"] {
        h.start(host);
        h.expect(host, LifecycleEvent::Starting);
        h.send(Command::ReadyCallback(Host::from(host)));
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
    let h = Harness::new(vec![entry("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    h.send(Command::ReadyCallback(Host::from("a.test")));
    h.expect("a.test", LifecycleEvent::Ready);
    h.expect("a.test", LifecycleEvent::Stopping(StopReason::Idle));
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Stopped);
    h.expect("a.test", LifecycleEvent::Starting);
    assert!(wait_for(EVENT_WAIT, || (pids_in(&pids).len() == 2).then_some(())).is_some());
}

#[test]
fn reload_adds_removes_and_leaves_running_backends_alone() {
    let pids = scratch_file("e2e-reload");
    let kept = entry("kept.test", recorded(free_port(), &pids, "exec sleep 30"));
    let dropped = entry("dropped.test", local_config(free_port(), "sleep", &["30"]));
    let h = Harness::new(vec![kept.clone(), dropped]);
    h.start("kept.test");
    h.expect("kept.test", LifecycleEvent::Starting);
    h.send(Command::ReadyCallback(Host::from("kept.test")));
    h.expect("kept.test", LifecycleEvent::Ready);
    first_pid(&pids);

    let mut changed = (*kept.config).clone();
    changed.timings.idle_timeout = Duration::from_secs(600);
    let kept_changed = BackendEntry {
        config: Arc::new(changed),
        activity: kept.activity.clone(),
    };
    let added = entry("added.test", local_config(free_port(), "sleep", &["30"]));
    h.send(Command::Reload(vec![kept_changed, added]));
    h.start("dropped.test");
    h.start("added.test");
    h.expect("added.test", LifecycleEvent::Starting);
    h.start("kept.test");
    h.expect("kept.test", LifecycleEvent::Ready);
    assert_eq!(pids_in(&pids).len(), 1, "a changed backend keeps running");

    h.send(Command::Reload(Vec::new()));
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
    h.start("kept.test");
    h.quiet_for(Duration::from_millis(100));
}

#[test]
fn every_backend_is_killed_when_the_reactor_goes_away() {
    let pids = scratch_file("e2e-orphan");
    let config = recorded(free_port(), &pids, "trap '' TERM; sleep 30");
    let mut h = Harness::new(vec![entry("a.test", config)]);
    h.start("a.test");
    h.expect("a.test", LifecycleEvent::Starting);
    let pid = first_pid(&pids);
    h.events = None;
    // The supervisor learns the reactor is gone on its next report.
    h.send(Command::ReadyCallback(Host::from("a.test")));
    h.join();
    assert!(gone(pid));
}
