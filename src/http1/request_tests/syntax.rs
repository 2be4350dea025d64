//! The request line, the target, the version and the field syntax.

use super::*;

#[test]
fn simple_get() {
    let text = b"GET /a?b=c HTTP/1.1\r\nHost: Example.COM:8080\r\nAccept: */*\r\n\r\n";
    let head = parse(text);
    assert_eq!(head.len, text.len());
    assert_eq!(at(text, &head.method), b"GET");
    assert_eq!(at(text, &head.target), b"/a?b=c");
    assert_eq!(at(text, &head.origin_form), b"/a?b=c");
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.headers.len(), 2);
    assert_eq!(at(text, &head.headers[1].name), b"Accept");
    assert_eq!(at(text, &head.headers[1].value), b"*/*");
    assert_eq!(
        head.host.as_ref().map(|h| at(text, h)),
        Some(&b"Example.COM"[..])
    );
    assert_eq!(
        head.authority.as_ref().map(|h| at(text, h)),
        Some(&b"Example.COM:8080"[..])
    );
    assert_eq!(head.framing, Framing::None);
    assert!(head.keep_alive && !head.upgrade && !head.expect_continue && !head.is_head);
    assert_eq!(head.request_id, None);
    assert!(!head.x_forwarded_for);
}

#[test]
fn pipelined_requests_parse_one_head_at_a_time() {
    let first = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n".to_vec();
    let mut text = first.clone();
    text.extend_from_slice(b"abcGET /y HTTP/1.1\r\nHost: a\r\n\r\n");
    let head = parse(&text);
    assert_eq!(head.len, first.len());
    assert_eq!(head.framing, Framing::Length(3));
    let rest = &text[head.len + 3..];
    let second = parse(rest);
    assert_eq!(second.len, rest.len());
    assert_eq!(at(rest, &second.target), b"/y");
}

#[test]
fn every_prefix_of_a_valid_head_needs_more() {
    let text = b"\r\nPUT /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    for end in 0..text.len() {
        assert_eq!(parse_request(&text[..end]), Ok(None), "prefix {end}");
    }
    let head = parse(text);
    assert_eq!(head.framing, Framing::Chunked);
    assert_eq!(at(text, &head.method), b"PUT");
}

#[test]
fn every_prefix_of_an_invalid_head_needs_more_or_gives_the_same_error() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n",
    ];
    for text in cases {
        let full = parse_request(text);
        assert!(full.is_err());
        for end in 0..text.len() {
            let partial = parse_request(&text[..end]);
            assert!(partial == Ok(None) || partial == full, "{text:?} at {end}");
        }
    }
}

#[test]
fn absolute_form_is_forwarded_in_origin_form() {
    let text = b"GET http://App.Example:81/p?q HTTP/1.1\r\nHost: app.example:81\r\n\r\n";
    let head = parse(text);
    assert_eq!(at(text, &head.target), b"http://App.Example:81/p?q");
    assert_eq!(at(text, &head.origin_form), b"/p?q");
    assert_eq!(
        head.host.as_ref().map(|h| at(text, h)),
        Some(&b"app.example"[..])
    );

    let text = b"GET http://a.b HTTP/1.1\r\nHost: a.b\r\n\r\n";
    assert_eq!(at(text, &parse(text).origin_form), b"");
}

#[test]
fn absolute_form_must_agree_with_host() {
    assert_eq!(
        status_of(b"GET http://a.b/ HTTP/1.1\r\nHost: c.d\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of(b"GET http://a.b/ HTTP/1.1\r\nHost: a.b:80\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of(b"GET http://a.b:80/ HTTP/1.1\r\nHost: a.b\r\n\r\n"),
        400
    );
    assert_eq!(
        status_of(b"GET http://a.b:80/ HTTP/1.1\r\nHost: a.b:8080\r\n\r\n"),
        400
    );
    parse(b"GET http://A.B:80/ HTTP/1.1\r\nHost: a.b:80\r\n\r\n");
}

#[test]
fn host_is_required_in_http11_but_not_in_http10() {
    let head = parse(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(head.host, None);
    let head = parse(b"GET http://a.b/ HTTP/1.1\r\n\r\n");
    assert_eq!(head.host, None);
    let head = parse(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(head.host, None);
    let text = b"GET http://a.b:8/x HTTP/1.0\r\n\r\n";
    let head = parse(text);
    assert_eq!(head.host.as_ref().map(|h| at(text, h)), Some(&b"a.b"[..]));
    assert_eq!(
        head.authority.as_ref().map(|h| at(text, h)),
        Some(&b"a.b:8"[..])
    );
}

#[test]
fn bad_host_fields_are_refused() {
    for host in [
        &b""[..],
        b"a b",
        b"a,b",
        b"a:x",
        b"a:",
        b"[::1",
        b"a/b",
        b"u@a",
    ] {
        let mut text = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        text.extend_from_slice(host);
        text.extend_from_slice(b"\r\n\r\n");
        assert_eq!(status_of(&text), 400, "{host:?}");
    }
    assert_eq!(
        status_of(b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"),
        400
    );
    let text = b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n";
    assert_eq!(
        parse(text).host.as_ref().map(|h| at(text, h)),
        Some(&b"[::1]"[..])
    );
}

#[test]
fn target_forms_and_methods() {
    parse(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(status_of(b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        status_of(b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
        501
    );
    assert_eq!(status_of(b"GET a.b:443 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(
        status_of("GET /é HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes()),
        400
    );
    assert_eq!(status_of(b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert!(parse(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n").is_head);
}

#[test]
fn versions() {
    assert_eq!(parse(b"GET / HTTP/1.0\r\n\r\n").version, Version::Http10);
    for unsupported in [&b"HTTP/2.0"[..], b"HTTP/1.2", b"HTTP/0.9", b"HTTP/9.9"] {
        let mut text = b"GET / ".to_vec();
        text.extend_from_slice(unsupported);
        text.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        assert_eq!(status_of(&text), 505, "{unsupported:?}");
    }
    for garbage in [
        &b"http/1.1"[..],
        b"HTTP/x",
        b"HTTX/1.1",
        b"HTTP/1.1 ",
        b"HTTP/1.1x",
        b"HTTP/2.0x",
        b"HTTP/3",
        b"HTTP/10.0",
        b"HTTP/2.0 ",
    ] {
        let mut text = b"GET / ".to_vec();
        text.extend_from_slice(garbage);
        text.extend_from_slice(b"\r\nHost: a\r\n\r\n");
        assert_eq!(status_of(&text), 400, "{garbage:?}");
    }
    assert_eq!(status_of(b"GET /\r\n\r\n"), 400);
}

#[test]
fn only_crlf_line_endings() {
    assert_eq!(status_of(b"GET / HTTP/1.1\nHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: a\n\r\n"), 400);
    assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: a\r\n\n"), 400);
    assert_eq!(status_of(b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n"), 400);
    assert_eq!(status_of(b"GET / HTTP/1.1\r\r\nHost: a\r\n\r\n"), 400);
    let text = b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = parse(text);
    assert_eq!(head.len, text.len());
    assert_eq!(at(text, &head.method), b"GET");
}

#[test]
fn malformed_fields() {
    for field in [
        &b"Host : a"[..],
        b"Host\t: a",
        b" X: folded",
        b"X: a\r\n folded",
        b"X: a\0b",
        b"X: a\x7fb",
        b"X: a\x0bb",
        b"X a",
        b": a",
        b"X(: a",
    ] {
        let mut text = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        text.extend_from_slice(field);
        text.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            status_of(&text),
            400,
            "{:?}",
            String::from_utf8_lossy(field)
        );
    }
}
