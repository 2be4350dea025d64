//! Sessions as the tests drive them: `[sessions.NAME]` templates running `spawngate-echo`, the session
//! admin API (connect, get, delete) read with the crate's own JSON reader, and what a connect hands out.
//! `events` reads the events stream, `procs` the session processes, `gate` what the gate tests compare,
//! `app` runs the example web app.

mod app;
mod events;
mod gate;
mod procs;

pub use app::*;
pub use events::*;
pub use gate::*;
pub use procs::*;

use std::net::SocketAddr;
use std::time::Duration;

use spawngate::json::Json;

use super::client::{Client, Response};
use super::pools::free_ports;
use super::routing::{ask, Proto, Reply};
use super::{echo_bin, toml_str, wait_until, Proxy};

/// Long enough for a loaded 2-core machine to start, drain or stop a few sessions.
pub const WAIT: Duration = Duration::from_secs(20);
/// The field a program sends its session token in (instead of the cookie).
pub const SESSION_HEADER: &str = "x-spawngate-token";

/// `[sessions.NAME]` running `spawngate-echo` on its allocated `{port}`, under `{id}.NAME.test`, with
/// `ports` host ports of its own, `keys` (extra TOML lines) and `env` (its env table; `ECHO_LOG=1`
/// always, so the echo prints each request line it gets into the proxy's log).
pub fn echo_template(name: &str, ports: u16, keys: &str, env: &[(&str, &str)]) -> String {
    let base = free_ports(ports);
    // `keys` may bring its own public_url (https, for the Secure cookie).
    let public_url = match keys.contains("public_url") {
        true => "",
        false => "public_url = \"http://{hostname}\"\n",
    };
    let mut out = format!(
        "[sessions.{name}]\nhostname = \"{{id}}.{name}.test\"\n{public_url}\
         host_ports = \"{base}-{}\"\ncommand = {}\nargs = [\"--port\", \"{{port}}\"]\n{keys}\n\
         [sessions.{name}.env]\nECHO_LOG = \"1\"\n",
        base + ports - 1,
        toml_str(echo_bin())
    );
    for (key, value) in env {
        out.push_str(&format!("{key} = {}\n", toml_str(value)));
    }
    out
}

/// The JSON body of an answer, read with the crate's reader.
pub fn json_of(response: &Response) -> Json {
    Json::parse(&response.body).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} {:?} {}",
            response.status,
            response.headers,
            response.text()
        )
    })
}

/// A string member, or "" when it is absent or not a string.
pub fn text_at(json: &Json, key: &str) -> String {
    json.str_at(key).unwrap_or_default().to_string()
}

/// One admin request on a fresh connection (the admin API closes after each answer).
pub fn admin(proxy: &Proxy, method: &str, path: &str, extra: &[&str], body: &[u8]) -> Response {
    admin_at(proxy.admin_addr(), method, path, extra, body)
}

pub fn admin_at(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[&str],
    body: &[u8],
) -> Response {
    let mut lines = vec!["Connection: close"];
    if !body.is_empty() {
        lines.push("Content-Type: application/json");
    }
    lines.extend_from_slice(extra);
    if method == "POST" && body.is_empty() {
        lines.push("Content-Length: 0");
    }
    Client::connect(addr).request(method, "localhost", path, &lines, body)
}

/// `POST /sessions/{template}` with `body` (JSON text; "" for none).
pub fn connect(proxy: &Proxy, template: &str, body: &str) -> Response {
    admin(
        proxy,
        "POST",
        &format!("/sessions/{template}"),
        &[],
        body.as_bytes(),
    )
}

/// What a connect handed out.
#[derive(Debug, Clone)]
pub struct Session {
    /// 201 (created) or 200 (existing).
    pub status: u16,
    pub id: String,
    pub key: String,
    pub hostname: String,
    pub url: String,
    /// `None` for `access = "hostname"` / `"none"` (JSON `null`).
    pub token: Option<String>,
    pub json: Json,
}

impl Session {
    pub fn from_response(response: &Response) -> Session {
        assert!(
            response.status == 200 || response.status == 201,
            "connect: {} {:?} {}",
            response.status,
            response.headers,
            response.text()
        );
        let json = json_of(response);
        Session {
            status: response.status,
            id: text_at(&json, "id"),
            key: text_at(&json, "key"),
            hostname: text_at(&json, "hostname"),
            url: text_at(&json, "url"),
            token: json.str_at("token").map(str::to_string),
            json,
        }
    }

    /// The token; panics for a session handed out without one.
    pub fn token(&self) -> &str {
        self.token
            .as_deref()
            .unwrap_or_else(|| panic!("no token in {:?}", self.json))
    }

    /// The header a program sends instead of the cookie.
    pub fn token_header(&self) -> (&'static str, &str) {
        (SESSION_HEADER, self.token())
    }

    /// The path and query of `url` (what a browser following it asks the session host for).
    pub fn url_path(&self) -> String {
        let rest = self
            .url
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("url without a scheme: {}", self.url));
        match rest.find('/') {
            Some(at) => rest[at..].to_string(),
            None => "/".to_string(),
        }
    }
}

/// A connect that must succeed (200 or 201).
pub fn create(proxy: &Proxy, template: &str, body: &str) -> Session {
    Session::from_response(&connect(proxy, template, body))
}

/// `{"key": KEY}`.
pub fn key_body(key: &str) -> String {
    format!("{{\"key\":{}}}", spawngate::json::quote(key))
}

/// `GET /sessions/{id}`: `None` for 404.
pub fn session_status(proxy: &Proxy, id: &str) -> Option<Json> {
    let response = admin(proxy, "GET", &format!("/sessions/{id}"), &[], b"");
    match response.status {
        200 => Some(json_of(&response)),
        404 => None,
        _ => panic!(
            "GET /sessions/{id}: {} {}",
            response.status,
            response.text()
        ),
    }
}

pub fn state_of(proxy: &Proxy, id: &str) -> String {
    session_status(proxy, id)
        .map(|json| text_at(&json, "state"))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Waits until `GET /sessions/{id}` says `state`; panics with the last answer otherwise.
pub fn wait_state(proxy: &Proxy, id: &str, state: &str, timeout: Duration) {
    if !wait_until(timeout, || state_of(proxy, id) == state) {
        panic!(
            "session {id} did not reach {state} within {timeout:?}: {:?}",
            session_status(proxy, id)
        );
    }
}

/// Waits until the session has ended and returns its reason.
pub fn wait_ended(proxy: &Proxy, id: &str, timeout: Duration) -> String {
    wait_state(proxy, id, "ended", timeout);
    let json = session_status(proxy, id).expect("an ended session answers within its tombstone");
    text_at(&json, "reason")
}

/// `DELETE /sessions/{id}` (`?now=1` with `now`).
pub fn delete(proxy: &Proxy, id: &str, now: bool) -> Response {
    let path = match now {
        true => format!("/sessions/{id}?now=1"),
        false => format!("/sessions/{id}"),
    };
    admin(proxy, "DELETE", &path, &[], b"")
}

/// A request to a session host with `fields`, answered by its backend: 200 and the session stamped.
pub fn served(
    addr: std::net::SocketAddr,
    proto: Proto,
    s: &Session,
    fields: &[(&str, &str)],
) -> Reply {
    let reply = ask(addr, proto, "GET", &s.hostname, "/served", fields);
    assert_eq!(reply.status, 200, "{proto:?}: {}", reply.text());
    assert_eq!(
        reply.echoed_header("x-spawngate-session").as_deref(),
        Some(s.id.as_str()),
        "{proto:?}"
    );
    reply
}
