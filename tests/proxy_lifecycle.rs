//! Backend lifecycle seen from outside: idle stop and restart, unhealthy restart, ready callback,
//! crashes, and what `/backends` reports on the way.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn an_idle_backend_is_stopped_and_started_again_by_the_next_request() {
    let proxy = proxy_with_echo("idle_timeout_secs = 1", &[]);
    let first = get(proxy.addr(), ECHO_HOST, "/");
    assert_eq!(first.status, 200);
    let first_pid = echo_pid(&first);

    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(first_pid)),
        "the idle backend's process is still running"
    );
    assert!(wait_until(Duration::from_secs(5), || zombies_of(
        proxy.pid()
    )
    .is_empty()));

    let second = get(proxy.addr(), ECHO_HOST, "/");
    assert_eq!(second.status, 200, "{}", second.text());
    assert_ne!(
        echo_pid(&second),
        first_pid,
        "a new process serves after an idle stop"
    );
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");
}

#[test]
fn a_backend_in_use_is_not_stopped_for_idleness() {
    let proxy = proxy_with_echo("idle_timeout_secs = 1", &[]);
    let first = get(proxy.addr(), ECHO_HOST, "/");
    let pid = echo_pid(&first);
    // One request lasting three idle timeouts: in-flight traffic is not idleness.
    let slow = get(proxy.addr(), ECHO_HOST, "/slow?ms=3000");
    assert_eq!(slow.status, 200);
    assert_eq!(echo_pid(&get(proxy.addr(), ECHO_HOST, "/")), pid);
}

#[test]
fn an_unhealthy_backend_is_restarted() {
    let dir = TempDir::new("unhealthy");
    let start_log = dir.file("starts.log");
    let fail_file = dir.file("fail-health");
    let proxy = proxy_with_echo(
        "ready_health_check_interval_ms = 100\nunhealthy_threshold = 2",
        &[
            ("ECHO_START_LOG", start_log.to_str().unwrap()),
            ("ECHO_HEALTH_FAIL_FILE", fail_file.to_str().unwrap()),
        ],
    );
    let first_pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));

    std::fs::write(&fail_file, "").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(first_pid)),
        "a backend failing its health checks was not stopped"
    );
    // Let the replacement pass its checks.
    std::fs::remove_file(&fail_file).unwrap();
    proxy.wait_for_state(ECHO_HOST, "ready", Duration::from_secs(20));
    let pids = start_log_pids(&start_log);
    assert_eq!(pids.len(), 2, "exactly one restart: {pids:?}");
    assert_eq!(pids[0], first_pid);
    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_eq!(response.status, 200);
    assert_eq!(echo_pid(&response), pids[1]);
}

#[test]
fn an_unhealthy_backend_is_refused_with_backend_unhealthy_until_its_replacement_is_ready() {
    let dir = TempDir::new("unhealthy-refused");
    let fail_file = dir.file("fail-health");
    // Every start takes a second, so the restart leaves a window in which requests must be refused.
    let proxy = proxy_with_echo(
        "ready_health_check_interval_ms = 100\nunhealthy_threshold = 2",
        &[
            ("ECHO_START_DELAY_MS", "1000"),
            ("ECHO_HEALTH_FAIL_FILE", fail_file.to_str().unwrap()),
        ],
    );
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/").status, 200);

    std::fs::write(&fail_file, "").unwrap();
    proxy.wait_for_state(ECHO_HOST, "unhealthy", Duration::from_secs(10));
    std::fs::remove_file(&fail_file).unwrap();
    let refused = get(proxy.addr(), ECHO_HOST, "/during-restart");
    assert_proxy_error(&refused, "BACKEND_UNHEALTHY", 503);

    proxy.wait_for_state(ECHO_HOST, "ready", Duration::from_secs(20));
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/after-restart").status, 200);
}

#[test]
fn the_ready_callback_makes_a_backend_ready_without_a_healthy_probe() {
    let proxy = proxy_with_echo("startup_timeout_secs = 20", &[("ECHO_READY_CALLBACK", "1")]);
    let response = get(proxy.addr(), ECHO_HOST, "/via-callback");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["path"], "/via-callback");
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");
}

#[test]
fn a_backend_that_crashes_is_started_again_by_the_next_request() {
    let proxy = proxy_with_echo("", &[]);
    let first_pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/exit").status, 200);
    assert!(wait_until(Duration::from_secs(5), || !pid_alive(first_pid)));
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(5));
    assert!(wait_until(Duration::from_secs(5), || zombies_of(
        proxy.pid()
    )
    .is_empty()));

    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_ne!(echo_pid(&response), first_pid);
}

#[test]
fn backends_endpoint_reports_states_ports_and_in_flight() {
    let echo_port = free_port();
    let other_port = free_port();
    let proxy = Proxy::start(&format!(
        "{}{}",
        echo_backend(ECHO_HOST, echo_port, "", &[]),
        echo_backend("other.test", other_port, "", &[])
    ));
    let all = proxy.backends();
    assert_eq!(all["count"], 2, "{all}");
    let list = all["backends"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for entry in list {
        assert_eq!(entry["state"], "stopped", "{entry}");
        assert_eq!(entry["in_flight"], 0, "{entry}");
    }
    assert_eq!(proxy.backend(ECHO_HOST)["port"], echo_port);
    assert_eq!(proxy.backend("other.test")["port"], other_port);

    assert_eq!(get(proxy.addr(), ECHO_HOST, "/").status, 200);
    let addr = proxy.addr();
    let slow = std::thread::spawn(move || get(addr, ECHO_HOST, "/slow?ms=1500"));
    assert!(
        wait_until(Duration::from_secs(5), || proxy.backend(ECHO_HOST)
            ["in_flight"]
            == 1),
        "in_flight never showed the slow request: {}",
        proxy.backend(ECHO_HOST)
    );
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");
    assert_eq!(proxy.state_of("other.test"), "stopped");
    assert_eq!(slow.join().unwrap().status, 200);
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 0));
}

#[test]
fn a_starting_backend_is_reported_as_starting() {
    let proxy = proxy_with_echo("", &[("ECHO_START_DELAY_MS", "1500")]);
    let addr = proxy.addr();
    let request = std::thread::spawn(move || get(addr, ECHO_HOST, "/"));
    proxy.wait_for_state(ECHO_HOST, "starting", Duration::from_secs(5));
    assert_eq!(request.join().unwrap().status, 200);
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");
}

#[test]
fn admin_health_and_version() {
    let proxy = proxy_with_echo("", &[]);
    let health = proxy.admin_get("/health");
    assert_eq!(health.status, 200);
    let version = proxy.admin_get("/version");
    assert_eq!(version.status, 200);
    let json = version.json();
    assert_eq!(json["name"], "spawngate");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(proxy.admin_get("/no-such-endpoint").status, 404);
}

/// While a backend that failed its health checks is being restarted, a request either waits for the new
/// instance or is refused with 503 BACKEND_UNHEALTHY; it never fails any other way.
#[test]
fn requests_during_an_unhealthy_restart_wait_or_get_backend_unhealthy() {
    let dir = TempDir::new("unhealthy-requests");
    let fail_file = dir.file("fail-health");
    let proxy = proxy_with_echo(
        "ready_health_check_interval_ms = 100\nunhealthy_threshold = 2",
        &[("ECHO_HEALTH_FAIL_FILE", fail_file.to_str().unwrap())],
    );
    let first_pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    // An in-flight request keeps the old instance draining for a while during the restart.
    let addr = proxy.addr();
    let slow = std::thread::spawn(move || get(addr, ECHO_HOST, "/slow?ms=1500"));
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 1));
    std::fs::write(&fail_file, "").unwrap();

    // Held requests wait for the new instance, so the fail file is removed from another thread once the
    // old instance is gone.
    let healer = std::thread::spawn(move || {
        let old_gone = wait_until(Duration::from_secs(30), || !pid_alive(first_pid));
        let _ = std::fs::remove_file(&fail_file);
        old_gone
    });
    let mut responses = Vec::new();
    let restarted = wait_until(Duration::from_secs(40), || {
        let response = get(proxy.addr(), ECHO_HOST, "/during-restart");
        let new_instance = response.status == 200 && echo_pid(&response) != first_pid;
        responses.push(response);
        new_instance
    });
    assert!(
        healer.join().unwrap(),
        "the unhealthy instance was never stopped"
    );
    assert!(restarted, "no new instance answered within 40 s");
    let refused = responses.iter().filter(|r| r.status != 200).count();
    eprintln!(
        "{} requests during the restart, {refused} refused",
        responses.len()
    );
    for response in &responses {
        if response.status != 200 {
            assert_proxy_error(response, "BACKEND_UNHEALTHY", 503);
        }
    }
    assert_eq!(
        slow.join().unwrap().status,
        200,
        "the in-flight request survived the restart's drain"
    );
}

/// The backend ignores SIGTERM, so its idle stop lasts the whole grace period; a request arriving then is
/// held and served by a fresh instance once the stop completes.
#[test]
fn a_request_during_an_idle_stop_is_held_and_starts_the_backend_again() {
    let proxy = Proxy::start(&shell_backend(
        ECHO_HOST,
        free_port(),
        "trap '' TERM; exec \"$ECHO_BIN\"",
        "idle_timeout_secs = 1\nshutdown_grace_period_secs = 2",
        &[],
    ));
    let first_pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    proxy.wait_for_state(ECHO_HOST, "stopping", Duration::from_secs(10));
    let response = get(proxy.addr(), ECHO_HOST, "/during-idle-stop");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_ne!(echo_pid(&response), first_pid, "served by a new instance");
    assert!(!pid_alive(first_pid));
}
