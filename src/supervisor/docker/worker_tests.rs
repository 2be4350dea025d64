//! The start sequence's decisions against a scripted daemon: what it asks, in which order, and what it
//! reports for each answer.

use std::sync::mpsc::Receiver;
use std::sync::Arc;

use mio::{Poll, Waker};

use super::*;
use crate::supervisor::docker::fake_daemon::{Answer, FakeDaemon, Request};
use crate::supervisor::docker::owner::{INSTANCE_LABEL, MACHINE_LABEL, MANAGED_LABEL};

struct Run {
    events: Receiver<DriverEvent>,
    _poll: Poll,
}

fn spec(daemon: &FakeDaemon, policy: PullPolicy) -> DockerSpec {
    DockerSpec {
        image: "app:1".into(),
        container_name: "spawngate-app".into(),
        pull_policy: policy,
        memory: None,
        nano_cpus: None,
        network: None,
        docker_host: Some(daemon.endpoint().to_string()),
        args: Vec::new(),
    }
}

fn owner() -> Owner {
    Owner {
        instance: "1-1".into(),
        machine: "box/1".into(),
    }
}

/// Runs the worker to its end on this thread.
fn run_job(spec: DockerSpec, cancel: bool) -> Run {
    let poll = Poll::new().unwrap();
    let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (tx, events) = mpsc::channel();
    let job = StartJob {
        hostname: "app.localhost".into(),
        name: spec.container_name.clone(),
        spec,
        port: 3000,
        publish: Some(SocketAddr::from(([127, 0, 0, 1], 3000))),
        env: vec![("PORT".into(), "3000".into())],
        owner: owner(),
        session: None,
        pull_timeout: Duration::from_secs(5),
        cancel: Arc::new(AtomicBool::new(cancel)),
        report: Reporter {
            mailbox: Mailbox::new(tx, waker),
            key: InstanceKey::new(3, 1),
            serial: 9,
        },
        output: crate::supervisor::output::OutputSink::inherit(
            "app.localhost",
            crate::supervisor::output::CONTAINER_TARGET,
        ),
    };
    run(job);
    Run {
        events,
        _poll: poll,
    }
}

impl Run {
    fn next(&self) -> ContainerEvent {
        let event = self.events.try_recv().expect("a report");
        assert_eq!((event.key, event.serial), (InstanceKey::new(3, 1), 9));
        event.event
    }

    fn failure(&self) -> String {
        match self.next() {
            ContainerEvent::StartFailed(why) => why,
            other => panic!("expected a failed start, got {other:?}"),
        }
    }
}

/// A daemon where everything works; `special` answers first where it wants to.
fn daemon(
    name: &str,
    special: impl Fn(&Request) -> Option<Answer> + Send + Sync + 'static,
) -> FakeDaemon {
    FakeDaemon::start(name, move |r| {
        if let Some(answer) = special(r) {
            return answer;
        }
        match (r.method.as_str(), r.target.as_str()) {
            (_, "/_ping") => Answer::ping("1.41"),
            ("GET", "/v1.41/images/app%3A1/json") => Answer::json(200, "{}"),
            ("POST", "/v1.41/containers/create?name=spawngate-app") => {
                Answer::json(201, r#"{"Id":"c1","Warnings":[]}"#)
            }
            ("POST", "/v1.41/containers/c1/start") => Answer::empty(204),
            ("POST", "/v1.41/containers/c1/wait?condition=not-running") => {
                Answer::json(200, r#"{"StatusCode":3}"#)
            }
            ("GET", t) if t.starts_with("/v1.41/containers/c1/logs") => {
                let mut frames = vec![2, 0, 0, 0, 0, 0, 0, 10];
                frames.extend_from_slice(b"bad config");
                Answer {
                    status: 200,
                    headers: Vec::new(),
                    body: frames,
                }
            }
            ("DELETE", _) => Answer::empty(204),
            _ => Answer::json(500, r#"{"message":"unexpected call"}"#),
        }
    })
}

#[test]
fn a_container_that_exits_is_removed_and_reported_with_its_output() {
    let daemon = daemon("worker-exit", |_| None);
    let run = run_job(spec(&daemon, PullPolicy::IfNotPresent), false);
    let ContainerEvent::Running { id, .. } = run.next() else {
        panic!("expected Running first");
    };
    assert_eq!(id, "c1");
    let ContainerEvent::Exited { how, last_output } = run.next() else {
        panic!("expected Exited");
    };
    assert_eq!(how, "status 3");
    assert_eq!(last_output.as_deref(), Some(r#""bad config""#));
    let calls = daemon.calls();
    assert_eq!(
        calls.first().map(String::as_str),
        Some("GET /v1.41/images/app%3A1/json")
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("DELETE /v1.41/containers/c1?force=1&v=1")
    );
    let create = daemon
        .requests()
        .into_iter()
        .find(|r| r.target.contains("/containers/create"))
        .unwrap();
    let body = Json::parse(create.body.as_bytes()).unwrap();
    assert_eq!(
        body.path(&["Labels", MANAGED_LABEL]).and_then(Json::as_str),
        Some("true")
    );
    assert_eq!(
        body.path(&["Labels", INSTANCE_LABEL])
            .and_then(Json::as_str),
        Some("1-1")
    );
}

#[test]
fn never_pulling_a_missing_image_fails_clearly() {
    let daemon = daemon("worker-never", |r| {
        r.target
            .contains("/images/")
            .then(|| Answer::json(404, r#"{"message":"No such image: app:1"}"#))
    });
    let why = run_job(spec(&daemon, PullPolicy::Never), false).failure();
    assert_eq!(
        why,
        "image app:1 is not present locally and pull_policy is \"never\" (build or pull it first, \
         or allow pulling)"
    );
    assert_eq!(daemon.calls(), vec!["GET /v1.41/images/app%3A1/json"]);
}

#[test]
fn a_failed_pull_names_the_registry_error() {
    let daemon = daemon("worker-pull", |r| {
        if r.target.contains("/images/app") {
            return Some(Answer::json(404, r#"{"message":"No such image"}"#));
        }
        r.target.contains("/images/create").then(|| {
            Answer::json(
                200,
                "{\"error\":\"Get https://registry-1.docker.io/v2/: dial tcp: no such host\"}\n",
            )
        })
    });
    let why = run_job(spec(&daemon, PullPolicy::IfNotPresent), false).failure();
    assert_eq!(
        why,
        "cannot pull image app:1 from its registry: Get https://registry-1.docker.io/v2/: dial tcp: no such host"
    );
    assert!(daemon.calls().iter().all(|c| !c.contains("/containers/")));
}

fn conflict_then(labels: &'static str) -> impl Fn(&Request) -> Option<Answer> + Send + Sync {
    let created = std::sync::atomic::AtomicBool::new(false);
    move |r| match (r.method.as_str(), r.target.as_str()) {
        ("POST", "/v1.41/containers/create?name=spawngate-app")
            if !created.swap(true, Ordering::SeqCst) =>
        {
            Some(Answer::json(
                409,
                r#"{"message":"Conflict. The container name \"/spawngate-app\" is already in use"}"#,
            ))
        }
        ("GET", "/v1.41/containers/spawngate-app/json") => Some(Answer::json(
            200,
            &format!(r#"{{"Id":"old","Config":{{"Labels":{labels}}}}}"#),
        )),
        _ => None,
    }
}

#[test]
fn a_name_held_by_a_stranger_is_left_alone() {
    let daemon = daemon("worker-stranger", conflict_then(r#"{"maintainer":"me"}"#));
    let why = run_job(spec(&daemon, PullPolicy::Never), false).failure();
    assert!(
        why.starts_with(
            "a container named spawngate-app already exists and was not created by spawngate"
        ),
        "{why}"
    );
    assert!(
        daemon.calls().iter().all(|c| !c.starts_with("DELETE")),
        "{:?}",
        daemon.calls()
    );
}

#[test]
fn a_name_held_by_a_dead_spawngate_is_taken_back() {
    let labels = format!(
        r#"{{"{MANAGED_LABEL}":"true","{MACHINE_LABEL}":"box/1","{INSTANCE_LABEL}":"999999999-1"}}"#
    );
    let labels: &'static str = Box::leak(labels.into_boxed_str());
    let daemon = daemon("worker-orphan", conflict_then(labels));
    let run = run_job(spec(&daemon, PullPolicy::Never), false);
    assert!(matches!(run.next(), ContainerEvent::Running { .. }));
    let calls = daemon.calls();
    let removed = calls
        .iter()
        .position(|c| c == "DELETE /v1.41/containers/old?force=1&v=1");
    let created: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.contains("/containers/create"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(created.len(), 2, "{calls:?}");
    assert!(
        removed.is_some_and(|r| created[0] < r && r < created[1]),
        "{calls:?}"
    );
}

#[test]
fn a_start_refused_by_the_daemon_removes_the_container() {
    let daemon = daemon("worker-port", |r| {
        r.target.ends_with("/c1/start").then(|| {
            Answer::json(500, r#"{"message":"driver failed programming external connectivity: Bind for 127.0.0.1:3000 failed: port is already allocated"}"#)
        })
    });
    let why = run_job(spec(&daemon, PullPolicy::Never), false).failure();
    assert!(
        why.starts_with("cannot start container spawngate-app: driver failed"),
        "{why}"
    );
    assert!(why.contains("port is already allocated"), "{why}");
    assert_eq!(
        daemon.calls().last().map(String::as_str),
        Some("DELETE /v1.41/containers/c1?force=1&v=1")
    );
}

#[test]
fn a_cancelled_start_creates_nothing() {
    let daemon = daemon("worker-cancel", |_| None);
    let why = run_job(spec(&daemon, PullPolicy::Never), true).failure();
    assert_eq!(why, "stopped before the container was created");
    assert!(daemon.calls().iter().all(|c| !c.contains("/containers/")));
}

#[test]
fn exit_codes_name_their_signal() {
    assert_eq!(describe_code(0), "status 0");
    assert_eq!(describe_code(3), "status 3");
    assert_eq!(describe_code(137), "status 137 (signal SIGKILL)");
    assert_eq!(describe_code(143), "status 143 (signal SIGTERM)");
    assert_eq!(describe_code(255), "status 255");
    assert_eq!(describe_code(-1), "status -1");
    assert_eq!(describe_code(i64::MIN), format!("status {}", i64::MIN));
}
