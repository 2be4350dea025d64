use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;
use crate::http1::request::parse_request;

fn forward(text: &str, plan: &ForwardPlan) -> String {
    let head = parse_request(text.as_bytes()).unwrap().unwrap();
    let info = ForwardInfo {
        client_ip: ClientIp::Text("10.0.0.1"),
        request_id: b"rid-1",
        target: None,
        session: None,
        proto: Proto::Http,
    };
    let mut out = Vec::new();
    write_request(text.as_bytes(), &head, plan, &info, &mut out);
    String::from_utf8(out).unwrap()
}

fn target_after(edit: PathEdit, target: &str) -> String {
    let method = if target == "*" { "OPTIONS" } else { "GET" };
    let text = format!("{method} {target} HTTP/1.1\r\nHost: a\r\n\r\n");
    let plan = ForwardPlan {
        path: edit,
        ..ForwardPlan::default()
    };
    let out = forward(&text, &plan);
    out.split(' ').nth(1).unwrap().to_string()
}

fn prefix(path: &str) -> PathPrefix {
    PathPrefix::new(path).unwrap()
}

fn strip(path: &str) -> PathEdit {
    PathEdit::StripPrefix(prefix(path))
}

fn replace(path: &str, with: &str) -> PathEdit {
    PathEdit::ReplacePrefix {
        prefix: prefix(path),
        with: prefix(with),
    }
}

#[test]
fn the_default_plan_changes_nothing_and_says_http() {
    let plan = ForwardPlan::default();
    assert_eq!(plan.proto, Proto::Http);
    assert_eq!(plan.path, PathEdit::Keep);
    assert!(plan.set_headers.is_empty() && plan.add_headers.is_empty());
    assert!(plan.remove_headers.is_empty() && plan.response.is_empty());
    assert_eq!(plan.clone(), plan);
    let text = "GET /api/x?q HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\r\n";
    assert_eq!(
        forward(text, &plan),
        "GET /api/x?q HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-Forwarded-For: 10.0.0.1\r\n\
         X-Forwarded-Host: a\r\nX-Forwarded-Proto: http\r\nX-Request-ID: rid-1\r\n\r\n"
    );
    let https = ForwardPlan {
        proto: Proto::Https,
        ..ForwardPlan::default()
    };
    assert!(forward(text, &https).contains("\r\nX-Forwarded-Proto: https\r\n"));
}

#[test]
fn strip_removes_whole_segments_and_keeps_the_query() {
    assert_eq!(target_after(strip("/api"), "/api/x?q=1"), "/x?q=1");
    assert_eq!(target_after(strip("/api"), "/api"), "/");
    assert_eq!(target_after(strip("/api"), "/api?q"), "/?q");
    assert_eq!(target_after(strip("/api"), "/api/"), "/");
    assert_eq!(target_after(strip("/api"), "/api/a/b"), "/a/b");
    assert_eq!(target_after(strip("/api/v1"), "/api/v1/x"), "/x");
    // Not a whole segment, another path, or only in the query: left alone.
    assert_eq!(target_after(strip("/api"), "/apix"), "/apix");
    assert_eq!(target_after(strip("/api"), "/other/api"), "/other/api");
    assert_eq!(target_after(strip("/api"), "/b?x=/api"), "/b?x=/api");
    assert_eq!(target_after(strip("/api"), "/API/x"), "/API/x");
    assert_eq!(target_after(strip("/api"), "/%61pi/x"), "/%61pi/x");
    // A prefix ending in '/' matches what follows it directly.
    assert_eq!(target_after(strip("/api/"), "/api/x"), "/x");
    assert_eq!(target_after(strip("/api/"), "/api/"), "/");
    assert_eq!(target_after(strip("/api/"), "/api"), "/api");
    assert_eq!(target_after(strip("/"), "/x?y"), "/x?y");
    assert_eq!(target_after(strip("/"), "/"), "/");
}

#[test]
fn path_edits_apply_to_absolute_form_and_never_to_asterisk() {
    assert_eq!(target_after(strip("/api"), "http://a/api/x?y"), "/x?y");
    assert_eq!(target_after(strip("/api"), "http://a/api"), "/");
    assert_eq!(target_after(strip("/"), "http://a?y"), "/?y");
    assert_eq!(target_after(strip("/api"), "http://a?y"), "/?y");
    assert_eq!(target_after(replace("/", "/base"), "http://a"), "/base");
    assert_eq!(target_after(replace("/", "/base"), "http://a?y"), "/base?y");
    assert_eq!(target_after(strip("/"), "*"), "*");
    assert_eq!(target_after(replace("/", "/base"), "*"), "*");
}

#[test]
fn replace_swaps_the_prefix_with_one_slash_between() {
    assert_eq!(target_after(replace("/api", "/v2"), "/api/x?q"), "/v2/x?q");
    assert_eq!(target_after(replace("/api", "/v2/"), "/api/x?q"), "/v2/x?q");
    assert_eq!(target_after(replace("/api/", "/v2"), "/api/x"), "/v2/x");
    assert_eq!(target_after(replace("/api", "/v2"), "/api"), "/v2");
    assert_eq!(target_after(replace("/api", "/v2/"), "/api?q"), "/v2/?q");
    assert_eq!(target_after(replace("/api", "/"), "/api/x"), "/x");
    assert_eq!(target_after(replace("/", "/base"), "/x"), "/base/x");
    assert_eq!(target_after(replace("/", "/base"), "/"), "/base");
    assert_eq!(target_after(replace("/api", "/v2"), "/apix"), "/apix");
}

fn edit(name: &str, value: &str) -> FieldEdit {
    FieldEdit::new(name, value).unwrap()
}

#[test]
fn set_replaces_add_adds_and_remove_drops_case_insensitively() {
    let plan = ForwardPlan {
        set_headers: vec![edit("X-Set", "ours")],
        add_headers: vec![edit("X-Add", "extra"), edit("x-kept", "more")],
        remove_headers: vec![EditableName::new("X-GONE").unwrap()],
        ..ForwardPlan::default()
    };
    let text = "GET / HTTP/1.1\r\nHost: a\r\nx-set: theirs\r\nX-Kept: 1\r\nx-gone: 2\r\n\
                X-Set: again\r\nX-Gone: 3\r\nx-add: client\r\n\r\n";
    assert_eq!(
        forward(text, &plan),
        "GET / HTTP/1.1\r\nHost: a\r\nX-Kept: 1\r\nx-add: client\r\n\
         X-Set: ours\r\nX-Add: extra\r\nx-kept: more\r\n\
         X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: a\r\nX-Forwarded-Proto: http\r\n\
         X-Request-ID: rid-1\r\n\r\n"
    );
}

#[test]
fn edits_go_before_the_proxy_fields_and_after_framing_and_upgrade() {
    let plan = ForwardPlan {
        add_headers: vec![edit("X-Route", "r1")],
        ..ForwardPlan::default()
    };
    let text = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let out = forward(text, &plan);
    assert!(
        out.contains("Upgrade: websocket\r\nConnection: Upgrade\r\nX-Route: r1\r\nX-Forwarded-For"),
        "{out}"
    );
    let text = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n";
    let out = forward(text, &plan);
    assert!(
        out.contains("Content-Length: 2\r\nX-Route: r1\r\n"),
        "{out}"
    );
}

#[test]
fn plans_cannot_name_the_proxys_own_fields() {
    for name in [
        "Host",
        "content-length",
        "Transfer-Encoding",
        "Connection",
        "keep-alive",
        "Proxy-Connection",
        "TE",
        "Upgrade",
        "Expect",
        "X-Forwarded-For",
        "x-forwarded-host",
        "X-Forwarded-Proto",
        "X-Request-Id",
    ] {
        assert!(EditableName::new(name).is_err(), "{name}");
        assert!(FieldEdit::new(name, "v").is_err(), "{name}");
    }
    for name in ["", "a b", "a:b", "x\r\ny", "é"] {
        assert!(EditableName::new(name).is_err(), "{name:?}");
    }
    assert_eq!(EditableName::new("X-Ok_1").unwrap().as_str(), "X-Ok_1");
}

#[test]
fn plan_values_and_prefixes_cannot_break_the_head() {
    for value in ["a\r\nX-Evil: 1", "a\nb", "a\0b", " a", "a\t", "é", "a\x7f"] {
        assert!(FieldEdit::new("X-A", value).is_err(), "{value:?}");
    }
    let kept = FieldEdit::new("X-A", "a b\tc;d=\"e\"").unwrap();
    assert_eq!(
        (kept.name(), kept.value().as_str()),
        ("X-A", "a b\tc;d=\"e\"")
    );
    assert!(FieldEdit::new("X-A", "").is_ok());
    for path in ["", "api", "/a?b", "/a#b", "/a b", "/a\r\n", "/é"] {
        assert!(PathPrefix::new(path).is_err(), "{path:?}");
    }
    assert_eq!(PathPrefix::new("/a/b%20c/").unwrap().as_str(), "/a/b%20c/");
    assert!(PlanError::from("why").to_string() == "why");
}

#[test]
fn client_addresses_are_written_as_display_would_in_canonical_form() {
    let mut addresses: Vec<IpAddr> = vec![
        Ipv4Addr::UNSPECIFIED.into(),
        Ipv4Addr::BROADCAST.into(),
        Ipv4Addr::new(10, 0, 100, 9).into(),
        Ipv6Addr::LOCALHOST.into(),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into(),
        Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped().into(),
    ];
    let mut x: u32 = 0x1234_5678;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        addresses.push(Ipv4Addr::from(x).into());
    }
    for ip in addresses {
        let mut out = Vec::new();
        write_client_ip(&mut out, ip.into());
        assert_eq!(out, ip.to_canonical().to_string().as_bytes(), "{ip}");
    }
    let mut out = Vec::new();
    write_client_ip(&mut out, ClientIp::from("::1"));
    assert_eq!(out, b"::1");
}

#[test]
fn decimals() {
    for n in [0, 7, 10, 99, 100, 12345, u64::MAX] {
        let mut out = Vec::new();
        write_decimal(&mut out, n);
        assert_eq!(out, n.to_string().as_bytes());
    }
}
