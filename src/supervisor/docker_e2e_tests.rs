//! The supervisor running container backends against a scripted daemon: the whole lifecycle, a daemon
//! that is missing, and one that is slow while another backend starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::docker::fake_daemon::{Answer, FakeDaemon, Request};
use super::harness::{named, Harness};
use super::test_support::{free_port, health_server, local_config, scratch_file};
use crate::config::{BackendConfig, BackendKind, DockerSpec, PullPolicy};
use crate::msg::{BackendEvent, Command, LifecycleEvent, ReactorMsg, StopReason};

/// Longest a scripted daemon call holds its answer back, so a failing test cannot hang.
const HOLD_LIMIT: Duration = Duration::from_secs(10);

fn container_config(port: u16, docker_host: String) -> BackendConfig {
    let mut config = local_config(port, "unused", &[]);
    config.kind = BackendKind::Docker(DockerSpec {
        image: "app:1".into(),
        container_name: "spawngate-app".into(),
        pull_policy: PullPolicy::Never,
        memory: None,
        nano_cpus: None,
        network: None,
        docker_host: Some(docker_host),
        args: Vec::new(),
    });
    config.timings.shutdown_grace_period = Duration::from_secs(2);
    config
}

/// A flag a handler thread can wait on.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    changed: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.changed.notify_all();
    }

    fn wait(&self) {
        let open = self.open.lock().unwrap();
        let _ = self
            .changed
            .wait_timeout_while(open, HOLD_LIMIT, |open| !*open);
    }
}

/// Runs like a container: healthy once started, ends when stopped.
fn container_daemon(name: &str, port: u16) -> FakeDaemon {
    let stopped = Arc::new(Gate::default());
    let started = AtomicBool::new(false);
    FakeDaemon::start(name, move |r: &Request| {
        match (r.method.as_str(), r.target.as_str()) {
            (_, "/_ping") => Answer::ping("1.41"),
            ("GET", "/v1.41/images/app%3A1/json") => Answer::json(200, "{}"),
            ("POST", "/v1.41/containers/create?name=spawngate-app") => {
                Answer::json(201, r#"{"Id":"c1"}"#)
            }
            ("POST", "/v1.41/containers/c1/start") => {
                if !started.swap(true, Ordering::SeqCst) {
                    health_server(port);
                }
                Answer::empty(204)
            }
            ("POST", "/v1.41/containers/c1/wait?condition=not-running") => {
                stopped.wait();
                Answer::json(200, r#"{"StatusCode":143}"#)
            }
            ("GET", t) if t.starts_with("/v1.41/containers/c1/logs") => {
                let mut frames = vec![1, 0, 0, 0, 0, 0, 0, 6];
                frames.extend_from_slice(b"hello\n");
                Answer {
                    status: 200,
                    headers: Vec::new(),
                    body: frames,
                }
            }
            ("POST", "/v1.41/containers/c1/stop?t=2") => {
                stopped.open();
                Answer::empty(204)
            }
            ("DELETE", "/v1.41/containers/c1?force=1&v=1") => Answer::empty(204),
            _ => Answer::json(500, r#"{"message":"unexpected call"}"#),
        }
    })
}

#[test]
fn a_container_backend_goes_through_the_whole_lifecycle() {
    let port = free_port();
    let daemon = container_daemon("e2e-container", port);
    let config = container_config(port, daemon.endpoint().to_string());
    let h = Harness::new(vec![named("c.test", config)]);
    h.start("c.test");
    h.expect("c.test", LifecycleEvent::Starting);
    h.expect("c.test", LifecycleEvent::Ready);
    h.send(Command::Shutdown);
    h.expect("c.test", LifecycleEvent::Stopping(StopReason::Shutdown));
    h.expect("c.test", LifecycleEvent::Stopped);
    assert!(matches!(h.next(), ReactorMsg::ShutdownComplete));
    let calls = daemon.calls();
    let stop = calls.iter().position(|c| c.ends_with("/c1/stop?t=2"));
    let remove = calls
        .iter()
        .position(|c| c.starts_with("DELETE /v1.41/containers/c1"));
    assert!(
        matches!((stop, remove), (Some(s), Some(r)) if s < r),
        "stopped, then removed: {calls:?}"
    );
}

#[test]
fn a_missing_daemon_fails_the_start_within_a_second() {
    let socket = scratch_file("e2e-no-daemon.sock");
    let config = container_config(free_port(), format!("unix://{}", socket.display()));
    let h = Harness::new(vec![named("c.test", config)]);
    let asked = Instant::now();
    h.start("c.test");
    h.expect("c.test", LifecycleEvent::Starting);
    match h.next() {
        ReactorMsg::Backend(BackendEvent {
            event: LifecycleEvent::StartFailed(why),
            ..
        }) => {
            assert!(why.contains("socket does not exist"), "{why}");
            assert!(why.contains(&socket.display().to_string()), "{why}");
        }
        other => panic!("expected a failed start, got {other:?}"),
    }
    assert!(asked.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_slow_daemon_does_not_hold_up_other_backends() {
    let release = Arc::new(Gate::default());
    let held = release.clone();
    let (entered_tx, entered) = mpsc::channel();
    let entered_tx = Mutex::new(entered_tx);
    let daemon = FakeDaemon::start("e2e-slow", move |r: &Request| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        t if t.starts_with("/v1.41/images/") => {
            let _ = entered_tx.lock().unwrap().send(());
            held.wait();
            Answer::json(500, r#"{"message":"too slow"}"#)
        }
        _ => Answer::json(500, r#"{"message":"unexpected call"}"#),
    });
    let slow = container_config(free_port(), daemon.endpoint().to_string());
    let fast = local_config(free_port(), "sleep", &["30"]);
    let h = Harness::new(vec![named("slow.test", slow), named("fast.test", fast)]);
    h.start("slow.test");
    h.expect("slow.test", LifecycleEvent::Starting);
    entered
        .recv_timeout(Duration::from_secs(5))
        .expect("the slow start reached the daemon");

    let asked = Instant::now();
    h.start("fast.test");
    h.expect("fast.test", LifecycleEvent::Starting);
    h.ready("fast.test");
    h.expect("fast.test", LifecycleEvent::Ready);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "the other backend waited for the daemon"
    );
    release.open();
    match h.next() {
        ReactorMsg::Backend(BackendEvent {
            event: LifecycleEvent::StartFailed(why),
            backend,
            host,
            ..
        }) => {
            assert_eq!((backend, &*host), (h.id("slow.test"), "slow.test"));
            assert_eq!(why, "cannot look up image app:1: too slow (HTTP 500)");
        }
        other => panic!("expected the slow start to fail, got {other:?}"),
    }
}
