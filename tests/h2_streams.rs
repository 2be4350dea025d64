//! HTTP/2 streams through the h2 worker: many at once on one connection, large bodies both ways, resets,
//! trailers and timeouts.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use support::*;

const BIG: usize = 16 * 1024 * 1024;

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64).map(pattern_byte).collect()
}

#[test]
fn two_hundred_fifty_concurrent_streams_on_one_connection_are_all_answered() {
    let (worker, _echo) = warm_h2_worker("");
    let started = Instant::now();
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        let tasks: Vec<_> = (0..250)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move {
                    let response = h2_get(&client, ECHO_HOST, &format!("/slow?ms=300&i={i}")).await;
                    assert_eq!(response.status, 200, "stream {i}: {}", response.text());
                    assert_eq!(response.text(), "slow done\n");
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    // One after another they would take 75 s.
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "streams did not run concurrently: {:?}",
        started.elapsed()
    );
    assert!(wait_until(Duration::from_secs(5), || worker
        .activity(ECHO_HOST)
        .in_flight()
        == 0));
}

#[test]
fn a_large_request_body_is_echoed_back_intact() {
    let (worker, _echo) = warm_h2_worker("");
    let body = Bytes::from(pattern(BIG));
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        // With a declared length, then without one (forwarded chunked).
        for declared in [true, false] {
            let length = body.len().to_string();
            let headers: &[(&str, &str)] = if declared {
                &[("content-length", length.as_str())]
            } else {
                &[]
            };
            let response = h2_request(
                &client,
                Method::POST,
                ECHO_HOST,
                "/echo",
                headers,
                Some(body.clone()),
            )
            .await
            .unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.body.len(), BIG, "declared length: {declared}");
            assert!(response.body == body, "body differs (declared: {declared})");
            assert!(response.header("transfer-encoding").is_none());
        }
    });
}

#[test]
fn a_large_response_body_streams_down_intact() {
    let (worker, _echo) = warm_h2_worker("");
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        for chunked in ["0", "1"] {
            let path = format!("/stream?bytes={BIG}&chunked={chunked}&chunk=65536");
            let response = h2_get(&client, ECHO_HOST, &path).await;
            assert_eq!(response.status, 200);
            assert_eq!(response.body.len(), BIG, "chunked={chunked}");
            assert!(response.body == pattern(BIG), "pattern differs");
        }
    });
}

#[test]
fn a_stream_reset_mid_response_ends_its_backend_request_and_spares_the_connection() {
    let (worker, _echo) = warm_h2_worker("");
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        let request = http::Request::builder()
            .uri(format!("http://{ECHO_HOST}/stream?bytes={}", 1u64 << 32))
            .body(())
            .unwrap();
        let mut ready = client.clone().ready().await.unwrap();
        let (response, mut send) = ready.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.into_body();
        let first = body.data().await.unwrap().unwrap();
        assert!(!first.is_empty());
        assert_eq!(worker.activity(ECHO_HOST).in_flight(), 1);
        send.send_reset(h2::Reason::CANCEL);
        drop(body);
        let activity = worker.activity(ECHO_HOST);
        let deadline = Instant::now() + Duration::from_secs(5);
        while activity.in_flight() != 0 {
            assert!(
                Instant::now() < deadline,
                "the reset stream stayed in flight"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = h2_get(&client, ECHO_HOST, "/").await;
        assert_eq!(after.status, 200);
    });
}

#[test]
fn a_backend_that_does_not_answer_in_time_is_504() {
    let (worker, _echo) = warm_h2_worker("request_timeout_secs = 1");
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        let started = Instant::now();
        let (slow, fast) = tokio::join!(
            h2_get(&client, ECHO_HOST, "/slow?ms=4000"),
            h2_get(&client, ECHO_HOST, "/slow?ms=100"),
        );
        assert_h2_proxy_error(&slow, "REQUEST_TIMEOUT", 504);
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(fast.status, 200);
    });
}

#[test]
fn a_stalled_request_body_is_408_and_head_requests_get_no_body() {
    let echo = EchoServer::start(&[]);
    let worker = H2Worker::start_with(
        &h2_echo_config(ECHO_HOST, echo.port, ""),
        "header_read_timeout_secs = 1",
        Default::default(),
    );
    worker.event(ECHO_HOST, spawngate::msg::LifecycleEvent::Ready);
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        // The default route reads the whole body before answering: nothing was sent yet, so 408.
        let started = Instant::now();
        let stalled = stall_body(&client, "/").await.unwrap();
        assert_h2_proxy_error(&stalled, "CLIENT_TIMEOUT", 408);
        assert!(started.elapsed() < Duration::from_secs(5));
        // /echo answers its head at once: the stall can then only cut the stream.
        let outcome = stall_body(&client, "/echo").await;
        assert!(outcome.is_err(), "a stalled body completed: {outcome:?}");

        let head = h2_request(
            &client,
            Method::HEAD,
            ECHO_HOST,
            "/stream?bytes=100",
            &[],
            None,
        )
        .await
        .unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("100"));
        assert!(head.body.is_empty());
    });
    assert!(wait_until(Duration::from_secs(5), || worker
        .activity(ECHO_HOST)
        .in_flight()
        == 0));
}

/// Sends 3 of the 10 body bytes it declares, then nothing.
async fn stall_body(
    client: &h2::client::SendRequest<Bytes>,
    path: &str,
) -> Result<H2Response, h2::Error> {
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("http://{ECHO_HOST}{path}"))
        .header("content-length", "10")
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await?;
    let (response, mut send) = ready.send_request(request, false)?;
    send.send_data(Bytes::from_static(b"abc"), false)?;
    let response = tokio::time::timeout(Duration::from_secs(10), response)
        .await
        .expect("no answer to a stalled body")?;
    let outcome = h2_read_response(response).await;
    drop(send);
    outcome
}

/// A one-shot backend: reads one request (head and, if chunked, body through its last chunk), answers
/// with `respond(request bytes)`, and closes.
fn one_shot_backend(respond: fn(&[u8]) -> Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut request = Vec::new();
        let mut chunked = false;
        loop {
            let mut line = Vec::new();
            if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                return;
            }
            chunked |= line.eq_ignore_ascii_case(b"transfer-encoding: chunked\r\n");
            request.extend_from_slice(&line);
            if line == b"\r\n" {
                break;
            }
        }
        if chunked {
            // Until the empty line that ends the trailer section.
            let mut after_last_chunk = false;
            loop {
                let mut line = Vec::new();
                if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                    return;
                }
                request.extend_from_slice(&line);
                if line.starts_with(b"0\r\n") || line.starts_with(b"0;") {
                    after_last_chunk = true;
                } else if after_last_chunk && line == b"\r\n" {
                    break;
                }
            }
        }
        let mut stream = reader.into_inner();
        let _ = stream.write_all(&respond(&request));
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    port
}

#[test]
fn response_trailers_reach_the_client() {
    let port = one_shot_backend(|_| {
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\nConnection: bogus\r\n\r\n"
            .to_vec()
    });
    let worker = H2Worker::start(&h2_echo_config("trailers.test", port, ""));
    worker.event("trailers.test", spawngate::msg::LifecycleEvent::Ready);
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        let response = h2_get(&client, "trailers.test", "/").await;
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "hello world");
        let trailers = response.trailers.clone().expect("trailers");
        assert_eq!(trailers["x-checksum"], "42");
        assert!(!trailers.contains_key("connection"));
        assert_eq!(response.header("trailer"), Some("x-checksum"));
    });
}

#[test]
fn request_trailers_and_unlengthed_bodies_go_up_chunked() {
    let port = one_shot_backend(|request| {
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            request.len()
        )
        .into_bytes();
        response.extend_from_slice(request);
        response
    });
    let worker = H2Worker::start(&h2_echo_config("up.test", port, ""));
    worker.event("up.test", spawngate::msg::LifecycleEvent::Ready);
    block_on(async {
        let (client, _conn) = h2_connect(worker.addr).await;
        let request = http::Request::builder()
            .method(Method::POST)
            .uri("http://up.test/upload")
            .body(())
            .unwrap();
        let mut ready = client.clone().ready().await.unwrap();
        let (response, mut send) = ready.send_request(request, false).unwrap();
        send.send_data(Bytes::from_static(b"abc"), false).unwrap();
        send.send_data(Bytes::from_static(b"defgh"), false).unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-sig", "1".parse().unwrap());
        send.send_trailers(trailers).unwrap();
        let response = h2_read_response(response.await.unwrap()).await.unwrap();
        let seen = response.text();
        assert!(
            seen.starts_with("POST /upload HTTP/1.1\r\nHost: up.test\r\n"),
            "{seen}"
        );
        assert!(seen.contains("Transfer-Encoding: chunked\r\n"), "{seen}");
        assert!(
            seen.ends_with("\r\n\r\n3\r\nabc\r\n5\r\ndefgh\r\n0\r\nx-sig: 1\r\n\r\n"),
            "{seen}"
        );
    });
}
