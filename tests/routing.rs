//! Route tables per host, against the real binary with real echo backends, each case over HTTP/1.1 and
//! h2c alike: every matcher, every action and modifier, 404 `NO_ROUTE` and 405 with `Allow`, one
//! normalised path, aliases and wildcards, and the admin views.

mod support;

use support::routing::{ask, ask_get, Proto, PROTOCOLS};
use support::*;

/// Two echo backends behind one site: `app.internal` and `api.internal` (each also reachable by its
/// own name, which tells the tests which process answered).
fn site() -> Proxy {
    let backends = format!(
        "{}{}",
        echo_backend("app.internal", free_port(), "", &[]),
        echo_backend("api.internal", free_port(), "", &[])
    );
    Proxy::start(&format!("{backends}\n{SITE}"))
}

const SITE: &str = r#"
[hosts."site.test"]
aliases = ["www.site.test", "*.sites.test"]

[[hosts."site.test".routes]]
path = "/robots.txt"
respond = { body = "User-agent: *\nDisallow: /admin\n" }

[[hosts."site.test".routes]]
path = "/gone"
respond = { status = 410, body = "nothing at {path}{query}", content_type = "text/html" }

[[hosts."site.test".routes]]
path = "/old"
redirect = { location = "https://{host}/new{query}", status = 301 }

[[hosts."site.test".routes]]
path_prefix = "/api"
methods = ["GET", "POST"]
to = "api.internal"
strip_prefix = true

[[hosts."site.test".routes]]
path_prefix = "/v1"
to = "api.internal"
rewrite_prefix = "/v2"

[[hosts."site.test".routes]]
path_regex = "/users/[0-9]+"
to = "api.internal"

[[hosts."site.test".routes]]
path_prefix = "/beta"
headers = [{ name = "X-Beta", value = "1" }]
to = "api.internal"

[[hosts."site.test".routes]]
path_prefix = "/debug"
headers = [{ name = "X-Debug", present = true }]
to = "api.internal"

[[hosts."site.test".routes]]
path_prefix = "/bots"
headers = [{ name = "User-Agent", regex = "(?i).*bot.*" }]
respond = { status = 403, body = "no bots" }

[[hosts."site.test".routes]]
path_prefix = "/admin"
methods = ["GET"]
to = "app.internal"

[[hosts."site.test".routes]]
path_prefix = "/static"
to = "app.internal"

[[hosts."site.test".routes]]
path = "/"
to = "app.internal"

[hosts."files.test"]
allow_encoded_slashes = true

[[hosts."files.test".routes]]
to = "app.internal"
"#;

/// The pid of the echo process behind `backend`, asked through its own catch-all host.
fn pid_of(proxy: &Proxy, backend: &str) -> u32 {
    let reply = ask_get(proxy.addr(), Proto::Http1, backend, "/");
    reply
        .echo_pid()
        .unwrap_or_else(|| panic!("{backend} did not answer: {reply:?}"))
}

/// The pids of the site's two backends: (app, api).
fn site_pids(proxy: &Proxy) -> (u32, u32) {
    (pid_of(proxy, "app.internal"), pid_of(proxy, "api.internal"))
}

fn assert_error(reply: &support::routing::Reply, code: &str, status: u16) {
    assert_eq!(
        (reply.status, reply.header("x-proxy-error")),
        (status, Some(code)),
        "{:?}: {reply:?} {}",
        reply.proto,
        reply.text()
    );
    let json = reply.json();
    assert_eq!(json["code"], code, "{:?}", reply.proto);
    assert_eq!(json["status"], status, "{:?}", reply.proto);
}

#[test]
fn path_matchers_pick_the_first_matching_route_in_both_protocols() {
    let proxy = site();
    let (app, api) = site_pids(&proxy);
    for proto in PROTOCOLS {
        let get = |path: &str| ask_get(proxy.addr(), proto, "site.test", path);
        let cases = [
            // (request path, backend, path the backend sees)
            ("/", app, "/"),
            ("/api", api, "/"),
            ("/api/", api, "/"),
            ("/api/users?x=1", api, "/users?x=1"),
            ("/v1/things", api, "/v2/things"),
            ("/v1", api, "/v2"),
            ("/users/42", api, "/users/42"),
            ("/admin/panel", app, "/admin/panel"),
            ("/static/a.css", app, "/static/a.css"),
        ];
        for (path, pid, seen) in cases {
            let reply = get(path);
            assert_eq!(reply.echoed_path(), seen, "{proto:?} {path}");
            assert_eq!(reply.echo_pid(), Some(pid), "{proto:?} {path}");
        }
        // Whole segments only, and a regex matches the whole path.
        assert_error(&get("/apix"), "NO_ROUTE", 404);
        assert_error(&get("/users/42/edit"), "NO_ROUTE", 404);
        assert_error(&get("/users/abc"), "NO_ROUTE", 404);
        assert_error(&get("/robots.txt/x"), "NO_ROUTE", 404);
    }
}

#[test]
fn strip_prefix_tells_the_backend_what_it_took() {
    let proxy = site();
    for proto in PROTOCOLS {
        let reply = ask_get(proxy.addr(), proto, "site.test", "/api/users");
        assert_eq!(reply.echoed_path(), "/users");
        let host = reply.echoed_header("host");
        assert_eq!(host.as_deref(), Some("site.test"), "{proto:?}: Host kept");
    }
}

#[test]
fn methods_and_headers_narrow_a_route_and_405_names_what_is_allowed() {
    let proxy = site();
    let api = pid_of(&proxy, "api.internal");
    for proto in PROTOCOLS {
        let ask = |method: &str, path: &str, headers: &[(&str, &str)]| {
            ask(proxy.addr(), proto, method, "site.test", path, headers)
        };
        let refused = ask("DELETE", "/api/x", &[]);
        assert_error(&refused, "METHOD_NOT_ALLOWED", 405);
        assert_eq!(refused.header("allow"), Some("GET, POST"), "{proto:?}");
        let refused = ask("POST", "/admin", &[]);
        assert_error(&refused, "METHOD_NOT_ALLOWED", 405);
        assert_eq!(refused.header("allow"), Some("GET"), "{proto:?}");
        assert_eq!(ask("POST", "/api/x", &[]).echo_pid(), Some(api));

        // Exact value, presence, regex: the route is skipped when the field does not hold.
        assert_eq!(
            ask("GET", "/beta", &[("X-Beta", "1")]).echo_pid(),
            Some(api)
        );
        assert_error(&ask("GET", "/beta", &[("X-Beta", "2")]), "NO_ROUTE", 404);
        assert_error(&ask("GET", "/beta", &[]), "NO_ROUTE", 404);
        assert_eq!(
            ask("GET", "/debug", &[("X-Debug", "")]).echo_pid(),
            Some(api)
        );
        assert_error(&ask("GET", "/debug", &[]), "NO_ROUTE", 404);
        let bot = ask("GET", "/bots", &[("User-Agent", "Mozilla GoogleBot/2.1")]);
        assert_eq!((bot.status, bot.text().as_str()), (403, "no bots"));
        assert_error(
            &ask("GET", "/bots", &[("User-Agent", "curl")]),
            "NO_ROUTE",
            404,
        );
    }
}

#[test]
fn redirects_and_fixed_answers_never_wake_a_backend() {
    let proxy = site();
    for proto in PROTOCOLS {
        let robots = ask_get(proxy.addr(), proto, "site.test", "/robots.txt");
        assert_eq!(robots.status, 200, "{proto:?}");
        assert_eq!(robots.text(), "User-agent: *\nDisallow: /admin\n");
        assert_eq!(
            robots.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(robots.header("x-request-id").is_some(), "{proto:?}");

        let gone = ask_get(proxy.addr(), proto, "site.test", "/gone?a=1");
        assert_eq!(
            (gone.status, gone.text().as_str()),
            (410, "nothing at /gone?a=1")
        );
        assert_eq!(gone.header("content-type"), Some("text/html"));

        let head = ask(proxy.addr(), proto, "HEAD", "site.test", "/robots.txt", &[]);
        assert_eq!(head.status, 200, "{proto:?}");
        assert!(head.body.is_empty(), "{proto:?}: HEAD has no body");

        let moved = ask_get(proxy.addr(), proto, "www.site.test", "/old?q=1&r=2");
        assert_eq!(moved.status, 301, "{proto:?}");
        assert_eq!(
            moved.header("location"),
            Some("https://www.site.test/new?q=1&r=2")
        );
        let moved = ask_get(proxy.addr(), proto, "site.test", "/old");
        assert_eq!(moved.header("location"), Some("https://site.test/new"));
    }
    for backend in ["app.internal", "api.internal"] {
        assert_eq!(proxy.state_of(backend), "stopped", "{backend} was woken");
    }
}

#[test]
fn one_normalised_path_is_matched_and_forwarded() {
    let proxy = site();
    let (app, api) = site_pids(&proxy);
    for proto in PROTOCOLS {
        let get = |path: &str| ask_get(proxy.addr(), proto, "site.test", path);
        // Dot-segments and empty segments resolve before matching, and that path is what is sent.
        let reply = get("/static/../api/x/./y");
        assert_eq!(
            (reply.echo_pid(), reply.echoed_path()),
            (Some(api), "/x/y".into())
        );
        let reply = get("//admin//panel");
        assert_eq!(
            (reply.echo_pid(), reply.echoed_path()),
            (Some(app), "/admin/panel".into())
        );
        let reply = get("/%61dmin");
        assert_eq!(reply.echoed_path(), "/admin", "{proto:?}");
        // Spellings with two readings are refused rather than guessed.
        for path in [
            "/static/..%2Fadmin",
            "/static/%2e%2e/admin",
            "/a%5Cb",
            "/bad%zz",
        ] {
            assert_error(&get(path), "BAD_REQUEST", 400);
        }
    }
    // A raw backslash cannot be sent over h2 (the client refuses it), so HTTP/1 alone.
    let reply = ask_get(
        proxy.addr(),
        Proto::Http1,
        "site.test",
        "/static\\..\\admin",
    );
    assert_error(&reply, "BAD_REQUEST", 400);
}

#[test]
fn a_host_may_allow_encoded_slashes_and_plain_backends_forward_as_sent() {
    let proxy = site();
    for proto in PROTOCOLS {
        let reply = ask_get(proxy.addr(), proto, "files.test", "/a%2fb/../c%2Fd");
        assert_eq!(reply.echoed_path(), "/c%2Fd", "{proto:?}: kept encoded");
        let reply = ask_get(proxy.addr(), proto, "app.internal", "/x/../%2e%2e/y");
        assert_eq!(
            reply.echoed_path(),
            "/x/../%2e%2e/y",
            "{proto:?}: a [backends] host forwards the target as today"
        );
    }
}

#[test]
fn aliases_and_one_wildcard_label_share_the_table() {
    let proxy = site();
    let api = pid_of(&proxy, "api.internal");
    for proto in PROTOCOLS {
        for host in ["www.site.test", "blog.sites.test", "SITE.test."] {
            let reply = ask_get(proxy.addr(), proto, host, "/api/x");
            assert_eq!(reply.echo_pid(), Some(api), "{proto:?} {host}");
        }
        for host in ["a.b.sites.test", "sites.test"] {
            let reply = ask_get(proxy.addr(), proto, host, "/api/x");
            assert_error(&reply, "UNKNOWN_HOST", 404);
        }
    }
}

#[test]
fn admin_shows_the_tables_and_explains_a_request() {
    let proxy = site();
    let hosts = proxy.admin_get("/hosts");
    assert_eq!(hosts.status, 200, "{}", hosts.text());
    let json = hosts.json();
    let site = &json["hosts"][0];
    assert_eq!(site["name"], "site.test");
    assert_eq!(site["aliases"][1], "*.sites.test");
    assert_eq!(site["routes"][3]["path"], "under /api");
    assert_eq!(site["routes"][3]["action"], "to api.internal");
    let catch_all: Vec<_> = json["catch_all"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|h| h["host"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(catch_all, ["api.internal", "app.internal"]);

    let explained =
        proxy.admin_get("/routes/explain?host=www.site.test&method=delete&path=/api/../api/x");
    assert_eq!(explained.status, 200, "{}", explained.text());
    let json = explained.json();
    assert_eq!(json["host"], "site.test");
    assert_eq!(json["path"], "/api/x");
    let routes = json["routes"].as_array().expect("routes");
    assert_eq!(routes.len(), 12, "every route was tried: {json}");
    assert_eq!(routes[3]["why_not"], "method is not one of GET, POST");
    let config = std::fs::read_to_string(proxy.config_path()).expect("the config");
    let api_line = config
        .lines()
        .position(|l| l == "path_prefix = \"/api\"")
        .expect("the /api route");
    assert_eq!(
        routes[3]["line"], api_line,
        "the line of its [[routes]] header"
    );
    assert!(
        json["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("405 METHOD_NOT_ALLOWED")),
        "{json}"
    );
    let explained = proxy.admin_get("/routes/explain?host=site.test&path=/debug&header=X-Debug:1");
    let json = explained.json();
    assert_eq!(
        json["outcome"], "forward to api.internal as /debug",
        "{json}"
    );
    let missing = proxy.admin_get("/routes/explain?path=/");
    assert_eq!(missing.status, 400);
}

#[test]
fn address_hosts_have_tables_too() {
    let proxy = Proxy::start(&format!(
        "{}\n[[hosts.\"127.0.0.1\".routes]]\npath = \"/ping\"\nrespond = {{ body = \"pong from {{host}}\" }}\n\
         [[hosts.\"[::1]\".routes]]\nrespond = {{ status = 204 }}\n",
        echo_backend("app.internal", free_port(), "", &[])
    ));
    for proto in PROTOCOLS {
        let port = proxy.addr().port();
        let reply = ask_get(proxy.addr(), proto, &format!("127.0.0.1:{port}"), "/ping");
        assert_eq!(reply.text(), "pong from 127.0.0.1", "{proto:?}");
        let reply = ask_get(proxy.addr(), proto, "[::1]", "/anything");
        assert_eq!(reply.status, 204, "{proto:?}");
        assert_error(
            &ask_get(proxy.addr(), proto, "127.0.0.1", "/other"),
            "NO_ROUTE",
            404,
        );
    }
}
