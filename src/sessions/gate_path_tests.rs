//! The gate's answers by path: the token trade at `/.spawngate/auth`, where `next` may lead, `status`,
//! and every spelling of the namespace.

use super::*;

#[test]
fn auth_trades_a_token_for_the_cookie_and_redirects() {
    let mut secure = (*route(Access::Token, None)).clone();
    secure.secure_cookie = true;
    let secure = Arc::new(secure);
    for (route, suffix) in [(route(Access::Token, None), ""), (secure, "; Secure")] {
        for method in ["GET", "HEAD"] {
            let target = auth_target(3, "%2Flab%2Ftree%3Fx%3D1");
            let gate = gate_http1(Found::Session(&route), method, &target, "").unwrap();
            let (answer, spend) = answered(gate);
            assert_eq!((answer.status, spend), (303, Some(2)));
            assert_eq!(answer.location.as_deref(), Some(&b"/lab/tree?x=1"[..]));
            let set = format!(
                "sg_s={}; Path=/; HttpOnly; SameSite=Lax{suffix}",
                text(cookie_of(3))
            );
            assert_eq!(field(&answer, "Set-Cookie"), Some(set.as_bytes()));
            assert_eq!(field(&answer, "Cache-Control"), Some(&b"no-store"[..]));
            assert_eq!(field(&answer, "Referrer-Policy"), Some(&b"no-referrer"[..]));
            assert!(answer.body.is_empty());
        }
    }
}

#[test]
fn auth_with_a_spent_or_bad_token_redirects_only_a_client_already_in() {
    let live = route(Access::Token, None);
    for target in [auth_target(2, "/x"), "/.spawngate/auth?next=/x".to_owned()] {
        let err = refused(get(&live, &target, ""));
        assert_eq!(err.code, ErrorCode::SessionUnauthorized, "{target}");
        let (answer, spend) = answered(get(&live, &target, &cookie_field(2)));
        assert_eq!((answer.status, spend), (303, None));
        assert_eq!(answer.location.as_deref(), Some(&b"/x"[..]));
        assert_eq!(field(&answer, "Set-Cookie"), None);
        assert_eq!(field(&answer, "Cache-Control"), Some(&b"no-store"[..]));
    }
    // A valid token wins over the cookie: the trade happens and sets the token's cookie.
    let (answer, spend) = answered(get(&live, &auth_target(3, "/"), &cookie_field(1)));
    assert_eq!(spend, Some(2));
    let set = field(&answer, "Set-Cookie").unwrap();
    assert!(set.starts_with(format!("sg_s={};", text(cookie_of(3))).as_bytes()));
}

#[test]
fn auth_accepts_only_get_and_head() {
    let live = route(Access::Token, None);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        for found in [Found::Session(&live), Found::NoSuchSession] {
            let gate = gate_http1(found, method, &auth_target(1, "/"), &cookie_field(1)).unwrap();
            let err = refused(gate);
            assert_eq!(err.code, ErrorCode::MethodNotAllowed, "{method}");
            assert_eq!(err.allow.as_deref(), Some("GET, HEAD"));
        }
    }
}

#[test]
fn next_is_followed_only_to_a_path_on_the_same_host() {
    let live = route(Access::Token, None);
    let cases = [
        ("/notebooks/a.ipynb", "/notebooks/a.ipynb"),
        ("%2Fa%20b", "/a%20b"),
        ("https://evil.test/", "/"),
        ("https%3A%2F%2Fevil.test%2F", "/"),
        ("//evil.test", "/"),
        ("%2F%2Fevil.test", "/"),
        ("/%5Cevil.test", "/"),
        ("/%09/evil.test", "/"),
        ("/x%0D%0ASet-Cookie:%20a=1", "/"),
        ("/x%0aLocation:%20//evil", "/"),
        ("javascript:alert(1)", "/"),
        ("", "/"),
    ];
    for (next, want) in cases {
        let (answer, _) = answered(get(&live, &auth_target(1, next), ""));
        assert_eq!(
            answer.location.as_deref(),
            Some(want.as_bytes()),
            "next={next}"
        );
    }
}

#[test]
fn every_spelling_of_the_namespace_is_the_proxys() {
    let live = route(Access::Token, None);
    let t = text(token(1));
    for target in [
        format!("/.spawngate/auth?token={t}"),
        format!("/%2Espawngate/auth?token={t}"),
        format!("/%2espawngate/%61uth?token={t}"),
        format!("/a/../.spawngate/auth?token={t}"),
        format!("/./.spawngate/./auth?token={t}"),
        format!("//.spawngate//auth?token={t}"),
        format!("/../.spawngate/auth?token={t}"),
    ] {
        let (answer, spend) = answered(get(&live, &target, ""));
        assert_eq!((answer.status, spend), (303, Some(0)), "{target}");
    }
    let c = cookie_field(1);
    for target in [
        "/.spawngate/status",
        "/.SpawnGate/status",
        "/x/../.spawngate/status",
    ] {
        let (answer, _) = answered(get(&live, target, &c));
        assert_eq!(answer.status, 200, "{target}");
        assert_eq!(answer.content_type.as_deref(), Some("application/json"));
        assert_eq!(
            answer.body,
            br#"{"session":"abcdefghijklmnopqrstuvwxyz","state":"live"}"#
        );
    }
    for target in [
        "/.spawngate",
        "/.spawngate/",
        "/.spawngate/auth/",
        "/.spawngate/nothing?x=1",
        "/.SPAWNGATE/x",
        "/.spawngate%2Fauth",
        "/.spawngate%5cauth",
        "/a/b/../../.spawngate/x",
    ] {
        let err = refused(get(&live, target, &c));
        assert_eq!(err.code, ErrorCode::NotFound, "{target}");
    }
    // Paths with no single reading: whether they are the proxy's cannot be decided.
    for target in [
        "/%2e%2e/.spawngate/auth",
        "/.spawngate/%2E%2E/x",
        "/a/%2e/b",
        "/a%zz",
        "/a%",
    ] {
        let err = refused(get(&live, target, &c));
        assert_eq!(err.code, ErrorCode::BadRequest, "{target}");
    }
    // Near misses are the backend's.
    for target in [
        "/.spawngatex",
        "/a/.spawngate/auth",
        "/x?next=/.spawngate/auth",
        "/.well-known/x",
        "/a%2F..%2F.spawngate/auth",
        "*",
    ] {
        let method = if target == "*" { "OPTIONS" } else { "GET" };
        let gate = gate_http1(Found::Session(&live), method, target, &c).unwrap();
        assert_eq!(forwarded(gate).credential, Some(0), "{target}");
    }
}

#[test]
fn status_accepts_only_get_and_head() {
    let live = route(Access::Token, None);
    let gate = gate_http1(
        Found::Session(&live),
        "POST",
        "/.spawngate/status",
        &cookie_field(1),
    );
    assert_eq!(refused(gate.unwrap()).code, ErrorCode::MethodNotAllowed);
}
