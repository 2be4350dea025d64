//! The h2 worker on its own: a test plays the reactor (accepts, reads the first bytes, hands the socket
//! over, forwards lifecycle events) and the supervisor (receives `Start` commands), with real
//! `spawngate-echo` backends and the `h2` client.

mod support;

use std::time::Duration;

use http::Method;
use spawngate::msg::{Command, LifecycleEvent, StopReason};
use support::*;

#[test]
fn a_warm_backend_answers_with_proxy_headers() {
    let (harness, _echo) = warm_h2_worker("");
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let response = h2_request(
            &client,
            Method::GET,
            "Echo.Test:8080",
            "/hello?x=1",
            &[("x-forwarded-for", "10.0.0.1"), ("x-custom", "yes")],
            None,
        )
        .await
        .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        let json = response.json();
        assert_eq!(json["method"], "GET");
        assert_eq!(json["path"], "/hello?x=1");
        assert_eq!(json["version"], "HTTP/1.1");
        assert_eq!(
            echoed_header_values(&json, "host"),
            ["Echo.Test:8080"],
            "{json}"
        );
        assert_eq!(
            echoed_header_values(&json, "x-forwarded-for"),
            ["10.0.0.1, 127.0.0.1"]
        );
        assert_eq!(
            echoed_header_values(&json, "x-forwarded-host"),
            ["Echo.Test:8080"]
        );
        assert_eq!(echoed_header_values(&json, "x-forwarded-proto"), ["http"]);
        assert_eq!(echoed_header_values(&json, "x-custom"), ["yes"]);
        let id = echoed_header_values(&json, "x-request-id");
        assert_eq!(id.len(), 1);
        assert_eq!(response.header("x-request-id"), Some(id[0].as_str()));
        assert!(response.header("x-echo-pid").is_some());

        let kept = h2_request(
            &client,
            Method::GET,
            ECHO_HOST,
            "/",
            &[("x-request-id", "trace-42")],
            None,
        )
        .await
        .unwrap();
        assert_eq!(kept.header("x-request-id"), Some("trace-42"));
        assert_eq!(
            echoed_header_values(&kept.json(), "x-request-id"),
            ["trace-42"]
        );
    });
    assert_eq!(harness.activity(ECHO_HOST).in_flight(), 0);
}

#[test]
fn a_cold_backend_is_started_once_and_held_streams_are_released_when_ready() {
    let echo = EchoServer::start(&[]);
    let harness = H2Worker::start(&h2_echo_config(ECHO_HOST, echo.port, ""));
    // The harness comes back out: dropping it shuts the worker down, which needs this runtime idle.
    let harness = block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let requests: Vec<_> = (0..5)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { h2_get(&client, ECHO_HOST, &format!("/{i}")).await })
            })
            .collect();
        let start = tokio::task::spawn_blocking(move || {
            let first = harness.next_command(Duration::from_secs(10));
            assert!(
                matches!(&first, Some(Command::Start(id)) if *id == harness.id(ECHO_HOST)),
                "expected a start, got {first:?}"
            );
            harness.event(ECHO_HOST, LifecycleEvent::Starting);
            // Only one start for all five streams.
            assert!(harness.next_command(Duration::from_millis(300)).is_none());
            harness.event(ECHO_HOST, LifecycleEvent::Ready);
            harness
        });
        for request in requests {
            let response = request.await.unwrap();
            assert_eq!(response.status, 200, "{}", response.text());
        }
        let harness = start.await.unwrap();
        assert_eq!(harness.activity(ECHO_HOST).in_flight(), 0);
        harness
    });
    drop(harness);
}

#[test]
fn a_failed_start_answers_held_streams_with_503() {
    let harness = H2Worker::start(&h2_echo_config(ECHO_HOST, free_port(), ""));
    let harness = block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let request = {
            let client = client.clone();
            tokio::spawn(async move { h2_get(&client, ECHO_HOST, "/").await })
        };
        let harness = tokio::task::spawn_blocking(move || {
            assert!(matches!(
                harness.next_command(Duration::from_secs(10)),
                Some(Command::Start(_))
            ));
            harness.event(
                ECHO_HOST,
                LifecycleEvent::StartFailed("exited with status 1".into()),
            );
            harness
        })
        .await
        .unwrap();
        let response = request.await.unwrap();
        assert_h2_proxy_error(&response, "BACKEND_START_FAILED", 503);
        harness
    });
    drop(harness);
}

#[test]
fn errors_stay_on_their_stream_while_siblings_succeed() {
    let echo = EchoServer::start(&[]);
    let dead_port = free_port();
    let config = format!(
        "{}{}",
        h2_echo_config(ECHO_HOST, echo.port, ""),
        h2_echo_config("dead.test", dead_port, "")
    );
    let harness = H2Worker::start(&config);
    harness.event(ECHO_HOST, LifecycleEvent::Ready);
    harness.event("dead.test", LifecycleEvent::Ready);
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let mut tasks = Vec::new();
        for i in 0..30 {
            let client = client.clone();
            let host = match i % 3 {
                0 => ECHO_HOST,
                1 => "nowhere.test",
                _ => "dead.test",
            };
            tasks.push(tokio::spawn(async move {
                (host, h2_get(&client, host, "/").await)
            }));
        }
        for task in tasks {
            let (host, response) = task.await.unwrap();
            match host {
                ECHO_HOST => assert_eq!(response.status, 200),
                "nowhere.test" => assert_h2_proxy_error(&response, "UNKNOWN_HOST", 404),
                _ => assert_h2_proxy_error(&response, "CONNECTION_FAILED", 502),
            }
        }
        let bad_host = http::Request::builder()
            .uri("/")
            .header("host", "a b")
            .body(())
            .unwrap();
        let response = h2_send(&client, bad_host, None).await.unwrap();
        assert_h2_proxy_error(&response, "BAD_REQUEST", 400);
        let no_host = http::Request::builder().uri("/").body(()).unwrap();
        let response = h2_send(&client, no_host, None).await.unwrap();
        assert_h2_proxy_error(&response, "MISSING_HOST_HEADER", 400);
    });
    harness.event("dead.test", LifecycleEvent::Stopping(StopReason::Shutdown));
    block_on(async {
        let (client, _conn) = h2_connect(harness.addr).await;
        let response = h2_get(&client, "dead.test", "/").await;
        assert_h2_proxy_error(&response, "BACKEND_SHUTTING_DOWN", 503);
    });
}
