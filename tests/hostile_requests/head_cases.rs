//! The table of hostile requests, part two: request lines, fields, Host, limits and pipelining.

use super::cases::{case, get_with, no_check, post, Case, Expect, BAD};
use super::HOST;

pub fn head_cases() -> Vec<Case> {
    use Expect::*;
    let absolute = |target: &str, host: &str| {
        format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
    };
    let line = |request_line: &str| format!("{request_line}\r\nHost: {HOST}\r\n\r\n").into_bytes();
    vec![
        case(
            "Host missing",
            "GET / HTTP/1.1\r\n\r\n",
            Rejected("MISSING_HOST_HEADER", 400),
        ),
        case(
            "HTTP/1.0 without Host",
            "GET / HTTP/1.0\r\n\r\n",
            Rejected("MISSING_HOST_HEADER", 400),
        ),
        // Host rules: hyper and HAProxy refuse a repeated Host, nginx refuses invalid ones
        // (ngx_http_validate_host); Spawngate is strictest on the authority syntax (target.rs).
        case(
            "Host twice",
            format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nHost: {HOST}\r\n\r\n"),
            BAD,
        ),
        case("Host empty", "GET / HTTP/1.1\r\nHost: \r\n\r\n", BAD),
        case("Host a b", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BAD),
        case("Host a@b", "GET / HTTP/1.1\r\nHost: a@b\r\n\r\n", BAD),
        case("Host [::1", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", BAD),
        case("Host :80", "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", BAD),
        case(
            "Host with a path",
            format!("GET / HTTP/1.1\r\nHost: {HOST}/x\r\n\r\n"),
            BAD,
        ),
        case(
            "absolute-form disagrees with Host",
            absolute("http://other.test/", HOST),
            BAD,
        ),
        case(
            "absolute-form port disagrees",
            absolute(&format!("http://{HOST}:81/"), HOST),
            BAD,
        ),
        case(
            "absolute-form with userinfo",
            absolute(&format!("http://u@{HOST}/"), HOST),
            BAD,
        ),
        case(
            "absolute-form ftp",
            absolute(&format!("ftp://{HOST}/"), HOST),
            BAD,
        ),
        // Field syntax, all refused by httparse and by nginx/HAProxy/hyper alike (RFC 9112 5.1, 5.2).
        case(
            "space before colon",
            format!("GET / HTTP/1.1\r\nHost : {HOST}\r\n\r\n"),
            BAD,
        ),
        case("tab before colon", get_with("X-A\t: 1\r\n"), BAD),
        case("obs-fold", get_with("X-A: 1\r\n 2\r\n"), BAD),
        case("NUL in a value", get_with("X-A: a\0b\r\n"), BAD),
        case("control char in a value", get_with("X-A: a\x01b\r\n"), BAD),
        case("DEL in a value", get_with("X-A: a\x7fb\r\n"), BAD),
        case("space in a field name", get_with("X A: 1\r\n"), BAD),
        case("empty field name", get_with(": 1\r\n"), BAD),
        case("bare CR in a value", get_with("X-A: a\rb\r\n"), BAD),
        case(
            "bare LF ending the request line",
            format!("GET / HTTP/1.1\nHost: {HOST}\r\n\r\n"),
            BAD,
        ),
        case(
            "bare LF ending a field",
            format!("GET / HTTP/1.1\r\nHost: {HOST}\n\r\n"),
            BAD,
        ),
        case(
            "bare LF ending the head",
            format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n\n"),
            BAD,
        ),
        // Request line: one SP between parts (httparse default; nginx tolerates extra spaces, hyper
        // does not). Methods: nginx allows only A-Z, '-' and '_', so `get` is 400, as here.
        case("two spaces after the method", line("GET  / HTTP/1.1"), BAD),
        case("tab after the method", line("GET\t/ HTTP/1.1"), BAD),
        case("space after the version", line("GET / HTTP/1.1 "), BAD),
        case("leading space", line(" GET / HTTP/1.1"), BAD),
        case("lower-case method", line("get / HTTP/1.1"), BAD),
        case("mixed-case HEAD", line("Head / HTTP/1.1"), BAD),
        case(
            "HTTP/2.0",
            line("GET / HTTP/2.0"),
            Rejected("HTTP_VERSION_NOT_SUPPORTED", 505),
        ),
        case(
            "HTTP/1.2",
            line("GET / HTTP/1.2"),
            Rejected("HTTP_VERSION_NOT_SUPPORTED", 505),
        ),
        case("HTTP/1.1x", line("GET / HTTP/1.1x"), BAD),
        case("HTTP/1", line("GET / HTTP/1"), BAD),
        case("http/1.1 lower case", line("GET / http/1.1"), BAD),
        case("no version", line("GET /"), BAD),
        case("fragment in the target", line("GET /a#b HTTP/1.1"), BAD),
        case("non-ASCII target", line("GET /\u{e9} HTTP/1.1"), BAD),
        case("asterisk without OPTIONS", line("GET * HTTP/1.1"), BAD),
        case(
            "CONNECT",
            format!("CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n"),
            Rejected("NOT_IMPLEMENTED", 501),
        ),
        case(
            "long URI",
            line(&format!("GET /{} HTTP/1.1", "u".repeat(9000))),
            Rejected("URI_TOO_LONG", 414),
        ),
        case(
            "too many fields",
            get_with(
                &(0..101)
                    .map(|i| format!("X-F{i}: v\r\n"))
                    .collect::<String>(),
            ),
            Rejected("HEADER_FIELDS_TOO_LARGE", 431),
        ),
        case(
            "one huge field",
            get_with(&format!("X-Big: {}\r\n", "b".repeat(65 * 1024))),
            Rejected("HEADER_FIELDS_TOO_LARGE", 431),
        ),
    ]
}

pub fn pipelining_cases() -> Vec<Case> {
    use Expect::*;
    let follow = format!("GET /smuggled HTTP/1.1\r\nHost: {HOST}\r\n\r\n");
    vec![
        // The classic CL.TE / TE.CL attempts: whatever follows the refused head must never reach the
        // backend, even as a well-formed request in the same segment.
        case(
            "CL.TE smuggle then a valid request",
            post(
                "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
                &format!("0\r\n\r\nX{follow}"),
            ),
            BAD,
        ),
        case(
            "TE.CL smuggle then a valid request",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
                &format!("8\r\nSMUGGLED\r\n0\r\n\r\n{follow}"),
            ),
            BAD,
        ),
        case(
            "obfuscated TE then a valid request",
            post(
                "Transfer-Encoding: xchunked\r\n",
                &format!("0\r\n\r\n{follow}"),
            ),
            BAD,
        ),
        case(
            "bad Host then a valid request",
            format!("GET / HTTP/1.1\r\nHost: a b\r\n\r\n{follow}"),
            BAD,
        ),
        // Valid requests back to back are each forwarded, re-serialised.
        case(
            "two pipelined requests",
            post("Content-Length: 5\r\n", &format!("hello{follow}")),
            Forwarded(&["POST / HTTP/1.1", "GET /smuggled HTTP/1.1"], |r| {
                assert_eq!(r[0].body, b"hello");
            }),
        ),
        case(
            "leading empty line",
            format!("\r\nGET /lead HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
            Forwarded(&["GET /lead HTTP/1.1"], no_check),
        ),
        case(
            "absolute-form agreeing with Host",
            format!("GET http://{HOST}/abs?q=1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
            Forwarded(&["GET /abs?q=1 HTTP/1.1"], |r| {
                assert_eq!(r[0].header("host"), [HOST])
            }),
        ),
        case(
            "HTTP/1.0 absolute-form without Host",
            format!("GET http://{HOST}/old HTTP/1.0\r\n\r\n"),
            Forwarded(&["GET /old HTTP/1.0"], |r| {
                assert_eq!(r[0].header("host"), [HOST])
            }),
        ),
        case(
            "obs-text in a value",
            get_with("X-Text: caf\u{e9}\r\n"),
            Forwarded(&["GET / HTTP/1.1"], |r| {
                assert_eq!(r[0].header("x-text"), ["caf\u{e9}"])
            }),
        ),
    ]
}
