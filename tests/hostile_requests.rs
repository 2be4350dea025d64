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

#[path = "hostile_requests/cases.rs"]
mod cases;
#[path = "hostile_requests/head_cases.rs"]
mod head_cases;

use cases::{chunk_cases, framing_cases, Case, Expect};
use head_cases::{head_cases, pipelining_cases};

const HOST: &str = "rec.test";

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
    let heads_before = recorder.heads().len();
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
            // A head forwarded before the body went wrong must see its connection closed with the
            // body incomplete (the recorder then records it with an empty body).
            let forwarded: Vec<(usize, String)> = recorder.heads()[heads_before..]
                .iter()
                .filter(|(_, head)| !head.starts_with(&sentinel_line))
                .cloned()
                .collect();
            for (connection, head) in forwarded {
                let request = assert_cut_short(recorder, connection, &head, name);
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

/// The chunk cases again, with the body sent only once the backend has the head: the proxy has
/// already committed to the exchange and must cut both sides off.
#[test]
fn malformed_chunk_framing_after_the_head_was_forwarded() {
    let recorder = Recorder::ok();
    let proxy = Proxy::start(&recorder.backend_table(HOST, ""));
    sentinel(&proxy, 0);
    for case in chunk_cases() {
        let name = case.name;
        let split = case
            .raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| at + 4)
            .unwrap_or_else(|| panic!("{name}: no head"));
        let heads_before = recorder.heads().len();
        let mut client = send(proxy.addr(), &case.raw[..split]);
        let forwarded = wait_until(Duration::from_secs(5), || {
            recorder.heads().len() > heads_before
        });
        assert!(forwarded, "{name}: the head never reached the backend");
        let (connection, head) = recorder.heads()[heads_before].clone();
        let _ = client.try_send(&case.raw[split..]);
        if let Ok(response) = client.try_read_response() {
            assert_proxy_error(&response, "BAD_REQUEST", 400);
        }
        assert!(
            client.closed_by_peer_within(Duration::from_secs(5)),
            "{name}: the client connection stays open"
        );
        assert_cut_short(&recorder, connection, &head, name);
    }
}

/// Waits until the backend connection `connection`, which received `head`, is closed with the body
/// incomplete (the recorder then records the request, with an empty body), and returns that request.
fn assert_cut_short(recorder: &Recorder, connection: usize, head: &str, name: &str) -> Recorded {
    let find = || {
        recorder
            .requests()
            .into_iter()
            .find(|r| r.connection == connection && r.head == head)
    };
    let ended = wait_until(Duration::from_secs(5), || find().is_some());
    assert!(ended, "{name}: backend connection {connection} left open");
    let request = find().unwrap();
    assert!(
        request.body.is_empty(),
        "{name}: a complete body reached the backend"
    );
    request
}
