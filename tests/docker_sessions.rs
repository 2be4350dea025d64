//! Docker session templates against the real engine: a session's container is named
//! `spawngate-{template}-{id}`, carries the session labels and env, publishes its container port on
//! 127.0.0.1:{allocated port}, is removed when the session ends, and a SIGKILLed proxy's session
//! container is removed when the next proxy starts.
//!
//! Template names carry the test process's pid, so runs on one daemon never share a container name.
//! Without a daemon the tests are skipped, except under `CI`, where they fail.

#[path = "support/docker.rs"]
mod docker;
mod support;

use std::time::Duration;

use docker::*;
use support::pools::free_ports;
use support::routing::{ask, Proto, PROTOCOLS};
use support::sessions::*;
use support::*;

/// Container starts and stops on a loaded 2-core machine take a few seconds; leave room.
const CONTAINER_WAIT: Duration = Duration::from_secs(30);
/// The port the echo listens on inside its container.
const CONTAINER_PORT: u16 = 8888;

fn template_name(label: &str) -> String {
    format!("{label}{}", std::process::id())
}

/// `[sessions.NAME]` running the test image, with `keys` added.
fn docker_template(name: &str, keys: &str) -> String {
    let base = free_ports(4);
    format!(
        "[sessions.{name}]\nhostname = \"{{id}}.{name}.test\"\npublic_url = \"http://{{hostname}}\"\n\
         host_ports = \"{base}-{}\"\ntype = \"docker\"\nimage = {}\npull_policy = \"never\"\n\
         port = {CONTAINER_PORT}\nshutdown_grace_period_secs = 1\n{keys}\n\
         [sessions.{name}.env]\nECHO_BIND = \"0.0.0.0\"\nROOM = \"{{key}}\"\n",
        base + 3,
        toml_str(echo_image())
    )
}

/// Removes a session's container (by its default name) when dropped, whatever the test did.
struct SessionContainer(String);

impl Drop for SessionContainer {
    fn drop(&mut self) {
        remove_container(&self.0);
    }
}

fn container_of(template: &str, s: &Session) -> SessionContainer {
    SessionContainer(format!("spawngate-{template}-{}", s.id))
}

fn served_both(proxy: &Proxy, s: &Session) {
    for proto in PROTOCOLS {
        let reply = ask(
            proxy.addr(),
            proto,
            "GET",
            &s.hostname,
            "/in-docker",
            &[s.token_header()],
        );
        assert_eq!(reply.status, 200, "{proto:?}: {}", reply.text());
        let session = reply.echoed_header("x-spawngate-session");
        assert_eq!(session.as_deref(), Some(s.id.as_str()), "{proto:?}");
    }
}

#[test]
fn a_session_container_is_labelled_published_on_loopback_and_removed_when_it_ends() {
    if !docker_available("a_session_container_is_labelled") {
        return;
    }
    let name = template_name("dks");
    let proxy = Proxy::start(&docker_template(&name, "idle_timeout_secs = 60"));
    let s = create(&proxy, &name, &key_body("room-1"));
    let container = container_of(&name, &s);
    served_both(&proxy, &s);

    let info = inspect(&container.0).unwrap_or_else(|| panic!("no container {}", container.0));
    assert_eq!(info["State"]["Running"], true);
    let labels = &info["Config"]["Labels"];
    assert_eq!(labels["spawngate.managed"], "true", "{labels}");
    assert_eq!(labels["spawngate.session"], s.id.as_str(), "{labels}");
    let env: Vec<&str> = info["Config"]["Env"]
        .as_array()
        .map(|vars| vars.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for want in [
        format!("SPAWNGATE_SESSION_ID={}", s.id),
        "SPAWNGATE_SESSION_KEY=room-1".to_string(),
        "ROOM=room-1".to_string(),
        format!("PORT={CONTAINER_PORT}"),
    ] {
        assert!(env.contains(&want.as_str()), "no {want} in {env:?}");
    }
    let secret = env
        .iter()
        .find_map(|v| v.strip_prefix("SPAWNGATE_SESSION_SECRET="));
    assert!(secret.is_some_and(|s| !s.is_empty()), "{env:?}");
    let binding = &info["HostConfig"]["PortBindings"][format!("{CONTAINER_PORT}/tcp")][0];
    assert_eq!(binding["HostIp"], "127.0.0.1", "{binding}");
    assert!(binding["HostPort"]
        .as_str()
        .is_some_and(|p| p.parse::<u16>().is_ok()));

    assert_eq!(delete(&proxy, &s.id, false).status, 200);
    assert_eq!(wait_ended(&proxy, &s.id, CONTAINER_WAIT), "terminated");
    assert!(
        wait_until(CONTAINER_WAIT, || container_gone(&container.0)),
        "the ended session's container {} is still there",
        container.0
    );
    let reply = ask(
        proxy.addr(),
        Proto::Http1,
        "GET",
        &s.hostname,
        "/",
        &[s.token_header()],
    );
    assert_eq!(reply.status, 410, "{}", reply.text());
}

#[test]
fn a_sigkilled_proxys_session_container_is_removed_by_the_next_proxy() {
    if !docker_available("a_sigkilled_proxys_session_container") {
        return;
    }
    let name = template_name("dkk");
    let template = docker_template(&name, "idle_timeout_secs = 60");
    let mut first = Proxy::start(&template);
    let s = create(&first, &name, &key_body("room-2"));
    let container = container_of(&name, &s);
    served_both(&first, &s);
    let id = inspect(&container.0)
        .and_then(|info| info["Id"].as_str().map(str::to_string))
        .expect("the session's container runs");
    first.signal(Signal::SIGKILL);
    first.wait_exit(Duration::from_secs(10));
    assert!(
        inspect(&id).is_some_and(|info| info["State"]["Running"] == true),
        "a SIGKILLed proxy cannot stop its container"
    );

    let second = Proxy::start(&template);
    assert!(
        wait_until(CONTAINER_WAIT, || container_gone(&id)),
        "the next proxy left the killed one's session container {} running",
        container.0
    );
    let old = admin(&second, "GET", &format!("/sessions/{}", s.id), &[], b"");
    assert_proxy_error(&old, "UNKNOWN_SESSION", 404);
    // The template works under the new proxy.
    let fresh = create(&second, &name, &key_body("room-2"));
    assert_eq!(fresh.status, 201);
    let _fresh_container = container_of(&name, &fresh);
    served_both(&second, &fresh);
}
