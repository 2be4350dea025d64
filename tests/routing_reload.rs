//! A route table swapped by reload while requests flow over HTTP/1.1 and h2c: no request fails, and
//! every answer is the one table or the other, never a mixture.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::routing::{ask_get, Proto};
use support::*;

/// Round `round`'s config: `/api` goes to `api.internal` with its prefix stripped in odd rounds, to
/// `app.internal` unedited in even ones; `/round` answers the round.
fn round_config(round: usize, app_port: u16, api_port: u16) -> String {
    let api_route = if round % 2 == 1 {
        "to = \"api.internal\"\nstrip_prefix = true"
    } else {
        "to = \"app.internal\""
    };
    format!(
        "{}{}\n[hosts.\"site.test\"]\n\
         [[hosts.\"site.test\".routes]]\npath = \"/round\"\nrespond = {{ body = \"{round}\" }}\n\
         [[hosts.\"site.test\".routes]]\npath_prefix = \"/api\"\n{api_route}\n",
        echo_backend("app.internal", app_port, "", &[]),
        echo_backend("api.internal", api_port, "", &[]),
    )
}

/// Whether an answer to `/api/x` (its status, `X-Echo-Pid` and body) is what one of the two tables
/// gives, over either protocol.
fn consistent(status: u16, pid: Option<&str>, body: &[u8], app: u32, api: u32) -> bool {
    let pid = pid.and_then(|p| p.parse::<u32>().ok());
    let path = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| json["path"].as_str().map(str::to_string));
    status == 200
        && (matches!((path.as_deref(), pid), (Some("/x"), Some(p)) if p == api)
            || matches!((path.as_deref(), pid), (Some("/api/x"), Some(p)) if p == app))
}

#[test]
fn a_route_table_reloaded_under_load_fails_no_request() {
    let (app_port, api_port) = (free_port(), free_port());
    let proxy = Proxy::start(&round_config(1, app_port, api_port));
    let addr = proxy.addr();
    let app = ask_get(addr, Proto::Http1, "app.internal", "/")
        .echo_pid()
        .expect("app");
    let api = ask_get(addr, Proto::Http1, "api.internal", "/")
        .echo_pid()
        .expect("api");
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));

    let http1 = {
        let (stop, served) = (stop.clone(), served.clone());
        thread::spawn(move || {
            let mut client = Client::connect(addr);
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let response = client.get("site.test", "/api/x");
                let pid = response.header("x-echo-pid");
                if !consistent(response.status, pid, &response.body, app, api) {
                    failures.push(format!("HTTP/1.1: {} {}", response.status, response.text()));
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
            failures
        })
    };
    let h2c = {
        let (stop, served) = (stop.clone(), served.clone());
        thread::spawn(move || {
            block_on(async {
                let (client, _driver) = h2_connect(addr).await;
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let response = h2_get(&client, "site.test", "/api/x").await;
                    let status = response.status.as_u16();
                    let pid = response.header("x-echo-pid");
                    if !consistent(status, pid, &response.body, app, api) {
                        failures.push(format!("h2c: {} {}", response.status, response.text()));
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
    };

    for round in 2..=12 {
        proxy.rewrite_config(&round_config(round, app_port, api_port));
        let reply = proxy.post_reload();
        assert_eq!(reply.status, 200, "round {round}: {}", reply.text());
        // The new table answers at once, over both protocols (fresh connections see every reload).
        for proto in [Proto::Http1, Proto::H2c] {
            let answer = ask_get(addr, proto, "site.test", "/round");
            assert_eq!(answer.text(), round.to_string(), "{proto:?} round {round}");
            let api_answer = ask_get(addr, proto, "site.test", "/api/x");
            let expected = if round % 2 == 1 { "/x" } else { "/api/x" };
            assert_eq!(
                api_answer.echoed_path(),
                expected,
                "{proto:?} round {round}"
            );
        }
        let seen = served.load(Ordering::Relaxed);
        assert!(
            wait_until(Duration::from_secs(10), || served.load(Ordering::Relaxed)
                >= seen + 6),
            "round {round}: the load stalled"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = http1.join().expect("HTTP/1 load");
    failures.extend(h2c.join().expect("h2c load"));
    let served = served.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {served} failed: {failures:?}",
        failures.len()
    );
    assert!(served >= 60, "only {served} requests during the reloads");
}

#[test]
fn a_reload_with_a_shadowed_route_is_refused_and_the_table_stays() {
    let (app_port, api_port) = (free_port(), free_port());
    let proxy = Proxy::start(&round_config(1, app_port, api_port));
    let shadowed = format!(
        "{}\n[[hosts.\"site.test\".routes]]\npath = \"/api/x\"\nto = \"app.internal\"\n",
        round_config(2, app_port, api_port)
    );
    proxy.rewrite_config(&shadowed);
    let reply = proxy.post_reload();
    assert_eq!(reply.status, 400, "{}", reply.text());
    let problems = reply.json()["problems"].to_string();
    assert!(
        problems.contains("can never match: the route on line"),
        "{problems}"
    );
    for proto in [Proto::Http1, Proto::H2c] {
        let answer = ask_get(proxy.addr(), proto, "site.test", "/round");
        assert_eq!(answer.text(), "1", "{proto:?}: the running table stays");
    }
}
