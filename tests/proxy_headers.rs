//! What the proxy adds to, removes from and keeps in forwarded heads, checked through the echo backend's
//! description of the request it received.

mod support;

use std::collections::HashSet;

use support::*;

fn is_request_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[test]
fn a_request_id_is_generated_forwarded_and_returned() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let response = client.get(ECHO_HOST, "/");
        assert_eq!(response.status, 200);
        let id = response
            .header("x-request-id")
            .expect("X-Request-ID on the response")
            .to_string();
        assert!(
            is_request_id(&id),
            "generated id {id:?} is not 32 hex digits"
        );
        let forwarded = echoed_header_values(&response.json(), "x-request-id");
        assert_eq!(
            forwarded,
            vec![id.clone()],
            "the backend saw the same single id"
        );
        assert!(seen.insert(id), "request ids repeat");
    }
}

#[test]
fn a_client_request_id_is_kept() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let response = client.request("GET", ECHO_HOST, "/", &["X-Request-ID: my-trace-42"], b"");
    assert_eq!(response.header("x-request-id"), Some("my-trace-42"));
    assert_eq!(
        echoed_header_values(&response.json(), "x-request-id"),
        vec!["my-trace-42"]
    );
}

#[test]
fn forwarding_headers_are_added() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let json = client.get(ECHO_HOST, "/").json();
    assert_eq!(
        echoed_header_values(&json, "x-forwarded-for"),
        vec!["127.0.0.1"]
    );
    assert_eq!(
        echoed_header_values(&json, "x-forwarded-host"),
        vec![ECHO_HOST]
    );
    assert_eq!(
        echoed_header_values(&json, "x-forwarded-proto"),
        vec!["http"]
    );

    let host_with_port = format!("{ECHO_HOST}:8080");
    let json = client.get(&host_with_port, "/").json();
    let forwarded_host = echoed_header_values(&json, "x-forwarded-host");
    assert_eq!(forwarded_host.len(), 1);
    assert!(
        forwarded_host[0].starts_with(ECHO_HOST),
        "{forwarded_host:?}"
    );
}

#[test]
fn the_client_address_is_appended_to_an_existing_forwarded_for_chain() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let json = client
        .request(
            "GET",
            ECHO_HOST,
            "/",
            &["X-Forwarded-For: 203.0.113.7, 198.51.100.1"],
            b"",
        )
        .json();
    let chain = echoed_header_values(&json, "x-forwarded-for").join(", ");
    assert_eq!(chain, "203.0.113.7, 198.51.100.1, 127.0.0.1");
}

#[test]
fn hop_by_hop_headers_are_removed_and_end_to_end_headers_kept() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let response = client.request(
        "GET",
        ECHO_HOST,
        "/",
        &[
            "Connection: keep-alive, X-Private",
            "X-Private: secret",
            "Foo: 1",
            "Keep-Alive: timeout=5",
            "TE: trailers",
            "Proxy-Connection: keep-alive",
            "X-End-To-End: kept",
            "Accept: */*",
        ],
        b"",
    );
    assert_eq!(response.status, 200);
    let json = response.json();
    let headers = echoed_headers(&json);
    for name in ["x-private", "keep-alive", "te", "proxy-connection"] {
        assert!(
            !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)),
            "{name} reached the backend: {headers:?}"
        );
    }
    for value in echoed_header_values(&json, "connection") {
        assert!(
            !value.to_ascii_lowercase().contains("x-private"),
            "Connection: {value}"
        );
    }
    assert_eq!(echoed_header_values(&json, "x-end-to-end"), vec!["kept"]);
    assert_eq!(
        echoed_header_values(&json, "foo"),
        vec!["1"],
        "Foo is end-to-end unless Connection names it"
    );
    assert_eq!(echoed_header_values(&json, "accept"), vec!["*/*"]);

    let json = client
        .request("GET", ECHO_HOST, "/", &["Connection: foo", "Foo: 1"], b"")
        .json();
    assert!(
        echoed_header_values(&json, "foo").is_empty(),
        "Foo named by Connection was forwarded"
    );
}

#[test]
fn header_name_case_and_values_are_kept_both_ways() {
    let proxy = proxy_with_echo("", &[]);
    let mut client = proxy.client();
    let response = client.request(
        "GET",
        ECHO_HOST,
        "/",
        &[
            "X-MiXeD-CaSe: Value  With  Inner  Spaces",
            "x-lower: a",
            "X-UPPER: B",
            "x-dup: 1",
            "X-Dup: 2",
        ],
        b"",
    );
    let headers = echoed_headers(&response.json());
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    for expected in [
        ("X-MiXeD-CaSe", "Value  With  Inner  Spaces"),
        ("x-lower", "a"),
        ("X-UPPER", "B"),
        ("x-dup", "1"),
        ("X-Dup", "2"),
    ] {
        assert!(
            pairs.contains(&expected),
            "{expected:?} missing from {pairs:?}"
        );
    }
    let dup_order: Vec<&str> = pairs
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("x-dup"))
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(
        dup_order,
        vec!["1", "2"],
        "repeated fields keep their order"
    );
    // The backend writes `X-Echo-Pid` in that case; the client must see it unchanged.
    assert!(
        response.headers.iter().any(|(n, _)| n == "X-Echo-Pid"),
        "response header case changed: {:?}",
        response.headers
    );
}
