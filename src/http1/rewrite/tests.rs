use super::*;
use crate::http1::request::parse_request;
use crate::http1::response::parse_response;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

fn forward_request(text: &str, client_ip: IpAddr) -> String {
    let head = parse_request(text.as_bytes()).unwrap().unwrap();
    let info = ForwardInfo {
        client_ip: client_ip.into(),
        request_id: b"rid-1",
        target: None,
        session: None,
        proto: Proto::Http,
    };
    let mut out = Vec::new();
    let plan = ForwardPlan::default();
    write_request(text.as_bytes(), &head, &plan, &info, &mut out);
    String::from_utf8(out).unwrap()
}

fn forward_response(text: &str, was_head: bool, client: Version, close: bool) -> String {
    let head = parse_response(text.as_bytes(), was_head).unwrap().unwrap();
    let mut out = Vec::new();
    let vars = Vars {
        request_id: b"rid-1",
        ..Vars::default()
    };
    let none = &ResponseEdits::NONE;
    write_response(
        text.as_bytes(),
        &head,
        client,
        close.into(),
        none,
        &vars,
        &mut out,
    );
    String::from_utf8(out).unwrap()
}

const ADDED: &str = "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: app.test:8080\r\n\
                     X-Forwarded-Proto: http\r\nX-Request-ID: rid-1\r\n\r\n";

/// A request that came over TLS says `https` whatever the route's plan says.
#[test]
fn a_request_over_tls_is_forwarded_as_https() {
    let text = "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: http\r\n\r\n";
    let head = parse_request(text.as_bytes()).unwrap().unwrap();
    let info = ForwardInfo {
        proto: Proto::Https,
        ..ForwardInfo::new(CLIENT.into(), b"rid-1")
    };
    let mut out = Vec::new();
    write_request(
        text.as_bytes(),
        &head,
        &ForwardPlan::default(),
        &info,
        &mut out,
    );
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("\r\nX-Forwarded-Proto: https\r\n"), "{out}");
    assert!(!out.contains("X-Forwarded-Proto: http\r\n"), "{out}");
}

#[test]
fn plain_request_gains_forwarding_fields() {
    let text = "GET /a?b HTTP/1.1\r\nhOsT: app.test:8080\r\nUser-Agent: t\r\n\
                Connection: keep-alive\r\n\r\n";
    let expected = format!("GET /a?b HTTP/1.1\r\nhOsT: app.test:8080\r\nUser-Agent: t\r\n{ADDED}");
    assert_eq!(forward_request(text, CLIENT), expected);
}

#[test]
fn hop_by_hop_fields_and_the_fields_connection_names_are_dropped() {
    let text = "POST /p HTTP/1.1\r\nHost: app.test:8080\r\nConnection: close, X-Hop\r\n\
                X-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n\
                Upgrade: websocket\r\nTrailer: X-Sum\r\nx-hop: 2\r\nConnection: x-other\r\n\
                X-Other: 3\r\nTransfer-Encoding: chunked\r\nX-Kept: 4\r\n\r\n";
    let expected = format!(
        "POST /p HTTP/1.1\r\nHost: app.test:8080\r\nTrailer: X-Sum\r\n\
         Transfer-Encoding: chunked\r\nX-Kept: 4\r\n{ADDED}"
    );
    assert_eq!(forward_request(text, CLIENT), expected);
}

#[test]
fn connection_cannot_strip_framing_or_host() {
    let text = "POST /p HTTP/1.1\r\nHost: app.test:8080\r\n\
                Connection: Content-Length, Host, Transfer-Encoding\r\nContent-Length: 3\r\n\r\n";
    let expected =
        format!("POST /p HTTP/1.1\r\nHost: app.test:8080\r\nContent-Length: 3\r\n{ADDED}");
    assert_eq!(forward_request(text, CLIENT), expected);
}

#[test]
fn forwarding_fields_from_the_client_are_replaced_and_the_chain_merged() {
    let text = "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: app.test:8080\r\n\
                X-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\nX-Request-ID: theirs\r\n\
                x-forwarded-for: 2.2.2.2, 3.3.3.3\r\nX-Forwarded-For:\r\n\r\n";
    let expected = "GET / HTTP/1.1\r\nHost: app.test:8080\r\n\
                    X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1\r\n\
                    X-Forwarded-Host: app.test:8080\r\nX-Forwarded-Proto: http\r\n\
                    X-Request-ID: rid-1\r\n\r\n";
    assert_eq!(forward_request(text, CLIENT), expected);
}

#[test]
fn client_addresses_are_written_canonically() {
    let text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert!(forward_request(text, v6).contains("\r\nX-Forwarded-For: ::1\r\n"));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
    assert!(forward_request(text, mapped).contains("\r\nX-Forwarded-For: 192.0.2.7\r\n"));
}

#[test]
fn upgrades_keep_upgrade_and_say_so_in_connection() {
    let text = "GET /ws HTTP/1.1\r\nHost: app.test:8080\r\nConnection: keep-alive, Upgrade\r\n\
                Upgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
    let expected = format!(
        "GET /ws HTTP/1.1\r\nHost: app.test:8080\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\
         Connection: Upgrade\r\n{ADDED}"
    );
    assert_eq!(forward_request(text, CLIENT), expected);
    let h2c = "GET / HTTP/1.1\r\nHost: app.test:8080\r\nConnection: Upgrade, HTTP2-Settings\r\n\
               Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    let expected = format!("GET / HTTP/1.1\r\nHost: app.test:8080\r\n{ADDED}");
    assert_eq!(forward_request(h2c, CLIENT), expected);
}

#[test]
fn absolute_form_targets_are_sent_in_origin_form() {
    let rewritten = |target: &str| {
        let text = format!("GET {target} HTTP/1.1\r\nHost: app.test:8080\r\n\r\n");
        let out = forward_request(&text, CLIENT);
        out.split(' ').nth(1).unwrap().to_string()
    };
    assert_eq!(rewritten("http://app.test:8080/x?y"), "/x?y");
    assert_eq!(rewritten("http://app.test:8080?y"), "/?y");
    assert_eq!(rewritten("http://app.test:8080"), "/");
    let text = "OPTIONS * HTTP/1.1\r\nHost: app.test:8080\r\n\r\n";
    assert!(forward_request(text, CLIENT).starts_with("OPTIONS * HTTP/1.1\r\n"));
}

#[test]
fn http10_keeps_its_version_and_gains_a_host_from_its_target() {
    let text = "GET http://app.test:8080/z HTTP/1.0\r\nAccept: */*\r\n\r\n";
    // The Host we write goes first, as RFC 9110 section 7.2 asks of whoever generates it.
    let expected = format!("GET /z HTTP/1.0\r\nHost: app.test:8080\r\nAccept: */*\r\n{ADDED}");
    assert_eq!(forward_request(text, CLIENT), expected);
    let text = "GET / HTTP/1.0\r\n\r\n";
    let expected = "GET / HTTP/1.0\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: http\r\n\
                    X-Request-ID: rid-1\r\n\r\n";
    assert_eq!(forward_request(text, CLIENT), expected);
}

#[test]
fn a_forwarded_request_parses_to_the_same_request() {
    let texts = [
        "GET http://app.test:8080/p?q HTTP/1.1\r\nHost: app.test:8080\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        "PUT /u HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    ];
    for text in texts {
        let first = parse_request(text.as_bytes()).unwrap().unwrap();
        let forwarded = forward_request(text, CLIENT);
        let again = parse_request(forwarded.as_bytes()).unwrap().unwrap();
        let origin = |t: &[u8], h: &RequestHead| t[h.origin_form.clone()].to_vec();
        let host = |t: &[u8], h: &RequestHead| h.host.clone().map(|r| t[r].to_vec());
        let fwd = forwarded.as_bytes();
        assert_eq!(first.framing, again.framing);
        assert_eq!(first.version, again.version);
        assert_eq!(host(text.as_bytes(), &first), host(fwd, &again));
        assert_eq!(
            text.as_bytes()[first.method.clone()],
            fwd[again.method.clone()]
        );
        let first_origin = origin(text.as_bytes(), &first);
        if first_origin.starts_with(b"/") {
            assert_eq!(first_origin, origin(fwd, &again));
        }
    }
}

#[test]
fn response_hop_by_hop_fields_go_and_our_request_id_replaces_theirs() {
    let text = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Hop\r\n\
                Keep-Alive: timeout=5\r\nX-Hop: 1\r\nX-Request-ID: backend\r\nServer: s\r\n\r\nok";
    let out = forward_response(text, false, Version::Http11, false);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: s\r\nX-Request-ID: rid-1\r\n\r\n"
    );
    let closing = forward_response(text, false, Version::Http11, true);
    assert!(closing.ends_with("X-Request-ID: rid-1\r\nConnection: close\r\n\r\n"));
    let old_client = forward_response(text, false, Version::Http10, false);
    assert!(old_client.ends_with("X-Request-ID: rid-1\r\nConnection: keep-alive\r\n\r\n"));
    let old_closing = forward_response(text, false, Version::Http10, true);
    assert!(old_closing.ends_with("X-Request-ID: rid-1\r\nConnection: close\r\n\r\n"));
}

#[test]
fn responses_are_always_sent_as_http11_with_the_reason_as_received() {
    let text = "HTTP/1.0 404 Nope Nope\r\nContent-Length: 0\r\n\r\n";
    let out = forward_response(text, false, Version::Http11, true);
    assert!(out.starts_with("HTTP/1.1 404 Nope Nope\r\n"));
    let out = forward_response("HTTP/1.1 204\r\n\r\n", false, Version::Http11, false);
    assert_eq!(out, "HTTP/1.1 204 \r\nX-Request-ID: rid-1\r\n\r\n");
}

#[test]
fn chunked_responses_keep_transfer_encoding() {
    let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n";
    let out = forward_response(text, false, Version::Http11, false);
    assert_eq!(
        out,
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nX-Request-ID: rid-1\r\n\r\n"
    );
    let to_head = forward_response(text, true, Version::Http11, false);
    assert!(to_head.contains("Transfer-Encoding: chunked\r\n"));
    let no_content = "HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n";
    let out = forward_response(no_content, false, Version::Http11, false);
    assert_eq!(
        out,
        "HTTP/1.1 204 No Content\r\nX-Request-ID: rid-1\r\n\r\n"
    );
}

#[test]
fn switching_protocols_keeps_upgrade() {
    let text = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Accept: a\r\n\r\n";
    let out = forward_response(text, false, Version::Http11, false);
    assert_eq!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\n\
         X-Request-ID: rid-1\r\nConnection: Upgrade\r\n\r\n"
    );
}

#[test]
fn interim_responses_pass_without_connection_fields() {
    let out = forward_response(
        "HTTP/1.1 100 Continue\r\n\r\n",
        false,
        Version::Http11,
        true,
    );
    assert_eq!(out, "HTTP/1.1 100 Continue\r\n\r\n");
    let hints = "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
    let out = forward_response(hints, false, Version::Http11, false);
    assert_eq!(out, hints);
}

#[test]
fn connection_may_name_only_so_many_fields() {
    let mut text = String::from("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: ");
    let names: Vec<String> = (0..=MAX_NOMINATED_FIELDS)
        .map(|i| format!("x-{i}"))
        .collect();
    text.push_str(&names.join(", "));
    text.push_str("\r\n");
    for name in &names {
        text.push_str(&format!("{name}: v\r\n"));
    }
    text.push_str("\r\n");
    let out = forward_response(&text, false, Version::Http11, false);
    let last = format!("x-{MAX_NOMINATED_FIELDS}: v\r\n");
    assert!(!out.contains("x-0: v\r\n"));
    assert!(out.contains(&last));
}

#[test]
fn framing_fields_are_forwarded_in_canonical_form() {
    let text = "POST /p HTTP/1.1\r\nHost: a\r\ntransfer-encoding:\tChunked \r\n\r\n";
    assert!(forward_request(text, CLIENT).contains("\r\ntransfer-encoding: chunked\r\n"));
    let text = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n";
    assert!(forward_request(text, CLIENT).contains("\r\nContent-Length: 7\r\n"));
    let text = "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n";
    assert!(forward_request(text, CLIENT).contains("\r\nContent-Length: 0\r\n"));
    let text = "HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n";
    let forwarded = forward_response(text, false, Version::Http11, false);
    assert!(
        forwarded.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{forwarded}"
    );
    let text = "HTTP/1.1 200 OK\r\nContent-Length: 0012\r\n\r\n";
    let forwarded = forward_response(text, true, Version::Http11, false);
    assert!(
        forwarded.contains("\r\nContent-Length: 12\r\n"),
        "{forwarded}"
    );
}
