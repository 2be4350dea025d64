//! Malformed, ambiguous or oversized requests are answered by the proxy itself (JSON error, connection
//! closed) and never reach a backend; so are requests beyond the configured limits.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// Sends `raw` on a fresh connection and checks the error answer, the closed connection, and that the
/// backend was never started for it.
fn assert_rejected(proxy: &Proxy, raw: &[u8], codes: &[(&str, u16)]) {
    let mut client = send(proxy.addr(), raw);
    let response = client
        .try_read_response()
        .unwrap_or_else(|e| panic!("no answer to {:?}: {e}", String::from_utf8_lossy(raw)));
    let code = response.header("x-proxy-error").unwrap_or("").to_string();
    let &(code, status) = codes.iter().find(|(c, _)| *c == code).unwrap_or_else(|| {
        panic!(
            "expected one of {codes:?} for {:?}, got {} {:?} {}",
            String::from_utf8_lossy(raw),
            response.status,
            response.headers,
            response.text()
        )
    });
    assert_proxy_error(&response, code, status);
    assert!(
        client.closed_by_peer_within(Duration::from_secs(5)),
        "the connection stays open after a malformed request"
    );
    assert_eq!(
        proxy.state_of(ECHO_HOST),
        "stopped",
        "a rejected request started the backend"
    );
}

const BAD_REQUEST: (&str, u16) = ("BAD_REQUEST", 400);

#[test]
fn ambiguous_framing_is_rejected() {
    let proxy = proxy_with_echo("", &[]);
    let host = format!("Host: {ECHO_HOST}\r\n");
    let cases: Vec<String> = vec![
        format!("POST / HTTP/1.1\r\n{host}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        format!("POST / HTTP/1.1\r\n{host}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        format!("POST / HTTP/1.1\r\n{host}Content-Length: -1\r\n\r\n"),
        format!("POST / HTTP/1.1\r\n{host}Content-Length: 1x\r\n\r\nabc"),
        format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: chunked, gzip\r\n\r\n"),
    ];
    for case in cases {
        assert_rejected(&proxy, case.as_bytes(), &[BAD_REQUEST]);
    }
    let unknown_coding = format!("POST / HTTP/1.1\r\n{host}Transfer-Encoding: gzip\r\n\r\n");
    assert_rejected(
        &proxy,
        unknown_coding.as_bytes(),
        &[BAD_REQUEST, ("NOT_IMPLEMENTED", 501)],
    );
}

#[test]
fn malformed_heads_are_rejected() {
    let proxy = proxy_with_echo("", &[]);
    let cases: Vec<Vec<u8>> = vec![
        format!("GET / HTTP/1.1\r\nHost : {ECHO_HOST}\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: {ECHO_HOST}\r\nX-Folded: a\r\n b\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\r\nHost: {ECHO_HOST}\r\nHost: other.test\r\n\r\n").into_bytes(),
        format!("GET / HTTP/1.1\nHost: {ECHO_HOST}\n\n").into_bytes(),
        format!("GET /a b HTTP/1.1\r\nHost: {ECHO_HOST}\r\n\r\n").into_bytes(),
    ];
    for case in cases {
        assert_rejected(&proxy, &case, &[BAD_REQUEST]);
    }
    let version = format!("GET / HTTP/3.0\r\nHost: {ECHO_HOST}\r\n\r\n");
    assert_rejected(
        &proxy,
        version.as_bytes(),
        &[BAD_REQUEST, ("HTTP_VERSION_NOT_SUPPORTED", 505)],
    );
}

#[test]
fn oversized_heads_are_rejected() {
    let proxy = proxy_with_echo("", &[]);
    let long_target = format!(
        "GET /{} HTTP/1.1\r\nHost: {ECHO_HOST}\r\n\r\n",
        "a".repeat(16 * 1024)
    );
    assert_rejected(&proxy, long_target.as_bytes(), &[("URI_TOO_LONG", 414)]);

    let big_field = format!(
        "GET / HTTP/1.1\r\nHost: {ECHO_HOST}\r\nX-Big: {}\r\n\r\n",
        "b".repeat(70 * 1024)
    );
    assert_rejected(
        &proxy,
        big_field.as_bytes(),
        &[("HEADER_FIELDS_TOO_LARGE", 431)],
    );

    let many: String = (0..200).map(|i| format!("X-Field-{i}: v\r\n")).collect();
    let many_fields = format!("GET / HTTP/1.1\r\nHost: {ECHO_HOST}\r\n{many}\r\n");
    assert_rejected(
        &proxy,
        many_fields.as_bytes(),
        &[("HEADER_FIELDS_TOO_LARGE", 431)],
    );
}

fn proxy_with_server_keys(keys: &str) -> Proxy {
    Proxy::start(&format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\n{keys}\n\n{}",
        echo_backend(ECHO_HOST, free_port(), "", &[])
    ))
}

#[test]
fn a_body_over_the_limit_is_413() {
    let proxy = proxy_with_server_keys("max_request_body_bytes = 10");
    let raw = build_request("POST", ECHO_HOST, "/", &[], b"eleven byte");
    assert_rejected(&proxy, &raw, &[("PAYLOAD_TOO_LARGE", 413)]);
    let response = get(proxy.addr(), ECHO_HOST, "/");
    assert_eq!(response.status, 200, "a bodiless request still passes");
}

#[test]
fn a_head_sent_too_slowly_is_408() {
    let proxy = proxy_with_server_keys("header_read_timeout_secs = 1");
    let started = Instant::now();
    let mut client = send(
        proxy.addr(),
        format!("GET / HTTP/1.1\r\nHost: {ECHO_HOST}\r\n").as_bytes(),
    );
    let response = client.read_response();
    let took = started.elapsed();
    assert_proxy_error(&response, "CLIENT_TIMEOUT", 408);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "408 after {took:?}"
    );
    assert!(client.closed_by_peer_within(Duration::from_secs(5)));
}

/// Ten requests arrive together while the backend takes 3 s to listen: two are held, eight refused.
#[test]
fn requests_beyond_the_held_limit_are_refused_while_a_backend_starts() {
    let proxy = Proxy::start(&format!(
        "[server]\nport = 0\nadmin_port = 0\nbind = \"127.0.0.1\"\nmax_held_requests = 2\n\n{}",
        echo_backend(
            ECHO_HOST,
            free_port(),
            "",
            &[("ECHO_START_DELAY_MS", "3000")]
        )
    ));
    let addr = proxy.addr();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(10));
    let requests: Vec<_> = (0..10)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                get(addr, ECHO_HOST, &format!("/held/{i}"))
            })
        })
        .collect();
    let responses: Vec<Response> = requests.into_iter().map(|r| r.join().unwrap()).collect();
    let served = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        served, 2,
        "only max_held_requests requests wait for the start"
    );
    for refused in responses.iter().filter(|r| r.status != 200) {
        assert_proxy_error(refused, "TOO_MANY_WAITING_REQUESTS", 503);
    }
}
