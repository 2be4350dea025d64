//! Cold starts seen from outside: how long after a starting backend begins to listen its first request
//! is answered. The proxy knocks on a starting instance's address every few milliseconds while nothing
//! listens, so this does not grow with the backend's start time or the health check interval.

mod support;

use std::time::Duration;

use support::cold::{after_logged, now_micros};
use support::*;

#[test]
fn a_slow_starting_backend_is_served_within_milliseconds_of_listening() {
    let dir = TempDir::new("cold");
    // A long interval: waiting out growing gaps between probes would add a good part of a second.
    let keys = "health_check_interval_ms = 1000\nstartup_timeout_secs = 30";
    let hosts = ["slow-a.test", "slow-b.test"];
    let logs: Vec<_> = hosts
        .iter()
        .map(|h| dir.path().join(format!("{h}.log")))
        .collect();
    let backends: String = hosts
        .iter()
        .zip(&logs)
        .map(|(host, log)| {
            let env = [
                ("ECHO_START_DELAY_MS", "1200"),
                ("ECHO_LISTEN_LOG", log.to_str().expect("utf-8 path")),
            ];
            echo_backend(host, free_port(), keys, &env)
        })
        .collect();
    let proxy = Proxy::start(&backends);
    for (host, log) in hosts.iter().zip(&logs) {
        let response = get(proxy.addr(), host, "/first");
        let answered = now_micros();
        assert_eq!(response.status, 200, "{}", response.text());
        let added = after_logged(log, answered);
        eprintln!("{host}: answered {added:?} after the backend listened");
        assert!(
            added < Duration::from_millis(75),
            "{host}: answered {added:?} after the backend began to listen"
        );
    }
}
