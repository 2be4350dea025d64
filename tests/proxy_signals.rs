//! Signals: SIGTERM/SIGINT drain and exit 0 leaving no process behind, SIGKILL of the proxy takes its
//! backends along, SIGHUP reloads the config.

mod support;

use std::time::Duration;

use support::*;

/// A proxy with two backends, both started.
fn proxy_with_two_running_backends(keys: &str) -> (Proxy, Vec<u32>) {
    let proxy = Proxy::start(&format!(
        "{}{}",
        echo_backend(ECHO_HOST, free_port(), keys, &[]),
        echo_backend("other.test", free_port(), keys, &[])
    ));
    let pids = [ECHO_HOST, "other.test"]
        .iter()
        .map(|host| echo_pid(&get(proxy.addr(), host, "/")))
        .collect();
    (proxy, pids)
}

fn assert_gone(pids: &[u32]) {
    for &pid in pids {
        assert!(
            wait_until(Duration::from_secs(5), || !pid_alive(pid)),
            "backend {pid} outlived the proxy"
        );
    }
}

#[test]
fn sigterm_stops_every_backend_and_exits_zero() {
    let (mut proxy, pids) = proxy_with_two_running_backends("");
    proxy.signal(Signal::SIGTERM);
    let status = proxy.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");
    assert_gone(&pids);
}

#[test]
fn sigint_behaves_like_sigterm() {
    let (mut proxy, pids) = proxy_with_two_running_backends("");
    proxy.signal(Signal::SIGINT);
    assert!(proxy.wait_exit(Duration::from_secs(20)).success());
    assert_gone(&pids);
}

#[test]
fn sigterm_waits_for_an_in_flight_request() {
    let mut proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    assert_eq!(client.get(ECHO_HOST, "/").status, 200);
    client.send(&build_request("GET", ECHO_HOST, "/slow?ms=1500", &[], b""));
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 1));
    proxy.signal(Signal::SIGTERM);
    let response = client.read_response();
    assert_eq!(
        response.status, 200,
        "the in-flight request was cut by shutdown"
    );
    assert_eq!(response.body, b"slow done\n");
    assert!(proxy.wait_exit(Duration::from_secs(20)).success());
}

#[test]
fn a_backend_ignoring_sigterm_is_killed_after_the_grace_period() {
    let proxy_config = shell_backend(
        ECHO_HOST,
        free_port(),
        "trap '' TERM; exec \"$ECHO_BIN\"",
        "shutdown_grace_period_secs = 1",
        &[],
    );
    let mut proxy = Proxy::start(&proxy_config);
    let pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    proxy.signal(Signal::SIGTERM);
    let status = proxy.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status}");
    assert_gone(&[pid]);
}

#[test]
fn backends_die_with_a_proxy_killed_by_sigkill() {
    let (mut proxy, pids) = proxy_with_two_running_backends("");
    proxy.signal(Signal::SIGKILL);
    proxy.wait_exit(Duration::from_secs(5));
    assert_gone(&pids);
}

#[test]
fn sighup_adds_routes_and_keeps_running_backends() {
    let echo = echo_backend(ECHO_HOST, free_port(), "", &[]);
    let proxy = Proxy::start(&echo);
    let pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    assert_eq!(get(proxy.addr(), "new.test", "/").status, 404);

    proxy.rewrite_config(&format!(
        "{echo}{}",
        echo_backend("new.test", free_port(), "", &[])
    ));
    proxy.signal(Signal::SIGHUP);
    assert!(
        wait_until(Duration::from_secs(5), || get(
            proxy.addr(),
            "new.test",
            "/"
        )
        .status
            == 200),
        "the added backend is not routed after SIGHUP"
    );
    assert_eq!(
        echo_pid(&get(proxy.addr(), ECHO_HOST, "/")),
        pid,
        "the running backend kept running"
    );
}

#[test]
fn sighup_with_an_invalid_file_keeps_the_running_config() {
    let proxy = proxy_with_echo("", &[]);
    let pid = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    proxy.rewrite_config("[backends.\"broken.test\"]\nport = 0\nno_such_key = 1\n");
    proxy.signal(Signal::SIGHUP);
    assert!(
        proxy.wait_for_log("no_such_key", Duration::from_secs(5)),
        "the rejected reload should log its errors"
    );
    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_eq!(response.status, 200);
    assert_eq!(echo_pid(&response), pid);
    assert_eq!(get(proxy.addr(), "broken.test", "/").status, 404);
}

#[test]
fn the_pid_file_is_written_and_removed_on_exit() {
    let dir = TempDir::new("pid-file");
    let pid_file = dir.file("spawngate.pid");
    let mut proxy = Proxy::start(&format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\npid_file = {}\n\n{}",
        toml_str(pid_file.to_str().unwrap()),
        echo_backend(ECHO_HOST, free_port(), "", &[])
    ));
    assert!(
        wait_until(Duration::from_secs(5), || pid_file.exists()),
        "no pid file"
    );
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), proxy.pid().to_string());
    proxy.signal(Signal::SIGTERM);
    assert!(proxy.wait_exit(Duration::from_secs(20)).success());
    assert!(!pid_file.exists(), "pid file left behind after exit");
}
