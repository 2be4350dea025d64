//! Cold starts with socket activation and readiness notification, seen from outside with real processes:
//! an activated backend is routed to from its spawn and answers the moment it accepts; `READY=1` routes
//! to a backend before its health path answers; `STATUS=` shows in `/backends`; a program that dies
//! before it is ready fails its start fast. Each over HTTP/1 and h2c.

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use support::cold::{backends_per_protocol, now_micros, protocols, read_micros};
use support::*;

/// How long an activated echo backend sleeps before its first `accept`.
const ACCEPT_DELAY_MS: u64 = 1000;

/// A `{protocol}.test` echo backend for each protocol, with the same keys and environment.
fn one_backend_per_protocol(keys: &str, env: &[(&str, &str)]) -> String {
    protocols()
        .iter()
        .map(|(name, _)| echo_backend(&format!("{name}.test"), free_port(), keys, env))
        .collect()
}

#[test]
fn an_activated_backend_answers_its_first_request_the_moment_it_accepts() {
    let dir = TempDir::new("activation");
    // A long health interval: no probe schedule can be what lets the request through.
    let keys = "socket_activation = true\nhealth_check_interval_ms = 1000";
    let delay = ACCEPT_DELAY_MS.to_string();
    let config = backends_per_protocol(keys, |name| {
        let log = dir.file(&format!("{name}.accept"));
        vec![
            ("ECHO_ACCEPT_DELAY_MS", delay.clone()),
            (
                "ECHO_ACCEPT_LOG",
                log.to_str().expect("utf-8 path").to_string(),
            ),
        ]
    });
    let proxy = Proxy::start(&config);
    for (name, ask) in protocols() {
        let host = format!("{name}.test");
        let sent = now_micros();
        let answer = ask(proxy.addr(), &host, "/first");
        let answered = now_micros();
        // Not refused, not retried: one answer from the backend, after it waited in the backlog.
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
        answer.pid();
        let accepted = read_micros(&dir.file(&format!("{name}.accept")));
        assert!(
            accepted > sent,
            "{name}: the request was sent before the backend accepted anything"
        );
        let waited = Duration::from_micros((accepted - sent) as u64);
        let added = Duration::from_micros(answered.saturating_sub(accepted) as u64);
        eprintln!("{name}: waited {waited:?} in the backlog, answered {added:?} after accept");
        assert!(
            waited >= Duration::from_millis(ACCEPT_DELAY_MS / 2),
            "{name}: the backend accepted after only {waited:?}"
        );
        assert!(
            added < Duration::from_millis(50),
            "{name}: answered {added:?} after the backend accepted"
        );
    }
    assert!(proxy.wait_for_log("started on its listener", Duration::from_secs(10)));
}

#[test]
fn ready_1_routes_to_a_backend_before_its_health_path_answers_and_status_shows() {
    // The health path fails for a minute; only READY=1 can make these ready within the test.
    let keys = "startup_timeout_secs = 120";
    let env = [
        ("ECHO_NOTIFY", "1"),
        ("ECHO_STATUS", "warming the cache"),
        ("ECHO_HEALTH_DELAY_MS", "60000"),
    ];
    let config = one_backend_per_protocol(keys, &env);
    let proxy = Proxy::start(&config);
    for (name, ask) in protocols() {
        let host = format!("{name}.test");
        let started = Instant::now();
        let answer = ask(proxy.addr(), &host, "/first");
        assert_eq!(answer.status, 200, "{name}: {answer:?}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: took {:?}",
            started.elapsed()
        );
        // Its health path still says no: READY=1 is what let the request in.
        let health = ask(proxy.addr(), &host, "/health");
        assert_eq!(health.status, 503, "{name}: {health:?}");
        let row = proxy.backend(&host);
        assert_eq!(row["state"], "ready", "{row}");
        assert_eq!(row["status"], "warming the cache", "{row}");
    }
}

#[test]
fn a_backend_that_exits_before_it_is_ready_fails_its_start_fast() {
    // Socket activated, so already routable: the exit must still end the start at once.
    let keys = "socket_activation = true\nstartup_timeout_secs = 120";
    let env = [("ECHO_NOTIFY", "1"), ("ECHO_EXIT_AT_START", "3")];
    let config = one_backend_per_protocol(keys, &env);
    let proxy = Proxy::start(&config);
    for (name, ask) in protocols() {
        let host = format!("{name}.test");
        let started = Instant::now();
        let answer = ask(proxy.addr(), &host, "/first");
        let took = started.elapsed();
        assert!(
            answer.status == 502 || answer.status == 503,
            "{name}: {answer:?}"
        );
        // Already forwarded to the listener's backlog, the request ends when the listener is closed
        // after the exit: the proxy's 502, not a wait for the startup timeout.
        assert!(answer.error.is_some(), "{name}: {answer:?}");
        assert!(took < Duration::from_secs(10), "{name}: took {took:?}");
        proxy.wait_for_state(&host, "stopped", Duration::from_secs(10));
    }
    assert!(proxy.wait_for_log(
        "exited before becoming ready, with status 3",
        Duration::from_secs(10)
    ));
}

#[test]
fn an_activated_backend_on_a_port_another_program_holds_fails_at_once() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port();
    let proxy = Proxy::start(&echo_backend(
        ECHO_HOST,
        port,
        "socket_activation = true",
        &[],
    ));
    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_proxy_error(&response, "BACKEND_START_FAILED", 503);
    let said = format!("port {port} is already in use by another program");
    assert!(proxy.wait_for_log(&said, Duration::from_secs(10)));
}

#[test]
fn a_watchdog_that_goes_quiet_restarts_the_backend() {
    let dir = TempDir::new("watchdog");
    let starts = dir.file("starts");
    // The echo feeds the watchdog only with ECHO_NOTIFY; this one is ready by its health path and
    // never pings, so it is restarted once watchdog_secs pass.
    let keys = "watchdog_secs = 1";
    let env = [("ECHO_START_LOG", starts.to_str().expect("utf-8 path"))];
    let fed_env = [
        ("ECHO_NOTIFY", "1"),
        ("ECHO_START_LOG", starts.to_str().expect("utf-8 path")),
    ];
    let config = format!(
        "{}{}",
        echo_backend("quiet.test", free_port(), keys, &env),
        echo_backend("fed.test", free_port(), keys, &fed_env)
    );
    let proxy = Proxy::start(&config);
    let first = http1_answer(proxy.addr(), "fed.test", "/").pid();
    assert_eq!(http1_answer(proxy.addr(), "quiet.test", "/").status, 200);
    // Restarted by itself, and found quiet again: two watchdog periods have passed since.
    let quiet_twice = wait_until(Duration::from_secs(30), || {
        let lines = proxy.log_lines();
        lines
            .iter()
            .filter(|l| l.contains("quiet.test: unhealthy"))
            .count()
            >= 2
    });
    assert!(quiet_twice, "{:?}", proxy.log_lines());
    // The fed one has seen as many watchdog periods pass, and is the same process.
    assert!(!proxy.log_contains("fed.test: unhealthy"));
    assert_eq!(http1_answer(proxy.addr(), "fed.test", "/").pid(), first);
}

#[test]
fn stopping_1_stops_the_backend_and_the_next_request_starts_it_again() {
    // A long idle timeout: only STOPPING=1 can be what stops it.
    let keys = "idle_timeout_secs = 3600";
    let env = [("ECHO_STOPPING_AFTER_MS", "300")];
    let proxy = Proxy::start(&echo_backend(ECHO_HOST, free_port(), keys, &env));
    let first = http1_answer(proxy.addr(), ECHO_HOST, "/").pid();
    assert!(
        proxy.wait_for_log("stopping (Announced)", Duration::from_secs(20)),
        "{:?}",
        proxy.log_lines()
    );
    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(20));
    // Started again on demand, over either protocol.
    let again = h2c_answer(proxy.addr(), ECHO_HOST, "/").pid();
    assert_ne!(again, first);
}
