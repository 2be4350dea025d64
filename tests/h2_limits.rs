//! The h2 worker's edges: graceful shutdown with GOAWAY, a Rapid Reset client cut off while a polite one
//! carries on, and curl speaking prior knowledge.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use http::Method;
use support::*;

#[test]
fn shutdown_sends_goaway_and_lets_open_streams_finish() {
    let (mut worker, _echo) = warm_h2_worker("");
    let activity = worker.activity(ECHO_HOST);
    let addr = worker.addr;
    block_on(async move {
        let (client, conn) = h2_connect(addr).await;
        let slow = {
            let client = client.clone();
            tokio::spawn(async move { h2_get(&client, ECHO_HOST, "/slow?ms=1500").await })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while activity.in_flight() == 0 {
            assert!(Instant::now() < deadline, "the slow request never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let started = Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            worker.shutdown_and_join(Duration::from_secs(20));
            worker
        });
        // The open stream completes...
        let response = slow.await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "slow done\n");
        // ... and the connection ends cleanly (GOAWAY with NO_ERROR), after which nothing new is served.
        let ended = tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("the connection did not end after shutdown")
            .unwrap();
        assert!(ended.is_ok(), "connection ended with {ended:?}");
        let refused = h2_request(&client, Method::GET, ECHO_HOST, "/", &[], None).await;
        assert!(refused.is_err(), "a request after GOAWAY was served");
        let worker = joined.await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(worker);
    });
}

#[test]
fn a_rapid_reset_burst_is_cut_off_while_a_polite_client_carries_on() {
    let (worker, _echo) = warm_h2_worker("");
    let addr = worker.addr;
    block_on(async move {
        let (attacker, attacker_conn) = h2_connect(addr).await;
        let burst = tokio::spawn(rapid_reset_burst(attacker, ECHO_HOST));
        let (polite, _polite_conn) = h2_connect(addr).await;
        let mut answered = 0;
        for i in 0..40 {
            let response = h2_get(&polite, ECHO_HOST, &format!("/polite/{i}")).await;
            assert_eq!(response.status, 200, "{}", response.text());
            answered += 1;
        }
        assert_eq!(answered, 40);
        let ended = tokio::time::timeout(Duration::from_secs(20), attacker_conn)
            .await
            .expect("the attacking connection was not cut off")
            .unwrap();
        let err = ended.expect_err("the attacking connection ended cleanly");
        assert_eq!(
            err.reason(),
            Some(h2::Reason::ENHANCE_YOUR_CALM),
            "cut off with {err:?}"
        );
        let sent = burst.await.unwrap();
        assert!(
            sent < RAPID_RESET_STREAMS,
            "all {sent} streams went through"
        );
        // The polite client is still served after the cut-off.
        let response = h2_get(&polite, ECHO_HOST, "/after").await;
        assert_eq!(response.status, 200);
    });
    assert!(wait_until(Duration::from_secs(10), || worker
        .activity(ECHO_HOST)
        .in_flight()
        == 0));
}

#[test]
fn an_idle_connection_is_closed_with_goaway_after_the_keepalive_timeout() {
    let echo = EchoServer::start(&[]);
    let worker = H2Worker::start_with(
        &h2_echo_config(ECHO_HOST, echo.port, ""),
        "keepalive_timeout_secs = 1",
        Default::default(),
    );
    worker.event(ECHO_HOST, spawngate::msg::LifecycleEvent::Ready);
    let addr = worker.addr;
    block_on(async move {
        let (client, conn) = h2_connect(addr).await;
        // A stream longer than the timeout does not count as idle time.
        let slow = h2_get(&client, ECHO_HOST, "/slow?ms=1500").await;
        assert_eq!(slow.status, 200);
        let idle_from = Instant::now();
        let ended = tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("the idle connection stayed open")
            .unwrap();
        assert!(ended.is_ok(), "closed with {ended:?}");
        let idle = idle_from.elapsed();
        assert!(idle >= Duration::from_millis(900), "closed after {idle:?}");
    });
}

/// Waits (polling, bounded) until `condition` holds; false on timeout.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    true
}

#[test]
fn resetting_streams_the_proxy_is_already_working_on_runs_out_of_budget() {
    // A small budget (a burst of 50, one more per second) so the test does not depend on its speed.
    let settings = spawngate::h2::H2Settings {
        reset_burst: 50,
        resets_per_sec: 1,
        ..Default::default()
    };
    let echo = EchoServer::start(&[]);
    let worker = H2Worker::start_with(&h2_echo_config(ECHO_HOST, echo.port, ""), "", settings);
    worker.event(ECHO_HOST, spawngate::msg::LifecycleEvent::Ready);
    let activity = worker.activity(ECHO_HOST);
    let addr = worker.addr;
    block_on(async move {
        let (client, conn) = h2_connect(addr).await;
        let mut resets = 0;
        for i in 0..1_000 {
            let request = http::Request::builder()
                .uri(format!("http://{ECHO_HOST}/slow?ms=5000&i={i}"))
                .body(())
                .unwrap();
            let Ok(mut ready) = client.clone().ready().await else {
                break;
            };
            let Ok((_response, mut send)) = ready.send_request(request, true) else {
                break;
            };
            // Reset only once the proxy forwarded the stream, so it is past the h2 crate's own check.
            if !eventually(Duration::from_secs(5), || activity.in_flight() == 1).await {
                break;
            }
            send.send_reset(h2::Reason::CANCEL);
            resets += 1;
            assert!(eventually(Duration::from_secs(5), || activity.in_flight() == 0).await);
        }
        assert!((50..200).contains(&resets), "cut off after {resets} resets");
        let ended = tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("the connection was not cut off")
            .unwrap();
        let err = ended.expect_err("the connection ended cleanly");
        assert_eq!(err.reason(), Some(h2::Reason::ENHANCE_YOUR_CALM));
    });
}

fn curl_available() -> bool {
    Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn curl_with_prior_knowledge_gets_answers() {
    if !curl_available() {
        eprintln!("curl is not installed; skipping (CI installs it)");
        return;
    }
    let (worker, _echo) = warm_h2_worker("");
    let url = format!("http://{}/curl?x=1", worker.addr);
    let output = Command::new("curl")
        .args(["-sS", "-i", "--http2-prior-knowledge", "--max-time", "20"])
        .args(["-H", &format!("Host: {ECHO_HOST}")])
        .arg(&url)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "curl failed: {text} {output:?}");
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("x-request-id: "), "{text}");
    assert!(text.contains("\"path\":\"/curl?x=1\""), "{text}");

    let upload = Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", "--max-time", "20"])
        .args([
            "-H",
            &format!("Host: {ECHO_HOST}"),
            "--data-binary",
            "hello h2",
        ])
        .arg(format!("http://{}/echo", worker.addr))
        .output()
        .expect("run curl");
    assert!(upload.status.success(), "{upload:?}");
    assert_eq!(upload.stdout, b"hello h2");

    let unknown = Command::new("curl")
        .args(["-sS", "-i", "--http2-prior-knowledge", "--max-time", "20"])
        .args(["-H", "Host: nowhere.test"])
        .arg(format!("http://{}/", worker.addr))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&unknown.stdout).into_owned();
    assert!(text.starts_with("HTTP/2 404"), "{text}");
    assert!(text.contains("x-proxy-error: UNKNOWN_HOST"), "{text}");
}
