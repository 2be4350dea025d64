//! What a route does to what it forwards and answers, against the real binary over HTTP/1.1 and h2c:
//! header edits (host-wide, then the route's; templates), a rewrite over regex captures, captures in
//! redirects and fixed answers, and each route's own limits (response timeout, body size, hold time).

mod support;

use std::time::{Duration, Instant};

use support::routing::{ask, ask_get, Proto, PROTOCOLS};
use support::*;

const EDITS: &str = r#"
[hosts."site.test"]
request_headers = { set = { "X-Edge" = "spawngate" }, remove = ["X-Debug"] }
response_headers = { set = { "X-Frame-Options" = "DENY" }, remove = ["X-Echo-Pid"] }

[[hosts."site.test".routes]]
path_prefix = "/api"
to = "app.internal"
request_headers = { set = { "X-Edge" = "api" }, add = { "X-Seen" = ["{host} {request_id}", "from {client_ip}"] } }
response_headers = { add = { "X-Served-By" = "{instance}", "X-Client" = "{client_ip}" } }

[[hosts."site.test".routes]]
path_regex = "/orders/(?P<id>[0-9]+)/(item|line)/([0-9]+)"
to = "app.internal"
rewrite = "/v2/orders/{id}/{3}"

[[hosts."site.test".routes]]
path_regex = "/u/(?P<name>[a-z]+)"
redirect = { location = "/users/{name}{query}", status = 302 }

[[hosts."site.test".routes]]
path_regex = "/hello/([a-z]+)"
respond = { body = "hello {1} at {host}", content_type = "text/plain" }
response_headers = { set = { "X-Answer" = "{request_id}", "X-Client" = "{client_ip}" } }

[[hosts."site.test".routes]]
path = "/typed"
respond = { body = "x" }
response_headers = { set = { "Content-Type" = "text/x-custom" } }

[[hosts."site.test".routes]]
to = "app.internal"
"#;

fn proxy(extra_backend_keys: &str, env: &[(&str, &str)], hosts: &str) -> Proxy {
    let backend = echo_backend("app.internal", free_port(), extra_backend_keys, env);
    Proxy::start(&format!("{backend}\n{hosts}"))
}

#[test]
fn host_and_route_header_edits_apply_in_order_in_both_protocols() {
    let proxy = proxy("", &[], EDITS);
    for proto in PROTOCOLS {
        let headers = [("X-Debug", "1"), ("X-Request-ID", "req-42")];
        let api = ask(proxy.addr(), proto, "GET", "site.test", "/api/x", &headers);
        assert_eq!(api.status, 200, "{proto:?}: {}", api.text());
        // The route's set replaces the host's; the host's remove still holds.
        assert_eq!(api.echoed_header("x-edge").as_deref(), Some("api"));
        assert_eq!(api.echoed_header("x-debug"), None, "{proto:?}");
        let seen: Vec<String> = api.json()["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .filter(|p| {
                p[0].as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case("x-seen"))
            })
            .map(|p| p[1].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(seen, ["site.test req-42", "from 127.0.0.1"], "{proto:?}");
        // Response edits: the host's and the route's; the backend's field removed.
        assert_eq!(api.header("x-frame-options"), Some("DENY"), "{proto:?}");
        assert_eq!(api.header("x-served-by"), Some("app.internal"), "{proto:?}");
        assert_eq!(api.header("x-client"), Some("127.0.0.1"), "{proto:?}");
        assert_eq!(api.header("x-echo-pid"), None, "{proto:?}");
        assert_eq!(api.header("x-request-id"), Some("req-42"), "{proto:?}");

        // Another route of the host: only the host's edits.
        let other = ask(proxy.addr(), proto, "GET", "site.test", "/", &headers);
        assert_eq!(other.echoed_header("x-edge").as_deref(), Some("spawngate"));
        assert_eq!(other.header("x-served-by"), None);
        assert_eq!(other.header("x-frame-options"), Some("DENY"));
    }
}

#[test]
fn captures_feed_rewrites_redirects_and_fixed_answers() {
    let proxy = proxy("", &[], EDITS);
    for proto in PROTOCOLS {
        let get = |path: &str| ask_get(proxy.addr(), proto, "site.test", path);
        let rewritten = get("/orders/17/line/3?full=1");
        assert_eq!(
            rewritten.echoed_path(),
            "/v2/orders/17/3?full=1",
            "{proto:?}"
        );

        let moved = get("/u/ada?tab=2");
        assert_eq!(moved.status, 302, "{proto:?}");
        assert_eq!(moved.header("location"), Some("/users/ada?tab=2"));
        // Response edits of the host apply to the route's own answers too.
        assert_eq!(moved.header("x-frame-options"), Some("DENY"), "{proto:?}");

        let hello = ask(
            proxy.addr(),
            proto,
            "GET",
            "site.test",
            "/hello/world",
            &[("X-Request-ID", "abc")],
        );
        assert_eq!(hello.text(), "hello world at site.test", "{proto:?}");
        assert_eq!(hello.header("x-answer"), Some("abc"), "{proto:?}");
        assert_eq!(hello.header("x-client"), Some("127.0.0.1"), "{proto:?}");
        assert_eq!(hello.header("content-type"), Some("text/plain"));

        // An edit of a field the answer writes itself replaces it: one Content-Type, the edit's.
        let typed = ask_get(proxy.addr(), proto, "site.test", "/typed");
        let types: Vec<&str> = typed
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(types, ["text/x-custom"], "{proto:?}");
    }
    assert_eq!(
        proxy.state_of("app.internal"),
        "ready",
        "the forwarded requests started it"
    );
}

#[test]
fn a_route_answers_504_after_its_own_request_timeout() {
    let hosts = r#"
[[hosts."site.test".routes]]
path_prefix = "/quick"
to = "app.internal"
strip_prefix = true
request_timeout_secs = 1

[[hosts."site.test".routes]]
to = "app.internal"
"#;
    let proxy = proxy("request_timeout_secs = 30", &[], hosts);
    for proto in PROTOCOLS {
        let started = Instant::now();
        let reply = ask_get(proxy.addr(), proto, "site.test", "/quick/slow?ms=5000");
        assert_eq!(
            (reply.status, reply.header("x-proxy-error")),
            (504, Some("REQUEST_TIMEOUT")),
            "{proto:?}: {}",
            reply.text()
        );
        assert!(started.elapsed() < Duration::from_secs(4), "{proto:?}");
        // The backend's own 30 s holds elsewhere.
        let slow = ask_get(proxy.addr(), proto, "site.test", "/slow?ms=1500");
        assert_eq!(slow.status, 200, "{proto:?}");
    }
}

#[test]
fn a_route_has_its_own_body_limit() {
    let hosts = r#"
[[hosts."site.test".routes]]
path_prefix = "/upload"
to = "app.internal"
max_request_body_bytes = 100000

[[hosts."site.test".routes]]
to = "app.internal"
"#;
    let keys = "";
    let proxy = Proxy::start(&format!(
        "{}\n{hosts}",
        echo_backend("app.internal", free_port(), keys, &[])
    ));
    let big = vec![b'x'; 50_000];
    let huge = vec![b'x'; 150_000];
    // The server-wide limit is the default 1 GiB: 50 kB passes everywhere, 150 kB only outside /upload.
    let mut client = Client::connect(proxy.addr());
    let ok = client.request("POST", "site.test", "/upload", &[], &big);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let mut client = Client::connect(proxy.addr());
    let refused = client.request("POST", "site.test", "/upload", &[], &huge);
    assert_proxy_error(&refused, "PAYLOAD_TOO_LARGE", 413);
    let mut client = Client::connect(proxy.addr());
    let elsewhere = client.request("POST", "site.test", "/other", &[], &huge);
    assert_eq!(elsewhere.status, 200);
    // Chunked: counted as it streams.
    let mut client = Client::connect(proxy.addr());
    let chunk = format!(
        "{:x}\r\n{}\r\n0\r\n\r\n",
        huge.len(),
        "x".repeat(huge.len())
    );
    let chunked = client.request(
        "POST",
        "site.test",
        "/upload",
        &["Transfer-Encoding: chunked"],
        chunk.as_bytes(),
    );
    assert_eq!(chunked.status, 413, "{}", chunked.text());

    // Over h2c the declared length is refused before any of the body is sent.
    let h2 = block_on(async {
        let (client, _driver) = h2_connect(proxy.addr()).await;
        let mut client = client.ready().await.expect("ready");
        let request = http::Request::post("http://site.test/upload")
            .header("content-length", "150000")
            .body(())
            .expect("request");
        let (response, _body) = client.send_request(request, false).expect("send");
        let response = tokio::time::timeout(H2_STEP_DEADLINE, response).await;
        h2_read_response(response.expect("in time").expect("a response")).await
    });
    match h2 {
        Ok(response) => assert_h2_proxy_error(&response, "PAYLOAD_TOO_LARGE", 413),
        Err(e) => panic!("h2c upload: {e}"),
    }
}

#[test]
fn a_route_holds_requests_only_for_its_own_hold_timeout() {
    let hosts = r#"
[[hosts."site.test".routes]]
path_prefix = "/impatient"
to = "app.internal"
hold_timeout_secs = 1

[[hosts."site.test".routes]]
to = "app.internal"
"#;
    let proxy = proxy("", &[("ECHO_START_DELAY_MS", "4000")], hosts);
    for proto in [Proto::Http1, Proto::H2c] {
        let started = Instant::now();
        let reply = ask_get(proxy.addr(), proto, "site.test", "/impatient");
        let waited = started.elapsed();
        assert_eq!(reply.status, 503, "{proto:?}: {}", reply.text());
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
            "{proto:?}: held {waited:?}"
        );
    }
    // The patient route waits the start out.
    let reply = ask_get(proxy.addr(), Proto::Http1, "site.test", "/patient");
    assert_eq!(reply.status, 200, "{}", reply.text());
}
