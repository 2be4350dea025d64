//! A hostile or broken backend: malformed, oversized or ambiguous responses give the client 502 and
//! the backend connection is never pooled; a response cut short closes the client connection; a
//! connection goes back to the pool only after its response was read to the end and its request was
//! sent whole. The recording backend numbers its connections, so "pooled or not" is observable.

mod support;

use std::time::Duration;

use support::recorder::{ok_reply, Recorded, Recorder, Reply};
use support::*;

const HOST: &str = "bad.test";

/// Responses the proxy must refuse with 502 before sending the client anything.
fn refused_responses() -> Vec<(&'static str, Vec<u8>)> {
    let big_head = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok",
        "b".repeat(65 * 1024)
    );
    let many_fields: String = (0..101).map(|i| format!("X-F{i}: v\r\n")).collect();
    [
        (
            "CL and TE",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                .to_string(),
        ),
        (
            "two different CLs",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!".to_string(),
        ),
        (
            "CL not digits",
            "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok".to_string(),
        ),
        (
            "TE not chunked",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok".to_string(),
        ),
        (
            "TE chunked twice",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n".to_string(),
        ),
        (
            "bare LF",
            "HTTP/1.1 200 OK\nContent-Length: 2\n\nok".to_string(),
        ),
        (
            "bare LF in one field",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\nX: y\r\n\r\nok".to_string(),
        ),
        (
            "obs-fold",
            "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok".to_string(),
        ),
        (
            "status 2000",
            "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
        ),
        (
            "status 20",
            "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
        ),
        (
            "status 600",
            "HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok".to_string(),
        ),
        (
            "not HTTP",
            "HTTX/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
        ),
        (
            "HTTP/2.0 status line",
            "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
        ),
        (
            "empty line first",
            "\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string(),
        ),
        ("head over 64 KiB", big_head),
        (
            "101 fields",
            format!("HTTP/1.1 200 OK\r\n{many_fields}Content-Length: 2\r\n\r\nok"),
        ),
        (
            "space before colon",
            "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok".to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, text)| (name, text.into_bytes()))
    .collect()
}

fn path_of(head: &str) -> &str {
    head.split(' ').nth(1).unwrap_or("")
}

/// A recorder answering `/ok` normally and `/refused/N` with the N-th refused response, kept open.
fn scripted() -> Recorder {
    let refused = refused_responses();
    Recorder::start(move |head| {
        let path = path_of(head);
        if let Some(n) = path
            .strip_prefix("/refused/")
            .and_then(|n| n.parse::<usize>().ok())
        {
            return Reply::After(refused[n].1.clone());
        }
        match path {
            "/cut-short" => {
                Reply::AndClose(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part".to_vec())
            }
            // Broken from its first body byte, sent in one write with its head.
            "/bad-chunk-at-once" => Reply::After(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            ),
            "/bad-chunk" => Reply::After(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"
                    .to_vec(),
            ),
            "/chunked" => Reply::After(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                    .to_vec(),
            ),
            "/until-close" => Reply::AndClose(b"HTTP/1.1 200 OK\r\n\r\nuntil close".to_vec()),
            "/early" => Reply::Early(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            _ => ok_reply(),
        }
    })
}

fn start() -> (Recorder, Proxy) {
    let recorder = scripted();
    let proxy = Proxy::start(&recorder.backend_table(HOST, ""));
    (recorder, proxy)
}

/// The recorded request for `path` (the last one if it was sent more than once).
fn recorded(recorder: &Recorder, path: &str) -> Recorded {
    let found = wait_until(Duration::from_secs(5), || {
        recorder.requests().iter().any(|r| path_of(&r.head) == path)
    });
    assert!(found, "{path} never reached the backend");
    recorder
        .requests()
        .into_iter()
        .rev()
        .find(|r| path_of(&r.head) == path)
        .unwrap()
}

#[test]
fn well_formed_responses_leave_the_connection_pooled() {
    let (recorder, proxy) = start();
    let mut client = Client::connect(proxy.addr());
    assert_eq!(client.get(HOST, "/ok").status, 200);
    let first = recorded(&recorder, "/ok").connection;
    let chunked = client.get(HOST, "/chunked");
    assert_eq!((chunked.status, chunked.body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(
        recorded(&recorder, "/chunked").connection,
        first,
        "not reused after a chunked response"
    );
    assert_eq!(client.get(HOST, "/ok").status, 200);
    assert_eq!(recorded(&recorder, "/ok").connection, first);
    assert_eq!(recorder.connections(), 1);
}

#[test]
fn refused_responses_are_502_and_their_connection_is_dropped() {
    let (recorder, proxy) = start();
    for (n, (name, _)) in refused_responses().iter().enumerate() {
        assert_eq!(get(proxy.addr(), HOST, "/ok").status, 200, "{name}");
        let path = format!("/refused/{n}");
        let response = get(proxy.addr(), HOST, &path);
        assert_proxy_error(&response, "BAD_GATEWAY", 502);
        let bad = recorded(&recorder, &path).connection;
        assert_eq!(get(proxy.addr(), HOST, "/after").status, 200, "{name}");
        let after = recorded(&recorder, "/after").connection;
        assert_ne!(
            after, bad,
            "{name}: the connection that sent it was pooled and reused"
        );
    }
}

#[test]
fn a_response_cut_short_closes_the_client_connection() {
    let (recorder, proxy) = start();
    for path in ["/cut-short", "/bad-chunk"] {
        let mut client = send(proxy.addr(), &build_request("GET", HOST, path, &[], b""));
        // Depending on whether the head was already relayed when the fault showed: a 200 head and a
        // truncated body, or a 502; either way never a complete 200 and the connection closes.
        match client.try_read_response() {
            Ok(response) => assert_proxy_error(&response, "BAD_GATEWAY", 502),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData
                ),
                "{path}: {e}"
            ),
        }
        assert!(
            client.closed_by_peer_within(Duration::from_secs(5)),
            "{path}"
        );
        let bad = recorded(&recorder, path).connection;
        assert_eq!(get(proxy.addr(), HOST, "/after").status, 200);
        assert_ne!(
            recorded(&recorder, "/after").connection,
            bad,
            "{path}: pooled"
        );
    }
}

#[test]
fn a_close_delimited_response_is_never_pooled() {
    let (recorder, proxy) = start();
    let response = get(proxy.addr(), HOST, "/until-close");
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "until close")
    );
    let bad = recorded(&recorder, "/until-close").connection;
    assert_eq!(get(proxy.addr(), HOST, "/after").status, 200);
    assert_ne!(recorded(&recorder, "/after").connection, bad);
}

#[test]
fn a_request_body_the_backend_did_not_wait_for_makes_the_connection_unreusable() {
    let (recorder, proxy) = start();
    assert_eq!(get(proxy.addr(), HOST, "/ok").status, 200);
    // The client declares 100 000 bytes and sends 1000; the backend answers at once.
    let mut client = send(
        proxy.addr(),
        format!("POST /early HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 100000\r\n\r\n")
            .as_bytes(),
    );
    client.send(&[b'x'; 1000]);
    let response = client.read_response();
    assert_eq!(response.status, 200);
    let early = recorded(&recorder, "/early").connection;
    assert_eq!(get(proxy.addr(), HOST, "/after").status, 200);
    assert_ne!(
        recorded(&recorder, "/after").connection,
        early,
        "a connection with a half-sent request body was pooled"
    );
}

#[test]
fn a_response_broken_before_any_byte_was_relayed_is_502() {
    let (_recorder, proxy) = start();
    let mut client = send(
        proxy.addr(),
        &build_request("GET", HOST, "/bad-chunk-at-once", &[], b""),
    );
    let response = client.read_response();
    assert_proxy_error(&response, "BAD_GATEWAY", 502);
    assert!(client.closed_by_peer_within(Duration::from_secs(5)));
    assert_eq!(get(proxy.addr(), HOST, "/after").status, 200);
}
