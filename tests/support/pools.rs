//! Pools as the tests drive them: a pool of `spawngate-echo` instances routed from its own host, its
//! state as `/pools` reports it, and which instance answered (each echo names its pid).

use std::time::Duration;

use super::routing::Reply;
use super::{claim, echo_bin, free_port, toml_str, wait_until, Proxy};

/// Long enough for a loaded 2-core machine to start a few instances.
pub const WAIT: Duration = Duration::from_secs(20);

/// A base port with `n - 1` free ports after it (a pool's replica `i` listens on `base + i`). The base
/// comes from [`free_port`], which draws from a range nothing else picks from; the rest are checked.
pub fn free_ports(n: u16) -> u16 {
    for _ in 0..1_000 {
        let base = free_port();
        if claim(base + 1, n - 1) {
            return base;
        }
    }
    panic!("no run of {n} free ports");
}

/// `[pools.NAME]` running `spawngate-echo` with `keys`, routed from host `NAME.test`.
pub fn echo_pool(name: &str, keys: &str) -> String {
    format!(
        "[pools.{name}]\ncommand = {}\n{keys}\n\n{}",
        toml_str(echo_bin()),
        route_to(name)
    )
}

/// Host `NAME.test` with one route to pool `NAME`.
pub fn route_to(name: &str) -> String {
    format!("[hosts.\"{name}.test\"]\n[[hosts.\"{name}.test\".routes]]\nto = \"{name}\"\n")
}

pub fn pools(proxy: &Proxy) -> serde_json::Value {
    proxy.admin_get("/pools").json()
}

/// Pool `name` as `/pools` lists it (`null` if it does not).
pub fn pool_status(proxy: &Proxy, name: &str) -> serde_json::Value {
    let all = pools(proxy);
    all["pools"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_default()
}

/// The states of pool `name`'s instances, by slot.
pub fn states(proxy: &Proxy, name: &str) -> Vec<String> {
    let pool = pool_status(proxy, name);
    pool["instances"]
        .as_array()
        .map(|i| {
            i.iter()
                .map(|i| i["state"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub fn wait_states(proxy: &Proxy, name: &str, want: &[&str]) {
    let reached = wait_until(WAIT, || states(proxy, name) == want);
    assert!(
        reached,
        "{name}: wanted {want:?}, have {:?}",
        states(proxy, name)
    );
}

/// Which echo process answered.
pub fn pid_of(reply: &Reply) -> u32 {
    reply
        .header("x-echo-pid")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no X-Echo-Pid in {} {:?}", reply.status, reply.headers))
}

/// Every pid instance `slot` of pool `pool` was started with, from the proxy's log ("pool#2: started
/// (pid 1234)"; slot 0 is named by the pool alone).
pub fn slot_pids(proxy: &Proxy, pool: &str, slot: u32) -> Vec<u32> {
    let name = match slot {
        0 => format!(" {pool}: started"),
        n => format!(" {pool}#{n}: started"),
    };
    proxy
        .log_lines()
        .iter()
        .filter(|l| l.contains(&name))
        .filter_map(|l| {
            let at = l.find("(pid ")? + 5;
            let digits: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}
