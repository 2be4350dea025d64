//! Hot reload through the real binary: `POST /reload` and its outcome in `/health`, reloads under load, and
//! a changed backend that keeps its old instance until it stops.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::*;

fn post_reload(proxy: &Proxy) -> Response {
    let mut admin = Client::connect(proxy.admin_addr());
    admin.request("POST", "localhost", "/reload", &["Connection: close"], b"")
}

fn health(proxy: &Proxy) -> serde_json::Value {
    let response = proxy.admin_get("/health");
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()
}

#[test]
fn post_reload_answers_the_outcome_and_health_reports_it() {
    let echo = echo_backend(ECHO_HOST, free_port(), "", &[]);
    let proxy = Proxy::start(&echo);
    assert_eq!(health(&proxy)["config_generation"], 1);
    assert!(health(&proxy)["last_reload_error"].is_null());

    proxy.rewrite_config(&format!(
        "{echo}{}",
        echo_backend("new.test", free_port(), "", &[])
    ));
    let response = post_reload(&proxy);
    assert_eq!(response.status, 200, "{}", response.text());
    let outcome = response.json();
    assert_eq!(outcome["config_generation"], 2, "{outcome}");
    assert_eq!(outcome["added"], 1, "{outcome}");
    assert_eq!(health(&proxy)["config_generation"], 2);
    assert_eq!(get(proxy.addr(), "new.test", "/").status, 200);

    proxy.rewrite_config("[backends.\"broken.test\"]\nport = 0\nno_such_key = 1\n");
    let response = post_reload(&proxy);
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(
        response.text().contains("no_such_key"),
        "{}",
        response.text()
    );
    let after = health(&proxy);
    assert_eq!(
        after["config_generation"], 2,
        "a rejected reload is no generation"
    );
    assert!(
        after["last_reload_error"]
            .as_str()
            .is_some_and(|e| e.contains("no_such_key")),
        "{after}"
    );
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/").status, 200);
    assert_eq!(get(proxy.addr(), "new.test", "/").status, 200);
}

/// The config of reload round `round`: two backends present in every config (one of them changed each
/// time), one that comes and goes.
fn round_config(round: usize, stable_port: u16, changing_port: u16, extra_port: u16) -> String {
    let mut config = echo_backend("stable.test", stable_port, "", &[]);
    config.push_str(&echo_backend(
        "changing.test",
        changing_port,
        &format!("idle_timeout_secs = {}", 60 + round),
        &[("ROUND", &round.to_string())],
    ));
    if round % 2 == 1 {
        config.push_str(&echo_backend("extra.test", extra_port, "", &[]));
    }
    config
}

#[test]
fn requests_to_backends_in_every_config_succeed_across_twenty_reloads() {
    let (stable_port, changing_port, extra_port) = (free_port(), free_port(), free_port());
    let proxy = Proxy::start(&round_config(0, stable_port, changing_port, extra_port));
    let addr = proxy.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let load = {
        let stop = stop.clone();
        let counter = served.clone();
        thread::spawn(move || {
            let mut client = Client::connect(addr);
            let mut served = 0usize;
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                for host in ["stable.test", "changing.test"] {
                    // Alternate a kept-alive connection with fresh ones: both must survive reloads.
                    let response = if served % 3 == 0 {
                        get(addr, host, "/fresh")
                    } else {
                        client.get(host, "/kept-alive")
                    };
                    if response.status != 200 {
                        failures.push(format!("{host}: {} {}", response.status, response.text()));
                    }
                    served += 1;
                    counter.store(served, Ordering::Relaxed);
                }
            }
            (served, failures)
        })
    };

    for round in 1..=20 {
        let invalid = round % 5 == 0;
        if invalid {
            proxy.rewrite_config("[backends.\"broken.test\"]\nport = \"not a number\"\n");
        } else {
            proxy.rewrite_config(&round_config(round, stable_port, changing_port, extra_port));
        }
        let response = if round % 4 == 1 {
            // SIGHUP has no answer: wait for the generation (or the error) it produces.
            let before = health(&proxy)["config_generation"].clone();
            proxy.signal(Signal::SIGHUP);
            assert!(wait_until(Duration::from_secs(5), || {
                let now = health(&proxy);
                now["config_generation"] != before
                    || (invalid && !now["last_reload_error"].is_null())
            }));
            None
        } else {
            Some(post_reload(&proxy))
        };
        if let Some(response) = response {
            let expected = if invalid { 400 } else { 200 };
            assert_eq!(
                response.status,
                expected,
                "round {round}: {}",
                response.text()
            );
        }
        if !invalid && round % 2 == 1 {
            assert_eq!(get(addr, "extra.test", "/").status, 200, "round {round}");
        }
        // Some requests go through between two reloads, whatever the machine's load.
        let seen = served.load(Ordering::Relaxed);
        assert!(wait_until(Duration::from_secs(10), || served
            .load(Ordering::Relaxed)
            >= seen + 4));
    }
    stop.store(true, Ordering::Relaxed);
    let (served, failures) = load.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {served} failed: {failures:?}",
        failures.len()
    );
    assert!(
        served >= 40,
        "only {served} requests went through during the reloads"
    );
    // Round 19 added extra.test, round 20 was invalid: it is still routed.
    assert_eq!(get(addr, "extra.test", "/").status, 200);
    assert_eq!(health(&proxy)["config_generation"], 17);
}

#[test]
fn a_changed_backend_keeps_its_instance_until_idle_and_then_starts_with_the_new_settings() {
    let dir = TempDir::new("changed-backend");
    let (old_log, new_log) = (dir.file("old.log"), dir.file("new.log"));
    let port = free_port();
    let config = |log: &std::path::Path| {
        echo_backend(
            ECHO_HOST,
            port,
            "idle_timeout_secs = 2",
            &[("ECHO_START_LOG", log.to_str().unwrap())],
        )
    };
    let proxy = Proxy::start(&config(&old_log));
    let first = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));

    proxy.rewrite_config(&config(&new_log));
    assert_eq!(post_reload(&proxy).status, 200);
    assert!(proxy.wait_for_log(
        "new settings apply from its next start",
        Duration::from_secs(5)
    ));
    assert_eq!(
        echo_pid(&get(proxy.addr(), ECHO_HOST, "/")),
        first,
        "a reload must not restart a running backend"
    );

    proxy.wait_for_state(ECHO_HOST, "stopped", Duration::from_secs(15));
    let second = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    assert_ne!(second, first);
    assert_eq!(start_log_pids(&old_log), vec![first]);
    assert_eq!(
        start_log_pids(&new_log),
        vec![second],
        "the next start used the new env"
    );
}

#[test]
fn a_backend_put_back_while_it_drains_from_removal_serves_new_requests() {
    let echo = echo_backend(ECHO_HOST, free_port(), "", &[]);
    let other = echo_backend("other.test", free_port(), "", &[]);
    let proxy = Proxy::start(&format!("{echo}{other}"));
    let first = echo_pid(&get(proxy.addr(), ECHO_HOST, "/"));
    let addr = proxy.addr();
    let slow = thread::spawn(move || get(addr, ECHO_HOST, "/slow?ms=1500"));
    assert!(wait_until(Duration::from_secs(5), || proxy
        .backend(ECHO_HOST)["in_flight"]
        == 1));

    proxy.rewrite_config(&other);
    assert_eq!(post_reload(&proxy).status, 200);
    proxy.wait_for_state(ECHO_HOST, "stopping", Duration::from_secs(5));
    proxy.rewrite_config(&format!("{echo}{other}"));
    assert_eq!(post_reload(&proxy).status, 200);

    let response = get(proxy.addr(), ECHO_HOST, "/after-putting-back");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_ne!(
        echo_pid(&response),
        first,
        "served by a new instance after the drain"
    );
    assert_eq!(
        slow.join().unwrap().status,
        200,
        "the drained request completed"
    );
}
