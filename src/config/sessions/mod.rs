//! `[sessions.NAME]`: templates of session-lived backends. A web app asks the admin API for a session of
//! a template (`POST /sessions/NAME`); the proxy makes a one-instance pool from the template, with
//! `{id}`, `{key}` and `{port}` substituted, under a hostname of its own, and ends it when it has been
//! idle, reached its lifetime, was evicted or deleted (`crate::sessions`).
//!
//! ```toml
//! [sessions.kernel]
//! hostname = "{id}.nb.example.com"   # required: one {id} or {key}, in the first label
//! public_url = "https://{hostname}"  # default http://{hostname}:{[server] port} (no :80)
//! access = "token"                   # token | hostname (only with {id}) | none; {key} needs token
//! start = "on_create"                # on_create | on_request
//! key_pattern = "^[a-z0-9][a-z0-9._-]{0,127}$"  # the default; always matched against the whole key
//! allow_env = ["NOTEBOOK_ID"]        # what a connect may set; never PORT, the ready URL, SPAWNGATE_*
//! idle_timeout_secs = 120            # default: [defaults] idle_timeout_secs
//! lifetime_secs = 28800              # no default: no deadline
//! max_running = 12                   # 1..=10000; no default: no cap
//! evict = "idle_lru"                 # idle_lru | lru | never
//! unhealthy = "end"                  # end | restart
//! tombstone_secs = 300               # 0..=86400
//! host_ports = "20000-20999"         # required: 1024..=65535, shared with nothing else
//! type = "docker"                    # then the instance keys of a [backends] entry: `port` is the
//! image = "acme/kernel:5"            # container port (required for Docker, refused for a local
//! port = 8888                        # process, which listens on {port}, given as PORT)
//! ```
//!
//! `{id}`, `{key}` and `{port}` may appear in `args`, `env` values and `container_name` (default
//! `spawngate-NAME-{id}`). With `{key}` in `hostname`, a key must also be a DNS label (at most 63 of
//! letters, digits and '-', not starting or ending with '-'), whatever `key_pattern` allows: the
//! registry refuses other keys at connect time.
//!
//! The types the rest of the proxy reads; the submodules read them from the file:
//!
//! * `read`: each template's name and own keys, then the checks;
//! * `pattern`: the text forms (`hostname`, `public_url`, `host_ports`) and when hostname spaces overlap;
//! * `instance`: the instance keys and the placeholders they may hold;
//! * `checks`: across templates and against `[server]`, `[backends]`, `[pools]` and `[hosts]`: port
//!   ranges and hostname spaces.

use std::sync::Arc;
use std::time::Duration;

use super::BackendConfig;

mod checks;
mod instance;
mod pattern;
mod read;

pub(super) use read::{read_all, Others};

/// One `[sessions.NAME]` table.
#[derive(Debug, Clone)]
pub struct SessionTemplate {
    /// The table's name (lower-case `[a-z0-9_-]`), what `POST /sessions/{name}` names.
    pub name: String,
    /// `hostname = "{id}.nb.example.com"`.
    pub hostname: HostPattern,
    /// `public_url = "https://{hostname}"`: the base of the URL the API hands out (no trailing '/').
    pub public_url: UrlPattern,
    pub access: Access,
    pub start: StartPolicy,
    /// A key a connect names must match it whole (the reader wraps it in `^(?:...)$`). With
    /// `{key}` in `hostname` a key must also be a DNS label, which the registry checks.
    pub key_pattern: regex_lite::Regex,
    /// The only variables a connect call may set (never a reserved one).
    pub allow_env: Vec<String>,
    /// No request, h2 stream or tunnel for this long ends the session.
    pub idle_timeout: Duration,
    /// A hard deadline from creation, never extended. `None`: no limit.
    pub lifetime: Option<Duration>,
    /// Sessions of this template running, starting or waiting at once. `None`: no limit.
    pub max_running: Option<u32>,
    pub evict: Evict,
    pub unhealthy: Unhealthy,
    /// How long an ended session still answers 410 `SESSION_ENDED` (and the admin API its reason).
    pub tombstone: Duration,
    /// Ports handed to session instances on 127.0.0.1, inclusive. Required for a local-process template
    /// (it listens on `{port}` / `PORT`); for Docker the allocated port publishes the container's `port`.
    pub host_ports: (u16, u16),
    /// The instance as written, `{id}`, `{key}` and `{port}` not yet substituted: its `kind` (local or
    /// Docker, with `args`, `container_name`), `env`, `timings` (`idle_timeout` is the template's) and,
    /// for Docker, `port` (the container port). `hostname` is the template's name, `pool` is `None`.
    pub instance: Arc<BackendConfig>,
}

/// Where the placeholder of a session hostname sits: in the first label, `{before}{var}{after}` with
/// `before` free of '.', so a session hostname is `before + value + after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    pub before: String,
    pub var: HostVar,
    /// The rest of the first label, then '.' and the domain (lower-case).
    pub after: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVar {
    /// 26 lower-case base32 characters: the session's random id.
    Id,
    /// The caller's key (which must then be a DNS label, and `access` must be `token`).
    Key,
}

impl HostPattern {
    /// The hostname of a session whose placeholder is `value`.
    pub fn render(&self, value: &str) -> String {
        let mut host = String::with_capacity(self.before.len() + value.len() + self.after.len());
        host.push_str(&self.before);
        host.push_str(value);
        host.push_str(&self.after);
        host
    }

    /// Whether `host` (normalised) is in this template's hostname space: what the pattern could render
    /// for some non-empty value without a '.'. Such a host never falls through to a wildcard host.
    pub fn in_space(&self, host: &str) -> bool {
        let Some(middle) = host
            .strip_prefix(self.before.as_str())
            .and_then(|rest| rest.strip_suffix(self.after.as_str()))
        else {
            return false;
        };
        !middle.is_empty() && !middle.contains('.')
    }
}

/// `public_url`: text around one `{hostname}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlPattern {
    pub before: String,
    pub after: String,
}

impl UrlPattern {
    pub fn render(&self, hostname: &str) -> String {
        format!("{}{hostname}{}", self.before, self.after)
    }

    /// An `https` URL: the access cookie is `Secure`.
    pub fn is_https(&self) -> bool {
        self.before.starts_with("https://")
    }
}

/// Who may reach a session's hostname.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A token from a connect (traded for a cookie at `/.spawngate/auth`, or sent as
    /// `X-Spawngate-Token`).
    Token,
    /// Whoever knows the hostname (only with `{id}`, which is unguessable).
    Hostname,
    /// Anyone: the backend authenticates.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPolicy {
    /// Started when created.
    OnCreate,
    /// Started by its first request.
    OnRequest,
}

/// Which session makes room at `max_running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evict {
    /// The least recently active with nothing in flight; none such: 503 `SESSION_LIMIT_REACHED`.
    IdleLru,
    /// The least recently active, busy or not.
    Lru,
    /// None: 503 `SESSION_LIMIT_REACHED`.
    Never,
}

/// What failing health checks do to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    End,
    Restart,
}

/// What marks a backend as a session's: the supervisor and the request threads treat it by these facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTag {
    /// The session id (26 base32 characters).
    pub id: Box<str>,
    pub template: Box<str>,
    /// A session's instance runs once: after it has stopped for any reason it is never started again
    /// (except for `unhealthy = "restart"`, which the registry asks for itself).
    pub restart_unhealthy: bool,
    /// The backend of the session this one waits for (its key's previous session, still draining, or
    /// the one evicted to make room): the supervisor holds this one's start until that one is gone, so
    /// one key never has two instances at once.
    pub after: Option<crate::upstream::BackendId>,
}
