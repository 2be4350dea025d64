//! The h2 source of the forwarded-head writer: what HTTP/2 changes (cookies, `:authority`, framing,
//! connection-specific fields), and that an h2 request and its HTTP/1.1 equivalent give the same head.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::http1::request::parse_request;
use crate::http1::rewrite::{
    write_request, ClientIp, EditableName, FieldEdit, ForwardInfo, PathEdit, PathPrefix, Proto,
};

fn parts_with(method: Method, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn h2_head(parts: &Parts, has_body: bool, plan: &ForwardPlan) -> String {
    let inspected = inspect(parts, has_body, None).unwrap();
    let mut out = Vec::new();
    let info = ForwardInfo::new("10.0.0.1".into(), b"rid");
    write_forwarded(parts, &inspected, plan, &info, &mut out);
    String::from_utf8(out).unwrap()
}

const ADDED: &str = "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: a.test\r\n\
                     X-Forwarded-Proto: http\r\nX-Request-ID: rid\r\n\r\n";

#[test]
fn cookie_crumbs_are_joined_where_the_first_one_was() {
    // HeaderMap keeps a name's values together, so crumbs split by other fields still join.
    let request = parts_with(
        Method::GET,
        "http://a.test/",
        &[
            ("cookie", "a=1"),
            ("accept", "*/*"),
            ("cookie", "b=2"),
            ("cookie", "c=3"),
            ("x-after", "1"),
        ],
    );
    let plan = ForwardPlan::default();
    assert_eq!(
        h2_head(&request, false, &plan),
        format!(
            "GET / HTTP/1.1\r\nHost: a.test\r\ncookie: a=1; b=2; c=3\r\naccept: */*\r\n\
             x-after: 1\r\n{ADDED}"
        )
    );
    let one = parts_with(Method::GET, "http://a.test/", &[("cookie", "a=1; b=2")]);
    assert_eq!(
        h2_head(&one, false, &plan),
        format!("GET / HTTP/1.1\r\nHost: a.test\r\ncookie: a=1; b=2\r\n{ADDED}")
    );
}

#[test]
fn plans_treat_all_crumbs_as_one_cookie() {
    let request = parts_with(
        Method::GET,
        "http://a.test/",
        &[("cookie", "a=1"), ("cookie", "b=2"), ("x-kept", "1")],
    );
    let removed = ForwardPlan {
        remove_headers: vec![EditableName::new("Cookie").unwrap()],
        ..ForwardPlan::default()
    };
    assert_eq!(
        h2_head(&request, false, &removed),
        format!("GET / HTTP/1.1\r\nHost: a.test\r\nx-kept: 1\r\n{ADDED}")
    );
    let set = ForwardPlan {
        set_headers: vec![FieldEdit::new("Cookie", "route=1").unwrap()],
        ..ForwardPlan::default()
    };
    assert_eq!(
        h2_head(&request, false, &set),
        format!("GET / HTTP/1.1\r\nHost: a.test\r\nx-kept: 1\r\nCookie: route=1\r\n{ADDED}")
    );
}

#[test]
fn host_is_written_first_from_the_authority_and_never_twice() {
    let plan = ForwardPlan::default();
    // Without :authority the Host field is the authority.
    let host_only = parts_with(Method::GET, "/x", &[("accept", "1"), ("host", "a.test")]);
    assert_eq!(
        h2_head(&host_only, false, &plan),
        format!("GET /x HTTP/1.1\r\nHost: a.test\r\naccept: 1\r\n{ADDED}")
    );
    // Both: :authority is written (RFC 9113 section 8.3.1), the Host field is not.
    let both = parts_with(
        Method::GET,
        "http://A.Test/x",
        &[("host", "a.test"), ("accept", "1")],
    );
    let head = h2_head(&both, false, &plan);
    assert!(
        head.starts_with("GET /x HTTP/1.1\r\nHost: A.Test\r\naccept: 1\r\n"),
        "{head}"
    );
    let host_lines = head.to_ascii_lowercase().matches("\r\nhost: ").count();
    assert_eq!(host_lines, 1, "{head}");
    assert!(head.contains("\r\nX-Forwarded-Host: A.Test\r\n"), "{head}");
}

#[test]
fn connection_specific_fields_are_dropped_even_if_h2_let_them_through() {
    // The h2 crate refuses these as malformed (RFC 9113 section 8.2.2) except `te: trailers`; built
    // by hand, they are still dropped by name. (The fields a Connection field names are not looked
    // for: no h2 request that reaches the writer has one.)
    let request = parts_with(
        Method::POST,
        "http://a.test/p",
        &[
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("transfer-encoding", "gzip"),
            ("content-length", "3"),
            ("x-kept", "2"),
        ],
    );
    assert_eq!(
        h2_head(&request, true, &ForwardPlan::default()),
        format!("POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nx-kept: 2\r\n{ADDED}")
    );
    let repeated = parts_with(
        Method::POST,
        "http://a.test/p",
        &[("content-length", "03"), ("content-length", "3")],
    );
    let head = h2_head(&repeated, true, &ForwardPlan::default());
    assert!(
        head.starts_with(
            "POST /p HTTP/1.1\r\nHost: a.test\r\ncontent-length: 3\r\nX-Forwarded-For"
        ),
        "{head}"
    );
}

/// The lower-case name of every field the proxy acts on; the exhaustive match makes a new
/// `FieldName` fail to compile here until the h2 classifier knows it.
fn known_name(kind: FieldName) -> Option<&'static str> {
    Some(match kind {
        FieldName::Host => "host",
        FieldName::ContentLength => "content-length",
        FieldName::TransferEncoding => "transfer-encoding",
        FieldName::Connection => "connection",
        FieldName::KeepAlive => "keep-alive",
        FieldName::ProxyConnection => "proxy-connection",
        FieldName::Te => "te",
        FieldName::Upgrade => "upgrade",
        FieldName::Expect => "expect",
        FieldName::XRequestId => "x-request-id",
        FieldName::XForwardedFor => "x-forwarded-for",
        FieldName::XForwardedHost => "x-forwarded-host",
        FieldName::XForwardedProto => "x-forwarded-proto",
        FieldName::Other => return None,
    })
}

#[test]
fn the_lower_case_classifier_agrees_with_the_http1_one() {
    let names = [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "upgrade",
        "expect",
        "x-request-id",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
    ];
    for name in names {
        let kind = FieldName::classify(name.as_bytes());
        assert_eq!(known_name(kind), Some(name));
        assert_eq!(classify_lowercase(name), kind, "{name}");
    }
    for other in [
        "",
        "t",
        "hosts",
        "user-agent",
        "cookie",
        "x-forwarded",
        "tee",
        "content-type",
    ] {
        assert_eq!(
            classify_lowercase(other),
            FieldName::classify(other.as_bytes())
        );
        assert_eq!(classify_lowercase(other), FieldName::Other);
    }
}

/// xorshift64*: deterministic cases without a dependency.
struct Cases(u64);

impl Cases {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn plans() -> Vec<ForwardPlan> {
    let prefix = |p: &str| PathPrefix::new(p).unwrap();
    let edit = |n: &str, v: &str| FieldEdit::new(n, v).unwrap();
    vec![
        ForwardPlan::default(),
        ForwardPlan {
            path: PathEdit::StripPrefix(prefix("/api")),
            ..ForwardPlan::default()
        },
        ForwardPlan {
            path: PathEdit::ReplacePrefix {
                prefix: prefix("/api/"),
                with: prefix("/v2"),
            },
            proto: Proto::Https,
            ..ForwardPlan::default()
        },
        ForwardPlan {
            set_headers: vec![edit("X-Custom", "set")],
            add_headers: vec![edit("x-trace", "added")],
            remove_headers: vec![EditableName::new("ACCEPT").unwrap()],
            ..ForwardPlan::default()
        },
        ForwardPlan {
            remove_headers: vec![EditableName::new("cookie").unwrap()],
            ..ForwardPlan::default()
        },
    ]
}

#[test]
fn an_h2_request_and_its_http11_equivalent_forward_the_same_head() {
    const NAMES: &[&str] = &[
        "accept",
        "user-agent",
        "x-custom",
        "cookie",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-request-id",
        "te",
        "expect",
        "x-trace",
    ];
    const VALUES: &[&str] = &["1", "text/html, */*", "", "1.2.3.4", "x y", "a=b"];
    const COOKIES: &[&str] = &["a=1", "b=2", "c=3; d=4"];
    const PATHS: &[&str] = &[
        "/",
        "/api",
        "/api/",
        "/api/x?q=1",
        "/apix?y",
        "/a/b?x=/api",
        "/api?",
    ];
    const AUTHORITIES: &[&str] = &["a.test", "A.Test:8080", "[::1]:81", "x.test."];
    const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"];
    let plans = plans();
    let client = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped());
    let client_text = client.to_canonical().to_string();
    let mut cases = Cases(0x5eed_1234_abcd_9876);
    for _ in 0..3000 {
        let method = cases.pick(METHODS);
        let path = cases.pick(PATHS);
        let authority = cases.pick(AUTHORITIES);
        // Grouped by name in order of first appearance, as a HeaderMap yields them.
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for _ in 0..cases.below(9) {
            let name = cases.pick(NAMES);
            let value = match name {
                "cookie" => cases.pick(COOKIES),
                "te" => "trailers",
                "expect" => "100-continue",
                _ => cases.pick(VALUES),
            };
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => groups.push((name, vec![value])),
            }
        }
        let body = cases.below(3);
        let length = cases.below(1000).to_string();
        if body == 1 {
            groups.insert(
                cases.below(groups.len() + 1),
                ("content-length", vec![&length]),
            );
        }

        let mut fields: Vec<(&str, &str)> = Vec::new();
        let mut http1 = format!("{method} {path} HTTP/1.1\r\nHost: {authority}\r\n");
        for (name, values) in &groups {
            fields.extend(values.iter().map(|value| (*name, *value)));
            if *name == "cookie" {
                http1.push_str(&format!("cookie: {}\r\n", values.join("; ")));
            } else {
                for value in values {
                    http1.push_str(&format!("{name}: {value}\r\n"));
                }
            }
        }
        if body == 2 {
            // The name the h2 side writes, having no field of its own.
            http1.push_str("Transfer-Encoding: chunked\r\n");
        }
        http1.push_str("\r\n");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let h2 = parts_with(method, &format!("http://{authority}{path}"), &fields);

        let plan = &plans[cases.below(plans.len())];
        let inspected = inspect(&h2, body != 0, None).unwrap();
        let mut from_h2 = Vec::new();
        let info = ForwardInfo::new(client_text.as_str().into(), b"rid");
        write_forwarded(&h2, &inspected, plan, &info, &mut from_h2);
        let head = parse_request(http1.as_bytes()).unwrap().unwrap();
        let info = ForwardInfo {
            client_ip: ClientIp::Addr(client),
            request_id: b"rid",
            target: None,
            session: None,
            proto: Proto::Http,
        };
        let mut from_http1 = Vec::new();
        write_request(http1.as_bytes(), &head, plan, &info, &mut from_http1);
        assert_eq!(
            String::from_utf8_lossy(&from_h2),
            String::from_utf8_lossy(&from_http1),
            "{http1}\n{plan:?}"
        );
    }
}

#[test]
fn a_session_request_is_gated_and_stamped_from_its_cookie_crumbs() {
    use crate::config::sessions::Access;
    use crate::sessions::gate::{self, Gate};
    use crate::sessions::route::{Credential, Found, SessionRoute};
    use crate::sessions::secret;
    use crate::upstream::BackendId;
    use std::sync::Arc;

    let route = Arc::new(SessionRoute {
        id: "sid".into(),
        name: "session/test".into(),
        hostname: "a.test".into(),
        backend: BackendId::new(0, 1),
        access: Access::Token,
        secure_cookie: true,
        secret: "sec".into(),
        credentials: vec![Credential {
            token: [1; 32],
            cookie: [2; 32],
            user: Some("alice".into()),
            spent: false,
        }],
        ended: None,
    });
    let session_cookie = format!("sg_s={}", secret::to_text(&[2; 32]));
    let request = parts_with(
        Method::GET,
        "http://a.test/lab",
        &[
            ("cookie", &session_cookie),
            ("x-spawngate-user", "mallory"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ],
    );
    let inspected = inspect(&request, false, None).unwrap();
    let source = H2Source {
        parts: &request,
        inspected: &inspected,
    };
    let Some(Gate::Forward(stamp)) = gate::check(Found::Session(&route), &source) else {
        panic!("not forwarded");
    };
    assert_eq!(stamp.credential, Some(0));
    let info = ForwardInfo {
        client_ip: "10.0.0.1".into(),
        request_id: b"rid",
        target: None,
        session: Some(&stamp),
        proto: Proto::Http,
    };
    let mut out = Vec::new();
    rewrite::write_head(&source, &ForwardPlan::default(), &info, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET /lab HTTP/1.1\r\nHost: a.test\r\ncookie: a=1; b=2\r\nX-Forwarded-For: 10.0.0.1\r\n\
         X-Forwarded-Host: a.test\r\nX-Forwarded-Proto: http\r\nX-Request-ID: rid\r\n\
         X-Spawngate-Session: sid\r\nX-Spawngate-User: alice\r\nX-Spawngate-Secret: sec\r\n\r\n"
    );

    // No cookie among the crumbs: the same 401 as a session that does not exist.
    let without = parts_with(Method::GET, "http://a.test/", &[("cookie", "a=1")]);
    let inspected = inspect(&without, false, None).unwrap();
    let source = H2Source {
        parts: &without,
        inspected: &inspected,
    };
    let refusal = |found| match gate::check(found, &source) {
        Some(Gate::Refuse(err)) => err,
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(
        refusal(Found::Session(&route)),
        refusal(Found::NoSuchSession)
    );
}
