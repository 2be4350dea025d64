use std::io::Read;
use std::os::unix::net::UnixListener;

use super::*;
use crate::supervisor::docker::fake_daemon::{Answer, FakeDaemon};
use crate::supervisor::test_support::scratch_file;

#[test]
fn the_version_comes_from_the_ping_and_is_capped() {
    let old = FakeDaemon::start("client-ping-old", |_| Answer::ping("1.41"));
    let docker = Docker::connect(old.endpoint()).unwrap();
    assert_eq!(docker.version(), ApiVersion(1, 41));

    let new = FakeDaemon::start("client-ping-new", |_| Answer::ping("1.52"));
    let docker = Docker::connect(new.endpoint()).unwrap();
    assert_eq!(docker.version(), MAX_API);
}

#[test]
fn without_the_header_the_version_comes_from_slash_version() {
    let daemon = FakeDaemon::start("client-version", |r| match r.target.as_str() {
        "/_ping" => Answer::empty(200),
        "/version" => Answer::json(200, r#"{"ApiVersion":"1.40","Version":"19.03"}"#),
        _ => Answer::empty(404),
    });
    let docker = Docker::connect(daemon.endpoint()).unwrap();
    assert_eq!(docker.version(), ApiVersion(1, 40));
}

#[test]
fn a_too_old_daemon_is_refused_with_the_versions() {
    let daemon = FakeDaemon::start("client-too-old", |_| Answer::ping("1.24"));
    let why = Docker::connect(daemon.endpoint()).unwrap_err().to_string();
    assert!(why.contains("API 1.24") && why.contains("1.30"), "{why}");
}

#[test]
fn calls_are_versioned_and_errors_carry_dockers_message() {
    let daemon = FakeDaemon::start("client-errors", |r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        "/v1.41/containers/x/json" => Answer::json(200, r#"{"Id":"abc"}"#),
        "/v1.41/containers/missing/json" => {
            Answer::json(404, r#"{"message":"No such container: missing"}"#)
        }
        _ => Answer::json(500, "not json at all"),
    });
    let docker = Docker::connect(daemon.endpoint()).unwrap();
    let reply = docker
        .call(Method::Get, "/containers/x/json", None, None)
        .unwrap();
    assert_eq!(reply.json().unwrap().str_at("Id"), Some("abc"));

    let error = docker
        .call(Method::Get, "/containers/missing/json", None, None)
        .unwrap_err();
    assert_eq!(error.status(), Some(404));
    assert_eq!(error.to_string(), "No such container: missing (HTTP 404)");

    let error = docker
        .call(Method::Post, "/other", Some("{}"), None)
        .unwrap_err();
    assert_eq!(error.to_string(), "not json at all (HTTP 500)");
    let last = daemon.requests().pop().unwrap();
    assert_eq!((last.method.as_str(), last.body.as_str()), ("POST", "{}"));
}

#[test]
fn a_missing_socket_says_so_at_once() {
    let path = scratch_file("client-no-such.sock");
    let started = std::time::Instant::now();
    let error = Docker::connect(Endpoint::Unix(path.clone())).unwrap_err();
    assert!(matches!(error, DockerError::Unreachable(_)), "{error:?}");
    let why = error.to_string();
    assert!(why.contains(&path.display().to_string()), "{why}");
    assert!(why.contains("does not exist (is Docker running?)"), "{why}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_socket_nobody_listens_on_is_refused() {
    let path = scratch_file("client-dead.sock");
    drop(UnixListener::bind(&path).unwrap());
    let why = Docker::connect(Endpoint::Unix(path.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        why.contains("connection refused (is Docker running?)"),
        "{why}"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_silent_daemon_times_out_instead_of_hanging() {
    let path = scratch_file("client-silent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn); // accepted, never answered
        }
    });
    let docker = Docker {
        agent: Agent::with_parts(
            Agent::config_builder().http_status_as_error(false).build(),
            UnixConnector::new(path.clone()),
            SocketResolver,
        ),
        endpoint: Endpoint::Unix(path.clone()),
        base: "http://docker".into(),
        version: ApiVersion(1, 41),
    };
    let timeout = Some(Duration::from_millis(200));
    let error = docker
        .call(Method::Get, "/info", None, timeout)
        .unwrap_err();
    assert!(matches!(error, DockerError::Timeout(_)), "{error:?}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn streams_are_read_as_they_come() {
    let daemon = FakeDaemon::start("client-stream", |r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        "/v1.41/stream" => Answer::json(200, "line one\nline two\n"),
        _ => Answer::json(409, r#"{"message":"is not running"}"#),
    });
    let docker = Docker::connect(daemon.endpoint()).unwrap();
    let mut text = String::new();
    docker
        .stream(Method::Get, "/stream", None)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "line one\nline two\n");
    let Err(error) = docker.stream(Method::Post, "/nope", None) else {
        panic!("a 409 must be an error");
    };
    assert_eq!(error.to_string(), "is not running (HTTP 409)");
}

#[test]
fn error_messages_are_clipped() {
    let long = format!(r#"{{"message":"{}"}}"#, "x".repeat(5000));
    let message = error_message(500, long.as_bytes());
    assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
    assert!(message.ends_with('…'));
    assert_eq!(
        error_message(502, b""),
        "the Docker daemon answered 502 with no message"
    );
}

#[test]
fn a_tcp_daemon_is_spoken_to_the_same_way() {
    let daemon = FakeDaemon::start_tcp(|r| match r.target.as_str() {
        "/_ping" => Answer::ping("1.41"),
        "/v1.41/containers/x/json" => Answer::json(200, r#"{"Id":"abc"}"#),
        _ => Answer::json(404, r#"{"message":"nope"}"#),
    });
    let Endpoint::Tcp(addr) = daemon.endpoint() else {
        panic!("not a tcp endpoint");
    };
    let endpoint = Endpoint::parse(&format!("tcp://{addr}")).unwrap();
    let docker = Docker::connect(endpoint).unwrap();
    let reply = docker
        .call(Method::Get, "/containers/x/json", None, None)
        .unwrap();
    assert_eq!(reply.json().unwrap().str_at("Id"), Some("abc"));
}

#[test]
fn a_stream_outlives_the_agents_call_timeout() {
    let daemon = FakeDaemon::start("client-long-stream", |r| {
        if r.target != "/_ping" {
            // Slower than the agent's own limit below.
            std::thread::sleep(Duration::from_millis(600));
        }
        Answer::json(200, r#"{"StatusCode":0}"#)
    });
    let Endpoint::Unix(path) = daemon.endpoint() else {
        panic!("not a socket");
    };
    let short = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_millis(200)))
        .build();
    let docker = Docker {
        agent: Agent::with_parts(short, UnixConnector::new(path.clone()), SocketResolver),
        endpoint: Endpoint::Unix(path),
        base: "http://docker".into(),
        version: ApiVersion(1, 41),
    };
    let error = docker.call(Method::Get, "/info", None, Some(Duration::from_millis(200)));
    assert!(matches!(error, Err(DockerError::Timeout(_))), "{error:?}");
    let mut body = String::new();
    docker
        .stream(Method::Post, "/containers/c/wait", None)
        .expect("no time limit on a stream")
        .read_to_string(&mut body)
        .unwrap();
    assert_eq!(body, r#"{"StatusCode":0}"#);
}
