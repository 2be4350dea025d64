//! What each admin request gets: the bearer token check (`admin_token_file`), the session API (answered
//! by the registry, `session_ctl`), and everything else (`crate::admin`).
//!
//! Without a token everything is open, as the admin listener is then on loopback (the config insists).
//! With one, every request needs `Authorization: Bearer <token>`, except `GET /health` (for liveness
//! checks) and the ready callbacks of backends (`POST /ready/...`), which cannot know the token: a
//! container calls from its own network. A callback only marks an instance that is starting as ready
//! (the proxy then forwards to it, and keeps probing it), so a forged one can cause at worst a 502.

use std::sync::Arc;

use super::admin_conn::{AdminRequest, Drive};
use super::routes::Routes;
use super::session_ctl::MAX_STREAMS;
use super::Reactor;
use crate::admin::{
    self, Action, BackendOutput, BackendStatus, InstanceOutput, InstanceStatus, PoolStatus,
};
use crate::error::{ErrorCode, ProxyError};
use crate::json::Json;
use crate::metrics::render::CONTENT_TYPE;
use crate::msg::Command;
use crate::sessions::gate::query as gate_query;
use crate::sessions::registry::Reply;
use crate::sessions::secret;

impl Reactor {
    pub(super) fn admin_ready(&mut self, key: usize) {
        let Some(conn) = self.admins.get_mut(key) else {
            return;
        };
        let done = match conn.drive() {
            Drive::Request(request) => self.admin_request(key, request),
            Drive::Pending => false,
            Drive::Done => true,
        };
        if done {
            self.close_admin(key);
        }
    }

    pub(super) fn close_admin(&mut self, key: usize) {
        if let Some(mut conn) = self.admins.try_remove(key) {
            let _ = self.poll.registry().deregister(conn.stream_mut());
        }
        self.session_ctl.forget_conn(key);
        self.status_feed.forget_conn(key, &mut self.timers);
    }

    /// Answers one request (or parks it, or starts a stream). Returns true when the connection is done.
    fn admin_request(&mut self, key: usize, request: AdminRequest) -> bool {
        let target = &request.target[..];
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(at) => (&target[..at], &target[at + 1..]),
            None => (target, &b""[..]),
        };
        if !self.admin_authorized(&request, path, query) {
            log::warn!(
                "admin: refused {} {} without a valid token",
                String::from_utf8_lossy(&request.method),
                String::from_utf8_lossy(path)
            );
            let err = ProxyError::new(ErrorCode::Unauthorized, "a valid bearer token is required");
            let answer = err.to_http1(None, true, &[("WWW-Authenticate", "Bearer")]);
            return self.admin_respond(key, answer);
        }
        if let Some(done) = self.status_api(key, &request, path) {
            return done;
        }
        if let Some(done) = self.session_api(key, &request, path, query) {
            return done;
        }
        if let Some(name) = admin::logs_path(path) {
            let found = backend_output(&self.routes, &name);
            let answer = admin::logs_response(&request.method, &name, query, found);
            return self.admin_respond(key, answer);
        }
        let rows = backend_rows(&self.routes);
        let pools = pool_rows(&self.routes);
        let action = admin::handle(
            &request.method,
            target,
            &self.config_status,
            rows.into_iter(),
            &pools,
            self.routes.routes(),
        );
        match action {
            Action::Respond(bytes) => self.admin_respond(key, bytes),
            Action::ReadyCallback {
                hostname,
                slot,
                response,
            } => {
                // `handle` found the name among these very rows, so the table knows it.
                if let Some(id) = self.routes.id_of(&hostname) {
                    self.send_supervisor(Command::ReadyCallback(id, slot));
                }
                self.admin_respond(key, response)
            }
            Action::Reload => {
                let result = self.reload();
                let response = admin::reload_response(&result);
                self.admin_respond(key, response)
            }
        }
    }

    fn admin_respond(&mut self, key: usize, answer: Vec<u8>) -> bool {
        self.admins
            .get_mut(key)
            .is_none_or(|conn| conn.respond(answer))
    }

    /// The read-only views: `GET /` (the status page), `/status`, `/status/events` and `/metrics`; `None`
    /// for any other path.
    fn status_api(&mut self, key: usize, request: &AdminRequest, path: &[u8]) -> Option<bool> {
        if !matches!(path, b"/" | b"/status" | b"/status/events" | b"/metrics") {
            return None;
        }
        if !matches!(&request.method[..], b"GET" | b"HEAD") {
            return Some(self.admin_error(key, ErrorCode::MethodNotAllowed, "use GET"));
        }
        let (content_type, body) = match path {
            b"/" => (
                "text/html; charset=utf-8",
                admin::status::STATUS_PAGE.to_string(),
            ),
            b"/status" => ("application/json", self.status_snapshot()),
            b"/metrics" => (CONTENT_TYPE, self.metrics_page()),
            _ if self.status_feed.is_full() => {
                let err =
                    ProxyError::new(ErrorCode::TooManyHeld, "too many status streams are open")
                        .with_retry_after(5);
                return Some(self.admin_respond(key, err.to_http1(None, true, &[])));
            }
            _ => return Some(self.status_subscribe(key)),
        };
        let mut answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        if &request.method[..] != b"HEAD" {
            answer.extend_from_slice(body.as_bytes());
        }
        Some(self.admin_respond(key, answer))
    }

    fn admin_authorized(&self, request: &AdminRequest, path: &[u8], query: &[u8]) -> bool {
        let Some(token) = &self.config.server.admin_token else {
            return true;
        };
        let open = match &request.method[..] {
            b"GET" | b"HEAD" => path == b"/health",
            b"POST" => path.starts_with(b"/ready/"),
            _ => false,
        };
        if open {
            return true;
        }
        if let Some(presented) = request
            .authorization
            .as_deref()
            .and_then(|v| strip_bearer(v))
        {
            return secret::equal_bytes(presented, &token.0);
        }
        // A browser cannot put a header on the page's address or on its EventSource: the status page
        // and its stream also take the token as `?token=` (the page passes its own query on).
        let page = matches!(&request.method[..], b"GET" | b"HEAD")
            && matches!(path, b"/" | b"/status/events");
        page && gate_query::param(query, b"token")
            .is_some_and(|t| secret::equal_bytes(&t, &token.0))
    }

    /// The session endpoints; `None` for any other path.
    fn session_api(
        &mut self,
        key: usize,
        request: &AdminRequest,
        path: &[u8],
        query: &[u8],
    ) -> Option<bool> {
        let method = &request.method[..];
        let now_ms = self.session_ctl.now_ms(self.now);
        if let Some(id) = path.strip_prefix(b"/ready/session/") {
            if method != b"POST" {
                return Some(self.admin_error(key, ErrorCode::MethodNotAllowed, "use POST"));
            }
            let id = String::from_utf8_lossy(id);
            return Some(match self.session_ctl.registry.backend_of(&id) {
                Some(backend) => {
                    self.send_supervisor(Command::ReadyCallback(backend, 0));
                    let ok = admin::json_reply(200, br#"{"status":"ok"}"#, None, None);
                    self.admin_respond(key, ok)
                }
                None => self.admin_error(key, ErrorCode::UnknownSession, "no such session"),
            });
        }
        let rest = match path {
            b"/sessions" => {
                return Some(match method {
                    b"GET" => {
                        let reply = self.session_ctl.registry.list(now_ms);
                        self.admin_reply(key, reply)
                    }
                    _ => self.admin_error(key, ErrorCode::MethodNotAllowed, "use GET"),
                })
            }
            _ => path.strip_prefix(b"/sessions/")?,
        };
        let rest = String::from_utf8_lossy(rest).into_owned();
        if let Some(id) = rest.strip_suffix("/events") {
            return Some(match method {
                b"GET" => self.open_stream(key, id),
                _ => self.admin_error(key, ErrorCode::MethodNotAllowed, "use GET"),
            });
        }
        Some(match method {
            b"POST" => self.session_connect(key, &rest, &request.body, now_ms),
            b"GET" => {
                let reply = self.session_ctl.registry.get(&rest, now_ms);
                self.admin_reply(key, reply)
            }
            b"DELETE" => {
                let now = query.split(|&b| b == b'&').any(|p| p == b"now=1");
                let (reply, effects) = self.session_ctl.registry.delete(&rest, now, now_ms);
                self.session_effects(effects);
                self.admin_reply(key, reply)
            }
            _ => self.admin_error(key, ErrorCode::MethodNotAllowed, "use GET, POST or DELETE"),
        })
    }

    /// `POST /sessions/{template}`: the answer goes out once both request threads route what it hands
    /// out.
    fn session_connect(&mut self, key: usize, template: &str, body: &[u8], now_ms: u64) -> bool {
        if self.shutting_down {
            let err = ProxyError::new(ErrorCode::BackendShuttingDown, "the proxy is shutting down");
            return self.admin_respond(key, err.to_http1(None, true, &[]));
        }
        let next_id = self.routes.next_id();
        let mut port_free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        let (reply, effects) =
            self.session_ctl
                .registry
                .connect(template, body, next_id, now_ms, &mut port_free);
        self.session_effects(effects);
        let answer = reply_bytes(reply);
        match self.session_ctl.unacknowledged() {
            Some(seq) => {
                if let Some(conn) = self.admins.get_mut(key) {
                    conn.park();
                }
                self.session_ctl.park(key, seq, answer);
                false
            }
            None => self.admin_respond(key, answer),
        }
    }

    /// `GET /sessions/{id}/events`: the history, then each change as it happens.
    fn open_stream(&mut self, key: usize, id: &str) -> bool {
        let Some((frames, ended)) = self.session_ctl.registry.events(id) else {
            return self.admin_error(key, ErrorCode::UnknownSession, "no such session");
        };
        if !ended && self.session_ctl.streams() >= MAX_STREAMS {
            let err = ProxyError::new(ErrorCode::TooManyHeld, "too many event streams are open")
                .with_retry_after(5);
            return self.admin_respond(key, err.to_http1(None, true, &[]));
        }
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n".to_vec();
        for frame in &frames {
            bytes.extend_from_slice(frame.as_bytes());
        }
        if !ended {
            self.session_ctl.subscribe(Arc::from(id), key);
        }
        self.admins
            .get_mut(key)
            .is_none_or(|conn| conn.stream(bytes, ended))
    }

    fn admin_reply(&mut self, key: usize, reply: Reply) -> bool {
        self.admin_respond(key, reply_bytes(reply))
    }

    fn admin_error(&mut self, key: usize, code: ErrorCode, message: &str) -> bool {
        self.admin_respond(key, admin::error(code, message))
    }
}

/// An answer of the registry. An error's code goes in `X-Proxy-Error` too, as for every proxy error.
fn reply_bytes(reply: Reply) -> Vec<u8> {
    let code = match reply.status >= 400 {
        true => Json::parse(&reply.body)
            .ok()
            .and_then(|body| body.str_at("code").map(str::to_owned)),
        false => None,
    };
    admin::json_reply(
        reply.status,
        &reply.body,
        reply.retry_after,
        code.as_deref(),
    )
}

/// The token of `Bearer <token>` (the scheme is case-insensitive, RFC 9110 section 11.1).
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

/// `/backends` lists the `[backends]` entries, as before pools and sessions existed.
fn backend_rows(routes: &Routes) -> Vec<BackendStatus<'_>> {
    routes
        .iter()
        .filter(|r| !r.config.is_pool())
        .map(|r| {
            let first = r.first();
            BackendStatus {
                hostname: &r.host,
                state: first.view.reported_state(),
                port: r.config.port,
                in_flight: first.activity.in_flight(),
                facts: first.activity.facts(),
            }
        })
        .collect()
}

/// `/backends/{name}/logs`: the kept output of each instance of the backend, pool or session `name`.
fn backend_output(routes: &Routes, name: &str) -> Option<BackendOutput> {
    let backend = routes.iter().find(|r| &*r.host == name)?;
    let instances = (0u32..)
        .zip(&backend.instances)
        .map(|(slot, i)| {
            let (lines, not_logged) = i.activity.output();
            InstanceOutput {
                slot,
                lines,
                not_logged,
            }
        })
        .collect();
    Some(BackendOutput {
        name: name.to_string(),
        pool: backend.config.is_pool(),
        instances,
    })
}

/// `/pools`: each pool's instances as this thread last heard of them (sessions are under `/sessions`).
fn pool_rows(routes: &Routes) -> Vec<PoolStatus> {
    let mut pools: Vec<PoolStatus> = routes
        .iter()
        .filter(|backend| backend.config.session.is_none())
        .filter_map(|backend| {
            let pool = backend.config.pool.as_ref()?;
            let instances = backend
                .instances
                .iter()
                .map(|i| InstanceStatus {
                    state: i.view.reported_state(),
                    address: i.addr.to_string(),
                    in_flight: i.activity.in_flight(),
                    facts: i.activity.facts(),
                })
                .collect();
            Some(PoolStatus {
                name: backend.host.to_string(),
                strategy: pool.strategy.name(),
                held: backend.held(),
                instances,
            })
        })
        .collect();
    pools.sort_by(|a, b| a.name.cmp(&b.name));
    pools
}
