//! The test backend on its own, so a failure in the proxy tests is never the backend's fault unnoticed.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use support::*;

#[test]
fn describes_requests_as_json_with_headers_in_received_case_and_order() {
    let echo = EchoServer::start(&[]);
    let mut client = Client::connect(echo.addr());
    let response = client.request(
        "POST",
        "a.test",
        "/x/y?q=1",
        &["X-MiXed-Case: v1", "x-second: v2"],
        b"hello",
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let pid = echo.pid().to_string();
    assert_eq!(response.header("X-Echo-Pid"), Some(pid.as_str()));
    let json = response.json();
    assert_eq!(json["method"], "POST");
    assert_eq!(json["path"], "/x/y?q=1");
    assert_eq!(json["version"], "HTTP/1.1");
    assert_eq!(json["body_len"], 5);
    assert_eq!(json["pid"], echo.pid());
    let headers = echoed_headers(&json);
    assert_eq!(headers[0], ("Host".to_string(), "a.test".to_string()));
    assert_eq!(headers[1], ("X-MiXed-Case".to_string(), "v1".to_string()));
    assert_eq!(headers[2], ("x-second".to_string(), "v2".to_string()));
}

#[test]
fn keeps_connections_alive_and_answers_pipelined_requests_in_order() {
    let echo = EchoServer::start(&[]);
    let mut client = Client::connect(echo.addr());
    let mut raw = Vec::new();
    for i in 0..5 {
        raw.extend(build_request("GET", "a", &format!("/n{i}"), &[], b""));
    }
    client.send(&raw);
    for i in 0..5 {
        let response = client.read_response();
        assert_eq!(response.json()["path"], format!("/n{i}"));
    }
    assert_eq!(client.get("a", "/health").text(), "ok");
}

#[test]
fn echoes_fixed_and_chunked_bodies_with_the_same_framing() {
    let echo = EchoServer::start(&[]);
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut client = Client::connect(echo.addr());
    let response = client.request("POST", "a", "/echo", &[], &body);
    assert_eq!(response.header("content-length"), Some("300000"));
    assert!(response.body == body, "fixed-length echo differs");

    let mut raw = build_request("PUT", "a", "/echo", &["Transfer-Encoding: chunked"], b"");
    for piece in body.chunks(70_000) {
        raw.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend(piece);
        raw.extend(b"\r\n");
    }
    raw.extend(b"0\r\n\r\n");
    let mut writer = client.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&raw).unwrap());
    let response = client.read_response();
    sender.join().unwrap();
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert!(response.body == body, "chunked echo differs");
}

#[test]
fn streams_the_pattern_with_either_framing() {
    let echo = EchoServer::start(&[]);
    let mut client = Client::connect(echo.addr());
    for path in [
        "/stream?bytes=100000",
        "/stream?bytes=100000&chunked=1&chunk=999",
    ] {
        let response = client.get("a", path);
        assert_eq!(response.body.len(), 100_000, "{path}");
        assert!(response
            .body
            .iter()
            .enumerate()
            .all(|(i, &b)| b == pattern_byte(i as u64)));
    }
    let head = client.request("HEAD", "a", "/stream?bytes=5", &[], b"");
    assert_eq!(head.header("content-length"), Some("5"));
    assert!(head.body.is_empty());
    assert_eq!(client.get("a", "/status?code=418").status, 418);
    assert_eq!(client.get("a", "/status?code=204").status, 204);
    let slow = std::time::Instant::now();
    assert_eq!(client.get("a", "/slow?ms=200").status, 200);
    assert!(slow.elapsed() >= Duration::from_millis(200));
}

#[test]
fn close_ends_the_connection_and_exit_ends_the_process() {
    let mut echo = EchoServer::start(&[]);
    let mut client = Client::connect(echo.addr());
    let response = client.get("a", "/close");
    assert!(response.closes());
    assert!(client.closed_by_peer_within(Duration::from_secs(5)));
    let response = get(echo.addr(), "a", "/exit");
    assert_eq!(response.status, 200);
    let status = echo
        .wait_exit(Duration::from_secs(5))
        .expect("echo exits after /exit");
    assert!(status.success(), "{status}");
}

#[test]
fn startup_knobs() {
    let dir = TempDir::new("echo-knobs");
    let log = dir.file("starts.log");
    let fail = dir.file("fail");
    std::fs::write(&fail, "").unwrap();
    let echo = EchoServer::start(&[
        ("ECHO_START_LOG", log.to_str().unwrap()),
        ("ECHO_HEALTH_FAIL_FILE", fail.to_str().unwrap()),
    ]);
    assert_eq!(start_log_pids(&log), vec![echo.pid()]);
    assert_eq!(get(echo.addr(), "a", "/health").status, 500);
    std::fs::remove_file(&fail).unwrap();
    assert_eq!(get(echo.addr(), "a", "/health").status, 200);

    let never = EchoServer::start(&[("ECHO_NEVER_HEALTHY", "1")]);
    assert_eq!(get(never.addr(), "a", "/health").status, 503);

    let status = Command::new(echo_bin())
        .env("PORT", free_port().to_string())
        .env("ECHO_EXIT_AT_START", "7")
        .env("ECHO_START_LOG", log.to_str().unwrap())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    assert_eq!(start_log_pids(&log).len(), 2);
}

#[test]
fn ready_callback_posts_to_the_ready_url() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ready/a.test", listener.local_addr().unwrap());
    let echo = EchoServer::start(&[
        ("ECHO_READY_CALLBACK", "1"),
        ("SERVERLESS_PROXY_READY_URL", &url),
    ]);
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "POST /ready/a.test HTTP/1.1\r\n");
    (&stream)
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    assert_eq!(get(echo.addr(), "a", "/health").status, 503);
}

#[test]
fn upgrade_switches_to_echoing_raw_bytes() {
    let echo = EchoServer::start(&[]);
    let mut client = send(
        echo.addr(),
        b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo-test\r\n\r\nearly",
    );
    let (status, headers) = client.read_head();
    assert_eq!(status, 101);
    assert!(headers.contains(&("Upgrade".to_string(), "echo-test".to_string())));
    let mut buf = [0u8; 5];
    std::io::Read::read_exact(client.reader(), &mut buf).unwrap();
    assert_eq!(&buf, b"early");
    client.send(b"later");
    std::io::Read::read_exact(client.reader(), &mut buf).unwrap();
    assert_eq!(&buf, b"later");
}
