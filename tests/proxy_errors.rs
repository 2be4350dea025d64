//! Every error code in the contract, each produced deterministically and checked for status,
//! `X-Proxy-Error` and the JSON body.

mod support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn a_request_without_host_is_400_missing_host_header() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = send(proxy.addr(), b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n");
    assert_proxy_error(&client.read_response(), "MISSING_HOST_HEADER", 400);

    let mut client = send(proxy.addr(), b"GET / HTTP/1.0\r\n\r\n");
    assert_proxy_error(&client.read_response(), "MISSING_HOST_HEADER", 400);
}

#[test]
fn an_unknown_host_is_404_unknown_host() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let response = client.get("nobody.test", "/");
    assert_proxy_error(&response, "UNKNOWN_HOST", 404);
    assert!(response
        .header("x-request-id")
        .is_some_and(|id| !id.is_empty()));
    // The routing error does not cost the client its connection.
    assert_eq!(client.get(ECHO_HOST, "/").status, 200);
}

#[test]
fn a_backend_that_exits_at_start_fails_fast_with_503() {
    let dir = TempDir::new("exit-at-start");
    let start_log = dir.file("starts.log");
    let proxy = proxy_with_echo(
        "startup_timeout_secs = 30",
        &[
            ("ECHO_EXIT_AT_START", "3"),
            ("ECHO_START_LOG", start_log.to_str().unwrap()),
        ],
    );
    let started = Instant::now();
    let response = get(proxy.addr(), ECHO_HOST, "/");
    let took = started.elapsed();
    assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
    assert!(
        took < Duration::from_secs(3),
        "an exit at start took {took:?} to report"
    );
    assert_eq!(start_log_pids(&start_log).len(), 1);

    // The next request tries again rather than remembering the failure forever.
    assert_proxy_error(
        &get(proxy.addr(), ECHO_HOST, "/"),
        "BACKEND_START_FAILED",
        503,
    );
    assert_eq!(start_log_pids(&start_log).len(), 2);
    assert!(
        wait_until(Duration::from_secs(5), || zombies_of(proxy.pid())
            .is_empty()),
        "exited backends are reaped"
    );
}

#[test]
fn a_backend_that_never_becomes_healthy_fails_after_the_startup_timeout_and_is_killed() {
    let dir = TempDir::new("never-healthy");
    let start_log = dir.file("starts.log");
    let proxy = proxy_with_echo(
        "startup_timeout_secs = 1",
        &[
            ("ECHO_NEVER_HEALTHY", "1"),
            ("ECHO_START_LOG", start_log.to_str().unwrap()),
        ],
    );
    let started = Instant::now();
    let response = get(proxy.addr(), ECHO_HOST, "/");
    let took = started.elapsed();
    assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(6),
        "startup timeout of 1 s reported after {took:?}"
    );
    let pids = start_log_pids(&start_log);
    assert_eq!(pids.len(), 1);
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(pids[0])),
        "the backend that timed out is still running"
    );
    assert!(wait_until(Duration::from_secs(5), || zombies_of(
        proxy.pid()
    )
    .is_empty()));
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(5));
}

#[test]
fn a_slow_backend_is_504_request_timeout() {
    let proxy = proxy_with_echo("request_timeout_secs = 1", &[]);
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/warmup").status, 200);
    let started = Instant::now();
    let response = get(proxy.addr(), ECHO_HOST, "/slow?ms=5000");
    let took = started.elapsed();
    assert_proxy_error(&response, "REQUEST_TIMEOUT", 504);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(4500),
        "request timeout of 1 s reported after {took:?}"
    );
    // The timed-out upstream connection must not be handed to the next request.
    let mut client = proxy.client();
    for i in 0..3 {
        let response = client.get(ECHO_HOST, &format!("/after/{i}"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.json()["path"], format!("/after/{i}"));
    }
}

/// The backend announces itself through the ready callback but listens on a different port than the
/// configured one, so the proxy believes it is ready and every connect to the configured port is refused.
#[test]
fn a_ready_backend_that_refuses_connections_is_502_connection_failed() {
    let other_port = free_port().to_string();
    let proxy = Proxy::start(&shell_backend(
        ECHO_HOST,
        free_port(),
        &format!("exec \"$ECHO_BIN\" --port {other_port}"),
        "",
        &[("ECHO_READY_CALLBACK", "1")],
    ));
    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_proxy_error(&response, "CONNECTION_FAILED", 502);
}

#[test]
fn a_request_for_a_backend_removed_by_reload_is_503_backend_shutting_down() {
    let echo_port = free_port();
    let other = echo_backend("other.test", free_port(), "", &[]);
    let proxy = Proxy::start(&format!(
        "{}{}",
        echo_backend(ECHO_HOST, echo_port, "", &[]),
        other
    ));
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/warmup").status, 200);

    // An in-flight request keeps the removed backend draining long enough to be observed.
    let addr = proxy.addr();
    let slow = std::thread::spawn(move || get(addr, ECHO_HOST, "/slow?ms=4000"));
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 1));

    proxy.rewrite_config(&other);
    proxy.signal(Signal::SIGHUP);
    let mut last = None;
    let changed = wait_until(Duration::from_secs(5), || {
        let response = get(proxy.addr(), ECHO_HOST, "/during-removal");
        let done = response.status != 200;
        last = Some(response);
        done
    });
    assert!(
        changed,
        "requests still forwarded 5 s after the backend was removed"
    );
    assert_proxy_error(&last.unwrap(), "BACKEND_SHUTTING_DOWN", 503);

    let slow = slow.join().unwrap();
    assert_eq!(
        slow.status, 200,
        "the in-flight request was drained, not cut"
    );
    assert!(wait_until(Duration::from_secs(10), || get(
        proxy.addr(),
        ECHO_HOST,
        "/"
    )
    .status
        == 404));
    assert_eq!(get(proxy.addr(), "other.test", "/").status, 200);
}

/// A request that arrives while SIGTERM drains the proxy: pipelined behind a slow request, it is read only
/// after that request finishes, which is after the signal.
#[test]
fn a_request_during_shutdown_drain_is_503_backend_shutting_down() {
    let mut proxy = proxy_with_echo("", &[]);
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/warmup").status, 200);
    let mut client = proxy.client();
    let mut raw = build_request("GET", ECHO_HOST, "/slow?ms=3000", &[], b"");
    raw.extend(build_request("GET", ECHO_HOST, "/after-sigterm", &[], b""));
    client.send(&raw);
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 1));
    proxy.signal(Signal::SIGTERM);

    let slow = client.read_response();
    assert_eq!(
        slow.status, 200,
        "the in-flight request completes during the drain"
    );
    if let Ok(next) = client.try_read_response() {
        assert_proxy_error(&next, "BACKEND_SHUTTING_DOWN", 503);
    } else {
        panic!("the request that arrived during the drain got no answer");
    }
    assert!(proxy.wait_exit(Duration::from_secs(15)).success());
}
