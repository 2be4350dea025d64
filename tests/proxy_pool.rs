//! The backend pool under load, with the default config: clients that outnumber `pool_max_idle_per_host`
//! keep reusing their backend connections (about one new connection per client, however many requests),
//! over HTTP/1.1 and h2c alike; once the load stops, the surplus is closed and the cap stays pooled.
//!
//! The recording backend counts the connections the proxy opens and closes, so the pool is observable
//! from outside.

mod support;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use support::recorder::Recorder;
use support::*;

const HOST: &str = "pool.test";
/// The default `pool_max_idle_per_host`; the tests run with the default config.
const DEFAULT_CAP: usize = 10;
/// Concurrent keep-alive clients (or streams), well above the cap.
const CONCURRENCY: usize = 32;
/// Requests each client sends.
const REQUESTS_EACH: usize = 150;
/// New backend connections allowed per 1,000 requests. One per client is 32 for 4,800 requests (7 per
/// 1,000); closing every connection past the cap as it came back opened 50 to 90 per 1,000 here.
const MAX_NEW_PER_1000: usize = 20;
/// How long the surplus may take to be closed once idle: the grace, and room for a slow machine.
const TRIM_DEADLINE: Duration = Duration::from_secs(10);

fn start() -> (Recorder, Proxy) {
    let recorder = Recorder::ok();
    let proxy = Proxy::start(&recorder.backend_table(HOST, ""));
    (recorder, proxy)
}

/// New backend connections per 1,000 requests, with the numbers behind it.
fn per_thousand(opened: usize, requests: usize) -> usize {
    let rate = opened * 1000 / requests;
    eprintln!("{opened} backend connections opened for {requests} requests: {rate} per 1,000");
    rate
}

/// Once the load stops, the connections beyond the cap go (after the grace) and the cap stays.
fn assert_trimmed_to_the_cap(recorder: &Recorder) {
    let trimmed = wait_until(TRIM_DEADLINE, || recorder.open_connections() <= DEFAULT_CAP);
    assert!(
        trimmed,
        "{} backend connections still open {TRIM_DEADLINE:?} after the load",
        recorder.open_connections()
    );
    // The sweep that closed the surplus must not take the cap with it.
    let over_trimmed = wait_until(Duration::from_millis(500), || {
        recorder.open_connections() < DEFAULT_CAP
    });
    assert!(
        !over_trimmed,
        "the pool keeps `pool_max_idle_per_host` connections for the idle timeout, not {}",
        recorder.open_connections()
    );
}

#[test]
fn http1_clients_above_the_cap_reuse_their_backend_connections() {
    let (recorder, proxy) = start();
    // The first request starts the backend; the load measures a ready one.
    assert_eq!(get(proxy.addr(), HOST, "/warm").status, 200);
    let before = recorder.connections();
    let start_together = Arc::new(Barrier::new(CONCURRENCY));
    let clients: Vec<_> = (0..CONCURRENCY)
        .map(|n| {
            let addr = proxy.addr();
            let start_together = start_together.clone();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                start_together.wait();
                for i in 0..REQUESTS_EACH {
                    let response = client.get(HOST, &format!("/client/{n}/{i}"));
                    assert_eq!(response.status, 200, "client {n}, request {i}");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client failed");
    }
    let opened = recorder.connections() - before;
    let rate = per_thousand(opened, CONCURRENCY * REQUESTS_EACH);
    assert!(
        rate <= MAX_NEW_PER_1000,
        "{opened} new backend connections for {} requests",
        CONCURRENCY * REQUESTS_EACH
    );
    assert_trimmed_to_the_cap(&recorder);
}

#[test]
fn h2_bursts_above_the_cap_reuse_their_backend_connections() {
    let (recorder, proxy) = start();
    let mut before = 0;
    block_on(async {
        let (client, _driver) = h2_connect(proxy.addr()).await;
        // Over h2 too: each protocol thread has its own pool.
        let warm = h2_request(&client, http::Method::GET, HOST, "/warm", &[], None).await;
        assert_eq!(warm.expect("h2 response").status, 200);
        before = recorder.connections();
        // Bursts of concurrent streams that all end before the next burst opens: between two bursts every
        // backend connection is idle at once, far more than the cap.
        for round in 0..REQUESTS_EACH {
            let streams: Vec<_> = (0..CONCURRENCY)
                .map(|n| {
                    let client = client.clone();
                    let path = format!("/round/{round}/{n}");
                    tokio::spawn(async move {
                        let request =
                            h2_request(&client, http::Method::GET, HOST, &path, &[], None);
                        tokio::time::timeout(H2_STEP_DEADLINE, request).await
                    })
                })
                .collect();
            for stream in streams {
                let response = stream.await.expect("stream task");
                let response = response
                    .expect("a stream took too long")
                    .expect("h2 response");
                assert_eq!(response.status, 200, "round {round}");
            }
        }
    });
    let opened = recorder.connections() - before;
    let rate = per_thousand(opened, CONCURRENCY * REQUESTS_EACH);
    assert!(
        rate <= MAX_NEW_PER_1000,
        "{opened} new backend connections for {} streams",
        CONCURRENCY * REQUESTS_EACH
    );
    assert_trimmed_to_the_cap(&recorder);
}
