//! The gate's scenarios, over HTTP/1 heads as the parser gives them and over a source with h2 cookie
//! crumbs (the fields `h2::request::H2Source` yields; the real one is tested with the gate in
//! `h2::request_source_tests`).

use super::*;
use crate::http1::fields::FieldName;
use crate::http1::request::parse_request;
use crate::http1::rewrite::{FieldLine, Http1Source};
use crate::http1::{Framing, Version};
use crate::sessions::route::Credential;
use crate::sessions::secret::{self, Secret};
use crate::sessions::EndReason;
use crate::upstream::BackendId;

fn token(n: u8) -> Secret {
    [n; 32]
}

fn cookie_of(n: u8) -> Secret {
    [n ^ 0x80; 32]
}

fn text(secret: Secret) -> String {
    secret::to_text(&secret)
}

fn credential(n: u8, user: Option<&str>, spent: bool) -> Credential {
    Credential {
        token: token(n),
        cookie: cookie_of(n),
        user: user.map(Into::into),
        spent,
    }
}

fn route(access: Access, ended: Option<EndReason>) -> Arc<SessionRoute> {
    Arc::new(SessionRoute {
        id: "abcdefghijklmnopqrstuvwxyz".into(),
        name: "session/test".into(),
        hostname: "abcdefghijklmnopqrstuvwxyz.nb.test".into(),
        backend: BackendId::new(3, 1),
        access,
        secure_cookie: false,
        secret: "backend-secret".into(),
        credentials: vec![
            credential(1, Some("alice"), false),
            credential(2, Some("bob"), true),
            credential(3, None, false),
        ],
        ended,
    })
}

/// The gate's answer to `METHOD TARGET` with `fields` (each line ending in CRLF).
fn gate_http1(found: Found<'_>, method: &str, target: &str, fields: &str) -> Option<Gate> {
    let text = format!("{method} {target} HTTP/1.1\r\nHost: s.test\r\n{fields}\r\n");
    let head = parse_request(text.as_bytes()).unwrap().unwrap();
    let source = Http1Source {
        buf: text.as_bytes(),
        head: &head,
    };
    check(found, &source)
}

fn get(route: &Arc<SessionRoute>, target: &str, fields: &str) -> Gate {
    gate_http1(Found::Session(route), "GET", target, fields).unwrap()
}

fn refused(gate: Gate) -> ProxyError {
    match gate {
        Gate::Refuse(err) => err,
        other => panic!("not refused: {other:?}"),
    }
}

fn forwarded(gate: Gate) -> SessionStamp {
    match gate {
        Gate::Forward(stamp) => stamp,
        other => panic!("not forwarded: {other:?}"),
    }
}

fn answered(gate: Gate) -> (LocalAnswer, Option<usize>) {
    match gate {
        Gate::Answer { answer, spend } => (answer, spend),
        other => panic!("not answered: {other:?}"),
    }
}

fn field<'a>(answer: &'a LocalAnswer, name: &str) -> Option<&'a [u8]> {
    let mut found = answer.fields.iter().filter(|(n, _)| &**n == name);
    let value = found.next().map(|(_, value)| value.as_slice());
    assert!(found.next().is_none(), "{name} twice");
    value
}

fn cookie_field(n: u8) -> String {
    format!("Cookie: sg_s={}\r\n", text(cookie_of(n)))
}

fn auth_target(n: u8, next: &str) -> String {
    format!("/.spawngate/auth?token={}&next={next}", text(token(n)))
}

#[path = "gate_path_tests.rs"]
mod path;

#[test]
fn hosts_that_are_not_sessions_are_not_the_gates() {
    assert!(gate_http1(Found::NotSession, "GET", "/", "").is_none());
}

#[test]
fn without_a_credential_a_missing_and_an_existing_session_get_the_same_401() {
    let live = route(Access::Token, None);
    let ended = route(Access::Token, Some(EndReason::Idle));
    let bogus = format!("Cookie: sg_s={}\r\n", text(cookie_of(9)));
    let cases = [
        ("GET", "/".to_owned(), String::new()),
        ("POST", "/api/x".to_owned(), String::new()),
        ("GET", "/".to_owned(), bogus),
        ("GET", "/".to_owned(), "Cookie: sg_s=short\r\n".to_owned()),
        (
            "GET",
            "/".to_owned(),
            "X-Spawngate-Token: nope\r\n".to_owned(),
        ),
        ("GET", "/.spawngate/status".to_owned(), String::new()),
        ("GET", "/.spawngate/nothing".to_owned(), String::new()),
        (
            "GET",
            "/.spawngate/auth?token=bogus&next=/x".to_owned(),
            String::new(),
        ),
        ("GET", "/%2Espawngate/auth".to_owned(), String::new()),
        ("GET", auth_target(2, "/"), String::new()),
        ("POST", "/.spawngate/auth".to_owned(), String::new()),
        ("GET", "/a/%2e%2e/b".to_owned(), String::new()),
    ];
    for (method, target, fields) in &cases {
        let answer = |found: Found<'_>| {
            let gate = gate_http1(found, method, target, fields).unwrap();
            refused(gate).to_http1(Some(b"rid"), false, &[])
        };
        let missing = answer(Found::NoSuchSession);
        assert_eq!(missing, answer(Found::Session(&live)), "{method} {target}");
        assert_eq!(missing, answer(Found::Session(&ended)), "{method} {target}");
    }
    let err = refused(get(&live, "/", ""));
    assert_eq!(err.code, ErrorCode::SessionUnauthorized);
    assert_eq!(err.code.status(), 401);
}

#[test]
fn a_valid_cookie_or_token_field_forwards_with_its_credential() {
    let live = route(Access::Token, None);
    let c1 = text(cookie_of(1));
    let cases = [
        (format!("Cookie: sg_s={c1}\r\n"), 0),
        (format!("Cookie: a=1; sg_s={c1}; b=2\r\n"), 0),
        (format!("Cookie: sg_s=bad; sg_s={c1}\r\n"), 0),
        (format!("Cookie: a=1\r\nCookie: sg_s={c1}\r\n"), 0),
        // The cookie of a spent token still opens the session: it is what the trade gave.
        (cookie_field(2), 1),
        (format!("X-Spawngate-Token: {}\r\n", text(token(3))), 2),
        (format!("x-spawngate-token:  {} \r\n", text(token(1))), 0),
    ];
    for (fields, index) in cases {
        let stamp = forwarded(get(&live, "/lab?x=1", &fields));
        assert_eq!(stamp.credential, Some(index), "{fields}");
        assert!(Arc::ptr_eq(&stamp.route, &live));
    }
    assert_eq!(
        forwarded(get(&live, "/", &cookie_field(1))).user(),
        Some("alice")
    );
    assert_eq!(forwarded(get(&live, "/", &cookie_field(3))).user(), None);
}

#[test]
fn what_is_not_a_credential_opens_nothing() {
    let live = route(Access::Token, None);
    let c1 = text(cookie_of(1));
    let t1 = text(token(1));
    for fields in [
        // A spent token, as a header.
        format!("X-Spawngate-Token: {}\r\n", text(token(2))),
        // A token is not a cookie, nor a cookie a token.
        format!("Cookie: sg_s={t1}\r\n"),
        format!("X-Spawngate-Token: {c1}\r\n"),
        // Another name, another case, a quoted value.
        format!("Cookie: SG_S={c1}\r\n"),
        format!("Cookie: xsg_s={c1}\r\n"),
        format!("Cookie: sg_s=\"{c1}\"\r\n"),
        format!("X-Spawngate-Cookie: {c1}\r\n"),
    ] {
        let err = refused(get(&live, "/", &fields));
        assert_eq!(err.code, ErrorCode::SessionUnauthorized, "{fields}");
    }
}

#[test]
fn a_head_stuffed_with_candidates_tries_only_a_few() {
    let live = route(Access::Token, None);
    let junk = format!("sg_s={}; ", text(cookie_of(9))).repeat(MAX_CANDIDATES);
    let fields = format!(
        "Cookie: {junk}{}",
        cookie_field(1).trim_start_matches("Cookie: ")
    );
    assert_eq!(
        refused(get(&live, "/", &fields)).code,
        ErrorCode::SessionUnauthorized
    );
}

#[test]
fn an_ended_session_answers_its_credentials_with_410_and_its_reason() {
    let ended = route(Access::Token, Some(EndReason::Exited("status 3".into())));
    for (target, fields) in [
        ("/".to_owned(), cookie_field(1)),
        (
            "/x".to_owned(),
            format!("X-Spawngate-Token: {}\r\n", text(token(3))),
        ),
        (auth_target(1, "/"), String::new()),
        ("/.spawngate/other".to_owned(), cookie_field(1)),
    ] {
        let err = refused(get(&ended, &target, &fields));
        assert_eq!(err.code, ErrorCode::SessionEnded, "{target}");
        assert_eq!(err.code.status(), 410);
        assert!(err.message.contains("exited (status 3)"), "{}", err.message);
    }
    // Its status still answers, saying so.
    let (answer, spend) = answered(get(&ended, "/.spawngate/status", &cookie_field(1)));
    assert_eq!((answer.status, spend), (200, None));
    assert_eq!(
        answer.body,
        br#"{"session":"abcdefghijklmnopqrstuvwxyz","state":"ended"}"#
    );
}

#[test]
fn hostname_and_none_access_need_no_credential_but_still_end() {
    for access in [Access::Hostname, Access::None] {
        let live = route(access, None);
        let stamp = forwarded(get(&live, "/", ""));
        assert_eq!(stamp.credential, None);
        assert_eq!(stamp.user(), None);
        // A credential sent anyway names no user: this access has none.
        assert_eq!(
            forwarded(get(&live, "/", &cookie_field(1))).credential,
            None
        );
        let (answer, spend) = answered(get(&live, "/.spawngate/auth?next=/x", ""));
        assert_eq!((answer.status, spend), (303, None));
        assert_eq!(answer.location.as_deref(), Some(&b"/x"[..]));
        assert_eq!(field(&answer, "Set-Cookie"), None);
        let (answer, _) = answered(get(&live, "/.spawngate/status", ""));
        assert_eq!(answer.status, 200);
        assert_eq!(
            refused(get(&live, "/.spawngate/x", "")).code,
            ErrorCode::NotFound
        );

        let ended = route(access, Some(EndReason::Lifetime));
        let err = refused(get(&ended, "/", ""));
        assert_eq!(err.code, ErrorCode::SessionEnded);
        assert!(err.message.contains("lifetime"), "{}", err.message);
    }
}

#[test]
fn the_stamp_writes_the_proxys_lines_and_skips_unsafe_users() {
    let live = route(Access::Token, None);
    let mut out = Vec::new();
    forwarded(get(&live, "/", &cookie_field(1))).write_fields(&mut out);
    assert_eq!(
        out,
        b"X-Spawngate-Session: abcdefghijklmnopqrstuvwxyz\r\nX-Spawngate-User: alice\r\n\
          X-Spawngate-Secret: backend-secret\r\n"
    );
    let mut odd = (*live).clone();
    odd.credentials[0].user = Some("eve\r\nX-Admin: 1".into());
    let stamp = SessionStamp {
        route: Arc::new(odd),
        credential: Some(0),
    };
    out.clear();
    stamp.write_fields(&mut out);
    assert_eq!(
        out,
        b"X-Spawngate-Session: abcdefghijklmnopqrstuvwxyz\r\n\
          X-Spawngate-Secret: backend-secret\r\n"
    );
}

/// A request as the h2 worker reads one: every `cookie` value together, the later ones crumbs.
struct Crumbs {
    target: &'static str,
    fields: Vec<(&'static str, String)>,
}

impl RequestSource for Crumbs {
    fn method(&self) -> &[u8] {
        b"GET"
    }
    fn target(&self) -> &[u8] {
        self.target.as_bytes()
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
        self.fields
            .iter()
            .enumerate()
            .map(|(at, (name, value))| FieldLine {
                name: name.as_bytes(),
                value: value.as_bytes(),
                kind: FieldName::Other,
                joins_previous: at > 0 && *name == "cookie" && self.fields[at - 1].0 == "cookie",
            })
    }
}

#[test]
fn the_cookie_may_be_any_h2_crumb() {
    let live = route(Access::Token, None);
    let c3 = format!("sg_s={}", text(cookie_of(3)));
    for crumbs in [
        vec![c3.clone(), "a=1".to_owned()],
        vec!["a=1".to_owned(), c3.clone(), "b=2".to_owned()],
        vec!["a=1".to_owned(), format!("b=2; {c3}")],
    ] {
        let request = Crumbs {
            target: "/x",
            fields: crumbs.into_iter().map(|value| ("cookie", value)).collect(),
        };
        let gate = check(Found::Session(&live), &request).unwrap();
        assert_eq!(forwarded(gate).credential, Some(2));
    }
    let none = Crumbs {
        target: "/x",
        fields: vec![("cookie", "a=1".to_owned()), ("cookie", "b=2".to_owned())],
    };
    let gate = check(Found::Session(&live), &none).unwrap();
    assert_eq!(refused(gate).code, ErrorCode::SessionUnauthorized);
}
