//! Scenario tests of the registry: a harness drives it with chosen times and reports, as the reactor
//! would, and reads its replies and effects. No sockets.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Effect, Registry, Reply};
use crate::config::sessions::{
    Access, Evict, HostPattern, HostVar, SessionTemplate, StartPolicy, Unhealthy, UrlPattern,
};
use crate::config::{BackendConfig, BackendKind, LocalSpec, Timings};
use crate::msg::{Activity, BackendEntry, LifecycleEvent};
use crate::sessions::route::SessionRoute;
use crate::upstream::BackendId;

mod admin;
mod caps;
mod connect;
mod lifecycle;

/// Unix milliseconds of the clock's epoch in these tests.
const EPOCH_MS: u64 = 1_700_000_000_000;

pub(super) fn timings() -> Timings {
    Timings {
        idle_timeout: Duration::from_secs(120),
        startup_timeout: Duration::from_secs(30),
        health_check_interval: Duration::from_millis(100),
        health_path: "/health".into(),
        request_timeout: Duration::from_secs(30),
        shutdown_grace_period: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(20),
        ready_health_check_interval: Duration::from_secs(5),
        unhealthy_threshold: 3,
        socket_activation: false,
        server_timing: true,
        watchdog: None,
    }
}

/// `[sessions.NAME]`: a local kernel on `{port}`, hostnames `{id}.NAME.example.com`, token access.
pub(super) fn template(name: &str) -> SessionTemplate {
    SessionTemplate {
        name: name.to_string(),
        hostname: HostPattern {
            before: String::new(),
            var: HostVar::Id,
            after: format!(".{name}.example.com"),
        },
        public_url: UrlPattern {
            before: "https://".into(),
            after: String::new(),
        },
        access: Access::Token,
        start: StartPolicy::OnCreate,
        key_pattern: regex_lite::Regex::new("^[a-z0-9][a-z0-9-]{0,62}$").unwrap(),
        allow_env: vec!["NOTEBOOK_ID".into(), "SPAWNGATE_SESSION_ID".into()],
        idle_timeout: Duration::from_secs(120),
        lifetime: None,
        max_running: None,
        evict: Evict::IdleLru,
        unhealthy: Unhealthy::End,
        tombstone: Duration::from_secs(300),
        host_ports: (20000, 20999),
        instance: Arc::new(BackendConfig {
            hostname: name.to_string(),
            port: 0,
            kind: BackendKind::Local(LocalSpec {
                command: "/opt/{key}/kernel".into(),
                args: vec!["--port={port}".into(), "--id".into(), "{id}".into()],
                working_dir: None,
            }),
            env: vec![
                ("MODE".into(), "nb-{key}-{port}".into()),
                ("NOTEBOOK_ID".into(), "default".into()),
            ],
            timings: timings(),
            pool: None,
            session: None,
        }),
    }
}

/// Drives a registry as the reactor does: backend ids in order, a clock the test moves, and which
/// ports a bind would find free.
pub(super) struct Harness {
    pub reg: Registry,
    pub now: u64,
    next_slot: u32,
    /// Ports `port_free` refuses.
    pub busy_ports: Vec<u16>,
    /// Every port `port_free` was asked about.
    pub asked: Vec<u16>,
}

impl Harness {
    pub fn new(templates: Vec<SessionTemplate>) -> Harness {
        let templates = templates.into_iter().map(Arc::new).collect();
        Harness {
            reg: Registry::new(templates, "http://127.0.0.1:9999/".into(), EPOCH_MS),
            now: 1_000,
            next_slot: 0,
            busy_ports: Vec::new(),
            asked: Vec::new(),
        }
    }

    pub fn one(template: SessionTemplate) -> Harness {
        Harness::new(vec![template])
    }

    pub fn connect(&mut self, template: &str, body: &str) -> (Reply, Vec<Effect>) {
        let id = BackendId::new(self.next_slot, 1);
        let busy = self.busy_ports.clone();
        let asked = &mut self.asked;
        let mut port_free = |port: u16| {
            asked.push(port);
            !busy.contains(&port)
        };
        let (reply, effects) =
            self.reg
                .connect(template, body.as_bytes(), id, self.now, &mut port_free);
        if reply.status == 201 {
            self.next_slot += 1;
        }
        (reply, effects)
    }

    /// A connect that must create: the new session's id, backend and effects.
    pub fn create(&mut self, template: &str, body: &str) -> Created {
        let (reply, effects) = self.connect(template, body);
        assert_eq!(reply.status, 201, "{}", text(&reply));
        let json = json(&reply);
        let (backend, entry) = added(&effects).expect("an Add");
        Created {
            id: json["id"].as_str().unwrap().to_string(),
            backend,
            activity: entry.activity[0].clone(),
            config: entry.config.clone(),
            json,
            effects,
        }
    }

    pub fn event(&mut self, backend: BackendId, event: LifecycleEvent) -> Vec<Effect> {
        self.reg.on_event(backend, &event, self.now)
    }

    /// Starting then Ready.
    pub fn run(&mut self, backend: BackendId) {
        self.event(backend, LifecycleEvent::Starting);
        self.event(backend, LifecycleEvent::Ready);
    }

    pub fn get(&self, id: &str) -> Value {
        let reply = self.reg.get(id, self.now);
        assert_eq!(reply.status, 200, "{}", text(&reply));
        json(&reply)
    }

    pub fn state(&self, id: &str) -> String {
        self.get(id)["state"].as_str().unwrap().to_string()
    }
}

pub(super) struct Created {
    pub id: String,
    pub backend: BackendId,
    pub activity: Arc<Activity>,
    pub config: Arc<BackendConfig>,
    pub json: Value,
    pub effects: Vec<Effect>,
}

pub(super) fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

pub(super) fn json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", text(reply)))
}

pub(super) fn code(reply: &Reply) -> String {
    json(reply)["code"].as_str().unwrap_or_default().to_string()
}

pub(super) fn added(effects: &[Effect]) -> Option<(BackendId, &BackendEntry)> {
    effects.iter().find_map(|e| match e {
        Effect::Add { id, entry } => Some((*id, entry)),
        _ => None,
    })
}

pub(super) fn adds(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::Add { .. }))
        .count()
}

/// The routes published with `Put`, in order.
pub(super) fn puts(effects: &[Effect]) -> Vec<Arc<SessionRoute>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(crate::sessions::route::SessionUpdate::Put(route)) => {
                Some(route.clone())
            }
            _ => None,
        })
        .collect()
}

pub(super) fn forgets(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(crate::sessions::route::SessionUpdate::Forget(host)) => {
                Some(host.to_string())
            }
            _ => None,
        })
        .collect()
}

pub(super) fn ends(effects: &[Effect]) -> Vec<(BackendId, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::End { backend, drain } => Some((*backend, *drain)),
            _ => None,
        })
        .collect()
}

/// The events' names (the frames' `event:` lines), with `last`.
pub(super) fn events(effects: &[Effect]) -> Vec<(String, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event { frame, last, .. } => Some((frame_name(frame), *last)),
            _ => None,
        })
        .collect()
}

pub(super) fn frame_name(frame: &str) -> String {
    frame
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("event: "))
        .unwrap_or_default()
        .to_string()
}

/// The `data:` of a frame.
pub(super) fn frame_data(frame: &str) -> Value {
    let data = frame
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    serde_json::from_str(data).unwrap()
}
