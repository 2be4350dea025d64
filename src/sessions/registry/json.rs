//! The admin API's bodies for sessions and the events stream's frames. Tokens appear only in a
//! connect's reply (to the caller who asked for them); list, get and events never show a token or a
//! secret.

use std::io;

use super::session::Session;
use super::Reply;
use crate::error::{push_json_string, ErrorCode, ProxyError};
use crate::sessions::SessionState;

/// What turns `Clock` milliseconds into wall-clock times, and where the admin API is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Times<'a> {
    pub unix_epoch_ms: u64,
    pub admin_base: &'a str,
}

impl Times<'_> {
    pub fn unix_ms(&self, ms: u64) -> u64 {
        self.unix_epoch_ms.saturating_add(ms)
    }

    pub fn unix_secs(&self, ms: u64) -> u64 {
        self.unix_ms(ms) / 1000
    }
}

/// One JSON object, written member by member.
struct Obj {
    out: String,
}

impl Obj {
    fn new() -> Obj {
        Obj {
            out: String::from("{"),
        }
    }

    fn name(&mut self, name: &str) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        push_json_string(&mut self.out, name);
        self.out.push(':');
    }

    fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        push_json_string(&mut self.out, value);
    }

    fn opt_str(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(value) => self.str(name, value),
            None => self.raw(name, "null"),
        }
    }

    fn num(&mut self, name: &str, value: u64) {
        self.raw(name, &value.to_string());
    }

    fn opt_num(&mut self, name: &str, value: Option<u64>) {
        match value {
            Some(value) => self.num(name, value),
            None => self.raw(name, "null"),
        }
    }

    /// `value` is JSON already.
    fn raw(&mut self, name: &str, value: &str) {
        self.name(name);
        self.out.push_str(value);
    }

    fn end(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// `{"code","message","status"}`, as every proxy error.
pub(super) fn error(code: ErrorCode, message: String) -> Reply {
    Reply {
        status: code.status(),
        body: ProxyError::new(code, message).json_body().into_bytes(),
        retry_after: None,
    }
}

/// 500: the kernel would not give random bytes (not an error code of the proxy's requests).
pub(super) fn internal(e: &io::Error) -> Reply {
    let mut body = Obj::new();
    body.str("code", "INTERNAL_ERROR");
    body.str("message", &format!("no random bytes for the session: {e}"));
    body.num("status", 500);
    Reply {
        status: 500,
        body: body.end().into_bytes(),
        retry_after: None,
    }
}

/// 503 `SESSION_LIMIT_REACHED` with `Retry-After`.
pub(super) fn limit(message: String, retry_after: u64) -> Reply {
    let mut reply = error(ErrorCode::SessionLimitReached, message);
    reply.retry_after = Some(retry_after);
    reply
}

/// A connect's reply: the session and how to reach it (`token`: the credential this connect minted,
/// as text, shown for `access = "token"` only).
pub(super) fn connected(session: &Session, token: Option<&str>, times: Times<'_>) -> String {
    let template = &session.template;
    let base = template.public_url.render(&session.route.hostname);
    let token = token.filter(|_| template.access == crate::config::sessions::Access::Token);
    let url = match token {
        // Base64url: safe in a query as it is.
        Some(token) => format!("{base}/.spawngate/auth?token={token}&next=/"),
        None => format!("{base}/"),
    };
    let mut body = Obj::new();
    body.str("id", &session.id);
    body.str("key", &session.key);
    body.str("template", &template.name);
    body.num("created", times.unix_secs(session.created_ms));
    body.str("state", session.state.name());
    body.str("hostname", &session.route.hostname);
    body.str("url", &url);
    body.opt_str("token", token);
    body.opt_num(
        "expires_at",
        session.deadline_ms.map(|ms| times.unix_secs(ms)),
    );
    body.num("idle_timeout_secs", template.idle_timeout.as_secs());
    body.str("status_url", &status_url(&session.id, times));
    body.str(
        "events_url",
        &format!("{}/events", status_url(&session.id, times)),
    );
    body.end()
}

fn status_url(id: &str, times: Times<'_>) -> String {
    format!("{}/sessions/{id}", times.admin_base)
}

/// One session as list and get show it: no token, no secret.
fn entry(session: &Session, times: Times<'_>) -> String {
    let mut body = Obj::new();
    body.str("id", &session.id);
    body.str("key", &session.key);
    body.str("template", &session.template.name);
    body.str("state", session.state.name());
    body.str("hostname", &session.route.hostname);
    let in_flight = match session.state.is_ended() {
        true => 0,
        false => session.activity.in_flight() as u64,
    };
    body.num("in_flight", in_flight);
    body.num("created", times.unix_secs(session.created_ms));
    body.num("last_active", times.unix_secs(session.last_active_ms()));
    body.opt_num(
        "deadline",
        session.deadline_ms.map(|ms| times.unix_secs(ms)),
    );
    if let SessionState::Draining(reason) | SessionState::Ended(reason) = &session.state {
        body.str("reason", reason.name());
        if let Some(detail) = reason.detail() {
            body.str("detail", detail);
        }
    }
    body.end()
}

/// `GET /sessions/{id}`.
pub(super) fn one(session: &Session, times: Times<'_>) -> String {
    entry(session, times)
}

/// `GET /sessions`.
pub(super) fn list(sessions: &[&Session], times: Times<'_>) -> String {
    let mut out = String::from("{\"sessions\":[");
    for (i, session) in sessions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&entry(session, times));
    }
    out.push_str("],\"count\":");
    out.push_str(&sessions.len().to_string());
    out.push('}');
    out
}

/// `event: STATE\ndata: {"state","at"[,"reason","detail"]}\n\n`, `at` in unix milliseconds.
pub(super) fn frame(state: &SessionState, at_unix_ms: u64) -> Box<str> {
    let mut data = Obj::new();
    data.str("state", state.name());
    data.num("at", at_unix_ms);
    if let SessionState::Draining(reason) | SessionState::Ended(reason) = state {
        data.str("reason", reason.name());
        if let Some(detail) = reason.detail() {
            data.str("detail", detail);
        }
    }
    format!("event: {}\ndata: {}\n\n", state.name(), data.end()).into()
}
