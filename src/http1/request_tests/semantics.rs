//! What a parsed head means: framing, keep-alive, upgrade, expect, ids and limits.

use super::*;

#[test]
fn framing_decisions() {
    let with = |fields: &str| {
        let text = format!("POST / HTTP/1.1\r\nHost: a\r\n{fields}\r\n");
        parse_request(text.as_bytes()).map(|h| h.map(|h| h.framing))
    };
    assert_eq!(
        with("Content-Length: 10\r\n"),
        Ok(Some(Framing::Length(10)))
    );
    assert_eq!(with("Content-Length: 0\r\n"), Ok(Some(Framing::Length(0))));
    assert_eq!(
        with("transfer-encoding: Chunked\r\n"),
        Ok(Some(Framing::Chunked))
    );
    assert_eq!(with(""), Ok(Some(Framing::None)));
    let status = |fields: &str| with(fields).map_err(|e| e.code.status()).err();
    assert_eq!(
        status("Content-Length: 1\r\nTransfer-Encoding: chunked\r\n"),
        Some(400)
    );
    assert_eq!(status("Transfer-Encoding: gzip, chunked\r\n"), Some(501));
    assert_eq!(status("Transfer-Encoding: chunked, gzip\r\n"), Some(400));
    assert_eq!(
        status("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        Some(400)
    );
    assert_eq!(status("Transfer-Encoding: \"chunked\"\r\n"), Some(400));
    assert_eq!(status("Content-Length: +1\r\n"), Some(400));
    assert_eq!(status("Content-Length: 1, 1\r\n"), Some(400));
    assert_eq!(
        status("Content-Length: 1\r\nContent-Length: 1\r\n"),
        Some(400)
    );
    assert_eq!(status("Content-Length:\r\n"), Some(400));
    let text = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(status_of(text), 400);
}

#[test]
fn keep_alive_table() {
    let keep_alive = |version: &str, connection: &str| {
        let text = format!("GET / {version}\r\nHost: a\r\n{connection}\r\n");
        parse(text.as_bytes()).keep_alive
    };
    assert!(keep_alive("HTTP/1.1", ""));
    assert!(!keep_alive("HTTP/1.1", "Connection: close\r\n"));
    assert!(!keep_alive("HTTP/1.1", "Connection: foo, CLOSE\r\n"));
    assert!(!keep_alive("HTTP/1.0", ""));
    assert!(keep_alive("HTTP/1.0", "Connection: Keep-Alive\r\n"));
    assert!(!keep_alive(
        "HTTP/1.0",
        "Connection: keep-alive\r\nConnection: close\r\n"
    ));
}

#[test]
fn upgrade_needs_the_option_the_field_and_not_h2c() {
    let upgrade = |version: &str, fields: &str| {
        let text = format!("GET / {version}\r\nHost: a\r\n{fields}\r\n");
        parse(text.as_bytes()).upgrade
    };
    assert!(upgrade(
        "HTTP/1.1",
        "Connection: Upgrade\r\nUpgrade: websocket\r\n"
    ));
    assert!(upgrade(
        "HTTP/1.1",
        "Connection: keep-alive, upgrade\r\nUpgrade: foo/2\r\n"
    ));
    assert!(!upgrade("HTTP/1.1", "Upgrade: websocket\r\n"));
    assert!(!upgrade("HTTP/1.1", "Connection: upgrade\r\n"));
    assert!(!upgrade(
        "HTTP/1.1",
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    ));
    assert!(!upgrade(
        "HTTP/1.1",
        "Connection: Upgrade\r\nUpgrade: websocket, H2C\r\n"
    ));
    assert!(!upgrade(
        "HTTP/1.0",
        "Connection: Upgrade\r\nUpgrade: websocket\r\n"
    ));
}

#[test]
fn expect_continue_only_in_http11() {
    let text = b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
    assert!(parse(text).expect_continue);
    let text = b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
    assert!(!parse(text).expect_continue);
    let text = b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n";
    assert!(!parse(text).expect_continue);
}

#[test]
fn client_request_ids() {
    let text = b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: abc-1\r\n\r\n";
    let head = parse(text);
    let id = head.request_id.as_ref().map(|h| at(text, &h.value));
    assert_eq!(id, Some(&b"abc-1"[..]));
    let text = b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a\r\nX-Request-Id: b\r\n\r\n";
    assert_eq!(parse(text).request_id, None);
    let text = b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id:\r\n\r\n";
    assert_eq!(parse(text).request_id, None);
    let text = b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: a b\r\n\r\n";
    assert_eq!(parse(text).request_id, None);
}

#[test]
fn forwarded_for_is_noticed() {
    let text = b"GET / HTTP/1.1\r\nHost: a\r\nx-forwarded-for: 1.2.3.4\r\n\r\n";
    assert!(parse(text).x_forwarded_for);
}

#[test]
fn limits() {
    let mut long = b"GET /".to_vec();
    long.resize(MAX_REQUEST_LINE, b'a');
    assert_eq!(status_of(&long), 414);
    long.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status_of(&long), 414);

    let mut fits = b"GET /".to_vec();
    fits.resize(MAX_REQUEST_LINE - VERSION_AND_CRLF - 1, b'a');
    fits.extend_from_slice(b" HTTP/1.1\r\nHost: a\r\n\r\n");
    parse(&fits);

    let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(status_of(&many), 431);

    let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    big.resize(MAX_HEAD, b'v');
    assert_eq!(status_of(&big), 431);
    big.extend_from_slice(b"\r\n\r\n");
    assert_eq!(status_of(&big), 431);
}

#[test]
fn an_unsupported_version_is_505_however_the_line_is_split() {
    let text = b"GET / HTTP/2.0\r\nHost: a\r\n\r\n";
    for end in 6..text.len() {
        match parse_request(&text[..end]) {
            Ok(None) => assert!(end < 16, "still waiting after {end} bytes"),
            Err(e) => {
                assert_eq!(e.code.status(), 505, "{end} bytes");
                assert!(end >= 16, "505 before the line ended ({end} bytes)");
            }
            Ok(Some(head)) => panic!("{head:?}"),
        }
    }
}

#[test]
fn methods_are_upper_case_tokens() {
    for method in [&b"GET"[..], b"M-SEARCH", b"BASELINE_CONTROL", b"PROPFIND"] {
        let mut text = method.to_vec();
        text.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        parse(&text);
    }
    for method in [&b"get"[..], b"Get", b"head", b"GET1", b"G.T", b"X!"] {
        let mut text = method.to_vec();
        text.extend_from_slice(b" / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(status_of(&text), 400, "{method:?}");
    }
}
