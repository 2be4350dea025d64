//! HTTP/1 and h2c answer alike around a reload, through the real binary with real backends: a backend
//! backing off stays backed off after a reload that changes nothing; an added backend is reached; a
//! removed one is refused while it drains and unknown once gone; a changed one is reached at its new
//! settings from its next start.
//!
//! Every h2c request goes on a fresh connection (see `h2c_answer`), so it sees everything the admin API
//! showed before it was made.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::ws::{wait_in_flight, ws_close_cleanly, ws_connect, ws_pid};
use support::*;

/// Generous for a loaded 2-core machine: every wait below ends as soon as its event happens.
const DEADLINE: Duration = Duration::from_secs(30);
/// How long the proxy gets to drain and stop everything on SIGTERM at the end of a test.
const SHUTDOWN: Duration = Duration::from_secs(20);

/// An echo backend for `host` on `port` that appends its pid to `start_log` on every start.
fn logged_echo(host: &str, port: u16, start_log: &Path, env: &[(&str, &str)]) -> String {
    let mut all_env = vec![("ECHO_START_LOG", start_log.to_str().unwrap())];
    all_env.extend_from_slice(env);
    echo_backend(host, port, "", &all_env)
}

/// `POST /reload` succeeded with these added/removed/updated counts.
fn assert_reloaded(proxy: &Proxy, added: u64, removed: u64, updated: u64) {
    let response = proxy.post_reload();
    assert_eq!(response.status, 200, "{}", response.text());
    let outcome = response.json();
    assert_eq!(
        (&outcome["added"], &outcome["removed"], &outcome["updated"]),
        (
            &serde_json::json!(added),
            &serde_json::json!(removed),
            &serde_json::json!(updated)
        ),
        "{outcome}"
    );
}

/// Both protocols reach the same running echo instance; returns its pid.
fn assert_both_reach_one_instance(proxy: &Proxy, host: &str) -> u32 {
    let (http1, h2c) = both(proxy, host, "/parity");
    assert_alike(&http1, &h2c);
    let pid = assert_echoed(&http1, "/parity");
    assert_eq!(
        assert_echoed(&h2c, "/parity"),
        pid,
        "HTTP/1.1 and h2c reached different instances of {host}"
    );
    pid
}

// --- 1. a backend backing off, and a reload that changes nothing ---------------------------------------

/// The back-off the crash-loop test drives the backend into: starts double from 1 s, so reaching 8 s
/// takes 1 + 2 + 4 s of waiting, and leaves ample time for a reload and the requests that follow.
const BACKOFF_SECS: u64 = 8;

/// Asks (over HTTP/1) until a request is refused with a `Retry-After` of at least `secs`; each request
/// allowed through spawns the backend, which fails and lengthens the back-off. Returns a moment before
/// which starts are surely still suspended.
fn back_off_for_at_least(proxy: &Proxy, host: &str, secs: u64) -> Instant {
    let mut suspended_until = None;
    let reached = wait_until(DEADLINE, || {
        let answer = http1_answer(proxy.addr(), host, "/");
        assert_eq!(
            (answer.status, answer.error.as_deref()),
            (503, Some("BACKEND_START_FAILED")),
            "{answer:?}"
        );
        let retry_after: u64 = match &answer.retry_after {
            Some(value) => value.parse().expect("Retry-After in seconds"),
            None => return false,
        };
        // Rounded up: more than `retry_after - 1` s of the suspension are left.
        suspended_until = Some(Instant::now() + Duration::from_secs(retry_after - 1));
        retry_after >= secs
    });
    assert!(
        reached,
        "{host} was not backing off for {secs} s within {DEADLINE:?}"
    );
    suspended_until.unwrap()
}

/// The debug line a protocol front logs when it asks the supervisor to start `host`.
fn asked_to_start(proxy: &Proxy, host: &str) -> (usize, usize) {
    let http1 = format!("{host}: starting on demand");
    let h2c = format!("{host}: starting on demand (h2)");
    (
        proxy.count_log(|line| line.ends_with(&http1)),
        proxy.count_log(|line| line.ends_with(&h2c)),
    )
}

/// One HTTP/1.1 and one h2c request while starts are suspended: both are refused at once with 503
/// BACKEND_START_FAILED and `Retry-After`, by what that protocol knows of the back-off: neither asks the
/// supervisor for a start, and nothing is spawned.
///
/// The supervisor keeps a crash record of its own and refuses a start it is asked for while suspended,
/// so the answer alone cannot show a front that forgot the back-off; the `Command::Start` such a front
/// sends (logged at debug, and answered by one more "keeps failing" warning per request) does.
fn assert_both_backing_off(proxy: &Proxy, host: &str, start_log: &Path, when: &str) {
    let spawned = start_log_pids(start_log).len();
    proxy.log_barrier();
    let (http1_asked, h2c_asked) = asked_to_start(proxy, host);

    let (http1, h2c) = both(proxy, host, "/");
    assert_refused(&http1, "BACKEND_START_FAILED", 503, true);
    assert_refused(&h2c, "BACKEND_START_FAILED", 503, true);
    assert_alike(&http1, &h2c);

    proxy.log_barrier();
    let (http1_now, h2c_now) = asked_to_start(proxy, host);
    assert_eq!(
        http1_now, http1_asked,
        "{when}: the HTTP/1.1 request asked the supervisor to start {host} while starts are suspended"
    );
    assert_eq!(
        h2c_now, h2c_asked,
        "{when}: the h2c request asked the supervisor to start {host} while starts are suspended: \
         the h2 worker's view of {host} no longer knows about the back-off (the supervisor refused \
         the start in its place)"
    );
    assert_eq!(
        start_log_pids(start_log).len(),
        spawned,
        "{when}: {host} was spawned while backing off"
    );
}

#[test]
fn a_reload_that_changes_nothing_keeps_a_backing_off_backend_refused_on_both_protocols() {
    let dir = TempDir::new("parity-backoff");
    let start_log = dir.file("starts.log");
    let config = logged_echo(
        ECHO_HOST,
        free_port(),
        &start_log,
        &[("ECHO_EXIT_AT_START", "3")],
    );
    let proxy = Proxy::start(&config);
    let suspended_until = back_off_for_at_least(&proxy, ECHO_HOST, BACKOFF_SECS);
    assert!(
        start_log_pids(&start_log).len() >= 5,
        "backing off before five failed starts: {:?}",
        start_log_pids(&start_log)
    );
    assert_both_backing_off(&proxy, ECHO_HOST, &start_log, "before the reload");

    proxy.rewrite_config(&config);
    assert_reloaded(&proxy, 0, 0, 0);
    assert_both_backing_off(
        &proxy,
        ECHO_HOST,
        &start_log,
        "after a reload that changed nothing",
    );
    assert!(
        Instant::now() < suspended_until,
        "inconclusive: the test took longer than the {BACKOFF_SECS} s back-off it relies on"
    );
    proxy.shut_down_leaving_nothing(SHUTDOWN);
}

// --- 2. a reload adds backends ---------------------------------------------------------------------------

#[test]
fn a_backend_added_by_a_reload_is_reached_over_both_protocols() {
    let dir = TempDir::new("parity-added");
    let (first_log, second_log) = (dir.file("first.log"), dir.file("second.log"));
    let kept = echo_backend("kept.test", free_port(), "", &[]);
    let proxy = Proxy::start(&kept);
    let (http1, h2c) = both(&proxy, "first.test", "/");
    assert_refused(&http1, "UNKNOWN_HOST", 404, false);
    assert_refused(&h2c, "UNKNOWN_HOST", 404, false);
    assert_alike(&http1, &h2c);

    proxy.rewrite_config(&format!(
        "{kept}{}{}",
        logged_echo("first.test", free_port(), &first_log, &[]),
        logged_echo("second.test", free_port(), &second_log, &[]),
    ));
    assert_reloaded(&proxy, 2, 0, 0);

    // HTTP/1.1 starts the first one, h2c finds it ready.
    let first = assert_both_reach_one_instance(&proxy, "first.test");
    assert_eq!(start_log_pids(&first_log), vec![first]);

    // h2c starts the second one, HTTP/1.1 finds it ready.
    let h2c = h2c_answer(proxy.addr(), "second.test", "/parity");
    let http1 = http1_answer(proxy.addr(), "second.test", "/parity");
    assert_alike(&http1, &h2c);
    let second = assert_echoed(&h2c, "/parity");
    assert_eq!(assert_echoed(&http1, "/parity"), second);
    assert_eq!(start_log_pids(&second_log), vec![second]);
    assert_ne!(first, second);
    proxy.shut_down_leaving_nothing(SHUTDOWN);
}

// --- 3. a reload removes backends ------------------------------------------------------------------------

#[test]
fn a_removed_backend_that_never_started_is_an_unknown_host_on_both_protocols() {
    let dir = TempDir::new("parity-removed-cold");
    let start_log = dir.file("starts.log");
    let kept = echo_backend("kept.test", free_port(), "", &[]);
    let proxy = Proxy::start(&format!(
        "{kept}{}",
        logged_echo("gone.test", free_port(), &start_log, &[])
    ));
    assert_eq!(proxy.state_of("gone.test"), "stopped");

    proxy.rewrite_config(&kept);
    assert_reloaded(&proxy, 0, 1, 0);
    assert!(!proxy.has_backend("gone.test"), "{}", proxy.backends());
    let (http1, h2c) = both(&proxy, "gone.test", "/");
    assert_refused(&http1, "UNKNOWN_HOST", 404, false);
    assert_refused(&h2c, "UNKNOWN_HOST", 404, false);
    assert_alike(&http1, &h2c);
    assert!(
        start_log_pids(&start_log).is_empty(),
        "a removed backend was started"
    );
    proxy.shut_down_leaving_nothing(SHUTDOWN);
}

#[test]
fn a_removed_running_backend_is_shutting_down_while_it_drains_and_unknown_once_stopped() {
    let kept = echo_backend("kept.test", free_port(), "", &[]);
    let proxy = Proxy::start(&format!(
        "{kept}{}",
        echo_backend("gone.test", free_port(), "", &[])
    ));
    let pid = assert_both_reach_one_instance(&proxy, "gone.test");
    // An open WebSocket is in flight until this test closes it: the drain waits for it.
    let (ws, handshake) = ws_connect(proxy.addr(), "gone.test", "/ws");
    assert_eq!(ws_pid(&handshake), pid);
    wait_in_flight(&proxy, "gone.test", 1);

    proxy.rewrite_config(&kept);
    assert_reloaded(&proxy, 0, 1, 0);
    proxy.wait_for_state("gone.test", "stopping", DEADLINE);
    let (http1, h2c) = both(&proxy, "gone.test", "/");
    assert_refused(&http1, "BACKEND_SHUTTING_DOWN", 503, false);
    assert_refused(&h2c, "BACKEND_SHUTTING_DOWN", 503, false);
    assert_alike(&http1, &h2c);
    assert_eq!(
        proxy.state_of("gone.test"),
        "stopping",
        "still draining the WebSocket"
    );
    assert!(pid_alive(pid), "stopped before its drain ended");

    ws_close_cleanly(ws);
    assert!(
        wait_until(DEADLINE, || !proxy.has_backend("gone.test")),
        "gone.test still listed {DEADLINE:?} after its drain ended: {}",
        proxy.backends()
    );
    assert!(
        wait_until(DEADLINE, || !pid_alive(pid)),
        "the removed backend {pid} outlived its stop"
    );
    let (http1, h2c) = both(&proxy, "gone.test", "/");
    assert_refused(&http1, "UNKNOWN_HOST", 404, false);
    assert_refused(&h2c, "UNKNOWN_HOST", 404, false);
    assert_alike(&http1, &h2c);
    assert_both_reach_one_instance(&proxy, "kept.test");
    proxy.shut_down_leaving_nothing(SHUTDOWN);
}

// --- 4. a reload changes a backend -----------------------------------------------------------------------

/// Ends the running instance of `host` (it crashes), so that the next request starts a new one: the
/// "next start" at once, instead of after an idle timeout that would race the checks made before it.
fn crash(proxy: &Proxy, host: &str, pid: u32) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(DEADLINE, || !pid_alive(pid)),
        "{pid} survived SIGKILL"
    );
    proxy.wait_for_state(host, "stopped", DEADLINE);
}

/// The instance at `pid` is the one started with `port` and `start_log`: it logged its start there and
/// answers on that port directly.
fn assert_started_with(proxy: &Proxy, host: &str, pid: u32, port: u16, start_log: &Path) {
    assert_eq!(
        start_log_pids(start_log),
        vec![pid],
        "started with the new env"
    );
    assert_eq!(proxy.backend(host)["port"], port, "{}", proxy.backend(host));
    let direct = get(
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        host,
        "/",
    );
    assert_eq!(
        echo_pid(&direct),
        pid,
        "the new instance listens on port {port}"
    );
}

/// A backend answering over both protocols gets a new port and a new env by a reload; its running
/// instance keeps serving both until it crashes; then one request over `first` starts it again and
/// the other protocol follows. Both must reach the new instance, started with the new settings.
fn next_start_after_a_change(first: &str) {
    let dir = TempDir::new("parity-changed");
    let (old_log, new_log) = (dir.file("old.log"), dir.file("new.log"));
    let (old_port, new_port) = (free_port(), free_port());
    let proxy = Proxy::start(&logged_echo(ECHO_HOST, old_port, &old_log, &[]));
    let old = assert_both_reach_one_instance(&proxy, ECHO_HOST);
    assert_started_with(&proxy, ECHO_HOST, old, old_port, &old_log);

    proxy.rewrite_config(&logged_echo(ECHO_HOST, new_port, &new_log, &[]));
    assert_reloaded(&proxy, 0, 0, 1);
    assert_eq!(
        assert_both_reach_one_instance(&proxy, ECHO_HOST),
        old,
        "a reload must not replace a running instance"
    );

    crash(&proxy, ECHO_HOST, old);
    let (http1, h2c) = match first {
        "HTTP/1.1" => {
            let http1 = http1_answer(proxy.addr(), ECHO_HOST, "/parity");
            (http1, h2c_answer(proxy.addr(), ECHO_HOST, "/parity"))
        }
        "h2c" => {
            let h2c = h2c_answer(proxy.addr(), ECHO_HOST, "/parity");
            (http1_answer(proxy.addr(), ECHO_HOST, "/parity"), h2c)
        }
        other => panic!("no protocol {other}"),
    };
    assert_alike(&http1, &h2c);
    let new = assert_echoed(&http1, "/parity");
    assert_eq!(assert_echoed(&h2c, "/parity"), new, "one instance");
    assert_ne!(new, old);
    assert_started_with(&proxy, ECHO_HOST, new, new_port, &new_log);
    proxy.shut_down_leaving_nothing(SHUTDOWN);
}

#[test]
fn a_changed_backend_started_again_over_http1_is_reached_at_its_new_port_over_both_protocols() {
    next_start_after_a_change("HTTP/1.1");
}

#[test]
fn a_changed_backend_started_again_over_h2c_is_reached_at_its_new_port_over_both_protocols() {
    next_start_after_a_change("h2c");
}
