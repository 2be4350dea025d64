//! The session registry (`sessions::registry`) under any sequence of admin calls, lifecycle reports and
//! time: it never panics, every reply is JSON, a template never has more live sessions than its
//! `max_running`, a key never has two live sessions, and every backend it adds has an id of its own.
//!
//! Input: one op per step: a kind byte, then its bytes (a connect takes a length byte and that many body
//! bytes; the others take one or two argument bytes).
#![no_main]

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use spawngate::json::Json;
use spawngate::msg::{LifecycleEvent, StopReason};
use spawngate::sessions::registry::{Effect, Registry};
use spawngate::upstream::BackendId;

const CONFIG: &str = r#"
[sessions.a]
hostname = "{id}.a.test"
public_url = "http://{hostname}"
max_running = 2
evict = "idle_lru"
lifetime_secs = 30
idle_timeout_secs = 5
tombstone_secs = 10
host_ports = "30000-30003"
command = "/bin/true"
args = ["{port}", "{id}", "{key}"]

[sessions.b]
hostname = "{key}.b.test"
public_url = "https://{hostname}"
start = "on_request"
max_running = 1
evict = "never"
host_ports = "30010-30011"
command = "/bin/true"
"#;

fn event(byte: u8) -> LifecycleEvent {
    match byte % 9 {
        0 => LifecycleEvent::Starting,
        1 => LifecycleEvent::Ready,
        2 => LifecycleEvent::StartFailed("boom".into()),
        3 => LifecycleEvent::Unhealthy,
        4 => LifecycleEvent::Stopping(StopReason::Idle),
        5 => LifecycleEvent::Stopping(StopReason::Removed),
        6 => LifecycleEvent::Stopping(StopReason::Restart),
        7 => LifecycleEvent::Stopped,
        _ => LifecycleEvent::Stopping(StopReason::Terminated),
    }
}

fn check_json(body: &[u8]) {
    assert!(
        Json::parse(body).is_ok(),
        "{}",
        String::from_utf8_lossy(body)
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(config) = spawngate::config::parse(Path::new("fuzz.toml"), CONFIG) else {
        panic!("the fuzz config is valid");
    };
    let mut registry = Registry::new(config.sessions.clone(), "http://admin".into(), 0);
    let mut now_ms = 0u64;
    let mut next_slot = 0u32;
    let mut backends: Vec<BackendId> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut hosts: Vec<Arc<str>> = Vec::new();
    let mut added = HashSet::new();
    let mut bytes = data.iter().copied();
    while let Some(kind) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        let effects = match kind % 8 {
            0 | 1 => {
                let template = if kind & 0x10 == 0 { "a" } else { "b" };
                let body: Vec<u8> = bytes.by_ref().take(usize::from(arg % 64)).collect();
                let next_id = BackendId::new(next_slot, 1);
                let mut port_free = |port: u16| port % 3 != 0 || kind & 0x20 == 0;
                let (reply, effects) =
                    registry.connect(template, &body, next_id, now_ms, &mut port_free);
                check_json(&reply.body);
                if let Some(id) = Json::parse(&reply.body)
                    .ok()
                    .and_then(|j| j.str_at("id").map(String::from))
                {
                    ids.push(id);
                }
                effects
            }
            2 => {
                let id = ids
                    .get(usize::from(arg) % ids.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                let (reply, effects) = registry.delete(&id, arg & 1 == 0, now_ms);
                check_json(&reply.body);
                effects
            }
            3 => {
                let Some(&backend) = backends.get(usize::from(arg) % backends.len().max(1)) else {
                    continue;
                };
                registry.on_event(backend, &event(bytes.next().unwrap_or(0)), now_ms)
            }
            4 => {
                now_ms += u64::from(arg) * 100;
                registry.tick(now_ms)
            }
            5 => {
                let Some(host) = hosts.get(usize::from(arg) % hosts.len().max(1)).cloned() else {
                    continue;
                };
                registry.spend(&host, usize::from(bytes.next().unwrap_or(0) % 4))
            }
            6 => {
                let id = ids
                    .get(usize::from(arg) % ids.len().max(1))
                    .cloned()
                    .unwrap_or_default();
                check_json(&registry.get(&id, now_ms).body);
                let _ = registry.events(&id);
                Vec::new()
            }
            _ => registry.shutdown(now_ms),
        };
        for effect in effects {
            match effect {
                Effect::Add { id, entry } => {
                    assert!(added.insert(id), "{id} added twice");
                    assert!(entry.config.session.is_some());
                    backends.push(id);
                    next_slot += 1;
                }
                Effect::Publish(spawngate::sessions::route::SessionUpdate::Put(route)) => {
                    hosts.push(Arc::from(&*route.hostname));
                }
                _ => {}
            }
        }
        let list = registry.list(now_ms);
        let Ok(list) = Json::parse(&list.body) else {
            panic!("the list is JSON");
        };
        let mut live: HashMap<String, usize> = HashMap::new();
        let mut keys = HashSet::new();
        for session in list.get("sessions").and_then(Json::as_array).unwrap_or(&[]) {
            let state = session.str_at("state").unwrap_or("");
            if matches!(state, "waiting" | "starting" | "ready") {
                let template = session.str_at("template").unwrap_or("").to_string();
                *live.entry(template.clone()).or_default() += 1;
                let key = session.str_at("key").unwrap_or("").to_string();
                assert!(keys.insert(key), "two live sessions of one key");
            }
        }
        assert!(live.get("a").copied().unwrap_or(0) <= 2, "{live:?}");
        assert!(live.get("b").copied().unwrap_or(0) <= 1, "{live:?}");
    }
});
