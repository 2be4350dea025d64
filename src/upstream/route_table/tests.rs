use std::path::Path;

use super::*;
use crate::http1::request::parse_request;
use crate::http1::rewrite::Http1Source;
use crate::upstream::Reconcile;

const CONFIG: &str = r#"
[backends."app.test"]
command = "app"
port = 3001

[backends."api.test"]
command = "api"
port = 3002

[backends."plain.test"]
command = "plain"
port = 3003

[hosts."app.test"]
aliases = ["www.app.test", "*.apps.test"]

[[hosts."app.test".routes]]
path = "/robots.txt"
respond = { body = "User-agent: *\nDisallow:\n" }

[[hosts."app.test".routes]]
path_prefix = "/api"
methods = ["GET", "POST"]
to = "api.test"
strip_prefix = true

[[hosts."app.test".routes]]
path = "/old"
redirect = { location = "https://{host}/new{query}", status = 301 }

[[hosts."app.test".routes]]
path_prefix = "/admin"
methods = ["GET"]
headers = [{ name = "X-Admin", value = "yes" }]
to = "app.test"

[[hosts."app.test".routes]]
path_prefix = "/"
methods = ["GET", "HEAD"]
to = "app.test"
"#;

fn table() -> Arc<RouteTable> {
    let config = crate::config::parse(Path::new("t.toml"), CONFIG).expect("valid config");
    Reconcile::initial(&config.backends, &config.hosts).routes
}

/// What `table` does with `head` (without its final empty line) for `host`, in words.
fn route(table: &RouteTable, host: &str, head: &str) -> String {
    let raw = format!("{head}\r\nHost: {host}\r\n\r\n");
    let parsed = match parse_request(raw.as_bytes()) {
        Ok(Some(parsed)) => parsed,
        other => panic!("{other:?} for {head:?}"),
    };
    let source = Http1Source {
        buf: raw.as_bytes(),
        head: &parsed,
    };
    let mut scratch = RouteScratch::default();
    let caller = Caller {
        request_id: b"rid",
        client_ip: std::net::Ipv4Addr::LOCALHOST.into(),
    };
    match table.lookup(host, &source, caller, &mut scratch) {
        Routed::Forward { to, target } => match target {
            Some(t) => format!("{} {}", to.host, String::from_utf8_lossy(t)),
            None => format!("{} unedited", to.host),
        },
        Routed::Answer(a) => {
            let what = a.location.unwrap_or(a.body);
            format!("{} {}", a.status, String::from_utf8_lossy(&what))
        }
        Routed::Refuse(err) => match err.allow {
            Some(allow) => format!("{} {allow}", err.code),
            None => err.code.to_string(),
        },
        Routed::UnknownHost => "unknown".into(),
    }
}

#[test]
fn a_plain_backend_forwards_its_target_unedited() {
    let t = table();
    assert_eq!(
        route(&t, "plain.test", "GET /a/../b HTTP/1.1"),
        "plain.test unedited"
    );
    assert_eq!(route(&t, "nobody.test", "GET / HTTP/1.1"), "unknown");
}

#[test]
fn routes_are_tried_in_order_on_the_normalised_path() {
    let t = table();
    assert_eq!(
        route(&t, "app.test", "GET /robots.txt HTTP/1.1"),
        "200 User-agent: *\nDisallow:\n"
    );
    assert_eq!(
        route(&t, "app.test", "GET /x/../api/users?q=1 HTTP/1.1"),
        "api.test /users?q=1"
    );
    assert_eq!(route(&t, "app.test", "GET /api HTTP/1.1"), "api.test /");
    assert_eq!(
        route(&t, "app.test", "GET //apix HTTP/1.1"),
        "app.test /apix"
    );
    assert_eq!(
        route(&t, "app.test", "GET /old?a=b HTTP/1.1"),
        "301 https://app.test/new?a=b"
    );
}

#[test]
fn a_table_answers_for_its_aliases_and_one_wildcard_label() {
    let t = table();
    assert_eq!(
        route(&t, "www.app.test", "GET /api/x HTTP/1.1"),
        "api.test /x"
    );
    assert_eq!(route(&t, "a.apps.test", "GET / HTTP/1.1"), "app.test /");
    assert_eq!(route(&t, "a.b.apps.test", "GET / HTTP/1.1"), "unknown");
    assert_eq!(route(&t, "apps.test", "GET / HTTP/1.1"), "unknown");
}

#[test]
fn method_and_header_misses_give_405_or_fall_through() {
    let t = table();
    assert_eq!(
        route(&t, "app.test", "DELETE /api/x HTTP/1.1"),
        "METHOD_NOT_ALLOWED GET, POST, HEAD"
    );
    assert_eq!(
        route(&t, "app.test", "GET /admin HTTP/1.1"),
        "app.test /admin",
        "without the header the catch-all prefix takes it"
    );
    assert_eq!(
        route(&t, "app.test", "PUT /admin HTTP/1.1"),
        "METHOD_NOT_ALLOWED GET, HEAD"
    );
}

#[test]
fn paths_with_two_readings_are_refused() {
    let t = table();
    for path in ["/public/..%2Fadmin", "/%2e%2e/admin", "/a\\b", "/%zz"] {
        let head = format!("GET {path} HTTP/1.1");
        assert_eq!(route(&t, "app.test", &head), "BAD_REQUEST", "{path}");
    }
    assert_eq!(
        route(&t, "plain.test", "GET /public/..%2Fadmin HTTP/1.1"),
        "plain.test unedited",
        "a plain backend forwards the path as today"
    );
}

#[test]
fn no_route_is_404() {
    let config = crate::config::parse(
        Path::new("t.toml"),
        r#"
[backends."app.test"]
command = "app"
port = 3001
[[hosts."app.test".routes]]
path = "/only"
to = "app.test"
"#,
    )
    .expect("valid");
    let t = Reconcile::initial(&config.backends, &config.hosts).routes;
    assert_eq!(route(&t, "app.test", "GET /other HTTP/1.1"), "NO_ROUTE");
    assert_eq!(
        route(&t, "app.test", "GET /only HTTP/1.1"),
        "app.test /only"
    );
}

#[test]
fn explain_names_each_route_that_did_not_match() {
    let t = table();
    let raw = "DELETE /api/x HTTP/1.1\r\nHost: app.test\r\n\r\n";
    let parsed = parse_request(raw.as_bytes())
        .ok()
        .flatten()
        .expect("parsed");
    let source = Http1Source {
        buf: raw.as_bytes(),
        head: &parsed,
    };
    let e = t.explain("app.test", &source);
    assert_eq!(e.host.as_deref(), Some("app.test"));
    assert!(e.table);
    let why: Vec<_> = e.routes.iter().map(|r| r.why_not.clone()).collect();
    assert_eq!(
        why,
        [
            Some("path is not /robots.txt".to_string()),
            Some("method is not one of GET, POST".to_string()),
            Some("path is not /old".to_string()),
            Some("path is not under /admin".to_string()),
            Some("method is not one of GET, HEAD".to_string()),
        ]
    );
    assert_eq!(
        e.outcome,
        "405 METHOD_NOT_ALLOWED: this path accepts only GET, POST, HEAD"
    );
}

#[test]
fn options_star_is_forwarded_as_star() {
    // Found by the route_lookup fuzz target: `*` was forwarded as `/*`.
    let config = crate::config::parse(
        Path::new("t.toml"),
        "[backends.\"app.test\"]\ncommand = \"app\"\nport = 3001\n\
         [[hosts.\"app.test\".routes]]\nto = \"app.test\"\n",
    )
    .expect("valid");
    let t = Reconcile::initial(&config.backends, &config.hosts).routes;
    assert_eq!(route(&t, "app.test", "OPTIONS * HTTP/1.1"), "app.test *");
}
