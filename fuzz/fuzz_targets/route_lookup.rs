//! Route lookup over arbitrary tables and requests. The input describes a config (three backends, one
//! or two `[hosts]` tables of routes written from a small alphabet: paths with `.`, `..`, `%2F`, `%2e`,
//! methods, header conditions, `to`/`redirect`/`respond`, `strip_prefix`/`rewrite_prefix`), then
//! requests (host, method, target, a few header fields). A config the parser rejects is skipped. Each
//! request is parsed as the reactor parses it and routed with one scratch reused across requests, as a
//! thread does. Properties:
//! * the host is resolved as a plain model says (exact name or alias, a `[backends]` catch-all, then a
//!   wildcard one label up), and only a catch-all forwards the client's target unedited;
//! * a table's answer is the model's: normalise the target once, take the first route whose every
//!   condition holds, else 405 with the methods of the routes that failed on the method alone, else 404;
//!   and `Conditions::judge` agrees (the chosen route matches, no earlier one does);
//! * a forwarded target is origin-form visible ASCII (`*` only for `*`), its path has no empty, `.` or
//!   `..` segment, no `%2F`/`%5C` unless the host allows them, is what the route's path edit makes of the
//!   normalised path, and normalising it again changes nothing;
//! * a redirect's `Location` is the template filled in, visible ASCII only; a refusal is 400, 404 or
//!   405 (with a non-empty `Allow`); `/routes/explain` stops at the route the lookup took.
#![no_main]

use std::collections::HashMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use regex_lite::Regex;
use spawngate::config::hosts::HostConfig;
use spawngate::config::routes::{LocalRoute, RouteAction, RouteConfig};
use spawngate::config::Config;
use spawngate::http1::path::{normalize, PathRules};
use spawngate::http1::request::parse_request;
use spawngate::http1::rewrite::{Http1Source, PathEdit, RequestSource, Template, Vars};
use spawngate::upstream::route_match::{HeaderTest, PathCond, Verdict};
use spawngate::upstream::{normalize_host, Caller, Reconcile, RouteScratch, RouteTable, Routed};

fn caller() -> Caller<'static> {
    Caller {
        request_id: b"fuzz",
        client_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    }
}

/// Reads the fuzz input as a stream of choices; an exhausted input reads as zeros.
struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// One time in 32: for the choices a config refuses, so that most configs are accepted.
    fn rare(&mut self) -> bool {
        self.below(32) == 0
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

const BACKENDS: [&str; 3] = ["a.test", "b.test", "c.test"];
/// Table keys: one that replaces a backend's catch-all, plain names, wildcards (one covering the
/// backends' parent), an address, and a spelling that normalises to another.
const HOST_NAMES: [&str; 7] = [
    "a.test",
    "h.test",
    "*.w.test",
    "*.test",
    "127.0.0.1",
    "H.Test",
    "[::1]",
];
const ALIASES: [&str; 5] = ["www.h.test", "*.x.test", "alias.test", "b.test", "*.w.test"];
/// Path segments for conditions and prefixes that a config accepts...
const SEGMENTS: [&str; 7] = ["a", "b", "api", "v1", "x.y", "~u", "%C3%A9"];
/// ... and, one time in four, ones it refuses (not normalised, or an encoded slash), or that no request
/// target can carry (targets are visible ASCII).
const ODD_SEGMENTS: [&str; 8] = ["A", "", ".", "..", "%2F", "%2e", "%41", "\u{e9}"];
const REGEXES: [&str; 10] = [
    "/a.*",
    "/api/[0-9]+",
    "/(a|b)(/.*)?",
    ".*\\.txt",
    ".*",
    "/x/?",
    "/[a-z]+/v1",
    "/%2F.*",
    "/A|/b",
    "/api(/.*)?",
];
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get",
];
const HEADER_NAMES: [&str; 3] = ["x-a", "X-B", "accept"];
const HEADER_VALUES: [&str; 3] = ["1", "yes", "y y"];
const HEADER_REGEXES: [&str; 3] = ["[0-9]+", "y.*", ""];
/// What a config refuses, chosen now and then: a header name that is not a token, an empty value, an
/// expression that does not compile.
const BAD_HEADER_NAME: &str = "bad name";
const BAD_REGEX: &str = "(";
const TARGETS: [&str; 4] = ["a.test", "b.test", "c.test", "nobody.test"];
const LOCATIONS: [&str; 5] = [
    "https://{host}{path}{query}",
    "/new{query}",
    "http://x.test/{path}",
    "{{path}}",
    "bad location",
];
const REDIRECT_STATUSES: [u16; 6] = [301, 302, 303, 307, 308, 200];
const RESPOND_STATUSES: [u16; 5] = [200, 204, 404, 503, 999];
const BODIES: [&str; 4] = ["", "ok {path}", "{host}{query}{", "\u{e9}\n"];

/// A TOML basic string.
fn quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn config_path(c: &mut Choices) -> String {
    let mut path = String::new();
    for _ in 0..1 + c.below(3) {
        path.push('/');
        let segments: &[&str] = if c.below(4) == 0 {
            &ODD_SEGMENTS
        } else {
            &SEGMENTS
        };
        path.push_str(c.pick(segments));
    }
    if c.below(4) == 0 {
        path.push('/');
    }
    path
}

/// Writes one route; returns whether an accepted config must keep it (every route, now that a
/// non-ASCII `rewrite_prefix` is refused instead of dropped in silence).
fn write_route(c: &mut Choices, host: &str, out: &mut String) -> bool {
    out.push_str(&format!("\n[[hosts.{}.routes]]\n", quoted(host)));
    let prefix = match c.below(4) {
        1 => {
            out.push_str(&format!("path = {}\n", quoted(&config_path(c))));
            false
        }
        2 => {
            out.push_str(&format!("path_prefix = {}\n", quoted(&config_path(c))));
            true
        }
        3 => {
            let regex = if c.rare() {
                BAD_REGEX
            } else {
                c.pick(&REGEXES)
            };
            out.push_str(&format!("path_regex = {}\n", quoted(regex)));
            false
        }
        _ => false,
    };
    let methods = c.byte();
    if methods & 0x80 != 0 {
        // Any of the seven valid methods (none at all is refused), and now and then a lower-case one.
        let mut chosen: Vec<String> = METHODS[..7]
            .iter()
            .enumerate()
            .filter(|(i, _)| methods & (1 << i) != 0)
            .map(|(_, m)| quoted(m))
            .collect();
        if c.below(16) == 0 {
            chosen.push(quoted(METHODS[7]));
        }
        out.push_str(&format!("methods = [{}]\n", chosen.join(", ")));
    }
    let headers: Vec<String> = (0..c.below(4) / 2 + c.below(2))
        .map(|_| {
            let name = if c.rare() {
                BAD_HEADER_NAME
            } else {
                c.pick(&HEADER_NAMES)
            };
            let name = quoted(name);
            match c.below(3) {
                0 => {
                    let value = if c.rare() { "" } else { c.pick(&HEADER_VALUES) };
                    format!("{{ name = {name}, value = {} }}", quoted(value))
                }
                1 => {
                    let regex = if c.rare() {
                        BAD_REGEX
                    } else {
                        c.pick(&HEADER_REGEXES)
                    };
                    format!("{{ name = {name}, regex = {} }}", quoted(regex))
                }
                _ => format!("{{ name = {name}, present = {} }}", c.flag()),
            }
        })
        .collect();
    if !headers.is_empty() {
        out.push_str(&format!("headers = [{}]\n", headers.join(", ")));
    }
    match c.below(5) {
        0 => {
            let location = quoted(c.pick(&LOCATIONS));
            let status = c.pick(&REDIRECT_STATUSES);
            out.push_str(&format!(
                "redirect = {{ location = {location}, status = {status} }}\n"
            ));
        }
        1 => {
            let status = c.pick(&RESPOND_STATUSES);
            let body = quoted(c.pick(&BODIES));
            out.push_str(&format!(
                "respond = {{ status = {status}, body = {body} }}\n"
            ));
        }
        _ => {
            out.push_str(&format!("to = {}\n", quoted(c.pick(&TARGETS))));
            // Mostly on prefix routes, where they are allowed; sometimes elsewhere, to see them refused.
            match (c.below(3), prefix || c.rare()) {
                (1, true) => out.push_str("strip_prefix = true\n"),
                (2, true) => {
                    let with = config_path(c);
                    out.push_str(&format!("rewrite_prefix = {}\n", quoted(&with)));
                }
                _ => {}
            }
        }
    }
    true
}

/// The config text, and how many routes each host table should keep.
fn write_config(c: &mut Choices) -> (String, Vec<usize>) {
    let mut out = String::new();
    let mut kept = Vec::new();
    for (i, name) in BACKENDS.iter().enumerate() {
        let port = 3001 + i;
        out.push_str(&format!(
            "[backends.{}]\ncommand = \"app\"\nport = {port}\n\n",
            quoted(name)
        ));
    }
    for _ in 0..1 + c.below(2) {
        let host = c.pick(&HOST_NAMES);
        out.push_str(&format!("\n[hosts.{}]\n", quoted(host)));
        let aliases: Vec<String> = (0..c.below(3)).map(|_| quoted(c.pick(&ALIASES))).collect();
        if !aliases.is_empty() {
            out.push_str(&format!("aliases = [{}]\n", aliases.join(", ")));
        }
        if c.flag() {
            out.push_str("allow_encoded_slashes = true\n");
        }
        // An exhausted input would repeat one route, which the config refuses as shadowed: stop there.
        let routes = 1 + c.below(6);
        let mut keeps = 0;
        for i in 0..routes {
            if i > 0 && c.is_empty() {
                break;
            }
            keeps += usize::from(write_route(c, host, &mut out));
        }
        kept.push(keeps);
    }
    (out, kept)
}

/// Hosts a request may name: the tables' names, aliases and wildcards (filled in with one label and
/// with two), the backends, and names nobody configured.
fn request_hosts(config: &Config) -> Vec<String> {
    let mut hosts: Vec<String> = vec!["nobody.test".into(), "W.TEST".into(), "q.r.test".into()];
    hosts.extend(config.backends.iter().map(|b| b.hostname.clone()));
    for table in &config.hosts {
        for name in std::iter::once(&table.name).chain(&table.aliases) {
            match name.strip_prefix("*.") {
                Some(parent) => {
                    hosts.push(format!("q.{parent}"));
                    hosts.push(format!("q.r.{parent}"));
                    hosts.push(parent.to_string());
                }
                None => hosts.push(name.clone()),
            }
        }
    }
    hosts
}

/// The configured exact paths and prefixes, for requests to start from (so that they reach the routes).
fn request_paths(config: &Config) -> Vec<String> {
    let routes = config.hosts.iter().flat_map(|h| &h.routes);
    let paths = routes.filter_map(|r| match &r.conditions.path {
        PathCond::Exact(p) | PathCond::Prefix(p) => Some(p.clone()),
        _ => None,
    });
    paths.filter(|p| p.is_ascii()).collect()
}

const TARGET_PIECES: [&[u8]; 24] = [
    b"/", b"a", b"b", b"api", b"v1", b".", b"..", b"%2F", b"%2f", b"%5C", b"%2e", b"%2E", b"%41",
    b"x.y", b"?", b"q=1", b"&", b"%", b"\\", b"%C3%A9", b"A", b"~u", b"#", b"{path}",
];
const REQUEST_METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW",
];
const REQUEST_FIELDS: [&str; 4] = ["X-A", "x-b", "Accept", "X-Other"];
const REQUEST_VALUES: [&str; 5] = ["1", "yes", "", "y y", "42"];

/// One request head for `host`; its target is `*`, absolute-form or origin-form, from the pieces or raw
/// bytes of the input.
fn write_request(c: &mut Choices, hosts: &[String], paths: &[String]) -> Vec<u8> {
    let host = hosts[c.below(hosts.len())].clone();
    let host = match c.below(8) {
        0 => host.to_ascii_uppercase(),
        1 => format!("{host}."),
        2 => format!("{host}:8080"),
        _ => host,
    };
    let mut head = Vec::new();
    head.extend_from_slice(c.pick(&REQUEST_METHODS).as_bytes());
    head.push(b' ');
    match c.below(8) {
        0 => head.push(b'*'),
        1 => {
            head.extend_from_slice(b"http://");
            head.extend_from_slice(host.as_bytes());
        }
        2..=4 if !paths.is_empty() => {
            head.extend_from_slice(paths[c.below(paths.len())].as_bytes());
        }
        _ => head.push(b'/'),
    }
    if head.last() != Some(&b'*') {
        for _ in 0..c.below(10) {
            match c.below(TARGET_PIECES.len() + 1) {
                i if i < TARGET_PIECES.len() => head.extend_from_slice(TARGET_PIECES[i]),
                _ => head.push(c.byte()),
            }
        }
    }
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(host.as_bytes());
    head.extend_from_slice(b"\r\n");
    for _ in 0..c.below(4) {
        let name = c.pick(&REQUEST_FIELDS);
        let value = c.pick(&REQUEST_VALUES);
        head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Where the model sends a host.
enum Resolved<'c> {
    Table(&'c HostConfig),
    CatchAll(&'c str),
    Unknown,
}

fn resolve<'c>(config: &'c Config, host: &str) -> Resolved<'c> {
    let named = |name: &str| {
        config
            .hosts
            .iter()
            .find(|t| t.name == name || t.aliases.iter().any(|a| a == name))
    };
    if let Some(table) = named(host) {
        return Resolved::Table(table);
    }
    if let Some(backend) = config.backends.iter().find(|b| b.hostname == host) {
        return Resolved::CatchAll(&backend.hostname);
    }
    let wildcard = host
        .split_once('.')
        .and_then(|(_, parent)| named(&format!("*.{parent}")));
    match wildcard {
        Some(table) => Resolved::Table(table),
        None => Resolved::Unknown,
    }
}

/// What the model expects of a table for one request.
#[derive(Debug, PartialEq, Eq)]
enum Expected {
    Route(usize),
    MethodNotAllowed(String),
    NoRoute,
}

/// The config's expressions, compiled once each by the model (anchored its own way).
type Regexes = HashMap<String, Regex>;

fn compile_all(config: &Config) -> Regexes {
    let mut regexes = Regexes::new();
    let routes = config.hosts.iter().flat_map(|h| &h.routes);
    for cond in routes.map(|r| &r.conditions) {
        let headers = cond.headers.iter().filter_map(|h| match &h.test {
            HeaderTest::Regex(p) => Some(p),
            _ => None,
        });
        let path = match &cond.path {
            PathCond::Regex(p) => Some(p),
            _ => None,
        };
        for pattern in path.into_iter().chain(headers) {
            let anchored = format!("^(?:{})$", pattern.text);
            let regex = Regex::new(&anchored).expect("the config accepted the expression");
            regexes.insert(pattern.text.clone(), regex);
        }
    }
    regexes
}

fn full_match(regexes: &Regexes, pattern: &str, text: &str) -> bool {
    regexes[pattern].is_match(text)
}

/// Whether every condition of `route` but the method holds, and whether the method does.
fn model_judge<S: RequestSource>(
    regexes: &Regexes,
    route: &RouteConfig,
    path: &str,
    request: &S,
) -> (bool, bool) {
    let cond = &route.conditions;
    let path_ok = match &cond.path {
        PathCond::Any => true,
        PathCond::Exact(exact) => path == exact,
        PathCond::Prefix(prefix) if prefix == "/" => path.starts_with('/'),
        PathCond::Prefix(prefix) => {
            path == prefix
                || (path.starts_with(prefix.as_str()) && path[prefix.len()..].starts_with('/'))
        }
        PathCond::Regex(pattern) => full_match(regexes, &pattern.text, path),
    };
    let headers_ok = cond.headers.iter().all(|h| {
        let values: Vec<&[u8]> = request
            .fields()
            .filter(|f| f.name.to_ascii_lowercase() == h.name.as_bytes())
            .map(|f| f.value)
            .collect();
        match &h.test {
            HeaderTest::Present(wanted) => !values.is_empty() == *wanted,
            HeaderTest::Equals(v) => values.contains(&v.as_bytes()),
            HeaderTest::Regex(p) => values
                .iter()
                .any(|v| std::str::from_utf8(v).is_ok_and(|v| full_match(regexes, &p.text, v))),
        }
    });
    let method_ok = match &cond.methods {
        None => true,
        Some(methods) => methods.iter().any(|m| m.as_bytes() == request.method()),
    };
    (path_ok && headers_ok, method_ok)
}

/// The normalised path and query as the model reads a target: `*` stays, an empty or query-only
/// absolute-form path stands for `/`.
fn model_normalise(target: &[u8], rules: PathRules) -> Option<(String, Vec<u8>)> {
    let mut out = Vec::new();
    normalize(target, rules, &mut out).ok()?;
    if out.is_empty() || !matches!(out[0], b'/' | b'*') {
        out.insert(0, b'/');
    }
    let at = out.iter().position(|&b| b == b'?').unwrap_or(out.len());
    let query = out.split_off(at);
    Some((String::from_utf8(out).ok()?, query))
}

fn model_select<S: RequestSource>(
    regexes: &Regexes,
    table: &HostConfig,
    path: &str,
    request: &S,
) -> Expected {
    let mut allow: Vec<&str> = Vec::new();
    for (i, route) in table.routes.iter().enumerate() {
        match model_judge(regexes, route, path, request) {
            (true, true) => return Expected::Route(i),
            (true, false) => {
                for m in route.conditions.methods.iter().flatten() {
                    if !allow.contains(&m.as_str()) {
                        allow.push(m);
                    }
                }
            }
            _ => {}
        }
    }
    if allow.is_empty() {
        Expected::NoRoute
    } else {
        Expected::MethodNotAllowed(allow.join(", "))
    }
}

/// A route's template filled in. Templates have their own fuzz target (`template`); here the answer
/// only has to be the route's template over this request.
fn model_render(template: &Template, host: &str, path: &str, query: &[u8]) -> Vec<u8> {
    let vars = Vars {
        host: host.as_bytes(),
        path: path.as_bytes(),
        query,
        request_id: b"fuzz",
        ..Vars::default()
    };
    let mut out = Vec::new();
    template.render(&vars, &mut out);
    out
}

/// The target the route's path edit makes of the normalised `path` (which the route matched).
fn model_edit(edit: &PathEdit, path: &str) -> String {
    let (prefix, with) = match edit {
        PathEdit::Keep => return path.to_string(),
        PathEdit::StripPrefix(prefix) => (prefix.as_str(), "/"),
        PathEdit::ReplacePrefix { prefix, with } => (prefix.as_str(), with.as_str()),
        PathEdit::Rewrite(_) => unreachable!("the generator writes no `rewrite`"),
    };
    // A prefix route matched, so `prefix` is `path`'s first whole segments.
    let rest = if prefix == "/" {
        path
    } else {
        &path[prefix.len()..]
    };
    if rest.is_empty() {
        with.to_string()
    } else {
        format!("{}{rest}", with.trim_end_matches('/'))
    }
}

/// A forwarded target: origin-form (or `*`), visible ASCII without `#`, a canonical path.
fn check_forwarded(t: &[u8], request_target: &[u8], rules: PathRules) {
    if t == b"*" {
        assert_eq!(request_target, b"*", "`*` forwarded for another target");
        return;
    }
    assert_eq!(t.first(), Some(&b'/'), "not origin-form: {t:?}");
    assert!(
        t.iter().all(|&b| (0x21..0x7f).contains(&b) && b != b'#'),
        "byte invalid in a target: {t:?}"
    );
    let path = t.split(|&b| b == b'?').next().unwrap_or_default();
    let text = String::from_utf8_lossy(path);
    assert!(!text.contains("//"), "empty segment in {text}");
    for segment in text.split('/') {
        assert!(segment != "." && segment != "..", "dot-segment in {text}");
    }
    let upper = text.to_ascii_uppercase();
    if !rules.allow_encoded_slashes {
        assert!(
            !upper.contains("%2F") && !upper.contains("%5C"),
            "encoded slash in {text}"
        );
    }
    let mut again = Vec::new();
    assert!(normalize(t, rules, &mut again).is_ok(), "{text} refused");
    assert_eq!(again, t, "normalising {text} again changed it");
}

fn check_request(
    config: &Config,
    regexes: &Regexes,
    table: &RouteTable,
    raw: &[u8],
    scratch: &mut RouteScratch,
) {
    let Ok(Some(head)) = parse_request(raw) else {
        return;
    };
    let Some(host_range) = head.host.clone() else {
        return;
    };
    let mut host_buf = String::new();
    let Some(host) = normalize_host(&raw[host_range], &mut host_buf) else {
        return;
    };
    let source = Http1Source {
        buf: raw,
        head: &head,
    };
    let request_target = source.target();
    let resolved = resolve(config, host);
    let routed = table.lookup(host, &source, caller(), scratch);
    let explained = table.explain(host, &source);

    let host_table = match (resolved, &routed) {
        (Resolved::Unknown, Routed::UnknownHost) => return,
        (Resolved::CatchAll(backend), Routed::Forward { to, target: None }) => {
            assert_eq!(&*to.host, backend);
            return;
        }
        (
            Resolved::Table(host_table),
            Routed::Forward {
                target: Some(_), ..
            },
        )
        | (Resolved::Table(host_table), Routed::Answer(_) | Routed::Refuse(_)) => host_table,
        (_, routed) => panic!("host {host} routed as {routed:?}"),
    };
    let rules = PathRules {
        allow_encoded_slashes: host_table.allow_encoded_slashes,
    };
    let Some((path, query)) = model_normalise(request_target, rules) else {
        match &routed {
            Routed::Refuse(err) => assert_eq!(err.code.status(), 400, "{err:?}"),
            other => panic!("{request_target:?} has no single reading, yet {other:?}"),
        }
        return;
    };
    let expected = model_select(regexes, host_table, &path, &source);
    // The library's own judgement agrees with the model's.
    let built = table
        .tables()
        .find(|t| t.name == host_table.name)
        .expect("every table is built");
    assert_eq!(built.routes.len(), host_table.routes.len());
    let judged = built
        .routes
        .iter()
        .position(|r| r.conditions.judge(&path, &source) == Verdict::Match);
    match expected {
        Expected::Route(i) => assert_eq!(judged, Some(i)),
        _ => assert_eq!(judged, None),
    }

    match (&expected, &routed) {
        (
            Expected::Route(i),
            Routed::Forward {
                to,
                target: Some(t),
            },
        ) => {
            let RouteAction::To { target, plan } = &host_table.routes[*i].action else {
                panic!("route {i} forwarded but is not a `to` route");
            };
            assert_eq!(&*to.host, target);
            assert_eq!(*to.plan, *plan);
            check_forwarded(t, request_target, rules);
            let mut want = model_edit(&plan.path, &path).into_bytes();
            want.extend_from_slice(&query);
            assert_eq!(*t, &want[..], "path {path} edited by {:?}", plan.path);
        }
        (Expected::Route(i), Routed::Answer(answer)) => match &host_table.routes[*i].action {
            RouteAction::Answer(LocalRoute::Redirect {
                location, status, ..
            }) => {
                assert_eq!(answer.status, *status);
                let got = answer
                    .location
                    .as_deref()
                    .expect("a redirect has a location");
                assert_eq!(got, model_render(location, host, &path, &query));
                assert!(
                    got.iter().all(|&b| (0x21..0x7f).contains(&b)),
                    "Location is not visible ASCII: {got:?}"
                );
            }
            RouteAction::Answer(LocalRoute::Respond { status, body, .. }) => {
                assert_eq!(answer.status, *status);
                assert!(answer.location.is_none());
                assert_eq!(answer.body, model_render(body, host, &path, &query));
            }
            RouteAction::To { .. } => panic!("route {i} answered but is a `to` route"),
        },
        (Expected::MethodNotAllowed(allow), Routed::Refuse(err)) => {
            assert_eq!(err.code.status(), 405, "{err:?}");
            assert!(!allow.is_empty());
            assert_eq!(err.allow.as_deref(), Some(allow.as_str()));
        }
        (Expected::NoRoute, Routed::Refuse(err)) => {
            assert_eq!(err.code.status(), 404, "{err:?}");
            assert_eq!(err.allow, None);
        }
        (expected, routed) => panic!("{host} {path}: expected {expected:?}, routed {routed:?}"),
    }

    // `/routes/explain` stops at the route taken, or tries them all.
    let verdicts: Vec<bool> = explained
        .routes
        .iter()
        .map(|r| r.why_not.is_none())
        .collect();
    match expected {
        Expected::Route(i) => {
            assert_eq!(verdicts.len(), i + 1);
            assert!(verdicts[i] && !verdicts[..i].contains(&true));
        }
        _ => assert!(verdicts.len() == host_table.routes.len() && !verdicts.contains(&true)),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices { data };
    let (text, kept) = write_config(&mut choices);
    let Ok(config) = spawngate::config::parse(Path::new("fuzz.toml"), &text) else {
        return;
    };
    // An accepted config has every table and route that was written (a problem rejects the config).
    let routes: Vec<usize> = config.hosts.iter().map(|h| h.routes.len()).collect();
    if routes.len() == kept.len() {
        for (got, want) in routes.iter().zip(&kept) {
            assert!(got >= want, "a route was dropped without an error:\n{text}");
        }
    } else {
        panic!("a host table was dropped without an error:\n{text}");
    }
    let table = Reconcile::initial(&config.backends, &config.hosts).routes;
    let hosts = request_hosts(&config);
    let paths = request_paths(&config);
    let regexes = compile_all(&config);
    let mut scratch = RouteScratch::default();
    for _ in 0..16 {
        if choices.is_empty() {
            break;
        }
        let raw = write_request(&mut choices, &hosts, &paths);
        check_request(&config, &regexes, &table, &raw, &mut scratch);
    }
});
