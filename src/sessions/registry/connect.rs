//! `POST /sessions/{template}`: get-or-create by key, the `max_running` cap and its evictions, and
//! making a new session (id, secret, credential, port, backend).

use std::collections::HashSet;
use std::sync::Arc;

use super::instance::{backend_config, Made};
use super::json;
use super::request::{self, ConnectRequest};
use super::session::{History, Session};
use super::{Effect, Registry, Reply};
use crate::config::sessions::{Evict, HostVar, SessionTemplate, StartPolicy};
use crate::error::ErrorCode;
use crate::msg::BackendEntry;
use crate::sessions::route::{Credential, SessionRoute, SessionUpdate, MAX_CREDENTIALS};
use crate::sessions::secret::{self, Secret};
use crate::sessions::{EndReason, SessionState};
use crate::upstream::BackendId;

/// Ports offered to `port_free` at most per connect: each is a bind attempt.
const PORT_TRIES: usize = 64;

type Done = (Reply, Vec<Effect>);

impl Registry {
    pub(super) fn connect_or_refuse(
        &mut self,
        name: &str,
        body: &[u8],
        next_id: BackendId,
        now_ms: u64,
        port_free: &mut dyn FnMut(u16) -> bool,
    ) -> Result<Done, Reply> {
        let Some(template) = self.template(name) else {
            let message = format!("no session template {}", crate::json::quote(name));
            return Err(json::error(ErrorCode::UnknownTemplate, message));
        };
        let request = request::parse(body, &template)
            .map_err(|why| json::error(ErrorCode::InvalidSessionRequest, why))?;
        // The key's newest session: a running one answers; one ending (or ended, whose instance may
        // not be forgotten yet) is waited for, so a key never has two instances at once.
        let mut after = None;
        if let Some(key) = &request.key {
            if let Some(id) = self.by_key.get(key.as_str()).cloned() {
                if let Some(existing) = self.sessions.get(&id) {
                    if existing.is_running() {
                        if existing.template.name != template.name {
                            let message = format!(
                                "key {} has a live session of template {}",
                                crate::json::quote(key),
                                crate::json::quote(&existing.template.name)
                            );
                            return Err(json::error(ErrorCode::SessionKeyConflict, message));
                        }
                        return self.reconnect(&id, request.user, now_ms);
                    }
                    after = Some(existing.backend);
                }
            }
        }
        let victims = self.victims(&template, now_ms)?;
        if after.is_none() {
            // The key's own predecessor matters more: one instance per key is the promise kept
            // exactly; the cap's wait is for room.
            after = victims
                .first()
                .and_then(|id| self.sessions.get(id))
                .map(|s| s.backend);
        }
        let fresh = self.allocate(&template, port_free)?;
        let mut effects = Vec::new();
        for victim in &victims {
            self.begin_end(victim, EndReason::Evicted, true, now_ms, &mut effects);
        }
        let body = self.create(
            &template,
            request,
            fresh,
            after,
            next_id,
            now_ms,
            &mut effects,
        );
        Ok((super::ok(201, body), effects))
    }

    /// A connect to the running session `id` of its template: its idle window restarts, and a new
    /// credential is minted. Nothing else changes (the first create's limits stand).
    fn reconnect(
        &mut self,
        id: &Arc<str>,
        user: Option<String>,
        now_ms: u64,
    ) -> Result<Done, Reply> {
        let credential = mint(user).map_err(|e| json::internal(&e))?;
        let token = secret::to_text(&credential.token);
        // Field by field, so the sessions can still be changed meanwhile.
        let times = json::Times {
            unix_epoch_ms: self.unix_epoch_ms,
            admin_base: &self.admin_base,
        };
        let Some(session) = self.sessions.get_mut(id) else {
            return Err(super::unknown_session());
        };
        session.activity.begin(now_ms);
        session.activity.end(now_ms);
        let route = session.change_route(|route| {
            if route.credentials.len() >= MAX_CREDENTIALS {
                route.credentials.remove(0);
            }
            route.credentials.push(credential);
        });
        let mut effects = Vec::new();
        if self.by_host.get(&route.hostname) == Some(id) {
            effects.push(Effect::Publish(SessionUpdate::Put(route)));
        }
        let body = json::connected(session, Some(&token), times);
        Ok((super::ok(200, body), effects))
    }

    /// The sessions to end so one more of `template` fits under its `max_running`; or the 503.
    fn victims(&self, template: &SessionTemplate, now_ms: u64) -> Result<Vec<Arc<str>>, Reply> {
        let Some(max) = template.max_running else {
            return Ok(Vec::new());
        };
        let counted: Vec<&Session> = self
            .by_backend
            .values()
            .filter_map(|id| self.sessions.get(id))
            .filter(|s| s.is_running() && s.template.name == template.name)
            .collect();
        // After a reload lowered the cap there may be more than one too many: the cap is hard.
        let needed = (counted.len() + 1).saturating_sub(max as usize);
        if needed == 0 {
            return Ok(Vec::new());
        }
        let mut eligible: Vec<&Session> = match template.evict {
            Evict::Never => Vec::new(),
            Evict::Lru => counted.clone(),
            Evict::IdleLru => counted
                .iter()
                .copied()
                .filter(|s| s.activity.in_flight() == 0)
                .collect(),
        };
        if eligible.len() < needed {
            let message = format!(
                "template {} has {} sessions running (max_running = {max}) and none may be evicted",
                crate::json::quote(&template.name),
                counted.len()
            );
            return Err(json::limit(
                message,
                retry_after(template, &counted, now_ms),
            ));
        }
        eligible.sort_by_key(|s| (s.last_active_ms(), s.seq));
        Ok(eligible[..needed].iter().map(|s| s.id.clone()).collect())
    }

    /// Everything random and the port, before anything changes: a failure leaves no trace.
    fn allocate(
        &self,
        template: &SessionTemplate,
        port_free: &mut dyn FnMut(u16) -> bool,
    ) -> Result<Fresh, Reply> {
        let random = || -> std::io::Result<(String, Secret, Secret, Secret)> {
            Ok((
                secret::session_id()?,
                secret::secret()?,
                secret::secret()?,
                secret::secret()?,
            ))
        };
        let (id, backend_secret, token, cookie) = random().map_err(|e| json::internal(&e))?;
        let held: HashSet<u16> = self
            .by_backend
            .values()
            .filter_map(|id| self.sessions.get(id))
            .map(|s| s.port)
            .collect();
        let (low, high) = template.host_ports;
        let port = (low..=high)
            .filter(|port| !held.contains(port))
            .take(PORT_TRIES)
            .find(|&port| port_free(port));
        let Some(port) = port else {
            let message = "no free port in host_ports".to_string();
            let retry = template.idle_timeout.as_secs().max(1);
            return Err(json::limit(message, retry));
        };
        Ok(Fresh {
            id,
            backend_secret,
            token,
            cookie,
            port,
        })
    }

    /// Records the new session and pushes its effects: `Add`, `Publish`, `Start` (on create), and
    /// its `waiting` frame. Returns the reply's body.
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        template: &Arc<SessionTemplate>,
        request: ConnectRequest,
        fresh: Fresh,
        after: Option<BackendId>,
        backend: BackendId,
        now_ms: u64,
        effects: &mut Vec<Effect>,
    ) -> String {
        let id: Arc<str> = fresh.id.into();
        let key: Box<str> = request.key.map_or_else(|| id.as_ref().into(), Into::into);
        let hostname = template.hostname.render(match template.hostname.var {
            HostVar::Id => &id,
            HostVar::Key => &key,
        });
        let public_url = template.public_url.render(&hostname);
        let deadline_ms = template
            .lifetime
            .map(|life| now_ms.saturating_add(life.as_millis() as u64));
        let secret_text = secret::to_text(&fresh.backend_secret);
        // Field by field, so the sessions can still be changed meanwhile.
        let times = json::Times {
            unix_epoch_ms: self.unix_epoch_ms,
            admin_base: &self.admin_base,
        };
        let made = Made {
            id: &id,
            key: &key,
            port: fresh.port,
            secret: &secret_text,
            deadline_unix_secs: deadline_ms.map(|ms| times.unix_secs(ms)),
            public_url: &public_url,
            env: &request.env,
            after,
        };
        let entry = BackendEntry::new(Arc::new(backend_config(template, &made)));
        // A pool of one instance has one counter; the fallback only keeps a broken entry from panicking.
        let activity = entry.activity.first().cloned().unwrap_or_default();
        let route = Arc::new(SessionRoute {
            id: id.clone(),
            name: entry.config.hostname.as_str().into(),
            hostname: hostname.into(),
            backend,
            access: template.access,
            secure_cookie: template.public_url.is_https(),
            secret: secret_text.into(),
            credentials: vec![Credential {
                token: fresh.token,
                cookie: fresh.cookie,
                user: request.user.map(Into::into),
                spent: false,
            }],
            ended: None,
        });
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut session = Session {
            id: id.clone(),
            key: key.clone(),
            template: template.clone(),
            backend,
            activity,
            port: fresh.port,
            seq,
            created_ms: now_ms,
            deadline_ms,
            state: SessionState::Waiting,
            route: route.clone(),
            history: History::default(),
            ran: false,
            end_sent: false,
            restarting: false,
            tombstone_until: None,
        };
        let frame = json::frame(&session.state, times.unix_ms(now_ms));
        session.history.push(frame.clone());
        effects.push(Effect::Add { id: backend, entry });
        effects.push(Effect::Publish(SessionUpdate::Put(route.clone())));
        match template.start {
            StartPolicy::OnCreate => effects.push(Effect::Start(backend)),
            StartPolicy::OnRequest => {
                let due = now_ms.saturating_add(template.idle_timeout.as_millis() as u64);
                self.unstarted.insert((due, id.clone()));
            }
        }
        effects.push(Effect::Event {
            session: id.clone(),
            frame,
            last: false,
        });
        if let Some(deadline) = deadline_ms {
            self.lifetimes.insert((deadline, id.clone()));
        }
        self.by_key.insert(key, id.clone());
        self.by_backend.insert(backend, id.clone());
        self.by_host.insert(route.hostname.clone(), id.clone());
        let token = secret::to_text(&fresh.token);
        let body = json::connected(&session, Some(&token), times);
        self.sessions.insert(id, session);
        body
    }
}

/// What a new session is given.
struct Fresh {
    id: String,
    backend_secret: Secret,
    token: Secret,
    cookie: Secret,
    port: u16,
}

/// A new credential for `user`.
fn mint(user: Option<String>) -> std::io::Result<Credential> {
    Ok(Credential {
        token: secret::secret()?,
        cookie: secret::secret()?,
        user: user.map(Into::into),
        spent: false,
    })
}

/// Seconds until the earliest lifetime end among the sessions at the cap (at least 1); without
/// lifetimes, the template's idle timeout.
fn retry_after(template: &SessionTemplate, counted: &[&Session], now_ms: u64) -> u64 {
    let earliest = counted.iter().filter_map(|s| s.deadline_ms).min();
    match earliest {
        Some(deadline) => deadline.saturating_sub(now_ms).div_ceil(1000).max(1),
        None => template.idle_timeout.as_secs().max(1),
    }
}
