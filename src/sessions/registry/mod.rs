//! The session registry: every session of every template, owned by the reactor. Sans-IO: each call
//! takes the time (`Clock` milliseconds) and returns what to do as [`Effect`]s and, for an admin call,
//! the [`Reply`]; the reactor carries them out.
//!
//! CONTRACT (stub; the module is being written): see `Registry`'s methods.

use std::sync::Arc;

use super::route::SessionUpdate;
use crate::config::sessions::SessionTemplate;
use crate::msg::{BackendEntry, LifecycleEvent};
use crate::upstream::BackendId;

/// What the reactor does for the registry, in order.
#[derive(Debug)]
pub enum Effect {
    /// Add this backend (a session's one-instance pool) under `id`: a `Reconcile` with one
    /// `Change::Add`, applied by the reactor and sent to the h2 worker and the supervisor.
    Add { id: BackendId, entry: BackendEntry },
    /// Start the backend (`start = "on_create"`). The supervisor holds the start back while the
    /// backend named by the session's `SessionTag::after` still exists.
    Start(BackendId),
    /// End the backend: the supervisor stops it (draining first unless `drain` is false) and forgets
    /// it once stopped; the request threads remove it (`Change::Remove`).
    End { backend: BackendId, drain: bool },
    /// For both request threads' `SessionHosts`.
    Publish(SessionUpdate),
    /// One server-sent event for the subscribers of session `session` (a complete frame:
    /// `event: NAME\ndata: JSON\n\n`). `last` is true for `ended`: the stream closes after it.
    Event {
        session: Arc<str>,
        frame: Box<str>,
        last: bool,
    },
}

/// An admin answer: a status, a JSON body, and `Retry-After` for 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub retry_after: Option<u64>,
}

/// Every session, keyed by id and by (template, key); tombstones of ended ones.
#[derive(Debug, Default)]
pub struct Registry {
    templates: Vec<Arc<SessionTemplate>>,
}

impl Registry {
    /// `admin_base`: the admin API's base URL (`http://127.0.0.1:9999`) for `status_url`/`events_url`.
    pub fn new(templates: Vec<Arc<SessionTemplate>>, _admin_base: String) -> Registry {
        Registry { templates }
    }

    /// The templates' hostname spaces, to publish at start.
    pub fn spaces(&self) -> SessionUpdate {
        SessionUpdate::Spaces(self.templates.iter().map(|t| t.hostname.clone()).collect())
    }

    /// A reload: new connects use `templates`; live sessions keep the template they were made from.
    pub fn reload(&mut self, templates: Vec<Arc<SessionTemplate>>) -> Vec<Effect> {
        self.templates = templates;
        vec![Effect::Publish(self.spaces())]
    }

    /// `POST /sessions/{template}` with `body`. `next_id`: the id an added backend gets.
    /// `port_free`: whether a port of `host_ports` can be bound on 127.0.0.1 now.
    pub fn connect(
        &mut self,
        _template: &str,
        _body: &[u8],
        _next_id: BackendId,
        _now_ms: u64,
        _port_free: &mut dyn FnMut(u16) -> bool,
    ) -> (Reply, Vec<Effect>) {
        (
            error_reply(404, "UNKNOWN_TEMPLATE", "no such template"),
            Vec::new(),
        )
    }

    /// `GET /sessions`.
    pub fn list(&self, _now_ms: u64) -> Reply {
        Reply {
            status: 200,
            body: br#"{"sessions":[],"count":0}"#.to_vec(),
            retry_after: None,
        }
    }

    /// `GET /sessions/{id}`.
    pub fn get(&self, _id: &str, _now_ms: u64) -> Reply {
        error_reply(404, "UNKNOWN_SESSION", "no such session")
    }

    /// `DELETE /sessions/{id}` (`now`: `?now=1`, no drain).
    pub fn delete(&mut self, _id: &str, _now: bool, _now_ms: u64) -> (Reply, Vec<Effect>) {
        (
            error_reply(404, "UNKNOWN_SESSION", "no such session"),
            Vec::new(),
        )
    }

    /// `GET /sessions/{id}/events`: the frames so far (history replayed), and whether the session has
    /// ended (the stream closes after them). `None`: no such session (404).
    pub fn events(&self, _id: &str) -> Option<(Vec<Box<str>>, bool)> {
        None
    }

    /// A lifecycle report about a backend (any backend: not a session's is ignored).
    pub fn on_event(
        &mut self,
        _backend: BackendId,
        _event: &LifecycleEvent,
        _now_ms: u64,
    ) -> Vec<Effect> {
        Vec::new()
    }

    /// A request thread traded credential `index` of the session at `hostname` for its cookie.
    pub fn spend(&mut self, _hostname: &str, _index: usize) -> Vec<Effect> {
        Vec::new()
    }

    /// Lifetimes and tombstones that ran out by `now_ms`.
    pub fn tick(&mut self, _now_ms: u64) -> Vec<Effect> {
        Vec::new()
    }

    /// When `tick` has something to do next.
    pub fn next_deadline(&self) -> Option<u64> {
        None
    }

    /// The session id whose ready URL is `/ready/session/{id}`: its backend.
    pub fn backend_of(&self, _id: &str) -> Option<BackendId> {
        None
    }

    /// Every session ends (the proxy shuts down).
    pub fn shutdown(&mut self, _now_ms: u64) -> Vec<Effect> {
        Vec::new()
    }
}

fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        body: format!(r#"{{"code":"{code}","message":"{message}","status":{status}}}"#)
            .into_bytes(),
        retry_after: None,
    }
}
