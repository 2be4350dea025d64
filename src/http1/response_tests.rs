use super::*;

fn parse(text: &[u8], request_was_head: bool) -> ResponseHead {
    match parse_response(text, request_was_head) {
        Ok(Some(head)) => head,
        other => panic!("{:?} for {:?}", other, String::from_utf8_lossy(text)),
    }
}

fn refused(text: &[u8]) -> bool {
    parse_response(text, false).is_err()
}

#[test]
fn simple_ok() {
    let text = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
    let head = parse(text, false);
    assert_eq!(head.len, text.len() - 5);
    assert_eq!(head.status, 200);
    assert_eq!(head.version, Version::Http11);
    assert_eq!(&text[head.reason.clone()], b"OK");
    assert_eq!(head.headers.len(), 2);
    assert_eq!(&text[head.headers[1].name.clone()], b"X-A");
    assert_eq!(&text[head.headers[1].value.clone()], b"b");
    assert_eq!(head.framing, Framing::Length(5));
    assert!(head.keep_alive);
}

#[test]
fn reason_phrases() {
    let text = b"HTTP/1.1 404 Not Found Here\r\n\r\n";
    assert_eq!(&text[parse(text, false).reason], b"Not Found Here");
    let text = b"HTTP/1.1 204 \r\n\r\n";
    assert_eq!(parse(text, false).reason, 13..13);
    let text = b"HTTP/1.1 204\r\n\r\n";
    assert_eq!(parse(text, false).reason, 12..12);
    let text = b"HTTP/1.1 200 Gr\xfc\xdfe\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(&text[parse(text, false).reason], b"Gr\xfc\xdfe");
}

#[test]
fn framing_table() {
    let framing = |text: &str, head: bool| parse(text.as_bytes(), head).framing;
    let cl = "Content-Length: 7\r\n";
    let te = "Transfer-Encoding: chunked\r\n";
    assert_eq!(
        framing(&format!("HTTP/1.1 200 OK\r\n{cl}\r\n"), false),
        Framing::Length(7)
    );
    assert_eq!(
        framing(&format!("HTTP/1.1 200 OK\r\n{te}\r\n"), false),
        Framing::Chunked
    );
    assert_eq!(
        framing("HTTP/1.1 200 OK\r\n\r\n", false),
        Framing::UntilClose
    );
    assert_eq!(
        framing("HTTP/1.0 200 OK\r\n\r\n", false),
        Framing::UntilClose
    );
    assert_eq!(
        framing(&format!("HTTP/1.0 200 OK\r\n{cl}\r\n"), false),
        Framing::Length(7)
    );
    for fields in [cl, te, ""] {
        assert_eq!(
            framing(&format!("HTTP/1.1 200 OK\r\n{fields}\r\n"), true),
            Framing::None
        );
        for status in [
            "100 Continue",
            "101 Switching",
            "103 Early",
            "204 No",
            "304 Not",
        ] {
            let text = format!("HTTP/1.1 {status}\r\n{fields}\r\n");
            assert_eq!(framing(&text, false), Framing::None, "{text}");
        }
    }
}

#[test]
fn keep_alive_table() {
    let keep = |text: &str| parse(text.as_bytes(), false).keep_alive;
    assert!(keep("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(keep("HTTP/1.1 204 No Content\r\n\r\n"));
    assert!(keep(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    ));
    assert!(!keep(
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ));
    assert!(!keep("HTTP/1.1 200 OK\r\n\r\n"));
    assert!(!keep("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    assert!(!keep(
        "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
    ));
    assert!(!keep(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    ));
}

#[test]
fn interim_responses_parse_as_their_own_heads() {
    let text = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let interim = parse(text, false);
    assert_eq!((interim.status, interim.framing), (100, Framing::None));
    let rest = &text[interim.len..];
    let last = parse(rest, false);
    assert_eq!((last.status, last.len), (200, rest.len()));
}

#[test]
fn every_prefix_needs_more() {
    let text = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nServer: x\r\n\r\n";
    for end in 0..text.len() {
        assert_eq!(
            parse_response(&text[..end], false),
            Ok(None),
            "prefix {end}"
        );
    }
}

#[test]
fn refused_responses() {
    assert!(refused(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"));
    assert!(refused(b"HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"));
    assert!(refused(b"HTTP/1.1 200 OK\r\n\n"));
    assert!(refused(b"\r\nHTTP/1.1 200 OK\r\n\r\n"));
    assert!(refused(b"\r"));
    assert!(refused(b"HTTP/2.0 200 OK\r\n\r\n"));
    assert!(refused(b"HTTP/1.1 099 Low\r\n\r\n"));
    assert!(refused(b"HTTP/1.1 600 High\r\n\r\n"));
    assert!(refused(b"HTTP/1.1 20 OK\r\n\r\n"));
    assert!(refused(b"HTTP/1.1  200 OK\r\n\r\n"));
    assert!(refused(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"
    ));
    assert!(refused(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"));
    assert!(refused(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
    ));
    assert!(refused(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"
    ));
    assert!(refused(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    ));
    assert!(refused(
        b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    ));
    assert!(refused(b"HTTP/1.1 200 OK\r\nX : y\r\n\r\n"));
    assert!(refused(b"HTTP/1.1 200 OK\r\nX: y\r\n folded\r\n\r\n"));
    assert!(refused(b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n"));
}

#[test]
fn limits() {
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_HEADERS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert!(refused(&many));
    let mut big = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    big.resize(MAX_HEAD, b'v');
    assert!(refused(&big));
    big.extend_from_slice(b"\r\n\r\n");
    assert!(refused(&big));
}
