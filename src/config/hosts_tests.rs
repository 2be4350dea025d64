use toml::de::DeTable;

use super::*;
use crate::config::routes::{LocalRoute, RouteAction};
use crate::http1::rewrite::PathEdit;
use crate::upstream::route_match::PathCond;

/// Reads the `[hosts]` of `text` with `app` and `api` as the known backends: the hosts, or every
/// problem as `file:line: key: message`.
pub(super) fn read(text: &str) -> Result<Vec<HostConfig>, Vec<String>> {
    let mut ctx = Ctx::new("t.toml".into(), text);
    let (document, syntax) = DeTable::parse_recoverable(text);
    assert!(syntax.is_empty(), "{syntax:?}");
    let mut root = Section::new(String::new(), document.span(), document.get_ref());
    let hosts = root.take("hosts").and_then(|item| item.section(&mut ctx));
    let out = read_all(hosts, &["app", "api"], &[], &mut ctx);
    if ctx.errors.is_empty() {
        Ok(out)
    } else {
        Err(ctx.errors.iter().map(ToString::to_string).collect())
    }
}

pub(super) fn problems(text: &str) -> Vec<String> {
    match read(text) {
        Ok(hosts) => panic!("accepted: {hosts:?}"),
        Err(problems) => problems,
    }
}

#[test]
fn a_host_with_its_names_and_routes_in_order() {
    let hosts = read(
        r#"
[hosts."Example.COM"]
aliases = ["www.example.com", "*.example.net"]

[[hosts."Example.COM".routes]]
path = "/robots.txt"
respond = { body = "User-agent: *\nDisallow:\n" }

[[hosts."Example.COM".routes]]
path_prefix = "/api/"
methods = ["GET", "POST"]
headers = [{ name = "X-Api-Version", value = "2" }, { name = "X-Debug", present = false }]
to = "api"
strip_prefix = true

[[hosts."Example.COM".routes]]
path = "/old"
redirect = { location = "https://{host}/new{query}", status = 301 }

[[hosts."Example.COM".routes]]
to = "app"
"#,
    )
    .expect("valid");
    let [host] = hosts.as_slice() else {
        panic!("{hosts:?}")
    };
    assert_eq!(host.name, "example.com");
    assert_eq!(host.aliases, ["www.example.com", "*.example.net"]);
    assert!(!host.allow_encoded_slashes);
    assert_eq!(host.routes.len(), 4);
    assert_eq!(host.routes[0].line, 5);
    let RouteAction::Answer(LocalRoute::Respond {
        status: 200,
        body,
        content_type,
        ..
    }) = &host.routes[0].action
    else {
        panic!("{:?}", host.routes[0].action)
    };
    assert_eq!(body.as_str(), "User-agent: *\nDisallow:\n");
    assert_eq!(content_type, "text/plain; charset=utf-8");
    let api = &host.routes[1];
    assert!(
        matches!(&api.conditions.path, PathCond::Prefix(p) if p == "/api"),
        "{api:?}"
    );
    assert_eq!(api.conditions.headers.len(), 2);
    let RouteAction::To { target, plan } = &api.action else {
        panic!("{:?}", api.action)
    };
    assert_eq!(target, "api");
    assert!(matches!(&plan.path, PathEdit::StripPrefix(p) if p.as_str() == "/api"));
    assert!(matches!(
        &host.routes[2].action,
        RouteAction::Answer(LocalRoute::Redirect { status: 301, .. })
    ));
    assert!(matches!(host.routes[3].conditions.path, PathCond::Any));
}

#[test]
fn a_shadowed_route_names_the_route_that_shadows_it() {
    let found = problems(
        r#"
[hosts."a.test"]
[[hosts."a.test".routes]]
path_prefix = "/api"
to = "api"
[[hosts."a.test".routes]]
path = "/api/health"
respond = { body = "ok" }
"#,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("t.toml:6: hosts.\"a.test\".routes[1]: can never match"),
        "{found:?}"
    );
    assert!(found[0].contains("line 3"), "{found:?}");
}

#[test]
fn every_mistake_is_named_with_its_line_and_key() {
    let found = problems(
        r#"
[hosts."a.test"]
aliases = ["b.test", "a.test"]
[[hosts."a.test".routes]]
path = "api"
to = "nowhere"
[[hosts."a.test".routes]]
path_prefix = "/x"
path_regex = "/y"
methods = ["get"]
respond = { status = 700 }
[[hosts."a.test".routes]]
path = "/a/../b"
to = "app"
redirect = { location = "/z" }
[[hosts."a.test".routes]]
path = "/s"
to = "app"
strip_prefix = true
[[hosts."a.test".routes]]
path_regex = "(unclosed"
headers = [{ name = "X", value = "1", present = true }]
respond = { body = "x" }
[hosts."*.[::1]"]
"#,
    );
    let expect = [
        "t.toml:3: hosts.\"a.test\".aliases: \"a.test\" is already a name",
        "t.toml:5: hosts.\"a.test\".routes[0].path: must be an absolute path",
        "t.toml:9: hosts.\"a.test\".routes[1].path_regex: a route has at most one",
        "t.toml:10: hosts.\"a.test\".routes[1].methods: must be a non-empty list of upper-case",
        "t.toml:11: hosts.\"a.test\".routes[1].respond.status: must be",
        "t.toml:13: hosts.\"a.test\".routes[2].path: requests are matched on normalised paths",
        "hosts.\"a.test\".routes[2]: a route needs exactly one of to, redirect and respond",
        "t.toml:19: hosts.\"a.test\".routes[3].strip_prefix: needs a path_prefix",
        "t.toml:21: hosts.\"a.test\".routes[4].path_regex: not a valid regular expression",
        "hosts.\"a.test\".routes[4].headers[0]: needs exactly one of value, regex and present",
        "hosts.\"*.[::1]\": \"*.[::1]\": a wildcard stands for a DNS label",
    ];
    for wanted in expect {
        assert!(
            found.iter().any(|p| p.contains(wanted)),
            "missing {wanted:?} in {found:#?}"
        );
    }
    // `to = "nowhere"` is on a route that already has a problem; it is not checked against backends.
    assert!(found.iter().all(|p| !p.contains("nowhere")), "{found:#?}");
}

#[test]
fn a_to_that_names_no_backend_is_an_error() {
    let found = problems(
        r#"
[hosts."a.test"]
[[hosts."a.test".routes]]
to = "nowhere"
"#,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("routes[0].to: `to = \"nowhere\"` names no backend"),
        "{found:?}"
    );
}

#[test]
fn an_alias_may_not_name_a_backend_but_the_key_may() {
    let paired = read(
        "[hosts.\"app\"]\n[[hosts.\"app\".routes]]\npath = \"/robots.txt\"\nrespond = { body = \"\" }\n\
         [[hosts.\"app\".routes]]\nto = \"app\"\n",
    );
    assert!(paired.is_ok(), "{paired:?}");
    let found = problems(
        r#"
[hosts."a.test"]
aliases = ["b.test", "api"]
[[hosts."a.test".routes]]
to = "app"
"#,
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "t.toml:3: hosts.\"a.test\".aliases: \"api\" is the hostname of [backends.\"api\"]"
        ),
        "{found:?}"
    );
}

#[test]
fn a_host_without_routes_is_an_error() {
    let found = problems("[hosts.\"a.test\"]\nallow_encoded_slashes = true\n");
    assert!(found[0].contains("at least one [[routes]]"), "{found:?}");
}

#[path = "hosts_edits_tests.rs"]
mod edits;

#[test]
fn paths_outside_visible_ascii_are_refused_with_their_encoded_spelling() {
    // Found by the route_lookup fuzz target: a non-ASCII `rewrite_prefix` dropped its route in silence,
    // and a non-ASCII `path` could never match (targets arrive percent-encoded).
    for (key, extra) in [
        (
            "rewrite_prefix",
            "path_prefix = \"/api\"\nrewrite_prefix = \"/\u{e9}\"\n",
        ),
        ("path", "path = \"/\u{e9}\"\n"),
        (
            "path_prefix",
            "path_prefix = \"/\u{e9}\"\nstrip_prefix = true\n",
        ),
    ] {
        let text = format!("[[hosts.\"h.test\".routes]]\n{extra}to = \"app\"\n");
        let problems = problems(&text);
        let expected = format!("routes[0].{key}: '\u{e9}' never appears in a request path");
        assert!(
            problems
                .iter()
                .any(|p| p.contains(&expected) && p.contains("\"/%C3%A9\"")),
            "{key}: {problems:?}"
        );
        assert_eq!(
            problems.len(),
            1,
            "{key}: one problem, at its key: {problems:?}"
        );
    }
}
