//! Micro-benchmarks of the sans-IO HTTP/1 code on the per-request hot path: what the reactor does to
//! every request head, every response head and every chunked body it forwards.
//!
//! `cargo bench --bench http1 [FILTER]` measures; `cargo test --all-targets` runs each case once.

#[path = "harness/mod.rs"]
mod harness;

use std::net::{IpAddr, Ipv4Addr};

use spawngate::http1::chunked::ChunkedDecoder;
use spawngate::http1::request::parse_request;
use spawngate::http1::request_id::RequestIdGenerator;
use spawngate::http1::response::parse_response;
use spawngate::http1::rewrite::{
    write_request, write_response, ForwardInfo, ForwardPlan, Proto, ResponseEdits, Vars,
};
use spawngate::http1::{Framing, Version};

/// What a browser sends for a page: the common shape of request heads a proxy sees.
const BROWSER_REQUEST: &[u8] = b"GET /articles/2024/spawngate?utm_source=feed&page=2 HTTP/1.1\r\n\
Host: app.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://app.example.com/articles\r\n\
Cookie: session=4f1c2b7a9e8d6c5b4a3f2e1d0c9b8a7f; theme=dark; consent=1\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Priority: u=0, i\r\n\r\n";

/// What `wrk` sends: the smallest realistic head, where fixed costs dominate.
const MINIMAL_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: app.example.com\r\n\r\n";

/// A typical application response head (body not included).
const APP_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx\r\n\
Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 5123\r\n\
Connection: keep-alive\r\n\
Keep-Alive: timeout=5\r\n\
Cache-Control: private, max-age=0\r\n\
Set-Cookie: session=4f1c2b7a9e8d6c5b4a3f2e1d0c9b8a7f; Path=/; HttpOnly\r\n\
Vary: Accept-Encoding\r\n\
X-Request-ID: upstream-id-1\r\n\r\n";

/// Chunked body size and chunk size for the decode case.
const CHUNKED_BODY_BYTES: usize = 1024 * 1024;
const CHUNK_BYTES: usize = 4 * 1024;
/// The reactor reads at most this much per socket read (its client and upstream buffers are 64 KiB),
/// so the decoder sees the body in slices of this size, with chunk boundaries falling anywhere.
const READ_BYTES: usize = 64 * 1024;

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

fn main() {
    let mut harness = harness::Harness::from_args();

    for (name, text) in [
        ("request head parse (browser, 14 fields)", BROWSER_REQUEST),
        ("request head parse (minimal)", MINIMAL_REQUEST),
    ] {
        check_request(text);
        harness.run(name, Some(text.len() as u64), || parse_request(text));
    }
    for (name, text) in [
        ("request parse + rewrite (browser)", BROWSER_REQUEST),
        ("request parse + rewrite (minimal)", MINIMAL_REQUEST),
    ] {
        let mut ids = RequestIdGenerator::new([7, 11]);
        let mut out = Vec::with_capacity(4096);
        harness.run(name, Some(text.len() as u64), || {
            forward_request(text, &mut ids, &mut out)
        });
    }

    check_response(APP_RESPONSE);
    harness.run(
        "response head parse",
        Some(APP_RESPONSE.len() as u64),
        || parse_response(APP_RESPONSE, false),
    );
    let mut out = Vec::with_capacity(4096);
    harness.run(
        "response parse + rewrite",
        Some(APP_RESPONSE.len() as u64),
        || forward_response(APP_RESPONSE, &mut out),
    );

    let body = chunked_body(CHUNKED_BODY_BYTES, CHUNK_BYTES);
    assert_eq!(decode_chunked(&body), CHUNKED_BODY_BYTES);
    harness.run(
        "chunked decode 1 MiB (4 KiB chunks, 64 KiB reads)",
        Some(body.len() as u64),
        || decode_chunked(&body),
    );

    harness.finish();
}

/// Parses and re-serialises a request head as the reactor does before forwarding it; returns the
/// forwarded head's length so the work cannot be optimised away.
fn forward_request(text: &[u8], ids: &mut RequestIdGenerator, out: &mut Vec<u8>) -> usize {
    out.clear();
    let head = match parse_request(text) {
        Ok(Some(head)) => head,
        other => panic!("benchmark request did not parse: {other:?}"),
    };
    let generated = ids.next_id();
    let request_id = match &head.request_id {
        Some(field) => &text[field.value.clone()],
        None => &generated[..],
    };
    let info = ForwardInfo {
        client_ip: CLIENT.into(),
        request_id,
        target: None,
        session: None,
        proto: Proto::Http,
    };
    write_request(text, &head, &ForwardPlan::default(), &info, out);
    out.len()
}

fn forward_response(text: &[u8], out: &mut Vec<u8>) -> usize {
    out.clear();
    let head = match parse_response(text, false) {
        Ok(Some(head)) => head,
        other => panic!("benchmark response did not parse: {other:?}"),
    };
    let vars = Vars {
        request_id: b"0123456789abcdef0123456789abcdef",
        ..Vars::default()
    };
    write_response(
        text,
        &head,
        Version::Http11,
        false.into(),
        &ResponseEdits::NONE,
        &vars,
        out,
    );
    out.len()
}

/// Feeds `body` to a fresh decoder in reactor-sized reads; returns the payload bytes found.
fn decode_chunked(body: &[u8]) -> usize {
    let mut decoder = ChunkedDecoder::new();
    let mut payload = 0;
    for read in body.chunks(READ_BYTES) {
        let mut rest = read;
        while !rest.is_empty() && !decoder.is_done() {
            let decoded = match decoder.decode(rest) {
                Ok(decoded) => decoded,
                Err(e) => panic!("benchmark body did not decode: {}", e.reason),
            };
            if let Some(data) = decoded.data {
                payload += data.len();
            }
            rest = &rest[decoded.consumed..];
        }
    }
    assert!(decoder.is_done(), "benchmark body ended early");
    payload
}

fn chunked_body(total: usize, chunk: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(total + total / chunk * 16 + 8);
    let mut left = total;
    while left > 0 {
        let size = left.min(chunk);
        body.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        body.extend((0..size).map(|i| (i % 251) as u8));
        body.extend_from_slice(b"\r\n");
        left -= size;
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

/// The cases only mean something if the inputs take the ordinary path: a complete, bodiless,
/// keep-alive request and a fixed-length response.
fn check_request(text: &[u8]) {
    let head = match parse_request(text) {
        Ok(Some(head)) => head,
        other => panic!("benchmark request did not parse: {other:?}"),
    };
    assert_eq!(head.len, text.len());
    assert_eq!(head.framing, Framing::None);
    assert!(head.keep_alive);
}

fn check_response(text: &[u8]) {
    let head = match parse_response(text, false) {
        Ok(Some(head)) => head,
        other => panic!("benchmark response did not parse: {other:?}"),
    };
    assert_eq!(head.len, text.len());
    assert_eq!(head.framing, Framing::Length(5123));
}
