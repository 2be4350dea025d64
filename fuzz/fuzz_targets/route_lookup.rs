//! Routing a request: host normalisation and the route table lookup never panic, agree with a plain
//! comparison against the configured hosts, and do not depend on the case or a trailing dot of the Host.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use spawngate::msg::Host;
use spawngate::upstream::{normalize_host, BackendId, RequestView, RouteTable};

const HOSTS: [&str; 5] = ["a.test", "app.example.com", "127.0.0.1", "[::1]", "x"];

fn table() -> &'static RouteTable {
    static TABLE: OnceLock<RouteTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        RouteTable::build(
            HOSTS
                .iter()
                .enumerate()
                .map(|(i, h)| (Host::from(*h), BackendId::new(i as u32, 1))),
        )
    })
}

fn route(host: &[u8], method: &[u8], path: &[u8]) -> Option<BackendId> {
    let mut scratch = String::new();
    let host = normalize_host(host, &mut scratch)?;
    let view = RequestView { host, method, path };
    table().lookup(&view).map(|m| m.backend)
}

fuzz_target!(|data: &[u8]| {
    // host \0 method \0 path
    let mut parts = data.splitn(3, |&b| b == 0);
    let host = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    let path = parts.next().unwrap_or_default();

    let routed = route(host, method, path);
    let mut scratch = String::new();
    let expected = normalize_host(host, &mut scratch)
        .and_then(|h| HOSTS.iter().position(|known| *known == h))
        .map(|i| BackendId::new(i as u32, 1));
    assert_eq!(routed, expected);

    let upper = host.to_ascii_uppercase();
    assert_eq!(route(&upper, method, path), routed);
    let mut dotted = host.to_vec();
    dotted.push(b'.');
    assert_eq!(route(&dotted, method, path), routed);
});
