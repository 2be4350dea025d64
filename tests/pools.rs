//! Pools against the real binary with real `spawngate-echo` instances: spreading by strategy and by
//! key, fixed addresses and unix sockets as instances, `/pools`.

mod support;

use std::collections::HashMap;

use support::pools::*;
use support::routing::{ask_get, Proto, PROTOCOLS};
use support::*;

#[test]
fn round_robin_spreads_evenly_in_both_protocols() {
    let base = free_ports(3);
    let config = echo_pool(
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
fn a_fixed_address_is_probed_and_served_in_both_protocols_and_never_stopped() {
    let echo = EchoServer::start(&[]);
    // A `[backends]` entry with the same idle timeout: once it has idled out, so would the pool have.
    let sibling = echo_backend("sibling.test", free_port(), "idle_timeout_secs = 1", &[]);
    let config = format!(
        "{sibling}\n[pools.fixed]\naddress = \"127.0.0.1:{}\"\nidle_timeout_secs = 1\n\n{}",
        echo.port,
        route_to("fixed")
    );
    let proxy = Proxy::start(&config);
    for proto in PROTOCOLS {
        let reply = ask_get(proxy.addr(), proto, "fixed.test", "/x");
        assert_eq!(reply.status, 200, "{proto:?}");
        assert_eq!(pid_of(&reply), echo.pid(), "{proto:?}");
    }
    let (mut ws, _) = support::ws::ws_connect(proxy.addr(), "fixed.test", "/ws");
    let text = "to an address run by someone else";
    assert_eq!(
        support::ws::ws_echo(&mut ws, tungstenite::Message::text(text)),
        tungstenite::Message::text(text)
    );
    support::ws::ws_close_cleanly(ws);
    assert_eq!(
        ask_get(proxy.addr(), Proto::Http1, "sibling.test", "/").status,
        200
    );
    proxy.wait_for_state("sibling.test", "stopped", WAIT);
    // Idle as long, a fixed address is never "stopped": nothing of ours runs there.
    assert_eq!(states(&proxy, "fixed"), vec!["ready"]);
    assert!(pid_alive(echo.pid()));
}

#[test]
fn weighted_instances_take_requests_in_proportion_to_their_weights() {
    let ports = [free_port(), free_port()];
    let instances: String = ports
        .iter()
        .zip([3, 1])
        .map(|(port, weight)| {
            format!(
                "[[pools.w.instances]]\ncommand = {}\nport = {port}\nweight = {weight}\n",
                toml_str(echo_bin())
            )
        })
        .collect();
    let config = format!(
        "[pools.w]\nstrategy = \"weighted\"\nmin_running = 2\n{instances}\n{}",
        route_to("w")
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "w", &["ready", "ready"]);
    for proto in PROTOCOLS {
        let mut by_pid: HashMap<u32, usize> = HashMap::new();
        for _ in 0..40 {
            let reply = ask_get(proxy.addr(), proto, "w.test", "/");
            assert_eq!(reply.status, 200, "{proto:?}");
            *by_pid.entry(pid_of(&reply)).or_default() += 1;
        }
        let mut counts: Vec<usize> = by_pid.values().copied().collect();
        counts.sort_unstable();
        assert_eq!(counts, vec![10, 30], "{proto:?}: {by_pid:?}");
    }
}

#[test]
fn pools_are_listed_with_their_instances_and_backends_stay_as_they_were() {
    let base = free_ports(2);
    let backend = echo_backend("plain.test", free_port(), "", &[]);
    let config = format!(
        "{backend}\n{}",
        echo_pool("pair", &format!("port = {base}\nreplicas = 2"))
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
    let config = echo_pool(
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
    let config = echo_pool(
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

#[test]
fn a_sticky_cookie_keeps_a_client_on_its_instance_and_never_wakes_a_stopped_one() {
    let base = free_ports(3);
    let config = echo_pool(
        "sticky",
        &format!(
            "port = {base}\nreplicas = 3\nmin_running = 2\nstrategy = \"round_robin\"\n\
             sticky = {{ cookie = \"sg_web\", max_age_secs = 600 }}"
        ),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "sticky", &["ready", "ready", "stopped"]);
    let first = ask_get(proxy.addr(), Proto::Http1, "sticky.test", "/");
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("set-cookie"),
        Some("sg_web=0; Path=/; HttpOnly; SameSite=Lax; Max-Age=600"),
        "the answer names the slot that served it"
    );
    let with_cookie = |proto, cookie: &str| {
        let reply = support::routing::ask(
            proxy.addr(),
            proto,
            "GET",
            "sticky.test",
            "/",
            &[("Cookie", cookie)],
        );
        assert_eq!(reply.status, 200, "{proto:?}");
        let set = reply.header("set-cookie").unwrap_or_default().to_string();
        (pid_of(&reply), set)
    };
    // Round robin would alternate; the cookie keeps every request on slot 1.
    let (pid1, _) = with_cookie(Proto::Http1, "theme=dark; sg_web=1");
    assert_ne!(pid1, pid_of(&first));
    for proto in PROTOCOLS {
        for _ in 0..6 {
            let (pid, set) = with_cookie(proto, "theme=dark; sg_web=1");
            assert_eq!(pid, pid1, "{proto:?}: the cookie's slot serves");
            assert!(set.starts_with("sg_web=1;"), "{set}");
        }
    }
    // A cookie naming a slot that is not running is ignored and rewritten, and wakes nothing.
    for _ in 0..4 {
        let (pid, set) = with_cookie(Proto::Http1, "sg_web=2");
        let slot = if pid == pid1 { "1" } else { "0" };
        assert!(set.starts_with(&format!("sg_web={slot};")), "{set}");
    }
    assert_eq!(
        states(&proxy, "sticky")[2],
        "stopped",
        "slot 2 was never woken"
    );
}

#[test]
fn hard_affinity_starts_only_the_owner_and_keeps_the_owner_across_restarts() {
    let base = free_ports(4);
    let config = echo_pool(
        "shards",
        &format!(
            "port = {base}\nreplicas = 4\nstrategy = \"hash\"\nhash_on = \"header:X-Tenant\"\n\
             hash_over = \"slots\""
        ),
    );
    let ask_tenant = |proxy: &Proxy, proto, tenant: &str| {
        let reply = support::routing::ask(
            proxy.addr(),
            proto,
            "GET",
            "shards.test",
            "/",
            &[("X-Tenant", tenant)],
        );
        assert_eq!(reply.status, 200, "{tenant} over {proto:?}");
        pid_of(&reply)
    };
    let ready_slots = |proxy: &Proxy| -> Vec<usize> {
        states(proxy, "shards")
            .iter()
            .enumerate()
            .filter(|(_, s)| *s == "ready")
            .map(|(i, _)| i)
            .collect()
    };
    let mut owners = Vec::new();
    for _ in 0..2 {
        let proxy = Proxy::start(&config);
        let pid = ask_tenant(&proxy, Proto::Http1, "acme");
        let up = ready_slots(&proxy);
        assert_eq!(up.len(), 1, "one request starts its owner alone: {up:?}");
        for proto in PROTOCOLS {
            for _ in 0..5 {
                assert_eq!(ask_tenant(&proxy, proto, "acme"), pid, "{proto:?}");
            }
        }
        assert_eq!(ready_slots(&proxy), up, "nothing else was started");
        owners.push(up[0]);
        proxy.shut_down_leaving_nothing(WAIT);
    }
    assert_eq!(
        owners[0], owners[1],
        "a key keeps its shard across proxy restarts"
    );
}
