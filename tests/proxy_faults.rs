//! Faults through the real binary: crash-loop back-off, a backend ignoring SIGTERM (with a grandchild), a
//! SIGKILLed proxy, zombies, a port taken by another program, and the cold-start probe cadence.

mod support;

use std::io::ErrorKind;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::*;

/// Every child of the proxy that exited has been reaped.
fn assert_no_zombies(proxy: &Proxy) {
    assert!(
        wait_until(Duration::from_secs(5), || zombies_of(proxy.pid())
            .is_empty()),
        "zombie children of the proxy: {:?}",
        zombies_of(proxy.pid())
    );
}

/// A request that the proxy refuses at once because starts are suspended; returns its Retry-After.
fn assert_backing_off(proxy: &Proxy) -> u64 {
    let asked = Instant::now();
    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "a refusal while backing off took {:?}",
        asked.elapsed()
    );
    let retry_after = response
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", response.headers));
    assert!(
        response.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("status 3")),
        "the refusal should say what keeps failing: {}",
        response.text()
    );
    retry_after
}

#[test]
fn a_crash_loop_is_refused_with_retry_after_instead_of_a_spawn_per_request() {
    let dir = TempDir::new("crash-loop");
    let start_log = dir.file("starts.log");
    let proxy = proxy_with_echo(
        "",
        &[
            ("ECHO_EXIT_AT_START", "3"),
            ("ECHO_START_LOG", start_log.to_str().unwrap()),
        ],
    );
    let began = Instant::now();
    for attempt in 1..=5 {
        let response = get(proxy.addr(), ECHO_HOST, "/");
        assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
        assert_eq!(start_log_pids(&start_log).len(), attempt);
    }
    assert!(
        began.elapsed() < Duration::from_secs(8),
        "five quick failures took {:?}; the window would not see a loop",
        began.elapsed()
    );

    // The sixth request is refused without a spawn, and says when to come back.
    assert_eq!(assert_backing_off(&proxy), 1);
    assert_eq!(
        start_log_pids(&start_log).len(),
        5,
        "spawned while backing off"
    );
    let suspended_at = Instant::now();

    // Once the second has passed, one start is allowed; it fails and the next pause is twice as long.
    assert!(wait_until(Duration::from_secs(5), || {
        let response = get(proxy.addr(), ECHO_HOST, "/");
        response.header("retry-after").is_none()
    }));
    assert!(
        suspended_at.elapsed() >= Duration::from_millis(500),
        "starts resumed {:?} into a 1 s back-off",
        suspended_at.elapsed()
    );
    assert_eq!(start_log_pids(&start_log).len(), 6);
    assert_eq!(assert_backing_off(&proxy), 2);
    assert_eq!(start_log_pids(&start_log).len(), 6);
    assert_no_zombies(&proxy);
    assert!(proxy.logs("keeps failing"));
}

/// `sh` starts a `sleep` in the background and then becomes the echo backend, so the sleep is a
/// grandchild of the proxy; both ignore SIGTERM.
const STUBBORN_WITH_GRANDCHILD: &str = "trap '' TERM; sleep 600 & exec \"$ECHO_BIN\"";

#[test]
fn a_backend_ignoring_sigterm_is_killed_with_its_grandchild_after_the_grace_period() {
    let proxy = Proxy::start(&shell_backend(
        ECHO_HOST,
        free_port(),
        STUBBORN_WITH_GRANDCHILD,
        "idle_timeout_secs = 1\nshutdown_grace_period_secs = 1",
        &[],
    ));
    let pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    let grandchildren = descendants_of(pid);
    assert_eq!(grandchildren.len(), 1, "expected the background sleep");

    proxy.wait_for_state(ECHO_HOST, "stopping", Duration::from_secs(10));
    let stopping_at = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(pid)),
        "the backend outlived its grace period"
    );
    let took = stopping_at.elapsed();
    assert!(
        took >= Duration::from_millis(700),
        "killed after {took:?}, before its 1 s grace period"
    );
    assert!(
        wait_until(Duration::from_secs(5), || !pid_alive(grandchildren[0])),
        "the grandchild survived the kill of the process group"
    );
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(5));
    assert!(
        proxy.logs("signal SIGKILL"),
        "the exit should say how it ended"
    );
    assert_no_zombies(&proxy);
}

#[test]
fn no_backend_outlives_a_sigkilled_proxy_by_two_seconds() {
    let mut proxy = Proxy::start(&format!(
        "{}{}",
        echo_backend(ECHO_HOST, free_port(), "", &[]),
        shell_backend(
            "stubborn.test",
            free_port(),
            "trap '' TERM; exec \"$ECHO_BIN\"",
            "",
            &[]
        )
    ));
    let pids = [
        echo_pid(&get(proxy.addr(), ECHO_HOST, "/")),
        echo_pid(&get(proxy.addr(), "stubborn.test", "/")),
    ];
    proxy.signal(Signal::SIGKILL);
    proxy.wait_exit(Duration::from_secs(5));
    let killed_at = Instant::now();
    for pid in pids {
        assert!(
            wait_until(
                Duration::from_secs(2).saturating_sub(killed_at.elapsed()),
                || { !pid_alive(pid) }
            ),
            "backend {pid} still alive 2 s after the proxy was killed"
        );
    }
}

/// The backend is a shell that runs the echo server as a child (no `exec`) next to a background
/// `sleep`: both are grandchildren of the proxy, out of reach of the parent-death signal.
const SHELL_WITH_CHILDREN: &str = "sleep 600 & \"$ECHO_BIN\"; echo finished";

#[test]
fn a_sigkilled_proxy_takes_its_backends_grandchildren_with_it() {
    let mut proxy = Proxy::start(&shell_backend(
        ECHO_HOST,
        free_port(),
        SHELL_WITH_CHILDREN,
        "",
        &[],
    ));
    let server = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    let shell = children_of(proxy.pid())
        .into_iter()
        .find(|&pid| descendants_of(pid).contains(&server))
        .expect("the backend shell is a child of the proxy");
    let grandchildren = descendants_of(shell);
    assert_eq!(
        grandchildren.len(),
        2,
        "expected the server and the sleep: {grandchildren:?}"
    );

    proxy.signal(Signal::SIGKILL);
    proxy.wait_exit(Duration::from_secs(5));
    for pid in grandchildren {
        assert!(
            wait_until(Duration::from_secs(2), || !pid_alive(pid)),
            "grandchild {pid} still alive 2 s after the proxy was killed"
        );
    }
}

#[test]
fn crashed_and_stopped_backends_leave_no_zombies() {
    let proxy = proxy_with_echo("idle_timeout_secs = 1", &[]);
    // A crash while ready...
    let pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(5));
    assert_no_zombies(&proxy);
    // ...a start after it, then a stop for idleness.
    let second = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    assert_ne!(second, pid);
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(10));
    assert!(!pid_alive(second));
    assert_no_zombies(&proxy);
    assert!(backend_children_of(proxy.pid()).is_empty());
}

#[test]
fn a_port_taken_by_another_program_fails_the_start_and_the_stranger_gets_nothing() {
    let stranger = TcpListener::bind("127.0.0.1:0").unwrap();
    stranger.set_nonblocking(true).unwrap();
    let port = stranger.local_addr().unwrap().port();
    let dir = TempDir::new("port-taken");
    let start_log = dir.file("starts.log");
    let proxy = Proxy::start(&echo_backend(
        ECHO_HOST,
        port,
        "",
        &[("ECHO_START_LOG", start_log.to_str().unwrap())],
    ));

    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
    let message = response.json()["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        message.contains(&port.to_string()),
        "the error should name port {port}: {message}"
    );
    assert!(
        start_log_pids(&start_log).is_empty(),
        "spawned onto a taken port"
    );
    match stranger.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the stranger on port {port} got a connection from {peer}"),
        Err(e) => panic!("accept on the stranger's port: {e}"),
    }

    // Once the stranger leaves, the backend starts on its port.
    drop(stranger);
    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn a_cold_start_is_seen_soon_after_the_backend_listens() {
    // With probes every second the old cadence found a backend that listens after 1.2 s at 2 s.
    let proxy = proxy_with_echo(
        "health_check_interval_ms = 1000",
        &[("ECHO_START_DELAY_MS", "1200")],
    );
    let asked = Instant::now();
    let response = get(proxy.addr(), ECHO_HOST, "/");
    let took = asked.elapsed();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        took >= Duration::from_millis(1200) && took < Duration::from_millis(1900),
        "a backend listening after 1.2 s answered after {took:?}"
    );
}
