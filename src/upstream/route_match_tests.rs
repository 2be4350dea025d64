use super::*;
use crate::http1::request::parse_request;
use crate::http1::rewrite::Http1Source;

/// Parses `head` (without the final empty line) and judges it against `routes` with its target as the
/// path.
fn pick(routes: &[Conditions], head: &str) -> Selection {
    let raw = format!("{head}\r\n\r\n");
    let parsed = match parse_request(raw.as_bytes()) {
        Ok(Some(parsed)) => parsed,
        other => panic!("{other:?} for {head:?}"),
    };
    let source = Http1Source {
        buf: raw.as_bytes(),
        head: &parsed,
    };
    let target = std::str::from_utf8(source.target()).expect("ascii");
    let path = target.split('?').next().unwrap_or_default();
    select(routes, path, &source)
}

fn prefix(p: &str) -> Conditions {
    Conditions {
        path: PathCond::Prefix(p.into()),
        ..Conditions::default()
    }
}

fn exact(p: &str) -> Conditions {
    Conditions {
        path: PathCond::Exact(p.into()),
        ..Conditions::default()
    }
}

fn regex(p: &str) -> Conditions {
    Conditions {
        path: PathCond::Regex(Pattern::new(p).expect("valid")),
        ..Conditions::default()
    }
}

fn with_methods(mut c: Conditions, methods: &[&str]) -> Conditions {
    c.methods = Some(methods.iter().map(|m| m.to_string()).collect());
    c
}

fn with_header(mut c: Conditions, name: &str, test: HeaderTest) -> Conditions {
    c.headers.push(HeaderCond {
        name: name.into(),
        test,
    });
    c
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: a.test")
}

#[test]
fn prefixes_match_whole_segments() {
    let routes = [prefix("/api")];
    for path in ["/api", "/api/", "/api/x", "/api/x/y?q=1"] {
        assert_eq!(pick(&routes, &get(path)), Selection::Route(0), "{path}");
    }
    for path in ["/apix", "/ap", "/", "/x/api"] {
        assert_eq!(pick(&routes, &get(path)), Selection::NoRoute, "{path}");
    }
    assert_eq!(
        pick(&[prefix("/")], &get("/anything/at/all")),
        Selection::Route(0)
    );
}

#[test]
fn the_first_match_in_order_wins() {
    let routes = [exact("/robots.txt"), prefix("/api"), Conditions::default()];
    assert_eq!(pick(&routes, &get("/robots.txt")), Selection::Route(0));
    assert_eq!(pick(&routes, &get("/robots.txt/x")), Selection::Route(2));
    assert_eq!(pick(&routes, &get("/api/v1")), Selection::Route(1));
    assert_eq!(pick(&routes, &get("/")), Selection::Route(2));
}

#[test]
fn regexes_match_the_whole_path() {
    let routes = [regex("/u/[0-9]+")];
    assert_eq!(pick(&routes, &get("/u/42")), Selection::Route(0));
    assert_eq!(pick(&routes, &get("/u/42/x")), Selection::NoRoute);
    assert_eq!(pick(&routes, &get("/x/u/42")), Selection::NoRoute);
    assert_eq!(
        pick(&[regex("/a|/b")], &get("/b")),
        Selection::Route(0),
        "alternation anchored whole"
    );
}

#[test]
fn a_path_that_matched_but_not_its_method_is_405_with_allow() {
    let routes = [
        with_methods(prefix("/admin"), &["GET", "HEAD"]),
        with_methods(prefix("/admin"), &["PUT", "GET"]),
        prefix("/other"),
    ];
    assert_eq!(
        pick(&routes, "DELETE /admin/x HTTP/1.1\r\nHost: a.test"),
        Selection::MethodNotAllowed(vec!["GET".into(), "HEAD".into(), "PUT".into()])
    );
    assert_eq!(
        pick(&routes, "PUT /admin HTTP/1.1\r\nHost: a.test"),
        Selection::Route(1)
    );
    // A later route that matches fully wins over the 405.
    let routes = [with_methods(prefix("/a"), &["GET"]), prefix("/")];
    assert_eq!(
        pick(&routes, "POST /a HTTP/1.1\r\nHost: a.test"),
        Selection::Route(1)
    );
}

#[test]
fn header_conditions_exact_regex_present_and_absent() {
    let v2 = with_header(
        Conditions::default(),
        "x-api-version",
        HeaderTest::Equals("2".into()),
    );
    let bot = with_header(
        Conditions::default(),
        "user-agent",
        HeaderTest::Regex(Pattern::new("(?i).*bot.*").expect("valid")),
    );
    let debug = with_header(Conditions::default(), "x-debug", HeaderTest::Present(true));
    let no_cookie = with_header(Conditions::default(), "cookie", HeaderTest::Present(false));
    let routes = [v2, bot, debug, no_cookie];
    let req = |extra: &str| format!("GET / HTTP/1.1\r\nHost: a.test\r\n{extra}");
    assert_eq!(pick(&routes, &req("X-Api-Version: 2")), Selection::Route(0));
    assert_eq!(
        pick(&routes, &req("X-API-VERSION: 3\r\nCookie: a")),
        Selection::NoRoute
    );
    assert_eq!(
        pick(&routes, &req("User-Agent: GoogleBot/2\r\nCookie: a")),
        Selection::Route(1)
    );
    assert_eq!(
        pick(&routes, &req("X-Debug: \r\nCookie: a")),
        Selection::Route(2)
    );
    assert_eq!(pick(&routes, &req("Accept: */*")), Selection::Route(3));
    // A repeated field matches if any of its lines does.
    assert_eq!(
        pick(&routes, &req("X-Api-Version: 1\r\nX-Api-Version: 2")),
        Selection::Route(0)
    );
}

#[test]
fn shadowing_is_claimed_only_when_certain() {
    let all = Conditions::default();
    assert!(all.shadows(&prefix("/api")));
    assert!(prefix("/api").shadows(&prefix("/api/v1")));
    assert!(prefix("/api").shadows(&exact("/api")));
    assert!(!prefix("/api").shadows(&prefix("/apix")));
    assert!(!prefix("/api/v1").shadows(&prefix("/api")));
    assert!(exact("/a").shadows(&exact("/a")));
    assert!(!exact("/a").shadows(&prefix("/a")));
    assert!(regex("/u/[0-9]+").shadows(&regex("/u/[0-9]+")));
    assert!(
        !regex("/u/.*").shadows(&regex("/u/[0-9]+")),
        "not provable by text"
    );
    assert!(
        prefix("/").shadows(&regex("/x")),
        "every path starts with /"
    );
    assert!(!prefix("/x").shadows(&regex("/x")), "not provable by text");

    let get = with_methods(prefix("/a"), &["GET"]);
    let get_put = with_methods(prefix("/a"), &["GET", "PUT"]);
    assert!(get_put.shadows(&get));
    assert!(!get.shadows(&get_put));
    assert!(!get.shadows(&prefix("/a")), "any method is wider than GET");

    let v2 = with_header(prefix("/a"), "x-v", HeaderTest::Equals("2".into()));
    assert!(prefix("/a").shadows(&v2), "fewer conditions shadow more");
    assert!(!v2.shadows(&prefix("/a")));
    assert!(v2.shadows(&with_header(v2.clone(), "x-w", HeaderTest::Present(true))));
}

#[test]
fn a_prefix_is_a_whole_segment_prefix() {
    assert!(has_segment_prefix("/a/b", "/a"));
    assert!(has_segment_prefix("/a", "/a"));
    assert!(!has_segment_prefix("/ab", "/a"));
    assert!(has_segment_prefix("/", "/"));
    assert!(!has_segment_prefix("", "/"));
}

#[test]
fn a_pattern_checks_its_literal_prefix_first_without_changing_what_matches() {
    for (pattern, prefix) in [
        ("/users/[0-9]+", "/users/"),
        ("/ab?c", "/a"),
        ("/ab*", "/a"),
        ("/ab{2}", "/a"),
        ("/ab+", "/ab"),
        ("/a|/b", ""),
        ("/x/(a|b)", "/x/"),
        ("(?i)/admin", ""),
        ("/a\\.b", "/a"),
        ("/[|]x", "/"),
    ] {
        assert_eq!(literal_prefix(pattern), prefix, "{pattern}");
    }
    let p = Pattern::new("/a|/b").expect("valid");
    assert!(p.is_match("/b") && p.is_match("/a"));
    let p = Pattern::new("/ab?c").expect("valid");
    assert!(p.is_match("/ac") && p.is_match("/abc") && !p.is_match("/xbc"));
}

#[test]
fn a_pattern_cannot_close_the_anchoring_group() {
    // Wrapped as written, `^(?:a)|(b)$` would match `/zzzb` and `/a/anything`.
    assert!(crate::upstream::route_match::Pattern::new("a)|(b").is_err());
    assert!(crate::upstream::route_match::Pattern::new("/a|/b").is_ok());
}
