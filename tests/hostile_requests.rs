//! Request smuggling and malformed requests, one table: each case goes over a raw socket to the real
//! proxy in front of a recording backend, and the test checks the answer, that the connection is closed
//! when it must be, and what reached the backend (nothing, or exactly the re-serialised request).
//!
//! Where the strictest of nginx, HAProxy and hyper is stricter than RFC 9112 requires, Spawngate follows
//! it; the comment on each group names the reference (nginx `src/http/ngx_http_parse.c` and
//! `ngx_http_request.c`, HAProxy `src/h1.c` `h1_headers_to_hdr_list`, hyper `src/proto/h1/role.rs`).

mod support;

use std::time::Duration;

use support::recorder::{Recorded, Recorder};
use support::*;

const HOST: &str = "rec.test";

/// What the proxy must do with one case.
enum Expect {
    /// Answered with this error and closed; the backend receives nothing.
    Rejected(&'static str, u16),
    /// The head was forwarded before the body turned out malformed: the client gets a 400 or a closed
    /// connection, the backend connection is closed before a complete body, and nothing follows it.
    BodyCutOff,
    /// Forwarded: the backend receives these request lines (in order) and the check passes on each.
    Forwarded(&'static [&'static str], fn(&[Recorded])),
}

struct Case {
    name: &'static str,
    raw: Vec<u8>,
    expect: Expect,
}

fn no_check(_: &[Recorded]) {}

fn case(name: &'static str, raw: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        raw: raw.into(),
        expect,
    }
}

/// `POST / HTTP/1.1` to HOST with extra head lines (each ending in CRLF) and then `rest`.
fn post(lines: &str, rest: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n{rest}").into_bytes()
}

fn get_with(lines: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n").into_bytes()
}

fn chunked(body: &str) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

const BAD: Expect = Expect::Rejected("BAD_REQUEST", 400);

fn framing_cases() -> Vec<Case> {
    use Expect::*;
    // RFC 9112 6.3 says a CL+TE request "ought to" be handled as an error; HAProxy (h1.c) and hyper
    // (role.rs) reject or drop CL, nginx rejects since 1.23: all three close. Spawngate: 400 + close.
    let mut cases = vec![
        case(
            "CL then TE",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            BAD,
        ),
        case(
            "TE then CL",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "0\r\n\r\n",
            ),
            BAD,
        ),
        case(
            "TE chunked twice in a list",
            post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE on two lines",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            BAD,
        ),
        case(
            "TE identity",
            post("Transfer-Encoding: identity\r\n", ""),
            BAD,
        ),
        case(
            "TE x-chunked",
            post("Transfer-Encoding: x-chunked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE chunked;q=1",
            post("Transfer-Encoding: chunked;q=1\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE quoted",
            post("Transfer-Encoding: \"chunked\"\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE chunked, identity",
            post("Transfer-Encoding: chunked, identity\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE empty",
            post("Transfer-Encoding: \r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE chun ked",
            post("Transfer-Encoding: chun ked\r\n", "0\r\n\r\n"),
            BAD,
        ),
        case(
            "TE unknown coding only",
            post("Transfer-Encoding: gzip\r\n", ""),
            BAD,
        ),
        // A valid list with a coding the proxy cannot relay: 501 like nginx (HAProxy and hyper relay it).
        case(
            "TE gzip, chunked",
            post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
            Rejected("NOT_IMPLEMENTED", 501),
        ),
        case(
            "TE in HTTP/1.0",
            format!(
                "POST / HTTP/1.0\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ),
            BAD,
        ),
        // Content-Length must be 1*DIGIT: nginx (ngx_atoof), HAProxy (h1_parse_cont_len_header) and
        // hyper (HeaderValue -> u64) refuse signs, hex, lists of different values; Spawngate also
        // refuses repeated equal values, which RFC 9112 8.6 allows refusing.
        case("CL letters", post("Content-Length: abc\r\n", ""), BAD),
        case("CL +5", post("Content-Length: +5\r\n", "hello"), BAD),
        case("CL -1", post("Content-Length: -1\r\n", ""), BAD),
        case(
            "CL overflow",
            post("Content-Length: 99999999999999999999999\r\n", ""),
            BAD,
        ),
        case("CL 5, 5", post("Content-Length: 5, 5\r\n", "hello"), BAD),
        case(
            "CL two different lines",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
            BAD,
        ),
        case(
            "CL two equal lines",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            BAD,
        ),
        case("CL empty", post("Content-Length: \r\n", ""), BAD),
        case("CL 0x5", post("Content-Length: 0x5\r\n", "hello"), BAD),
        case("CL 5.0", post("Content-Length: 5.0\r\n", "hello"), BAD),
        case("CL 5 5", post("Content-Length: 5 5\r\n", "hello"), BAD),
    ];
    // OWS around a value is not part of it (RFC 9110 5.5) and the TE coding name is case-insensitive,
    // so these are chunked to every parser; the backend still gets the one canonical spelling.
    for (name, te) in [
        ("TE Chunked", "Chunked"),
        ("TE chunked with trailing space", "chunked "),
        ("TE tab before chunked", "\tchunked"),
        ("TE CHUNKED", "CHUNKED"),
    ] {
        cases.push(case(
            name,
            post(
                &format!("Transfer-Encoding: {te}\r\n"),
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            Forwarded(&["POST / HTTP/1.1"], |r| {
                assert_eq!(
                    r[0].header("transfer-encoding"),
                    ["chunked"],
                    "{}",
                    r[0].head
                );
                assert_eq!(r[0].body, b"5\r\nhello\r\n0\r\n\r\n");
            }),
        ));
    }
    cases.push(case(
        "CL with leading zeros",
        post("Content-Length: 005\r\n", "hello"),
        Forwarded(&["POST / HTTP/1.1"], |r| {
            assert_eq!(r[0].header("content-length"), ["5"], "{}", r[0].head);
            assert_eq!(r[0].body, b"hello");
        }),
    ));
    cases
}

fn chunk_cases() -> Vec<Case> {
    // The strict decoder (src/http1/chunked.rs): hyper's decode.rs refuses the same size and CRLF
    // errors; nginx (ngx_http_parse_chunked) allows no sign, 0x or space; HAProxy (h1_parse_chunk_size)
    // refuses bare LF since 2.x. Extensions are bounded at 4 KiB and trailers at 16 KiB.
    let long_extension = format!("5;x={}\r\nhello\r\n0\r\n\r\n", "e".repeat(5000));
    let long_trailer = format!("0\r\nX-T: {}\r\n\r\n", "t".repeat(17 * 1024));
    [
        ("chunk size empty", "\r\nhello\r\n0\r\n\r\n".to_string()),
        (
            "chunk size signed -",
            "-5\r\nhello\r\n0\r\n\r\n".to_string(),
        ),
        (
            "chunk size signed +",
            "+5\r\nhello\r\n0\r\n\r\n".to_string(),
        ),
        ("chunk size 0x", "0x5\r\nhello\r\n0\r\n\r\n".to_string()),
        (
            "chunk size 17 digits",
            "00000000000000005\r\nhello\r\n0\r\n\r\n".to_string(),
        ),
        ("chunk size not hex", "g\r\nhello\r\n0\r\n\r\n".to_string()),
        (
            "chunk size space before CRLF",
            "5 \r\nhello\r\n0\r\n\r\n".to_string(),
        ),
        (
            "chunk size leading space",
            " 5\r\nhello\r\n0\r\n\r\n".to_string(),
        ),
        (
            "bare LF after chunk size",
            "5\nhello\r\n0\r\n\r\n".to_string(),
        ),
        (
            "bare LF after chunk data",
            "5\r\nhello\n0\r\n\r\n".to_string(),
        ),
        (
            "bare CR after chunk size",
            "5\rhello\r\n0\r\n\r\n".to_string(),
        ),
        (
            "no CRLF after chunk data",
            "5\r\nhelloX0\r\n\r\n".to_string(),
        ),
        (
            "chunk data longer than its size",
            "5\r\nhelloo\r\n0\r\n\r\n".to_string(),
        ),
        ("bare LF in the last chunk", "0\n\n".to_string()),
        ("oversized chunk extension", long_extension),
        ("oversized trailer section", long_trailer),
    ]
    .into_iter()
    .map(|(name, body)| case(name, chunked(&body), Expect::BodyCutOff))
    .collect()
}

fn head_cases() -> Vec<Case> {
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

fn pipelining_cases() -> Vec<Case> {
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

/// Sends a known-good request on its own connection and waits for its answer: once it is recorded,
/// anything the case before it would have made the proxy forward has been forwarded.
fn sentinel(proxy: &Proxy, index: usize) {
    let response = get(proxy.addr(), HOST, &format!("/sentinel/{index}"));
    assert_eq!(
        response.status,
        200,
        "sentinel {index}: {}",
        response.text()
    );
}

fn run(proxy: &Proxy, recorder: &Recorder, index: usize, case: &Case) {
    let before = recorder.requests().len();
    let connections_before = recorder.connections();
    let mut client = send(proxy.addr(), &case.raw);
    let name = case.name;
    match &case.expect {
        Expect::Rejected(code, status) => {
            let response = client
                .try_read_response()
                .unwrap_or_else(|e| panic!("{name}: no answer: {e}"));
            assert_eq!(response.status, *status, "{name}: {}", response.text());
            assert_proxy_error(&response, code, *status);
            assert!(
                client.closed_by_peer_within(Duration::from_secs(5)),
                "{name}: the connection stays open"
            );
        }
        Expect::BodyCutOff => {
            if let Ok(response) = client.try_read_response() {
                assert_proxy_error(&response, "BAD_REQUEST", 400);
            }
            assert!(
                client.closed_by_peer_within(Duration::from_secs(5)),
                "{name}: the connection stays open"
            );
        }
        Expect::Forwarded(lines, _) => {
            for _ in lines.iter() {
                let response = client.read_response();
                assert_eq!(response.status, 200, "{name}: {}", response.text());
            }
        }
    }
    sentinel(proxy, index);
    let sentinel_line = format!("GET /sentinel/{index} HTTP/1.1");
    let recorded: Vec<Recorded> = recorder.requests()[before..]
        .iter()
        .filter(|r| r.request_line() != sentinel_line)
        .cloned()
        .collect();
    match &case.expect {
        Expect::Rejected(..) => assert!(
            recorded.is_empty(),
            "{name}: the backend received {:?}",
            recorded.iter().map(|r| &r.head).collect::<Vec<_>>()
        ),
        Expect::BodyCutOff => {
            // Any backend connection opened for the case must be closed before the body completed.
            let sentinel_connection = recorder
                .requests()
                .iter()
                .find(|r| r.request_line() == sentinel_line)
                .map(|r| r.connection);
            let opened: Vec<usize> = (connections_before..recorder.connections())
                .filter(|c| Some(*c) != sentinel_connection)
                .collect();
            for connection in opened {
                let closed = wait_until(Duration::from_secs(5), || {
                    recorder
                        .requests()
                        .iter()
                        .any(|r| r.connection == connection)
                });
                assert!(closed, "{name}: backend connection {connection} left open");
                let request = recorder
                    .requests()
                    .into_iter()
                    .find(|r| r.connection == connection)
                    .unwrap();
                assert!(
                    request.body.is_empty(),
                    "{name}: a complete body reached the backend"
                );
                assert_eq!(request.header("transfer-encoding"), ["chunked"]);
            }
            assert!(
                recorded.iter().all(|r| r.body.is_empty()),
                "{name}: {recorded:?}"
            );
        }
        Expect::Forwarded(lines, check) => {
            let got: Vec<&str> = recorded.iter().map(|r| r.request_line()).collect();
            assert_eq!(&got, lines, "{name}");
            for request in &recorded {
                assert_eq!(request.header("host").len(), 1, "{name}: {}", request.head);
                assert!(!request.head.contains("\r\n\r\n\r\n"), "{name}");
            }
            check(&recorded);
        }
    }
}

#[test]
fn malformed_and_ambiguous_requests() {
    let recorder = Recorder::ok();
    let proxy = Proxy::start(&recorder.backend_table(HOST, ""));
    sentinel(&proxy, 0);
    let cases: Vec<Case> = [
        framing_cases(),
        chunk_cases(),
        head_cases(),
        pipelining_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    for (index, case) in cases.iter().enumerate() {
        run(&proxy, &recorder, index + 1, case);
    }
    // Only the one legitimately pipelined `/smuggled` request ever reached the backend, and no byte of
    // a refused body did.
    let smuggled = recorder
        .requests()
        .iter()
        .filter(|r| r.request_line() == "GET /smuggled HTTP/1.1")
        .count();
    assert_eq!(smuggled, 1);
    for raw in recorder.raw() {
        let text = String::from_utf8_lossy(&raw).into_owned();
        assert!(!text.contains("SMUGGLED"), "{text}");
    }
}
