//! How a pool's instances are judged ready and alive (`health`), against the real binary: an HTTP
//! check, a connection check that ignores what the program answers, and a process check for workers
//! that serve nothing.

mod support;

use support::pools::*;
use support::routing::{ask_get, Proto};
use support::*;

#[test]
fn a_tcp_check_takes_an_accepted_connection_as_healthy() {
    let (tcp, http) = (free_port(), free_port());
    // The echo's health path answers 503 forever: only a connection check lets it in.
    let config = format!(
        "{}[pools.tcp.env]\nECHO_NEVER_HEALTHY = \"1\"\n\n{}[pools.http.env]\nECHO_NEVER_HEALTHY = \"1\"\n",
        echo_pool("tcp", &format!("port = {tcp}\nhealth = \"tcp\"\nmin_running = 1")),
        echo_pool("http", &format!("port = {http}\nstartup_timeout_secs = 1")),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "tcp", &["ready"]);
    assert_eq!(
        ask_get(proxy.addr(), Proto::Http1, "tcp.test", "/").status,
        200
    );
    assert_eq!(
        ask_get(proxy.addr(), Proto::H2c, "tcp.test", "/").status,
        200
    );
    // The same program under the HTTP check never becomes ready.
    let reply = ask_get(proxy.addr(), Proto::Http1, "http.test", "/");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("x-proxy-error"), Some("BACKEND_START_FAILED"));
}

#[test]
fn a_process_check_is_ready_while_the_worker_runs_and_restarts_it_when_it_dies() {
    let config = "[pools.worker]\ncommand = \"sleep\"\nargs = [\"300\"]\nport = 1\nhealth = \"process\"\nalways_on = true\n";
    let proxy = Proxy::start(config);
    // It listens nowhere (port 1 is privileged): running is all "ready" means here.
    wait_states(&proxy, "worker", &["ready"]);
    let pid = *slot_pids(&proxy, "worker", 0).first().expect("started");
    assert!(pid_alive(pid));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL)
        .expect("kill the worker");
    let restarted = wait_until(WAIT, || {
        slot_pids(&proxy, "worker", 0).len() == 2 && states(&proxy, "worker") == ["ready"]
    });
    assert!(
        restarted,
        "the worker was not restarted: {:?}",
        states(&proxy, "worker")
    );
    proxy.shut_down_leaving_nothing(WAIT);
}

#[test]
fn each_instance_calls_its_own_ready_url() {
    let base = free_ports(2);
    // The health path never answers 2xx: only each instance's call to its ready URL makes it ready.
    let config = format!(
        "{}[pools.called.env]\nECHO_READY_CALLBACK = \"1\"\n",
        echo_pool(
            "called",
            &format!("port = {base}\nreplicas = 2\nmin_running = 2\nstartup_timeout_secs = 10")
        ),
    );
    let proxy = Proxy::start(&config);
    wait_states(&proxy, "called", &["ready", "ready"]);
    let admin = proxy.admin_addr();
    // A URL naming no instance is refused.
    let mut client = Client::connect(admin);
    let reply = client.request(
        "POST",
        "localhost",
        "/ready/pool/called/2",
        &["Connection: close"],
        b"",
    );
    assert_eq!(reply.status, 404);
    for proto in [Proto::Http1, Proto::H2c] {
        assert_eq!(ask_get(proxy.addr(), proto, "called.test", "/").status, 200);
    }
}
