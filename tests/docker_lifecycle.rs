//! Docker backends against the real engine: cold start, requests, limits, the container's output in the
//! proxy's log, idle stop (container removed), restart, and leftovers of a SIGKILLed proxy.
//!
//! The image is built by the tests (`FROM scratch` plus the static echo backend); no registry is used.

#[path = "support/docker.rs"]
mod docker;
mod support;

use std::time::Duration;

use docker::*;
use support::*;

const HOST: &str = "dock.test";
/// Container starts and stops on a loaded 2-core machine take a few seconds; leave room.
const CONTAINER_WAIT: Duration = Duration::from_secs(30);

fn container_id(name: &str) -> Option<String> {
    inspect(name).and_then(|info| info["Id"].as_str().map(str::to_string))
}

#[test]
fn a_container_starts_on_demand_serves_stops_when_idle_and_starts_again() {
    if !docker_available("a_container_starts_on_demand") {
        return;
    }
    let container = TestContainer::new("lifecycle");
    let port = free_port();
    let keys = "idle_timeout_secs = 2\nmemory = \"64m\"\ncpus = \"0.5\"";
    let config = docker_backend(
        HOST,
        echo_image(),
        &container.name,
        port,
        keys,
        &[("ECHO_LOG", "1")],
    );
    let proxy = Proxy::start(&config);
    assert!(
        container_gone(&container.name),
        "nothing runs before the first request"
    );

    let first = get(proxy.addr(), HOST, "/hello");
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json()["path"], "/hello");
    assert_eq!(proxy.state_of(HOST), "ready");

    let info = inspect(&container.name).expect("the container exists while ready");
    let first_id = info["Id"].as_str().unwrap_or_default().to_string();
    assert_eq!(info["State"]["Running"], true);
    assert_eq!(info["HostConfig"]["Memory"], 64 << 20);
    assert_eq!(info["HostConfig"]["NanoCpus"], 500_000_000);
    let labels = &info["Config"]["Labels"];
    assert_eq!(labels["spawngate.managed"], "true");
    assert_eq!(labels["spawngate.host"], HOST);
    assert!(labels["spawngate.instance"]
        .as_str()
        .is_some_and(|i| i.starts_with(&format!("{}-", proxy.pid()))));
    let env: Vec<&str> = info["Config"]["Env"]
        .as_array()
        .map(|vars| vars.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    assert!(env.contains(&format!("PORT={port}").as_str()), "{env:?}");
    assert!(
        env.iter().any(|v| v
            .starts_with("SERVERLESS_PROXY_READY_URL=http://host.docker.internal:")
            && v.ends_with(&format!("/ready/{HOST}"))),
        "{env:?}"
    );
    let binding = &info["HostConfig"]["PortBindings"][format!("{port}/tcp")][0];
    assert_eq!(binding["HostIp"], "127.0.0.1");
    assert_eq!(binding["HostPort"], port.to_string());

    // Both streams reach the proxy's log, tagged with the backend and the stream.
    assert!(
        proxy.wait_for_log(
            &format!(
                "hostname={HOST} stream=stderr: spawngate-echo: pid 1 listening on 0.0.0.0:{port}"
            ),
            CONTAINER_WAIT
        ),
        "the container's stderr is not in the proxy's log"
    );
    assert!(
        proxy.wait_for_log(&format!("hostname={HOST} stream=stdout: "), CONTAINER_WAIT),
        "the container's stdout is not in the proxy's log"
    );
    let lines = proxy.log_lines();
    let stderr_line = lines
        .iter()
        .find(|l| l.contains(&format!("hostname={HOST} stream=stderr:")))
        .unwrap();
    assert!(
        stderr_line.contains("WARN"),
        "stderr is logged at WARN: {stderr_line}"
    );
    let stdout_line = lines
        .iter()
        .find(|l| l.contains(&format!("hostname={HOST} stream=stdout:")))
        .unwrap();
    assert!(
        stdout_line.contains("INFO"),
        "stdout is logged at INFO: {stdout_line}"
    );

    // ...and are kept for the admin API, as a process's are.
    let kept = proxy.admin_get(&format!("/backends/{HOST}/logs")).text();
    assert!(
        kept.lines().any(|l| l.ends_with(&format!(
            " stderr: spawngate-echo: pid 1 listening on 0.0.0.0:{port}"
        ))),
        "{kept}"
    );

    proxy.wait_for_state(HOST, "stopped", CONTAINER_WAIT);
    assert!(
        wait_until(CONTAINER_WAIT, || container_gone(&first_id)),
        "the idle container was not removed"
    );

    let second = get(proxy.addr(), HOST, "/again");
    assert_eq!(second.status, 200, "{}", second.text());
    let second_id = container_id(&container.name).expect("a new container serves");
    assert_ne!(second_id, first_id);
}

#[test]
fn leftovers_of_a_killed_proxy_are_removed_by_the_next_one() {
    if !docker_available("leftovers_of_a_killed_proxy") {
        return;
    }
    let container = TestContainer::new("leftover");
    let config = docker_backend(HOST, echo_image(), &container.name, free_port(), "", &[]);
    let mut first = Proxy::start(&config);
    assert_eq!(get(first.addr(), HOST, "/").status, 200);
    let id = container_id(&container.name).expect("the container runs");
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    assert!(
        inspect(&id).is_some_and(|info| info["State"]["Running"] == true),
        "a SIGKILLed proxy cannot stop its container"
    );

    let second = Proxy::start(&config);
    assert!(
        wait_until(CONTAINER_WAIT, || container_gone(&id)),
        "the next proxy did not remove the leftover container"
    );
    assert!(second.wait_for_log("removing leftover container", Duration::from_secs(5)));
    // And the backend still works under the new proxy.
    assert_eq!(get(second.addr(), HOST, "/").status, 200);
}

#[test]
fn shutdown_stops_and_removes_the_container() {
    if !docker_available("shutdown_stops_and_removes_the_container") {
        return;
    }
    let container = TestContainer::new("shutdown");
    let config = docker_backend(HOST, echo_image(), &container.name, free_port(), "", &[]);
    let mut proxy = Proxy::start(&config);
    assert_eq!(get(proxy.addr(), HOST, "/").status, 200);
    let id = container_id(&container.name).expect("the container runs");
    proxy.signal(Signal::SIGTERM);
    let status = proxy.wait_exit(CONTAINER_WAIT);
    assert!(status.success(), "{status:?}");
    assert!(
        container_gone(&id),
        "the proxy exited with its container left behind"
    );
}
