//! Micro-benchmarks of route selection: what the reactor and the h2 worker do for every request between
//! parsing its head and forwarding it (`normalize_host`, then `RouteTable::lookup`), for a plain
//! `[backends]` host and for a host with a table of 100 routes.
//!
//! `cargo bench --bench routes [FILTER]` measures; `cargo test --all-targets` runs each case once.

#[path = "harness/mod.rs"]
mod harness;

use std::fmt::Write;
use std::path::Path;

use spawngate::http1::request::{parse_request, RequestHead};
use spawngate::http1::rewrite::Http1Source;
use spawngate::upstream::{normalize_host, Caller, Reconcile, RouteScratch, RouteTable, Routed};

/// Who asks: only the placeholders of a route's own answers read it.
const CALLER: Caller<'static> = Caller {
    request_id: b"0123456789abcdef0123456789abcdef",
    client_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
};

/// Routes in the big table.
const ROUTES: usize = 100;
/// The route a request for `/svc50/...` takes (0-based): the middle of the table.
const MIDDLE: usize = 50;

/// A browser-like request head: routing reads its path, method and fields, so their count matters for
/// the header conditions.
fn request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\n\
Host: {host}\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Cookie: session=4f1c2b7a9e8d6c5b4a3f2e1d0c9b8a7f; theme=dark\r\n\
X-Tenant: acme\r\n\
Connection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

const BACKENDS: &str = r#"
[backends."plain.example.com"]
command = "app"
port = 3001

[backends."site.example.com"]
command = "app"
port = 3002

[backends."api.example.com"]
command = "api"
port = 3003
"#;

/// `site.example.com` with 100 routes, in the order an operator might write them: specific services
/// first, the application last. Of the first 99, one in ten is a regex route (its expression runs for
/// every request that reaches it), three in ten share the application's prefix but want a header value
/// the request does not carry (so their header test runs), the rest are prefix or exact routes with
/// methods, some with header conditions. Route 50 is a prefix route `/svc50`; route 99 takes `/app`.
/// Without `regex`, the regex routes are prefix routes instead, to show what the expressions cost.
fn big_table(regex: bool) -> String {
    let mut config = String::from(BACKENDS);
    config.push_str("\n[hosts.\"site.example.com\"]\n");
    for k in 0..ROUTES - 1 {
        config.push_str("\n[[hosts.\"site.example.com\".routes]]\n");
        let route = match k % 10 {
            _ if k == MIDDLE => format!(
                "path_prefix = \"/svc{k}\"\nmethods = [\"GET\", \"POST\"]\nto = \"api.example.com\"\nstrip_prefix = true\n"
            ),
            0 if regex => format!("path_regex = \"/re{k}/[0-9]+(/.*)?\"\nto = \"api.example.com\"\n"),
            0 => format!("path_prefix = \"/re{k}\"\nto = \"api.example.com\"\n"),
            1..=3 => format!(
                "path_prefix = \"/app\"\nheaders = [{{ name = \"X-Tenant\", value = \"t{k}\" }}]\nto = \"api.example.com\"\n"
            ),
            4 | 5 => format!(
                "path_prefix = \"/svc{k}\"\nmethods = [\"GET\", \"POST\"]\nto = \"api.example.com\"\nstrip_prefix = true\n"
            ),
            6 => format!(
                "path_prefix = \"/svc{k}\"\nheaders = [{{ name = \"Authorization\", present = true }}]\nto = \"api.example.com\"\n"
            ),
            7 => format!("path = \"/page{k}\"\nrespond = {{ body = \"page {k}\" }}\n"),
            _ => format!(
                "path_prefix = \"/svc{k}\"\nmethods = [\"PUT\", \"DELETE\"]\nto = \"api.example.com\"\nrewrite_prefix = \"/v{k}\"\n"
            ),
        };
        config.push_str(&route);
    }
    config.push_str(
        "\n[[hosts.\"site.example.com\".routes]]\npath_prefix = \"/app\"\nmethods = [\"GET\", \"HEAD\"]\nto = \"site.example.com\"\n",
    );
    config
}

fn table(config: &str) -> std::sync::Arc<RouteTable> {
    let config = match spawngate::config::parse(Path::new("bench.toml"), config) {
        Ok(config) => config,
        Err(errors) => panic!("benchmark config rejected: {errors:?}"),
    };
    Reconcile::initial(&config.backends, &config.hosts).routes
}

fn parsed(raw: &[u8]) -> RequestHead {
    match parse_request(raw) {
        Ok(Some(head)) => head,
        other => panic!("benchmark request did not parse: {other:?}"),
    }
}

/// Routes one request as the reactor does; returns a number that depends on the outcome, so the work
/// cannot be optimised away.
fn route(
    table: &RouteTable,
    raw: &[u8],
    head: &RequestHead,
    host_scratch: &mut String,
    scratch: &mut RouteScratch,
) -> usize {
    let host_range = head.host.clone().expect("the request has a Host");
    let host = normalize_host(&raw[host_range], host_scratch).expect("UTF-8 host");
    let source = Http1Source { buf: raw, head };
    match table.lookup(host, &source, CALLER, scratch) {
        Routed::Forward { to, target } => to.host.len() + target.map_or(0, <[u8]>::len),
        Routed::Answer(answer) => answer.body.len(),
        Routed::Refuse(err) => err.message.len(),
        Routed::UnknownHost => 0,
    }
}

/// What one request is routed to, in words, to check that each case takes the path it is named for.
fn outcome(table: &RouteTable, raw: &[u8], head: &RequestHead) -> String {
    let mut host_scratch = String::new();
    let host_range = head.host.clone().expect("the request has a Host");
    let host = normalize_host(&raw[host_range], &mut host_scratch).expect("UTF-8 host");
    let source = Http1Source { buf: raw, head };
    let explained = table.explain(host, &source);
    let mut text = explained.outcome;
    if explained.table {
        let _ = write!(text, " after {} routes", explained.routes.len());
    }
    text
}

fn main() {
    let mut harness = harness::Harness::from_args();

    let plain = table(BACKENDS);
    let big = table(&big_table(true));
    let literal = table(&big_table(false));
    let cases = [
        (
            "route plain [backends] host (catch-all)",
            &plain,
            request("plain.example.com", "/articles/2024/spawngate?page=2"),
            "forward to plain.example.com unedited",
        ),
        (
            "route 100 routes, match the last",
            &big,
            request("site.example.com", "/app/users/42?page=2"),
            "forward to site.example.com as /app/users/42?page=2 after 100 routes",
        ),
        (
            "route 100 routes, no regex, match the last",
            &literal,
            request("site.example.com", "/app/users/42?page=2"),
            "forward to site.example.com as /app/users/42?page=2 after 100 routes",
        ),
        (
            "route 100 routes, match the 51st",
            &big,
            request("site.example.com", "/svc50/items/7?page=2"),
            "forward to api.example.com as /items/7?page=2 after 51 routes",
        ),
        (
            "route 100 routes, none matches (404)",
            &big,
            request("site.example.com", "/nowhere/42"),
            "404 NO_ROUTE: no route of host site.example.com matches this request after 100 routes",
        ),
    ];
    for (name, table, raw, expected) in cases {
        let head = parsed(&raw);
        assert_eq!(outcome(table, &raw, &head), expected, "{name}");
        let mut host_scratch = String::new();
        let mut scratch = RouteScratch::default();
        harness.run(name, None, || {
            route(table, &raw, &head, &mut host_scratch, &mut scratch)
        });
    }

    harness.finish();
}
