//! Pools scaling with demand, against the real binary with real `spawngate-echo` instances: a cold
//! burst, `max_in_flight` queues (within a thread and across both), `always_on` and `start_after`
//! supervision, and an instance killed under load.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::pools::*;
use support::routing::{ask_get, Proto, PROTOCOLS};
use support::*;

#[test]
fn a_cold_burst_starts_no_more_instances_than_needed_and_none_twice() {
    let base = free_ports(8);
    let config = echo_pool(
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
    let starts: Vec<usize> = (0..8)
        .map(|slot| slot_pids(&proxy, "burst", slot).len())
        .collect();
    assert!(
        starts.iter().all(|&n| n <= 1),
        "a slot started twice: {starts:?}"
    );
    let total: usize = starts.iter().sum();
    assert!(total <= 4, "{total} starts for max_running = 4");
    let running = states(&proxy, "burst")
        .iter()
        .filter(|s| *s != "stopped")
        .count();
    assert!(running <= 4, "{running} instances up for max_running = 4");
}

#[test]
fn always_on_comes_up_at_start_and_after_a_kill_and_leaves_nothing_behind() {
    let port = free_port();
    let config = echo_pool("keeper", &format!("port = {port}\nalways_on = true"));
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
    let instance = &pool_status(&proxy, "keeper")["instances"][0];
    assert_eq!(instance["last_exit"], "signal SIGKILL", "{instance}");
    let process = instance["process"].as_str().unwrap_or_default();
    assert!(
        process.starts_with("pid ") && process != format!("pid {first}"),
        "{instance}"
    );
    assert!(instance["started_at"]
        .as_u64()
        .is_some_and(|t| t > 1_700_000_000));
    proxy.shut_down_leaving_nothing(WAIT);
}

#[test]
fn a_saturated_pool_queues_then_times_out_with_queue_timeout() {
    let port = free_port();
    let config = echo_pool(
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
fn a_place_freed_by_one_protocol_is_taken_by_a_request_queued_in_the_other() {
    let port = free_port();
    let config = echo_pool(
        "shared",
        &format!("port = {port}\nmin_running = 1\nmax_in_flight = 1\nqueue_timeout_secs = 15"),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "shared", &["ready"]);
    let addr = proxy.addr();
    for (first, then) in [(Proto::Http1, Proto::H2c), (Proto::H2c, Proto::Http1)] {
        let long =
            std::thread::spawn(move || ask_get(addr, first, "shared.test", "/slow?ms=1000").status);
        let busy = wait_until(WAIT, || {
            pool_status(&proxy, "shared")["instances"][0]["in_flight"] == 1
        });
        assert!(busy, "the long request holds the only place");
        let started = Instant::now();
        let queued = ask_get(addr, then, "shared.test", "/");
        let waited = started.elapsed();
        assert_eq!(queued.status, 200, "{then:?} after {first:?}");
        assert!(
            waited < Duration::from_secs(8),
            "{then:?} waited {waited:?} for a place {first:?} freed: it was not told"
        );
        assert_eq!(long.join().expect("the long request"), 200);
    }
}

#[test]
fn start_after_starts_a_pool_once_the_ones_it_names_are_ready() {
    let (db, app) = (free_port(), free_port());
    let config = format!(
        "{}\n[pools.db.env]\nECHO_START_DELAY_MS = \"400\"\n\n{}",
        echo_pool("db", &format!("port = {db}\nalways_on = true")),
        echo_pool(
            "app",
            &format!("port = {app}\nalways_on = true\nstart_after = [\"db\"]")
        ),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "app", &["ready"]);
    let lines = proxy.log_lines();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?}: {lines:#?}"))
    };
    assert!(
        at("db: ready") < at("app: started"),
        "app started before db was ready"
    );
    assert_eq!(states(&proxy, "db"), vec!["ready"]);
    // At shutdown the order reverses: app is gone before db is asked to stop.
    let mut proxy = proxy;
    proxy.signal(Signal::SIGTERM);
    assert!(proxy.wait_exit(WAIT).success());
    assert!(proxy.wait_for_log("db: stopped", WAIT));
    let lines = proxy.log_lines();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?}"))
    };
    assert!(
        at("app: stopped") < at("db: stopping (Shutdown)"),
        "db was stopped while app still ran"
    );
}

#[test]
fn killing_one_instance_under_load_fails_only_its_own_requests() {
    let base = free_ports(2);
    let config = echo_pool(
        "pair",
        &format!("port = {base}\nreplicas = 2\nmin_running = 2\nstrategy = \"round_robin\""),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "pair", &["ready", "ready"]);
    let pids: Vec<u32> = (0..2)
        .map(|_| pid_of(&ask_get(proxy.addr(), Proto::Http1, "pair.test", "/")))
        .collect();
    assert_ne!(pids[0], pids[1]);
    let addr = proxy.addr();
    // Round robin puts four of the eight on each instance.
    let requests: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                ask_get(addr, Proto::Http1, "pair.test", "/slow?ms=1500").status
            })
        })
        .collect();
    let all_in = wait_until(WAIT, || {
        let pool = pool_status(&proxy, "pair");
        (0..2)
            .map(|i| pool["instances"][i]["in_flight"].as_u64().unwrap_or(0))
            .collect::<Vec<_>>()
            == [4, 4]
    });
    assert!(all_in, "four requests in flight on each instance");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pids[0] as i32), Signal::SIGKILL)
        .expect("kill one instance");
    let mut statuses: Vec<u16> = requests
        .into_iter()
        .map(|r| r.join().expect("a client thread"))
        .collect();
    statuses.sort_unstable();
    // The survivor's four finish. The victim's fail with 502, unless one failed on a reused connection
    // before any response byte: that one is retried (safe without a body), maybe on the restarted
    // instance, and succeeds.
    let served = statuses.iter().filter(|&&s| s == 200).count();
    assert!(served >= 4, "the survivor's requests finish: {statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 502),
        "only the victim's requests fail, as 502: {statuses:?}"
    );
    // The pool goes on serving, and min_running brings the lost instance back.
    assert_eq!(ask_get(addr, Proto::H2c, "pair.test", "/").status, 200);
    wait_states(&proxy, "pair", &["ready", "ready"]);
}

#[test]
fn an_instance_woken_by_a_held_request_still_idles_out() {
    let port = free_port();
    let config = echo_pool("nap", &format!("port = {port}\nidle_timeout_secs = 1"));
    let proxy = Proxy::start(&config);
    // The first request is held while the instance starts; once it is served nothing is held any more,
    // and the supervisor must hear so or it would keep the instance for requests that do not exist.
    assert_eq!(
        ask_get(proxy.addr(), Proto::Http1, "nap.test", "/").status,
        200
    );
    wait_states(&proxy, "nap", &["stopped"]);
    assert_eq!(
        ask_get(proxy.addr(), Proto::H2c, "nap.test", "/").status,
        200
    );
    wait_states(&proxy, "nap", &["stopped"]);
}

#[test]
fn excess_capacity_drains_one_instance_per_window_down_to_what_the_traffic_needs() {
    let base = free_ports(3);
    let config = echo_pool(
        "elastic",
        &format!(
            "port = {base}\nreplicas = 3\ntarget_in_flight = 2\nscale_down_delay_secs = 1\n\
             idle_timeout_secs = 600"
        ),
    );
    let proxy = Proxy::start(&config);
    let addr = proxy.addr();
    // Six slow requests at once want three instances of two each.
    let burst: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                ask_get(addr, Proto::Http1, "elastic.test", "/slow?ms=800").status
            })
        })
        .collect();
    for request in burst {
        assert_eq!(request.join().expect("a burst request"), 200);
    }
    assert_eq!(states(&proxy, "elastic"), ["ready", "ready", "ready"]);
    // One request at a time from here: one instance is enough, and the other two drain, one per
    // window (idle_timeout is far away: this is the scale-down, not idleness).
    let shed = wait_until(WAIT, || {
        assert_eq!(ask_get(addr, Proto::Http1, "elastic.test", "/").status, 200);
        states(&proxy, "elastic")
            .iter()
            .filter(|s| *s == "ready")
            .count()
            == 1
    });
    assert!(shed, "still {:?}", states(&proxy, "elastic"));
    assert_eq!(
        states(&proxy, "elastic")[0],
        "ready",
        "traffic packs onto the lowest slot"
    );
    let lines = proxy.log_lines();
    let drains = lines
        .iter()
        .filter(|l| l.contains("elastic: ") && l.contains("draining instance"))
        .count();
    assert_eq!(drains, 2, "one drain per window");
}

#[test]
fn wake_all_starts_every_instance_for_one_request_and_they_idle_out_together() {
    let base = free_ports(3);
    let config = echo_pool(
        "group",
        &format!("port = {base}\nreplicas = 3\nwake = \"all\"\nidle_timeout_secs = 1"),
    );
    let proxy = Proxy::start(&config);
    assert_eq!(states(&proxy, "group"), ["stopped", "stopped", "stopped"]);
    assert_eq!(
        ask_get(proxy.addr(), Proto::H2c, "group.test", "/").status,
        200
    );
    wait_states(&proxy, "group", &["ready", "ready", "ready"]);
    wait_states(&proxy, "group", &["stopped", "stopped", "stopped"]);
}
