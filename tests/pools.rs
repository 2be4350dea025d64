//! Pools against the real binary with real `spawngate-echo` instances: spreading by strategy, scaling
//! from zero under a burst, always-on supervision, fixed addresses, the saturation queue, `/pools`.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::routing::{ask_get, Proto, PROTOCOLS};
use support::*;

const WAIT: Duration = Duration::from_secs(20);

/// A base port with `n - 1` free ports after it (a pool's replica `i` listens on `base + i`).
fn free_ports(n: u16) -> u16 {
    loop {
        let base = free_port();
        let all_free = (1..n).all(|i| {
            base.checked_add(i)
                .is_some_and(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        });
        if all_free {
            return base;
        }
    }
}

/// `[pools.NAME]` running `spawngate-echo` with `keys`, routed from host `NAME.test`.
fn pool(name: &str, keys: &str) -> String {
    format!(
        "[pools.{name}]\ncommand = {}\n{keys}\n\n[hosts.\"{name}.test\"]\n[[hosts.\"{name}.test\".routes]]\nto = \"{name}\"\n",
        toml_str(&echo_bin_path())
    )
}

fn echo_bin_path() -> String {
    env!("CARGO_BIN_EXE_spawngate-echo").to_string()
}

fn pools(proxy: &Proxy) -> serde_json::Value {
    proxy.admin_get("/pools").json()
}

/// The states of pool `name`'s instances, by slot.
fn states(proxy: &Proxy, name: &str) -> Vec<String> {
    let all = pools(proxy);
    let found = all["pools"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_default();
    found["instances"]
        .as_array()
        .map(|i| {
            i.iter()
                .map(|i| i["state"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_states(proxy: &Proxy, name: &str, want: &[&str]) {
    let reached = wait_until(WAIT, || states(proxy, name) == want);
    assert!(
        reached,
        "{name}: wanted {want:?}, have {:?}",
        states(proxy, name)
    );
}

fn pid_of(reply: &support::routing::Reply) -> u32 {
    reply
        .header("x-echo-pid")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no X-Echo-Pid in {} {:?}", reply.status, reply.headers))
}

#[test]
fn round_robin_spreads_evenly_and_weighted_follows_the_weights() {
    let base = free_ports(3);
    let config = pool(
        "rr",
        &format!("port = {base}\nreplicas = 3\nstrategy = \"round_robin\"\nmin_running = 3"),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "rr", &["ready", "ready", "ready"]);
    for proto in PROTOCOLS {
        let mut by_pid: HashMap<u32, usize> = HashMap::new();
        for _ in 0..30 {
            let reply = ask_get(proxy.addr(), proto, "rr.test", "/");
            assert_eq!(reply.status, 200, "{proto:?}");
            *by_pid.entry(pid_of(&reply)).or_default() += 1;
        }
        let counts: Vec<usize> = by_pid.values().copied().collect();
        assert_eq!(counts, vec![10, 10, 10], "{proto:?}: {by_pid:?}");
    }
}

#[test]
fn a_cold_burst_starts_no_more_instances_than_needed_and_none_twice() {
    let base = free_ports(8);
    let config = pool(
        "burst",
        &format!("port = {base}\nreplicas = 8\ntarget_in_flight = 4\nmax_running = 4"),
    );
    let proxy = Proxy::start(&config);
    let addr = proxy.addr();
    let workers: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || {
                let reply = ask_get(addr, Proto::Http1, "burst.test", "/slow?ms=300");
                (reply.status, reply.header("x-echo-pid").map(str::to_string))
            })
        })
        .collect();
    let mut pids = HashMap::new();
    for worker in workers {
        let (status, pid) = worker.join().expect("a client thread");
        assert_eq!(status, 200);
        *pids.entry(pid).or_insert(0) += 1;
    }
    assert!(
        (1..=4).contains(&pids.len()),
        "served by {} instances: {pids:?}",
        pids.len()
    );
    let starts = proxy.count_log(|l| l.contains("burst#") && l.contains(": started (pid"))
        + proxy.count_log(|l| l.contains(" burst: started (pid"));
    assert!(starts <= 4, "{starts} starts for max_running = 4");
    for slot in 0..8 {
        let name = match slot {
            0 => "burst: started".to_string(),
            n => format!("burst#{n}: started"),
        };
        assert!(
            proxy.count_log(|l| l.contains(&name)) <= 1,
            "slot {slot} started twice"
        );
    }
    let states = states(&proxy, "burst");
    assert!(
        states[4..].iter().all(|s| s == "stopped"),
        "slots past max_running never start: {states:?}"
    );
}

#[test]
fn always_on_comes_up_at_start_and_after_a_kill_and_leaves_nothing_behind() {
    let port = free_port();
    let config = pool("keeper", &format!("port = {port}\nalways_on = true"));
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "keeper", &["ready"]);
    let first = pid_of(&ask_get(proxy.addr(), Proto::Http1, "keeper.test", "/"));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the instance");
    let restarted = wait_until(WAIT, || {
        let reply = ask_get(proxy.addr(), Proto::Http1, "keeper.test", "/");
        reply.status == 200 && pid_of(&reply) != first
    });
    assert!(restarted, "the instance was not restarted after kill -9");
    proxy.shut_down_leaving_nothing(WAIT);
}

#[test]
fn a_fixed_address_is_probed_and_served_in_both_protocols_and_never_stopped() {
    let echo = EchoServer::start(&[]);
    let config = format!(
        "[pools.fixed]\naddress = \"127.0.0.1:{}\"\nidle_timeout_secs = 1\n\n[hosts.\"fixed.test\"]\n[[hosts.\"fixed.test\".routes]]\nto = \"fixed\"\n",
        echo.port
    );
    let proxy = Proxy::start(&config);
    for proto in PROTOCOLS {
        let reply = ask_get(proxy.addr(), proto, "fixed.test", "/x");
        assert_eq!(reply.status, 200, "{proto:?}");
        assert_eq!(pid_of(&reply), echo.pid(), "{proto:?}");
    }
    // Idle far past its timeout, a fixed address is never "stopped": nothing of ours runs there.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(states(&proxy, "fixed"), vec!["ready"]);
    assert!(pid_alive(echo.pid()));
}

#[test]
fn a_saturated_pool_queues_then_times_out_with_queue_timeout() {
    let port = free_port();
    let config = pool(
        "narrow",
        &format!("port = {port}\nmin_running = 1\nmax_in_flight = 1\nqueue_timeout_secs = 1"),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "narrow", &["ready"]);
    let addr = proxy.addr();
    let long = std::thread::spawn(move || {
        ask_get(addr, Proto::Http1, "narrow.test", "/slow?ms=4000").status
    });
    let busy = wait_until(WAIT, || {
        let all = pools(&proxy);
        all["pools"][0]["instances"][0]["in_flight"] == 1
    });
    assert!(busy);
    for proto in PROTOCOLS {
        let started = Instant::now();
        let reply = ask_get(addr, proto, "narrow.test", "/");
        assert_eq!(reply.status, 503, "{proto:?}");
        assert_eq!(reply.header("x-proxy-error"), Some("QUEUE_TIMEOUT"));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
            "{proto:?} waited {waited:?}"
        );
    }
    // A request queued behind the long one is served as soon as it ends.
    let queued = std::thread::spawn(move || ask_get(addr, Proto::Http1, "narrow.test", "/").status);
    assert_eq!(long.join().expect("long request"), 200);
    let _ = queued.join();
}

#[test]
fn pools_are_listed_with_their_instances_and_backends_stay_as_they_were() {
    let base = free_ports(2);
    let backend = echo_backend("plain.test", free_port(), "", &[]);
    let config = format!(
        "{backend}\n{}",
        pool("pair", &format!("port = {base}\nreplicas = 2"))
    );
    let proxy = Proxy::start(&config);
    let listed = pools(&proxy);
    assert_eq!(listed["count"], 1);
    let pair = &listed["pools"][0];
    assert_eq!(pair["name"], "pair");
    assert_eq!(pair["strategy"], "least_conn");
    assert_eq!(
        pair["instances"][1]["address"],
        format!("127.0.0.1:{}", base + 1)
    );
    assert_eq!(states(&proxy, "pair"), vec!["stopped", "stopped"]);
    // `/backends` lists `[backends]` entries only, as before.
    let backends = proxy.backends();
    assert_eq!(backends["count"], 1);
    assert_eq!(backends["backends"][0]["hostname"], "plain.test");
    // A pool is not a Host.
    assert_eq!(
        ask_get(proxy.addr(), Proto::Http1, "pair", "/").status,
        404,
        "a pool's name routes nothing by itself"
    );
    // One request wakes one instance: the lowest slot.
    assert_eq!(
        ask_get(proxy.addr(), Proto::Http1, "pair.test", "/").status,
        200
    );
    assert_eq!(states(&proxy, "pair"), vec!["ready", "stopped"]);
}

#[test]
fn hash_keeps_each_key_on_one_instance_across_a_thousand_requests() {
    let base = free_ports(3);
    let config = pool(
        "sharded",
        &format!(
            "port = {base}\nreplicas = 3\nmin_running = 3\nstrategy = \"hash\"\nhash_on = \"header:X-User\""
        ),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "sharded", &["ready", "ready", "ready"]);
    let mut owner: HashMap<String, u32> = HashMap::new();
    for round in 0..50 {
        for user in 0..20 {
            let key = format!("user-{user}");
            let proto = PROTOCOLS[(round + user) % PROTOCOLS.len()];
            let reply = support::routing::ask(
                proxy.addr(),
                proto,
                "GET",
                "sharded.test",
                "/",
                &[("X-User", &key)],
            );
            assert_eq!(reply.status, 200);
            let pid = pid_of(&reply);
            let first = *owner.entry(key.clone()).or_insert(pid);
            assert_eq!(first, pid, "{key} moved ({proto:?}, round {round})");
        }
    }
    let spread: std::collections::HashSet<u32> = owner.values().copied().collect();
    assert!(spread.len() >= 2, "20 keys all on one instance: {owner:?}");
}

#[test]
fn unix_socket_instances_serve_http1_h2c_and_websocket() {
    let dir = std::env::temp_dir().join(format!("spawngate-pool-sock-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("socket dir");
    let config = pool(
        "sock",
        &format!(
            "socket = \"{}/web.{{index}}.sock\"\nreplicas = 2\nstrategy = \"round_robin\"\nmin_running = 2",
            dir.display()
        ),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "sock", &["ready", "ready"]);
    let listed = pools(&proxy);
    assert_eq!(
        listed["pools"][0]["instances"][1]["address"],
        format!("unix:{}/web.1.sock", dir.display())
    );
    for proto in PROTOCOLS {
        let pids: std::collections::HashSet<u32> = (0..4)
            .map(|_| {
                let reply = ask_get(proxy.addr(), proto, "sock.test", "/");
                assert_eq!(reply.status, 200, "{proto:?}");
                pid_of(&reply)
            })
            .collect();
        assert_eq!(pids.len(), 2, "{proto:?}: both instances serve");
    }
    let (mut ws, _) = support::ws::ws_connect(proxy.addr(), "sock.test", "/ws");
    let text = "over a unix socket";
    assert_eq!(
        support::ws::ws_echo(&mut ws, tungstenite::Message::text(text)),
        tungstenite::Message::text(text)
    );
    support::ws::ws_close_cleanly(ws);
    proxy.shut_down_leaving_nothing(WAIT);
    let _ = std::fs::remove_dir_all(&dir);
}
