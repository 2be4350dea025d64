//! The modifiers of hosts and routes: header edits (host-wide merged into each route), `rewrite`,
//! templates in `redirect` and `respond`, per-route limits, and every mistake with its line and key.

use std::time::Duration;

use super::{problems, read};
use crate::config::hosts::HostConfig;
use crate::config::routes::{LocalRoute, RouteAction, RouteLimits};
use crate::http1::rewrite::{FieldEdit, ForwardPlan, HeaderEdits, PathEdit, Vars};
use crate::upstream::route_match::PathCond;

fn one_host(text: &str) -> HostConfig {
    let mut hosts = read(text).expect("valid");
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    hosts.remove(0)
}

fn listed(edits: &[FieldEdit]) -> Vec<String> {
    edits
        .iter()
        .map(|e| format!("{}={}", e.name(), e.value().as_str()))
        .collect()
}

fn removed(edits: &HeaderEdits) -> Vec<&str> {
    edits.remove.iter().map(|n| n.as_str()).collect()
}

fn plan_of(host: &HostConfig, index: usize) -> &ForwardPlan {
    match &host.routes[index].action {
        RouteAction::To { plan, .. } => plan,
        other => panic!("{other:?}"),
    }
}

#[test]
fn host_edits_come_first_in_every_route() {
    let host = one_host(
        r#"
[hosts."a.test"]
request_headers = { set = { "X-Edge" = "spawngate", "X-Who" = "{client_ip}" }, remove = ["X-Debug"] }
response_headers = { remove = ["Server"], add = { "X-Via" = ["edge", "{instance}"] } }

[[hosts."a.test".routes]]
path_prefix = "/api"
to = "api"
strip_prefix = true
request_headers = { set = { "x-edge" = "api" }, add = { "X-Route" = "api" } }
response_headers = { set = { "Cache-Control" = "no-store" } }
request_timeout_secs = 120
hold_timeout_secs = 40
max_request_body_bytes = 0

[[hosts."a.test".routes]]
path = "/old"
redirect = { location = "https://{host}/new{query}" }
response_headers = { set = { "Strict-Transport-Security" = "max-age=600" } }

[[hosts."a.test".routes]]
to = "app"
max_request_body_bytes = 1024
"#,
    );
    assert_eq!(
        listed(&host.request_headers.set),
        ["X-Edge=spawngate", "X-Who={client_ip}"]
    );
    assert_eq!(removed(&host.response_headers), ["Server"]);
    assert_eq!(
        listed(&host.response_headers.add),
        ["X-Via=edge", "X-Via={instance}"]
    );

    let api = plan_of(&host, 0);
    assert!(matches!(&api.path, PathEdit::StripPrefix(p) if p.as_str() == "/api"));
    assert_eq!(
        listed(&api.set_headers),
        ["X-Who={client_ip}", "x-edge=api"]
    );
    assert_eq!(listed(&api.add_headers), ["X-Route=api"]);
    assert_eq!(
        api.remove_headers
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>(),
        ["X-Debug"]
    );
    assert_eq!(listed(&api.response.set), ["Cache-Control=no-store"]);
    assert_eq!(
        listed(&api.response.add),
        ["X-Via=edge", "X-Via={instance}"]
    );
    assert_eq!(removed(&api.response), ["Server"]);
    assert_eq!(
        host.routes[0].limits,
        RouteLimits {
            request_timeout: Some(Duration::from_secs(120)),
            hold_timeout: Some(Duration::from_secs(40)),
            max_request_body_bytes: Some(u64::MAX),
        }
    );

    let RouteAction::Answer(LocalRoute::Redirect {
        location,
        status: 308,
        response,
    }) = &host.routes[1].action
    else {
        panic!("{:?}", host.routes[1].action)
    };
    assert_eq!(location.as_str(), "https://{host}/new{query}");
    assert_eq!(
        listed(&response.set),
        ["Strict-Transport-Security=max-age=600"]
    );
    assert_eq!(removed(response), ["Server"]);
    assert_eq!(host.routes[1].limits, RouteLimits::default());

    let app = plan_of(&host, 2);
    assert_eq!(
        listed(&app.set_headers),
        ["X-Edge=spawngate", "X-Who={client_ip}"]
    );
    assert_eq!(host.routes[2].limits.max_request_body_bytes, Some(1024));
    assert_eq!(host.routes[2].limits.request_timeout, None);
}

#[test]
fn rewrite_and_templates_use_the_regex_captures() {
    let host = one_host(
        r#"
[hosts."a.test"]
[[hosts."a.test".routes]]
path_regex = "/u/(?P<id>[0-9]+)/(.*)"
to = "api"
rewrite = "/users/{id}/{2}"

[[hosts."a.test".routes]]
path_regex = "/go/(?P<slug>[a-z]+)"
redirect = { location = "/to/{slug}{query}", status = 302 }

[[hosts."a.test".routes]]
path_regex = "/hello/(.+)"
respond = { body = "hello {1} at {host}{path}" }
"#,
    );
    let PathCond::Regex(pattern) = &host.routes[0].conditions.path else {
        panic!("{:?}", host.routes[0].conditions)
    };
    let caps = pattern.captures("/u/42/posts/7").expect("matches");
    let mut out = Vec::new();
    plan_of(&host, 0)
        .path
        .edit_path(b"/u/42/posts/7", Some(&caps), &mut out);
    assert_eq!(out, b"/users/42/posts/7");

    let RouteAction::Answer(LocalRoute::Respond { body, .. }) = &host.routes[2].action else {
        panic!("{:?}", host.routes[2].action)
    };
    let PathCond::Regex(pattern) = &host.routes[2].conditions.path else {
        panic!()
    };
    let caps = pattern.captures("/hello/you").expect("matches");
    let vars = Vars {
        host: b"a.test",
        path: b"/hello/you",
        captures: Some(&caps),
        ..Vars::default()
    };
    let mut out = Vec::new();
    body.render(&vars, &mut out);
    assert_eq!(out, b"hello you at a.test/hello/you");
}

#[test]
fn every_modifier_mistake_is_named_with_its_line_and_key() {
    let found = problems(
        r#"
[hosts."a.test"]
request_headers = { set = { "Host" = "x" } }
response_headers = { remove = ["Content-Length"], add = { "X-A" = "{nope}" } }
[[hosts."a.test".routes]]
path_prefix = "/p"
to = "api"
rewrite = "/x"
[[hosts."a.test".routes]]
path_regex = "/r/(?P<id>[0-9]+)"
to = "api"
rewrite = "/orders/{name}"
[[hosts."a.test".routes]]
path = "/s"
redirect = { location = "/{id}" }
request_headers = { add = { "X-A" = "1" } }
hold_timeout_secs = 5
[[hosts."a.test".routes]]
path = "/t"
to = "app"
request_headers = { set = { "X-Forwarded-Prefix" = "/t", "x-a" = "1", "X-A" = "2" }, remove = ["Transfer-Encoding"] }
response_headers = { add = { "Connection" = "close" } }
request_timeout_secs = 0
max_request_body_bytes = -1
cold_start = "hold"
[[hosts."a.test".routes]]
path_regex = "/w/(.*)"
to = "app"
rewrite = "/{1}"
strip_prefix = true
request_headers = { set = { "X-Instance" = "{instance}" } }
"#,
    );
    let expect = [
        "t.toml:3: hosts.\"a.test\".request_headers.set.Host: `Host` cannot be edited",
        "t.toml:4: hosts.\"a.test\".response_headers.remove[0]: `Content-Length` cannot be edited",
        "t.toml:4: hosts.\"a.test\".response_headers.add.X-A: unknown placeholder `{nope}`",
        "t.toml:8: hosts.\"a.test\".routes[0].rewrite: needs a path_regex condition",
        "t.toml:12: hosts.\"a.test\".routes[1].rewrite: the route's path_regex has no capture `name`",
        "t.toml:15: hosts.\"a.test\".routes[2].redirect.location: `{id}` names a capture, but the route has no path_regex",
        "t.toml:16: hosts.\"a.test\".routes[2].request_headers: applies only to a route with `to`",
        "t.toml:17: hosts.\"a.test\".routes[2].hold_timeout_secs: applies only to a route with `to`",
        "t.toml:21: hosts.\"a.test\".routes[3].request_headers.set.X-Forwarded-Prefix: `X-Forwarded-Prefix` cannot be edited",
        "t.toml:21: hosts.\"a.test\".routes[3].request_headers.set.X-A: is set twice",
        "t.toml:21: hosts.\"a.test\".routes[3].request_headers.remove[0]: `Transfer-Encoding` cannot be edited",
        "t.toml:22: hosts.\"a.test\".routes[3].response_headers.add.Connection: `Connection` cannot be edited",
        "t.toml:23: hosts.\"a.test\".routes[3].request_timeout_secs: must be between 1 and 86400",
        "t.toml:24: hosts.\"a.test\".routes[3].max_request_body_bytes: must not be negative",
        "t.toml:25: hosts.\"a.test\".routes[3].cold_start: unknown key",
        "t.toml:30: hosts.\"a.test\".routes[4].strip_prefix: a route has at most one of strip_prefix, rewrite_prefix and rewrite",
        "t.toml:31: hosts.\"a.test\".routes[4].request_headers.set.X-Instance: `{instance}` cannot be used here",
    ];
    for wanted in expect {
        assert!(
            found.iter().any(|p| p.starts_with(wanted)),
            "missing {wanted:?} in {found:#?}"
        );
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}
