use super::*;
use crate::http1::chunked::ChunkedDecoder;
use crate::http1::response::parse_response;
use bytes::Bytes;

fn map(raw: &[u8], request_was_head: bool) -> Response<()> {
    let head = parse_response(raw, request_was_head).unwrap().unwrap();
    response_head(&Bytes::copy_from_slice(raw), &head, b"rid").unwrap()
}

fn names(response: &Response<()>) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|k| k.as_str().to_string())
        .collect()
}

#[test]
fn connection_specific_fields_are_dropped_and_our_id_added() {
    let response = map(
        b"HTTP/1.1 201 Created\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n\
          X-Hop: 1\r\nX-Request-ID: theirs\r\nX-End: 2\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\
          Content-Length: 0\r\n\r\n",
        false,
    );
    assert_eq!(response.status(), 201);
    assert_eq!(
        names(&response),
        ["x-end", "set-cookie", "content-length", "x-request-id"]
    );
    assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
    assert_eq!(response.headers()["x-request-id"], "rid");
    // Sensitive values go out as HPACK never-indexed literals: a per-response id must not churn the
    // client's dynamic table.
    assert!(response.headers()["x-request-id"].is_sensitive());
    assert!(!response.headers()["x-end"].is_sensitive());
}

#[test]
fn chunked_framing_is_dropped_and_lengths_kept_for_head() {
    let response = map(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n",
        false,
    );
    assert_eq!(names(&response), ["trailer", "x-request-id"]);
    let response = map(b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true);
    assert_eq!(response.headers()["content-length"], "42");
}

#[test]
fn interim_heads_carry_no_request_id_and_obs_text_values_pass() {
    let response = map(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n", false);
    assert_eq!(names(&response), ["link"]);
    let response = map(
        b"HTTP/1.1 200 OK\r\nX-Ok: \xe9t\xe9\r\nContent-Length: 0\r\n\r\n",
        false,
    );
    assert_eq!(response.headers()["x-ok"].as_bytes(), b"\xe9t\xe9");
}

/// Runs a chunked body through the decoder the way the forwarder does, split into pieces of `step`.
fn tail_of(body: &[u8], step: usize) -> (Vec<u8>, TrailerTail) {
    let mut decoder = ChunkedDecoder::new();
    let mut tail = TrailerTail::default();
    let mut payload = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    for piece in body.chunks(step) {
        pending.extend_from_slice(piece);
        while !pending.is_empty() && !decoder.is_done() {
            let decoded = decoder.decode(&pending).unwrap();
            match decoded.data.clone() {
                Some(range) => {
                    payload.extend_from_slice(&pending[range.clone()]);
                    tail.restart();
                    tail.push(&pending[range.end..decoded.consumed]);
                }
                None => tail.push(&pending[..decoded.consumed]),
            }
            pending.drain(..decoded.consumed);
            if decoded.consumed == 0 {
                break;
            }
        }
    }
    assert!(decoder.is_done());
    (payload, tail)
}

#[test]
fn trailers_are_read_from_the_tail_whatever_the_split() {
    let body = b"3\r\nabc\r\n2;ext=1\r\nde\r\n0;last\r\nX-Sum: 5\r\nContent-Length: 9\r\nConnection: x\r\nX-Two: a\r\n\r\n";
    for step in [1, 2, 3, 7, body.len()] {
        let (payload, tail) = tail_of(body, step);
        assert_eq!(payload, b"abcde");
        let trailers = tail.trailers();
        assert_eq!(trailers.len(), 2, "step {step}: {trailers:?}");
        assert_eq!(trailers["x-sum"], "5");
        assert_eq!(trailers["x-two"], "a");
    }
}

#[test]
fn no_trailers_means_an_empty_map() {
    for body in [&b"0\r\n\r\n"[..], b"1\r\na\r\n0\r\n\r\n"] {
        for step in [1, body.len()] {
            assert!(tail_of(body, step).1.trailers().is_empty());
        }
    }
}
