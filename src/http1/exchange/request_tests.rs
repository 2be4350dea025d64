use super::*;

/// Feeds `input` in pieces of `step` bytes, as a trickling client would, until a verdict other than
/// `Wait`.
fn trickle(input: &[u8], step: usize, eof_at_end: bool) -> (HeadStep, usize) {
    let mut reader = HeadReader::default();
    let mut fed = 0;
    loop {
        fed = (fed + step).min(input.len());
        let eof = eof_at_end && fed == input.len();
        match reader.step(&input[..fed], true, eof) {
            HeadStep::Wait if fed < input.len() => continue,
            verdict => return (verdict, fed),
        }
    }
}

#[test]
fn a_head_is_found_however_it_is_split() {
    let raw = b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\nGET /b HTTP/1.1\r\n";
    for step in [1, 2, 7, raw.len()] {
        let (verdict, _) = trickle(raw, step, false);
        let HeadStep::Head(head) = verdict else {
            panic!("step {step}: {verdict:?}")
        };
        assert_eq!(
            head.len, 33,
            "step {step}: the pipelined bytes are not part of it"
        );
    }
}

#[test]
fn the_http2_preface_is_recognised_only_first_on_a_connection() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let (verdict, _) = trickle(preface, 3, false);
    assert!(matches!(verdict, HeadStep::Http2), "{verdict:?}");
    let mut reader = HeadReader::default();
    let later = reader.step(preface, false, false);
    assert!(
        matches!(later, HeadStep::Refuse(_) | HeadStep::Wait),
        "{later:?}"
    );
}

#[test]
fn a_client_that_leaves_mid_head_gets_no_answer() {
    let (verdict, _) = trickle(b"GET / HTTP/1.1\r\nHost: a", 4, true);
    assert!(matches!(verdict, HeadStep::Gone), "{verdict:?}");
    let mut reader = HeadReader::default();
    assert!(matches!(reader.step(b"", false, true), HeadStep::Gone));
    assert!(matches!(reader.step(b"", false, false), HeadStep::Wait));
}

#[test]
fn a_bad_head_is_refused_with_its_code() {
    let (verdict, _) = trickle(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 5, false);
    let HeadStep::Refuse(err) = verdict else {
        panic!("{verdict:?}")
    };
    assert_eq!(err.code, ErrorCode::BadRequest);
}

/// Drives a request half against a backend that accepts `per_write` bytes per write, with the client's
/// bytes arriving all at once; returns what the backend received and the body bytes consumed.
fn send_all(half: &mut RequestHalf, client: &[u8], per_write: usize) -> (Vec<u8>, usize) {
    let mut input = client.to_vec();
    let mut backend = Vec::new();
    let mut consumed = 0;
    for _ in 0..10_000 {
        half.take_body(&input).expect("a valid body");
        let (head, body) = half.to_write(&input);
        if head.is_empty() && body.is_empty() {
            break;
        }
        let joined: Vec<u8> = head.iter().chain(body).copied().collect();
        let n = joined.len().min(per_write);
        backend.extend_from_slice(&joined[..n]);
        let from_body = half.wrote(n);
        input.drain(..from_body);
        consumed += from_body;
    }
    (backend, consumed)
}

#[test]
fn head_and_body_go_out_in_order_through_short_writes() {
    let head = b"POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\n".to_vec();
    let mut half = RequestHalf::new(head.clone(), Framing::Length(11), None);
    let (sent, consumed) = send_all(&mut half, b"hello worldGET /next", 4);
    let mut expected = head;
    expected.extend_from_slice(b"hello world");
    assert_eq!(sent, expected);
    assert_eq!(
        consumed, 11,
        "the pipelined request stays for the next head"
    );
    assert!(half.is_complete());
    assert_eq!(half.bytes_in(), 11);
}

#[test]
fn a_chunked_body_over_the_limit_is_413_and_a_broken_one_400() {
    let head = b"POST / HTTP/1.1\r\n\r\n".to_vec();
    let mut half = RequestHalf::new(head.clone(), Framing::Chunked, Some(4));
    let err = half
        .take_body(b"5\r\nhello\r\n0\r\n\r\n")
        .expect_err("over");
    assert_eq!(err.0, ErrorCode::PayloadTooLarge);
    let mut half = RequestHalf::new(head, Framing::Chunked, None);
    let err = half.take_body(b"zz\r\n").expect_err("malformed");
    assert_eq!(err.0, ErrorCode::BadRequest);
}

#[test]
fn an_abandoned_request_sends_nothing_more_and_is_never_complete() {
    let head = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n".to_vec();
    let mut half = RequestHalf::new(head, Framing::Length(3), None);
    half.take_body(b"abc").expect("valid");
    half.abandon();
    assert_eq!(half.to_write(b"abc"), (&b""[..], &b""[..]));
    assert!(!half.is_complete());
    assert!(!half.cut_by(true), "its pending bytes were taken");
}

#[test]
fn a_retry_sends_the_head_again_and_a_cut_body_is_noticed() {
    let head = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    let mut half = RequestHalf::new(head.clone(), Framing::None, None);
    let (sent, _) = send_all(&mut half, b"", 100);
    assert_eq!(sent, head);
    half.restart();
    let (again, _) = send_all(&mut half, b"", 100);
    assert_eq!(again, head);

    let mut half = RequestHalf::new(head, Framing::Length(10), None);
    half.take_body(b"").expect("nothing yet");
    assert!(half.cut_by(true));
    assert!(!half.cut_by(false));
}

#[test]
fn garbage_gets_the_same_verdict_however_it_was_split() {
    // Found by the request_exchange fuzz target: trickled garbage that ends with the client's EOF was
    // closed silently, while the same bytes in one read were answered 400.
    for step in [1, 2, 3] {
        let (verdict, _) = trickle(b"*\x8a\x8a", step, true);
        assert!(
            matches!(verdict, HeadStep::Refuse(_)),
            "step {step}: {verdict:?}"
        );
    }
}
