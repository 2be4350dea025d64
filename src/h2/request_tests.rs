use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::http1::rewrite::{ForwardInfo, ForwardPlan};

fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
    parts_with(Method::GET, uri, headers)
}

fn parts_with(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn code(result: Result<Inspected, ProxyError>) -> ErrorCode {
    result.unwrap_err().code
}

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

#[test]
fn routes_by_authority_without_port_in_lower_case() {
    let request = parts("http://Echo.Test.:8080/a?b=c", &[]);
    let inspected = inspect(&request, false, None).unwrap();
    assert_eq!(inspected.host, "echo.test");
    assert_eq!(inspected.authority(&request), b"Echo.Test.:8080");
    assert_eq!(inspected.body, BodyPlan::None);
    assert!(!inspected.is_head);
}

#[test]
fn falls_back_to_host_and_rejects_disagreement_or_absence() {
    let request = parts("/x", &[("host", "a.test:1")]);
    let inspected = inspect(&request, false, None).unwrap();
    assert_eq!(inspected.host, "a.test");
    assert_eq!(inspected.authority(&request), b"a.test:1");
    assert_eq!(
        code(inspect(&parts("/x", &[]), false, None)),
        ErrorCode::MissingHostHeader
    );
    assert_eq!(
        code(inspect(
            &parts("http://a.test/x", &[("host", "b.test")]),
            false,
            None
        )),
        ErrorCode::BadRequest
    );
    assert!(inspect(
        &parts("http://a.test/x", &[("host", "A.TEST")]),
        false,
        None
    )
    .is_ok());
    assert_eq!(
        code(inspect(
            &parts("/x", &[("host", "a.test"), ("host", "a.test")]),
            false,
            None
        )),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(inspect(&parts("/x", &[("host", "a b")]), false, None)),
        ErrorCode::BadRequest
    );
    assert_eq!(
        code(inspect(&parts("http://u@a.test/x", &[]), false, None)),
        ErrorCode::BadRequest
    );
}

#[test]
fn framing_comes_from_content_length_or_the_presence_of_a_body() {
    let declared = parts_with(Method::POST, "http://a/", &[("content-length", "5")]);
    assert_eq!(
        inspect(&declared, true, None).unwrap().body,
        BodyPlan::Length(5)
    );
    let open = parts_with(Method::POST, "http://a/", &[]);
    assert_eq!(inspect(&open, true, None).unwrap().body, BodyPlan::Chunked);
    assert_eq!(
        code(inspect(&declared, true, Some(4))),
        ErrorCode::PayloadTooLarge
    );
    let conflicting = parts_with(
        Method::POST,
        "http://a/",
        &[("content-length", "5"), ("content-length", "6")],
    );
    assert_eq!(
        code(inspect(&conflicting, true, None)),
        ErrorCode::BadRequest
    );
    let signed = parts_with(Method::POST, "http://a/", &[("content-length", "+5")]);
    assert_eq!(code(inspect(&signed, true, None)), ErrorCode::BadRequest);
}

#[test]
fn connect_and_huge_targets_are_refused() {
    let connect = parts_with(Method::CONNECT, "a.test:443", &[]);
    assert_eq!(
        code(inspect(&connect, false, None)),
        ErrorCode::NotImplemented
    );
    let long = format!("http://a/{}", "x".repeat(MAX_REQUEST_LINE));
    assert_eq!(
        code(inspect(&parts(&long, &[]), false, None)),
        ErrorCode::UriTooLong
    );
}

#[test]
fn request_ids_are_kept_when_sane_and_made_otherwise() {
    let mut ids = RequestIdGenerator::new([1, 2]);
    assert_eq!(
        request_id(&parts("http://a/", &[("x-request-id", "abc")]), &mut ids),
        b"abc"
    );
    let made = request_id(&parts("http://a/", &[("x-request-id", "a b")]), &mut ids);
    assert_eq!(made.len(), 32);
    let two = parts(
        "http://a/",
        &[("x-request-id", "abc"), ("x-request-id", "def")],
    );
    assert_eq!(request_id(&two, &mut ids).len(), 32);
}

fn head_for(parts: &Parts, has_body: bool, ip: IpAddr) -> String {
    let inspected = inspect(parts, has_body, None).unwrap();
    let mut out = Vec::new();
    let client_ip = ip.to_canonical().to_string();
    let plan = ForwardPlan::default();
    let info = ForwardInfo::new(client_ip.as_str().into(), b"rid");
    write_forwarded(parts, &inspected, &plan, &info, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_forwarded_head_carries_proxy_fields_and_our_framing() {
    let request = parts_with(
        Method::POST,
        "http://a.test:81/p?q=1",
        &[
            ("user-agent", "t"),
            ("te", "trailers"),
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-host", "spoofed"),
            ("x-forwarded-proto", "https"),
            ("x-request-id", "client"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("content-length", "3"),
        ],
    );
    // Cookie and Content-Length stay where the client put them, under the names it used, as for
    // HTTP/1 (the h2-only writer used to move them to the end and capitalise them).
    assert_eq!(
        head_for(&request, true, CLIENT),
        "POST /p?q=1 HTTP/1.1\r\n\
         Host: a.test:81\r\n\
         user-agent: t\r\n\
         cookie: a=1; b=2\r\n\
         content-length: 3\r\n\
         X-Forwarded-For: 1.1.1.1, 10.1.2.3\r\n\
         X-Forwarded-Host: a.test:81\r\n\
         X-Forwarded-Proto: http\r\n\
         X-Request-ID: rid\r\n\r\n"
    );
}

#[test]
fn bodies_without_length_are_chunked_and_options_targets_stay() {
    let request = parts_with(Method::PUT, "http://a/", &[]);
    let head = head_for(&request, true, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert!(head.starts_with("PUT / HTTP/1.1\r\nHost: a\r\n"), "{head}");
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(head.contains("X-Forwarded-For: ::1\r\n"), "{head}");
    let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
    let head = head_for(&parts("http://a/", &[]), false, mapped);
    assert!(head.contains("X-Forwarded-For: 127.0.0.1\r\n"), "{head}");
    assert!(!head.contains("Transfer-Encoding"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    let options = parts_with(Method::OPTIONS, "*", &[("host", "a")]);
    let head = head_for(&options, false, CLIENT);
    assert!(
        head.starts_with("OPTIONS * HTTP/1.1\r\nHost: a\r\n"),
        "{head}"
    );
}
