//! Route edits: `PathEdit::edit_path`, the writer's target override and `X-Forwarded-Prefix`, templated
//! header edits, their merging, and response edits on both response forms.

use http::header::{HeaderMap, HeaderValue};

use super::*;
use crate::http1::request::parse_request;
use crate::http1::response::parse_response;
use crate::upstream::route_match::Pattern;

fn prefix(path: &str) -> PathPrefix {
    PathPrefix::new(path).unwrap()
}

fn edited(edit: &PathEdit, path: &str) -> String {
    let mut out = Vec::new();
    edit.edit_path(path.as_bytes(), None, &mut out);
    String::from_utf8(out).unwrap()
}

fn rewrite(template: &str, regex: &str) -> (PathEdit, Pattern) {
    let pattern = Pattern::new(regex).unwrap();
    let template = Template::parse_as(template, Form::Path, &pattern.capture_names()).unwrap();
    (PathEdit::Rewrite(template), pattern)
}

#[test]
fn edit_path_for_each_edit() {
    assert_eq!(edited(&PathEdit::Keep, "/a/b"), "/a/b");
    assert_eq!(edited(&PathEdit::Keep, "/"), "/");
    let strip = PathEdit::StripPrefix(prefix("/api"));
    for (path, want) in [
        ("/api", "/"),
        ("/api/", "/"),
        ("/api/x/y", "/x/y"),
        ("/apix", "/apix"),
        ("/", "/"),
    ] {
        assert_eq!(edited(&strip, path), want, "{path}");
    }
    let root = PathEdit::StripPrefix(prefix("/"));
    assert_eq!(edited(&root, "/"), "/");
    assert_eq!(edited(&root, "/x"), "/x");
    let replace = PathEdit::ReplacePrefix {
        prefix: prefix("/api"),
        with: prefix("/v2/"),
    };
    assert_eq!(edited(&replace, "/api"), "/v2/");
    assert_eq!(edited(&replace, "/api/x"), "/v2/x");
    assert_eq!(edited(&replace, "/other"), "/other");
    let to_root = PathEdit::ReplacePrefix {
        prefix: prefix("/api"),
        with: prefix("/"),
    };
    assert_eq!(edited(&to_root, "/api"), "/");
    assert_eq!(edited(&to_root, "/api/x"), "/x");
    let from_root = PathEdit::ReplacePrefix {
        prefix: prefix("/"),
        with: prefix("/base"),
    };
    assert_eq!(edited(&from_root, "/"), "/base");
    assert_eq!(edited(&from_root, "/x"), "/base/x");
}

#[test]
fn edit_path_rewrites_from_captures() {
    let (edit, pattern) = rewrite("/orders/{id}{rest}", "/o/(?P<id>[0-9]+)(?P<rest>/.*)?");
    let caps = pattern.captures("/o/42/items").unwrap();
    let mut out = Vec::new();
    edit.edit_path(b"/o/42/items", Some(&caps), &mut out);
    assert_eq!(out, b"/orders/42/items");
    let caps = pattern.captures("/o/7").unwrap();
    out.clear();
    edit.edit_path(b"/o/7", Some(&caps), &mut out);
    assert_eq!(out, b"/orders/7");
    // A capture that starts the path cannot make it `//host`-like.
    let (edit, pattern) = rewrite("/{1}", "/x(/.*)");
    let caps = pattern.captures("/x/y").unwrap();
    out.clear();
    edit.edit_path(b"/x/y", Some(&caps), &mut out);
    assert_eq!(out, b"/y");
    let (edit, _) = rewrite("/p{path}", "/.*");
    assert_eq!(edited(&edit, "/q"), "/p/q");
}

fn forward(text: &str, plan: &ForwardPlan, target: Option<&[u8]>) -> String {
    let head = parse_request(text.as_bytes()).unwrap().unwrap();
    let info = ForwardInfo {
        client_ip: ClientIp::Text("10.0.0.1"),
        request_id: b"rid-1",
        target,
        session: None,
        proto: Proto::Http,
    };
    let mut out = Vec::new();
    write_request(text.as_bytes(), &head, plan, &info, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn a_target_override_is_written_exactly_and_not_edited_again() {
    let plan = ForwardPlan {
        path: PathEdit::StripPrefix(prefix("/api")),
        ..ForwardPlan::default()
    };
    let text = "GET /api/./x/../y?q=1 HTTP/1.1\r\nHost: a.test:8080\r\n\r\n";
    let out = forward(text, &plan, Some(b"/y?q=1"));
    assert_eq!(
        out,
        "GET /y?q=1 HTTP/1.1\r\nHost: a.test:8080\r\nX-Forwarded-For: 10.0.0.1\r\n\
         X-Forwarded-Host: a.test:8080\r\nX-Forwarded-Prefix: /api\r\nX-Forwarded-Proto: http\r\n\
         X-Request-ID: rid-1\r\n\r\n"
    );
    let keep = forward(text, &ForwardPlan::default(), Some(b"/api/y?q=1"));
    assert!(keep.starts_with("GET /api/y?q=1 HTTP/1.1\r\n"), "{keep}");
    assert!(!keep.contains("Prefix"), "{keep}");
    // A rewrite applies only through a target: without one the client's target goes unchanged.
    let (edit, _) = rewrite("/z", "/.*");
    let plan = ForwardPlan {
        path: edit,
        ..ForwardPlan::default()
    };
    assert!(forward(text, &plan, None).starts_with("GET /api/./x/../y?q=1 HTTP/1.1"));
    assert!(forward(text, &plan, Some(b"/z?q=1")).starts_with("GET /z?q=1 HTTP/1.1"));
}

#[test]
fn x_forwarded_prefix_is_the_proxys_own() {
    let strip = ForwardPlan {
        path: PathEdit::StripPrefix(prefix("/api")),
        ..ForwardPlan::default()
    };
    let text = "GET /api/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-Prefix: /evil\r\nx-forwarded-prefix: /e\r\n\r\n";
    let out = forward(text, &strip, None);
    assert!(out.starts_with("GET /x HTTP/1.1\r\n"), "{out}");
    assert_eq!(out.matches("X-Forwarded-Prefix").count(), 1, "{out}");
    assert!(out.contains("\r\nX-Forwarded-Prefix: /api\r\n"), "{out}");
    assert!(!out.contains("evil") && !out.contains("/e\r"), "{out}");
    // The prefix did not match: nothing was stripped, so no prefix is claimed.
    let other = forward("GET /apix HTTP/1.1\r\nHost: a\r\n\r\n", &strip, None);
    assert!(!other.contains("Prefix"), "{other}");
    // No strip: the client's is still dropped; a root prefix strips nothing and is not named.
    let plain = forward(text, &ForwardPlan::default(), None);
    assert!(
        !plain.to_ascii_lowercase().contains("x-forwarded-prefix"),
        "{plain}"
    );
    let root = ForwardPlan {
        path: PathEdit::StripPrefix(prefix("/")),
        ..ForwardPlan::default()
    };
    assert!(!forward(text, &root, Some(b"/api/x")).contains("Prefix"));
}

#[test]
fn request_edits_render_their_templates() {
    let plan = ForwardPlan {
        set_headers: vec![FieldEdit::new("X-Client", "{client_ip} via {host}").unwrap()],
        add_headers: vec![FieldEdit::new("X-Id", "id={request_id} {{x}}").unwrap()],
        ..ForwardPlan::default()
    };
    let text = "GET / HTTP/1.1\r\nHost: App.Test:8080\r\nX-Client: forged\r\n\r\n";
    let out = forward(text, &plan, None);
    assert!(
        out.contains(
            "\r\nX-Client: 10.0.0.1 via app.test\r\nX-Id: id=rid-1 {x}\r\nX-Forwarded-For"
        ),
        "{out}"
    );
    assert!(!out.contains("forged"), "{out}");
    let v6 = "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n";
    assert!(forward(v6, &plan, None).contains("via [::1]\r\n"));
    let head = parse_request(v6.as_bytes()).unwrap().unwrap();
    let info = ForwardInfo {
        client_ip: ClientIp::Addr("::ffff:192.0.2.7".parse().unwrap()),
        request_id: b"r",
        target: None,
        session: None,
        proto: Proto::Http,
    };
    let mut out = Vec::new();
    write_request(v6.as_bytes(), &head, &plan, &info, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("X-Client: 192.0.2.7 via [::1]\r\n"), "{out}");
}

#[test]
fn edit_names_cannot_be_the_proxys_own_and_values_are_checked() {
    for name in [
        "Trailer",
        "X-Forwarded-Prefix",
        "x-forwarded-port",
        "X-Spawngate-Anything",
        "X-Request-ID",
    ] {
        assert!(EditableName::new(name).is_err(), "{name}");
        assert!(FieldEdit::response(name, "v").is_err(), "{name}");
    }
    assert!(EditableName::new("X-Forwarded").is_ok());
    let unknown = FieldEdit::new("X-A", "{instance}").unwrap_err();
    assert!(
        unknown
            .to_string()
            .contains("`{instance}` cannot be used here"),
        "{unknown}"
    );
    assert!(FieldEdit::response("X-A", "{instance}").is_ok());
    assert!(FieldEdit::new("X-A", "a\r\nb").is_err());
}

fn edits(set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]) -> HeaderEdits {
    let field = |(n, v): &(&str, &str)| FieldEdit::response(n, v).unwrap();
    HeaderEdits {
        set: set.iter().map(field).collect(),
        add: add.iter().map(field).collect(),
        remove: remove
            .iter()
            .map(|n| EditableName::new(n).unwrap())
            .collect(),
    }
}

#[test]
fn host_edits_then_route_edits_merge_in_order() {
    let host = edits(
        &[("X-Edge", "host"), ("X-Both", "host")],
        &[("X-Add", "host"), ("X-Gone", "host")],
        &["Server"],
    );
    let route = edits(&[("x-both", "route")], &[("X-Add", "route")], &["X-GONE"]);
    let merged = host.then(&route);
    let names = |list: &[FieldEdit]| -> Vec<String> {
        list.iter()
            .map(|e| format!("{}={}", e.name(), e.value().as_str()))
            .collect()
    };
    assert_eq!(names(&merged.set), ["X-Edge=host", "x-both=route"]);
    assert_eq!(names(&merged.add), ["X-Add=host", "X-Add=route"]);
    let removed: Vec<&str> = merged.remove.iter().map(EditableName::as_str).collect();
    assert_eq!(removed, ["Server", "X-GONE"]);
    assert_eq!(HeaderEdits::default().then(&route), route);
    assert!(HeaderEdits::NONE.is_empty() && !merged.is_empty());
}

fn response_vars() -> Vars<'static> {
    Vars {
        request_id: b"rid-1",
        instance: b"api/0",
        host: b"a.test",
        ..Vars::default()
    }
}

fn http1_response(text: &str, edits: &ResponseEdits) -> String {
    let head = parse_response(text.as_bytes(), false).unwrap().unwrap();
    let mut out = Vec::new();
    let vars = response_vars();
    write_response(
        text.as_bytes(),
        &head,
        Version::Http11,
        false.into(),
        edits,
        &vars,
        &mut out,
    );
    String::from_utf8(out).unwrap()
}

#[test]
fn response_edits_on_an_http1_head() {
    let edits = edits(
        &[("Cache-Control", "no-store")],
        &[("X-Served-By", "{instance} for {host}")],
        &["server", "X-Powered-By"],
    );
    let text =
        "HTTP/1.1 200 OK\r\nServer: app\r\nCache-Control: max-age=60\r\nX-Powered-By: php\r\n\
                Content-Length: 2\r\nX-Kept: 1\r\n\r\n";
    assert_eq!(
        http1_response(text, &edits),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kept: 1\r\nCache-Control: no-store\r\n\
         X-Served-By: api/0 for a.test\r\nX-Request-ID: rid-1\r\n\r\n"
    );
    // Interim heads are relayed unedited.
    let interim = "HTTP/1.1 103 Early Hints\r\nServer: app\r\nLink: </a>\r\n\r\n";
    assert_eq!(
        http1_response(interim, &edits),
        "HTTP/1.1 103 Early Hints\r\nServer: app\r\nLink: </a>\r\n\r\n"
    );
    // No edits: exactly today's head.
    assert_eq!(
        http1_response(text, &ResponseEdits::NONE),
        "HTTP/1.1 200 OK\r\nServer: app\r\nCache-Control: max-age=60\r\nX-Powered-By: php\r\n\
         Content-Length: 2\r\nX-Kept: 1\r\nX-Request-ID: rid-1\r\n\r\n"
    );
}

#[test]
fn response_edits_on_an_http2_header_map() {
    let edits = edits(
        &[("Cache-Control", "no-store")],
        &[("X-Served-By", "{instance}"), ("x-kept", "2")],
        &["server"],
    );
    let mut map = HeaderMap::new();
    map.append("server", HeaderValue::from_static("app"));
    map.append("cache-control", HeaderValue::from_static("max-age=60"));
    map.append("cache-control", HeaderValue::from_static("private"));
    map.append("x-kept", HeaderValue::from_static("1"));
    map.append("content-length", HeaderValue::from_static("2"));
    apply_to_header_map(&edits, &mut map, &response_vars());
    let all = |name: &str| -> Vec<&str> {
        map.get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    };
    assert!(all("server").is_empty());
    assert_eq!(all("cache-control"), ["no-store"]);
    assert_eq!(all("x-served-by"), ["api/0"]);
    assert_eq!(all("x-kept"), ["1", "2"]);
    assert_eq!(all("content-length"), ["2"]);
    let before = map.clone();
    apply_to_header_map(&ResponseEdits::NONE, &mut map, &response_vars());
    assert_eq!(map, before);
}
