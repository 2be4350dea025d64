//! The session registry: every session of every template, owned by the reactor. Sans-IO: each call
//! takes the time (`Clock` milliseconds) and returns what to do as [`Effect`]s and, for an admin call,
//! the [`Reply`]; the reactor carries them out, in order. Randomness comes only from
//! [`secret`](super::secret); nothing here touches a socket, a thread or the clock.
//!
//! * `request`: reading and checking a connect's body;
//! * `connect`: get-or-create by key, the `max_running` cap and eviction, port allocation;
//! * `instance`: the session's one-instance pool (`BackendConfig`) made from its template;
//! * `lifecycle`: lifecycle reports, lifetimes, deletes, ending and tombstones;
//! * `session`: one session's record and its bounded event history;
//! * `json`: the admin API's bodies and the events stream's frames.
//!
//! A session goes `waiting` → `starting` → `ready` → `draining` → `ended`; it *ends* (key and port
//! released, tombstone kept for `tombstone_secs`) once its instance is gone. While it drains, its route
//! already carries the end reason, so new requests get 410.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::route::SessionUpdate;
use crate::config::sessions::SessionTemplate;
use crate::msg::{BackendEntry, LifecycleEvent};
use crate::upstream::BackendId;

mod connect;
mod instance;
mod json;
mod lifecycle;
mod request;
mod session;

#[cfg(test)]
mod tests;

use session::{Session, Tombstones};

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

/// Every session, keyed by id, by key, by backend and by hostname; tombstones of ended ones.
#[derive(Debug, Default)]
pub struct Registry {
    templates: Vec<Arc<SessionTemplate>>,
    /// The admin API's base URL, for `status_url` and `events_url`.
    admin_base: String,
    /// Unix milliseconds at `Clock` millisecond 0: replies show wall-clock times without reading a clock.
    unix_epoch_ms: u64,
    /// Live and tombstoned sessions.
    sessions: HashMap<Arc<str>, Session>,
    /// The newest session of each key, live or tombstoned: a new session of the key waits for its
    /// instance (`after`), and a live one answers the connect itself.
    by_key: HashMap<Box<str>, Arc<str>>,
    /// Sessions not yet ended (their instance may run): what lifecycle reports are about, and who
    /// holds a port.
    by_backend: HashMap<BackendId, Arc<str>>,
    /// Whose route each hostname shows. With `{key}` hostnames a key's new session takes the name over
    /// from its old one, which must then neither overwrite nor forget the new route.
    by_host: HashMap<Box<str>, Arc<str>>,
    /// Lifetime ends of sessions not yet ending.
    lifetimes: BTreeSet<(u64, Arc<str>)>,
    /// When `start = "on_request"` sessions that no request has started yet are due for an idle
    /// check: the supervisor's idle rule covers only instances that run, and such a session would
    /// otherwise hold its place and port forever.
    unstarted: BTreeSet<(u64, Arc<str>)>,
    tombstones: Tombstones,
    /// Orders sessions by creation (list order, LRU ties).
    next_seq: u64,
}

impl Registry {
    /// `admin_base`: the admin API's base URL (`http://127.0.0.1:9999`) for `status_url`/`events_url`.
    /// `unix_epoch_ms`: the wall-clock time (unix milliseconds) of the `Clock`'s millisecond 0.
    pub fn new(
        templates: Vec<Arc<SessionTemplate>>,
        admin_base: String,
        unix_epoch_ms: u64,
    ) -> Registry {
        Registry {
            templates,
            admin_base: admin_base.trim_end_matches('/').to_string(),
            unix_epoch_ms,
            ..Registry::default()
        }
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

    /// `POST /sessions/{template}` with `body`. `next_id`: the id an added backend gets (used only
    /// when the reply is 201). `port_free`: whether a port of `host_ports` can be bound on 127.0.0.1
    /// now.
    pub fn connect(
        &mut self,
        template: &str,
        body: &[u8],
        next_id: BackendId,
        now_ms: u64,
        port_free: &mut dyn FnMut(u16) -> bool,
    ) -> (Reply, Vec<Effect>) {
        match self.connect_or_refuse(template, body, next_id, now_ms, port_free) {
            Ok(done) => done,
            Err(refused) => (refused, Vec::new()),
        }
    }

    /// `GET /sessions`: live sessions and tombstones, oldest first.
    pub fn list(&self, now_ms: u64) -> Reply {
        let mut shown: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.visible(now_ms))
            .collect();
        shown.sort_by_key(|s| s.seq);
        ok(200, json::list(&shown, self.times()))
    }

    /// `GET /sessions/{id}` (404 when unknown or its tombstone has expired).
    pub fn get(&self, id: &str, now_ms: u64) -> Reply {
        match self.sessions.get(id).filter(|s| s.visible(now_ms)) {
            Some(session) => ok(200, json::one(session, self.times())),
            None => unknown_session(),
        }
    }

    /// `DELETE /sessions/{id}` (`now`: `?now=1`, no drain). A live session ends (`terminated`); one
    /// already ending or ended is shown as it is.
    pub fn delete(&mut self, id: &str, now: bool, now_ms: u64) -> (Reply, Vec<Effect>) {
        let Some(id) = self.visible_id(id, now_ms) else {
            return (unknown_session(), Vec::new());
        };
        let mut effects = Vec::new();
        self.begin_end(
            &id,
            super::EndReason::Terminated,
            !now,
            now_ms,
            &mut effects,
        );
        (self.get(&id, now_ms), effects)
    }

    /// `GET /sessions/{id}/events`: the frames so far (history replayed), and whether the session has
    /// ended (the stream closes after them). `None`: no such session (404).
    pub fn events(&self, id: &str) -> Option<(Vec<Box<str>>, bool)> {
        let session = self.sessions.get(id)?;
        Some((session.history.frames(), session.state.is_ended()))
    }

    /// A lifecycle report about a backend (any backend: not a session's is ignored).
    pub fn on_event(
        &mut self,
        backend: BackendId,
        event: &LifecycleEvent,
        now_ms: u64,
    ) -> Vec<Effect> {
        let Some(id) = self.by_backend.get(&backend).cloned() else {
            return Vec::new();
        };
        let mut effects = Vec::new();
        self.report(&id, event, now_ms, &mut effects);
        effects
    }

    /// A request thread traded credential `index` of the session at `hostname` for its cookie: the
    /// token no longer opens anything.
    pub fn spend(&mut self, hostname: &str, index: usize) -> Vec<Effect> {
        let Some(id) = self.by_host.get(hostname) else {
            return Vec::new();
        };
        let Some(session) = self.sessions.get_mut(id) else {
            return Vec::new();
        };
        match session.route.credentials.get(index) {
            Some(credential) if !credential.spent => {}
            _ => return Vec::new(),
        }
        let route = session.change_route(|route| route.credentials[index].spent = true);
        vec![Effect::Publish(SessionUpdate::Put(route))]
    }

    /// Lifetimes and tombstones that ran out by `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.run_timers(now_ms, &mut effects);
        effects
    }

    /// When `tick` has something to do next.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.lifetimes.first().map(|(at, _)| *at),
            self.unstarted.first().map(|(at, _)| *at),
            self.tombstones.next_expiry(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The session id whose ready URL is `/ready/session/{id}`: its backend (while not ended).
    pub fn backend_of(&self, id: &str) -> Option<BackendId> {
        self.sessions
            .get(id)
            .filter(|s| !s.state.is_ended())
            .map(|s| s.backend)
    }

    /// Every session ends (the proxy shuts down): each one not ended gets its `ended` frame (reason
    /// `shutdown`) for its subscribers, and nothing else, since the supervisor stops everything.
    pub fn shutdown(&mut self, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.end_all(now_ms, &mut effects);
        effects
    }

    /// The id of a session `GET` would show.
    fn visible_id(&self, id: &str, now_ms: u64) -> Option<Arc<str>> {
        self.sessions
            .get(id)
            .filter(|s| s.visible(now_ms))
            .map(|s| s.id.clone())
    }

    fn template(&self, name: &str) -> Option<Arc<SessionTemplate>> {
        self.templates.iter().find(|t| t.name == name).cloned()
    }

    fn times(&self) -> json::Times<'_> {
        json::Times {
            unix_epoch_ms: self.unix_epoch_ms,
            admin_base: &self.admin_base,
        }
    }
}

fn ok(status: u16, body: String) -> Reply {
    Reply {
        status,
        body: body.into_bytes(),
        retry_after: None,
    }
}

fn unknown_session() -> Reply {
    json::error(
        crate::error::ErrorCode::UnknownSession,
        "no such session".to_string(),
    )
}
