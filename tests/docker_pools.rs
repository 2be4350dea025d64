//! Docker pools against the real engine: a cold round-robin pool wakes one container for one request;
//! two running replicas (default names `spawngate-{pool}-{index}`, ports `P + i`, `{index}` in `env`)
//! take turns, as the containers' own output shows, and are all removed when the proxy is stopped; and
//! idle containers are stopped and removed one by one.
//!
//! Every container answers with `X-Echo-Pid: 1` (each is pid 1 in its own namespace), so the tests tell
//! replicas apart by what each container printed (`ECHO_LOG=1`, read through the Engine API), checked
//! against the slot the proxy says answered (`{slot}` in a response header).
//!
//! Pool names carry the test process's pid, so runs on one daemon (parallel tests, other checkouts)
//! never share a container name; the containers are removed by a guard whatever happens.

#[path = "support/docker.rs"]
mod docker;
mod support;

use std::time::{Duration, Instant};

use docker::*;
use support::pools::*;
use support::routing::{ask_get, Proto, Reply, PROTOCOLS};
use support::*;

/// Container starts and stops on a loaded 2-core machine take a few seconds; leave room.
const CONTAINER_WAIT: Duration = Duration::from_secs(30);
/// The response field that names the slot that answered (the proxy's `{slot}`).
const SLOT_FIELD: &str = "x-pool-slot";

/// A pool name of this test process: `{label}-{pid}`.
fn pool_name(label: &str) -> String {
    format!("{label}-{}", std::process::id())
}

/// The default container name of slot `index` of `pool`.
fn container_of(pool: &str, index: u16) -> String {
    format!("spawngate-{pool}-{index}")
}

/// Removes a pool's containers (by their default names) when created and when dropped.
struct PoolContainers {
    names: Vec<String>,
}

impl PoolContainers {
    fn new(pool: &str, replicas: u16) -> PoolContainers {
        let names: Vec<String> = (0..replicas).map(|i| container_of(pool, i)).collect();
        names.iter().for_each(|name| remove_container(name));
        PoolContainers { names }
    }
}

impl Drop for PoolContainers {
    fn drop(&mut self) {
        self.names.iter().for_each(|name| remove_container(name));
    }
}

/// `[pools.NAME]` of `replicas` test-image containers on ports `base + i`, with `keys` and `env` added,
/// routed from host `NAME.test`; every answer names its slot in `X-Pool-Slot`.
fn docker_pool(pool: &str, base: u16, replicas: u16, keys: &str, env: &[(&str, &str)]) -> String {
    let mut out = format!(
        "[pools.{pool}]\ntype = \"docker\"\nimage = {}\npull_policy = \"never\"\nport = {base}\n\
         replicas = {replicas}\nshutdown_grace_period_secs = 1\n{keys}\n\
         [pools.{pool}.env]\nECHO_BIND = \"0.0.0.0\"\n",
        toml_str(echo_image())
    );
    for (key, value) in env {
        out.push_str(&format!("{key} = {}\n", toml_str(value)));
    }
    out.push_str(&format!(
        "\n[hosts.\"{pool}.test\"]\n[[hosts.\"{pool}.test\".routes]]\nto = \"{pool}\"\n\
         response_headers = {{ set = {{ \"X-Pool-Slot\" = \"{{slot}}\" }} }}\n"
    ));
    out
}

fn host_of(pool: &str) -> String {
    format!("{pool}.test")
}

/// The slot the proxy says answered.
fn slot_of(reply: &Reply) -> u16 {
    reply
        .header(SLOT_FIELD)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no {SLOT_FIELD} in {} {:?}", reply.status, reply.headers))
}

/// One GET the echo answers: 200, the path echoed back; returns the slot that answered.
fn served(proxy: &Proxy, proto: Proto, pool: &str, path: &str) -> u16 {
    let reply = ask_get(proxy.addr(), proto, &host_of(pool), path);
    assert_eq!(reply.echoed_path(), path, "{proto:?}");
    slot_of(&reply)
}

fn container_id(name: &str) -> Option<String> {
    inspect(name).and_then(|info| info["Id"].as_str().map(str::to_string))
}

fn running(container: &str) -> bool {
    inspect(container).is_some_and(|info| info["State"]["Running"] == true)
}

/// The container's `Config.Env`.
fn env_of(info: &serde_json::Value) -> Vec<String> {
    info["Config"]["Env"]
        .as_array()
        .map(|vars| {
            vars.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What the container wrote to stdout so far, from the Engine API (its frames unwrapped).
fn stdout_of(container: &str) -> String {
    let reply = call(
        "GET",
        &format!("/containers/{container}/logs?stdout=1&stderr=0"),
        None,
    )
    .expect("ask the daemon for a container's output");
    assert_eq!(reply.status, 200, "logs of {container}: {}", reply.text());
    // A container without a TTY sends frames: stream, three zero bytes, a big-endian length, the bytes.
    let mut out = Vec::new();
    let mut rest = &reply.body[..];
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        out.extend_from_slice(&rest[8..end]);
        rest = &rest[end..];
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the container's echo logged a request for `path` (`ECHO_LOG=1`: "GET /path HTTP/1.1").
fn logged(output: &str, path: &str) -> bool {
    output
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(path))
}

#[test]
fn one_cold_request_wakes_only_the_first_container_of_a_round_robin_pool() {
    if !docker_available("one_cold_request_wakes_only_the_first_container") {
        return;
    }
    let pool = pool_name("cold");
    let containers = PoolContainers::new(&pool, 2);
    let base = free_ports(2);
    let keys = "strategy = \"round_robin\"\nidle_timeout_secs = 600";
    let proxy = Proxy::start(&docker_pool(&pool, base, 2, keys, &[]));
    assert_eq!(states(&proxy, &pool), ["stopped", "stopped"]);
    assert!(
        containers.names.iter().all(|name| container_gone(name)),
        "nothing runs before the first request"
    );

    for proto in PROTOCOLS {
        let slot = served(&proxy, proto, &pool, &format!("/first-{proto:?}"));
        assert_eq!(slot, 0, "{proto:?}: the only running instance answers");
    }
    assert_eq!(
        states(&proxy, &pool),
        ["ready", "stopped"],
        "one request wakes one instance"
    );
    let first = &containers.names[0];
    assert!(running(first), "{first} runs while slot 0 is ready");
    let id = container_id(first).expect("the first container exists");
    assert!(
        container_gone(&containers.names[1]),
        "the second container was started for nothing"
    );

    proxy.shut_down_leaving_nothing(CONTAINER_WAIT);
    assert!(
        container_gone(&id),
        "the proxy exited leaving {first} behind"
    );
}

#[test]
fn two_running_containers_take_turns_and_none_is_left_after_sigterm() {
    if !docker_available("two_running_containers_take_turns") {
        return;
    }
    let pool = pool_name("web");
    let containers = PoolContainers::new(&pool, 2);
    let base = free_ports(2);
    let keys = "strategy = \"round_robin\"\nmin_running = 2";
    let env = [("ECHO_LOG", "1"), ("ECHO_NAME", "web-{index}")];
    let proxy = Proxy::start(&docker_pool(&pool, base, 2, keys, &env));
    wait_states(&proxy, &pool, &["ready", "ready"]);

    let mut ids = Vec::new();
    for (index, name) in (0u16..).zip(&containers.names) {
        let info = inspect(name).unwrap_or_else(|| panic!("{name} exists while its slot is ready"));
        assert_eq!(info["State"]["Running"], true, "{name}");
        ids.push(info["Id"].as_str().unwrap_or_default().to_string());
        let port = base + index;
        let env = env_of(&info);
        for want in [
            format!("PORT={port}"),
            format!("SPAWNGATE_POOL={pool}"),
            format!("SPAWNGATE_INSTANCE={index}"),
            format!("ECHO_NAME=web-{index}"),
        ] {
            assert!(env.contains(&want), "{name}: no {want} in {env:?}");
        }
        assert!(
            env.iter().any(|v| v
                .starts_with("SERVERLESS_PROXY_READY_URL=http://host.docker.internal:")
                && v.ends_with(&format!("/ready/pool/{pool}/{index}"))),
            "{name}: {env:?}"
        );
        let binding = &info["HostConfig"]["PortBindings"][format!("{port}/tcp")][0];
        assert_eq!(binding["HostIp"], "127.0.0.1", "{name}");
        assert_eq!(binding["HostPort"], port.to_string(), "{name}");
        let labels = &info["Config"]["Labels"];
        assert_eq!(labels["spawngate.managed"], "true", "{name}");
        assert_eq!(labels["spawngate.host"], pool.as_str(), "{name}");
    }
    assert_ne!(ids[0], ids[1]);

    // Round robin over two ready instances alternates, in each protocol.
    let mut answered = Vec::new();
    for proto in PROTOCOLS {
        let paths: Vec<String> = (0..6).map(|k| format!("/turn-{proto:?}-{k}")).collect();
        let slots: Vec<u16> = paths
            .iter()
            .map(|path| served(&proxy, proto, &pool, path))
            .collect();
        assert!(
            slots.windows(2).all(|pair| pair[0] != pair[1]),
            "{proto:?}: round robin does not alternate: {slots:?}"
        );
        answered.extend(paths.into_iter().zip(slots));
    }

    // Each request reached the container of the slot the proxy named, and only that one.
    let outputs = || -> Vec<String> { containers.names.iter().map(|n| stdout_of(n)).collect() };
    let all_logged = wait_until(CONTAINER_WAIT, || {
        let outputs = outputs();
        answered
            .iter()
            .all(|(path, slot)| logged(&outputs[usize::from(*slot)], path))
    });
    let outputs = outputs();
    assert!(
        all_logged,
        "requests missing from their container's output: {answered:?}\n{outputs:#?}"
    );
    for (path, slot) in &answered {
        let other = usize::from(1 - slot);
        assert!(
            !logged(&outputs[other], path),
            "{path} (slot {slot}) also reached {}",
            containers.names[other]
        );
    }

    proxy.shut_down_leaving_nothing(CONTAINER_WAIT);
    for (name, id) in containers.names.iter().zip(&ids) {
        assert!(container_gone(id), "the proxy exited leaving {name} behind");
        assert!(container_gone(name), "a container named {name} exists");
    }
}

#[test]
fn idle_containers_are_stopped_and_removed_one_by_one() {
    if !docker_available("idle_containers_are_stopped_and_removed") {
        return;
    }
    let pool = pool_name("idle");
    let containers = PoolContainers::new(&pool, 2);
    let base = free_ports(2);
    // `first`: sequential requests always go to slot 0 while it is ready, so slot 1 can idle alone.
    let keys = "strategy = \"first\"\ntarget_in_flight = 1\nidle_timeout_secs = 2";
    let proxy = Proxy::start(&docker_pool(&pool, base, 2, keys, &[]));

    // A long request holds slot 0 at its target, so the next one starts slot 1.
    let addr = proxy.addr();
    let long_host = host_of(&pool);
    let long =
        std::thread::spawn(move || ask_get(addr, Proto::Http1, &long_host, "/slow?ms=3000").status);
    let busy = wait_until(CONTAINER_WAIT, || {
        let pool = pool_status(&proxy, &pool);
        pool["instances"][0]["state"] == "ready" && pool["instances"][0]["in_flight"] == 1
    });
    assert!(
        busy,
        "slot 0 never carried the long request: {:?}",
        pools(&proxy)
    );
    served(&proxy, Proto::H2c, &pool, "/second");
    wait_states(&proxy, &pool, &["ready", "ready"]);
    let ids: Vec<String> = containers
        .names
        .iter()
        .map(|name| container_id(name).unwrap_or_else(|| panic!("{name} runs")))
        .collect();
    assert_eq!(long.join().expect("the long request"), 200);

    // Traffic on slot 0 only: slot 1 goes idle and is stopped and removed; slot 0 stays as it was.
    let mut sent = 0;
    let mut last_request = Instant::now();
    let slot1_stopped = wait_until(CONTAINER_WAIT, || {
        sent += 1;
        let slot = served(&proxy, Proto::Http1, &pool, &format!("/keep-{sent}"));
        last_request = Instant::now();
        assert_eq!(slot, 0, "strategy first picks the lowest ready slot");
        states(&proxy, &pool) == ["ready", "stopped"]
    });
    assert!(
        slot1_stopped,
        "slot 1 was not idle-stopped: {:?}",
        pool_status(&proxy, &pool)
    );
    assert_eq!(
        container_id(&containers.names[0]).as_deref(),
        Some(ids[0].as_str()),
        "the busy container was replaced"
    );
    assert!(running(&ids[0]), "the busy container was stopped");
    assert!(
        wait_until(CONTAINER_WAIT, || container_gone(&ids[1])),
        "the idle container {} was not removed",
        containers.names[1]
    );

    // No more traffic: slot 0 follows once its own idle time has passed.
    wait_states(&proxy, &pool, &["stopped", "stopped"]);
    let idled = last_request.elapsed();
    assert!(
        idled >= Duration::from_millis(1500),
        "slot 0 stopped {idled:?} after its last request, before its idle timeout"
    );
    assert!(
        wait_until(CONTAINER_WAIT, || container_gone(&ids[0])),
        "the idle container {} was not removed",
        containers.names[0]
    );
}
