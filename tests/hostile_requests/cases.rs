//! The table of hostile requests, part one: what a case is, and the body framing cases.

use super::HOST;
use support::recorder::Recorded;

use crate::support;

/// What the proxy must do with one case.
pub enum Expect {
    /// Answered with this error and closed; the backend receives nothing.
    Rejected(&'static str, u16),
    /// The head was forwarded before the body turned out malformed: the client gets a 400 or a closed
    /// connection, the backend connection is closed before a complete body, and nothing follows it.
    BodyCutOff,
    /// Forwarded: the backend receives these request lines (in order) and the check passes on each.
    Forwarded(&'static [&'static str], fn(&[Recorded])),
}

pub struct Case {
    pub name: &'static str,
    pub raw: Vec<u8>,
    pub expect: Expect,
}

pub fn no_check(_: &[Recorded]) {}

pub fn case(name: &'static str, raw: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        raw: raw.into(),
        expect,
    }
}

/// `POST / HTTP/1.1` to HOST with extra head lines (each ending in CRLF) and then `rest`.
pub fn post(lines: &str, rest: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n{rest}").into_bytes()
}

pub fn get_with(lines: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {HOST}\r\n{lines}\r\n").into_bytes()
}

pub fn chunked(body: &str) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

pub const BAD: Expect = Expect::Rejected("BAD_REQUEST", 400);

pub fn framing_cases() -> Vec<Case> {
    use Expect::*;
    // CL+TE: nginx (ngx_http_process_request_header) answers 400, as it does for TE in HTTP/1.0, and
    // 501 for any TE value but exactly `chunked`; HAProxy and hyper drop CL and close after the
    // response. Spawngate refuses all of them outright: 400 (501 for a valid list it cannot relay).
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

pub fn chunk_cases() -> Vec<Case> {
    // The strict decoder (src/http1/chunked.rs): hyper (proto/h1/decode.rs) refuses non-hex sizes,
    // overflow and a missing CRLF after data; nginx (ngx_http_parse_chunked) refuses signs and `0x`.
    // Spawngate also refuses whitespace before a chunk line's end, which hyper tolerates, and bounds
    // extensions at 4 KiB per line and trailers at 16 KiB.
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
