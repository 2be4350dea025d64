//! The forwarded head of a session's request: inbound `X-Spawngate-*` fields and the `sg_s` cookie
//! pair removed, the proxy's session lines added; and, without a session, the very head of before.

use std::sync::Arc;

use super::*;
use crate::config::sessions::Access;
use crate::http1::request::parse_request;
use crate::sessions::gate::SessionStamp;
use crate::sessions::route::{Credential, SessionRoute};
use crate::upstream::BackendId;

fn stamp(user: Option<&str>) -> SessionStamp {
    let route = SessionRoute {
        id: "sid".into(),
        name: "session/test".into(),
        hostname: "sid.nb.test".into(),
        backend: BackendId::new(0, 1),
        access: Access::Token,
        secure_cookie: false,
        secret: "sec".into(),
        credentials: vec![Credential {
            token: [1; 32],
            cookie: [2; 32],
            user: user.map(Into::into),
            spent: false,
        }],
        ended: None,
    };
    SessionStamp {
        route: Arc::new(route),
        credential: Some(0),
    }
}

fn forward(text: &str, plan: &ForwardPlan, session: Option<&SessionStamp>) -> String {
    let head = parse_request(text.as_bytes()).unwrap().unwrap();
    let info = ForwardInfo {
        client_ip: ClientIp::Text("10.0.0.1"),
        request_id: b"rid",
        target: None,
        session,
        proto: Proto::Http,
    };
    let mut out = Vec::new();
    write_request(text.as_bytes(), &head, plan, &info, &mut out);
    String::from_utf8(out).unwrap()
}

const ADDED: &str = "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Host: s.test\r\n\
                     X-Forwarded-Proto: http\r\nX-Request-ID: rid\r\n";
const SESSION: &str = "X-Spawngate-Session: sid\r\nX-Spawngate-User: alice\r\n\
                       X-Spawngate-Secret: sec\r\n\r\n";

/// The head forwarded for `fields` on a session request, and with the session lines stripped off the
/// end (what the client's fields became).
fn session_head(fields: &str) -> String {
    let text = format!("GET /x HTTP/1.1\r\nHost: s.test\r\n{fields}\r\n");
    forward(&text, &ForwardPlan::default(), Some(&stamp(Some("alice"))))
}

fn expect(fields: &str) -> String {
    format!("GET /x HTTP/1.1\r\nHost: s.test\r\n{fields}{ADDED}{SESSION}")
}

#[test]
fn inbound_spawngate_fields_are_dropped_in_any_case() {
    let fields = "X-Spawngate-Token: t\r\nx-spawngate-user: mallory\r\nX-SPAWNGATE-SECRET: s\r\n\
                  X-SpawnGate-Session: other\r\nx-spawngate-: e\r\nX-Spawngate: kept\r\n\
                  X-Spawngates: kept\r\nAccept: */*\r\n";
    assert_eq!(
        session_head(fields),
        expect("X-Spawngate: kept\r\nX-Spawngates: kept\r\nAccept: */*\r\n")
    );
}

#[test]
fn the_session_cookie_pair_is_removed_wherever_it_is() {
    let cases = [
        ("Cookie: sg_s=abc; a=1; b=2\r\n", "Cookie: a=1; b=2\r\n"),
        ("Cookie: a=1; sg_s=abc; b=2\r\n", "Cookie: a=1; b=2\r\n"),
        ("Cookie: a=1; b=2; sg_s=abc\r\n", "Cookie: a=1; b=2\r\n"),
        ("Cookie: a=1;sg_s=abc;b=2\r\n", "Cookie: a=1; b=2\r\n"),
        ("Cookie: SG_S=x; sg_s =y; a=1; sg_s\r\n", "Cookie: a=1\r\n"),
        ("Cookie: sg_s=abc\r\n", ""),
        ("Cookie: sg_s=a; sg_s=b\r\n", ""),
        ("cookie: sg_s=abc; ;\r\n", ""),
        // Untouched without the pair, byte for byte.
        ("Cookie: a=1;b=2;  c=3\r\n", "Cookie: a=1;b=2;  c=3\r\n"),
        (
            "Cookie: xsg_s=1; sg_sx=2\r\n",
            "Cookie: xsg_s=1; sg_sx=2\r\n",
        ),
        (
            "Cookie: sg_s=1\r\nAccept: */*\r\nCookie: a=1\r\nCookie: b=2; sg_s=3\r\n",
            "Accept: */*\r\nCookie: a=1\r\nCookie: b=2\r\n",
        ),
    ];
    for (fields, kept) in cases {
        assert_eq!(session_head(fields), expect(kept), "{fields}");
    }
}

#[test]
fn a_plan_that_removes_or_sets_cookie_still_wins() {
    let text = "GET /x HTTP/1.1\r\nHost: s.test\r\nCookie: a=1; sg_s=2\r\n\r\n";
    let plan = ForwardPlan {
        set_headers: vec![FieldEdit::new("Cookie", "route=1").unwrap()],
        ..ForwardPlan::default()
    };
    let head = forward(text, &plan, Some(&stamp(Some("alice"))));
    assert_eq!(
        head,
        format!("GET /x HTTP/1.1\r\nHost: s.test\r\nCookie: route=1\r\n{ADDED}{SESSION}")
    );
}

#[test]
fn the_user_line_is_written_only_for_a_safe_user() {
    let text = "GET /x HTTP/1.1\r\nHost: s.test\r\n\r\n";
    let plan = ForwardPlan::default();
    let head = |user| forward(text, &plan, Some(&stamp(user)));
    let without = format!(
        "GET /x HTTP/1.1\r\nHost: s.test\r\n{ADDED}\
         X-Spawngate-Session: sid\r\nX-Spawngate-Secret: sec\r\n\r\n"
    );
    assert_eq!(head(None), without);
    assert_eq!(head(Some("a\rb")), without);
    assert_eq!(head(Some("a\u{7f}")), without);
    assert_eq!(head(Some("alice")), expect(""));
}

#[test]
fn without_a_session_nothing_changes() {
    let text = "POST /x HTTP/1.1\r\nHost: s.test\r\nX-Spawngate-Token: t\r\n\
                Cookie: sg_s=abc; a=1\r\nCookie: sg_s=1\r\nContent-Length: 2\r\n\r\n";
    let plan = ForwardPlan::default();
    assert_eq!(
        forward(text, &plan, None),
        format!(
            "POST /x HTTP/1.1\r\nHost: s.test\r\nX-Spawngate-Token: t\r\nCookie: sg_s=abc; a=1\r\n\
             Cookie: sg_s=1\r\nContent-Length: 2\r\n{ADDED}\r\n"
        )
    );
}

/// A source with h2 cookie crumbs, as `h2::request::H2Source` yields them (the real one is tested in
/// `h2::request_source_tests`).
struct Crumbs(Vec<(&'static str, &'static str, bool)>);

impl RequestSource for Crumbs {
    fn method(&self) -> &[u8] {
        b"GET"
    }
    fn target(&self) -> &[u8] {
        b"/x"
    }
    fn version(&self) -> Version {
        Version::Http11
    }
    fn authority(&self) -> Option<&[u8]> {
        Some(b"s.test")
    }
    fn host_from_authority(&self) -> bool {
        true
    }
    fn framing(&self) -> Framing {
        Framing::None
    }
    fn upgrade(&self) -> bool {
        false
    }
    fn connection_values(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::empty()
    }
    fn fields(&self) -> impl Iterator<Item = FieldLine<'_>> {
        self.0
            .iter()
            .map(|&(name, value, joins_previous)| FieldLine {
                name: name.as_bytes(),
                value: value.as_bytes(),
                kind: FieldName::classify(name.as_bytes()),
                joins_previous,
            })
    }
}

fn crumbs_head(fields: Vec<(&'static str, &'static str, bool)>, plan: &ForwardPlan) -> String {
    let stamp = stamp(Some("alice"));
    let info = ForwardInfo {
        client_ip: ClientIp::Text("10.0.0.1"),
        request_id: b"rid",
        target: None,
        session: Some(&stamp),
        proto: Proto::Http,
    };
    let mut out = Vec::new();
    write_head(&Crumbs(fields), plan, &info, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn h2_crumbs_lose_the_pair_and_empty_crumbs_vanish() {
    let plan = ForwardPlan::default();
    let crumb = |value| ("cookie", value, true);
    let cases = [
        (
            vec![("cookie", "sg_s=1", false), crumb("a=1"), crumb("b=2")],
            "cookie: a=1; b=2\r\n",
        ),
        (
            vec![("cookie", "a=1", false), crumb("sg_s=1"), crumb("b=2")],
            "cookie: a=1; b=2\r\n",
        ),
        (
            vec![("cookie", "a=1", false), crumb("b=2"), crumb("sg_s=1")],
            "cookie: a=1; b=2\r\n",
        ),
        (
            vec![
                ("cookie", "sg_s=1", false),
                crumb("sg_s=2; c=3"),
                crumb("d=4"),
            ],
            "cookie: c=3; d=4\r\n",
        ),
        (vec![("cookie", "sg_s=1", false), crumb("sg_s=2")], ""),
        (
            vec![
                ("cookie", "sg_s=1", false),
                crumb("a=1"),
                ("x-spawngate-user", "m", false),
                ("accept", "*/*", false),
            ],
            "cookie: a=1\r\naccept: */*\r\n",
        ),
    ];
    for (fields, kept) in cases {
        let want = format!("GET /x HTTP/1.1\r\nHost: s.test\r\n{kept}{ADDED}{SESSION}");
        assert_eq!(crumbs_head(fields.clone(), &plan), want, "{fields:?}");
    }
    // Crumbs still follow their field's fate when a plan removes Cookie.
    let removed = ForwardPlan {
        remove_headers: vec![EditableName::new("Cookie").unwrap()],
        ..ForwardPlan::default()
    };
    let fields = vec![
        ("cookie", "sg_s=1", false),
        crumb("a=1"),
        ("x-k", "1", false),
    ];
    assert_eq!(
        crumbs_head(fields, &removed),
        format!("GET /x HTTP/1.1\r\nHost: s.test\r\nx-k: 1\r\n{ADDED}{SESSION}")
    );
}
