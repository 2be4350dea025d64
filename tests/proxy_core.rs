//! Forwarding basics: cold and warm requests, one start for many waiters, keep-alive, pipelining,
//! request bodies, HEAD, and a backend that closes its side.

mod support;

use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use support::*;

#[test]
fn cold_start_then_warm_requests_reach_the_same_process() {
    let proxy = proxy_with_echo("", &[]);
    let entry = proxy.backend(ECHO_HOST);
    assert_eq!(entry["state"], "stopped", "{entry}");

    let response = get(proxy.addr(), ECHO_HOST, "/first?x=1");
    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["method"], "GET");
    assert_eq!(json["path"], "/first?x=1");
    let pid = echo_pid(&response);
    assert!(pid_alive(pid));
    assert!(
        children_of(proxy.pid()).contains(&pid),
        "the backend is the proxy's child"
    );
    assert_eq!(proxy.state_of(ECHO_HOST), "ready");

    let mut client = proxy.client();
    for i in 0..5 {
        let started = Instant::now();
        let response = client.get(ECHO_HOST, &format!("/warm/{i}"));
        assert_eq!(response.status, 200);
        assert_eq!(
            echo_pid(&response),
            pid,
            "warm requests reuse the running backend"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "warm request took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn concurrent_requests_to_a_cold_backend_share_one_start() {
    let dir = TempDir::new("one-start");
    let start_log = dir.file("starts.log");
    let proxy = proxy_with_echo(
        "",
        &[
            ("ECHO_START_LOG", start_log.to_str().unwrap()),
            ("ECHO_START_DELAY_MS", "300"),
        ],
    );
    const CLIENTS: usize = 50;
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let addr = proxy.addr();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                get(addr, ECHO_HOST, &format!("/concurrent/{i}"))
            })
        })
        .collect();
    let responses: Vec<Response> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for response in &responses {
        assert_eq!(
            response.status,
            200,
            "{:?} {}",
            response.headers,
            response.text()
        );
    }
    let pids = start_log_pids(&start_log);
    assert_eq!(
        pids.len(),
        1,
        "exactly one backend process was spawned: {pids:?}"
    );
    assert!(responses.iter().all(|r| echo_pid(r) == pids[0]));
}

#[test]
fn one_connection_carries_a_thousand_keep_alive_requests() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let first = client.get(ECHO_HOST, "/warmup");
    assert_eq!(first.status, 200);
    let pid = echo_pid(&first);
    let started = Instant::now();
    for i in 0..1000 {
        let path = format!("/keepalive/{i}");
        let response = client.get(ECHO_HOST, &path);
        assert_eq!(response.status, 200, "request {i}");
        assert!(!response.closes(), "request {i} closed the connection");
        assert_eq!(response.json()["path"], path);
        assert_eq!(echo_pid(&response), pid);
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "1,000 requests took {:?}",
        started.elapsed()
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let proxy = proxy_with_echo("", &[]);
    assert_eq!(get(proxy.addr(), ECHO_HOST, "/warmup").status, 200);
    let mut client = proxy.client();
    let mut raw = Vec::new();
    for i in 0..8 {
        if i % 3 == 1 {
            raw.extend(build_request(
                "POST",
                ECHO_HOST,
                &format!("/p/{i}"),
                &[],
                b"some body",
            ));
        } else {
            raw.extend(build_request(
                "GET",
                ECHO_HOST,
                &format!("/p/{i}"),
                &[],
                b"",
            ));
        }
    }
    raw.extend(build_request("POST", ECHO_HOST, "/echo", &[], b"last one"));
    client.send(&raw);
    for i in 0..8 {
        let response = client.read_response();
        assert_eq!(response.status, 200);
        let json = response.json();
        assert_eq!(
            json["path"],
            format!("/p/{i}"),
            "responses come back in request order"
        );
        assert_eq!(json["body_len"], if i % 3 == 1 { 9 } else { 0 });
    }
    assert_eq!(client.read_response().body, b"last one");
}

#[test]
fn pipelined_requests_to_a_cold_backend_are_answered_in_order() {
    let proxy = proxy_with_echo("", &[("ECHO_START_DELAY_MS", "200")]);
    let mut client = proxy.client();
    let raw: Vec<u8> = (0..4)
        .flat_map(|i| build_request("GET", ECHO_HOST, &format!("/cold/{i}"), &[], b""))
        .collect();
    client.send(&raw);
    for i in 0..4 {
        assert_eq!(client.read_response().json()["path"], format!("/cold/{i}"));
    }
}

fn pattern_body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

/// Sends `raw` on a second handle while the caller reads, so neither side waits for the other.
fn send_in_background(client: &Client, raw: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut writer = client.stream().try_clone().unwrap();
    std::thread::spawn(move || writer.write_all(&raw).unwrap())
}

#[test]
fn fixed_length_body_goes_to_the_backend_and_back() {
    let proxy = proxy_with_echo("", &[]);
    let body = pattern_body(3 * 1024 * 1024 + 17);
    let mut client = proxy.client();
    let sender = send_in_background(
        &client,
        build_request("POST", ECHO_HOST, "/echo", &[], &body),
    );
    let response = client.read_response();
    sender.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == body, "echoed body differs");
    // The connection is still good for a small body and a bodiless request.
    assert_eq!(
        client.request("PUT", ECHO_HOST, "/echo", &[], b"abc").body,
        b"abc"
    );
    assert_eq!(client.get(ECHO_HOST, "/after").json()["body_len"], 0);
}

#[test]
fn chunked_body_goes_to_the_backend_and_back() {
    let proxy = proxy_with_echo("", &[]);
    let body = pattern_body(2 * 1024 * 1024 + 5);
    let mut raw = build_request(
        "POST",
        ECHO_HOST,
        "/echo",
        &["Transfer-Encoding: chunked"],
        b"",
    );
    let mut offset = 0;
    let mut size = 1;
    while offset < body.len() {
        // Sizes from 1 byte to 256 KiB so chunk boundaries land everywhere.
        let len = size.min(body.len() - offset);
        raw.extend(format!("{len:x}\r\n").as_bytes());
        raw.extend(&body[offset..offset + len]);
        raw.extend(b"\r\n");
        offset += len;
        size = if size >= 256 * 1024 { 3 } else { size * 7 + 1 };
    }
    raw.extend(b"0\r\n\r\n");
    let mut client = proxy.client();
    let sender = send_in_background(&client, raw);
    let response = client.read_response();
    sender.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == body, "echoed body differs");
    let json = client
        .request(
            "POST",
            ECHO_HOST,
            "/count",
            &["Transfer-Encoding: chunked"],
            b"3\r\nabc\r\n0\r\n\r\n",
        )
        .json();
    assert_eq!(json["body_len"], 3);
}

#[test]
fn head_responses_have_no_body() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let response = client.request("HEAD", ECHO_HOST, "/stream?bytes=5000", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-length"), Some("5000"));
    let response = client.request("HEAD", ECHO_HOST, "/stream?bytes=5000&chunked=1", &[], b"");
    assert_eq!(response.status, 200);
    // Had a body leaked, the next response would start with its bytes and fail to parse.
    let next = client.get(ECHO_HOST, "/after-head");
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["path"], "/after-head");
    assert!(!client.closed_by_peer_within(Duration::from_millis(200)));
}

#[test]
fn backend_closing_its_connection_does_not_break_the_client_connection() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    for round in 0..5 {
        let closing = client.get(ECHO_HOST, "/close");
        assert_eq!(closing.status, 200, "round {round}");
        assert_eq!(closing.body, b"closing\n");
        let next = client.get(ECHO_HOST, &format!("/after-close/{round}"));
        assert_eq!(next.status, 200, "round {round}: {}", next.text());
        assert_eq!(next.json()["path"], format!("/after-close/{round}"));
    }
}

#[test]
fn host_matching_ignores_port_and_case() {
    let proxy = proxy_with_echo("", &[]);
    for host in ["echo.test:8080", "ECHO.Test", "Echo.TEST:1"] {
        let response = get(proxy.addr(), host, "/");
        assert_eq!(response.status, 200, "Host: {host}: {}", response.text());
    }
}

#[test]
fn backend_statuses_pass_through_unchanged() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    for code in [201u16, 204, 304, 404, 418, 500, 503] {
        let response = client.get(ECHO_HOST, &format!("/status?code={code}"));
        assert_eq!(response.status, code);
        assert_eq!(
            response.header("x-proxy-error"),
            None,
            "a backend's own {code} is not a proxy error"
        );
    }
    assert_eq!(client.get(ECHO_HOST, "/after").status, 200);
}
