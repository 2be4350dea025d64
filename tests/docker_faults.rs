//! Docker backends when something is wrong: each fault is a prompt 503 BACKEND_START_FAILED whose message
//! says what, and nothing is left behind. Also the ready callback from inside a container.

#[path = "support/docker.rs"]
mod docker;
mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use docker::*;
use support::*;

const HOST: &str = "dock.test";
/// A fault must be reported this fast (the daemon answers at once; nothing waits for a timeout).
const PROMPT: Duration = Duration::from_secs(3);

/// Requests `HOST` and expects the start failure; returns its message.
fn start_failure(proxy: &Proxy) -> String {
    let asked = Instant::now();
    let response = get(proxy.addr(), HOST, "/");
    assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
    assert!(
        asked.elapsed() < PROMPT,
        "the failure took {:?}",
        asked.elapsed()
    );
    let message = response.json()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        proxy.wait_for_log(&format!("{HOST}: start failed:"), Duration::from_secs(5)),
        "the failure is not in the log"
    );
    message
}

#[test]
fn a_missing_daemon_is_named_at_once() {
    // Needs no daemon: the socket does not exist.
    let socket =
        std::env::temp_dir().join(format!("spawngate-no-daemon-{}.sock", std::process::id()));
    let config = format!(
        "[backends.\"{HOST}\"]\ntype = \"docker\"\nimage = \"app:1\"\nport = {}\n\
         docker_host = {}\n",
        free_port(),
        toml_str(&format!("unix://{}", socket.display()))
    );
    let proxy = Proxy::start(&config);
    let message = start_failure(&proxy);
    assert!(
        message.contains("cannot reach the Docker daemon"),
        "{message}"
    );
    assert!(message.contains(&socket.display().to_string()), "{message}");
    assert!(message.contains("is Docker running?"), "{message}");
}

#[test]
fn a_missing_image_with_pull_policy_never_fails_clearly() {
    if !docker_available("a_missing_image_with_pull_policy_never") {
        return;
    }
    let container = TestContainer::new("noimage");
    let image = format!("spawngate-test-missing:{}", std::process::id());
    let config = docker_backend(HOST, &image, &container.name, free_port(), "", &[]);
    let proxy = Proxy::start(&config);
    let message = start_failure(&proxy);
    assert!(
        message.contains(&format!(
            "image {image} is not present locally and pull_policy is \"never\""
        )),
        "{message}"
    );
    assert!(container_gone(&container.name));
}

#[test]
fn a_container_that_exits_at_once_reports_its_code_and_output() {
    if !docker_available("a_container_that_exits_at_once") {
        return;
    }
    let container = TestContainer::new("exits");
    let env = [("ECHO_EXIT_AT_START", "3")];
    let config = docker_backend(HOST, echo_image(), &container.name, free_port(), "", &env);
    let proxy = Proxy::start(&config);
    let message = start_failure(&proxy);
    assert!(
        message.contains("exited before becoming ready, with status 3"),
        "{message}"
    );
    assert!(
        message.contains("spawngate-echo: exiting at start with status 3, as asked"),
        "the last output is part of the message: {message}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || container_gone(&container.name)),
        "the failed container was left behind"
    );
    assert_eq!(proxy.state_of(HOST), "stopped");
}

#[test]
fn a_name_taken_by_a_stranger_fails_and_the_stranger_stays() {
    if !docker_available("a_name_taken_by_a_stranger") {
        return;
    }
    let container = TestContainer::new("stranger");
    let body = format!(
        r#"{{"Image":{:?},"Labels":{{"owner":"someone else"}}}}"#,
        echo_image()
    );
    let created = call(
        "POST",
        &format!("/containers/create?name={}", container.name),
        Some(("application/json", body.as_bytes())),
    )
    .expect("create the stranger");
    assert_eq!(created.status, 201, "{}", created.text());
    let stranger = created.json()["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let config = docker_backend(HOST, echo_image(), &container.name, free_port(), "", &[]);
    let proxy = Proxy::start(&config);
    let message = start_failure(&proxy);
    assert!(
        message.contains(&format!(
            "a container named {} already exists and was not created by spawngate",
            container.name
        )),
        "{message}"
    );
    let info = inspect(&container.name).expect("the stranger is still there");
    assert_eq!(info["Id"], stranger.as_str());
}

#[test]
fn a_port_already_taken_fails_before_docker_is_asked() {
    if !docker_available("a_port_already_taken") {
        return;
    }
    let container = TestContainer::new("port");
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = squatter.local_addr().unwrap().port();
    let config = docker_backend(HOST, echo_image(), &container.name, port, "", &[]);
    let proxy = Proxy::start(&config);
    let message = start_failure(&proxy);
    assert!(
        message.contains(&format!("port {port} is already in use")),
        "{message}"
    );
    assert!(container_gone(&container.name));
}

#[test]
fn a_container_can_announce_itself_through_the_ready_callback() {
    if !docker_available("a_container_can_announce_itself") {
        return;
    }
    let container = TestContainer::new("callback");
    // The callback comes from the container's network, so the admin listener must accept it there; off
    // loopback the admin API needs a token, which the callback (a backend cannot know it) does without.
    let dir = TempDir::new("callback-token");
    let token = dir.file("admin-token");
    std::fs::write(&token, "a-token-of-at-least-16-bytes\n").unwrap();
    let server = format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\nadmin_bind = \"0.0.0.0\"\n\
         admin_token_file = \"{}\"\n\n",
        token.display()
    );
    // /health never answers 2xx: only the callback can make it ready.
    let env = [("ECHO_READY_CALLBACK", "1")];
    let backend = docker_backend(HOST, echo_image(), &container.name, free_port(), "", &env);
    let proxy = Proxy::start(&format!("{server}{backend}"));
    let response = get(proxy.addr(), HOST, "/");
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(proxy.wait_for_log("ready callback answered 200", Duration::from_secs(10)));
}
